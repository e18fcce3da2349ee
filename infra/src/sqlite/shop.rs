//! The shop on SQLite: subscriptions turned into orders and charged (the states are told in
//! `shared::tasks::shop::subscription_processing`), and the app's side for seeding. Each task's reads are in
//! the file named after it.

use super::*;
use shared::ports::{
    after_decline, delivery, out_of_stock, payment_key, ChargeOutcome, ChargeRequest, Dunning, NewProduct,
    NewSubscription, OrderEvent, OrderEventKind, OrderRecord, PendingCharge, ProductRow, ShopStore, ShopWriter, Step,
    StockWait, SubscriptionStatus,
};
use sqlx::{Sqlite, Transaction};

use crate::store::order_event;

mod order_notifications;
mod renewal_reminders;

type Tx<'a> = Transaction<'a, Sqlite>;

/// A subscription's row, read under its lock.
#[derive(sqlx::FromRow)]
struct Subscription {
    user_id: i64,
    product_id: i64,
    quantity: i64,
    frequency: String,
    interval_days: Option<i32>,
    anchor_day: Option<i32>,
    next_delivery_date: NaiveDate,
    status: String,
    payment_method: String,
}

/// A charge attempt made and not settled.
#[derive(sqlx::FromRow)]
struct Pending {
    payment_id: i64,
    order_id: i64,
    attempt: i32,
    key: String,
    amount_cents: i64,
    currency: String,
    method: String,
    claimed_until: Option<String>,
}

async fn event(tx: &mut Tx<'_>, order_id: i64, kind: OrderEventKind, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("INSERT INTO order_events (order_id, kind, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
        .bind(order_id)
        .bind(kind.as_str())
        .bind(stamp(now))
        .execute(&mut **tx)
        .await
        .map_err(job)?;
    Ok(())
}

/// Puts an order's items back in stock: its delivery will not be sent.
async fn restock(tx: &mut Tx<'_>, order_id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE products SET stock = stock + i.quantity FROM order_items i
         WHERE i.order_id = ?1 AND products.id = i.product_id",
    )
    .bind(order_id)
    .execute(&mut **tx)
    .await
    .map_err(job)?;
    Ok(())
}

/// A new charge attempt of an order, claimed by the caller until `until`.
async fn new_payment(
    tx: &mut Tx<'_>,
    order_id: i64,
    attempt: u32,
    request: ChargeRequest,
    now: DateTime<Utc>,
    until: &str,
    more_due: bool,
) -> Result<PendingCharge> {
    let payment_id: i64 = sqlx::query_scalar(
        "INSERT INTO payments (order_id, attempt, idempotency_key, amount_cents, currency, method, status,
                               claimed_until, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8) RETURNING id",
    )
    .bind(order_id)
    .bind(attempt as i32)
    .bind(&request.key)
    .bind(request.amount_cents)
    .bind(&request.currency)
    .bind(&request.method)
    .bind(until)
    .bind(stamp(now))
    .fetch_one(&mut **tx)
    .await
    .map_err(job)?;
    Ok(PendingCharge { payment_id, order_id, attempt, request, more_due })
}

/// Moves a subscription's next delivery to `next`.
async fn advance(tx: &mut Tx<'_>, subscription: i64, next: NaiveDate) -> Result<()> {
    sqlx::query("UPDATE subscriptions SET next_delivery_date = ?2 WHERE id = ?1")
        .bind(subscription)
        .bind(next)
        .execute(&mut **tx)
        .await
        .map_err(job)?;
    Ok(())
}

