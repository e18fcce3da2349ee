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
        // One statement: the claim, and each key's status as the statement found it. Both parts read one
        // snapshot; the claim's conflict check reads the latest row. So a key another worker inserted or settled
        // just now may be unknown to the snapshot or older in it: not won, and not done or failed there, it
        // counts as busy and its message comes back. Done and failed never change, so when the snapshot says
        // so, it is so.
        // Only the keys not won are looked up again (a join would probe the index for every key, its condition
        // on `won` a filter applied after the probe).
        let rows: Vec<(String, String, Option<i32>, Option<String>)> = sqlx::query_as(
            "WITH won AS (
                 INSERT INTO deliveries (task, subject, period, status, attempts, expires_at, updated_at)
                 SELECT $1, k.subject, k.period, 'in_progress', 1, $2, $3
                 FROM UNNEST($4::text[], $5::text[]) AS k (subject, period)
                 ON CONFLICT (task, subject, period) DO UPDATE SET
                     status = 'in_progress', attempts = deliveries.attempts + 1,
                     expires_at = excluded.expires_at, updated_at = excluded.updated_at
                 WHERE deliveries.status = 'retryable'
                    OR (deliveries.status = 'in_progress' AND deliveries.expires_at <= $3)
                 RETURNING subject, period, attempts)
             SELECT k.subject, k.period, won.attempts,
                    CASE WHEN won.subject IS NULL THEN (SELECT d.status FROM deliveries d WHERE d.task = $1
                                                        AND d.subject = k.subject AND d.period = k.period) END
             FROM UNNEST($4::text[], $5::text[]) AS k (subject, period)
             LEFT JOIN won ON won.subject = k.subject AND won.period = k.period",
        )
        .bind(task)
        .bind(later(now, hold))
        .bind(now)
        .bind(&subjects)
        .bind(&periods)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        let (mut won, mut statuses) = (vec![], vec![]);
        for (subject, period, attempt, status) in rows {
            match (attempt, status) {
                (Some(attempt), _) => won.push((subject, period, attempt)),
                (None, Some(status)) => statuses.push((subject, period, status)),
                (None, None) => {}
            }
        }
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
        // An upsert whose rows always exist (the claim made them): the conflict finds each by its key, whatever
        // the table's statistics, and locks them in the keys' order, as a claim does, so the two never deadlock.
        // Fenced: only the claim this caller holds, still in progress at the attempt it won. The rows it settles
        // as done or failed are counted into the run's message by the same statement: one round trip and one
        // commit, all or nothing. `updated_at` stays the claim's (a key's age counts from its last claim): with no
        // indexed column changed and the room the table's fillfactor leaves, the update is heap-only, writing no
        // index entry.
        let count = super::runs::count_in_run_sql(
            "SELECT $1, $8, $9, count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed')
             FROM settled HAVING count(*) FILTER (WHERE status IN ('done', 'failed')) > 0",
        );
        let settled: Vec<String> = sqlx::query_scalar(&format!(
            "WITH settled AS (
                 INSERT INTO deliveries AS d (task, subject, period, status, attempts, expires_at, last_error, updated_at)
                 SELECT $1, o.subject, o.period, o.status, o.attempt, $2, o.error, $2
                 FROM UNNEST($3::text[], $4::text[], $5::int[], $6::text[], $7::text[])
                      AS o (subject, period, attempt, status, error)
                 ON CONFLICT (task, subject, period) DO UPDATE SET status = excluded.status,
                     last_error = coalesce(excluded.last_error, d.last_error)
                 WHERE d.status = 'in_progress' AND d.attempts = excluded.attempts
                 RETURNING d.status),
             counted AS ({count})
             SELECT status FROM settled"
        ))
        .bind(task)
        .bind(now)
        .bind(&subjects)
        .bind(&periods)
        .bind(&attempts)
        .bind(&statuses)
        .bind(&errors)
        .bind(run.slot)
        .bind(run.part as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        Ok(settled.len() as u64)
    }
}
