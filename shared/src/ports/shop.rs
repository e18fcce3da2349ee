//! The shop's data and its payment gateway, as the shop tasks use them: subscriptions turned into orders and
//! charged exactly once, the events the app and the subscriptions publish about orders, and renewals ahead.

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{ports::RunPart, Result};

/// How often a subscription delivers, as the app stores it (`frequency`, `interval_days`, `anchor_day`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    Weekly,
    /// Every `n` days, `n` ≥ 1.
    EveryDays(u32),
    /// On the anchor day of every month (1 to 31); a month without that day delivers on its last day, and
    /// the month after returns to the anchor: Jan 31 → Feb 28 → Mar 31.
    Monthly {
        anchor_day: u32,
    },
}

impl Frequency {
    /// Reads the app's columns; `Err` says, in words for the run's log, what the code does not know.
    pub fn parse(frequency: &str, interval_days: Option<i64>, anchor_day: Option<i64>) -> Result<Self, String> {
        match frequency {
            "weekly" => Ok(Self::Weekly),
            "every_n_days" => match interval_days {
                Some(n @ 1..=366) => Ok(Self::EveryDays(n as u32)),
                other => Err(format!("frequency every_n_days needs interval_days from 1 to 366, got {other:?}")),
            },
            "monthly" => match anchor_day {
                Some(day @ 1..=31) => Ok(Self::Monthly { anchor_day: day as u32 }),
                other => Err(format!("frequency monthly needs anchor_day from 1 to 31, got {other:?}")),
            },
            other => Err(format!("unknown frequency {other:?} (the code knows weekly, every_n_days, monthly)")),
        }
    }

    /// The delivery after the one on `date`.
    pub fn next(self, date: NaiveDate) -> NaiveDate {
        match self {
            Self::Weekly => date + Duration::days(7),
            Self::EveryDays(n) => date + Duration::days(n.into()),
            Self::Monthly { anchor_day } => {
                let (year, month) =
                    if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
                let first = NaiveDate::from_ymd_opt(year, month, 1).expect("the first of a month is a date");
                let last = (first + chrono::Months::new(1)).pred_opt().expect("a month has a last day").day();
                first.with_day(anchor_day.min(last)).expect("a day within the month")
            }
        }
    }

    /// Days between two deliveries, at the least: how long an out-of-stock delivery may wait.
    pub fn shortest_gap(self) -> i64 {
        match self {
            Self::Weekly => 7,
            Self::EveryDays(n) => n.into(),
            Self::Monthly { .. } => 28,
        }
    }
}

/// A charge the gateway is asked to make. The key makes it idempotent: the gateway charges a key once and
/// answers a repeat with the first answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRequest {
    pub key: String,
    pub amount_cents: i64,
    pub currency: String,
    /// The app's reference to the customer's saved payment method.
    pub method: String,
}

/// A definite answer from the gateway. An ambiguous one (a timeout, a 5xx: charged or not, nobody knows) is
/// `Error::Retryable`, and the charge is asked again with the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChargeOutcome {
    Charged { reference: String },
    Declined { reason: String },
}

/// The payment gateway.
#[async_trait]
pub trait Payments: Send + Sync {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome>;
}

/// A charge a subscription's order is waiting for, claimed by the caller until `ShopStore::settle_charge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCharge {
    pub payment_id: i64,
    pub order_id: i64,
    /// 1 for the delivery's first charge; 2, 3 and 4 for the dunning retries.
    pub attempt: u32,
    pub request: ChargeRequest,
    /// Whether the subscription may have more to do on the day once this is settled: false when this is its
    /// delivery due and the next one is later, so the caller need not ask again.
    pub more_due: bool,
}

