//! Configuration from the environment, read once at start: which store, queue and mailer a process uses.
//! A missing or malformed variable is an error that names it; the database URL never shows in `Debug`.

use std::{fmt, path::PathBuf};

/// A value that must not reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueConfig {
    /// `QUEUE_URL` and `DEAD_LETTER_QUEUE_URL`.
    Sqs { url: String, dead_letter_url: String },
    /// The embedded queue, in the SQLite database: no `QUEUE_URL`.
    Embedded { max_receive_count: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailConfig {
    Ses,
    /// `OUTBOX_DIR`: `.eml` files instead of sending.
    Outbox(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `DATABASE_URL`: `postgres://…` or `sqlite://…`.
    pub database_url: Secret,
    pub queue: QueueConfig,
    pub mail: MailConfig,
    /// `MAIL_FROM`: the sender of every email.
    pub mail_from: String,
    /// `SEND_RATE`: sends a second this process may start, across every message it works at once. Unset, SES
    /// is paced to the account's maximum send rate shared among the function's concurrent instances
    /// (`MAX_CONCURRENCY`), and the outbox is not paced.
    pub send_rate: Option<f64>,
    /// `MAX_CONCURRENCY`: how many instances of the function work at once (the SQS event's MaximumConcurrency).
    pub max_concurrency: u32,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    /// The embedded backend on one machine: a SQLite file with its queue, and an outbox folder.
    pub fn embedded(database: &std::path::Path, outbox: PathBuf) -> Self {
        Self {
            database_url: Secret::new(format!("sqlite://{}", database.display())),
            queue: QueueConfig::Embedded { max_receive_count: 5 },
            mail: MailConfig::Outbox(outbox),
            mail_from: "Fitness App <jobs@localhost>".into(),
            send_rate: None,
            max_concurrency: 1,
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| lookup(name).ok_or(ConfigError::Missing(name));
        let database_url = required("DATABASE_URL")?;
        let is_sqlite = database_url.starts_with("sqlite:");
        if !is_sqlite && !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(ConfigError::Invalid {
                name: "DATABASE_URL",
                reason: "expected a postgres:// or sqlite: URL".into(),
            });
        }
        let queue = match lookup("QUEUE_URL") {
            Some(url) => QueueConfig::Sqs { url, dead_letter_url: required("DEAD_LETTER_QUEUE_URL")? },
            None if is_sqlite => QueueConfig::Embedded {
                max_receive_count: match lookup("MAX_RECEIVE_COUNT") {
                    None => 5,
                    Some(n) => n.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                        ConfigError::Invalid { name: "MAX_RECEIVE_COUNT", reason: format!("{n:?} is not 1 to 1000") }
                    })?,
                },
            },
            None => return Err(ConfigError::Missing("QUEUE_URL")),
        };
        let mail = match lookup("OUTBOX_DIR") {
            Some(dir) => MailConfig::Outbox(dir.into()),
            None => MailConfig::Ses,
        };
        let send_rate = match lookup("SEND_RATE") {
            None => None,
            Some(rate) => Some(rate.parse::<f64>().ok().filter(|r| r.is_finite() && *r > 0.0).ok_or_else(|| {
                ConfigError::Invalid { name: "SEND_RATE", reason: format!("{rate:?} is not a positive number") }
            })?),
        };
        let max_concurrency = match lookup("MAX_CONCURRENCY") {
            None => 1,
            Some(n) => n.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| ConfigError::Invalid {
                name: "MAX_CONCURRENCY",
                reason: format!("{n:?} is not 1 to 1000"),
            })?,
        };
        Ok(Self {
            database_url: Secret::new(database_url),
            queue,
            mail,
            mail_from: required("MAIL_FROM")?,
            send_rate,
            max_concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn production_shape_reads_sqs_and_ses() {
        let c = config(&[
            ("DATABASE_URL", "postgres://jobs:hunter2@db.internal/app"),
            ("QUEUE_URL", "https://sqs/q"),
            ("DEAD_LETTER_QUEUE_URL", "https://sqs/dlq"),
            ("MAIL_FROM", "jobs@example.com"),
        ])
        .unwrap();
        assert_eq!(
            c.queue,
            QueueConfig::Sqs { url: "https://sqs/q".into(), dead_letter_url: "https://sqs/dlq".into() }
        );
        assert_eq!(c.mail, MailConfig::Ses);
        assert!(!format!("{c:?}").contains("hunter2"), "the database URL leaked into Debug");
    }

    #[test]
    fn missing_variables_are_named() {
        assert_eq!(config(&[]), Err(ConfigError::Missing("DATABASE_URL")));
        let err = config(&[("DATABASE_URL", "postgres://h/db"), ("MAIL_FROM", "a@b.c")]).unwrap_err();
        assert_eq!(err.to_string(), "environment variable QUEUE_URL is not set");
        let err = config(&[("DATABASE_URL", "postgres://h/db"), ("QUEUE_URL", "q")]).unwrap_err();
        assert_eq!(err, ConfigError::Missing("DEAD_LETTER_QUEUE_URL"));
    }

    #[test]
    fn sqlite_without_a_queue_url_uses_the_embedded_queue() {
        let c = config(&[("DATABASE_URL", "sqlite://x.db"), ("MAIL_FROM", "a@b.c"), ("OUTBOX_DIR", "/tmp/o")]).unwrap();
        assert_eq!(c.queue, QueueConfig::Embedded { max_receive_count: 5 });
        assert_eq!(c.mail, MailConfig::Outbox("/tmp/o".into()));
    }

    #[test]
    fn malformed_values_are_refused() {
        let err = config(&[("DATABASE_URL", "mysql://h/db"), ("MAIL_FROM", "a@b.c")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "DATABASE_URL", .. }));
        let err =
            config(&[("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a"), ("MAX_RECEIVE_COUNT", "0")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "MAX_RECEIVE_COUNT", .. }));
        let err = config(&[("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a"), ("SEND_RATE", "-1")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "SEND_RATE", .. }));
        let err = config(&[("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a"), ("MAX_CONCURRENCY", "0")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "MAX_CONCURRENCY", .. }));
    }

    #[test]
    fn the_send_rate_is_read_when_given() {
        let c = config(&[("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a"), ("SEND_RATE", "14")]).unwrap();
        assert_eq!((c.send_rate, c.max_concurrency), (Some(14.0), 1));
    }
}
