//! What the shop's tests share: subscription-processing's runtime over either store, with the embedded queue on
//! virtual time, the fake gateway and the order events in memory, and the shop seeded through the app's side.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use infra::{embedded_queue::EmbeddedQueue, payments::FakeGateway, wiring::Store};
use shared::{
    backoff::Backoff,
    invocation::{Trigger, TriggerSource},
    limits::Pace,
    memory::{MemoryMailer, MemoryNotifier, MemoryOrderEvents},
    ports::{NewProduct, NewSubscription, NewUser, OrderEventKind, OrderRecord, Payments, ShopStore, ShopWriter},
    runtime::{BatchReport, JobRuntime, RuntimeSettings, Task, WorkReport},
    tasks::{
        self,
        shop::{order_notifications, subscription_processing::SubscriptionProcessing},
    },
    time::VirtualClock,
};

use crate::{db, nudges::Backend};

pub use shared::tasks::shop::subscription_processing::NAME;

pub struct ShopStack {
    pub store: Store,
    pub shop: Arc<dyn ShopWriter>,
    pub gateway: Arc<FakeGateway>,
    pub events: Arc<MemoryOrderEvents>,
    pub clock: Arc<VirtualClock>,
    queue_db: infra::sqlite::Db,
}

impl ShopStack {
    pub async fn start(backend: Backend, now: &str) -> Self {
        Self::with_gateway(backend, now, Duration::ZERO).await
    }

    /// A stack whose gateway takes `latency` per request.
    pub async fn with_gateway(backend: Backend, now: &str, latency: Duration) -> Self {
        let sqlite = db::fresh_sqlite().await;
        let queue_db = sqlite.db().clone();
        let store = match backend {
            Backend::Sqlite => Store::Sqlite(Arc::new(sqlite)),
            Backend::Postgres => Store::Postgres(Arc::new(db::fresh_postgres().await)),
        };
        ShopStack {
            shop: store.shop_writer(),
            store,
            gateway: Arc::new(FakeGateway::new(latency)),
            events: Arc::new(MemoryOrderEvents::default()),
            clock: Arc::new(VirtualClock::new(now.parse().unwrap())),
            queue_db,
        }
    }

    /// The task as deployed, over this stack's store, gateway and events.
    pub fn task(&self) -> Arc<dyn Task> {
        let deps = tasks::Deps {
            payments: Some(self.gateway.clone()),
            order_events: Some(self.events.clone()),
            ..self.store.deps(
                Arc::new(shared::memory::NullMailer::default()),
                Arc::new(shared::memory::MemoryNotifier::default()),
                tasks::messages::Letterhead { from: "shop@example.com".into(), signer: None, preferences: None },
            )
        };
        tasks::build(NAME, &deps).unwrap()
    }

    /// The task over other ports (a store or a gateway that fails on cue).
    pub fn task_with(&self, shop: Arc<dyn ShopStore>, payments: Arc<dyn Payments>) -> Arc<dyn Task> {
        Arc::new(SubscriptionProcessing { shop, payments, events: self.events.clone(), chunk_size: 7, concurrency: 4 })
    }

    /// A runtime of `task` on this stack's queue; each is a worker.
    pub fn runtime(&self, task: Arc<dyn Task>) -> JobRuntime {
        let one_second = Duration::from_secs(1);
        JobRuntime {
            task,
            schedule: tasks::schedule(NAME).unwrap(),
            runs: self.store.runs(),
            ledger: self.store.ledger(),
            queue: Arc::new(EmbeddedQueue::new(self.queue_db.clone(), NAME, self.clock.clone(), 10)),
            clock: self.clock.clone(),
            pace: Pace::new(None),
            settings: RuntimeSettings { backoff: Backoff { base: one_second, cap: one_second }, ..Default::default() },
        }
    }

