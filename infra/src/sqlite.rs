//! The embedded store: SQLite through sqlx, the default on a laptop and in the demo. Lists of keys travel as
//! one JSON parameter read with `json_each`, so every port call is a constant number of statements, as on
//! PostgreSQL with arrays.

use std::{collections::HashMap, str::FromStr, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use shared::{
    ports::{
        ActivityStore, AppWriter, ClaimState, DayActivity, DeliveryKey, Ledger, NewUser, NewWorkout, Progress,
        Recipient, RunPart, RunRecord, RunStart, RunStore, Settled, SkippedSlot, WorkTally,
    },
    Result,
};
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Row, SqlitePool,
};

use crate::{
    error::job,
    store::{activity, claims, runs},
    Error,
};

/// The SQLite schema: app tables, job tables and the embedded queue's tables.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The one text form of timestamps in SQLite: fixed width, so comparing the text compares the times.
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_stamp(text: &str) -> std::result::Result<DateTime<Utc>, sqlx::Error> {
    DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

pub(crate) fn later(now: DateTime<Utc>, by: Duration) -> String {
    stamp(now + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX))
}

/// The last five errors of a run, newest last, after appending the JSON array bound as parameter `new`.
fn last_five_errors(new: usize) -> String {
    format!(
        "(SELECT json_group_array(value ORDER BY n) FROM (
             SELECT value, n FROM (
                 SELECT value, key AS n FROM json_each(job_runs.errors)
                 UNION ALL SELECT value, 1000000 + key FROM json_each(?{new})
             ) ORDER BY n DESC LIMIT 5))"
    )
}

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
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await.map_err(unreachable)?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> std::result::Result<(), Error> {
        Ok(MIGRATOR.run(&self.pool).await?)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn run_record(row: &sqlx::sqlite::SqliteRow) -> std::result::Result<RunRecord, sqlx::Error> {
    let errors: String = row.try_get("errors")?;
    let finished: Option<String> = row.try_get("finished_at")?;
    Ok(RunRecord {
        task: row.try_get("task")?,
        slot: parse_stamp(row.try_get("slot")?)?,
        status: row.try_get("status")?,
        planned: row.try_get::<i64, _>("planned")? as u64,
        messages: row.try_get::<i64, _>("messages")? as u64,
        messages_done: row.try_get::<i64, _>("messages_done")? as u64,
        sent: row.try_get::<i64, _>("sent")? as u64,
        skipped: row.try_get::<i64, _>("skipped")? as u64,
        failed: row.try_get::<i64, _>("failed")? as u64,
        started_at: parse_stamp(row.try_get("started_at")?)?,
        finished_at: finished.as_deref().map(parse_stamp).transpose()?,
        errors: serde_json::from_str(&errors).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
    })
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn begin_run(
        &self,
        task: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
        replan_skipped: bool,
    ) -> Result<RunStart> {
        let inserted = sqlx::query(
            "INSERT INTO job_runs (task, slot, status, started_at) VALUES (?1, ?2, 'planning', ?3)
             ON CONFLICT (task, slot) DO UPDATE SET
                 status = 'planning', started_at = excluded.started_at, finished_at = NULL, errors = '[]'
             WHERE job_runs.status = 'skipped' AND ?4",
        )
        .bind(task)
        .bind(stamp(slot))
        .bind(stamp(now))
        .bind(replan_skipped)
        .execute(&self.pool)
        .await
        .map_err(job)?
        .rows_affected();
        let existing = if inserted == 1 { None } else { self.run(task, slot).await? };
        runs::start(inserted == 1, existing)
    }

    async fn finish_plan(
        &self,
        task: &str,
        slot: DateTime<Utc>,
        planned: u64,
        messages: u64,
        errors: &[String],
        now: DateTime<Utc>,
    ) -> Result<()> {
        // Workers may finish messages before the plan closes: the run is done once all of them are.
        let query = format!(
            "UPDATE job_runs SET planned = ?1, messages = ?2, errors = {},
                 status = CASE WHEN messages_done >= ?2 THEN 'done' ELSE 'planned' END,
                 finished_at = CASE WHEN messages_done >= ?2 THEN ?4 ELSE NULL END
             WHERE task = ?5 AND slot = ?6",
            last_five_errors(3)
        );
        sqlx::query(&query)
            .bind(planned as i64)
            .bind(messages as i64)
            .bind(json!(errors).to_string())
            .bind(stamp(now))
            .bind(task)
            .bind(stamp(slot))
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn record_work(&self, task: &str, slot: DateTime<Utc>, tally: &WorkTally, now: DateTime<Utc>) -> Result<()> {
        let (slot, part) = (stamp(slot), tally.part as i64);
        let mut tx = self.pool.begin().await.map_err(job)?;
        // A write first, so the transaction holds the write lock before it reads.
        sqlx::query("INSERT INTO run_messages (task, slot, part) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
            .bind(task)
            .bind(&slot)
            .bind(part)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        let (sent, failed, reported_sent, reported_failed, skipped, finished): (i64, i64, i64, i64, i64, bool) =
            sqlx::query_as(
                "SELECT sent, failed, reported_sent, reported_failed, skipped, finished FROM run_messages
                 WHERE task = ?1 AND slot = ?2 AND part = ?3",
            )
            .bind(task)
            .bind(&slot)
            .bind(part)
            .fetch_one(&mut *tx)
            .await
            .map_err(job)?;
        let before = runs::MessageCounts { sent, failed, reported_sent, reported_failed, skipped, finished };
        let (after, delta) = runs::after_attempt(before, tally);
        sqlx::query(
            "UPDATE run_messages SET reported_sent = ?4, reported_failed = ?5, skipped = ?6, finished = ?7
             WHERE task = ?1 AND slot = ?2 AND part = ?3",
        )
        .bind(task)
        .bind(&slot)
        .bind(part)
        .bind(after.reported_sent)
        .bind(after.reported_failed)
        .bind(after.skipped)
        .bind(after.finished)
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        let query = format!(
            "UPDATE job_runs SET sent = sent + ?7, failed = failed + ?8, skipped = skipped + ?1,
                 messages_done = messages_done + ?2, errors = {},
                 status = CASE WHEN status = 'planned' AND messages_done + ?2 >= messages THEN 'done' ELSE status END,
                 finished_at = CASE WHEN status = 'planned' AND messages_done + ?2 >= messages THEN ?4
                                    ELSE finished_at END
             WHERE task = ?5 AND slot = ?6",
            last_five_errors(3)
        );
        sqlx::query(&query)
            .bind(delta.skipped)
            .bind(delta.messages_done)
            .bind(json!(tally.errors).to_string())
            .bind(stamp(now))
            .bind(task)
            .bind(&slot)
            .bind(delta.sent)
            .bind(delta.failed)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        tx.commit().await.map_err(job)
    }

    async fn record_skipped(&self, task: &str, slots: &[SkippedSlot], now: DateTime<Utc>) -> Result<u64> {
        let rows: Vec<_> = slots.iter().map(|s| json!([stamp(s.slot), s.reason])).collect();
        let inserted = sqlx::query(
            "INSERT INTO job_runs (task, slot, status, started_at, finished_at, errors)
             SELECT ?1, json_extract(value, '$[0]'), 'skipped', ?2, ?2, json_array(json_extract(value, '$[1]'))
             FROM json_each(?3) WHERE true
             ON CONFLICT (task, slot) DO NOTHING",
        )
        .bind(task)
        .bind(stamp(now))
        .bind(json!(rows).to_string())
        .execute(&self.pool)
        .await
        .map_err(job)?;
        Ok(inserted.rows_affected())
    }

    async fn latest_slot(&self, task: &str) -> Result<Option<DateTime<Utc>>> {
        let slot: Option<String> =
            sqlx::query_scalar("SELECT max(slot) FROM job_runs WHERE task = ? AND status <> 'planning'")
                .bind(task)
                .fetch_one(&self.pool)
                .await
                .map_err(job)?;
        slot.as_deref().map(parse_stamp).transpose().map_err(job)
    }

    async fn unfinished_plans(&self, task: &str) -> Result<Vec<DateTime<Utc>>> {
        let slots: Vec<String> =
            sqlx::query_scalar("SELECT slot FROM job_runs WHERE task = ? AND status = 'planning' ORDER BY slot")
                .bind(task)
                .fetch_all(&self.pool)
                .await
                .map_err(job)?;
        slots.iter().map(|s| parse_stamp(s)).collect::<std::result::Result<_, _>>().map_err(job)
    }

    async fn run(&self, task: &str, slot: DateTime<Utc>) -> Result<Option<RunRecord>> {
        sqlx::query(&format!("SELECT {} FROM job_runs WHERE task = ? AND slot = ?", runs::COLUMNS))
            .bind(task)
            .bind(stamp(slot))
            .fetch_optional(&self.pool)
            .await
            .and_then(|row| row.as_ref().map(run_record).transpose())
            .map_err(job)
    }

    async fn recent_runs(&self, task: Option<&str>, limit: u32) -> Result<Vec<RunRecord>> {
        sqlx::query(&format!(
            "SELECT {} FROM job_runs WHERE ?1 IS NULL OR task = ?1
             ORDER BY slot DESC, started_at DESC LIMIT ?2",
            runs::COLUMNS,
        ))
        .bind(task)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.iter().map(run_record).collect())
        .map_err(job)
    }

    async fn acquire_lease(&self, name: &str, holder: &str, now: DateTime<Utc>, ttl: Duration) -> Result<bool> {
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.expires_at <= ?4 OR leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(later(now, ttl))
        .bind(stamp(now))
        .execute(&self.pool)
        .await
        .map_err(job)?;
        Ok(taken.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }
}

/// Keys as one JSON parameter: `[[subject, period], …]`.
fn keys_json(keys: &[DeliveryKey]) -> String {
    json!(keys.iter().map(|k| [&k.subject, &k.period]).collect::<Vec<_>>()).to_string()
}

#[async_trait]
impl Ledger for SqliteStore {
    async fn claim(
        &self,
        task: &str,
        keys: &[DeliveryKey],
        now: DateTime<Utc>,
        hold: Duration,
    ) -> Result<Vec<(DeliveryKey, ClaimState)>> {
        let unique = claims::unique(keys);
        if unique.is_empty() {
            return Ok(vec![]);
        }
        let keys_param = keys_json(&unique);
        let won: Vec<(String, String, i32)> = sqlx::query_as(
            "INSERT INTO deliveries (task, subject, period, status, attempts, expires_at, updated_at)
             SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), 'in_progress', 1, ?2, ?3
             FROM json_each(?4) WHERE true
             ON CONFLICT (task, subject, period) DO UPDATE SET
                 status = 'in_progress', attempts = deliveries.attempts + 1,
                 expires_at = excluded.expires_at, updated_at = excluded.updated_at
             WHERE deliveries.status = 'retryable'
                OR (deliveries.status = 'in_progress' AND deliveries.expires_at <= ?3)
             RETURNING subject, period, attempts",
        )
        .bind(task)
        .bind(later(now, hold))
        .bind(stamp(now))
        .bind(&keys_param)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        let statuses: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT d.subject, d.period, d.status FROM deliveries d
             JOIN json_each(?2) k ON d.subject = json_extract(k.value, '$[0]')
                                 AND d.period = json_extract(k.value, '$[1]')
             WHERE d.task = ?1",
        )
        .bind(task)
        .bind(&keys_param)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        Ok(claims::states(keys, won, statuses))
    }

    async fn settle(&self, task: &str, run: RunPart, outcomes: &[Settled], now: DateTime<Utc>) -> Result<u64> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let rows: Vec<_> = claims::in_lock_order(outcomes)
            .into_iter()
            .map(|Settled { key, attempt, settlement }| {
                let (status, error) = claims::settled(settlement);
                json!([key.subject, key.period, attempt, status, error])
            })
            .collect();
        let mut tx = self.pool.begin().await.map_err(job)?;
        // As on PostgreSQL: an upsert finds each claimed row by its key. Fenced: only the claim this caller holds,
        // still in progress at the attempt it won.
        let settled: Vec<String> = sqlx::query_scalar(
            "INSERT INTO deliveries AS d (task, subject, period, status, attempts, expires_at, last_error, updated_at)
             SELECT ?1, json_extract(o.value, '$[0]'), json_extract(o.value, '$[1]'), json_extract(o.value, '$[3]'),
                    json_extract(o.value, '$[2]'), ?2, json_extract(o.value, '$[4]'), ?2
             FROM json_each(?3) o WHERE true
             ON CONFLICT (task, subject, period) DO UPDATE SET status = excluded.status,
                 last_error = coalesce(excluded.last_error, d.last_error), updated_at = excluded.updated_at
             WHERE d.status = 'in_progress' AND d.attempts = excluded.attempts
             RETURNING status",
        )
        .bind(task)
        .bind(stamp(now))
        .bind(json!(rows).to_string())
        .fetch_all(&mut *tx)
        .await
        .map_err(job)?;
        let (done, failed) = claims::done_and_failed(settled.iter().map(String::as_str));
        if done + failed > 0 {
            let slot = stamp(run.slot);
            sqlx::query(
                "INSERT INTO run_messages (task, slot, part, sent, failed) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (task, slot, part) DO UPDATE
                 SET sent = run_messages.sent + excluded.sent, failed = run_messages.failed + excluded.failed",
            )
            .bind(task)
            .bind(&slot)
            .bind(run.part as i64)
            .bind(done)
            .bind(failed)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        }
        tx.commit().await.map_err(job)?;
        Ok(settled.len() as u64)
    }
}

