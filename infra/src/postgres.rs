//! The production store: PostgreSQL through sqlx. Lists of keys travel as arrays read with `UNNEST`, so every
//! port call is a constant number of statements whatever its size.

use std::{collections::HashMap, str::FromStr, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use shared::{
    ports::{
        ActivityStore, AppWriter, ClaimState, DayActivity, DeliveryKey, Ledger, NewUser, NewWorkout, Progress,
        Recipient, RunPart, RunRecord, RunStart, RunStore, Settled, SkippedSlot, WorkTally,
    },
    Result,
};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions, PgRow},
    types::Json,
    PgPool, Row,
};

use crate::{
    error::job,
    store::{activity, claims, runs},
    Error,
};

/// The PostgreSQL schema: app tables and job tables.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The last five errors of a run, newest last, after appending the JSON array bound as parameter `new`.
fn last_five_errors(new: usize) -> String {
    format!(
        "(SELECT coalesce(jsonb_agg(e ORDER BY n), '[]') FROM (
             SELECT e, n FROM jsonb_array_elements(job_runs.errors || ${new}::jsonb) WITH ORDINALITY AS t (e, n)
             ORDER BY n DESC LIMIT 5) last)"
    )
}

fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX)
}

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects a small pool. Does not migrate: see `migrate`. An unreachable server is an error naming it by
    /// host, port and database, never with its password.
    pub async fn connect(url: &str) -> std::result::Result<Self, Error> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::Connect { target: "(DATABASE_URL)".into(), message: e.to_string() })?
            // Small, index-driven queries: JIT compiling them (on misestimated fresh tables) costs more than
            // running them.
            .options([("jit", "off")]);
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| Error::Connect { target, message: e.to_string() })?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> std::result::Result<(), Error> {
        Ok(MIGRATOR.run(&self.pool).await?)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn run_record(row: &PgRow) -> std::result::Result<RunRecord, sqlx::Error> {
    Ok(RunRecord {
        task: row.try_get("task")?,
        slot: row.try_get("slot")?,
        status: row.try_get("status")?,
        planned: row.try_get::<i64, _>("planned")? as u64,
        messages: row.try_get::<i64, _>("messages")? as u64,
        messages_done: row.try_get::<i64, _>("messages_done")? as u64,
        sent: row.try_get::<i64, _>("sent")? as u64,
        skipped: row.try_get::<i64, _>("skipped")? as u64,
        failed: row.try_get::<i64, _>("failed")? as u64,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        errors: row.try_get::<Json<Vec<String>>, _>("errors")?.0,
    })
}

#[async_trait]
impl RunStore for PgStore {
    async fn begin_run(
        &self,
        task: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
        replan_skipped: bool,
    ) -> Result<RunStart> {
        let inserted = sqlx::query(
            "INSERT INTO job_runs (task, slot, status, started_at) VALUES ($1, $2, 'planning', $3)
             ON CONFLICT (task, slot) DO UPDATE SET
                 status = 'planning', started_at = excluded.started_at, finished_at = NULL, errors = '[]'
             WHERE job_runs.status = 'skipped' AND $4",
        )
        .bind(task)
        .bind(slot)
        .bind(now)
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
            "UPDATE job_runs SET planned = $1, messages = $2, errors = {},
                 status = CASE WHEN messages_done >= $2 THEN 'done' ELSE 'planned' END,
                 finished_at = CASE WHEN messages_done >= $2 THEN $4 ELSE NULL END
             WHERE task = $5 AND slot = $6",
            last_five_errors(3)
        );
        sqlx::query(&query)
            .bind(planned as i64)
            .bind(messages as i64)
            .bind(Json(errors))
            .bind(now)
            .bind(task)
            .bind(slot)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn record_work(&self, task: &str, slot: DateTime<Utc>, tally: &WorkTally, now: DateTime<Utc>) -> Result<()> {
        let part = tally.part as i64;
        let mut tx = self.pool.begin().await.map_err(job)?;
        sqlx::query("INSERT INTO run_messages (task, slot, part) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(task)
            .bind(slot)
            .bind(part)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        let (sent, failed, reported_sent, reported_failed, skipped, finished): (i64, i64, i64, i64, i64, bool) =
            sqlx::query_as(
                "SELECT sent, failed, reported_sent, reported_failed, skipped, finished FROM run_messages
                 WHERE task = $1 AND slot = $2 AND part = $3 FOR UPDATE",
            )
            .bind(task)
            .bind(slot)
            .bind(part)
            .fetch_one(&mut *tx)
            .await
            .map_err(job)?;
        let before = runs::MessageCounts { sent, failed, reported_sent, reported_failed, skipped, finished };
        let (after, delta) = runs::after_attempt(before, tally);
        sqlx::query(
            "UPDATE run_messages SET reported_sent = $4, reported_failed = $5, skipped = $6, finished = $7
             WHERE task = $1 AND slot = $2 AND part = $3",
        )
        .bind(task)
        .bind(slot)
        .bind(part)
        .bind(after.reported_sent)
        .bind(after.reported_failed)
        .bind(after.skipped)
        .bind(after.finished)
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        let query = format!(
            "UPDATE job_runs SET sent = sent + $7, failed = failed + $8, skipped = skipped + $1,
                 messages_done = messages_done + $2, errors = {},
                 status = CASE WHEN status = 'planned' AND messages_done + $2 >= messages THEN 'done' ELSE status END,
                 finished_at = CASE WHEN status = 'planned' AND messages_done + $2 >= messages THEN $4
                                    ELSE finished_at END
             WHERE task = $5 AND slot = $6",
            last_five_errors(3)
        );
        sqlx::query(&query)
            .bind(delta.skipped)
            .bind(delta.messages_done)
            .bind(Json(&tally.errors))
            .bind(now)
            .bind(task)
            .bind(slot)
            .bind(delta.sent)
            .bind(delta.failed)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        tx.commit().await.map_err(job)
    }

    async fn record_skipped(&self, task: &str, slots: &[SkippedSlot], now: DateTime<Utc>) -> Result<u64> {
        let times: Vec<DateTime<Utc>> = slots.iter().map(|s| s.slot).collect();
        let reasons: Vec<&str> = slots.iter().map(|s| s.reason.as_str()).collect();
        let inserted = sqlx::query(
            "INSERT INTO job_runs (task, slot, status, started_at, finished_at, errors)
             SELECT $1, s.slot, 'skipped', $2, $2, jsonb_build_array(s.reason)
             FROM UNNEST($3::timestamptz[], $4::text[]) AS s (slot, reason)
             ON CONFLICT (task, slot) DO NOTHING",
        )
        .bind(task)
        .bind(now)
        .bind(&times)
        .bind(&reasons)
        .execute(&self.pool)
        .await
        .map_err(job)?;
        Ok(inserted.rows_affected())
    }

    async fn latest_slot(&self, task: &str) -> Result<Option<DateTime<Utc>>> {
        sqlx::query_scalar("SELECT max(slot) FROM job_runs WHERE task = $1 AND status <> 'planning'")
            .bind(task)
            .fetch_one(&self.pool)
            .await
            .map_err(job)
    }

    async fn unfinished_plans(&self, task: &str) -> Result<Vec<DateTime<Utc>>> {
        sqlx::query_scalar("SELECT slot FROM job_runs WHERE task = $1 AND status = 'planning' ORDER BY slot")
            .bind(task)
            .fetch_all(&self.pool)
            .await
            .map_err(job)
    }

    async fn run(&self, task: &str, slot: DateTime<Utc>) -> Result<Option<RunRecord>> {
        sqlx::query(&format!("SELECT {} FROM job_runs WHERE task = $1 AND slot = $2", runs::COLUMNS))
            .bind(task)
            .bind(slot)
            .fetch_optional(&self.pool)
            .await
            .and_then(|row| row.as_ref().map(run_record).transpose())
            .map_err(job)
    }

    async fn recent_runs(&self, task: Option<&str>, limit: u32) -> Result<Vec<RunRecord>> {
        sqlx::query(&format!(
            "SELECT {} FROM job_runs WHERE $1::text IS NULL OR task = $1
             ORDER BY slot DESC, started_at DESC LIMIT $2",
            runs::COLUMNS,
        ))
        .bind(task)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.iter().map(run_record).collect())
        .map_err(job)
    }

    async fn acquire_lease(&self, name: &str, holder: &str, now: DateTime<Utc>, ttl: Duration) -> Result<bool> {
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(later(now, ttl))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(job)?;
        Ok(taken.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }
}

#[async_trait]
impl Ledger for PgStore {
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
        let subjects: Vec<&str> = unique.iter().map(|k| k.subject.as_str()).collect();
        let periods: Vec<&str> = unique.iter().map(|k| k.period.as_str()).collect();
        let won: Vec<(String, String, i32)> = sqlx::query_as(
            "INSERT INTO deliveries (task, subject, period, status, attempts, expires_at, updated_at)
             SELECT $1, k.subject, k.period, 'in_progress', 1, $2, $3
             FROM UNNEST($4::text[], $5::text[]) AS k (subject, period)
             ON CONFLICT (task, subject, period) DO UPDATE SET
                 status = 'in_progress', attempts = deliveries.attempts + 1,
                 expires_at = excluded.expires_at, updated_at = excluded.updated_at
             WHERE deliveries.status = 'retryable'
                OR (deliveries.status = 'in_progress' AND deliveries.expires_at <= $3)
             RETURNING subject, period, attempts",
        )
        .bind(task)
        .bind(later(now, hold))
        .bind(now)
        .bind(&subjects)
        .bind(&periods)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        let statuses: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT d.subject, d.period, d.status
             FROM deliveries d JOIN UNNEST($2::text[], $3::text[]) AS k (subject, period)
               ON d.subject = k.subject AND d.period = k.period
             WHERE d.task = $1",
        )
        .bind(task)
        .bind(&subjects)
        .bind(&periods)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        Ok(claims::states(keys, won, statuses))
    }

    async fn settle(&self, task: &str, run: RunPart, outcomes: &[Settled], now: DateTime<Utc>) -> Result<u64> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let (mut subjects, mut periods, mut attempts, mut statuses, mut errors) =
            (vec![], vec![], vec![], vec![], vec![]);
        for Settled { key, attempt, settlement } in claims::in_lock_order(outcomes) {
            let (status, error) = claims::settled(settlement);
            subjects.push(key.subject.as_str());
            periods.push(key.period.as_str());
            attempts.push(*attempt as i32);
            statuses.push(status);
            errors.push(error);
        }
        let mut tx = self.pool.begin().await.map_err(job)?;
        // An upsert whose rows always exist (the claim made them): the conflict finds each by its key, whatever
        // the table's statistics, and locks them in the keys' order, as a claim does, so the two never deadlock.
        // Fenced: only the claim this caller holds, still in progress at the attempt it won.
        let settled: Vec<String> = sqlx::query_scalar(
            "INSERT INTO deliveries AS d (task, subject, period, status, attempts, expires_at, last_error, updated_at)
             SELECT $1, o.subject, o.period, o.status, o.attempt, $2, o.error, $2
             FROM UNNEST($3::text[], $4::text[], $5::int[], $6::text[], $7::text[])
                  AS o (subject, period, attempt, status, error)
             ON CONFLICT (task, subject, period) DO UPDATE SET status = excluded.status,
                 last_error = coalesce(excluded.last_error, d.last_error), updated_at = excluded.updated_at
             WHERE d.status = 'in_progress' AND d.attempts = excluded.attempts
             RETURNING d.status",
        )
        .bind(task)
        .bind(now)
        .bind(&subjects)
        .bind(&periods)
        .bind(&attempts)
        .bind(&statuses)
        .bind(&errors)
        .fetch_all(&mut *tx)
        .await
        .map_err(job)?;
        let (done, failed) = claims::done_and_failed(settled.iter().map(String::as_str));
        if done + failed > 0 {
            sqlx::query(
                "INSERT INTO run_messages (task, slot, part, sent, failed) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (task, slot, part) DO UPDATE
                 SET sent = run_messages.sent + excluded.sent, failed = run_messages.failed + excluded.failed",
            )
            .bind(task)
            .bind(run.slot)
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
impl Progress for PgStore {
    async fn planned_through(&self, task: &str, subjects: &[String]) -> Result<Vec<(String, String)>> {
        // A join, not `= ANY`: a chunk's 500 subjects are looked up by key whatever the table's statistics say.
        sqlx::query_as(
            "SELECT p.subject, p.period FROM UNNEST($2::text[]) AS s (subject)
             JOIN progress p ON p.task = $1 AND p.subject = s.subject",
        )
        .bind(task)
        .bind(subjects)
        .fetch_all(&self.pool)
        .await
        .map_err(job)
    }

    async fn plan_through(&self, task: &str, subjects: &[String], period: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO progress (task, subject, period) SELECT $1, s, $3 FROM UNNEST($2::text[]) AS s
             ON CONFLICT (task, subject) DO UPDATE SET period = excluded.period
             WHERE progress.period < excluded.period",
        )
        .bind(task)
        .bind(subjects)
        .bind(period)
        .execute(&self.pool)
        .await
        .map_err(job)?;
        Ok(())
    }
}

/// The (user, day) pairs of a `day_activity` call, as the `due` relation every query of it starts from.
const DUE: &str = "WITH due (user_id, day) AS (SELECT DISTINCT * FROM UNNEST($1::bigint[], $2::date[]))";

#[async_trait]
impl ActivityStore for PgStore {
    async fn time_zones(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT DISTINCT time_zone FROM users ORDER BY time_zone")
            .fetch_all(&self.pool)
            .await
            .map_err(job)
    }

    async fn users_in_zones(&self, zones: &[String], after: i64, limit: u32) -> Result<Vec<i64>> {
        sqlx::query_scalar("SELECT id FROM users WHERE time_zone = ANY($1) AND id > $2 ORDER BY id LIMIT $3")
            .bind(zones)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(job)
    }

    async fn recipients(&self, user_ids: &[i64]) -> Result<Vec<Recipient>> {
        let rows: Vec<(i64, String, String, String, bool)> =
            sqlx::query_as("SELECT id, name, email, time_zone, email_opt_in FROM users WHERE id = ANY($1) ORDER BY id")
                .bind(user_ids)
                .fetch_all(&self.pool)
                .await
                .map_err(job)?;
        Ok(rows.into_iter().map(activity::recipient).collect())
    }

    async fn day_activity(&self, days: &[(i64, NaiveDate)]) -> Result<Vec<DayActivity>> {
        if days.is_empty() {
            return Ok(vec![]);
        }
        let (users, dates): (Vec<i64>, Vec<NaiveDate>) = days.iter().copied().unzip();
        let workouts: Vec<(i64, NaiveDate, String, i32, i32, f64)> = sqlx::query_as(&format!(
            "{DUE} SELECT w.user_id, w.local_date, w.name, w.duration_minutes, w.calories,
                   coalesce((SELECT sum(s.weight_kg * s.reps) FROM workout_sets s WHERE s.workout_id = w.id), 0)
             FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date = due.day
             ORDER BY w.user_id, w.local_date, w.started_at"
        ))
        .bind(&users)
        .bind(&dates)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        let records: Vec<(i64, NaiveDate, String, f64, i32)> = sqlx::query_as(&format!(
            "{DUE} SELECT w.user_id, w.local_date, e.name, s.weight_kg, s.reps
             FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date = due.day
             JOIN workout_sets s ON s.workout_id = w.id AND s.personal_record
             JOIN exercises e ON e.id = s.exercise_id
             ORDER BY w.user_id, w.local_date, w.started_at, s.id"
        ))
        .bind(&users)
        .bind(&dates)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        // The streak runs back to where its run of active days began: the latest active day up to the day
        // whose previous day was not active. An index walk per user, stopping at that day.
        let streaks: Vec<(i64, NaiveDate, i64)> = sqlx::query_as(&format!(
            "{DUE} SELECT due.user_id, due.day, (due.day - (
                 SELECT w.local_date FROM workouts w
                 WHERE w.user_id = due.user_id AND w.local_date <= due.day
                   AND NOT EXISTS (SELECT 1 FROM workouts p
                                   WHERE p.user_id = w.user_id AND p.local_date = w.local_date - 1)
                 ORDER BY w.local_date DESC LIMIT 1) + 1)::bigint
             FROM due
             WHERE EXISTS (SELECT 1 FROM workouts a WHERE a.user_id = due.user_id AND a.local_date = due.day)"
        ))
        .bind(&users)
        .bind(&dates)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        let workouts = workouts
            .into_iter()
            .map(|(user, day, name, minutes, calories, volume)| {
                (user, day, name, i64::from(minutes), i64::from(calories), volume)
            })
            .collect();
        let records = records
            .into_iter()
            .map(|(user, day, exercise, weight, reps)| (user, day, exercise, weight, i64::from(reps)))
            .collect();
        Ok(activity::assemble(workouts, records, streaks))
    }
}

