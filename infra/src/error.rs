//! The adapters' error type, and how each failure maps onto the runtime's retryable / permanent split.

use shared::Error as JobError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database could not be reached or opened; `target` names it without its password.
    #[error("cannot connect to the database {target}: {message}")]
    Connect { target: String, message: String },
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// An AWS call failed; `retryable` says whether the SDK classed it as throttling, a timeout or a 5xx.
    #[error("{service}: {message}")]
    Aws { service: &'static str, message: String, retryable: bool },
    #[error("outbox: {0}")]
    Outbox(#[from] std::io::Error),
    #[error("email: {0}")]
    Email(String),
    #[error("configuration: {0}")]
    Config(String),
}

impl From<crate::config::ConfigError> for Error {
    fn from(e: crate::config::ConfigError) -> Self {
        Self::Config(e.to_string())
    }
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        let retryable = match &e {
            Error::Database(db) => database_retryable(db),
            Error::Migrate(_) => false,
            Error::Connect { .. } => true,
            Error::Aws { retryable, .. } => *retryable,
            Error::Outbox(_) => true,
            Error::Email(_) | Error::Config(_) => false,
        };
        if retryable {
            JobError::Retryable(e.to_string())
        } else {
            JobError::Permanent(e.to_string())
        }
    }
}

/// Lost connections, pool exhaustion, serialization failures, deadlocks and a busy SQLite file pass; the
/// rest (constraint violations, bad SQL, decode errors) would fail again.
fn database_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("40001") | Some("40P01") | Some("57P01") | Some("53300") | Some("5") | Some("6") | Some("517")
        ),
        _ => false,
    }
}

/// Shorthand for adapters: any adapter failure as the runtime's error.
pub(crate) fn job<E: Into<Error>>(e: E) -> JobError {
    JobError::from(e.into())
}
