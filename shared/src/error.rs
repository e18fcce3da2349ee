//! The one error type of the domain and the runtime: whether a failure is worth retrying is part of its type.

/// A failure, classified by what a retry would achieve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Worth another try later: throttling, timeouts, 5xx answers, a lost connection.
    #[error("{0}")]
    Retryable(String),
    /// Fails the same way every time: a malformed message, an unknown subject or task, a rejected address.
    #[error("{0}")]
    Permanent(String),
    /// The sender or the account cannot send to anyone (an unverified sender, sending paused, access denied,
    /// the daily quota spent): no recipient is at fault. It stops every send of the invocation, comes back as
    /// retryable so a redrive after the fix sends what is left, and raises an alarm.
    #[error("{0}")]
    Sender(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable(message.into())
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent(message.into())
    }

    pub fn sender(message: impl Into<String>) -> Self {
        Self::Sender(message.into())
    }

    /// Whether the work can succeed later as it is: everything but a permanent failure.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Permanent(_))
    }
}