    /// order-notifications over this stack's store, on its own embedded queue, with the senders in memory.
    pub fn notifications(&self) -> (JobRuntime, Arc<MemoryMailer>, Arc<MemoryNotifier>) {
        let (mailer, notifier) = (Arc::new(MemoryMailer::default()), Arc::new(MemoryNotifier::default()));
        let letterhead =
            tasks::messages::Letterhead { from: "shop@example.com".into(), signer: None, preferences: None };
        let deps = self.store.deps(mailer.clone(), notifier.clone(), letterhead);
        let name = order_notifications::NAME;
        let runtime = JobRuntime {
            task: tasks::build(name, &deps).unwrap(),
            schedule: tasks::schedule(name).unwrap(),
            runs: self.store.runs(),
            ledger: self.store.ledger(),
            queue: Arc::new(EmbeddedQueue::new(self.queue_db.clone(), name, self.clock.clone(), 4)),
            clock: self.clock.clone(),
            pace: Pace::new(None),
            settings: RuntimeSettings::default(),
        };
        (runtime, mailer, notifier)
    }

    /// One user per name, in Europe/London, with a phone.
    pub async fn users(&self, n: usize) -> Vec<i64> {
        let users: Vec<NewUser> = (0..n)
            .map(|i| NewUser {
                name: format!("Customer {i}"),
                email: format!("customer{i}@example.com"),
                phone: Some(format!("+4477009{i:05}")),
                time_zone: "Europe/London".into(),
                email_opt_in: true,
            })
            .collect();
        self.store.writer().add_users(&users).await.unwrap()
    }

    pub async fn product(&self, price_cents: i64, stock: i64) -> i64 {
        let product = NewProduct { name: "Protein bars".into(), price_cents, currency: "INR".into(), stock };
        self.shop.add_products(&[product]).await.unwrap()[0]
    }

    /// Subscriptions of `quantity` of `product`, one per user, all due on `due`, with `method` as the card.
    pub async fn subscribe(&self, users: &[i64], product: i64, quantity: i64, due: &str, method: &str) -> Vec<i64> {
        let subscriptions: Vec<NewSubscription> =
            users.iter().map(|&user| weekly(user, product, quantity, due, method)).collect();
        self.shop.add_subscriptions(&subscriptions).await.unwrap()
    }

    /// Plans the day of `day` (its 00:00 UTC) with `runtime`, as the schedule fires it.
    pub async fn plan(&self, runtime: &JobRuntime, day: &str) -> u64 {
        let time: DateTime<Utc> = format!("{day}T00:00:00Z").parse().unwrap();
        self.clock.set(time);
        let trigger = Trigger { time, source: TriggerSource::Scheduler, task: None };
        runtime.plan(trigger).await.unwrap().planned
    }

    /// Works every message until none is left to retry, moving the clock past each retry's delay.
    pub async fn drain(&self, runtime: &JobRuntime) -> (WorkReport, Vec<BatchReport>) {
        let mut all = vec![];
        for _ in 0..20 {
            all.extend(runtime.drain().await.unwrap());
            if runtime.queue.depth().await.unwrap() == 0 {
                break;
            }
            // Past every retry's delay (and every claim's hold).
            self.clock.advance(chrono::Duration::minutes(3));
        }
        let mut total = WorkReport::default();
        for batch in &all {
            total.merge(&batch.totals());
        }
        (total, all)
    }

    /// Plans `day` and works it to the end.
    pub async fn run_day(&self, runtime: &JobRuntime, day: &str) -> WorkReport {
        self.plan(runtime, day).await;
        self.drain(runtime).await.0
    }

    pub async fn orders(&self) -> Vec<OrderRecord> {
        self.shop.orders().await.unwrap()
    }

    /// The events published so far, as (order, kind).
    pub fn published(&self) -> Vec<(i64, OrderEventKind)> {
        self.events.published().into_iter().map(|e| (e.order_id, e.kind)).collect()
    }
}

pub fn weekly(user_id: i64, product_id: i64, quantity: i64, due: &str, method: &str) -> NewSubscription {
    NewSubscription {
        user_id,
        product_id,
        quantity,
        frequency: "weekly".into(),
        interval_days: None,
        anchor_day: None,
        next_delivery_date: due.parse::<NaiveDate>().unwrap(),
        payment_method: method.into(),
    }
}
