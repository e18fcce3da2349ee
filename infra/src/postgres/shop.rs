//! The shop on PostgreSQL: subscriptions turned into orders and charged (the states are told in
//! `shared::tasks::shop::subscription_processing`), and the app's side for seeding. Each task's reads are in
//! the file named after it.

use super::{app::SEED_CHUNK, *};
use shared::ports::{
    after_decline, delivery, out_of_stock, payment_key, ChargeOutcome, ChargeRequest, Dunning, Frequency, NewProduct,
    NewSubscription, OrderEvent, OrderEventKind, OrderRecord, PendingCharge, ProductRow, ShopStore, ShopWriter, Step,
    StockWait, SubscriptionStatus,
};
use sqlx::{Postgres, Transaction};
use std::collections::BTreeMap;

use crate::store::order_event;

mod order_notifications;
mod renewal_reminders;

type Tx<'a> = Transaction<'a, Postgres>;

/// What one try at a step came to: the step, or the product's stock short for the delivery (the try is then
/// rolled back, and the step decided again knowing it).
enum Tried {
    Step(Step),
    StockShort,
}

/// Subscriptions with their product, whether an order of theirs is open or made for their date, and their
/// latest delivery: what `next_step` and `start_due` decide from, under the rows' locks.
const SUBSCRIPTIONS: &str = "SELECT s.id, s.user_id, s.product_id, s.quantity, s.frequency, s.interval_days,
        s.anchor_day, s.next_delivery_date, s.status, s.payment_method,
        p.price_cents, p.currency, p.deleted_at IS NULL AS on_sale, p.stock,
        EXISTS (SELECT 1 FROM orders o WHERE o.subscription_id = s.id
                                         AND o.status IN ('pending_payment', 'payment_failed')) AS open,
        EXISTS (SELECT 1 FROM orders o WHERE o.subscription_id = s.id
                                         AND o.delivery_date = s.next_delivery_date) AS ordered,
        (SELECT max(o.delivery_date) FROM orders o WHERE o.subscription_id = s.id) AS last_delivery
    FROM subscriptions s LEFT JOIN products p ON p.id = s.product_id";

/// A subscription's row, read under its lock (`SUBSCRIPTIONS`).
#[derive(sqlx::FromRow)]
struct Subscription {
    id: i64,
    user_id: i64,
    product_id: i64,
    quantity: i64,
    frequency: String,
    interval_days: Option<i32>,
    anchor_day: Option<i32>,
    next_delivery_date: NaiveDate,
    status: String,
    payment_method: String,
    price_cents: Option<i64>,
    currency: Option<String>,
    on_sale: Option<bool>,
    /// As the statement saw it: `start_due` plans with it, and its conditional update has the last word.
    stock: Option<i64>,
    open: bool,
    ordered: bool,
    last_delivery: Option<NaiveDate>,
}

impl Subscription {
    /// Its next delivery's frequency, amount and product, or why it cannot be delivered.
    fn delivery(&self) -> std::result::Result<(Frequency, i64, ProductRow), String> {
        let product = match (self.price_cents, &self.currency, self.on_sale) {
            (Some(price_cents), Some(currency), Some(on_sale)) => {
                Some(ProductRow { price_cents, currency: currency.clone(), on_sale })
            }
            _ => None,
        };
        let interval_days = self.interval_days.map(i64::from);
        let (frequency, amount) =
            delivery(&self.frequency, interval_days, self.anchor_day.map(i64::from), self.quantity, product.as_ref())?;
        Ok((frequency, amount, product.expect("a delivery has a product")))
    }
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
    claimed_until: Option<DateTime<Utc>>,
}

async fn event(tx: &mut Tx<'_>, order_id: i64, kind: OrderEventKind, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("INSERT INTO order_events (order_id, kind, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(order_id)
        .bind(kind.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(job)?;
    Ok(())
}

/// Puts an order's items back in stock: its delivery will not be sent.
async fn restock(tx: &mut Tx<'_>, order_id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE products p SET stock = p.stock + i.quantity FROM order_items i
         WHERE i.order_id = $1 AND p.id = i.product_id",
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
    until: DateTime<Utc>,
    more_due: bool,
) -> Result<PendingCharge> {
    let payment_id: i64 = sqlx::query_scalar(
        "INSERT INTO payments (order_id, attempt, idempotency_key, amount_cents, currency, method, status,
                               claimed_until, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8) RETURNING id",
    )
    .bind(order_id)
    .bind(attempt as i32)
    .bind(&request.key)
    .bind(request.amount_cents)
    .bind(&request.currency)
    .bind(&request.method)
    .bind(until)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .map_err(job)?;
    Ok(PendingCharge { payment_id, order_id, attempt, request, more_due })
}

