//! The production side of food recognition: the vision model behind an OpenAI-compatible chat-completions API,
//! and the photos in the S3 uploads bucket. Only in the builds with infra's `food` feature (food-recognition's
//! function, `jobs`, the tests).

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::ports::{FoodRecognizer, Photo, Photos, Recognition, RecognizeError};
use tokio::sync::RwLock;

use super::too_large;
use crate::{
    aws::{aws_error_read_by, credentials_refused},
    config::Secret,
    Fault,
};

/// What the model is told: one JSON object, exactly these keys.
const INSTRUCTIONS: &str = "You log meals for a fitness app. Look at the photo and answer with one JSON object \
and nothing else, with exactly these keys: \"is_food\" (true or false), \"name\" (the dish in a few words), \
\"calories\" (kcal), \"protein_g\", \"carbs_g\", \"fat_g\" (grams), all for the whole portion shown, and \
\"confidence\" (0 to 1). If the photo shows no food, answer {\"is_food\": false, \"name\": null, \"calories\": null, \
\"protein_g\": null, \"carbs_g\": null, \"fat_g\": null, \"confidence\": null}.";

/// The most a provider may ask us to wait before the answer is not worth having (SQS hides a message 12 h).
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(12 * 60 * 60);

/// Where the API key comes from: the key itself (locally), or a Secrets Manager secret.
pub enum ApiKeySource {
    Value(Secret),
    Secret { client: aws_sdk_secretsmanager::Client, arn: String },
}

/// The API key, read at the first call and read again when the provider refuses it: a rotated or newly put
/// secret heals without a deploy.
struct ApiKey {
    source: ApiKeySource,
    cached: RwLock<Option<Secret>>,
}

impl ApiKey {
    async fn current(&self) -> Result<Secret, RecognizeError> {
        if let Some(key) = self.cached.read().await.clone() {
            return Ok(key);
        }
        self.reload().await
    }

    async fn reload(&self) -> Result<Secret, RecognizeError> {
        let read = match &self.source {
            ApiKeySource::Value(key) => Ok(key.clone()),
            ApiKeySource::Secret { client, arn } => crate::secrets::read(client, arn).await,
        };
        let key = read.map_err(|e| match shared::Error::from(e) {
            shared::Error::Permanent(e) | shared::Error::Sender(e) => {
                RecognizeError::Refused(format!("reading the model's API key: {e}"))
            }
            shared::Error::Retryable(e) => RecognizeError::Unavailable(format!("reading the model's API key: {e}")),
        })?;
        *self.cached.write().await = Some(key.clone());
        Ok(key)
    }
}

/// An OpenAI-compatible chat-completions API with image input (`POST {url}/chat/completions`).
pub struct HttpRecognizer {
    client: reqwest::Client,
    endpoint: String,
    model: String,
    key: ApiKey,
    timeout: Duration,
}

impl HttpRecognizer {
    /// `url` is the API's base (`https://api.openai.com/v1`); each call gives up after `timeout`.
    pub fn new(url: &str, model: &str, key: ApiKeySource, timeout: Duration) -> Result<Self, crate::Error> {
        // reqwest takes the process's rustls provider: ring, as sqlx's and the SDK's (an Err means one is set).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| crate::Error::Config(format!("the model's HTTP client: {e}")))?;
        Ok(Self {
            client,
            endpoint: format!("{}/chat/completions", url.trim_end_matches('/')),
            model: model.to_owned(),
            key: ApiKey { source: key, cached: RwLock::new(None) },
            timeout,
        })
    }

    fn body(&self, photo: &Photo) -> Value {
        let data = base64::engine::general_purpose::STANDARD.encode(&photo.bytes);
        json!({
            "model": self.model,
            "temperature": 0,
            "max_tokens": 300,
            "response_format": { "type": "json_object" },
            "messages": [
                { "role": "system", "content": INSTRUCTIONS },
                { "role": "user", "content": [
                    { "type": "text", "text": "What food is on this photo?" },
                    { "type": "image_url", "image_url": { "url": format!("data:{};base64,{data}", photo.image_type.mime()) } },
                ] },
            ],
        })
    }

    async fn call(&self, body: &Value, key: &Secret) -> Result<reqwest::Response, RecognizeError> {
        self.client
            .post(&self.endpoint)
            .bearer_auth(key.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                let what = if e.is_timeout() {
                    format!("no answer from the model within {} s", self.timeout.as_secs())
                } else if e.is_connect() {
                    "could not reach the model's API".to_owned()
                } else {
                    "the call to the model failed".to_owned()
                };
                RecognizeError::Unavailable(format!("{what}: {e}"))
            })
    }
}

