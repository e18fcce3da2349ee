//! The order notifications' SQL on SQLite: an order with its lines, its latest decline and its next retry.

use shared::ports::{OrderNotice, OrderNotices};

use super::*;
use crate::store::order_notifications::NoticeRow;

#[async_trait]
impl OrderNotices for SqliteStore {
    async fn order_notices(&self, orders: &[i64]) -> Result<Vec<OrderNotice>> {
        let rows: Vec<NoticeRow> = sqlx::query_as(
            "SELECT o.id AS order_id, o.user_id, o.subscription_id, o.delivery_date, o.status, o.total_cents,
                    o.currency, o.retry_on,
                    (SELECT p.decline_reason FROM payments p WHERE p.order_id = o.id AND p.status = 'declined'
                     ORDER BY p.attempt DESC LIMIT 1) AS decline_reason,
                    (SELECT json_group_array(json_array(coalesce(pr.name, 'product ' || i.product_id), i.quantity,
                                                        i.unit_price_cents))
                     FROM (SELECT * FROM order_items WHERE order_id = o.id ORDER BY product_id) i
                     LEFT JOIN products pr ON pr.id = i.product_id) AS lines
             FROM orders o WHERE o.id IN (SELECT value FROM json_each(?1)) ORDER BY o.id",
        )
        .bind(json!(orders).to_string())
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        rows.into_iter().map(OrderNotice::try_from).collect()
    }
}