impl SqliteStore {
    /// Inserts `rows` with ids following the table's largest, in order, in one write transaction: `insert`
    /// binds the first id as ?1 and the rows as a JSON array ?2.
    pub(super) async fn insert_in_order(
        &self,
        insert: &str,
        table: &str,
        rows: Vec<serde_json::Value>,
    ) -> Result<Vec<i64>> {
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        let first: i64 = sqlx::query_scalar(&format!("SELECT coalesce(max(id), 0) + 1 FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .map_err(job)?;
        let n = rows.len() as i64;
        sqlx::query(insert).bind(first).bind(json!(rows).to_string()).execute(&mut *tx).await.map_err(job)?;
        tx.commit().await.map_err(job)?;
        Ok((first..first + n).collect())
    }

    async fn step(&self, tx: &mut Tx<'_>, id: i64, day: NaiveDate, now: DateTime<Utc>, until: &str) -> Result<Step> {
        let subscription: Option<Subscription> = sqlx::query_as(
            "SELECT user_id, product_id, quantity, frequency, interval_days, anchor_day, next_delivery_date,
                    status, payment_method
             FROM subscriptions WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(job)?;
        let Some(sub) = subscription else { return Ok(Step::Nothing("subscription deleted")) };

        // First an attempt already made, whose answer was never recorded: asked again with its own key.
        let pending: Option<Pending> = sqlx::query_as(
            "SELECT p.id AS payment_id, p.order_id, p.attempt, p.idempotency_key AS key, p.amount_cents, p.currency,
                    p.method, p.claimed_until
             FROM payments p JOIN orders o ON o.id = p.order_id
             WHERE o.subscription_id = ?1 AND o.status IN ('pending_payment', 'payment_failed')
               AND p.status = 'pending'
             ORDER BY p.id LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(job)?;
        if let Some(Pending { payment_id, order_id, attempt, key, amount_cents, currency, method, claimed_until }) =
            pending
        {
            if claimed_until.is_some_and(|until| until > stamp(now)) {
                return Ok(Step::Busy);
            }
            sqlx::query("UPDATE payments SET claimed_until = ?2 WHERE id = ?1")
                .bind(payment_id)
                .bind(until)
                .execute(&mut **tx)
                .await
                .map_err(job)?;
            let request = ChargeRequest { key, amount_cents, currency, method };
            return Ok(Step::Charge(PendingCharge {
                payment_id,
                order_id,
                attempt: attempt as u32,
                request,
                more_due: true,
            }));
        }

        // Then a declined order whose dunning retry is due.
        let dunning: Option<(i64, i64, String, i32)> = sqlx::query_as(
            "SELECT o.id, o.total_cents, o.currency, (SELECT max(attempt) FROM payments p WHERE p.order_id = o.id)
             FROM orders o
             WHERE o.subscription_id = ?1 AND o.status = 'payment_failed' AND o.retry_on <= ?2
             ORDER BY o.id LIMIT 1",
        )
        .bind(id)
        .bind(day)
        .fetch_optional(&mut **tx)
        .await
        .map_err(job)?;
        if let Some((order_id, amount_cents, currency, attempts)) = dunning {
            if sub.status != "active" {
                sqlx::query("UPDATE orders SET status = 'cancelled', retry_on = NULL, updated_at = ?2 WHERE id = ?1")
                    .bind(order_id)
                    .bind(stamp(now))
                    .execute(&mut **tx)
                    .await
                    .map_err(job)?;
                restock(tx, order_id).await?;
                return Ok(Step::Changed("dunning stopped: the subscription is no longer active"));
            }
            let attempt = attempts as u32 + 1;
            // The card on file now: the customer may have changed it after the decline.
            let request = ChargeRequest {
                key: payment_key(order_id, attempt),
                amount_cents,
                currency,
                method: sub.payment_method,
            };
            return Ok(Step::Charge(new_payment(tx, order_id, attempt, request, now, until, true).await?));
        }
        // Then the delivery due, if it still is: a pause or cancel committed before the lock wins.
        if sub.status != "active" {
            return Ok(Step::Nothing("paused or cancelled"));
        }
        let due = sub.next_delivery_date;
        if due > day {
            // Delivered up to the day already: by an earlier delivery of this message, most likely.
            let last: Option<NaiveDate> =
                sqlx::query_scalar("SELECT max(delivery_date) FROM orders WHERE subscription_id = ?1")
                    .bind(id)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(job)?;
            return Ok(if last.is_some_and(|last| last <= day) { Step::Done } else { Step::Nothing("not due") });
        }
        let in_dunning: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM orders WHERE subscription_id = ?1 AND status = 'payment_failed'
                                                  AND retry_on IS NOT NULL)",
        )
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .map_err(job)?;
        if in_dunning {
            return Ok(Step::Nothing("a declined order awaits its next retry"));
        }

        let product: Option<(i64, String, bool)> =
            sqlx::query_as("SELECT price_cents, currency, deleted_at IS NULL FROM products WHERE id = ?1")
                .bind(sub.product_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(job)?;
        let product = product.map(|(price_cents, currency, on_sale)| ProductRow { price_cents, currency, on_sale });
        let (frequency, amount_cents) = match delivery(
            &sub.frequency,
            sub.interval_days.map(i64::from),
            sub.anchor_day.map(i64::from),
            sub.quantity,
            product.as_ref(),
        ) {
            Ok(delivery) => delivery,
            Err(reason) => return Ok(Step::Invalid(reason)),
        };
        let product = product.expect("a delivery has a product");
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM orders WHERE subscription_id = ?1 AND delivery_date = ?2)",
        )
        .bind(id)
        .bind(due)
        .fetch_one(&mut **tx)
        .await
        .map_err(job)?;
        if exists {
            // The app moved the date back onto a delivery already made.
            advance(tx, id, frequency.next(due)).await?;
            return Ok(Step::Changed("an order for this delivery date exists: moved to the next date"));
        }
        let taken = sqlx::query("UPDATE products SET stock = stock - ?2 WHERE id = ?1 AND stock >= ?2")
            .bind(sub.product_id)
            .bind(sub.quantity)
            .execute(&mut **tx)
            .await
            .map_err(job)?
            .rows_affected();
        let status = match (taken, out_of_stock(frequency, due, day)) {
            (1, _) => "pending_payment",
            (_, StockWait::Wait) => return Ok(Step::OutOfStock),
            (_, StockWait::Skip) => "skipped",
        };
        let order_id: i64 = sqlx::query_scalar(
            "INSERT INTO orders (user_id, subscription_id, delivery_date, status, total_cents, currency, created_at,
                                 updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
        )
        .bind(sub.user_id)
        .bind(id)
        .bind(due)
        .bind(status)
        .bind(amount_cents)
        .bind(&product.currency)
        .bind(stamp(now))
        .fetch_one(&mut **tx)
        .await
        .map_err(job)?;
        sqlx::query(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(order_id)
        .bind(sub.product_id)
        .bind(sub.quantity)
        .bind(product.price_cents)
        .execute(&mut **tx)
        .await
        .map_err(job)?;
        advance(tx, id, frequency.next(due)).await?;
        if status == "skipped" {
            event(tx, order_id, OrderEventKind::DeliverySkipped, now).await?;
            return Ok(Step::Changed("delivery skipped: out of stock too long"));
        }
        let request = ChargeRequest {
            key: payment_key(order_id, 1),
            amount_cents,
            currency: product.currency,
            method: sub.payment_method,
        };
        Ok(Step::Charge(new_payment(tx, order_id, 1, request, now, until, frequency.next(due) <= day).await?))
    }
}

#[async_trait]
impl ShopStore for SqliteStore {
    async fn subscriptions_due(&self, day: NaiveDate, after: i64, limit: u32) -> Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT * FROM (SELECT id FROM subscriptions
                            WHERE status = 'active' AND next_delivery_date <= ?1 AND id > ?2 ORDER BY id LIMIT ?3)
             UNION
             SELECT * FROM (SELECT subscription_id FROM orders
                            WHERE status IN ('pending_payment', 'payment_failed')
                              AND (status = 'pending_payment' OR retry_on <= ?1) AND subscription_id > ?2
                            ORDER BY subscription_id LIMIT ?3)
             UNION
             SELECT * FROM (SELECT o.subscription_id FROM order_events e JOIN orders o ON o.id = e.order_id
                            WHERE e.published_at IS NULL AND o.subscription_id > ?2
                            ORDER BY o.subscription_id LIMIT ?3)
             ORDER BY 1 LIMIT ?3",
        )
        .bind(day)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.db)
        .await
        .map_err(job)
    }

    async fn next_step(&self, subscription: i64, day: NaiveDate, now: DateTime<Utc>, hold: Duration) -> Result<Step> {
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        let step = self.step(&mut tx, subscription, day, now, &later(now, hold)).await?;
        tx.commit().await.map_err(job)?;
        Ok(step)
    }

    async fn settle_charge(
        &self,
        task: &str,
        run: RunPart,
        charge: &PendingCharge,
        outcome: &ChargeOutcome,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (status, reference, reason) = match outcome {
            ChargeOutcome::Charged { reference } => ("succeeded", Some(reference), None),
            ChargeOutcome::Declined { reason } => ("declined", None, Some(reason)),
        };
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        let settled = sqlx::query(
            "UPDATE payments SET status = ?2, provider_reference = ?3, decline_reason = ?4, settled_at = ?5,
                                 claimed_until = NULL
             WHERE id = ?1 AND status = 'pending'",
        )
        .bind(charge.payment_id)
        .bind(status)
        .bind(reference)
        .bind(reason)
        .bind(stamp(now))
        .execute(&mut *tx)
        .await
        .map_err(job)?
        .rows_affected();
        if settled == 0 {
            // Settled by an earlier delivery of the message, or by a worker whose claim had expired.
            return tx.commit().await.map_err(job);
        }
        let order = charge.order_id;
        let (sent, failed) = match outcome {
            ChargeOutcome::Charged { .. } => {
                sqlx::query("UPDATE orders SET status = 'paid', retry_on = NULL, updated_at = ?2 WHERE id = ?1")
                    .bind(order)
                    .bind(stamp(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(job)?;
                event(&mut tx, order, OrderEventKind::OrderPlaced, now).await?;
                (1, 0)
            }
            ChargeOutcome::Declined { .. } => {
                let (failed_on, subscription): (Option<NaiveDate>, Option<i64>) =
                    sqlx::query_as("SELECT failed_on, subscription_id FROM orders WHERE id = ?1")
                        .bind(order)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(job)?;
                let failed_on = failed_on.unwrap_or(day);
                let retry_on = match after_decline(charge.attempt, failed_on) {
                    Dunning::RetryOn(date) => Some(date),
                    Dunning::Pause => None,
                };
                sqlx::query(
                    "UPDATE orders SET status = 'payment_failed', failed_on = ?2, retry_on = ?3, updated_at = ?4
                     WHERE id = ?1",
                )
                .bind(order)
                .bind(failed_on)
                .bind(retry_on)
                .bind(stamp(now))
                .execute(&mut *tx)
                .await
                .map_err(job)?;
                event(&mut tx, order, OrderEventKind::PaymentFailed, now).await?;
                if retry_on.is_none() {
                    restock(&mut tx, order).await?;
                    sqlx::query("UPDATE subscriptions SET status = 'paused' WHERE id = ?1 AND status = 'active'")
                        .bind(subscription)
                        .execute(&mut *tx)
                        .await
                        .map_err(job)?;
                    event(&mut tx, order, OrderEventKind::SubscriptionPaused, now).await?;
                }
                (0, 1)
            }
        };
        super::runs::count_in_run(&mut tx, task, run, sent, failed).await?;
        tx.commit().await.map_err(job)
    }

    async fn release_charge(&self, charge: &PendingCharge) -> Result<()> {
        sqlx::query("UPDATE payments SET claimed_until = NULL WHERE id = ?1 AND status = 'pending'")
            .bind(charge.payment_id)
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn unpublished(&self, subscriptions: &[i64]) -> Result<Vec<OrderEvent>> {
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT e.id, e.order_id, e.kind, e.at FROM order_events e JOIN orders o ON o.id = e.order_id
             WHERE o.subscription_id IN (SELECT value FROM json_each(?1)) AND e.published_at IS NULL ORDER BY e.id",
        )
        .bind(json!(subscriptions).to_string())
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        rows.into_iter()
            .map(|(id, order_id, kind, at)| order_event(id, order_id, &kind, parse_stamp(&at).map_err(job)?))
            .collect()
    }

    async fn mark_published(&self, events: &[i64], now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE order_events SET published_at = ?2
             WHERE id IN (SELECT value FROM json_each(?1)) AND published_at IS NULL",
        )
        .bind(json!(events).to_string())
        .bind(stamp(now))
        .execute(&self.db)
        .await
        .map_err(job)?;
        Ok(())
    }
}

