//! subscription-processing through the real runtime on both stores: exactly one order and one successful charge
//! per delivery whatever the workers, redeliveries and crashes do; stock never negative; races with the app;
//! month ends; each gateway outcome with its dunning; and the app's rows this code cannot process.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use integration_tests::{
    nudges::Backend,
    shop::{weekly, ShopStack, NAME},
};
use shared::{
    ports::{
        ChargeOutcome, ChargeRequest, NewSubscription, OrderEvent, OrderEventKind, Payments, PendingCharge, RunPart,
        ShopStore, Step, SubscriptionStatus,
    },
    runtime::{sqs_event, JobRuntime, MessageOutcome},
    Error, Result,
};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Every order's successful payments; panics on an order paid twice.
fn paid_once(stack_orders: &[shared::ports::OrderRecord]) -> usize {
    let mut paid = 0;
    for order in stack_orders {
        let successes = order.payments.iter().filter(|(_, status, _)| status == "succeeded").count();
        assert!(successes <= 1, "order {} was charged {successes} times: {order:?}", order.id);
        paid += successes;
    }
    paid
}

async fn eight_workers_and_every_message_three_times_make_one_order_and_one_charge_each(backend: Backend) {
    let stack = ShopStack::with_gateway(backend, "2026-12-01T00:00:00Z", Duration::from_millis(2)).await;
    let users = stack.users(40).await;
    let plenty = stack.product(1299, 1_000).await;
    let scarce = stack.product(499, 10).await;
    let methods = ["pm_visa", "pm_timeout", "pm_5xx", "pm_mastercard"];
    let mut subscriptions = vec![];
    for (i, user) in users.iter().enumerate() {
        let method = methods[i % methods.len()];
        subscriptions.extend(stack.subscribe(&[*user], plenty, 2, "2026-12-01", method).await);
        subscriptions.extend(stack.subscribe(&[*user], scarce, 1, "2026-12-01", method).await);
    }
    // Chunks of seven: many messages, so that workers overlap.
    let task = || stack.task_with(stack.store.shop(), stack.gateway.clone());
    let planner = stack.runtime(task());
    assert_eq!(stack.plan(&planner, "2026-12-01").await, 80);

    // Every planned message, received once and delivered three times over eight workers at once.
    let mut received = vec![];
    loop {
        let next = planner.queue.receive(10, Duration::from_secs(600)).await.unwrap();
        if next.is_empty() {
            break;
        }
        received.extend(next);
    }
    assert!(received.len() > 3, "the chunks spread over several messages: {}", received.len());
    let deliveries: Vec<_> = (0..3).flat_map(|_| received.iter().cloned()).collect();
    let workers: Vec<Arc<JobRuntime>> = (0..8).map(|_| Arc::new(stack.runtime(task()))).collect();
    let mut handles = vec![];
    for (n, worker) in workers.iter().enumerate() {
        let mine: Vec<_> = deliveries.iter().skip(n).step_by(workers.len()).cloned().collect();
        let worker = worker.clone();
        handles.push(tokio::spawn(async move {
            let mut outcomes = vec![];
            for message in mine {
                outcomes.extend(worker.work(sqs_event(&[message])).await.messages);
            }
            outcomes
        }));
    }
    for handle in handles {
        for (_, outcome) in handle.await.unwrap() {
            assert!(!matches!(outcome, MessageOutcome::DeadLettered { .. }), "{outcome:?}");
        }
    }
    // What came back for a retry (a charge held by another worker, an ambiguous answer) is worked again.
    for _ in 0..5 {
        let mut retried = false;
        for message in &received {
            let outcomes = planner.work(sqs_event(std::slice::from_ref(message))).await.messages;
            retried |= outcomes.iter().any(|(_, o)| matches!(o, MessageOutcome::Retry { .. }));
        }
        if !retried {
            break;
        }
    }

    let orders = stack.orders().await;
    let mut per_delivery = HashSet::new();
    for order in &orders {
        assert!(per_delivery.insert((order.subscription_id, order.delivery_date)), "two orders: {order:?}");
    }
    let paid = orders.iter().filter(|o| o.status == "paid").count();
    assert_eq!(paid, 50, "40 of the plentiful product, 10 of the scarce one");
    assert_eq!(paid_once(&orders), 50);
    let charges = stack.gateway.charges();
    let keys: HashSet<&str> = charges.iter().map(|c| c.key.as_str()).collect();
    assert_eq!((charges.len(), keys.len()), (50, 50), "the gateway charged each order once");
    assert_eq!(stack.shop.stock(plenty).await.unwrap(), 1_000 - 40 * 2);
    assert_eq!(stack.shop.stock(scarce).await.unwrap(), 0, "stock never goes negative");
    let waiting = orders.iter().filter(|o| o.status == "pending_payment").count();
    assert_eq!(waiting, 0, "{orders:?}");
    // Each paid order's confirmation went to the bus.
    let placed: HashSet<i64> = stack
        .published()
        .into_iter()
        .filter(|(_, kind)| *kind == OrderEventKind::OrderPlaced)
        .map(|(order, _)| order)
        .collect();
    assert_eq!(placed.len(), 50);
}

