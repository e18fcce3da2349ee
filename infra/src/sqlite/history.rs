//! Job-history retention: the floor, and bounded deletes of old runs, run messages, delivery keys and requests.

use shared::ports::{History, HistoryCounts, HistoryCutoff};

use super::{runs::count_in_run, *};

/// Each table's bounded delete: the rows picked by age, in batches of at most `?2`, and deleted with the age
/// re-checked. `?1` is the cutoff; `?3` is, for the runs, the floor (a plan left `planning` before it could never
/// be resumed: it goes too), and for the delivery keys, the tasks whose keys may go (a JSON array).
pub(super) const DELETES: [&str; 4] = [
    "DELETE FROM job_runs WHERE rowid IN (
         SELECT rowid FROM job_runs WHERE slot < ?1 OR (status = 'planning' AND slot < ?3) LIMIT ?2)
     AND (slot < ?1 OR (status = 'planning' AND slot < ?3))",
    "DELETE FROM run_messages WHERE rowid IN (SELECT rowid FROM run_messages WHERE slot < ?1 LIMIT ?2)
     AND slot < ?1",
    "DELETE FROM deliveries WHERE rowid IN (
         SELECT rowid FROM deliveries WHERE updated_at < ?1 AND task IN (SELECT value FROM json_each(?3)) LIMIT ?2)
     AND updated_at < ?1",
    "DELETE FROM job_requests WHERE rowid IN (SELECT rowid FROM job_requests WHERE updated_at < ?1 LIMIT ?2)
     AND updated_at < ?1",
];

#[async_trait]
impl History for SqliteStore {
    async fn raise_floor(&self, floor: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO job_history_floor (only_row, floor) VALUES (1, ?1)
             ON CONFLICT (only_row) DO UPDATE SET floor = max(job_history_floor.floor, excluded.floor)",
        )
        .bind(stamp(floor))
        .execute(&self.db)
        .await
        .map_err(job)?;
        Ok(())
    }

    async fn count_history(&self, cutoff: &HistoryCutoff) -> Result<HistoryCounts> {
        let (runs, run_messages, deliveries, requests): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM job_runs WHERE slot < ?1 OR (status = 'planning' AND slot < ?3)),
                    (SELECT count(*) FROM run_messages WHERE slot < ?1),
                    (SELECT count(*) FROM deliveries
                     WHERE updated_at < ?1 AND task IN (SELECT value FROM json_each(?2))),
                    (SELECT count(*) FROM job_requests WHERE updated_at < ?1)",
        )
        .bind(stamp(cutoff.before))
        .bind(json!(cutoff.key_tasks).to_string())
        .bind(stamp(cutoff.floor))
        .fetch_one(&self.db)
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
        let (before, tasks) = (stamp(cutoff.before), json!(cutoff.key_tasks).to_string());
        let mut deleted = [0u64; 4];
        for (table, (statement, count)) in DELETES.iter().zip(&mut deleted).enumerate() {
            let mut connection = self.db.lock().await;
            let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
            let delete = sqlx::query(statement).bind(&before).bind(i64::from(limit));
            let delete = match table {
                0 => delete.bind(stamp(cutoff.floor)),
                2 => delete.bind(&tasks),
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
