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
    /// An AWS call failed; `fault` says whose failure it is, and so what a retry would achieve.
    #[error("{service}: {message}")]
    Aws { service: &'static str, message: String, fault: Fault },
    #[error("outbox: {0}")]
    Outbox(#[from] std::io::Error),
    #[error("email: {0}")]
    Email(String),
    #[error("configuration: {0}")]
    Config(String),
}

/// Whose failure an AWS call's error is: the runtime's three kinds of error, as the adapters read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Of the moment: throttling, a timeout, a 5xx answer, a service out of reach.
    Retryable,
    /// Of the request: a rejected recipient, a missing queue, a request we built wrong. It fails again.
    Permanent,
    /// Of the sender or the account, whoever the recipient: an unverified sender, sending paused, credentials
    /// refused, the daily quota spent. Retryable once fixed, and no other send of the invocation can pass.
    Sender,
}

impl From<crate::config::ConfigError> for Error {
    fn from(e: crate::config::ConfigError) -> Self {
        Self::Config(e.to_string())
    }
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        let retryable = |yes: bool| if yes { Fault::Retryable } else { Fault::Permanent };
        let fault = match &e {
            Error::Database(db) => retryable(database_retryable(db)),
            Error::Migrate(_) => Fault::Permanent,
            Error::Connect { .. } => Fault::Retryable,
            Error::Aws { fault, .. } => *fault,
            Error::Outbox(_) => Fault::Retryable,
            Error::Email(_) | Error::Config(_) => Fault::Permanent,
        };
        match fault {
            Fault::Retryable => JobError::Retryable(e.to_string()),
            Fault::Permanent => JobError::Permanent(e.to_string()),
            Fault::Sender => JobError::Sender(e.to_string()),
        }
    }
}

/// Lost connections, pool exhaustion and a crashed driver pass; a database error passes when its code says so
/// (`retryable_sqlstate`), or when the server refused the credentials: the secret is read again before the next
/// invocation (`PgStore::renew_credentials`), so a rotation heals. The rest (decode errors, a missing row, bad configuration) would fail again.
fn database_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| crate::postgres::connect::credentials_refused(&code) || retryable_sqlstate(&code)),
        _ => false,
    }
}

/// Whether a database error code names a failure of the moment rather than of the statement. PostgreSQL's
/// SQLSTATEs: every connection exception (class 08); a statement cancelled by its timeout (57014), since the
/// same query usually passes once the load that slowed it is gone; the server shutting down, crashing or not
/// yet accepting connections (57P01, 57P02, 57P03), or closing an idle session (57P05); a read-only transaction (25006), which is what writes meet
/// on a writer demoted by an Aurora failover until the pool reconnects to the new one; a lock not available
/// (55P03, `NOWAIT` or `lock_timeout`); serialization failures and deadlocks (40001, 40P01); too many
/// connections (53300). SQLite's (extended) result codes: busy, locked and busy-snapshot (5, 6, 517). They
/// cannot be mistaken for each other: SQLite's are plain numbers without a leading zero, well below 08000.
/// Everything else (a unique violation 23505, a missing table 42P01, bad input 22P02…) fails the same way again.
fn retryable_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57014"
                | "57P01"
                | "57P02"
                | "57P03"
                | "57P05"
                | "25006"
                | "55P03"
                | "40001"
                | "40P01"
                | "53300"
                | "5"
                | "6"
                | "517"
        )
}

/// Shorthand for adapters: any adapter failure as the runtime's error.
pub(crate) fn job<E: Into<Error>>(e: E) -> JobError {
    JobError::from(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_database_codes_are_retryable() {
        let codes = [
            ("57014", "statement timeout, query cancelled"),
            ("08000", "connection exception"),
            ("08003", "connection does not exist"),
            ("08006", "connection failure"),
            ("08001", "cannot establish a connection"),
            ("08004", "connection rejected"),
            ("08007", "transaction resolution unknown"),
            ("08P01", "protocol violation"),
            ("57P01", "admin shutdown"),
            ("57P02", "crash shutdown"),
            ("57P03", "cannot connect now"),
            ("57P05", "idle session timeout"),
            ("25006", "read-only transaction: a writer demoted by a failover"),
            ("55P03", "lock not available"),
            ("40001", "serialization failure"),
            ("40P01", "deadlock"),
            ("53300", "too many connections"),
            ("5", "SQLite busy"),
            ("6", "SQLite locked"),
            ("517", "SQLite busy snapshot"),
        ];
        for (code, what) in codes {
            assert!(retryable_sqlstate(code), "{code} ({what}) should be retryable");
        }
    }

    #[test]
    fn failures_of_the_statement_itself_are_permanent() {
        // unique violation, undefined table, invalid text representation, syntax error; SQLite's unique
        // violation (2067), constraint violation (19) and plain error (1)
        for code in ["23505", "42P01", "22P02", "42601", "2067", "19", "1", ""] {
            assert!(!retryable_sqlstate(code), "{code} should be permanent");
        }
    }

    #[test]
    fn a_lost_connection_or_an_exhausted_pool_is_retryable() {
        assert!(JobError::from(Error::Database(sqlx::Error::PoolTimedOut)).is_retryable());
        assert!(
            JobError::from(Error::Database(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()))).is_retryable()
        );
        assert!(!JobError::from(Error::Database(sqlx::Error::RowNotFound)).is_retryable());
    }

    #[test]
    fn each_aws_fault_is_its_kind_of_job_error() {
        let aws = |fault| JobError::from(Error::Aws { service: "ses", message: "Code: text".into(), fault });
        assert_eq!(aws(Fault::Retryable), JobError::Retryable("ses: Code: text".into()));
        assert_eq!(aws(Fault::Permanent), JobError::Permanent("ses: Code: text".into()));
        assert_eq!(aws(Fault::Sender), JobError::Sender("ses: Code: text".into()));
    }
}