/// What one subscription needs next on a day, decided under its row lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An order waits for this charge: a new delivery (its stock taken, its date advanced, in the same
    /// transaction), a dunning retry, or an earlier attempt whose answer was never recorded.
    Charge(PendingCharge),
    /// Another worker holds this subscription's charge: come back later.
    Busy,
    /// The delivery is out of stock and waits for a later day.
    OutOfStock,
    /// Something changed without a charge (a delivery skipped for want of stock, a dunning stopped because
    /// the subscription was paused): look again.
    Changed(&'static str),
    /// Nothing is due: why, for the run's log.
    Nothing(&'static str),
    /// Nothing is left: the deliveries due by the day were made, by an earlier delivery of the message.
    Done,
    /// The app's row cannot be processed (deleted product, zero quantity, unknown frequency): no order, no
    /// charge, the reason recorded.
    Invalid(String),
}

/// What the shop tells customers about, as events on the bus (`source` shop.orders). Each names its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OrderEventKind {
    OrderPlaced,
    OrderShipped,
    PaymentFailed,
    /// A subscription's delivery was out of stock for too long and is skipped; the subscription goes on.
    DeliverySkipped,
    /// Every dunning retry was declined: the subscription is paused.
    SubscriptionPaused,
}

impl OrderEventKind {
    pub const ALL: [OrderEventKind; 5] =
        [Self::OrderPlaced, Self::OrderShipped, Self::PaymentFailed, Self::DeliverySkipped, Self::SubscriptionPaused];

    /// The event's `detail-type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderPlaced => "OrderPlaced",
            Self::OrderShipped => "OrderShipped",
            Self::PaymentFailed => "PaymentFailed",
            Self::DeliverySkipped => "DeliverySkipped",
            Self::SubscriptionPaused => "SubscriptionPaused",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// The `source` of every shop event on the bus.
pub const ORDER_EVENT_SOURCE: &str = "shop.orders";

/// The task whose queue the bus's rule routes order events to.
pub const ORDER_EVENTS_TASK: &str = "order-notifications";

/// One event about one order, written in the transaction that changed the order and published after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    /// Its row in the store's outbox of events.
    pub id: i64,
    pub order_id: i64,
    pub kind: OrderEventKind,
    pub at: DateTime<Utc>,
}

/// Puts order events on the bus: EventBridge in AWS, the order-notifications queue locally.
#[async_trait]
pub trait OrderEvents: Send + Sync {
    async fn publish(&self, events: &[OrderEvent]) -> Result<()>;
}

