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
        Ledger, NewUser, NewWorkout, PlanHistory, RunPart, RunRecord, RunStart, RunStore, Settled, SkippedSlot,
        SuppressedAddress, Suppression, Suppressions, Unsubscribed, Unsubscribes, WorkTally, ZoneMoves,
        MOVE_COMMIT_SLACK,
    },
    Result,
};
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
    ConnectOptions, Connection, Row,
};

use crate::{
    error::job,
    store::{activity, claims, contact_rows, run_rows, suppression_rows},
    Error,
};

pub use db::Db;

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

/// Pages of WAL between checkpoints: 10,000 (40 MiB) rather than SQLite's 1,000. With normal synchronous the
/// commits are not synced, the checkpoints are, twice (the WAL, then the database). Every autocommit write
/// appends whole pages, so 1,000 pages went by in seconds: a year of `jobs simulate` waited on checkpoints' fsyncs
/// for about 8 s of its 74 s (BENCHMARKS.md). A killed process loses nothing either way; a power cut loses the
/// commits since the last checkpoint, as before, only more of them. The WAL file stays at its largest, 40 MiB.
const WAL_AUTOCHECKPOINT: &str = "10000";

/// `PRAGMA optimize`'s mask: planner statistics for every table that lacks them or has grown since, each
/// analysed within a bounded effort (0x10000 checks all tables, not only those this connection used; 0x02 runs
/// ANALYZE where it would help).
const OPTIMIZE: &str = "0x10002";

pub struct SqliteStore {
    db: Db,
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
            .pragma("cache_size", "-16384")
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT)
            // SQLite's advice for a connection that lives (a no-op on a fresh file).
            .pragma("optimize", OPTIMIZE);
        // One connection: SQLite lets one writer in at a time, and a second connection's write waits in SQLite's
        // busy handler, which sleeps (1 ms, 2 ms, 5 ms…) rather than being woken. Through one connection the
        // process's statements take turns without sleeping; other processes still wait on the busy timeout.
        let connection = options.connect().await.map_err(unreachable)?;
        Ok(Self { db: Db::new(connection) })
    }

    pub async fn migrate(&self) -> std::result::Result<(), Error> {
        Ok(MIGRATOR.run(&mut *self.db.lock().await).await?)
    }

    /// Planner statistics after a bulk load (the demo's and the simulation's seeds), as the connect-time
    /// `PRAGMA optimize` gathers them for a database filled earlier. Without them SQLite guesses: the week's
    /// volume board scanned every set of the simulation's year (26 ms a board; 4.6 ms through the week's
    /// workouts, with them). Tables still empty get none, and are planned as before.
    pub async fn analyze(&self) -> std::result::Result<(), Error> {
        sqlx::query(&format!("PRAGMA optimize={OPTIMIZE}")).execute(&self.db).await?;
        Ok(())
    }

    /// For a database nobody keeps (the simulation's, deleted when the next run starts): neither the commits nor
    /// the checkpoints are synced to disk, so nothing waits on the disk. A killed process still loses nothing;
    /// a power cut can leave the file corrupt. A year of `jobs simulate` waited about 9 s of its 66 s on
    /// checkpoints' fsyncs (BENCHMARKS.md).
    pub async fn unsynced(&self) -> std::result::Result<(), Error> {
        sqlx::query("PRAGMA synchronous = OFF").execute(&self.db).await?;
        Ok(())
    }

    /// The store's one connection, which the embedded queues share.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

