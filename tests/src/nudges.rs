//! What the tests of the tasks that message people share: a task's runtime over either store, with an embedded
//! queue on virtual time (so a message held for the night can be seen hidden and then come back at 08:00) and
//! the mailer and notifier in memory.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use infra::{embedded_queue::EmbeddedQueue, wiring::Store};
use shared::{
    invocation::{Trigger, TriggerSource},
    limits::Pace,
    memory::{MemoryMailer, MemoryNotifier},
    ports::{AppWriter, Contacts},
    runtime::{BatchReport, JobRuntime, PlanReport, RuntimeSettings, WorkReport},
    tasks::{self, messages::Letterhead},
    time::VirtualClock,
};

use crate::db;

/// Which store a stack keeps the app's tables, the runs and the ledger in.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Stack {
    pub runtime: JobRuntime,
    pub store: Store,
    pub app: Arc<dyn AppWriter>,
    pub contacts: Arc<dyn Contacts>,
    pub mailer: Arc<MemoryMailer>,
    pub notifier: Arc<MemoryNotifier>,
    pub clock: Arc<VirtualClock>,
}

impl Stack {
    /// The task's runtime with its clock at `now`.
    pub async fn start(task: &str, backend: Backend, now: DateTime<Utc>) -> Stack {
        let sqlite = db::fresh_sqlite().await;
        let queue_db = sqlite.db().clone();
        let store = match backend {
            Backend::Sqlite => Store::Sqlite(Arc::new(sqlite)),
            Backend::Postgres => Store::Postgres(Arc::new(db::fresh_postgres().await)),
        };
        let clock = Arc::new(VirtualClock::new(now));
        let (mailer, notifier) = (Arc::new(MemoryMailer::default()), Arc::new(MemoryNotifier::default()));
        let letterhead = Letterhead { from: "coach@example.com".into(), signer: None, preferences: None };
        let deps = store.deps(mailer.clone(), notifier.clone(), letterhead);
        let runtime = JobRuntime {
            task: tasks::build(task, &deps).unwrap(),
            schedule: tasks::schedule(task).unwrap(),
            runs: store.runs(),
            ledger: store.ledger(),
            queue: Arc::new(EmbeddedQueue::new(queue_db, task, clock.clone(), 3)),
            clock: clock.clone(),
            pace: Pace::new(None),
            settings: RuntimeSettings::default(),
        };
        Stack { runtime, app: store.writer(), contacts: store.contacts(), store, mailer, notifier, clock }
    }

    /// Plans the slot at `slot` as a person triggering it would, whatever the clock says.
    pub async fn plan(&self, slot: &str) -> PlanReport {
        let trigger = Trigger { time: slot.parse().unwrap(), source: TriggerSource::Manual, task: None };
        self.runtime.plan(trigger).await.unwrap()
    }

    /// Works every visible message; the batches' reports.
    pub async fn drain(&self) -> Vec<BatchReport> {
        self.runtime.drain().await.unwrap()
    }

    /// Works every visible message; what they did, summed.
    pub async fn drain_totals(&self) -> WorkReport {
        let mut total = WorkReport::default();
        for batch in self.drain().await {
            total.merge(&batch.totals());
        }
        total
    }

    /// Sets the clock, as time passing would.
    pub fn set_clock(&self, at: &str) {
        self.clock.set(at.parse().unwrap());
    }
}