/// Where a crash is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// The first transaction is rolled back: nothing of it is kept (the store's atomicity).
    BeforeCommit,
    /// The order is committed, the gateway not asked.
    AfterCommit,
    /// The gateway charged; its answer is never recorded.
    AfterCharge,
    /// Settled; the events not published.
    AfterSettle,
}

/// A store and a gateway that die once, at the chosen point.
struct Crashing {
    shop: Arc<dyn ShopStore>,
    payments: Arc<dyn Payments>,
    at: Crash,
    armed: AtomicBool,
}

impl Crashing {
    fn crash(&self, at: Crash) -> Result<()> {
        if self.at == at && self.armed.swap(false, Ordering::SeqCst) {
            return Err(Error::retryable(format!("killed {at:?}")));
        }
        Ok(())
    }
}

#[async_trait]
impl ShopStore for Crashing {
    async fn subscriptions_due(&self, day: NaiveDate, after: i64, limit: u32) -> Result<Vec<i64>> {
        self.shop.subscriptions_due(day, after, limit).await
    }

    async fn start_due(
        &self,
        subscriptions: &[i64],
        day: NaiveDate,
        now: DateTime<Utc>,
        hold: Duration,
    ) -> Result<Vec<(i64, PendingCharge)>> {
        self.crash(Crash::BeforeCommit)?;
        let started = self.shop.start_due(subscriptions, day, now, hold).await?;
        if !started.is_empty() {
            self.crash(Crash::AfterCommit)?;
        }
        Ok(started)
    }

    async fn next_step(&self, id: i64, day: NaiveDate, now: DateTime<Utc>, hold: Duration) -> Result<Step> {
        self.crash(Crash::BeforeCommit)?;
        let step = self.shop.next_step(id, day, now, hold).await?;
        if matches!(step, Step::Charge(_)) {
            self.crash(Crash::AfterCommit)?;
        }
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
        self.crash(Crash::AfterCharge)?;
        self.shop.settle_charge(task, run, charge, outcome, day, now).await?;
        self.crash(Crash::AfterSettle)
    }

    async fn release_charge(&self, charge: &PendingCharge) -> Result<()> {
        self.shop.release_charge(charge).await
    }

    async fn unpublished(&self, subscriptions: &[i64]) -> Result<Vec<OrderEvent>> {
        self.shop.unpublished(subscriptions).await
    }

    async fn mark_published(&self, events: &[i64], now: DateTime<Utc>) -> Result<()> {
        self.shop.mark_published(events, now).await
    }
}

#[async_trait]
impl Payments for Crashing {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome> {
        self.payments.charge(request).await
    }
}

