use super::*;

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
            super::runs::count_in_run(&mut tx, task, run, done, failed).await?;
        }
        tx.commit().await.map_err(job)?;
        Ok(settled.len() as u64)
    }
}
