//! One task's runtime on either stack — the embedded one (SQLite, embedded queue, virtual time) or the
//! production one (PostgreSQL, SQS and SES on moto) — run slot by slot as its schedule fires, with the emails
//! it handed over as they were rendered (SES's copies are MIME, encoded).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use infra::{embedded_queue::EmbeddedQueue, ses::SesMailer, sqs::SqsQueue, wiring::Store};
use shared::{
    backoff::Backoff,
    invocation::{Trigger, TriggerSource},
    limits::Pace,
    memory::{MemoryMailer, MemoryNotifier},
    ports::{Email, Mailer, Queue},
    runtime::{JobRuntime, RuntimeSettings, WorkReport},
    tasks::{self, messages::Letterhead},
    time::{Clock, SystemClock, VirtualClock},
};

use crate::{db, moto::Moto};

const MAX_RECEIVES: u32 = 3;

/// Keeps each email its mailer accepted.
struct Recorder {
    inner: Arc<dyn Mailer>,
    sent: Mutex<Vec<Email>>,
}

#[async_trait]
impl Mailer for Recorder {
    async fn send(&self, email: &Email) -> shared::Result<String> {
        let id = self.inner.send(email).await?;
        self.sent.lock().expect("recorder lock").push(email.clone());
        Ok(id)
    }
}

pub struct TaskStack {
    pub runtime: JobRuntime,
    /// The app's tables, to seed and change between plans.
    pub store: Store,
    recorder: Arc<Recorder>,
    /// The emulator, on the production stack.
    pub moto: Option<Moto>,
}

impl TaskStack {
    pub async fn embedded(task: &str) -> Self {
        let store = db::fresh_sqlite().await;
        let clock = Arc::new(VirtualClock::new(SystemClock.now()));
        let queue = Arc::new(EmbeddedQueue::new(store.db().clone(), task, clock.clone(), MAX_RECEIVES));
        Self::over(task, Store::Sqlite(Arc::new(store)), queue, Arc::new(MemoryMailer::default()), clock, None)
    }

    pub async fn aws(task: &str) -> Self {
        Self::aws_on(task, db::fresh_postgres().await).await
    }

    /// The production stack on a PostgreSQL store of the test's own.
    pub async fn aws_on(task: &str, store: infra::postgres::PgStore) -> Self {
        let moto = Moto::start().await;
        let stem = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let (url, dlq) = moto.create_queue_pair(&format!("{task}-{stem:x}"), MAX_RECEIVES, 30).await;
        let ses = moto.ses().await;
        ses.verify_email_identity().email_address("jobs@example.com").send().await.unwrap();
        let queue = Arc::new(SqsQueue::new(moto.sqs().await, url, dlq));
        let clock = Arc::new(VirtualClock::new(SystemClock.now()));
        let mailer = Arc::new(SesMailer::new(ses));
        Self::over(task, Store::Postgres(Arc::new(store)), queue, mailer, clock, Some(moto))
    }

    fn over(
        task: &str,
        store: Store,
        queue: Arc<dyn Queue>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        moto: Option<Moto>,
    ) -> Self {
        let recorder = Arc::new(Recorder { inner: mailer, sent: Mutex::new(vec![]) });
        let letterhead = Letterhead { from: "jobs@example.com".into(), signer: None, preferences: None };
        let deps = store.deps(recorder.clone(), Arc::new(MemoryNotifier::default()), letterhead);
        let one_second = Duration::from_secs(1);
        let runtime = JobRuntime {
            task: tasks::build(task, &deps).unwrap(),
            schedule: tasks::schedule(task).unwrap(),
            runs: store.runs(),
            ledger: store.ledger(),
            queue,
            clock,
            pace: Pace::new(None),
            settings: RuntimeSettings {
                backoff: Backoff { base: one_second, cap: one_second },
                visibility: Duration::from_secs(30),
                ..RuntimeSettings::default()
            },
        };
        Self { runtime, store, recorder, moto }
    }

    /// The emails sent so far, in the order they went.
    pub fn sent(&self) -> Vec<Email> {
        self.recorder.sent.lock().expect("recorder lock").clone()
    }

    /// Works every queued message.
    pub async fn drain(&self) -> WorkReport {
        let mut total = WorkReport::default();
        for batch in self.runtime.drain().await.unwrap() {
            total.merge(&batch.totals());
        }
        total
    }

    /// Plans and works each slot the schedule fires in `(after, until]`, as the scheduler would: the slots that
    /// planned anyone, with how many, and what the work did.
    pub async fn run_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> (Vec<(DateTime<Utc>, u64)>, WorkReport) {
        let fires: Vec<DateTime<Utc>> =
            self.runtime.schedule.as_ref().expect("a scheduled task").fires_between(after, until).collect();
        let (mut planned, mut work) = (vec![], WorkReport::default());
        for time in fires {
            let plan = self.plan(time).await;
            work.merge(&self.drain().await);
            if plan > 0 {
                planned.push((time, plan));
            }
        }
        (planned, work)
    }

    /// Plans one slot as the scheduler fires it; how many users it planned.
    pub async fn plan(&self, time: DateTime<Utc>) -> u64 {
        let trigger = Trigger { time, source: TriggerSource::Scheduler, task: None };
        self.runtime.plan(trigger).await.unwrap().planned
    }
}
