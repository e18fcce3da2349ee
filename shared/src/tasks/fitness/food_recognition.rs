//! food-recognition: on demand, not on a clock. The app uploads a meal's photo to the uploads bucket under
//! `food/<user id>/<upload id>`; the bucket's "Object Created" event reaches this task's queue through
//! EventBridge. The task asks a vision model what food it shows and its nutrition, and saves that to the
//! user's food log, once per upload. The user's request (`job_requests`, keyed by the upload id) is kept by
//! the runtime: queued, running, succeeded with the entry, or failed with a reason a person can read.

use async_trait::async_trait;
use chrono::Duration;
use serde_json::Value;
use std::sync::Arc;

use crate::{
    deliveries::Deliveries,
    ports::{FoodEntry, FoodLog, FoodRecognizer, ImageType, Photo, Photos, RecognizeError, Request},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    time::Slot,
    Error, Result,
};

pub const NAME: &str = "food-recognition";
/// The source of S3's events on EventBridge.
pub const EVENT_SOURCE: &str = "aws.s3";
pub const DETAIL_TYPE: &str = "Object Created";
/// Where the app uploads meal photos: `food/<user id>/<upload id>`.
pub const PREFIX: &str = "food/";
/// The largest photo sent to the model: what vision APIs take with room to spare, and more than a phone's
/// photo once the app has scaled it for upload.
pub const MAX_PHOTO_BYTES: u64 = 5 * 1024 * 1024;

/// A photo's upload, as its event names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub bucket: String,
    pub key: String,
    /// What S3 says the object's size is.
    pub size: u64,
    pub user_id: i64,
    pub upload_id: String,
}

/// Whether an upload id may name a request and a file: letters, digits, `.`, `_` and `-`, starting with a letter
/// or a digit (never `.` or `..`), 128 at most.
pub fn valid_upload_id(id: &str) -> bool {
    id.len() <= 128
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The upload an S3 "Object Created" event (as EventBridge delivers it) names, or why it names none.
pub fn parse_upload(event: &Value) -> Result<Upload> {
    let detail_type = event.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    if detail_type != DETAIL_TYPE {
        return Err(Error::permanent(format!("a {detail_type:?} event: only {DETAIL_TYPE:?} starts a recognition")));
    }
    let detail = event.get("detail").unwrap_or(&Value::Null);
    let text = |pointer: &str| detail.pointer(pointer).and_then(Value::as_str);
    let bucket = text("/bucket/name").ok_or_else(|| Error::permanent("detail.bucket.name is missing"))?;
    let key = text("/object/key").ok_or_else(|| Error::permanent("detail.object.key is missing"))?;
    let size = detail
        .pointer("/object/size")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::permanent(format!("{key}: detail.object.size is missing or not a whole number")))?;
    let malformed = || {
        Error::permanent(format!(
            "{key:?} is not a meal photo's key: expected {PREFIX}<user id>/<upload id> (upload id: letters, digits, \
             '.', '_', '-')"
        ))
    };
    let rest = key.strip_prefix(PREFIX).ok_or_else(malformed)?;
    let (user, upload_id) = rest.split_once('/').ok_or_else(malformed)?;
    let user_id = user.parse::<i64>().ok().filter(|id| *id > 0 && !user.starts_with('+')).ok_or_else(malformed)?;
    if !valid_upload_id(upload_id) {
        return Err(malformed());
    }
    Ok(Upload { bucket: bucket.to_owned(), key: key.to_owned(), size, user_id, upload_id: upload_id.to_owned() })
}

/// A size in MB to one decimal, rounded up: a photo just over the limit never reads as the limit itself.
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", (bytes as f64 / (1024.0 * 1024.0) * 10.0).ceil() / 10.0)
}

pub struct FoodRecognition {
    pub photos: Arc<dyn Photos>,
    pub recognizer: Arc<dyn FoodRecognizer>,
    pub log: Arc<dyn FoodLog>,
}

#[async_trait]
impl Task for FoodRecognition {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Uploads are counted in the run of their hour.
    fn granularity(&self) -> Duration {
        Duration::hours(1)
    }

    fn catch_up(&self) -> CatchUp {
        CatchUp::None
    }

    fn overlap(&self) -> Overlap {
        Overlap::Skip
    }