async fn a_crash_after_any_step_completes_on_redelivery_with_no_second_order_or_charge(backend: Backend) {
    for at in [Crash::BeforeCommit, Crash::AfterCommit, Crash::AfterCharge, Crash::AfterSettle] {
        let stack = ShopStack::start(backend, "2026-12-01T00:00:00Z").await;
        let users = stack.users(3).await;
        let product = stack.product(1299, 100).await;
        let subs = stack.subscribe(&users, product, 1, "2026-12-01", "pm_visa").await;
        let crashing = Arc::new(Crashing {
            shop: stack.store.shop(),
            payments: stack.gateway.clone(),
            at,
            armed: AtomicBool::new(true),
        });
        let runtime = stack.runtime(stack.task_with(crashing.clone(), crashing.clone()));
        stack.plan(&runtime, "2026-12-01").await;
        let first = runtime.drain().await.unwrap();
        let retried = first.iter().flat_map(|b| &b.messages).any(|(_, o)| matches!(o, MessageOutcome::Retry { .. }));
        assert!(retried, "{at:?}: the crash must make the message come back");
        assert!(!crashing.armed.load(Ordering::SeqCst), "{at:?} was reached");
        if at == Crash::AfterSettle {
            stack.events.fail_next(1);
        }
        stack.drain(&runtime).await;

        let orders = stack.orders().await;
        assert_eq!(orders.len(), 3, "{at:?}: one order per subscription: {orders:?}");
        assert!(orders.iter().all(|o| o.status == "paid"), "{at:?}: {orders:?}");
        assert_eq!(paid_once(&orders), 3, "{at:?}");
        assert_eq!(stack.gateway.charges().len(), 3, "{at:?}: charged once each");
        assert_eq!(stack.shop.stock(product).await.unwrap(), 97, "{at:?}");
        let placed: HashSet<i64> = stack.published().into_iter().map(|(order, _)| order).collect();
        assert_eq!(placed.len(), 3, "{at:?}: every confirmation published");
        // A later redelivery of the whole chunk changes nothing.
        let body = serde_json::json!({
            "task": NAME, "slot": "2026-12-01T00:00:00Z", "part": 0, "payload": { "subscriptions": subs },
        });
        runtime.queue.send_batch(&[body.to_string()]).await.unwrap();
        stack.drain(&runtime).await;
        assert_eq!(stack.orders().await, orders, "{at:?}");
    }
}

async fn a_pause_or_cancel_racing_the_plan_wins(backend: Backend) {
    let stack = ShopStack::start(backend, "2026-12-01T00:00:00Z").await;
    let users = stack.users(3).await;
    let product = stack.product(1299, 100).await;
    let subs = stack.subscribe(&users, product, 1, "2026-12-01", "pm_visa").await;
    let runtime = stack.runtime(stack.task());
    assert_eq!(stack.plan(&runtime, "2026-12-01").await, 3);
    stack.shop.set_subscription_status(subs[0], SubscriptionStatus::Paused).await.unwrap();
    stack.shop.set_subscription_status(subs[1], SubscriptionStatus::Cancelled).await.unwrap();
    let (report, _) = stack.drain(&runtime).await;
    let orders = stack.orders().await;
    assert_eq!(orders.iter().map(|o| o.subscription_id).collect::<Vec<_>>(), [Some(subs[2])]);
    assert_eq!(report.skipped.get("paused or cancelled"), Some(&2), "{report:?}");
    assert_eq!(stack.shop.stock(product).await.unwrap(), 99);
}

async fn monthly_anchors_keep_their_day_through_month_ends_and_leap_years(backend: Backend) {
    let stack = ShopStack::start(backend, "2028-01-31T00:00:00Z").await;
    let users = stack.users(2).await;
    let product = stack.product(1000, 100).await;
    let monthly = |user, anchor: i64, due: &str| NewSubscription {
        frequency: "monthly".into(),
        anchor_day: Some(anchor),
        ..weekly(user, product, 1, due, "pm_visa")
    };
    let subs = stack
        .shop
        .add_subscriptions(&[monthly(users[0], 31, "2028-01-31"), monthly(users[1], 29, "2028-01-29")])
        .await
        .unwrap();
    let runtime = stack.runtime(stack.task());
    for day in ["2028-01-29", "2028-01-31", "2028-02-29", "2028-03-29", "2028-03-31", "2028-04-30"] {
        stack.run_day(&runtime, day).await;
    }
    let mut dates: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for order in stack.orders().await {
        dates.entry(order.subscription_id.unwrap()).or_default().push(order.delivery_date.to_string());
    }
    assert_eq!(dates[&subs[0]], ["2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30"]);
    assert_eq!(dates[&subs[1]], ["2028-01-29", "2028-02-29", "2028-03-29", "2028-04-29"]);
    assert_eq!(stack.shop.next_delivery_date(subs[0]).await.unwrap().0, d("2028-05-31"));
    assert_eq!(stack.shop.next_delivery_date(subs[1]).await.unwrap().0, d("2028-05-29"));
}

