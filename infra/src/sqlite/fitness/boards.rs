//! Versioned boards on SQLite, as on PostgreSQL: a board's new version is built beside the current one under
//! its own number, keyed by (board, slot), then `boards_current` is switched to it in one short transaction that
//! also counts it into the run. A reader's one statement reads one snapshot: the old board or the new one.

use shared::ports::{Board, BoardBuild, BoardSpec, Boards};

use super::*;
use crate::store::boards::{self as rows, Arg, BoardRow};

/// The statement that fills a version with its entries: `?1` the version, then `rows::args(spec)`.
fn entries_sql(spec: &BoardSpec) -> &'static str {
    match spec {
        BoardSpec::WeekVolume { .. }
        | BoardSpec::WeekWorkouts { .. }
        | BoardSpec::Streak { .. }
        | BoardSpec::Challenge { .. } => super::leaderboards::entries_sql(spec),
        BoardSpec::TrendingWorkouts { .. } | BoardSpec::TrendingExercises { .. } => super::trending::entries_sql(spec),
    }
}

impl SqliteStore {
    /// Builds the version of `board` for `slot` unless it exists, or a version of this slot or a later one is
    /// current. Returns the version (none when a later one is current) and, if built now, its entries.
    async fn build_version(
        &self,
        spec: &BoardSpec,
        board: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<(i64, Option<u64>)>> {
        // IMMEDIATE: the write lock from the start, so a concurrent build of the same slot waits for this one and
        // then finds its version.
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        let version: Option<i64> = sqlx::query_scalar(
            "INSERT INTO board_versions (board, slot, entries, built_at)
             SELECT ?1, ?2, 0, ?3
             WHERE NOT EXISTS (SELECT 1 FROM boards_current WHERE board = ?1 AND slot >= ?2)
             ON CONFLICT (board, slot) DO NOTHING
             RETURNING id",
        )
        .bind(board)
        .bind(stamp(slot))
        .bind(stamp(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(job)?;
        let Some(version) = version else {
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT id FROM board_versions WHERE board = ?1 AND slot = ?2")
                    .bind(board)
                    .bind(stamp(slot))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(job)?;
            tx.rollback().await.map_err(job)?;
            return Ok(existing.map(|version| (version, None)));
        };
        let mut fill = sqlx::query(entries_sql(spec)).bind(version);
        for arg in rows::args(spec) {
            fill = match arg {
                Arg::Date(date) => fill.bind(date),
                Arg::Int(n) => fill.bind(n),
            };
        }
        let entries = fill.execute(&mut *tx).await.map_err(job)?.rows_affected();
        sqlx::query("UPDATE board_versions SET entries = ?2 WHERE id = ?1")
            .bind(version)
            .bind(entries as i64)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        tx.commit().await.map_err(job)?;
        Ok(Some((version, Some(entries))))
    }
}

#[async_trait]
impl Boards for SqliteStore {
    async fn build_board(&self, spec: &BoardSpec, task: &str, run: RunPart, now: DateTime<Utc>) -> Result<BoardBuild> {
        let board = spec.name();
        let Some((version, built)) = self.build_version(spec, &board, run.slot, now).await? else {
            return Ok(BoardBuild::Superseded);
        };
        // The switch: forward only, one row, counted in the same transaction; `previous` comes back as the
        // version replaced.
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        let switched: Option<Option<i64>> = sqlx::query_scalar(
            "INSERT INTO boards_current (board, version, slot, previous, switched_at) VALUES (?1, ?2, ?3, NULL, ?4)
             ON CONFLICT (board) DO UPDATE SET version = excluded.version, slot = excluded.slot,
                 previous = boards_current.version, switched_at = excluded.switched_at
             WHERE boards_current.slot < excluded.slot
             RETURNING previous",
        )
        .bind(&board)
        .bind(version)
        .bind(stamp(run.slot))
        .bind(stamp(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(job)?;
        let Some(previous) = switched else {
            let current: Option<i64> = sqlx::query_scalar("SELECT version FROM boards_current WHERE board = ?1")
                .bind(&board)
                .fetch_optional(&mut *tx)
                .await
                .map_err(job)?;
            if current == Some(version) {
                tx.rollback().await.map_err(job)?;
                return Ok(BoardBuild::AlreadyCurrent);
            }
            // A later slot's version won: this one is read by nobody, unless it is the one that was replaced.
            let replaced: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM boards_current WHERE board = ?1 AND previous = ?2)")
                    .bind(&board)
                    .bind(version)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(job)?;
            if !replaced {
                for table in ["board_entries WHERE version", "board_versions WHERE id"] {
                    sqlx::query(&format!("DELETE FROM {table} = ?1"))
                        .bind(version)
                        .execute(&mut *tx)
                        .await
                        .map_err(job)?;
                }
            }
            tx.commit().await.map_err(job)?;
            return Ok(BoardBuild::Superseded);
        };
        crate::sqlite::runs::count_in_run(&mut tx, task, run, 1, 0).await?;
        tx.commit().await.map_err(job)?;
        // After the switch, in a transaction of its own: every version older than the one replaced, entries
        // first.
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        for delete in [
            "DELETE FROM board_entries WHERE version IN (
                 SELECT id FROM board_versions WHERE board = ?1 AND slot < ?2 AND id <> ?3)",
            "DELETE FROM board_versions WHERE board = ?1 AND slot < ?2 AND id <> ?3",
        ] {
            sqlx::query(delete)
                .bind(&board)
                .bind(stamp(run.slot))
                .bind(previous.unwrap_or(0))
                .execute(&mut *tx)
                .await
                .map_err(job)?;
        }
        tx.commit().await.map_err(job)?;
        Ok(built.map_or(BoardBuild::Switched, BoardBuild::Built))
    }

    async fn board(&self, name: &str, limit: u32) -> Result<Option<Board>> {
        let rows: Vec<BoardRow> = sqlx::query_as(
            "SELECT v.id AS version, v.board, v.slot, v.built_at, v.entries AS total,
                    e.position, e.rank, e.subject_id, e.label, e.score, e.recent, e.previous
             FROM boards_current c
             JOIN board_versions v ON v.id = c.version
             LEFT JOIN board_entries e ON e.version = v.id AND e.position <= ?2
             WHERE c.board = ?1
             ORDER BY e.position",
        )
        .bind(name)
        .bind(i64::from(limit))
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        Ok(rows::board(rows))
    }

    async fn board_names(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT board FROM boards_current ORDER BY board").fetch_all(&self.db).await.map_err(job)
    }
}
