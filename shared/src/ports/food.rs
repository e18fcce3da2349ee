//! Food recognition's ports: the uploaded photos, the vision model that reads them, and the user's food log.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::{ports::RunPart, Result};

/// What a photo is, by its first bytes: the formats vision models take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    Jpeg,
    Png,
    Webp,
    Gif,
}

impl ImageType {
    /// The type the bytes start like, if any: a file's name and its Content-Type are the uploader's word, its
    /// first bytes are not.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(Self::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Self::Png),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(Self::Webp),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(Self::Gif),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
        }
    }
}

/// A photo as the model is sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub bytes: Vec<u8>,
    pub image_type: ImageType,
}

/// What the model read off a photo of food: the meal and its nutrition, for the whole portion shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recognition {
    pub name: String,
    pub calories: f64,
    pub protein_g: f64,
    pub carbs_g: f64,
    pub fat_g: f64,
    /// How sure the model is, from 0 to 1.
    pub confidence: f64,
}

/// Why the model gave no recognition, classified by what trying again would do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecognizeError {
    /// Rate limited or overloaded (429, 503): try again, after `retry_after` when the provider says.
    #[error("{reason}")]
    Throttled { reason: String, retry_after: Option<Duration> },
    /// A 5xx answer, a timeout, a lost connection: try again with backoff.
    #[error("{0}")]
    Unavailable(String),
    /// The provider refused the credentials: no photo can be recognised until they are fixed.
    #[error("{0}")]
    Refused(String),
    /// This photo can never be recognised: refused as bad (400, too large), not food, or an answer that is not
    /// the JSON asked for. The reason is shown to the user.
    #[error("{0}")]
    Rejected(String),
}

/// A vision model that recognises the food on a photo.
#[async_trait]
pub trait FoodRecognizer: Send + Sync {
    async fn recognize(&self, photo: &Photo) -> std::result::Result<Recognition, RecognizeError>;
    /// The longest one call may take: the runtime starts none closer than this to its deadline.
    fn timeout(&self) -> Duration;
}

/// Where the app uploads photos: the uploads bucket, or a local folder playing it.
#[async_trait]
pub trait Photos: Send + Sync {
    /// The object's bytes. A missing object is a permanent error; an object larger than `max_bytes` is one too,
    /// read no further than that.
    async fn photo(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>>;
}

/// A recognised photo in the user's food log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoodEntry {
    /// The upload's id: one entry per photo, however often its event arrives.
    pub upload_id: String,
    pub user_id: i64,
    /// The photo's key in the uploads bucket.
    pub image_key: String,
    #[serde(flatten)]
    pub recognition: Recognition,
    pub logged_at: DateTime<Utc>,
}

/// The users' food logs.
#[async_trait]
pub trait FoodLog: Send + Sync {
    async fn user_exists(&self, user_id: i64) -> Result<bool>;
    /// The entry saved for an upload, if any.
    async fn food_entry(&self, upload_id: &str) -> Result<Option<FoodEntry>>;
    /// Saves the entry unless its upload has one, and counts a new one into `run` in the same transaction.
    /// Returns the entry kept: the one saved first.
    async fn save_food_entry(&self, entry: &FoodEntry, task: &str, run: RunPart) -> Result<FoodEntry>;
    /// The user's newest entries first.
    async fn food_entries(&self, user_id: i64, limit: u32) -> Result<Vec<FoodEntry>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_is_known_by_its_first_bytes() {
        assert_eq!(ImageType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some(ImageType::Jpeg));
        assert_eq!(ImageType::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(ImageType::Png));
        assert_eq!(ImageType::sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(ImageType::Webp));
        assert_eq!(ImageType::sniff(b"GIF89a\x01\0"), Some(ImageType::Gif));
        for not_an_image in [&b""[..], b"\xFF\xD8", b"%PDF-1.7", b"RIFF\x10\0\0\0WAVEfmt ", b"hello, world"] {
            assert_eq!(ImageType::sniff(not_an_image), None, "{not_an_image:?}");
        }
    }
}
