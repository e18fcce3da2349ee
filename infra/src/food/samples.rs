//! The sample model: knows the sample photos under `infra/samples/food/` and nothing else, so the demo, the tests
//! and a stack deployed with `FoodModelUrl=samples` recognise food without a provider.

use std::time::Duration;

use async_trait::async_trait;
use shared::ports::{FoodRecognizer, Photo, Recognition, RecognizeError};

/// The embedded model: knows the sample photos under `infra/samples/food/` and nothing else, so the demo and the
/// tests recognise food without a provider.
pub struct SampleRecognizer;

/// A sample photo and what the embedded model reads off it: the meal's name, kcal, protein, carbs and fat in
/// grams, and its confidence; `None` for a photo without food.
pub struct Sample {
    pub file: &'static str,
    pub bytes: &'static [u8],
    pub meal: Option<(&'static str, [f64; 5])>,
}

pub const SAMPLES: &[Sample] = &[
    Sample {
        file: "salad.png",
        bytes: include_bytes!("../../samples/food/salad.png"),
        meal: Some(("Greek salad", [320.0, 9.0, 14.0, 26.0, 0.91])),
    },
    Sample {
        file: "porridge.png",
        bytes: include_bytes!("../../samples/food/porridge.png"),
        meal: Some(("Porridge with banana", [410.0, 12.0, 68.0, 9.0, 0.87])),
    },
    Sample {
        file: "chicken-rice.png",
        bytes: include_bytes!("../../samples/food/chicken-rice.png"),
        meal: Some(("Grilled chicken with rice", [650.0, 48.0, 72.0, 14.0, 0.94])),
    },
    Sample { file: "running-shoe.png", bytes: include_bytes!("../../samples/food/running-shoe.png"), meal: None },
];

#[async_trait]
impl FoodRecognizer for SampleRecognizer {
    async fn recognize(&self, photo: &Photo) -> Result<Recognition, RecognizeError> {
        match SAMPLES.iter().find(|sample| sample.bytes == photo.bytes.as_slice()).map(|sample| sample.meal) {
            Some(Some((name, [calories, protein_g, carbs_g, fat_g, confidence]))) => Ok(Recognition {
                name: name.to_owned(),
                calories,
                protein_g,
                carbs_g,
                fat_g,
                confidence,
            }),
            Some(None) => Err(RecognizeError::Rejected("the photo does not show food: take one of the meal".into())),
            None => Err(RecognizeError::Rejected(
                "the embedded model knows only its sample photos (infra/samples/food); set FOOD_MODEL_URL for a real one"
                    .into(),
            )),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_embedded_model_knows_its_samples_and_nothing_else() {
        let photo = |bytes: &[u8]| Photo { bytes: bytes.to_vec(), image_type: shared::ports::ImageType::Png };
        let salad = SampleRecognizer.recognize(&photo(SAMPLES[0].bytes)).await.unwrap();
        assert_eq!(salad.name, "Greek salad");
        let shoe = SampleRecognizer.recognize(&photo(SAMPLES[3].bytes)).await.unwrap_err();
        assert!(shoe.to_string().contains("does not show food"), "{shoe}");
        let other = SampleRecognizer.recognize(&photo(b"\x89PNG\r\n\x1a\nother")).await.unwrap_err();
        assert!(matches!(other, RecognizeError::Rejected(r) if r.contains("FOOD_MODEL_URL")));
        for sample in SAMPLES {
            assert_eq!(
                shared::ports::ImageType::sniff(sample.bytes),
                Some(shared::ports::ImageType::Png),
                "{}",
                sample.file
            );
        }
    }
}
