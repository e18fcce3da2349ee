use super::*;

/// The statements' `$n` placeholders as SQLite's `?n`.
fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

#[async_trait]
impl Suppressions for SqliteStore {
    async fn suppress(&self, feedback: &[Suppression]) -> Result<()> {
        // One statement per address (a feedback names a few), in one write transaction.
        let upsert = sqlite(suppression_rows::UPSERT);
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        for s in feedback {
            sqlx::query(&upsert)
                .bind(&s.address)
                .bind(s.reason.as_str())
                .bind(&s.feedback_id)
                .bind(&s.subtype)
                .bind(stamp(s.at))
                .execute(&mut *tx)
                .await
                .map_err(job)?;
        }
        tx.commit().await.map_err(job)
    }

    async fn suppressions(&self) -> Result<Vec<SuppressedAddress>> {
        let rows: Vec<suppression_rows::Row<String>> =
            sqlx::query_as(suppression_rows::LIST).fetch_all(&self.db).await.map_err(job)?;
        rows.into_iter().map(|row| suppression_rows::row(row, |t| parse_stamp(&t)).map_err(job)).collect()
    }

    async fn lift(&self, address: &str) -> Result<bool> {
        let lifted = sqlx::query(&sqlite(suppression_rows::LIFT))
            .bind(normalise(address))
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(lifted.rows_affected() > 0)
    }
}