#[async_trait]
impl FoodRecognizer for HttpRecognizer {
    async fn recognize(&self, photo: &Photo) -> Result<Recognition, RecognizeError> {
        let body = self.body(photo);
        let mut response = self.call(&body, &self.key.current().await?).await?;
        if matches!(response.status().as_u16(), 401 | 403) {
            tracing::warn!(status = %response.status(), "the model refused its API key: reading the key again");
            response = self.call(&body, &self.key.reload().await?).await?;
        }
        let status = response.status();
        let retry_after = retry_after(response.headers(), Utc::now());
        let text = response.text().await.map_err(|e| {
            if e.is_timeout() {
                RecognizeError::Unavailable(format!(
                    "the model's answer was cut off by the {} s timeout",
                    self.timeout.as_secs()
                ))
            } else {
                RecognizeError::Unavailable(format!("reading the model's answer: {e}"))
            }
        })?;
        classify(status.as_u16(), retry_after, &text, &self.model)
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The provider's error message, short, from its JSON error body (or the body itself).
fn provider_message(body: &str) -> String {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned());
    let mut short: String = message.chars().take(200).collect();
    if short.len() < message.len() {
        short.push('…');
    }
    if short.is_empty() {
        "no message".to_owned()
    } else {
        short
    }
}

/// What an answer of `status` with `body` means.
fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
    model: &str,
) -> Result<Recognition, RecognizeError> {
    match status {
        200 => read_answer(body),
        429 | 503 => Err(RecognizeError::Throttled {
            reason: format!(
                "the model's API is {} ({status}): {}",
                if status == 429 { "rate limiting us" } else { "overloaded" },
                provider_message(body)
            ),
            retry_after,
        }),
        401 | 403 => Err(RecognizeError::Refused(format!(
            "the model's API refused the API key ({status}) after it was read again: {}",
            provider_message(body)
        ))),
        404 => Err(RecognizeError::Refused(format!(
            "the model's API has no such model or path ({status}): check FOOD_MODEL_URL and FOOD_MODEL ({model}): {}",
            provider_message(body)
        ))),
        408 | 500..=599 => {
            Err(RecognizeError::Unavailable(format!("the model's API failed ({status}): {}", provider_message(body))))
        }
        _ => Err(RecognizeError::Rejected(format!(
            "the model could not read the photo ({status}): {}",
            provider_message(body)
        ))),
    }
}

/// `retry-after-ms` (OpenAI's), else `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let after = if let Some(ms) = header("retry-after-ms").and_then(|ms| ms.parse::<f64>().ok()) {
        Duration::try_from_secs_f64(ms / 1000.0).ok()?
    } else {
        let value = header("retry-after")?;
        match value.parse::<f64>() {
            Ok(seconds) => Duration::try_from_secs_f64(seconds).ok()?,
            Err(_) => (DateTime::parse_from_rfc2822(value).ok()?.to_utc() - now).to_std().unwrap_or_default(),
        }
    };
    Some(after.min(LONGEST_RETRY_AFTER))
}

/// The model's answer as asked for: one JSON object with exactly the asked keys, each in range.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    is_food: bool,
    name: Option<String>,
    calories: Option<f64>,
    protein_g: Option<f64>,
    carbs_g: Option<f64>,
    fat_g: Option<f64>,
    confidence: Option<f64>,
}

/// The recognition in a chat-completions answer, or why there is none.
fn read_answer(body: &str) -> Result<Recognition, RecognizeError> {
    let invalid =
        |why: String| RecognizeError::Rejected(format!("the model's answer is not the JSON asked for: {why}"));
    let envelope: Value = serde_json::from_str(body).map_err(|e| invalid(format!("the response is not JSON: {e}")))?;
    let content = envelope
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("no choices[0].message.content".into()))?;
    let answer: Answer = serde_json::from_str(content.trim()).map_err(|e| invalid(e.to_string()))?;
    if !answer.is_food {
        return Err(RecognizeError::Rejected("the photo does not show food: take one of the meal".into()));
    }
    let amount = |name: &str, value: Option<f64>, max: f64| match value {
        Some(v) if v.is_finite() && (0.0..=max).contains(&v) => Ok(v),
        Some(v) => Err(invalid(format!("{name} is {v}, outside 0 to {max}"))),
        None => Err(invalid(format!("{name} is missing"))),
    };
    let name = answer.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty() && n.chars().count() <= 200);
    Ok(Recognition {
        name: name.ok_or_else(|| invalid("name is missing, empty or longer than 200 characters".into()))?,
        calories: amount("calories", answer.calories, 20_000.0)?,
        protein_g: amount("protein_g", answer.protein_g, 2_000.0)?,
        carbs_g: amount("carbs_g", answer.carbs_g, 2_000.0)?,
        fat_g: amount("fat_g", answer.fat_g, 2_000.0)?,
        confidence: amount("confidence", answer.confidence, 1.0)?,
    })
}

/// The uploads bucket.
pub struct S3Photos {
    client: aws_sdk_s3::Client,
}