#[async_trait]
impl Progress for SqliteStore {
    async fn planned_through(&self, task: &str, subjects: &[String]) -> Result<Vec<(String, String)>> {
        sqlx::query_as(
            "SELECT subject, period FROM progress WHERE task = ?1 AND subject IN (SELECT value FROM json_each(?2))",
        )
        .bind(task)
        .bind(json!(subjects).to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(job)
    }

    async fn plan_through(&self, task: &str, subjects: &[String], period: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO progress (task, subject, period) SELECT ?1, value, ?3 FROM json_each(?2) WHERE true
             ON CONFLICT (task, subject) DO UPDATE SET period = excluded.period
             WHERE progress.period < excluded.period",
        )
        .bind(task)
        .bind(json!(subjects).to_string())
        .bind(period)
        .execute(&self.pool)
        .await
        .map_err(job)?;
        Ok(())
    }
}

#[async_trait]
impl ActivityStore for SqliteStore {
    async fn time_zones(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT DISTINCT time_zone FROM users ORDER BY time_zone")
            .fetch_all(&self.pool)
            .await
            .map_err(job)
    }

    async fn users_in_zones(&self, zones: &[String], after: i64, limit: u32) -> Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM users WHERE time_zone IN (SELECT value FROM json_each(?)) AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(json!(zones).to_string())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(job)
    }

    async fn recipients(&self, user_ids: &[i64]) -> Result<Vec<Recipient>> {
        let rows: Vec<(i64, String, String, String, bool)> = sqlx::query_as(
            "SELECT id, name, email, time_zone, email_opt_in FROM users
             WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
        )
        .bind(json!(user_ids).to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        Ok(rows.into_iter().map(activity::recipient).collect())
    }

    async fn day_activity(&self, days: &[(i64, NaiveDate)]) -> Result<Vec<DayActivity>> {
        if days.is_empty() {
            return Ok(vec![]);
        }
        let due = json!(days.iter().map(|(id, day)| json!([id, day.to_string()])).collect::<Vec<_>>()).to_string();
        const DUE: &str = "WITH due (user_id, day) AS (
            SELECT DISTINCT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1))";
        let workouts: Vec<activity::WorkoutRow> = sqlx::query_as(&format!(
            "{DUE} SELECT w.user_id, w.local_date, w.name, w.duration_minutes, w.calories,
                   coalesce((SELECT sum(s.weight_kg * s.reps) FROM workout_sets s WHERE s.workout_id = w.id), 0.0)
             FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date = due.day
             ORDER BY w.user_id, w.local_date, w.started_at"
        ))
        .bind(&due)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        let records: Vec<activity::RecordRow> = sqlx::query_as(&format!(
            "{DUE} SELECT w.user_id, w.local_date, e.name, s.weight_kg, s.reps
             FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date = due.day
             JOIN workout_sets s ON s.workout_id = w.id AND s.personal_record
             JOIN exercises e ON e.id = s.exercise_id
             ORDER BY w.user_id, w.local_date, w.started_at, s.id"
        ))
        .bind(&due)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        // The streak runs back to where its run of active days began: the latest active day up to the day
        // whose previous day was not active. An index walk per user, stopping at that day.
        let streaks: Vec<(i64, NaiveDate, i64)> = sqlx::query_as(&format!(
            "{DUE} SELECT due.user_id, due.day, CAST(julianday(due.day) - julianday((
                 SELECT w.local_date FROM workouts w
                 WHERE w.user_id = due.user_id AND w.local_date <= due.day
                   AND NOT EXISTS (SELECT 1 FROM workouts p
                                   WHERE p.user_id = w.user_id AND p.local_date = date(w.local_date, '-1 day'))
                 ORDER BY w.local_date DESC LIMIT 1)) AS INTEGER) + 1
             FROM due
             WHERE EXISTS (SELECT 1 FROM workouts a WHERE a.user_id = due.user_id AND a.local_date = due.day)"
        ))
        .bind(&due)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        Ok(activity::assemble(workouts, records, streaks))
    }
}

