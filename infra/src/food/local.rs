//! A local folder playing the uploads bucket, for the embedded backend: the demo and the tests upload photos
//! without a bucket.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use shared::{
    ports::{Photos, Queue},
    tasks::fitness::food_recognition::{DETAIL_TYPE, EVENT_SOURCE, PREFIX},
};

use super::too_large;

/// A local folder playing the uploads bucket (the embedded backend): the object `food/7/a.png` is the file
/// `<dir>/food/7/a.png`. `put` uploads a photo as the app would, and queues the event the bucket would send.
pub struct LocalUploads {
    dir: PathBuf,
}

impl LocalUploads {
    /// The bucket's name in the events of the local folder.
    pub const BUCKET: &'static str = "local-uploads";

    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the photo under `food/<user>/<upload id>` and puts the bucket's "Object Created" event on
    /// `queue` (food recognition's), in EventBridge's envelope. Returns the key.
    pub async fn put(
        &self,
        queue: &Arc<dyn Queue>,
        user_id: i64,
        upload_id: &str,
        bytes: &[u8],
        at: DateTime<Utc>,
    ) -> shared::Result<String> {
        let key = format!("{PREFIX}{user_id}/{upload_id}");
        let path = self.dir.join(&key);
        let write = async {
            tokio::fs::create_dir_all(path.parent().expect("a key has a folder")).await?;
            tokio::fs::write(&path, bytes).await
        };
        write.await.map_err(|e| shared::Error::retryable(format!("uploads: writing {}: {e}", path.display())))?;
        queue.send_batch(&[Self::event(&key, bytes.len() as u64, at).to_string()]).await?;
        Ok(key)
    }

    /// The event S3 sends EventBridge for a new object, as a rule delivers it to an SQS queue.
    pub fn event(key: &str, size: u64, at: DateTime<Utc>) -> Value {
        json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": DETAIL_TYPE,
            "source": EVENT_SOURCE,
            "account": "000000000000",
            "time": at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "region": "local",
            "resources": [format!("arn:aws:s3:::{}", Self::BUCKET)],
            "detail": {
                "version": "0",
                "bucket": { "name": Self::BUCKET },
                "object": { "key": key, "size": size },
                "reason": "PutObject",
            },
        })
    }
}

#[async_trait]
impl Photos for LocalUploads {
    async fn photo(&self, _bucket: &str, key: &str, max_bytes: u64) -> shared::Result<Vec<u8>> {
        // The task checked the key's shape (no `..`), so it stays under the folder.
        let path = self.dir.join(key);
        let size = match tokio::fs::metadata(&path).await {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(shared::Error::permanent(format!("the photo {key} is no longer in the uploads folder")))
            }
            Err(e) => return Err(shared::Error::retryable(format!("uploads: {}: {e}", path.display()))),
        };
        if size > max_bytes {
            return Err(too_large(size, max_bytes));
        }
        tokio::fs::read(&path).await.map_err(|e| shared::Error::retryable(format!("uploads: {}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_bucket_sends_the_event_s3_sends() {
        let sample: Value = serde_json::from_str(include_str!("../../../events/food-photo-created.json")).unwrap();
        let event = LocalUploads::event("food/1/a.png", 10, "2026-12-01T12:31:07Z".parse().unwrap());
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&event), keys(&sample));
        assert_eq!((&event["source"], &event["detail-type"]), (&sample["source"], &sample["detail-type"]));
        let upload = shared::tasks::fitness::food_recognition::parse_upload(&event).unwrap();
        assert_eq!((upload.user_id, upload.upload_id.as_str(), upload.size), (1, "a.png", 10));
    }
}
