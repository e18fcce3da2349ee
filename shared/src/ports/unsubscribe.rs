//! Unsubscribing from a kind of email through a one-click link, each link once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{ports::Kind, Result};

/// How an unsubscribe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribed {
    /// The user gets no more email of that kind.
    Done,
    /// The link's nonce was used before: nothing changed.
    AlreadyUsed,
    /// The user no longer exists: nothing changed.
    NoSuchUser,
}

#[async_trait]
pub trait Unsubscribes: Send + Sync {
    /// In one transaction: records `nonce` as used and turns off `kind` emails for the user (the
    /// `preferences` row of the email channel), or changes nothing if the nonce was used or the user is gone.
    async fn unsubscribe(&self, nonce: &str, user_id: i64, kind: Kind, at: DateTime<Utc>) -> Result<Unsubscribed>;
}