mod app;
mod contacts;
mod db;
mod fitness;
mod history;
mod ledger;
mod maintenance;
mod requests;
mod runs;
mod shop;
mod suppressions;
mod unsubscribes;
mod zone_moves;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The steps of SQLite's plan for `sql`, each parameter bound to its text, on a fresh database whose planner
    /// statistics are `stats` (table, index, `sqlite_stat1`'s numbers), as `PRAGMA optimize` would have gathered
    /// them from data; none is a database before its first analysis.
    pub(crate) async fn plan(sql: &str, args: &[&str], stats: &[(&str, &str, &str)]) -> Vec<String> {
        let (db, store) = scratch().await;
        if !stats.is_empty() {
            sqlx::query("ANALYZE").execute(store.db()).await.unwrap();
            for (table, index, stat) in stats {
                let insert = sqlx::query("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?1, ?2, ?3)");
                insert.bind(table).bind(index).bind(stat).execute(store.db()).await.unwrap();
            }
            // Read again by the planner.
            sqlx::query("ANALYZE sqlite_schema").execute(store.db()).await.unwrap();
        }
        let steps = explain(&store, sql, args).await;
        discard(db, store).await;
        steps
    }

    /// The steps of SQLite's plan for `sql`, each parameter bound to its text, on a fresh database filled by
    /// `data` (statements) and then analysed: statistics and histograms from rows, as `PRAGMA optimize` gathers.
    pub(crate) async fn plan_over(sql: &str, args: &[&str], data: &str) -> Vec<String> {
        let (db, store) = scratch().await;
        sqlx::raw_sql(data).execute(store.db()).await.unwrap();
        sqlx::query("ANALYZE").execute(store.db()).await.unwrap();
        let steps = explain(&store, sql, args).await;
        discard(db, store).await;
        steps
    }

    async fn explain(store: &SqliteStore, sql: &str, args: &[&str]) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let query = args.iter().fold(sqlx::query_as(&explain), |query, arg| query.bind(*arg));
        let rows: Vec<(i64, i64, i64, String)> = query.fetch_all(store.db()).await.unwrap();
        rows.into_iter().map(|(.., detail)| detail).collect()
    }

    /// A migrated database in a file of its own, and its path.
    async fn scratch() -> (std::path::PathBuf, SqliteStore) {
        let db = std::env::temp_dir().join(format!("scratch-{}.db", uuid::Uuid::new_v4()));
        let store = SqliteStore::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        store.migrate().await.unwrap();
        (db, store)
    }

    async fn discard(db: std::path::PathBuf, store: SqliteStore) {
        drop(store);
        for file in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{file}", db.display()));
        }
    }

    #[tokio::test]
    async fn a_claim_searches_each_of_its_keys_rather_than_walk_the_tasks_ledger() {
        let steps = plan(ledger::CLAIM_STATUSES, &["daily-summary", r#"[["user:1","2026-01-01"]]"#], &[]).await;
        assert!(steps[0].starts_with("SCAN k"), "{steps:?}");
        assert!(
            steps[1].starts_with("SEARCH d") && steps[1].contains("(task=? AND subject=? AND period=?)"),
            "{steps:?}"
        );
    }

    #[tokio::test]
    async fn the_retention_reads_the_old_keys_of_its_tasks_only() {
        let args = ["2026-06-01T00:00:00.000000Z", "500", r#"["daily-summary"]"#];
        let steps = plan(history::DELETES[2], &args, &[]).await;
        assert!(
            steps.iter().any(|s| s.contains("INDEX deliveries_task_updated (task=? AND updated_at<?)")),
            "{steps:?}"
        );
    }

    #[tokio::test]
    async fn a_bulk_load_leaves_the_planner_statistics_of_what_it_loaded() {
        let (db, store) = scratch().await;
        sqlx::query(
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO users (id, name, email, time_zone) SELECT i, 'u', 'u' || i || '@x', 'UTC' FROM n",
        )
        .execute(store.db())
        .await
        .unwrap();
        store.analyze().await.unwrap();
        let stats: Vec<(String, String)> =
            sqlx::query_as("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'users' ORDER BY idx")
                .fetch_all(store.db())
                .await
                .unwrap();
        assert!(stats.iter().any(|(idx, stat)| idx == "users_time_zone_id" && stat.starts_with("2000 ")), "{stats:?}");
        discard(db, store).await;
    }

    #[tokio::test]
    async fn a_connection_checkpoints_every_ten_thousand_pages_of_wal() {
        let (db, store) = scratch().await;
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint").fetch_one(store.db()).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(store.db()).await.unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(store.db()).await.unwrap();
        assert_eq!((pages, mode.as_str(), synchronous), (10_000, "wal", 1), "1 is NORMAL");
        discard(db, store).await;
    }

    #[tokio::test]
    async fn an_unsynced_store_syncs_nothing() {
        let (db, store) = scratch().await;
        store.unsynced().await.unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(store.db()).await.unwrap();
        assert_eq!(synchronous, 0, "0 is OFF");
        discard(db, store).await;
    }

    /// `.cargo/config.toml` builds the bundled SQLite without the two process-wide locks its defaults take.
    #[tokio::test]
    async fn sqlite_is_built_without_the_allocation_and_page_cache_locks() {
        let (db, store) = scratch().await;
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options").fetch_all(store.db()).await.unwrap();
        assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
        assert!(!options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"), "{options:?}");
        discard(db, store).await;
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