/// The subscriptions' side of the shop's tables.
#[async_trait]
pub trait ShopStore: Send + Sync {
    /// Ids of subscriptions with something to do on `day`, ordered, after `after` (keyset pagination): active
    /// and due on or before it, an order awaiting a charge or a dunning retry, or an event not yet published.
    async fn subscriptions_due(&self, day: NaiveDate, after: i64, limit: u32) -> Result<Vec<i64>>;
    /// Decides, in one transaction under the subscription's row lock, what it needs next on `day`, and makes
    /// the changes that go with it (see `Step`). A charge returned is claimed until `now + hold`.
    async fn next_step(
        &self,
        subscription: i64,
        day: NaiveDate,
        now: DateTime<Utc>,
        hold: std::time::Duration,
    ) -> Result<Step>;
    /// Starts, in one transaction, the deliveries of those of `subscriptions` that are plainly due on `day`:
    /// active, due, valid, with no order open or made for the date, and stock for all of them. Each gets what
    /// `next_step` would give it (its order, its stock taken, its date moved on, a first charge attempt claimed
    /// until `now + hold`), all or nothing. Returns those charges; every other subscription is left untouched
    /// for `next_step`. A store may start none (SQLite does: its writers take turns anyway).
    async fn start_due(
        &self,
        _subscriptions: &[i64],
        _day: NaiveDate,
        _now: DateTime<Utc>,
        _hold: std::time::Duration,
    ) -> Result<Vec<(i64, PendingCharge)>> {
        Ok(vec![])
    }
    /// Records the gateway's answer for a claimed charge, with its order's new state and its events, on `day`,
    /// and counts it in the run message `run` of `task` (charged as sent, declined as failed) in the same
    /// transaction. A charge already settled is left as it is, and counted once.
    async fn settle_charge(
        &self,
        task: &str,
        run: RunPart,
        charge: &PendingCharge,
        outcome: &ChargeOutcome,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Lets go of a claimed charge whose answer is unknown (a timeout, a 5xx), so that the message's retry asks
    /// the gateway again, with the same key, without waiting for the claim to expire.
    async fn release_charge(&self, charge: &PendingCharge) -> Result<()>;
    /// The events of these subscriptions' orders not yet published, oldest first.
    async fn unpublished(&self, subscriptions: &[i64]) -> Result<Vec<OrderEvent>>;
    async fn mark_published(&self, events: &[i64], now: DateTime<Utc>) -> Result<()>;
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub product: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// An order as a notice about it tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderNotice {
    pub order_id: i64,
    pub user_id: i64,
    pub subscription_id: Option<i64>,
    pub delivery_date: NaiveDate,
    pub status: String,
    pub total_cents: i64,
    pub currency: String,
    pub lines: Vec<OrderLine>,
    /// The latest declined charge's reason, if any.
    pub decline_reason: Option<String>,
    /// When a declined order is charged again, if it will be.
    pub retry_on: Option<NaiveDate>,
}

/// What the order notifications read.
#[async_trait]
pub trait OrderNotices: Send + Sync {
    /// The orders of these ids that exist; an unknown id is absent.
    async fn order_notices(&self, orders: &[i64]) -> Result<Vec<OrderNotice>>;
}

/// A subscription as a renewal reminder reads it at work time: as it is now, for the task to decide whether
/// the delivery it was planned for will still be sent and charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    pub subscription_id: i64,
    pub user_id: i64,
    /// active, paused or cancelled.
    pub status: String,
    pub next_delivery_date: NaiveDate,
    /// The product's name; `None` once the app stopped selling it (soft-deleted) or removed it.
    pub product: Option<String>,
    pub quantity: i64,
    /// Unit price × quantity, in the currency's hundredths; 0 without a product.
    pub amount_cents: i64,
    pub currency: String,
    /// The gateway's reference to the saved card the delivery is charged to.
    pub payment_method: String,
    /// The app's columns, unchecked: `Frequency::parse` reads them.
    pub frequency: String,
    pub interval_days: Option<i64>,
    pub anchor_day: Option<i64>,
}

/// What the renewal reminders read.
#[async_trait]
pub trait Renewals: Send + Sync {
    /// Ids of active subscriptions whose next delivery is on `delivery_date`, ordered, after `after`.
    async fn renewals_due(&self, delivery_date: NaiveDate, after: i64, limit: u32) -> Result<Vec<i64>>;
    /// Those of `subscriptions` that still exist, as they are now, whatever their status or date: the task
    /// decides which still renew, and says why the others do not.
    async fn renewals(&self, subscriptions: &[i64]) -> Result<Vec<Renewal>>;
}

/// The dunning schedule: a declined delivery is charged again this many days after its first decline, then
/// the subscription is paused.
pub const DUNNING_DAYS: [i64; 3] = [1, 3, 5];

/// How many days an out-of-stock delivery waits for stock before it is skipped.
pub const STOCK_WAIT_DAYS: i64 = 3;

/// A subscription's product, as the store read it at processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    pub price_cents: i64,
    pub currency: String,
    /// False once the app soft-deleted it.
    pub on_sale: bool,
}

/// What a subscription's next delivery is (its frequency, and the amount to charge), or why it cannot be
/// delivered: checked before anything is taken or charged. `product` is None when the row is gone.
pub fn delivery(
    frequency: &str,
    interval_days: Option<i64>,
    anchor_day: Option<i64>,
    quantity: i64,
    product: Option<&ProductRow>,
) -> Result<(Frequency, i64), String> {
    let frequency = Frequency::parse(frequency, interval_days, anchor_day)?;
    let product = match product {
        Some(product) if product.on_sale => product,
        Some(_) => return Err("its product was deleted (no longer on sale)".to_owned()),
        None => return Err("its product does not exist".to_owned()),
    };
    if quantity <= 0 {
        return Err(format!("its quantity is {quantity}"));
    }
    let amount = product
        .price_cents
        .checked_mul(quantity)
        .ok_or_else(|| format!("its amount overflows ({} × {quantity} cents)", product.price_cents))?;
    Ok((frequency, amount))
}

