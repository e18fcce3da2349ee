//! The renewal reminders' SQL on SQLite: the active subscriptions delivering on a day, and a chunk of
//! subscriptions as they are now, with their product if it is still sold.

use shared::ports::{Renewal, Renewals};

use super::*;
use crate::store::renewal_reminders::RenewalRow;

#[async_trait]
impl Renewals for SqliteStore {
    async fn renewals_due(&self, delivery_date: NaiveDate, after: i64, limit: u32) -> Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM subscriptions
             WHERE status = 'active' AND next_delivery_date = ?1 AND id > ?2
             ORDER BY id LIMIT ?3",
        )
        .bind(delivery_date)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.db)
        .await
        .map_err(job)
    }

    async fn renewals(&self, subscriptions: &[i64]) -> Result<Vec<Renewal>> {
        let rows: Vec<RenewalRow> = sqlx::query_as(
            "SELECT s.id, s.user_id, s.status, s.next_delivery_date, p.name AS product, s.quantity,
                    coalesce(p.price_cents * s.quantity, 0) AS amount_cents, coalesce(p.currency, '') AS currency,
                    s.payment_method, s.frequency, s.interval_days, s.anchor_day
             FROM subscriptions s
             LEFT JOIN products p ON p.id = s.product_id AND p.deleted_at IS NULL
             WHERE s.id IN (SELECT value FROM json_each(?1))
             ORDER BY s.id",
        )
        .bind(json!(subscriptions).to_string())
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        Ok(rows.into_iter().map(Renewal::from).collect())
    }
}
