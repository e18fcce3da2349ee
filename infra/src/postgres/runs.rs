use super::*;

/// The last five errors of a run, newest last, after appending the JSON array bound as parameter `new`.
fn last_five_errors(new: usize) -> String {
    format!(
        "(SELECT coalesce(jsonb_agg(e ORDER BY n), '[]') FROM (
             SELECT e, n FROM jsonb_array_elements(job_runs.errors || ${new}::jsonb) WITH ORDINALITY AS t (e, n)
             ORDER BY n DESC LIMIT 5) last)"
    )
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

/// The upsert that adds to a run message's counts the one row of (task, slot, part, sent, failed) that `rows`
/// gives (a `VALUES`, or a `SELECT` over what a statement just settled).
pub(crate) fn count_in_run_sql(rows: &str) -> String {
    format!(
        "INSERT INTO run_messages (task, slot, part, sent, failed) {rows}
         ON CONFLICT (task, slot, part) DO UPDATE
         SET sent = run_messages.sent + excluded.sent, failed = run_messages.failed + excluded.failed"
    )
}

/// Counts side effects done and failed for good into `run`'s message, on the caller's connection: in the
/// transaction that performs or records them, so a worker killed after its commit still has them counted. Returns
/// the message's sent count after this one, every delivery of the message included.
pub(crate) async fn count_in_run(
    conn: &mut sqlx::PgConnection,
    task: &str,
    run: RunPart,
    sent: i64,
    failed: i64,
) -> Result<u64> {
    let total: i64 = sqlx::query_scalar(&format!("{} RETURNING sent", count_in_run_sql("VALUES ($1, $2, $3, $4, $5)")))
        .bind(task)
        .bind(run.slot)
        .bind(run.part as i64)
        .bind(sent)
        .bind(failed)
        .fetch_one(conn)
        .await
        .map_err(job)?;
    Ok(total as u64)
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
        run_rows::start(inserted == 1, existing)
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

    async fn record_event(&self, task: &str, slot: DateTime<Utc>, part: u64, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(job)?;
        sqlx::query(
            "INSERT INTO job_runs (task, slot, status, started_at) VALUES ($1, $2, 'planned', $3)
             ON CONFLICT (task, slot) DO NOTHING",
        )
        .bind(task)
        .bind(slot)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        let new = sqlx::query("INSERT INTO run_messages (task, slot, part) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(task)
            .bind(slot)
            .bind(part as i64)
            .execute(&mut *tx)
            .await
            .map_err(job)?
            .rows_affected();
        if new == 1 {
            sqlx::query(
                "UPDATE job_runs SET planned = planned + 1, messages = messages + 1, status = 'planned',
                                     finished_at = NULL
                 WHERE task = $1 AND slot = $2",
            )
            .bind(task)
            .bind(slot)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        }
        tx.commit().await.map_err(job)
    }

    async fn record_work(&self, task: &str, slot: DateTime<Utc>, tally: &WorkTally, now: DateTime<Utc>) -> Result<()> {
        let part = tally.part as i64;
        type Counts = (i64, i64, i64, i64, i64, bool);
        let lock = "SELECT sent, failed, reported_sent, reported_failed, skipped, finished FROM run_messages
                    WHERE task = $1 AND slot = $2 AND part = $3 FOR UPDATE";
        let mut tx = self.pool.begin().await.map_err(job)?;
        // The message's row, locked. Its first settlement made it; a message that settled nothing makes it here.
        let found: Option<Counts> =
            sqlx::query_as(lock).bind(task).bind(slot).bind(part).fetch_optional(&mut *tx).await.map_err(job)?;
        let (sent, failed, reported_sent, reported_failed, skipped, finished) = match found {
            Some(counts) => counts,
            None => {
                sqlx::query("INSERT INTO run_messages (task, slot, part) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(task)
                    .bind(slot)
                    .bind(part)
                    .execute(&mut *tx)
                    .await
                    .map_err(job)?;
                sqlx::query_as(lock).bind(task).bind(slot).bind(part).fetch_one(&mut *tx).await.map_err(job)?
            }
        };
        let before = run_rows::MessageCounts { sent, failed, reported_sent, reported_failed, skipped, finished };
        let (after, delta) = run_rows::after_attempt(before, tally);
        // The message's row and its run's, in one statement.
        let query = format!(
            "WITH message AS (
                 UPDATE run_messages SET reported_sent = $10, reported_failed = $11, skipped = $12, finished = $13
                 WHERE task = $5 AND slot = $6 AND part = $9)
             UPDATE job_runs SET sent = sent + $7, failed = failed + $8, skipped = skipped + $1,
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
            .bind(part)
            .bind(after.reported_sent)
            .bind(after.reported_failed)
            .bind(after.skipped)
            .bind(after.finished)
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

    async fn plan_history(&self, task: &str) -> Result<PlanHistory> {
        let rows: Vec<(DateTime<Utc>, bool)> = sqlx::query_as(
            "SELECT slot, true FROM job_runs WHERE task = $1 AND status = 'planning'
             UNION ALL
             (SELECT slot, false FROM job_runs WHERE task = $1 AND status <> 'planning' ORDER BY slot DESC LIMIT 1)",
        )
        .bind(task)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        run_rows::plan_history(rows.into_iter().map(Ok))
    }

    async fn run(&self, task: &str, slot: DateTime<Utc>) -> Result<Option<RunRecord>> {
        sqlx::query(&format!("SELECT {} FROM job_runs WHERE task = $1 AND slot = $2", run_rows::COLUMNS))
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
            run_rows::COLUMNS,
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

    async fn history_floor(&self) -> Result<Option<DateTime<Utc>>> {
        sqlx::query_scalar("SELECT floor FROM job_history_floor").fetch_optional(&self.pool).await.map_err(job)
    }

    async fn start_request(
        &self,
        kind: &str,
        request: &shared::ports::Request,
        now: DateTime<Utc>,
        hold: Duration,
    ) -> Result<shared::ports::RequestStart> {
        super::requests::start(&self.pool, kind, request, now, hold).await
    }

    async fn finish_request(
        &self,
        id: &str,
        attempt: u32,
        outcome: &shared::ports::RequestOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        super::requests::finish(&self.pool, id, attempt, outcome, now).await
    }

    async fn request(&self, id: &str) -> Result<Option<shared::ports::RequestRecord>> {
        super::requests::find(&self.pool, id).await
    }

    async fn user_requests(&self, user_id: i64, limit: u32) -> Result<Vec<shared::ports::RequestRecord>> {
        super::requests::of_user(&self.pool, user_id, limit).await
    }
}
