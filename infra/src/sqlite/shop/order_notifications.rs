//! The order notifications' SQL on SQLite: an order with its lines, its latest decline and its next retry.

use shared::ports::{OrderLine, OrderNotice, OrderNotices};

use super::*;

#[async_trait]
impl OrderNotices for SqliteStore {
    async fn order_notices(&self, orders: &[i64]) -> Result<Vec<OrderNotice>> {
        let rows: Vec<(
            i64,
            i64,
            Option<i64>,
            NaiveDate,
            String,
            i64,
            String,
            Option<NaiveDate>,
            Option<String>,
            String,
        )> = sqlx::query_as(
            "SELECT o.id, o.user_id, o.subscription_id, o.delivery_date, o.status, o.total_cents, o.currency,
                        o.retry_on,
                        (SELECT p.decline_reason FROM payments p WHERE p.order_id = o.id AND p.status = 'declined'
                         ORDER BY p.attempt DESC LIMIT 1),
                        (SELECT json_group_array(json_array(coalesce(pr.name, 'product ' || i.product_id), i.quantity,
                                                            i.unit_price_cents))
                         FROM (SELECT * FROM order_items WHERE order_id = o.id ORDER BY product_id) i
                         LEFT JOIN products pr ON pr.id = i.product_id)
                 FROM orders o WHERE o.id IN (SELECT value FROM json_each(?1)) ORDER BY o.id",
        )
        .bind(json!(orders).to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        rows.into_iter()
            .map(
                |(
                    order_id,
                    user_id,
                    subscription_id,
                    delivery_date,
                    status,
                    total_cents,
                    currency,
                    retry_on,
                    decline_reason,
                    lines,
                )| {
                    let lines: Vec<(String, i64, i64)> = serde_json::from_str(&lines).map_err(|e| {
                        shared::Error::permanent(format!("order {order_id}'s lines do not read back: {e}"))
                    })?;
                    Ok(OrderNotice {
                        order_id,
                        user_id,
                        subscription_id,
                        delivery_date,
                        status,
                        total_cents,
                        currency,
                        lines: lines
                            .into_iter()
                            .map(|(product, quantity, unit_price_cents)| OrderLine {
                                product,
                                quantity,
                                unit_price_cents,
                            })
                            .collect(),
                        decline_reason,
                        retry_on,
                    })
                },
            )
            .collect()
    }
}
