//! The embedded store: SQLite through sqlx, the default on a laptop and in the demo. Lists of keys travel as
//! one JSON parameter read with `json_each`, so every port call is a constant number of statements, as on
//! PostgreSQL with arrays.

use std::{collections::HashMap, str::FromStr, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use shared::{
    ports::normalise,
    ports::{
        ActivityStore, AppWriter, Choice, ClaimState, Contact, Contacts, DayActivity, DeliveryKey, Device, Kind,
        Ledger, NewUser, NewWorkout, Progress, RunPart, RunRecord, RunStart, RunStore, Settled, SkippedSlot,
        SuppressedAddress, Suppression, Suppressions, Unsubscribed, Unsubscribes, WorkTally,
    },
    Result,
};
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Row, SqlitePool,
};

use crate::{
    error::job,
    store::{activity, claims, contact_rows, run_rows, suppression_rows},
    Error,
};

/// The SQLite schema: app tables, job tables and the embedded queue's tables.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The one text form of timestamps in SQLite: fixed width, so comparing the text compares the times.
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn parse_stamp(text: &str) -> std::result::Result<DateTime<Utc>, sqlx::Error> {
    DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

pub(crate) fn later(now: DateTime<Utc>, by: Duration) -> String {
    stamp(now + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX))
}

/// Prepared statements kept per connection: more than the store and the queue have.
const STATEMENT_CACHE: usize = 512;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file the URL names. Does not migrate: see `migrate`.
    pub async fn connect(url: &str) -> std::result::Result<Self, Error> {
        let unreachable = |e: sqlx::Error| Error::Connect { target: url.to_owned(), message: e.to_string() };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(unreachable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Every statement the store and the queue run stays prepared (sqlx's default keeps 100).
            .statement_cache_capacity(STATEMENT_CACHE)
            // Sorts and temporary b-trees in memory, and 16 MiB of page cache (2 MiB by default).
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16384");
        // One connection: SQLite lets one writer in at a time, and a second connection's write waits in SQLite's
        // busy handler, which sleeps (1 ms, 2 ms, 5 ms…) rather than being woken. Through one connection the
        // process's statements take turns without sleeping; other processes still wait on the busy timeout.
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.map_err(unreachable)?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> std::result::Result<(), Error> {
        Ok(MIGRATOR.run(&self.pool).await?)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

mod app;
mod contacts;
mod fitness;
mod history;
mod ledger;
mod maintenance;
mod progress;
mod requests;
mod runs;
mod shop;
mod suppressions;
mod unsubscribes;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn a_claim_searches_each_of_its_keys_rather_than_walk_the_tasks_ledger() {
        let db = std::env::temp_dir().join(format!("plan-{}.db", uuid::Uuid::new_v4()));
        let store = SqliteStore::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        store.migrate().await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {}", ledger::CLAIM_STATUSES))
                .bind("daily-summary")
                .bind(r#"[["user:1","2026-01-01"]]"#)
                .fetch_all(store.pool())
                .await
                .unwrap();
        let steps: Vec<&str> = plan.iter().map(|(.., detail)| detail.as_str()).collect();
        assert!(steps[0].starts_with("SCAN k"), "{steps:?}");
        assert!(
            steps[1].starts_with("SEARCH d") && steps[1].contains("(task=? AND subject=? AND period=?)"),
            "{steps:?}"
        );
        store.pool().close().await;
        for file in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{file}", db.display()));
        }
    }

    #[test]
    fn stamps_compare_as_text_in_time_order() {
        let a = Utc.with_ymd_and_hms(2026, 11, 22, 9, 59, 59).unwrap();
        let b = a + chrono::Duration::microseconds(1);
        let c = a + chrono::Duration::seconds(1);
        let (sa, sb, sc) = (stamp(a), stamp(b), stamp(c));
        assert_eq!(sa, "2026-11-22T09:59:59.000000Z");
        assert_eq!(sa.len(), sc.len());
        assert!(sa < sb && sb < sc);
    }
}