/// Moves a subscription's next delivery to `next`.
async fn advance(tx: &mut Tx<'_>, subscription: i64, next: NaiveDate) -> Result<()> {
    sqlx::query("UPDATE subscriptions SET next_delivery_date = $2 WHERE id = $1")
        .bind(subscription)
        .bind(next)
        .execute(&mut **tx)
        .await
        .map_err(job)?;
    Ok(())
}

/// `n` ids from the table's sequence, in order, on `executor` (the pool, or a transaction that must not take a
/// second connection): rows inserted in bulk get the ids their callers expect.
pub(super) async fn new_ids<'e>(executor: impl sqlx::PgExecutor<'e>, table: &str, n: usize) -> Result<Vec<i64>> {
    sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)")
        .bind(table)
        .bind(n as i64)
        .fetch_all(executor)
        .await
        .map_err(job)
}

impl PgStore {
    /// What `next_step` decides, in `tx`. `short` says the product's stock was found short for this delivery
    /// by an attempt rolled back a moment ago: the delivery then waits or is skipped without taking stock.
    async fn step(
        &self,
        tx: &mut Tx<'_>,
        id: i64,
        day: NaiveDate,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        short: bool,
    ) -> Result<Tried> {
        // One round trip for the common case: the row lock, its product, whether an order is open or made.
        let subscription: Option<Subscription> =
            sqlx::query_as(&format!("{SUBSCRIPTIONS} WHERE s.id = $1 FOR UPDATE OF s"))
                .bind(id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(job)?;
        let Some(sub) = subscription else { return Ok(Tried::Step(Step::Nothing("subscription deleted"))) };
        if sub.open {
            if let Some(step) = self.open_order(tx, id, &sub, day, now, until).await? {
                return Ok(Tried::Step(step));
            }
        }

        // Then the delivery due, if it still is: a pause or cancel committed before the lock wins.
        if sub.status != "active" {
            return Ok(Tried::Step(Step::Nothing("paused or cancelled")));
        }
        let due = sub.next_delivery_date;
        if due > day {
            // Delivered up to the day already: by an earlier delivery of this message, most likely.
            let done = sub.last_delivery.is_some_and(|last| last <= day);
            return Ok(Tried::Step(if done { Step::Done } else { Step::Nothing("not due") }));
        }
        if sub.open {
            let in_dunning: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM orders WHERE subscription_id = $1 AND status = 'payment_failed'
                                                      AND retry_on IS NOT NULL)",
            )
            .bind(id)
            .fetch_one(&mut **tx)
            .await
            .map_err(job)?;
            if in_dunning {
                return Ok(Tried::Step(Step::Nothing("a declined order awaits its next retry")));
            }
        }
        let (frequency, amount_cents, product) = match sub.delivery() {
            Ok(delivery) => delivery,
            Err(reason) => return Ok(Tried::Step(Step::Invalid(reason))),
        };
        if sub.ordered {
            // The app moved the date back onto a delivery already made.
            advance(tx, id, frequency.next(due)).await?;
            return Ok(Tried::Step(Step::Changed("an order for this delivery date exists: moved to the next date")));
        }
        let status = match (short, out_of_stock(frequency, due, day)) {
            (false, _) => "pending_payment",
            (true, StockWait::Wait) => return Ok(Tried::Step(Step::OutOfStock)),
            (true, StockWait::Skip) => "skipped",
        };
        advance(tx, id, frequency.next(due)).await?;
        // The order, its line and (unless skipped) its first charge attempt, in one statement. The key is
        // payment_key's, written in SQL because the order's id is made here; it is checked below.
        let (order_id, payment): (i64, Option<(i64, String)>) = {
            let (order_id, payment_id, key): (i64, Option<i64>, Option<String>) = sqlx::query_as(
                "WITH o AS (
                     INSERT INTO orders (user_id, subscription_id, delivery_date, status, total_cents, currency,
                                         created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id),
                 i AS (
                     INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents)
                     SELECT o.id, $8, $9, $10 FROM o),
                 p AS (
                     INSERT INTO payments (order_id, attempt, idempotency_key, amount_cents, currency, method,
                                           status, claimed_until, created_at)
                     SELECT o.id, 1, 'order-' || o.id || '-attempt-1', $5, $6, $11, 'pending', $12, $7
                     FROM o WHERE $4 = 'pending_payment'
                     RETURNING id, idempotency_key)
                 SELECT o.id, p.id, p.idempotency_key FROM o LEFT JOIN p ON true",
            )
            .bind(sub.user_id)
            .bind(id)
            .bind(due)
            .bind(status)
            .bind(amount_cents)
            .bind(&product.currency)
            .bind(now)
            .bind(sub.product_id)
            .bind(sub.quantity)
            .bind(product.price_cents)
            .bind(&sub.payment_method)
            .bind(until)
            .fetch_one(&mut **tx)
            .await
            .map_err(job)?;
            (order_id, payment_id.zip(key))
        };
        let Some((payment_id, key)) = payment else {
            event(tx, order_id, OrderEventKind::DeliverySkipped, now).await?;
            return Ok(Tried::Step(Step::Changed("delivery skipped: out of stock too long")));
        };
        if key != payment_key(order_id, 1) {
            return Err(shared::Error::permanent(format!(
                "order {order_id}'s payment key {key:?} is not payment_key's"
            )));
        }
        // Last, so the product's row (every subscriber of the product waits on it) is locked only to the commit.
        let taken = sqlx::query("UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2")
            .bind(sub.product_id)
            .bind(sub.quantity)
            .execute(&mut **tx)
            .await
            .map_err(job)?
            .rows_affected();
        if taken == 0 {
            return Ok(Tried::StockShort);
        }
        let request = ChargeRequest { key, amount_cents, currency: product.currency, method: sub.payment_method };
        Ok(Tried::Step(Step::Charge(PendingCharge {
            payment_id,
            order_id,
            attempt: 1,
            request,
            more_due: frequency.next(due) <= day,
        })))
    }

    /// An order of the subscription waiting on a charge: an attempt made and not settled (asked again with its
    /// own key), or a dunning retry due; `None` when neither is due today.
    async fn open_order(
        &self,
        tx: &mut Tx<'_>,
        id: i64,
        sub: &Subscription,
        day: NaiveDate,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Step>> {
        // First an attempt already made, whose answer was never recorded: asked again with its own key.
        let pending: Option<Pending> = sqlx::query_as(
            "SELECT p.id AS payment_id, p.order_id, p.attempt, p.idempotency_key AS key, p.amount_cents, p.currency,
                    p.method, p.claimed_until
             FROM payments p JOIN orders o ON o.id = p.order_id
             WHERE o.subscription_id = $1 AND o.status IN ('pending_payment', 'payment_failed')
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
            if claimed_until.is_some_and(|until| until > now) {
                return Ok(Some(Step::Busy));
            }
            sqlx::query("UPDATE payments SET claimed_until = $2 WHERE id = $1")
                .bind(payment_id)
                .bind(until)
                .execute(&mut **tx)
                .await
                .map_err(job)?;
            let request = ChargeRequest { key, amount_cents, currency, method };
            return Ok(Some(Step::Charge(PendingCharge {
                payment_id,
                order_id,
                attempt: attempt as u32,
                request,
                more_due: true,
            })));
        }

        // Then a declined order whose dunning retry is due.
        let dunning: Option<(i64, i64, String, i32)> = sqlx::query_as(
            "SELECT o.id, o.total_cents, o.currency, (SELECT max(attempt) FROM payments p WHERE p.order_id = o.id)
             FROM orders o
             WHERE o.subscription_id = $1 AND o.status = 'payment_failed' AND o.retry_on <= $2
             ORDER BY o.id LIMIT 1",
        )
        .bind(id)
        .bind(day)
        .fetch_optional(&mut **tx)
        .await
        .map_err(job)?;
        if let Some((order_id, amount_cents, currency, attempts)) = dunning {
            if sub.status != "active" {
                sqlx::query("UPDATE orders SET status = 'cancelled', retry_on = NULL, updated_at = $2 WHERE id = $1")
                    .bind(order_id)
                    .bind(now)
                    .execute(&mut **tx)
                    .await
                    .map_err(job)?;
                restock(tx, order_id).await?;
                return Ok(Some(Step::Changed("dunning stopped: the subscription is no longer active")));
            }
            let attempt = attempts as u32 + 1;
            // The card on file now: the customer may have changed it after the decline.
            let request = ChargeRequest {
                key: payment_key(order_id, attempt),
                amount_cents,
                currency,
                method: sub.payment_method.clone(),
            };
            return Ok(Some(Step::Charge(new_payment(tx, order_id, attempt, request, now, until, true).await?)));
        }
        Ok(None)
    }
}

