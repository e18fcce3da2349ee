//! Configuration from the environment, read once at start: which store, queue and mailer a process uses, and
//! how unsubscribe links are signed. A missing or malformed variable is an error that names it; the database
//! URL and the signing key never show in `Debug`.

use shared::tasks::{
    fitness::inactivity_reminders::DEFAULT_DAYS,
    maintenance::{
        cleanup::Ages,
        job_history_retention::{self, Retention},
    },
};
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
    Embedded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailConfig {
    Ses,
    /// `OUTBOX_DIR`: `.eml` files instead of sending.
    Outbox(PathBuf),
}

/// Where a secret comes from: the database URL, the unsubscribe links' HMAC key, the vision model's API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `NAME`: the value itself, locally.
    Value(Secret),
    /// `NAME_SECRET_ARN`: a Secrets Manager secret, read at cold start (`infra::secrets`); the database's again
    /// whenever the server refuses it.
    SecretArn(String),
}

/// Where the app uploads meal photos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadsConfig {
    /// `UPLOADS_BUCKET`: the S3 bucket.
    Bucket(String),
    /// `UPLOADS_DIR`: a local folder playing the bucket.
    Dir(PathBuf),
}

/// `FOOD_MODEL_URL`: the vision model food recognition asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoodModelConfig {
    /// `samples`: the embedded model, which knows only the sample photos.
    Samples,
    /// An OpenAI-compatible chat-completions API at this base URL.
    Http {
        url: String,
        /// `FOOD_MODEL`: the model's name, e.g. `gpt-4o-mini`.
        model: String,
        /// `FOOD_MODEL_API_KEY` locally, else `FOOD_MODEL_API_KEY_SECRET_ARN`, read at run time.
        key: KeySource,
        /// `FOOD_MODEL_TIMEOUT_SECONDS`: the longest one call may take; 30 unless set.
        timeout: std::time::Duration,
    },
}

/// `PAYMENT_GATEWAY`: the gateway the shop charges through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentsConfig {
    /// `fake`: the embedded gateway (`infra::payments`), which charges nothing real; beside an outbox, its
    /// charges are kept in `charges.jsonl` there.
    Fake,
}

/// What a task needs to put unsubscribe links in its emails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinksConfig {
    pub key: KeySource,
    /// `UNSUBSCRIBE_URL`: the unsubscribe function's public URL.
    pub unsubscribe_url: String,
    /// `PREFERENCES_URL`: the app's page where users choose what they get.
    pub preferences_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `DATABASE_URL` (`postgres://…` or `sqlite://…`) or `DATABASE_URL_SECRET_ARN`.
    pub database: KeySource,
    pub queue: QueueConfig,
    /// `MAX_RECEIVE_COUNT`: the queue's maxReceiveCount (5 unless set): how often a message is received before
    /// the dead-letter queue takes it, on the embedded queue as on SQS.
    pub max_receive_count: u32,
    pub mail: MailConfig,
    /// `MAIL_FROM`: the sender of every email.
    pub mail_from: String,
    /// `MAIL_CONFIGURATION_SET`: the SES configuration set every email is sent with (its event destination
    /// publishes bounces and complaints to mail-feedback); unset, none. The outbox ignores it.
    pub mail_configuration_set: Option<String>,
    /// `SEND_RATE`: sends a second this process may start, across every message it works at once. Unset, SES
    /// is paced to the account's maximum send rate shared among the function's concurrent instances
    /// (`MAX_CONCURRENCY`), and the outbox is not paced.
    pub send_rate: Option<f64>,
    /// False for a function whose task sends nothing (`shared::tasks::SENDERS`): it reads no SES send quota,
    /// which it has no permission to. True unless `lambda::serve` says otherwise.
    pub sends: bool,
    /// `MAX_CONCURRENCY`: how many instances of the function work at once (the SQS event's MaximumConcurrency).
    pub max_concurrency: u32,
    /// Set when `UNSUBSCRIBE_URL` is, with the key then required.
    pub links: Option<LinksConfig>,
    /// `INACTIVITY_DAYS`: days without a workout before an inactivity reminder; 3 unless set.
    pub inactivity_days: u32,
    /// Unset: subscription-processing refuses to run (no real provider's adapter is written yet).
    pub payments: Option<PaymentsConfig>,
    /// `EVENT_BUS_NAME`: the EventBridge bus order events (and `jobs trigger`'s triggers) go to; unset, order
    /// events go straight onto the order notifications' embedded queue.
    pub event_bus: Option<String>,
    /// `SHOP_URL`: the shop's web address, under which each customer manages their subscriptions; unset, the
    /// shop's emails send them to the app instead of linking.
    pub shop_url: Option<String>,
    /// `JOB_HISTORY_RETENTION_DAYS`: days of job history kept; 90 unless set, never less than a message can
    /// still arrive in (`Retention::minimum`).
    pub history_days: u32,
    /// `CART_MAX_AGE_DAYS` (30), `AUDIT_LOG_RETENTION_DAYS` (90), `SESSION_IDLE_DAYS` (30): how old the app's
    /// rows are when the cleanup tasks delete them.
    pub cleanup_ages: Ages,
    pub uploads: Option<UploadsConfig>,
    pub food_model: Option<FoodModelConfig>,
}

