//! The mailer and notifier ports on a folder, the local stand-ins for SES and SNS: each email becomes a `.eml`
//! file any mail client opens, each SMS and push a JSON line in `sms.jsonl` and `push.jsonl`.

use async_trait::async_trait;
use shared::channels::{check_push, check_sms};
use shared::ports::{Email, Mailer, Notifier, Push, Pushed, Sms};
use shared::Result;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::job;
use crate::Error;

pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    /// Creates the folder if it is missing.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, Error> {
        std::fs::create_dir_all(dir.as_ref())?;
        Ok(Self { dir: dir.as_ref().to_owned() })
    }
}

/// The recipient's address as a short, portable piece of a file name.
fn file_safe(to: &str) -> String {
    let address = match (to.rfind('<'), to.rfind('>')) {
        (Some(open), Some(close)) if open < close => &to[open + 1..close],
        _ => to,
    };
    address
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') { c } else { '_' })
        .take(40)
        .collect()
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &Email) -> Result<String> {
        let bytes = crate::mime::render(email).map_err(job)?;
        // Wall time, not the job clock: the files sort in the order they were written.
        let name = format!(
            "{}-{}-{}.eml",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
            file_safe(&email.to),
            uuid::Uuid::new_v4().simple()
        );
        let (temporary, path) = (self.dir.join(format!(".{name}.tmp")), self.dir.join(&name));
        // Written aside and renamed, so a reader of the folder never sees half a message.
        tokio::task::spawn_blocking(move || {
            std::fs::write(&temporary, bytes)?;
            std::fs::rename(&temporary, &path)
        })
        .await
        .map_err(|e| job(std::io::Error::other(e)))?
        .map_err(job)?;
        Ok(name)
    }
}

/// SMS and push as JSON lines in the outbox folder: `sms.jsonl` (`at`, `to`, `text`, `id`) and `push.jsonl`
/// (`at`, `endpoint_arn`, `title`, `body`, `id`), `at` in RFC 3339. So that a disabled device can be shown end
/// to end locally, an endpoint listed in `gone-endpoints.txt` in the same folder (one ARN a line, read at each
/// push) is gone, as SNS answers for an endpoint the platform disabled.
pub struct OutboxNotifier {
    dir: PathBuf,
}

impl OutboxNotifier {
    /// Creates the folder if it is missing.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, Error> {
        std::fs::create_dir_all(dir.as_ref())?;
        Ok(Self { dir: dir.as_ref().to_owned() })
    }

    /// Appends the record, with its time and a new id, as one line of `file`; returns the id.
    async fn append(&self, file: &str, mut record: serde_json::Value) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        record["at"] = chrono::Utc::now().to_rfc3339().into();
        record["id"] = id.clone().into();
        let mut line = record.to_string().into_bytes();
        line.push(b'\n');
        let path = self.dir.join(file);
        // One write of the whole line to a file opened for appending: the system places each write at the end
        // of the file as it stands, so lines of concurrent writers never interleave.
        tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new().create(true).append(true).open(path)?.write_all(&line)
        })
        .await
        .map_err(|e| job(std::io::Error::other(e)))?
        .map_err(job)?;
        Ok(id)
    }

    async fn is_gone(&self, endpoint_arn: &str) -> Result<bool> {
        match tokio::fs::read_to_string(self.dir.join(GONE_ENDPOINTS)).await {
            Ok(listed) => Ok(listed.lines().any(|line| line.trim() == endpoint_arn)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(job(e)),
        }
    }
}

/// The outbox's list of endpoints to treat as gone.
pub const GONE_ENDPOINTS: &str = "gone-endpoints.txt";

#[async_trait]
impl Notifier for OutboxNotifier {
    async fn sms(&self, sms: &Sms) -> Result<String> {
        check_sms(sms)?;
        self.append("sms.jsonl", serde_json::json!({ "to": sms.to, "text": sms.text })).await
    }

    async fn push(&self, push: &Push) -> Result<Pushed> {
        check_push(push)?;
        if self.is_gone(&push.endpoint_arn).await? {
            return Ok(Pushed::Gone(format!("listed in the outbox's {GONE_ENDPOINTS}")));
        }
        let record = serde_json::json!({ "endpoint_arn": push.endpoint_arn, "title": push.title, "body": push.body });
        Ok(Pushed::Sent(self.append("push.jsonl", record).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::file_safe;

    #[test]
    fn file_names_keep_only_the_address_in_safe_characters() {
        assert_eq!(file_safe("Ana Díaz <ana+news@example.com>"), "ana_news@example.com");
        assert_eq!(file_safe("bob/../x@example.com"), "bob_.._x@example.com");
        assert_eq!(file_safe(&"a".repeat(100)).len(), 40);
    }
}
