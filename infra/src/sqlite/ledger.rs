use super::*;

/// The status of each key `?2` names (`[[subject, period], …]`) for task `?1`. The keys drive (CROSS JOIN keeps
/// SQLite from putting them inside): one primary-key search per key, not a walk of every key the task ever
/// claimed.
pub(super) const CLAIM_STATUSES: &str = "SELECT d.subject, d.period, d.status FROM json_each(?2) k
     CROSS JOIN deliveries d ON d.task = ?1 AND d.subject = json_extract(k.value, '$[0]')
                           AND d.period = json_extract(k.value, '$[1]')";

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
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        let statuses: Vec<(String, String, String)> =
            sqlx::query_as(CLAIM_STATUSES).bind(task).bind(&keys_param).fetch_all(&self.db).await.map_err(job)?;
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
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin().await.map_err(job)?;
        // As on PostgreSQL: an upsert finds each claimed row by its key. Fenced: only the claim this caller holds,
        // still in progress at the attempt it won, leaving `updated_at` at the claim's time.
        let settled: Vec<String> = sqlx::query_scalar(
            "INSERT INTO deliveries AS d (task, subject, period, status, attempts, expires_at, last_error, updated_at)
             SELECT ?1, json_extract(o.value, '$[0]'), json_extract(o.value, '$[1]'), json_extract(o.value, '$[3]'),
                    json_extract(o.value, '$[2]'), ?2, json_extract(o.value, '$[4]'), ?2
             FROM json_each(?3) o WHERE true
             ON CONFLICT (task, subject, period) DO UPDATE SET status = excluded.status,
                 last_error = coalesce(excluded.last_error, d.last_error)
             WHERE d.status = 'in_progress' AND d.attempts = excluded.attempts
             RETURNING status",
        )
        .bind(task)
        .bind(stamp(now))
        .bind(json!(rows).to_string())
        .fetch_all(&mut *tx)
        .await
        .map_err(job)?;
        // How many of the settled rows' new statuses are done, and how many failed for good.
        let (done, failed) = settled.iter().fold((0, 0), |(done, failed), status| match status.as_str() {
            "done" => (done + 1, failed),
            "failed" => (done, failed + 1),
            _ => (done, failed),
        });
        if done + failed > 0 {
            super::runs::count_in_run(&mut tx, task, run, done, failed).await?;
        }
        tx.commit().await.map_err(job)?;
        Ok(settled.len() as u64)
    }
}
