//! The app's rows the cleanup tasks delete: which rows a sweep takes (`Sweep`), the store that cuts them into
//! ranges and deletes them in short batches (`Sweeper`), and the app's side, for seeding and counting
//! (`MaintenanceWriter`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{ports::RunPart, Result};

/// One kind of row a cleanup deletes: a table of the app's, the column its age is read from, and a condition
/// of its own. Every swept table is keyed by `id BIGINT`. The store knows each sweep's SQL; the tasks know its
/// name, and the README says what each deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sweep {
    /// Carts with no items, not updated since the cutoff.
    EmptyCarts,
    /// Carts with items, not updated since the cutoff; their items go with them (ON DELETE CASCADE).
    FilledCarts,
    /// `password_reset_tokens` expired before the cutoff.
    PasswordResetTokens,
    /// `email_verification_tokens` expired before the cutoff.
    EmailVerificationTokens,
    /// `otp_codes` expired before the cutoff.
    OtpCodes,
    /// `sessions` last seen before the cutoff.
    IdleSessions,
    /// `audit_logs` written before the cutoff.
    AuditLogs,
    /// `temp_uploads` rows written before the cutoff (their files expire by the bucket's own lifecycle rule).
    TempUploads,
}

impl Sweep {
    pub const ALL: [Sweep; 8] = [
        Self::EmptyCarts,
        Self::FilledCarts,
        Self::PasswordResetTokens,
        Self::EmailVerificationTokens,
        Self::OtpCodes,
        Self::IdleSessions,
        Self::AuditLogs,
        Self::TempUploads,
    ];

    /// Its name in a planned message, the logs and the run's errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::EmptyCarts => "empty-carts",
            Self::FilledCarts => "filled-carts",
            Self::PasswordResetTokens => "password-reset-tokens",
            Self::EmailVerificationTokens => "email-verification-tokens",
            Self::OtpCodes => "otp-codes",
            Self::IdleSessions => "idle-sessions",
            Self::AuditLogs => "audit-logs",
            Self::TempUploads => "temp-uploads",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|sweep| sweep.name() == name)
    }

    /// The table it deletes from.
    pub fn table(self) -> Swept {
        match self {
            Self::EmptyCarts | Self::FilledCarts => Swept::Carts,
            Self::PasswordResetTokens => Swept::PasswordResetTokens,
            Self::EmailVerificationTokens => Swept::EmailVerificationTokens,
            Self::OtpCodes => Swept::OtpCodes,
            Self::IdleSessions => Swept::Sessions,
            Self::AuditLogs => Swept::AuditLogs,
            Self::TempUploads => Swept::TempUploads,
        }
    }
}

impl std::fmt::Display for Sweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The app's tables the sweeps delete from, as seeding and counting name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Swept {
    Carts,
    PasswordResetTokens,
    EmailVerificationTokens,
    OtpCodes,
    Sessions,
    AuditLogs,
    TempUploads,
}

impl Swept {
    pub const ALL: [Swept; 7] = [
        Self::Carts,
        Self::PasswordResetTokens,
        Self::EmailVerificationTokens,
        Self::OtpCodes,
        Self::Sessions,
        Self::AuditLogs,
        Self::TempUploads,
    ];
}

/// Ids `lo ..= hi` of one sweep's table holding `candidates` rows due for deletion when the plan looked: one
/// planned message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: i64,
    pub hi: i64,
    pub candidates: u64,
}

/// What one delete transaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    /// Candidates it picked: at most the batch's limit. Fewer means the range has no more (on PostgreSQL, none
    /// but rows the app held locked at that moment, which are left as touched).
    pub picked: u64,
    /// Rows it deleted: the picked ones still due when deleted.
    pub deleted: u64,
    /// The last id it picked: where the next batch starts. None when it picked nothing.
    pub last_seen: Option<i64>,
    /// Rows deleted for this run message so far, every delivery of the message and this batch included.
    pub message_deleted_total: u64,
}

/// What one delete transaction may take: at most `limit` rows of `sweep` with `after < id <= hi`, due before
/// `cutoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub sweep: Sweep,
    pub cutoff: DateTime<Utc>,
    pub after: i64,
    pub hi: i64,
    pub limit: u32,
}

/// Where the cleanup tasks delete: ranges planned in one set-based statement per sweep, and short delete
/// transactions that re-check every row and count what they delete into the run in the same transaction.
#[async_trait]
pub trait Sweeper: Send + Sync {
    /// The rows of `sweep` due for deletion before `cutoff`, cut in id order into ranges of at most
    /// `max_rows_per_range` candidates each, in one statement.
    async fn ranges(&self, sweep: Sweep, cutoff: DateTime<Utc>, max_rows_per_range: u32) -> Result<Vec<Range>>;
    /// In one short transaction: picks the rows `pick` names still due, in id order (on PostgreSQL skipping
    /// rows the app holds locked), deletes those still due (the age and the sweep's condition checked again in
    /// the delete itself), and counts the deletions as sent in `run`'s message of `task`.
    async fn sweep_batch(&self, pick: &Pick, task: &str, run: RunPart) -> Result<Batch>;
}

/// A cart as the app creates it, for seeding: `items` lines, all written at `updated_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewCart {
    /// None: a guest's cart.
    pub user_id: Option<i64>,
    pub items: u32,
    pub updated_at: DateTime<Utc>,
}

/// A row of one of the other swept tables, for seeding: its owner (the user of a token, code, session or
/// upload, the actor of an audit log) and the value of its age column (a token's or code's `expires_at`, a
/// session's `last_seen_at`, a log's or upload's `created_at`). The store fills the rest as the app would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRow {
    /// Tokens, codes and sessions need a user; audit logs and uploads may have none.
    pub owner: Option<i64>,
    pub at: DateTime<Utc>,
}

/// The app's side of the swept tables: what seeds the demo, the tests and the benchmarks, and what they count
/// back.
#[async_trait]
pub trait MaintenanceWriter: Send + Sync {
    /// Inserts carts and their items; their ids, in order.
    async fn add_carts(&self, carts: &[NewCart]) -> Result<Vec<i64>>;
    /// Inserts rows into one of the swept tables other than carts; their ids, in order.
    async fn add_rows(&self, table: Swept, rows: &[NewRow]) -> Result<Vec<i64>>;
    /// Adds an item to a cart at `at`, bumping the cart's `updated_at` as the app does on any change to a cart
    /// or its items.
    async fn add_cart_item(&self, cart: i64, at: DateTime<Utc>) -> Result<()>;
    /// Sets the age column of these rows to `at`, as the app does when a cart changes, a session is used or a
    /// token is extended.
    async fn touch(&self, table: Swept, ids: &[i64], at: DateTime<Utc>) -> Result<()>;
    /// The ids left in a table, in order.
    async fn ids(&self, table: Swept) -> Result<Vec<i64>>;
    /// How many rows a table has.
    async fn count(&self, table: Swept) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sweep_reads_back_from_its_name() {
        for sweep in Sweep::ALL {
            assert_eq!(Sweep::parse(sweep.name()), Some(sweep));
        }
        assert_eq!(Sweep::parse("carts"), None);
        let tables: std::collections::BTreeSet<Swept> = Sweep::ALL.into_iter().map(Sweep::table).collect();
        assert_eq!(tables.len(), Swept::ALL.len(), "every swept table has a sweep");
    }
}
