//! The mailer port on a folder: each email becomes a `.eml` file any mail client opens, the local stand-in for
//! SES.

use async_trait::async_trait;
use shared::ports::{Email, Mailer};
use shared::Result;
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
