use super::*;

#[async_trait]
impl Unsubscribes for PgStore {
    async fn unsubscribe(&self, nonce: &str, user_id: i64, kind: Kind, at: DateTime<Utc>) -> Result<Unsubscribed> {
        // The nonce first: a replay stops at its primary key, waiting for a concurrent first use to settle.
        let mut tx = self.pool.begin().await.map_err(job)?;
        let recorded = sqlx::query(
            "INSERT INTO unsubscribes (nonce, user_id, kind, at) VALUES ($1, $2, $3, $4) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(user_id)
        .bind(kind.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        if recorded.rows_affected() == 0 {
            return Ok(Unsubscribed::AlreadyUsed);
        }
        let user: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(job)?;
        if user.is_none() {
            // Dropping the transaction rolls the nonce back: nothing changed.
            return Ok(Unsubscribed::NoSuchUser);
        }
        sqlx::query(
            "INSERT INTO preferences (user_id, kind, channel, allowed) VALUES ($1, $2, 'email', FALSE)
             ON CONFLICT (user_id, kind, channel) DO UPDATE SET allowed = FALSE",
        )
        .bind(user_id)
        .bind(kind.as_str())
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        tx.commit().await.map_err(job)?;
        Ok(Unsubscribed::Done)
    }
}
