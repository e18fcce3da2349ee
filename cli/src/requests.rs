//! On-demand requests as people read them (`jobs status`, the demo), and meal photos uploaded as the app does
//! (`jobs photo`, the demo) to the uploads folder that plays the bucket locally.

use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use infra::{config::UploadsConfig, food::LocalUploads, wiring::Backend};
use serde_json::Value;
use shared::{
    ports::{RequestRecord, RequestState},
    tasks::fitness::food_recognition,
};

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What a request produced, in words: a food entry as a meal's nutrition, anything else as its JSON.
pub fn result_words(result: &Value) -> String {
    let number = |key: &str| result[key].as_f64().unwrap_or_default();
    match result["name"].as_str() {
        Some(name) if result.get("calories").is_some() => format!(
            "{name}: {:.0} kcal, protein {} g, carbs {} g, fat {} g ({:.0}% sure)",
            number("calories"),
            number("protein_g"),
            number("carbs_g"),
            number("fat_g"),
            number("confidence") * 100.0
        ),
        _ => result.to_string(),
    }
}

/// One request: its id, kind, user and state, then what it produced, why it failed, or when it goes on.
pub fn describe(r: &RequestRecord, now: DateTime<Utc>) -> String {
    let attempts = if r.attempts == 1 { "1 attempt".to_owned() } else { format!("{} attempts", r.attempts) };
    let mut text = format!(
        "{}  {}  user {}  {}  ({attempts}, asked {}, updated {})",
        r.id,
        r.kind,
        r.user_id,
        r.state.as_str(),
        at(r.created_at),
        at(r.updated_at)
    );
    let detail = match r.state {
        RequestState::Succeeded => r.result.as_ref().map(result_words),
        RequestState::Failed => r.reason.clone(),
        RequestState::Queued => r.reason.as_ref().map(|why| match r.retry_at {
            Some(retry) => format!("last attempt: {why}; next at {}", at(retry)),
            None => format!("last attempt: {why}"),
        }),
        RequestState::Running => r.held_until.map(|until| {
            if until < now {
                format!("its worker stopped answering at {}: the event's next delivery takes it over", at(until))
            } else {
                format!("being worked, held until {}", at(until))
            }
        }),
    };
    if let Some(detail) = detail {
        text.push_str("\n    ");
        text.push_str(&detail);
    }
    text
}

/// The uploads folder, when the backend has one (the embedded default); with a bucket, the app (or `aws s3
/// cp`) uploads.
fn local_uploads(backend: &Backend) -> Result<LocalUploads> {
    match &backend.config.uploads {
        Some(UploadsConfig::Dir(dir)) => Ok(LocalUploads::new(dir)),
        Some(UploadsConfig::Bucket(bucket)) => anyhow::bail!(
            "the uploads are the bucket {bucket}: upload with `aws s3 cp FILE s3://{bucket}/{}<user id>/<upload id>`",
            food_recognition::PREFIX
        ),
        None => anyhow::bail!("no uploads folder or bucket: set UPLOADS_DIR (or UPLOADS_BUCKET)"),
    }
}

/// Uploads a meal photo for `user` as the app does, and queues the bucket's event for food recognition.
/// Returns the key.
pub async fn upload(backend: &Backend, user: i64, upload_id: &str, bytes: &[u8], now: DateTime<Utc>) -> Result<String> {
    let uploads = local_uploads(backend)?;
    let queue: Arc<dyn shared::ports::Queue> = backend.queue(food_recognition::NAME);
    uploads.put(&queue, user, upload_id, bytes, now).await.context("uploading the photo")
}