async fn a_declined_card_is_retried_after_1_3_and_5_days_then_the_subscription_pauses(backend: Backend) {
    let stack = ShopStack::start(backend, "2026-12-01T00:00:00Z").await;
    let users = stack.users(2).await;
    let product = stack.product(1299, 10).await;
    let always = stack.subscribe(&users[..1], product, 2, "2026-12-01", "pm_decline").await[0];
    let recovers = stack.subscribe(&users[1..], product, 1, "2026-12-01", "pm_decline_2").await[0];
    let runtime = stack.runtime(stack.task());
    let mut charged_on = BTreeMap::new();
    for day in 1..=8 {
        let day = format!("2026-12-{day:02}");
        let report = stack.run_day(&runtime, &day).await;
        charged_on.insert(day, (report.sent, report.failed));
    }
    // Day 1: both declined; day 2: both retried and declined; day 4: `recovers` charged; day 6: `always` last.
    let expected = [
        ("2026-12-01", (0, 2)),
        ("2026-12-02", (0, 2)),
        ("2026-12-03", (0, 0)),
        ("2026-12-04", (1, 1)),
        ("2026-12-05", (0, 0)),
        ("2026-12-06", (0, 1)),
        ("2026-12-07", (0, 0)),
        ("2026-12-08", (1, 0)),
    ];
    for (day, counts) in expected {
        assert_eq!(charged_on[day], counts, "{day}: (charged, declined)");
        // The run counts each charge once, as its messages settled them.
        let run = stack.store.runs().run(NAME, format!("{day}T00:00:00Z").parse().unwrap()).await.unwrap().unwrap();
        assert_eq!((run.sent, run.failed), counts, "{day}: job_runs (sent, failed)");
    }
    let orders = stack.orders().await;
    let order = |sub| orders.iter().find(|o| o.subscription_id == Some(sub)).unwrap();
    assert_eq!(order(always).status, "payment_failed");
    assert_eq!(order(always).payments.len(), 4, "the first charge and three retries");
    assert_eq!(order(recovers).status, "paid");
    assert_eq!(order(recovers).payments.len(), 3);
    assert_eq!(stack.shop.next_delivery_date(always).await.unwrap().1, "paused");
    assert_eq!(stack.shop.next_delivery_date(recovers).await.unwrap(), (d("2026-12-15"), "active".into()));
    assert_eq!(orders.len(), 3, "the recovered subscription's next delivery (Dec 8) was made: {orders:?}");
    assert_eq!(stack.shop.stock(product).await.unwrap(), 10 - 1 - 1, "the paused order's stock came back");
    let about_always: Vec<OrderEventKind> =
        stack.published().into_iter().filter(|(o, _)| *o == order(always).id).map(|(_, k)| k).collect();
    assert_eq!(about_always, [OrderEventKind::PaymentFailed, OrderEventKind::SubscriptionPaused]);
}

async fn an_out_of_stock_delivery_waits_three_days_then_is_skipped_and_the_next_one_comes(backend: Backend) {
    let stack = ShopStack::start(backend, "2026-12-01T00:00:00Z").await;
    let users = stack.users(2).await;
    let empty = stack.product(1299, 0).await;
    let restocked = stack.product(899, 0).await;
    let skipped = stack.subscribe(&users[..1], empty, 1, "2026-12-01", "pm_visa").await[0];
    let waits = stack.subscribe(&users[1..], restocked, 1, "2026-12-01", "pm_visa").await[0];
    let runtime = stack.runtime(stack.task());
    for day in ["2026-12-01", "2026-12-02"] {
        let report = stack.run_day(&runtime, day).await;
        assert_eq!(report.skipped.get("out of stock: the delivery waits"), Some(&2), "{day}: {report:?}");
    }
    stack.shop.set_stock(restocked, 5).await.unwrap();
    stack.run_day(&runtime, "2026-12-03").await;
    stack.run_day(&runtime, "2026-12-04").await;
    let orders = stack.orders().await;
    let late = orders.iter().find(|o| o.subscription_id == Some(waits)).unwrap();
    assert_eq!((late.delivery_date, late.status.as_str()), (d("2026-12-01"), "paid"), "sent two days late");
    let gone = orders.iter().find(|o| o.subscription_id == Some(skipped)).unwrap();
    assert_eq!((gone.delivery_date, gone.status.as_str()), (d("2026-12-01"), "skipped"));
    assert!(gone.payments.is_empty(), "no charge for a skipped delivery");
    assert_eq!(stack.shop.next_delivery_date(skipped).await.unwrap().0, d("2026-12-08"));
    assert_eq!(stack.shop.next_delivery_date(waits).await.unwrap().0, d("2026-12-08"));
    assert!(stack.published().contains(&(gone.id, OrderEventKind::DeliverySkipped)));
    assert_eq!(stack.gateway.charges().len(), 1);
}

