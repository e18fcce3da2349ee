//! The order notifications' SQL on PostgreSQL: an order with its lines, its latest decline and its next retry.

use shared::ports::{OrderLine, OrderNotice, OrderNotices};

use super::*;

#[async_trait]
impl OrderNotices for PgStore {
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
            Json<Vec<(String, i64, i64)>>,
        )> = sqlx::query_as(
            "SELECT o.id, o.user_id, o.subscription_id, o.delivery_date, o.status, o.total_cents, o.currency,
                        o.retry_on,
                        (SELECT p.decline_reason FROM payments p WHERE p.order_id = o.id AND p.status = 'declined'
                         ORDER BY p.attempt DESC LIMIT 1),
                        coalesce((SELECT json_agg(json_build_array(coalesce(pr.name, 'product ' || i.product_id),
                                                                   i.quantity, i.unit_price_cents)
                                                  ORDER BY i.product_id)
                                  FROM order_items i LEFT JOIN products pr ON pr.id = i.product_id
                                  WHERE i.order_id = o.id), '[]')
                 FROM orders o WHERE o.id = ANY($1) ORDER BY o.id",
        )
        .bind(orders)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        Ok(rows
            .into_iter()
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
                    Json(lines),
                )| OrderNotice {
                    order_id,
                    user_id,
                    subscription_id,
                    delivery_date,
                    status,
                    total_cents,
                    currency,
                    lines: lines
                        .into_iter()
                        .map(|(product, quantity, unit_price_cents)| OrderLine { product, quantity, unit_price_cents })
                        .collect(),
                    decline_reason,
                    retry_on,
                },
            )
            .collect())
    }
}