/// The unsubscribe function's configuration: it needs no queue and no mailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeConfig {
    /// `DATABASE_URL` or `DATABASE_URL_SECRET_ARN`.
    pub database: KeySource,
    pub key: KeySource,
}

/// The mail-feedback function's configuration: only the database the suppression list is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFeedbackConfig {
    /// `DATABASE_URL` or `DATABASE_URL_SECRET_ARN`.
    pub database: KeySource,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// Neither a key nor the ARN of the secret holding it.
    #[error("environment variable {0} (or {0}_SECRET_ARN) is not set")]
    MissingKey(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    /// The embedded backend on one machine: a SQLite file with its queue, and an outbox folder.
    pub fn embedded(database: &std::path::Path, outbox: PathBuf) -> Self {
        Self {
            database: KeySource::Value(Secret::new(format!("sqlite://{}", database.display()))),
            queue: QueueConfig::Embedded,
            max_receive_count: 5,
            uploads: Some(UploadsConfig::Dir(outbox.with_file_name("uploads"))),
            food_model: Some(FoodModelConfig::Samples),
            mail: MailConfig::Outbox(outbox),
            mail_from: "Fitness App <jobs@localhost>".into(),
            mail_configuration_set: None,
            send_rate: None,
            sends: true,
            max_concurrency: 1,
            links: None,
            inactivity_days: DEFAULT_DAYS,
            payments: Some(PaymentsConfig::Fake),
            event_bus: None,
            shop_url: None,
            history_days: job_history_retention::DEFAULT_DAYS,
            cleanup_ages: Ages::default(),
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| lookup(name).ok_or(ConfigError::Missing(name));
        let database = database(&lookup)?;
        let is_sqlite = matches!(&database, KeySource::Value(url) if url.expose().starts_with("sqlite:"));
        let queue = match lookup("QUEUE_URL") {
            Some(url) => QueueConfig::Sqs { url, dead_letter_url: required("DEAD_LETTER_QUEUE_URL")? },
            None if is_sqlite => QueueConfig::Embedded,
            None => return Err(ConfigError::Missing("QUEUE_URL")),
        };
        let max_receive_count = match lookup("MAX_RECEIVE_COUNT") {
            None => 5,
            Some(n) => n.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| ConfigError::Invalid {
                name: "MAX_RECEIVE_COUNT",
                reason: format!("{n:?} is not 1 to 1000"),
            })?,
        };
        let uploads = match (lookup("UPLOADS_BUCKET"), lookup("UPLOADS_DIR")) {
            (Some(bucket), _) => Some(UploadsConfig::Bucket(bucket)),
            (None, Some(dir)) => Some(UploadsConfig::Dir(dir.into())),
            (None, None) => None,
        };
        let food_model = food_model(&lookup)?;
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
        let links = match lookup("UNSUBSCRIBE_URL") {
            None => None,
            Some(unsubscribe_url) => Some(LinksConfig {
                key: key_source(&lookup, "UNSUBSCRIBE_KEY")?,
                unsubscribe_url,
                preferences_url: lookup("PREFERENCES_URL"),
            }),
        };
        let inactivity_days = match lookup("INACTIVITY_DAYS") {
            None => DEFAULT_DAYS,
            // Zero would remind everyone every day, on the day they trained too.
            Some(n) => n.parse().ok().filter(|n| (1..=365).contains(n)).ok_or_else(|| ConfigError::Invalid {
                name: "INACTIVITY_DAYS",
                reason: format!("{n:?} is not a whole number of days from 1 to 365"),
            })?,
        };
        let payments = match lookup("PAYMENT_GATEWAY").as_deref() {
            None => None,
            Some("fake") => Some(PaymentsConfig::Fake),
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "PAYMENT_GATEWAY",
                    reason: format!("{other:?} is not a gateway this code has (fake)"),
                })
            }
        };
        let shop_url = match lookup("SHOP_URL") {
            None => None,
            // Every customer's link starts with it: a typo would send them all somewhere else.
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => Some(url),
            Some(url) => {
                return Err(ConfigError::Invalid {
                    name: "SHOP_URL",
                    reason: format!("{url:?} is not an http:// or https:// address"),
                })
            }
        };
        let history_days = match lookup("JOB_HISTORY_RETENTION_DAYS") {
            None => job_history_retention::DEFAULT_DAYS,
            Some(n) => n
                .parse::<i64>()
                .map_err(|_| format!("{n:?} is not a whole number of days"))
                .and_then(|days| Retention::days(days).map_err(|e| e.to_string()))
                .map_err(|reason| ConfigError::Invalid { name: "JOB_HISTORY_RETENTION_DAYS", reason })?
                .in_days(),
        };
        let defaults = Ages::default();
        let cleanup_ages = Ages {
            cart_days: days(&lookup, "CART_MAX_AGE_DAYS", defaults.cart_days)?,
            audit_log_days: days(&lookup, "AUDIT_LOG_RETENTION_DAYS", defaults.audit_log_days)?,
            session_idle_days: days(&lookup, "SESSION_IDLE_DAYS", defaults.session_idle_days)?,
        };
        Ok(Self {
            database,
            queue,
            mail,
            mail_from: required("MAIL_FROM")?,
            mail_configuration_set: lookup("MAIL_CONFIGURATION_SET"),
            send_rate,
            sends: true,
            max_concurrency,
            links,
            inactivity_days,
            payments,
            event_bus: lookup("EVENT_BUS_NAME"),
            shop_url,
            history_days,
            cleanup_ages,
            max_receive_count,
            uploads,
            food_model,
        })
    }
}

