use super::*;

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