/// What an out-of-stock delivery due on `due` does on `day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockWait {
    /// Waits: the next day's processing tries again.
    Wait,
    /// Skipped: it waited `STOCK_WAIT_DAYS`, or the delivery after it is due already.
    Skip,
}

pub fn out_of_stock(frequency: Frequency, due: NaiveDate, day: NaiveDate) -> StockWait {
    if (day - due).num_days() >= STOCK_WAIT_DAYS || frequency.next(due) <= day {
        StockWait::Skip
    } else {
        StockWait::Wait
    }
}

/// The idempotency key of an order's `attempt`-th charge: the gateway charges a key once, so every retry of
/// one attempt (a timeout, a crash, a redelivery) asks with this same key, and each dunning attempt with its own.
pub fn payment_key(order_id: i64, attempt: u32) -> String {
    format!("order-{order_id}-attempt-{attempt}")
}

/// What follows the decline of an order's `attempt`-th charge, its first decline having been on `failed_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dunning {
    RetryOn(NaiveDate),
    /// Every retry was declined: the subscription is paused and the order's stock returned.
    Pause,
}

pub fn after_decline(attempt: u32, failed_on: NaiveDate) -> Dunning {
    match DUNNING_DAYS.get(attempt.saturating_sub(1) as usize) {
        Some(days) => Dunning::RetryOn(failed_on + Duration::days(*days)),
        None => Dunning::Pause,
    }
}

/// A product as the app creates it: for seeding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
    pub stock: i64,
}

/// A subscription as the app creates it: for seeding. `frequency` is the app's text, unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub user_id: i64,
    pub product_id: i64,
    pub quantity: i64,
    pub frequency: String,
    pub interval_days: Option<i64>,
    pub anchor_day: Option<i64>,
    pub next_delivery_date: NaiveDate,
    pub payment_method: String,
}

/// A subscription's state as the app changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Active,
    Paused,
    Cancelled,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
        }
    }
}

/// An order as the shop tasks left it: what the tests, the demo and `jobs` read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub id: i64,
    pub subscription_id: Option<i64>,
    pub user_id: i64,
    pub delivery_date: NaiveDate,
    /// pending_payment, paid, payment_failed, skipped, cancelled, shipped
    pub status: String,
    pub total_cents: i64,
    /// Every charge attempt: (idempotency key, status, provider reference).
    pub payments: Vec<(String, String, Option<String>)>,
}

/// The app's side of the shop's tables: what seeds the demo, the tests and the benchmarks, and what they read
/// back.
#[async_trait]
pub trait ShopWriter: Send + Sync {
    async fn add_products(&self, products: &[NewProduct]) -> Result<Vec<i64>>;
    async fn add_subscriptions(&self, subscriptions: &[NewSubscription]) -> Result<Vec<i64>>;
    async fn set_stock(&self, product_id: i64, stock: i64) -> Result<()>;
    /// Soft-deletes a product, as the app does when it stops selling it.
    async fn delete_product(&self, product_id: i64) -> Result<()>;
    async fn set_subscription_status(&self, subscription_id: i64, status: SubscriptionStatus) -> Result<()>;
    /// Marks an order shipped and writes its OrderShipped event, as the app does when it leaves the warehouse.
    async fn ship_order(&self, order_id: i64, now: DateTime<Utc>) -> Result<OrderEvent>;
    async fn stock(&self, product_id: i64) -> Result<i64>;
    async fn next_delivery_date(&self, subscription_id: i64) -> Result<(NaiveDate, String)>;
    /// Every order, by id, with its payments.
    async fn orders(&self) -> Result<Vec<OrderRecord>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn monthly_keeps_its_anchor_through_short_months() {
        let monthly = Frequency::Monthly { anchor_day: 31 };
        let mut date = d("2027-01-31");
        let mut seen = vec![];
        for _ in 0..4 {
            date = monthly.next(date);
            seen.push(date.to_string());
        }
        assert_eq!(seen, ["2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"]);
    }