impl UnsubscribeConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self { database: database(&lookup)?, key: key_source(&lookup, "UNSUBSCRIBE_KEY")? })
    }
}

impl MailFeedbackConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Everything it reads, in one place: the database, as every function reads it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self { database: database(&lookup)? })
    }
}

/// `DATABASE_URL`, of a backend there is, or `DATABASE_URL_SECRET_ARN`, the secret holding PostgreSQL's.
fn database(lookup: &impl Fn(&str) -> Option<String>) -> Result<KeySource, ConfigError> {
    let source = key_source(lookup, "DATABASE_URL")?;
    if let KeySource::Value(url) = &source {
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|scheme| url.expose().starts_with(scheme)) {
            return Err(ConfigError::Invalid {
                name: "DATABASE_URL",
                reason: "expected a postgres:// or sqlite: URL".into(),
            });
        }
    }
    Ok(source)
}

/// The longest age a cleanup may be configured with: ten years. More is a typo (a value in hours, an extra
/// digit), and would keep everything anyway.
const MAX_AGE_DAYS: u32 = 3650;

/// A cleanup's age in whole days from `name`, or `default` when unset. Zero would delete rows the moment the
/// app wrote them (every cart, every session): refused, as is anything not a whole number of days in range.
fn days(lookup: &impl Fn(&str) -> Option<String>, name: &'static str, default: u32) -> Result<u32, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        Some(n) => {
            n.trim().parse().ok().filter(|n| (1..=MAX_AGE_DAYS).contains(n)).ok_or_else(|| ConfigError::Invalid {
                name,
                reason: format!("{n:?} is not a whole number of days from 1 to {MAX_AGE_DAYS}"),
            })
        }
    }
}

