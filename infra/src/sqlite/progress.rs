use super::*;

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
