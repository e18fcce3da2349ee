use super::*;

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

/// Counts side effects done and failed for good into `run`'s message, on the caller's connection: in the
/// transaction that performs or records them, so a worker killed after its commit still has them counted. Returns
/// the message's sent count after this one, every delivery of the message included.
pub(crate) async fn count_in_run(
    conn: &mut sqlx::SqliteConnection,
    task: &str,
    run: RunPart,
    sent: i64,
    failed: i64,
) -> Result<u64> {
    let total: i64 = sqlx::query_scalar(
        "INSERT INTO run_messages (task, slot, part, sent, failed) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (task, slot, part) DO UPDATE
         SET sent = run_messages.sent + excluded.sent, failed = run_messages.failed + excluded.failed
         RETURNING sent",
    )
    .bind(task)
    .bind(stamp(run.slot))
    .bind(run.part as i64)
    .bind(sent)
    .bind(failed)
    .fetch_one(conn)
    .await
    .map_err(job)?;
    Ok(total as u64)
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
        .execute(&self.db)
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
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn record_event(&self, task: &str, slot: DateTime<Utc>, part: u64, now: DateTime<Utc>) -> Result<()> {
        let slot = stamp(slot);
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        sqlx::query(
            "INSERT INTO job_runs (task, slot, status, started_at) VALUES (?1, ?2, 'planned', ?3)
             ON CONFLICT (task, slot) DO NOTHING",
        )
        .bind(task)
        .bind(&slot)
        .bind(stamp(now))
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        let new = sqlx::query("INSERT INTO run_messages (task, slot, part) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
            .bind(task)
            .bind(&slot)
            .bind(part as i64)
            .execute(&mut *tx)
            .await
            .map_err(job)?
            .rows_affected();
        if new == 1 {
            sqlx::query(
                "UPDATE job_runs SET planned = planned + 1, messages = messages + 1, status = 'planned',
                                     finished_at = NULL
                 WHERE task = ?1 AND slot = ?2",
            )
            .bind(task)
            .bind(&slot)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        }
        tx.commit().await.map_err(job)
    }

    async fn record_work(&self, task: &str, slot: DateTime<Utc>, tally: &WorkTally, now: DateTime<Utc>) -> Result<()> {
        let (slot, part) = (stamp(slot), tally.part as i64);
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin().await.map_err(job)?;
        // The message's row, made by its first settlement or here, read by a write: the transaction holds the
        // write lock before it reads.
        let (sent, failed, reported_sent, reported_failed, skipped, finished): (i64, i64, i64, i64, i64, bool) =
            sqlx::query_as(
                "INSERT INTO run_messages (task, slot, part) VALUES (?1, ?2, ?3)
                 ON CONFLICT (task, slot, part) DO UPDATE SET part = excluded.part
                 RETURNING sent, failed, reported_sent, reported_failed, skipped, finished",
            )
            .bind(task)
            .bind(&slot)
            .bind(part)
            .fetch_one(&mut *tx)
            .await
            .map_err(job)?;
        let before = run_rows::MessageCounts { sent, failed, reported_sent, reported_failed, skipped, finished };
        let (after, delta) = run_rows::after_attempt(before, tally);
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
        .execute(&self.db)
        .await
        .map_err(job)?;
        Ok(inserted.rows_affected())
    }

    async fn plan_history(&self, task: &str) -> Result<PlanHistory> {
        // The newest finished slot down the primary key from the newest slot, stopping at the first not
        // `planning` (max(slot) with the status filter would read every run of the task); the unfinished ones
        // through `job_runs_planning`.
        let rows: Vec<(String, bool)> = sqlx::query_as(
            "SELECT slot, true FROM job_runs WHERE task = ?1 AND status = 'planning'
             UNION ALL
             SELECT * FROM (SELECT slot, false FROM job_runs WHERE task = ?1 AND status <> 'planning'
                            ORDER BY slot DESC LIMIT 1)",
        )
        .bind(task)
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        run_rows::plan_history(rows.iter().map(|(slot, unfinished)| Ok((parse_stamp(slot)?, *unfinished))))
    }

    async fn run(&self, task: &str, slot: DateTime<Utc>) -> Result<Option<RunRecord>> {
        sqlx::query(&format!("SELECT {} FROM job_runs WHERE task = ? AND slot = ?", run_rows::COLUMNS))
            .bind(task)
            .bind(stamp(slot))
            .fetch_optional(&self.db)
            .await
            .and_then(|row| row.as_ref().map(run_record).transpose())
            .map_err(job)
    }

    async fn recent_runs(&self, task: Option<&str>, limit: u32) -> Result<Vec<RunRecord>> {
        sqlx::query(&format!(
            "SELECT {} FROM job_runs WHERE ?1 IS NULL OR task = ?1
             ORDER BY slot DESC, started_at DESC LIMIT ?2",
            run_rows::COLUMNS,
        ))
        .bind(task)
        .bind(limit)
        .fetch_all(&self.db)
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
        .execute(&self.db)
        .await
        .map_err(job)?;
        Ok(taken.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn history_floor(&self) -> Result<Option<DateTime<Utc>>> {
        let floor: Option<String> =
            sqlx::query_scalar("SELECT floor FROM job_history_floor").fetch_optional(&self.db).await.map_err(job)?;
        floor.as_deref().map(parse_stamp).transpose().map_err(job)
    }

    async fn start_request(
        &self,
        kind: &str,
        request: &shared::ports::Request,
        now: DateTime<Utc>,
        hold: Duration,
    ) -> Result<shared::ports::RequestStart> {
        super::requests::start(&self.db, kind, request, now, hold).await
    }

    async fn finish_request(
        &self,
        id: &str,
        attempt: u32,
        outcome: &shared::ports::RequestOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        super::requests::finish(&self.db, id, attempt, outcome, now).await
    }

    async fn request(&self, id: &str) -> Result<Option<shared::ports::RequestRecord>> {
        super::requests::find(&self.db, id).await
    }

    async fn user_requests(&self, user_id: i64, limit: u32) -> Result<Vec<shared::ports::RequestRecord>> {
        super::requests::of_user(&self.db, user_id, limit).await
    }
}
