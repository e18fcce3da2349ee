//! Job-history retention: the floor, and bounded deletes of old runs, run messages, delivery keys and requests.

use shared::ports::{History, HistoryCounts, HistoryCutoff};

use super::{runs::count_in_run, *};

/// Each table's bounded delete: the rows picked by age, in batches of at most `$2`, and deleted with the age
/// re-checked. `$1` is the cutoff; `$3` is, for the runs, the floor (a plan left `planning` before it could never
/// be resumed: it goes too), and for the delivery keys, the tasks whose keys may go. The delivery keys go oldest
/// first, read through their index by (task, updated_at): without the order PostgreSQL, taking the matching keys
/// to be spread evenly, scanned the table for any 500, through every key kept (BENCHMARKS.md).
const DELETES: [&str; 4] = [
    "DELETE FROM job_runs r USING (
         SELECT task, slot FROM job_runs WHERE slot < $1 OR (status = 'planning' AND slot < $3) LIMIT $2) old
     WHERE r.task = old.task AND r.slot = old.slot AND (r.slot < $1 OR (r.status = 'planning' AND r.slot < $3))",
    "DELETE FROM run_messages m USING (SELECT task, slot, part FROM run_messages WHERE slot < $1 LIMIT $2) old
     WHERE m.task = old.task AND m.slot = old.slot AND m.part = old.part AND m.slot < $1",
    "DELETE FROM deliveries d USING (
         SELECT task, subject, period FROM deliveries WHERE updated_at < $1 AND task = ANY($3)
         ORDER BY updated_at LIMIT $2) old
     WHERE d.task = old.task AND d.subject = old.subject AND d.period = old.period AND d.updated_at < $1",
    "DELETE FROM job_requests r USING (SELECT id FROM job_requests WHERE updated_at < $1 LIMIT $2) old
     WHERE r.id = old.id AND r.updated_at < $1",
];

#[async_trait]
impl History for PgStore {
    async fn raise_floor(&self, floor: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO job_history_floor (floor) VALUES ($1)
             ON CONFLICT (only_row) DO UPDATE SET floor = greatest(job_history_floor.floor, excluded.floor)",
        )
        .bind(floor)
        .execute(&self.pool)
        .await
        .map_err(job)?;
        Ok(())
    }

    async fn count_history(&self, cutoff: &HistoryCutoff) -> Result<HistoryCounts> {
        let (runs, run_messages, deliveries, requests): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM job_runs WHERE slot < $1 OR (status = 'planning' AND slot < $3)),
                    (SELECT count(*) FROM run_messages WHERE slot < $1),
                    (SELECT count(*) FROM deliveries WHERE updated_at < $1 AND task = ANY($2)),
                    (SELECT count(*) FROM job_requests WHERE updated_at < $1)",
        )
        .bind(cutoff.before)
        .bind(&cutoff.key_tasks)
        .bind(cutoff.floor)
        .fetch_one(&self.pool)
        .await
        .map_err(job)?;
        Ok(HistoryCounts {
            runs: runs as u64,
            run_messages: run_messages as u64,
            deliveries: deliveries as u64,
            requests: requests as u64,
        })
    }

    async fn delete_history_batch(
        &self,
        cutoff: &HistoryCutoff,
        limit: u32,
        run: Option<(&str, RunPart)>,
    ) -> Result<HistoryCounts> {
        let mut deleted = [0u64; 4];
        for (table, (statement, count)) in DELETES.iter().zip(&mut deleted).enumerate() {
            let mut tx = self.pool.begin().await.map_err(job)?;
            let delete = sqlx::query(statement).bind(cutoff.before).bind(i64::from(limit));
            let delete = match table {
                0 => delete.bind(cutoff.floor),
                2 => delete.bind(&cutoff.key_tasks),
                _ => delete,
            };
            *count = delete.execute(&mut *tx).await.map_err(job)?.rows_affected();
            if let (Some((task, part)), 1..) = (run, *count) {
                count_in_run(&mut tx, task, part, *count as i64, 0).await?;
            }
            tx.commit().await.map_err(job)?;
        }
        let [runs, run_messages, deliveries, requests] = deleted;
        Ok(HistoryCounts { runs, run_messages, deliveries, requests })
    }
}