#[async_trait]
impl ShopWriter for SqliteStore {
    async fn add_products(&self, products: &[NewProduct]) -> Result<Vec<i64>> {
        let rows: Vec<_> = products.iter().map(|p| json!([p.name, p.price_cents, p.currency, p.stock])).collect();
        self.insert_in_order(
            "INSERT INTO products (id, name, price_cents, currency, stock)
             SELECT ?1 + key, value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?2)",
            "products",
            rows,
        )
        .await
    }

    async fn add_subscriptions(&self, subscriptions: &[NewSubscription]) -> Result<Vec<i64>> {
        let rows: Vec<_> = subscriptions
            .iter()
            .map(|s| {
                json!([
                    s.user_id,
                    s.product_id,
                    s.quantity,
                    s.frequency,
                    s.interval_days,
                    s.anchor_day,
                    s.next_delivery_date,
                    s.payment_method
                ])
            })
            .collect();
        self.insert_in_order(
            "INSERT INTO subscriptions (id, user_id, product_id, quantity, frequency, interval_days, anchor_day,
                                        next_delivery_date, payment_method)
             SELECT ?1 + key, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
                    value ->> 6, value ->> 7
             FROM json_each(?2)",
            "subscriptions",
            rows,
        )
        .await
    }

    async fn set_stock(&self, product_id: i64, stock: i64) -> Result<()> {
        sqlx::query("UPDATE products SET stock = ?2 WHERE id = ?1")
            .bind(product_id)
            .bind(stock)
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn delete_product(&self, product_id: i64) -> Result<()> {
        sqlx::query("UPDATE products SET deleted_at = ?2 WHERE id = ?1")
            .bind(product_id)
            .bind(stamp(Utc::now()))
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn set_subscription_status(&self, subscription_id: i64, status: SubscriptionStatus) -> Result<()> {
        sqlx::query("UPDATE subscriptions SET status = ?2 WHERE id = ?1")
            .bind(subscription_id)
            .bind(status.as_str())
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn ship_order(&self, order_id: i64, now: DateTime<Utc>) -> Result<OrderEvent> {
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        let shipped =
            sqlx::query("UPDATE orders SET status = 'shipped', updated_at = ?2 WHERE id = ?1 AND status = 'paid'")
                .bind(order_id)
                .bind(stamp(now))
                .execute(&mut *tx)
                .await
                .map_err(job)?
                .rows_affected();
        if shipped == 0 {
            return Err(shared::Error::permanent(format!("order {order_id} is not a paid order: it cannot ship")));
        }
        event(&mut tx, order_id, OrderEventKind::OrderShipped, now).await?;
        let (id, at): (i64, String) =
            sqlx::query_as("SELECT id, at FROM order_events WHERE order_id = ?1 AND kind = 'OrderShipped'")
                .bind(order_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(job)?;
        tx.commit().await.map_err(job)?;
        Ok(OrderEvent { id, order_id, kind: OrderEventKind::OrderShipped, at: parse_stamp(&at).map_err(job)? })
    }

    async fn stock(&self, product_id: i64) -> Result<i64> {
        sqlx::query_scalar("SELECT stock FROM products WHERE id = ?1")
            .bind(product_id)
            .fetch_one(&self.db)
            .await
            .map_err(job)
    }

    async fn next_delivery_date(&self, subscription_id: i64) -> Result<(NaiveDate, String)> {
        sqlx::query_as("SELECT next_delivery_date, status FROM subscriptions WHERE id = ?1")
            .bind(subscription_id)
            .fetch_one(&self.db)
            .await
            .map_err(job)
    }

    async fn orders(&self) -> Result<Vec<OrderRecord>> {
        let rows: Vec<(i64, Option<i64>, i64, NaiveDate, String, i64, String)> = sqlx::query_as(
            "SELECT o.id, o.subscription_id, o.user_id, o.delivery_date, o.status, o.total_cents,
                    (SELECT json_group_array(json_array(p.idempotency_key, p.status, p.provider_reference))
                     FROM (SELECT * FROM payments WHERE order_id = o.id ORDER BY attempt) p)
             FROM orders o ORDER BY o.id",
        )
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        rows.into_iter()
            .map(|(id, subscription_id, user_id, delivery_date, status, total_cents, payments)| {
                let payments = serde_json::from_str(&payments)
                    .map_err(|e| shared::Error::permanent(format!("order {id}'s payments do not read back: {e}")))?;
                Ok(OrderRecord { id, subscription_id, user_id, delivery_date, status, total_cents, payments })
            })
            .collect()
    }
}