/// `FOOD_MODEL_URL` (`samples`, or an http(s) base URL with `FOOD_MODEL` and its key), if set.
fn food_model(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<FoodModelConfig>, ConfigError> {
    let url = match lookup("FOOD_MODEL_URL") {
        None => return Ok(None),
        Some(url) if url == "samples" => return Ok(Some(FoodModelConfig::Samples)),
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => url,
        Some(url) => {
            return Err(ConfigError::Invalid {
                name: "FOOD_MODEL_URL",
                reason: format!("{url:?} is neither `samples` nor an http:// or https:// address"),
            })
        }
    };
    let key = key_source(lookup, "FOOD_MODEL_API_KEY")?;
    let timeout = match lookup("FOOD_MODEL_TIMEOUT_SECONDS") {
        None => 30,
        Some(n) => n.parse().ok().filter(|n| (1..=300).contains(n)).ok_or_else(|| ConfigError::Invalid {
            name: "FOOD_MODEL_TIMEOUT_SECONDS",
            reason: format!("{n:?} is not a whole number of seconds from 1 to 300"),
        })?,
    };
    Ok(Some(FoodModelConfig::Http {
        url,
        model: lookup("FOOD_MODEL").ok_or(ConfigError::Missing("FOOD_MODEL"))?,
        key,
        timeout: std::time::Duration::from_secs(timeout),
    }))
}

/// The key `name` locally, else the secret `<name>_SECRET_ARN` holding it.
fn key_source(lookup: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<KeySource, ConfigError> {
    match (lookup(name), lookup(&format!("{name}_SECRET_ARN"))) {
        (Some(key), _) => Ok(KeySource::Value(Secret::new(key))),
        (None, Some(arn)) => Ok(KeySource::SecretArn(arn)),
        (None, None) => Err(ConfigError::MissingKey(name)),
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
        assert_eq!(config(&[]), Err(ConfigError::MissingKey("DATABASE_URL")));
        let err = config(&[("DATABASE_URL", "postgres://h/db"), ("MAIL_FROM", "a@b.c")]).unwrap_err();
        assert_eq!(err.to_string(), "environment variable QUEUE_URL is not set");
        let err = config(&[("DATABASE_URL", "postgres://h/db"), ("QUEUE_URL", "q")]).unwrap_err();
        assert_eq!(err, ConfigError::Missing("DEAD_LETTER_QUEUE_URL"));
    }

    #[test]
    fn sqlite_without_a_queue_url_uses_the_embedded_queue() {
        let c = config(&[("DATABASE_URL", "sqlite://x.db"), ("MAIL_FROM", "a@b.c"), ("OUTBOX_DIR", "/tmp/o")]).unwrap();
        assert_eq!((&c.queue, c.max_receive_count), (&QueueConfig::Embedded, 5));
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
    fn unsubscribe_links_need_a_key_which_never_shows() {
        let base = [("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a")];
        assert_eq!(config(&base).unwrap().links, None);
        let err = config(&[base[0], base[1], ("UNSUBSCRIBE_URL", "https://u.example/")]).unwrap_err();
        assert_eq!(err.to_string(), "environment variable UNSUBSCRIBE_KEY (or UNSUBSCRIBE_KEY_SECRET_ARN) is not set");
        let c = config(&[base[0], base[1], ("UNSUBSCRIBE_URL", "https://u.example/"), ("UNSUBSCRIBE_KEY", "s3cret")])
            .unwrap();
        let links = c.links.as_ref().unwrap();
        assert_eq!(links.key, KeySource::Value(Secret::new("s3cret")));
        assert!(!format!("{c:?}").contains("s3cret"), "the key leaked into Debug");
    }

    #[test]
    fn the_unsubscribe_function_needs_only_the_database_and_the_key() {
        let vars: HashMap<&str, &str> =
            [("DATABASE_URL", "postgres://h/db"), ("UNSUBSCRIBE_KEY_SECRET_ARN", "arn:aws:secretsmanager:k")].into();
        let c = UnsubscribeConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.key, KeySource::SecretArn("arn:aws:secretsmanager:k".into()));
        let err = UnsubscribeConfig::from_lookup(|_| None).unwrap_err();
        assert_eq!(err, ConfigError::MissingKey("DATABASE_URL"));
    }

    #[test]
    fn inactivity_days_default_to_three_and_a_malformed_value_is_named() {
        let base = [("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a")];
        assert_eq!(config(&base).unwrap().inactivity_days, 3);
        assert_eq!(config(&[base[0], base[1], ("INACTIVITY_DAYS", "7")]).unwrap().inactivity_days, 7);
        for bad in ["0", "-2", "three", "2.5", "366"] {
            let err = config(&[base[0], base[1], ("INACTIVITY_DAYS", bad)]).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { name: "INACTIVITY_DAYS", .. }), "{bad}: {err:?}");
            assert!(err.to_string().contains("INACTIVITY_DAYS"), "{err}");
        }
    }

    #[test]
    fn a_job_history_retention_shorter_than_a_redelivery_is_refused_with_why() {
        let base = [("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a")];
        assert_eq!(config(&base).unwrap().history_days, 90);
        assert_eq!(config(&[base[0], base[1], ("JOB_HISTORY_RETENTION_DAYS", "400")]).unwrap().history_days, 400);
        for (bad, why) in
            [("0", "every job's history"), ("-3", "every job's history"), ("7", "send it twice"), ("x", "whole")]
        {
            let err = config(&[base[0], base[1], ("JOB_HISTORY_RETENTION_DAYS", bad)]).unwrap_err().to_string();
            assert!(err.contains("JOB_HISTORY_RETENTION_DAYS") && err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn the_payment_gateway_is_named_or_absent() {
        let base = [("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a")];
        assert_eq!(config(&base).unwrap().payments, None);
        assert_eq!(
            config(&[base[0], base[1], ("PAYMENT_GATEWAY", "fake")]).unwrap().payments,
            Some(PaymentsConfig::Fake)
        );
        let err = config(&[base[0], base[1], ("PAYMENT_GATEWAY", "stripe")]).unwrap_err();
        assert!(err.to_string().contains("PAYMENT_GATEWAY") && err.to_string().contains("stripe"), "{err}");
    }

    #[test]
    fn the_shop_url_is_optional_and_must_be_a_web_address() {
        let base = [("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a")];
        assert_eq!(config(&base).unwrap().shop_url, None);
        let c = config(&[base[0], base[1], ("SHOP_URL", "https://shop.example")]).unwrap();
        assert_eq!(c.shop_url.as_deref(), Some("https://shop.example"));
        let err = config(&[base[0], base[1], ("SHOP_URL", "shop.example")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "SHOP_URL", .. }), "{err:?}");
    }

    #[test]
    fn the_cleanups_ages_default_and_a_bad_one_is_refused_naming_it() {
        let base = [("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a")];
        assert_eq!(config(&base).unwrap().cleanup_ages, Ages::default());
        let c = config(&[base[0], base[1], ("CART_MAX_AGE_DAYS", "7"), ("AUDIT_LOG_RETENTION_DAYS", "365")]).unwrap();
        assert_eq!(c.cleanup_ages, Ages { cart_days: 7, audit_log_days: 365, session_idle_days: 30 });
        for name in ["CART_MAX_AGE_DAYS", "AUDIT_LOG_RETENTION_DAYS", "SESSION_IDLE_DAYS"] {
            for bad in ["0", "-30", "thirty", "2.5", "3651", "30d"] {
                let err = config(&[base[0], base[1], (name, bad)]).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    format!(
                        "environment variable {name} is invalid: {bad:?} is not a whole number of days from 1 to 3650"
                    )
                );
            }
        }
    }

    #[test]
    fn the_food_model_is_the_samples_or_an_api_with_its_model_and_a_key_that_never_shows() {
        let base = [("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a")];
        assert_eq!(config(&base).unwrap().food_model, None);
        let samples = config(&[base[0], base[1], ("FOOD_MODEL_URL", "samples")]).unwrap();
        assert_eq!(samples.food_model, Some(FoodModelConfig::Samples));
        let api = [base[0], base[1], ("FOOD_MODEL_URL", "https://api.example/v1"), ("FOOD_MODEL", "vision-1")];
        let err = config(&api).unwrap_err().to_string();
        assert!(err.contains("FOOD_MODEL_API_KEY (or FOOD_MODEL_API_KEY_SECRET_ARN)"), "{err}");
        let c = config(&[api[0], api[1], api[2], api[3], ("FOOD_MODEL_API_KEY", "sk-hunter2")]).unwrap();
        assert_eq!(
            c.food_model,
            Some(FoodModelConfig::Http {
                url: "https://api.example/v1".into(),
                model: "vision-1".into(),
                key: KeySource::Value(Secret::new("sk-hunter2")),
                timeout: std::time::Duration::from_secs(30),
            })
        );
        assert!(!format!("{c:?}").contains("hunter2"), "the key leaked into Debug");
        let arn = [api[0], api[1], api[2], ("FOOD_MODEL_API_KEY_SECRET_ARN", "arn:k")];
        assert_eq!(config(&arn).unwrap_err(), ConfigError::Missing("FOOD_MODEL"));
        for (name, bad) in [("FOOD_MODEL_URL", "api.example"), ("FOOD_MODEL_TIMEOUT_SECONDS", "0")] {
            let err = config(&[api[0], api[1], api[2], api[3], arn[3], (name, bad)]).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { name: n, .. } if n == name), "{name}: {err:?}");
        }
    }

    #[test]
    fn the_mail_configuration_set_is_optional() {
        let base = [("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a")];
        assert_eq!(config(&base).unwrap().mail_configuration_set, None);
        let c = config(&[base[0], base[1], ("MAIL_CONFIGURATION_SET", "jobs-feedback")]).unwrap();
        assert_eq!(c.mail_configuration_set.as_deref(), Some("jobs-feedback"));
    }

    #[test]
    fn the_mail_feedback_function_needs_only_the_database() {
        let c = MailFeedbackConfig::from_lookup(|k| (k == "DATABASE_URL").then(|| "postgres://h/db".into())).unwrap();
        assert_eq!(c.database, KeySource::Value(Secret::new("postgres://h/db")));
        assert!(!format!("{c:?}").contains("postgres://"), "the URL leaked into Debug");
        assert_eq!(MailFeedbackConfig::from_lookup(|_| None).unwrap_err(), ConfigError::MissingKey("DATABASE_URL"));
    }

    #[test]
    fn the_send_rate_is_read_when_given() {
        let c = config(&[("DATABASE_URL", "sqlite://x"), ("MAIL_FROM", "a"), ("SEND_RATE", "14")]).unwrap();
        assert_eq!((c.send_rate, c.max_concurrency), (Some(14.0), 1));
    }
}