async fn rows_this_code_cannot_process_are_recorded_and_the_rest_of_the_batch_goes_on(backend: Backend) {
    let stack = ShopStack::start(backend, "2026-12-01T00:00:00Z").await;
    let users = stack.users(5).await;
    let product = stack.product(1299, 100).await;
    let deleted = stack.product(500, 100).await;
    stack.shop.delete_product(deleted).await.unwrap();
    let due = |user, product, quantity, frequency: &str| NewSubscription {
        frequency: frequency.into(),
        ..weekly(user, product, quantity, "2026-12-01", "pm_visa")
    };
    let subs = stack
        .shop
        .add_subscriptions(&[
            due(users[0], deleted, 1, "weekly"),
            due(users[1], product, 0, "weekly"),
            due(users[2], product, 1, "fortnightly"),
            due(users[3], 999_999, 1, "weekly"),
            due(users[4], product, 1, "weekly"),
        ])
        .await
        .unwrap();
    let runtime = stack.runtime(stack.task());
    stack.plan(&runtime, "2026-12-01").await;
    let (report, batches) = stack.drain(&runtime).await;
    assert!(batches.iter().flat_map(|b| &b.messages).all(|(_, o)| matches!(o, MessageOutcome::Done { .. })));
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(report.skipped.get("cannot be processed"), Some(&4), "{report:?}");
    let reasons = [
        (subs[0], "product was deleted"),
        (subs[1], "quantity is 0"),
        (subs[2], "unknown frequency \"fortnightly\""),
        (subs[3], "product does not exist"),
    ];
    let run = stack.store.runs().run(NAME, "2026-12-01T00:00:00Z".parse().unwrap()).await.unwrap().unwrap();
    for (sub, reason) in reasons {
        let line = format!("subscription {sub}: ");
        assert!(
            report.errors.iter().any(|e| e.starts_with(&line) && e.contains(reason)),
            "{reason}: {:?}",
            report.errors
        );
        assert!(run.errors.iter().any(|e| e.starts_with(&line) && e.contains(reason)), "{:?}", run.errors);
    }
    assert_eq!(stack.orders().await.len(), 1);
    assert_eq!(stack.gateway.charges().len(), 1);
}

async fn a_chunk_that_is_not_subscriptions_is_dead_lettered_with_its_reason(backend: Backend) {
    let stack = ShopStack::start(backend, "2026-12-01T00:00:00Z").await;
    let runtime = stack.runtime(stack.task());
    let body = serde_json::json!({
        "task": NAME,
        "slot": "2026-12-01T00:00:00Z",
        "part": 0,
        "payload": { "subscriptions": "all of them" },
    });
    runtime.queue.send_batch(&[body.to_string()]).await.unwrap();
    let (_, batches) = stack.drain(&runtime).await;
    let outcome = &batches[0].messages[0].1;
    let MessageOutcome::DeadLettered { reason } = outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("not a chunk of subscriptions"), "{reason}");
}

integration_tests::on_both_stores!(
    eight_workers_and_every_message_three_times_make_one_order_and_one_charge_each,
    a_crash_after_any_step_completes_on_redelivery_with_no_second_order_or_charge,
    a_pause_or_cancel_racing_the_plan_wins,
    monthly_anchors_keep_their_day_through_month_ends_and_leap_years,
    a_declined_card_is_retried_after_1_3_and_5_days_then_the_subscription_pauses,
    an_out_of_stock_delivery_waits_three_days_then_is_skipped_and_the_next_one_comes,
    rows_this_code_cannot_process_are_recorded_and_the_rest_of_the_batch_goes_on,
    a_chunk_that_is_not_subscriptions_is_dead_lettered_with_its_reason,
);