#[async_trait]
impl ShopStore for PgStore {
    async fn subscriptions_due(&self, day: NaiveDate, after: i64, limit: u32) -> Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM (
                 (SELECT id FROM subscriptions
                  WHERE status = 'active' AND next_delivery_date <= $1 AND id > $2 ORDER BY id LIMIT $3)
                 UNION
                 (SELECT subscription_id FROM orders
                  WHERE status IN ('pending_payment', 'payment_failed')
                    AND (status = 'pending_payment' OR retry_on <= $1) AND subscription_id > $2
                  ORDER BY subscription_id LIMIT $3)
                 UNION
                 (SELECT o.subscription_id FROM order_events e JOIN orders o ON o.id = e.order_id
                  WHERE e.published_at IS NULL AND o.subscription_id > $2 ORDER BY o.subscription_id LIMIT $3)
             ) due (id) ORDER BY id LIMIT $3",
        )
        .bind(day)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(job)
    }

    async fn next_step(&self, subscription: i64, day: NaiveDate, now: DateTime<Utc>, hold: Duration) -> Result<Step> {
        let until = later(now, hold);
        let mut tx = self.pool.begin().await.map_err(job)?;
        let step = match self.step(&mut tx, subscription, day, now, until, false).await? {
            Tried::Step(step) => step,
            Tried::StockShort => {
                tx.rollback().await.map_err(job)?;
                tx = self.pool.begin().await.map_err(job)?;
                match self.step(&mut tx, subscription, day, now, until, true).await? {
                    Tried::Step(step) => step,
                    Tried::StockShort => unreachable!("a step knowing the stock short takes none"),
                }
            }
        };
        tx.commit().await.map_err(job)?;
        Ok(step)
    }

    async fn start_due(
        &self,
        subscriptions: &[i64],
        day: NaiveDate,
        now: DateTime<Utc>,
        hold: Duration,
    ) -> Result<Vec<(i64, PendingCharge)>> {
        let until = later(now, hold);
        let mut tx = self.pool.begin().await.map_err(job)?;
        // Locked in id order, as every batch locks them: two batches never wait on each other in a circle.
        let rows: Vec<Subscription> =
            sqlx::query_as(&format!("{SUBSCRIPTIONS} WHERE s.id = ANY($1) ORDER BY s.id FOR UPDATE OF s"))
                .bind(subscriptions)
                .fetch_all(&mut *tx)
                .await
                .map_err(job)?;
        let mut due: Vec<(Subscription, Frequency, i64, ProductRow)> = vec![];
        for sub in rows {
            if sub.open || sub.ordered || sub.status != "active" || sub.next_delivery_date > day {
                continue;
            }
            if let Ok((frequency, amount, product)) = sub.delivery() {
                due.push((sub, frequency, amount, product));
            }
        }
        // Each product's stock for all its deliveries at once, or for none (they go one at a time then), as far as
        // the read saw it; the stock is taken last (below), so its rows are locked only to the commit.
        let mut wanted: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for (sub, ..) in &due {
            wanted.entry(sub.product_id).or_insert((0, sub.stock.unwrap_or(0))).0 += sub.quantity;
        }
        wanted.retain(|_, (quantity, stock)| quantity <= stock);
        due.retain(|(sub, ..)| wanted.contains_key(&sub.product_id));
        if due.is_empty() {
            tx.commit().await.map_err(job)?;
            return Ok(vec![]);
        }
        // Ids first, so each charge's key is payment_key's, made here (in the transaction: a second connection
        // from the pool, while this one is held, could wait on every other batch doing the same).
        let order_ids = new_ids(&mut *tx, "orders", due.len()).await?;
        let column =
            |f: &dyn Fn(&(Subscription, Frequency, i64, ProductRow)) -> i64| due.iter().map(f).collect::<Vec<i64>>();
        let (users, subs) = (column(&|d| d.0.user_id), column(&|d| d.0.id));
        let (amounts, product_ids, quantities) =
            (column(&|d| d.2), column(&|d| d.0.product_id), column(&|d| d.0.quantity));
        let prices = column(&|d| d.3.price_cents);
        let dates: Vec<NaiveDate> = due.iter().map(|d| d.0.next_delivery_date).collect();
        let nexts: Vec<NaiveDate> = due.iter().map(|d| d.1.next(d.0.next_delivery_date)).collect();
        let currencies: Vec<&str> = due.iter().map(|d| d.3.currency.as_str()).collect();
        let methods: Vec<&str> = due.iter().map(|d| d.0.payment_method.as_str()).collect();
        let keys: Vec<String> = order_ids.iter().map(|&id| payment_key(id, 1)).collect();
        sqlx::query(
            "INSERT INTO orders (id, user_id, subscription_id, delivery_date, status, total_cents, currency, created_at,
                                 updated_at)
             SELECT t.id, t.user_id, t.subscription_id, t.delivery_date, 'pending_payment', t.total, t.currency, $7, $7
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::date[], $5::bigint[], $6::text[])
                  AS t (id, user_id, subscription_id, delivery_date, total, currency)",
        )
        .bind(&order_ids)
        .bind(&users)
        .bind(&subs)
        .bind(&dates)
        .bind(&amounts)
        .bind(&currencies)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        sqlx::query(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])",
        )
        .bind(&order_ids)
        .bind(&product_ids)
        .bind(&quantities)
        .bind(&prices)
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        let payment_ids: HashMap<i64, i64> = sqlx::query_as(
            "INSERT INTO payments (order_id, attempt, idempotency_key, amount_cents, currency, method, status,
                                   claimed_until, created_at)
             SELECT t.order_id, 1, t.key, t.amount, t.currency, t.method, 'pending', $6, $7
             FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[])
                  AS t (order_id, key, amount, currency, method)
             RETURNING order_id, id",
        )
        .bind(&order_ids)
        .bind(&keys)
        .bind(&amounts)
        .bind(&currencies)
        .bind(&methods)
        .bind(until)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(job)?
        .into_iter()
        .collect();
        sqlx::query(
            "UPDATE subscriptions s SET next_delivery_date = t.next FROM UNNEST($1::bigint[], $2::date[]) AS t (id, next)
             WHERE s.id = t.id",
        )
        .bind(&subs)
        .bind(&nexts)
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        let (products, quantities): (Vec<i64>, Vec<i64>) = wanted.into_iter().map(|(id, (q, _))| (id, q)).unzip();
        // In id order, as every batch takes them.
        sqlx::query("SELECT 1 FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&products)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        let stocked = sqlx::query(
            "UPDATE products p SET stock = p.stock - t.quantity
             FROM UNNEST($1::bigint[], $2::bigint[]) AS t (id, quantity)
             WHERE p.id = t.id AND p.stock >= t.quantity",
        )
        .bind(&products)
        .bind(&quantities)
        .execute(&mut *tx)
        .await
        .map_err(job)?
        .rows_affected();
        if stocked < products.len() as u64 {
            // Others took the stock since the read: none of this starts; each goes one at a time instead.
            tx.rollback().await.map_err(job)?;
            return Ok(vec![]);
        }
        tx.commit().await.map_err(job)?;
        Ok(due
            .into_iter()
            .zip(order_ids.into_iter().zip(keys))
            .zip(nexts)
            .map(|(((sub, _, amount_cents, product), (order_id, key)), next)| {
                let payment_id = payment_ids[&order_id];
                let more_due = next <= day;
                let request =
                    ChargeRequest { key, amount_cents, currency: product.currency, method: sub.payment_method };
                (sub.id, PendingCharge { payment_id, order_id, attempt: 1, request, more_due })
            })
            .collect())
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
        let reason = match outcome {
            // The common case in one statement, atomic by itself: the payment, its order, the order's event and
            // the run's count.
            ChargeOutcome::Charged { reference } => {
                sqlx::query(
                    "WITH pay AS (
                         UPDATE payments SET status = 'succeeded', provider_reference = $2, settled_at = $3,
                                             claimed_until = NULL
                         WHERE id = $1 AND status = 'pending' RETURNING order_id),
                     ord AS (
                         UPDATE orders SET status = 'paid', retry_on = NULL, updated_at = $3
                         WHERE id IN (SELECT order_id FROM pay) RETURNING id),
                     ev AS (
                         INSERT INTO order_events (order_id, kind, at) SELECT id, $7, $3 FROM ord
                         ON CONFLICT DO NOTHING)
                     INSERT INTO run_messages (task, slot, part, sent, failed) SELECT $4, $5, $6, 1, 0 FROM pay
                     ON CONFLICT (task, slot, part) DO UPDATE SET sent = run_messages.sent + excluded.sent",
                )
                .bind(charge.payment_id)
                .bind(reference)
                .bind(now)
                .bind(task)
                .bind(run.slot)
                .bind(run.part as i64)
                .bind(OrderEventKind::OrderPlaced.as_str())
                .execute(&self.pool)
                .await
                .map_err(job)?;
                return Ok(());
            }
            ChargeOutcome::Declined { reason } => reason,
        };
        let mut tx = self.pool.begin().await.map_err(job)?;
        let settled = sqlx::query(
            "UPDATE payments SET status = 'declined', decline_reason = $2, settled_at = $3, claimed_until = NULL
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(charge.payment_id)
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(job)?
        .rows_affected();
        if settled == 0 {
            // Settled by an earlier delivery of the message, or by a worker whose claim had expired.
            return tx.commit().await.map_err(job);
        }
        let order = charge.order_id;
        let (failed_on, subscription): (Option<NaiveDate>, Option<i64>) =
            sqlx::query_as("SELECT failed_on, subscription_id FROM orders WHERE id = $1")
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
            "UPDATE orders SET status = 'payment_failed', failed_on = $2, retry_on = $3, updated_at = $4
                     WHERE id = $1",
        )
        .bind(order)
        .bind(failed_on)
        .bind(retry_on)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        event(&mut tx, order, OrderEventKind::PaymentFailed, now).await?;
        if retry_on.is_none() {
            restock(&mut tx, order).await?;
            sqlx::query("UPDATE subscriptions SET status = 'paused' WHERE id = $1 AND status = 'active'")
                .bind(subscription)
                .execute(&mut *tx)
                .await
                .map_err(job)?;
            event(&mut tx, order, OrderEventKind::SubscriptionPaused, now).await?;
        }
        // A decline counts as the run's failed charge.
        super::runs::count_in_run(&mut tx, task, run, 0, 1).await?;
        tx.commit().await.map_err(job)
    }

    async fn release_charge(&self, charge: &PendingCharge) -> Result<()> {
        sqlx::query("UPDATE payments SET claimed_until = NULL WHERE id = $1 AND status = 'pending'")
            .bind(charge.payment_id)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn unpublished(&self, subscriptions: &[i64]) -> Result<Vec<OrderEvent>> {
        let rows: Vec<(i64, i64, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT e.id, e.order_id, e.kind, e.at FROM order_events e JOIN orders o ON o.id = e.order_id
             WHERE o.subscription_id = ANY($1) AND e.published_at IS NULL ORDER BY e.id",
        )
        .bind(subscriptions)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        rows.into_iter().map(|(id, order_id, kind, at)| order_event(id, order_id, &kind, at)).collect()
    }

    async fn mark_published(&self, events: &[i64], now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE order_events SET published_at = $2 WHERE id = ANY($1) AND published_at IS NULL")
            .bind(events)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }
}

