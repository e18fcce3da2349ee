use super::*;

#[async_trait]
impl Unsubscribes for SqliteStore {
    async fn unsubscribe(&self, nonce: &str, user_id: i64, kind: Kind, at: DateTime<Utc>) -> Result<Unsubscribed> {
        // The nonce first: a replay stops at its primary key, and the transaction writes before it reads, so it
        // never has to upgrade a read lock (which SQLite can refuse as busy).
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin().await.map_err(job)?;
        let recorded = sqlx::query(
            "INSERT INTO unsubscribes (nonce, user_id, kind, at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(user_id)
        .bind(kind.as_str())
        .bind(stamp(at))
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        if recorded.rows_affected() == 0 {
            return Ok(Unsubscribed::AlreadyUsed);
        }
        let user: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = ?1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(job)?;
        if user.is_none() {
            // Dropping the transaction rolls the nonce back: nothing changed.
            return Ok(Unsubscribed::NoSuchUser);
        }
        sqlx::query(
            "INSERT INTO preferences (user_id, kind, channel, allowed) VALUES (?1, ?2, 'email', 0)
             ON CONFLICT (user_id, kind, channel) DO UPDATE SET allowed = 0",
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