/// Rows per statement when seeding: big enough to amortise round trips, small enough for modest memory.
const SEED_CHUNK: usize = 10_000;

#[async_trait]
impl AppWriter for PgStore {
    async fn add_exercises(&self, names: &[String]) -> Result<Vec<i64>> {
        sqlx::query("INSERT INTO exercises (name) SELECT * FROM UNNEST($1::text[]) ON CONFLICT (name) DO NOTHING")
            .bind(names)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        let ids: HashMap<String, i64> = sqlx::query_as("SELECT name, id FROM exercises WHERE name = ANY($1)")
            .bind(names)
            .fetch_all(&self.pool)
            .await
            .map_err(job)?
            .into_iter()
            .collect();
        Ok(names.iter().map(|n| ids[n]).collect())
    }

    async fn add_users(&self, users: &[NewUser]) -> Result<Vec<i64>> {
        let mut ids = HashMap::with_capacity(users.len());
        for chunk in users.chunks(SEED_CHUNK) {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "INSERT INTO users (name, email, phone, time_zone, email_opt_in)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[])
                 RETURNING email, id",
            )
            .bind(chunk.iter().map(|u| u.name.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|u| u.email.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|u| u.phone.as_deref()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|u| u.time_zone.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|u| u.email_opt_in).collect::<Vec<_>>())
            .fetch_all(&self.pool)
            .await
            .map_err(job)?;
            ids.extend(rows);
        }
        Ok(users.iter().map(|u| ids[&u.email]).collect())
    }

    async fn set_time_zone(&self, user_ids: &[i64], zone: &str) -> Result<()> {
        sqlx::query("UPDATE users SET time_zone = $2 WHERE id = ANY($1)")
            .bind(user_ids)
            .bind(zone)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn add_workouts(&self, workouts: &[NewWorkout]) -> Result<()> {
        for chunk in workouts.chunks(SEED_CHUNK) {
            let mut tx = self.pool.begin().await.map_err(job)?;
            // Ids first, so each set can name its workout without relying on RETURNING's order.
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT nextval(pg_get_serial_sequence('workouts', 'id')) FROM generate_series(1, $1)",
            )
            .bind(chunk.len() as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(job)?;
            sqlx::query(
                "INSERT INTO workouts (id, user_id, name, started_at, local_date, duration_minutes, calories)
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::date[],
                                      $6::int[], $7::int[])",
            )
            .bind(&ids)
            .bind(chunk.iter().map(|w| w.user_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|w| w.name.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|w| w.started_at).collect::<Vec<_>>())
            .bind(chunk.iter().map(|w| w.local_date).collect::<Vec<_>>())
            .bind(chunk.iter().map(|w| w.duration_minutes as i32).collect::<Vec<_>>())
            .bind(chunk.iter().map(|w| w.calories as i32).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(job)?;
            let sets: Vec<_> =
                chunk.iter().zip(&ids).flat_map(|(w, id)| w.sets.iter().map(move |s| (*id, s))).collect();
            sqlx::query(
                "INSERT INTO workout_sets (workout_id, exercise_id, weight_kg, reps, personal_record)
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::float8[], $4::int[], $5::bool[])",
            )
            .bind(sets.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            .bind(sets.iter().map(|(_, s)| s.exercise_id).collect::<Vec<_>>())
            .bind(sets.iter().map(|(_, s)| s.weight_kg).collect::<Vec<_>>())
            .bind(sets.iter().map(|(_, s)| s.reps as i32).collect::<Vec<_>>())
            .bind(sets.iter().map(|(_, s)| s.personal_record).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(job)?;
            tx.commit().await.map_err(job)?;
        }
        Ok(())
    }
}