#[async_trait]
impl AppWriter for SqliteStore {
    async fn add_exercises(&self, names: &[String]) -> Result<Vec<i64>> {
        let names_param = json!(names).to_string();
        sqlx::query(
            "INSERT INTO exercises (name) SELECT value FROM json_each(?) WHERE true ON CONFLICT (name) DO NOTHING",
        )
        .bind(&names_param)
        .execute(&self.pool)
        .await
        .map_err(job)?;
        let ids: HashMap<String, i64> =
            sqlx::query_as("SELECT name, id FROM exercises WHERE name IN (SELECT value FROM json_each(?))")
                .bind(&names_param)
                .fetch_all(&self.pool)
                .await
                .map_err(job)?
                .into_iter()
                .collect();
        Ok(names.iter().map(|n| ids[n]).collect())
    }

    async fn add_users(&self, users: &[NewUser]) -> Result<Vec<i64>> {
        let rows: Vec<_> =
            users.iter().map(|u| json!([u.name, u.email, u.phone, u.time_zone, u.email_opt_in])).collect();
        let ids: HashMap<String, i64> = sqlx::query_as(
            "INSERT INTO users (name, email, phone, time_zone, email_opt_in)
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                    json_extract(value, '$[3]'), json_extract(value, '$[4]')
             FROM json_each(?) RETURNING email, id",
        )
        .bind(json!(rows).to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(job)?
        .into_iter()
        .collect();
        Ok(users.iter().map(|u| ids[&u.email]).collect())
    }

    async fn set_time_zone(&self, user_ids: &[i64], zone: &str) -> Result<()> {
        sqlx::query("UPDATE users SET time_zone = ?2 WHERE id IN (SELECT value FROM json_each(?1))")
            .bind(json!(user_ids).to_string())
            .bind(zone)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn add_workouts(&self, workouts: &[NewWorkout]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(job)?;
        for w in workouts {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO workouts (user_id, name, started_at, local_date, duration_minutes, calories)
                 VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(w.user_id)
            .bind(&w.name)
            .bind(stamp(w.started_at))
            .bind(w.local_date)
            .bind(w.duration_minutes)
            .bind(w.calories)
            .fetch_one(&mut *tx)
            .await
            .map_err(job)?;
            for s in &w.sets {
                sqlx::query(
                    "INSERT INTO workout_sets (workout_id, exercise_id, weight_kg, reps, personal_record)
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(s.exercise_id)
                .bind(s.weight_kg)
                .bind(s.reps)
                .bind(s.personal_record)
                .execute(&mut *tx)
                .await
                .map_err(job)?;
            }
        }
        tx.commit().await.map_err(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

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