impl S3Photos {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Photos for S3Photos {
    async fn photo(&self, bucket: &str, key: &str, max_bytes: u64) -> shared::Result<Vec<u8>> {
        let read = |code: &str, _: &str| match code {
            "NoSuchKey" => Some(Fault::Permanent),
            code if credentials_refused(code) => Some(Fault::Sender),
            _ => None,
        };
        let object = self.client.get_object().bucket(bucket).key(key).send().await.map_err(|e| {
            let gone = matches!(&e, aws_sdk_s3::error::SdkError::ServiceError(s) if s.err().is_no_such_key());
            if gone {
                shared::Error::permanent(format!(
                    "the photo {key} is no longer in the bucket (deleted, or expired by its lifecycle rule)"
                ))
            } else {
                aws_error_read_by("s3", e, read).into()
            }
        })?;
        let size = object.content_length().unwrap_or_default().max(0) as u64;
        if size > max_bytes {
            return Err(too_large(size, max_bytes));
        }
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| shared::Error::retryable(format!("s3: reading {key}: {e}")))?
            .into_bytes();
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content: &str) -> String {
        json!({ "choices": [{ "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }] })
            .to_string()
    }

    #[test]
    fn a_well_formed_answer_is_a_recognition() {
        let content = r#"{"is_food": true, "name": "Dal with rice", "calories": 540, "protein_g": 18.5,
                          "carbs_g": 88, "fat_g": 11, "confidence": 0.8}"#;
        let r = read_answer(&answer(content)).unwrap();
        assert_eq!((r.name.as_str(), r.calories, r.protein_g, r.confidence), ("Dal with rice", 540.0, 18.5, 0.8));
    }

    #[test]
    fn an_answer_not_as_asked_is_rejected_saying_why() {
        let cases = [
            ("not json at all", "not the JSON asked for"),
            (r#"{"is_food": true, "name": "Soup"}"#, "calories is missing"),
            (
                r#"{"is_food": true, "name": "Soup", "calories": -5, "protein_g": 1, "carbs_g": 1, "fat_g": 1, "confidence": 0.5}"#,
                "calories is -5",
            ),
            (
                r#"{"is_food": true, "name": "Soup", "calories": 5, "protein_g": 1, "carbs_g": 1, "fat_g": 1, "confidence": 1.5}"#,
                "confidence is 1.5",
            ),
            (
                r#"{"is_food": true, "name": " ", "calories": 5, "protein_g": 1, "carbs_g": 1, "fat_g": 1, "confidence": 0.5}"#,
                "name is missing",
            ),
            (
                r#"{"is_food": true, "name": "Soup", "calories": 5, "protein_g": 1, "carbs_g": 1, "fat_g": 1, "confidence": 0.5, "sugar_g": 3}"#,
                "unknown field `sugar_g`",
            ),
            ("```json\n{\"is_food\": true}\n```", "not the JSON asked for"),
            (r#"{"is_food": "yes"}"#, "invalid type"),
        ];
        for (content, why) in cases {
            match read_answer(&answer(content)) {
                Err(RecognizeError::Rejected(reason)) => assert!(reason.contains(why), "{content}: {reason}"),
                other => panic!("{content}: {other:?}"),
            }
        }
        let not_food = read_answer(&answer(
            r#"{"is_food": false, "name": null, "calories": null, "protein_g": null, "carbs_g": null, "fat_g": null, "confidence": null}"#,
        ));
        assert_eq!(
            not_food,
            Err(RecognizeError::Rejected("the photo does not show food: take one of the meal".into()))
        );
        assert!(
            matches!(read_answer("{\"choices\": []}"), Err(RecognizeError::Rejected(r)) if r.contains("choices[0]"))
        );
    }

    #[test]
    fn each_status_is_classified_by_what_a_retry_would_do() {
        let error = r#"{"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests"}}"#;
        match classify(429, Some(Duration::from_secs(7)), error, "m") {
            Err(RecognizeError::Throttled { reason, retry_after }) => {
                assert!(reason.contains("rate limiting") && reason.contains("Rate limit reached"), "{reason}");
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(classify(503, None, "", "m"), Err(RecognizeError::Throttled { retry_after: None, .. })));
        for status in [500, 502, 504, 408] {
            assert!(matches!(classify(status, None, "oops", "m"), Err(RecognizeError::Unavailable(_))), "{status}");
        }
        for status in [400, 413, 415, 422] {
            assert!(matches!(classify(status, None, "bad image", "m"), Err(RecognizeError::Rejected(_))), "{status}");
        }
        for status in [401, 403, 404] {
            assert!(matches!(classify(status, None, "", "m"), Err(RecognizeError::Refused(_))), "{status}");
        }
    }

    #[test]
    fn retry_after_is_read_in_milliseconds_seconds_or_as_a_date() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let now: DateTime<Utc> = "2026-12-01T12:00:00Z".parse().unwrap();
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_str(value).unwrap());
            }
            map
        };
        assert_eq!(retry_after(&headers(&[("retry-after", "20")]), now), Some(Duration::from_secs(20)));
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "1500"), ("retry-after", "2")]), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "Tue, 01 Dec 2026 12:01:30 GMT")]), now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "86400000")]), now), Some(LONGEST_RETRY_AFTER));
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[]), now), None);
    }
}