#[async_trait]
impl ShopWriter for PgStore {
    async fn add_products(&self, products: &[NewProduct]) -> Result<Vec<i64>> {
        let ids = new_ids(&self.pool, "products", products.len()).await?;
        sqlx::query(
            "INSERT INTO products (id, name, price_cents, currency, stock)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[])",
        )
        .bind(&ids)
        .bind(products.iter().map(|p| p.name.as_str()).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.price_cents).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.currency.as_str()).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.stock).collect::<Vec<_>>())
        .execute(&self.pool)
        .await
        .map_err(job)?;
        Ok(ids)
    }

    async fn add_subscriptions(&self, subscriptions: &[NewSubscription]) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(subscriptions.len());
        for chunk in subscriptions.chunks(SEED_CHUNK) {
            let chunk_ids = new_ids(&self.pool, "subscriptions", chunk.len()).await?;
            sqlx::query(
                "INSERT INTO subscriptions (id, user_id, product_id, quantity, frequency, interval_days, anchor_day,
                                            next_delivery_date, payment_method)
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::int[],
                                      $7::int[], $8::date[], $9::text[])",
            )
            .bind(&chunk_ids)
            .bind(chunk.iter().map(|s| s.user_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|s| s.product_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|s| s.quantity).collect::<Vec<_>>())
            .bind(chunk.iter().map(|s| s.frequency.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|s| s.interval_days.map(|n| n as i32)).collect::<Vec<_>>())
            .bind(chunk.iter().map(|s| s.anchor_day.map(|n| n as i32)).collect::<Vec<_>>())
            .bind(chunk.iter().map(|s| s.next_delivery_date).collect::<Vec<_>>())
            .bind(chunk.iter().map(|s| s.payment_method.as_str()).collect::<Vec<_>>())
            .execute(&self.pool)
            .await
            .map_err(job)?;
            ids.extend(chunk_ids);
        }
        Ok(ids)
    }

    async fn set_stock(&self, product_id: i64, stock: i64) -> Result<()> {
        sqlx::query("UPDATE products SET stock = $2 WHERE id = $1")
            .bind(product_id)
            .bind(stock)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn delete_product(&self, product_id: i64) -> Result<()> {
        sqlx::query("UPDATE products SET deleted_at = now() WHERE id = $1")
            .bind(product_id)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn set_subscription_status(&self, subscription_id: i64, status: SubscriptionStatus) -> Result<()> {
        sqlx::query("UPDATE subscriptions SET status = $2 WHERE id = $1")
            .bind(subscription_id)
            .bind(status.as_str())
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn ship_order(&self, order_id: i64, now: DateTime<Utc>) -> Result<OrderEvent> {
        let mut tx = self.pool.begin().await.map_err(job)?;
        let shipped =
            sqlx::query("UPDATE orders SET status = 'shipped', updated_at = $2 WHERE id = $1 AND status = 'paid'")
                .bind(order_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(job)?
                .rows_affected();
        if shipped == 0 {
            return Err(shared::Error::permanent(format!("order {order_id} is not a paid order: it cannot ship")));
        }
        event(&mut tx, order_id, OrderEventKind::OrderShipped, now).await?;
        let (id, at): (i64, DateTime<Utc>) =
            sqlx::query_as("SELECT id, at FROM order_events WHERE order_id = $1 AND kind = 'OrderShipped'")
                .bind(order_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(job)?;
        tx.commit().await.map_err(job)?;
        Ok(OrderEvent { id, order_id, kind: OrderEventKind::OrderShipped, at })
    }

    async fn stock(&self, product_id: i64) -> Result<i64> {
        sqlx::query_scalar("SELECT stock FROM products WHERE id = $1")
            .bind(product_id)
            .fetch_one(&self.pool)
            .await
            .map_err(job)
    }

    async fn next_delivery_date(&self, subscription_id: i64) -> Result<(NaiveDate, String)> {
        sqlx::query_as("SELECT next_delivery_date, status FROM subscriptions WHERE id = $1")
            .bind(subscription_id)
            .fetch_one(&self.pool)
            .await
            .map_err(job)
    }

    async fn orders(&self) -> Result<Vec<OrderRecord>> {
        let rows: Vec<(i64, Option<i64>, i64, NaiveDate, String, i64, Json<Vec<(String, String, Option<String>)>>)> =
            sqlx::query_as(
                "SELECT o.id, o.subscription_id, o.user_id, o.delivery_date, o.status, o.total_cents,
                        coalesce((SELECT json_agg(json_build_array(p.idempotency_key, p.status, p.provider_reference)
                                                  ORDER BY p.attempt)
                                  FROM payments p WHERE p.order_id = o.id), '[]')
                 FROM orders o ORDER BY o.id",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(job)?;
        Ok(rows
            .into_iter()
            .map(|(id, subscription_id, user_id, delivery_date, status, total_cents, Json(payments))| OrderRecord {
                id,
                subscription_id,
                user_id,
                delivery_date,
                status,
                total_cents,
                payments,
            })
            .collect())
    }
}
