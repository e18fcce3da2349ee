//! Versioned boards on PostgreSQL, for every task that publishes one (leaderboards, trending): a board's new
//! version is built beside the current one under its own number, keyed by (board, slot), then the board's
//! `boards_current` row is switched to it in one short transaction that also counts it into the run. Readers
//! read the current version in one statement, so they see the old board or the new one, never a mix.

use shared::ports::{Board, BoardBuild, BoardSpec, Boards};

use super::*;
use crate::store::boards::{self as rows, Arg, BoardRow};

/// The statement that fills a version with its entries: `$1` the version, then `rows::args(spec)`.
fn entries_sql(spec: &BoardSpec) -> &'static str {
    match spec {
        BoardSpec::WeekVolume { .. }
        | BoardSpec::WeekWorkouts { .. }
        | BoardSpec::Streak { .. }
        | BoardSpec::Challenge { .. } => super::leaderboards::entries_sql(spec),
        BoardSpec::TrendingWorkouts { .. } | BoardSpec::TrendingExercises { .. } => super::trending::entries_sql(spec),
    }
}

impl PgStore {
    /// Builds the version of `board` for `slot` unless it exists, or a version of this slot or a later one is
    /// current. Returns the version (none when a later one is current) and, if built now, its entries.
    async fn build_version(
        &self,
        spec: &BoardSpec,
        board: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<(i64, Option<u64>)>> {
        let mut tx = self.pool.begin().await.map_err(job)?;
        // A board joins and ranks up to a week of everyone's sets: its hash tables and sorts fit in this, not
        // in the default 4 MB, which spills them to disk.
        sqlx::query("SET LOCAL work_mem = '64MB'").execute(&mut *tx).await.map_err(job)?;
        // A concurrent build of the same slot waits here on the unique key until the first commits, then finds
        // its version.
        let version: Option<i64> = sqlx::query_scalar(
            "INSERT INTO board_versions (board, slot, entries, built_at)
             SELECT $1, $2, 0, $3
             WHERE NOT EXISTS (SELECT 1 FROM boards_current WHERE board = $1 AND slot >= $2)
             ON CONFLICT (board, slot) DO NOTHING
             RETURNING id",
        )
        .bind(board)
        .bind(slot)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(job)?;
        let Some(version) = version else {
            tx.rollback().await.map_err(job)?;
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT id FROM board_versions WHERE board = $1 AND slot = $2")
                    .bind(board)
                    .bind(slot)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(job)?;
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
        sqlx::query("UPDATE board_versions SET entries = $2 WHERE id = $1")
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
impl Boards for PgStore {
    async fn build_board(&self, spec: &BoardSpec, task: &str, run: RunPart, now: DateTime<Utc>) -> Result<BoardBuild> {
        let board = spec.name();
        let Some((version, built)) = self.build_version(spec, &board, run.slot, now).await? else {
            return Ok(BoardBuild::Superseded);
        };
        // The switch: forward only, one row, counted in the same transaction. `previous` comes back as the
        // version replaced (none for a board's first).
        let mut tx = self.pool.begin().await.map_err(job)?;
        let switched: Option<Option<i64>> = sqlx::query_scalar(
            "INSERT INTO boards_current (board, version, slot, previous, switched_at) VALUES ($1, $2, $3, NULL, $4)
             ON CONFLICT (board) DO UPDATE SET version = excluded.version, slot = excluded.slot,
                 previous = boards_current.version, switched_at = excluded.switched_at
             WHERE boards_current.slot < excluded.slot
             RETURNING previous",
        )
        .bind(&board)
        .bind(version)
        .bind(run.slot)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(job)?;
        let Some(previous) = switched else {
            tx.commit().await.map_err(job)?;
            let current: Option<i64> = sqlx::query_scalar("SELECT version FROM boards_current WHERE board = $1")
                .bind(&board)
                .fetch_optional(&self.pool)
                .await
                .map_err(job)?;
            if current == Some(version) {
                return Ok(BoardBuild::AlreadyCurrent);
            }
            // A later slot's version won: this one is read by nobody, unless it is the one that was replaced.
            sqlx::query(
                "WITH gone AS (
                     DELETE FROM board_versions v WHERE v.id = $1
                     AND NOT EXISTS (SELECT 1 FROM boards_current c WHERE c.board = v.board AND c.previous = v.id)
                     RETURNING id)
                 DELETE FROM board_entries WHERE version IN (SELECT id FROM gone)",
            )
            .bind(version)
            .execute(&self.pool)
            .await
            .map_err(job)?;
            return Ok(BoardBuild::Superseded);
        };
        crate::postgres::runs::count_in_run(&mut tx, task, run, 1, 0).await?;
        tx.commit().await.map_err(job)?;
        // After the switch, out of its transaction: every version older than the one replaced. A version of a
        // later slot built meanwhile is newer, and stays for its own switch.
        sqlx::query(
            "WITH gone AS (DELETE FROM board_versions WHERE board = $1 AND slot < $2 AND id <> $3 RETURNING id)
             DELETE FROM board_entries WHERE version IN (SELECT id FROM gone)",
        )
        .bind(&board)
        .bind(run.slot)
        .bind(previous.unwrap_or(0))
        .execute(&self.pool)
        .await
        .map_err(job)?;
        Ok(built.map_or(BoardBuild::Switched, BoardBuild::Built))
    }

    async fn board(&self, name: &str, limit: u32) -> Result<Option<Board>> {
        let rows: Vec<BoardRow> = sqlx::query_as(
            "SELECT v.id AS version, v.board, v.slot, v.built_at, v.entries::bigint AS total,
                    e.position::bigint AS position, e.rank::bigint AS rank, e.subject_id, e.label, e.score,
                    e.recent, e.previous
             FROM boards_current c
             JOIN board_versions v ON v.id = c.version
             LEFT JOIN board_entries e ON e.version = v.id AND e.position <= $2
             WHERE c.board = $1
             ORDER BY e.position",
        )
        .bind(name)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        Ok(rows::board(rows))
    }

    async fn board_names(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT board FROM boards_current ORDER BY board").fetch_all(&self.pool).await.map_err(job)
    }
}
