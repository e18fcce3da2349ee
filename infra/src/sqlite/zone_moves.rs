use super::*;

#[async_trait]
impl ZoneMoves for SqliteStore {
    async fn planning(&self, task: &str, period: &str, forget_before: &str) -> Result<()> {
        let started = sqlx::query("INSERT INTO period_plans (task, period) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
            .bind(task)
            .bind(period)
            .execute(&self.db)
            .await
            .map_err(job)?;
        if started.rows_affected() > 0 {
            sqlx::query("DELETE FROM period_plans WHERE task = ?1 AND period < ?2")
                .bind(task)
                .bind(forget_before)
                .execute(&self.db)
                .await
                .map_err(job)?;
        }
        Ok(())
    }

    async fn moved_since(&self, task: &str, period: &str, users: &[i64]) -> Result<Vec<i64>> {
        // Stamps are julian days.
        sqlx::query_scalar(
            "SELECT user_id FROM zone_moves
             WHERE user_id IN (SELECT value FROM json_each(?3)) AND moved_at >= coalesce(
                 (SELECT started_at FROM period_plans WHERE task = ?1 AND period = ?2) - ?4 / 86400.0, 0)",
        )
        .bind(task)
        .bind(period)
        .bind(json!(users).to_string())
        .bind(MOVE_COMMIT_SLACK.as_secs_f64())
        .fetch_all(&self.db)
        .await
        .map_err(job)
    }
}