    #[test]
    fn monthly_on_the_29th_meets_leap_and_common_februaries() {
        let monthly = Frequency::Monthly { anchor_day: 29 };
        assert_eq!(monthly.next(d("2028-01-29")), d("2028-02-29"));
        assert_eq!(monthly.next(d("2028-02-29")), d("2028-03-29"));
        assert_eq!(monthly.next(d("2027-01-29")), d("2027-02-28"));
        assert_eq!(monthly.next(d("2027-02-28")), d("2027-03-29"));
        assert_eq!(Frequency::Monthly { anchor_day: 31 }.next(d("2026-12-31")), d("2027-01-31"));
    }

    #[test]
    fn weekly_and_every_n_days_add_days() {
        assert_eq!(Frequency::Weekly.next(d("2026-12-28")), d("2027-01-04"));
        assert_eq!(Frequency::EveryDays(10).next(d("2028-02-25")), d("2028-03-06"));
    }

    #[test]
    fn what_the_code_does_not_know_is_said_in_words() {
        assert_eq!(Frequency::parse("weekly", None, None), Ok(Frequency::Weekly));
        assert_eq!(Frequency::parse("monthly", None, Some(31)), Ok(Frequency::Monthly { anchor_day: 31 }));
        assert_eq!(Frequency::parse("every_n_days", Some(14), None), Ok(Frequency::EveryDays(14)));
        assert!(Frequency::parse("fortnightly", None, None).unwrap_err().contains("unknown frequency \"fortnightly\""));
        assert!(Frequency::parse("every_n_days", Some(0), None).unwrap_err().contains("interval_days"));
        assert!(Frequency::parse("monthly", None, Some(32)).unwrap_err().contains("anchor_day"));
        assert!(Frequency::parse("monthly", None, None).unwrap_err().contains("anchor_day"));
    }

    #[test]
    fn a_declined_delivery_is_retried_after_1_3_and_5_days_then_paused() {
        let first = d("2026-12-01");
        assert_eq!(after_decline(1, first), Dunning::RetryOn(d("2026-12-02")));
        assert_eq!(after_decline(2, first), Dunning::RetryOn(d("2026-12-04")));
        assert_eq!(after_decline(3, first), Dunning::RetryOn(d("2026-12-06")));
        assert_eq!(after_decline(4, first), Dunning::Pause);
    }

    #[test]
    fn an_out_of_stock_delivery_waits_three_days_or_until_the_next_is_due() {
        let due = d("2026-12-01");
        for (day, wait) in
            [("2026-12-01", StockWait::Wait), ("2026-12-03", StockWait::Wait), ("2026-12-04", StockWait::Skip)]
        {
            assert_eq!(out_of_stock(Frequency::Weekly, due, d(day)), wait, "{day}");
        }
        assert_eq!(out_of_stock(Frequency::EveryDays(2), due, d("2026-12-02")), StockWait::Wait);
        assert_eq!(out_of_stock(Frequency::EveryDays(2), due, d("2026-12-03")), StockWait::Skip, "the next is due");
    }

    #[test]
    fn a_delivery_needs_a_product_on_sale_and_a_quantity() {
        let product = ProductRow { price_cents: 1250, currency: "INR".into(), on_sale: true };
        assert_eq!(delivery("weekly", None, None, 3, Some(&product)), Ok((Frequency::Weekly, 3750)));
        let gone = ProductRow { on_sale: false, ..product.clone() };
        assert!(delivery("weekly", None, None, 1, Some(&gone)).unwrap_err().contains("deleted"));
        assert!(delivery("weekly", None, None, 1, None).unwrap_err().contains("does not exist"));
        assert!(delivery("weekly", None, None, 0, Some(&product)).unwrap_err().contains("quantity is 0"));
        assert!(delivery("yearly", None, None, 1, Some(&product)).unwrap_err().contains("unknown frequency"));
        assert!(delivery("weekly", None, None, i64::MAX, Some(&product)).unwrap_err().contains("overflows"));
    }
}