    fn event_source(&self) -> Option<&'static str> {
        Some(EVENT_SOURCE)
    }

    fn request(&self, payload: &Value) -> Option<Result<Request>> {
        Some(parse_upload(payload).map(|upload| Request { id: upload.upload_id, user_id: upload.user_id }))
    }

    async fn plan(&self, _slot: Slot, _fanout: &mut Fanout<'_>) -> Result<()> {
        Err(Error::permanent(format!("{NAME} is started by uploads' events, never planned")))
    }

    /// Every check that needs no model comes first, so a bad upload never costs a call.
    async fn work(&self, _slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let upload = parse_upload(&payload)?;
        let mut report = WorkReport::default();
        if let Some(entry) = self.log.food_entry(&upload.upload_id).await? {
            // Saved by an attempt that stopped before its request was marked succeeded.
            report.already_done = 1;
            report.result = Some(serde_json::to_value(entry).expect("an entry serialises"));
            return Ok(report);
        }
        if !self.log.user_exists(upload.user_id).await? {
            return Err(Error::permanent(format!(
                "user {} does not exist (deleted?): no food log to add to",
                upload.user_id
            )));
        }
        let too_large = |size| {
            Error::permanent(format!(
                "the photo is {}; the largest accepted is {}: take it again at a lower resolution",
                megabytes(size),
                megabytes(MAX_PHOTO_BYTES)
            ))
        };
        match upload.size {
            0 => return Err(Error::permanent("the photo is empty (0 bytes): upload it again")),
            size if size > MAX_PHOTO_BYTES => return Err(too_large(size)),
            _ => {}
        }
        let bytes = self.photos.photo(&upload.bucket, &upload.key, MAX_PHOTO_BYTES).await?;
        let image_type = ImageType::sniff(&bytes).ok_or_else(|| {
            Error::permanent(if bytes.is_empty() {
                "the photo is empty (0 bytes): upload it again".to_owned()
            } else {
                "the upload is not a photo: a JPEG, PNG, WebP or GIF image is expected".to_owned()
            })
        })?;
        if !deliveries.deadline.allows(self.recognizer.timeout()) {
            report.retry = Some("not started: the model's answer could come after the invocation's deadline".into());
            return Ok(report);
        }
        match self.recognizer.recognize(&Photo { bytes, image_type }).await {
            Ok(recognition) => {
                let entry = FoodEntry {
                    upload_id: upload.upload_id,
                    user_id: upload.user_id,
                    image_key: upload.key,
                    recognition,
                    logged_at: deliveries.clock.now(),
                };
                let kept = self.log.save_food_entry(&entry, NAME, deliveries.run).await?;
                tracing::info!(task = NAME, upload = %kept.upload_id, user = kept.user_id, food = %kept.recognition.name, "recognised");
                report.sent = 1;
                report.result = Some(serde_json::to_value(kept).expect("an entry serialises"));
            }
            Err(RecognizeError::Throttled { reason, retry_after }) => {
                report.retry_at = retry_after
                    .and_then(|after| chrono::Duration::from_std(after).ok())
                    .map(|after| deliveries.clock.now() + after);
                report.retry = Some(reason);
            }
            Err(RecognizeError::Unavailable(reason)) => report.retry = Some(reason),
            // Every photo would fail the same way: stop the batch and raise the alarm; the messages come back.
            Err(RecognizeError::Refused(reason)) => return Err(Error::sender(reason)),
            Err(RecognizeError::Rejected(reason)) => return Err(Error::permanent(reason)),
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(detail_type: &str, key: &str, size: Value) -> Value {
        json!({
            "source": EVENT_SOURCE,
            "detail-type": detail_type,
            "detail": { "bucket": { "name": "uploads" }, "object": { "key": key, "size": size } },
        })
    }

    #[test]
    fn an_upload_event_names_its_user_and_upload() {
        let upload = parse_upload(&event(DETAIL_TYPE, "food/42/01JQ7-lunch.jpg", json!(2048))).unwrap();
        assert_eq!(
            upload,
            Upload {
                bucket: "uploads".into(),
                key: "food/42/01JQ7-lunch.jpg".into(),
                size: 2048,
                user_id: 42,
                upload_id: "01JQ7-lunch.jpg".into()
            }
        );
    }

    #[test]
    fn a_key_that_is_not_a_meal_photo_is_refused_saying_what_is_expected() {
        for key in [
            "tmp/42/a.jpg",
            "food/42",
            "food/abc/a.jpg",
            "food/0/a.jpg",
            "food/-4/a.jpg",
            "food/+4/a.jpg",
            "food/42/",
            "food/42/..",
            "food/42/.hidden",
            "food/42/a/b.jpg",
            "food/42/a b.jpg",
            "food//a.jpg",
        ] {
            let e = parse_upload(&event(DETAIL_TYPE, key, json!(10))).unwrap_err();
            assert!(matches!(&e, Error::Permanent(m) if m.contains("food/<user id>/<upload id>")), "{key}: {e}");
        }
        let long = format!("food/1/{}", "a".repeat(129));
        assert!(parse_upload(&event(DETAIL_TYPE, &long, json!(10))).is_err());
    }

    #[test]
    fn an_event_that_is_not_an_upload_is_refused() {
        let deleted = parse_upload(&event("Object Deleted", "food/1/a.jpg", json!(10))).unwrap_err().to_string();
        assert!(deleted.contains("\"Object Deleted\""), "{deleted}");
        let sizeless = parse_upload(&event(DETAIL_TYPE, "food/1/a.jpg", json!("10"))).unwrap_err().to_string();
        assert!(sizeless.contains("detail.object.size"), "{sizeless}");
        let bare = parse_upload(&json!({"detail-type": DETAIL_TYPE})).unwrap_err().to_string();
        assert!(bare.contains("detail.bucket.name"), "{bare}");
    }

    #[test]
    fn the_sample_event_is_what_the_task_reads() {
        let event: Value = serde_json::from_str(include_str!("../../../../events/food-photo-created.json")).unwrap();
        assert_eq!(event["source"], EVENT_SOURCE);
        let upload = parse_upload(&event).unwrap();
        assert_eq!((upload.user_id, upload.upload_id.as_str()), (1, "01JDQ3Z5V8K2M4N6P8R0T2W4Y6.jpg"));
        // What `sam local invoke FoodRecognitionFunction -e events/food-photo-batch.json` works: the same event.
        let batch: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_str(include_str!("../../../../events/food-photo-batch.json")).unwrap();
        let body: Value = serde_json::from_str(batch.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(parse_upload(&body).unwrap(), upload);
    }
}
