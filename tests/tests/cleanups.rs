//! The cleanup tasks through the real runtime on both stores (SQLite, PostgreSQL), with the embedded queue on
//! virtual time: a cart touched between plan and delete survives; empty carts go first; no delete transaction
//! exceeds its batch; a delete killed or cut short by the deadline is finished by the redelivery and counted
//! once; a forged range deletes nothing outside it; a malformed range is dead-lettered with its reason; each
//! sweep deletes exactly the rows past its age, with the configured ages.

use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use infra::sqlite::Db;
use infra::{config::Config, embedded_queue::EmbeddedQueue, wiring::Store};
use integration_tests::{db, nudges::Backend};
use shared::{
    backoff::Backoff,
    invocation::{Trigger, TriggerSource},
    limits::{Deadline, Pace},
    memory::{MemoryNotifier, NullMailer},
    ports::{
        Batch, MaintenanceWriter, NewCart, NewRow, NewUser, Pick, Range, RunPart, RunRecord, Sweep, Sweeper, Swept,
    },
    runtime::{
        sqs_event, Context, JobMessage, JobRuntime, MessageOutcome, PlanReport, RuntimeSettings, Task, WorkReport,
    },
    tasks::{
        self,
        maintenance::cleanup::{
            Ages, Cleanup, AUDIT_LOG_RETENTION, CART_CLEANUP, KEPT, SESSION_CLEANUP, TEMP_DATA_CLEANUP, TOKEN_CLEANUP,
        },
        messages::Letterhead,
    },
    time::VirtualClock,
    Result,
};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// cart-cleanup's slot on 1 December: its cutoff is 30 days before the day, 1 November 00:00 UTC.
const SLOT: &str = "2026-12-01T02:00:00Z";
const DAY: &str = "2026-12-01T00:00:00Z";
const STALE: &str = "2026-10-01T12:00:00Z";
const FRESH: &str = "2026-11-20T12:00:00Z";
/// The queue's visibility timeout, as deployed.
const VISIBILITY: Duration = Duration::from_secs(360);

/// A store, its app side, a clock, and embedded queues for the cleanups' runtimes.
struct Cleanups {
    store: Store,
    app: Arc<dyn MaintenanceWriter>,
    clock: Arc<VirtualClock>,
    queue_db: Db,
}

impl Cleanups {
    async fn start(backend: Backend) -> Self {
        let sqlite = db::fresh_sqlite().await;
        let queue_db = sqlite.db().clone();
        let store = match backend {
            Backend::Sqlite => Store::Sqlite(Arc::new(sqlite)),
            Backend::Postgres => Store::Postgres(Arc::new(db::fresh_postgres().await)),
        };
        let app = store.maintenance_writer();
        Cleanups { store, app, clock: Arc::new(VirtualClock::new(utc(SLOT))), queue_db }
    }

    /// The task as the registry builds it, with these ages.
    fn task(&self, name: &str, cleanup_ages: Ages) -> Arc<dyn Task> {
        let letterhead = Letterhead { from: "jobs@example.com".into(), signer: None, preferences: None };
        let deps = tasks::Deps {
            cleanup_ages,
            ..self.store.deps(Arc::new(NullMailer::default()), Arc::new(MemoryNotifier::default()), letterhead)
        };
        tasks::build(name, &deps).unwrap()
    }

    /// cart-cleanup over `sweeper`, with ranges and batches of the given sizes.
    fn carts_task(&self, sweeper: Arc<dyn Sweeper>, range_rows: u32, batch_rows: u32) -> Arc<dyn Task> {
        let task = Cleanup::new(CART_CLEANUP, sweeper, &Ages::default()).unwrap();
        Arc::new(Cleanup { range_rows, batch_rows, ..task })
    }

    /// A worker of `task` on the task's queue, retrying after a second.
    fn runtime(&self, task: Arc<dyn Task>) -> JobRuntime {
        let name = task.name();
        JobRuntime {
            schedule: tasks::schedule(name).unwrap(),
            runs: self.store.runs(),
            ledger: self.store.ledger(),
            queue: Arc::new(EmbeddedQueue::new(self.queue_db.clone(), name, self.clock.clone(), 5)),
            clock: self.clock.clone(),
            pace: Pace::new(None),
            settings: RuntimeSettings {
                backoff: Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(1) },
                ..Default::default()
            },
            task,
        }
    }

    async fn plan(&self, runtime: &JobRuntime, slot: &str) -> PlanReport {
        self.clock.set(utc(slot) + chrono::Duration::seconds(3));
        runtime.plan(Trigger { time: utc(slot), source: TriggerSource::Scheduler, task: None }).await.unwrap()
    }

    /// Works every message until none is left to retry, moving the clock past each retry's delay; what the
    /// finished messages reported, summed.
    async fn drain(&self, runtime: &JobRuntime) -> WorkReport {
        let mut total = WorkReport::default();
        for _ in 0..10 {
            for batch in runtime.drain().await.unwrap() {
                total.merge(&batch.totals());
            }
            if runtime.queue.depth().await.unwrap() == 0 {
                return total;
            }
            self.clock.advance(chrono::Duration::minutes(1));
        }
        panic!("messages still waiting after ten minutes");
    }

    /// Works the queue's messages one at a time, in queue order; the sweep each named, and `after` called after
    /// each message.
    async fn one_by_one(&self, runtime: &JobRuntime, mut after: impl AsyncFnMut(&str)) -> Vec<String> {
        let mut sweeps = vec![];
        loop {
            let received = runtime.queue.receive(1, VISIBILITY).await.unwrap();
            let Some(message) = received.first() else { return sweeps };
            let body: JobMessage = serde_json::from_str(&message.body).unwrap();
            let sweep = body.payload["sweep"].as_str().unwrap().to_owned();
            let outcomes = runtime.work(sqs_event(&received)).await.messages;
            assert!(matches!(outcomes[0].1, MessageOutcome::Done { .. }), "{outcomes:?}");
            runtime.queue.delete(&message.receipt).await.unwrap();
            after(&sweep).await;
            sweeps.push(sweep);
        }
    }

    async fn run(&self, task: &str, day: &str) -> RunRecord {
        self.store.runs().run(task, utc(day)).await.unwrap().unwrap_or_else(|| panic!("{task} ran on {day}"))
    }

    /// Carts of `items` items each, all last updated at `at`.
    async fn carts(&self, n: usize, items: u32, at: &str) -> Vec<i64> {
        let carts = vec![NewCart { user_id: None, items, updated_at: utc(at) }; n];
        self.app.add_carts(&carts).await.unwrap()
    }

    async fn left(&self, table: Swept) -> BTreeSet<i64> {
        self.app.ids(table).await.unwrap().into_iter().collect()
    }

    /// The items left, over every cart.
    async fn items(&self) -> i64 {
        let sql = "SELECT count(*) FROM cart_items";
        match &self.store {
            Store::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.db()).await.unwrap(),
            Store::Postgres(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await.unwrap(),
        }
    }

    async fn users(&self, n: usize) -> Vec<i64> {
        let users: Vec<NewUser> = (0..n)
            .map(|i| NewUser {
                name: format!("User {i}"),
                email: format!("user{i}@example.com"),
                phone: None,
                time_zone: "Europe/London".into(),
                email_opt_in: true,
            })
            .collect();
        self.store.writer().add_users(&users).await.unwrap()
    }
}

fn set(ids: impl IntoIterator<Item = i64>) -> BTreeSet<i64> {
    ids.into_iter().collect()
}

/// Planned when all were old, then changed by the app before the delete: a cart touched, one that got an item
/// (which bumps its updated_at), one with items touched. They stay, counted as kept; nothing younger than the
/// cutoff goes, nor a cart updated exactly at it; the deleted carts' items go with them.
async fn a_cart_touched_between_plan_and_delete_survives(backend: Backend) {
    let s = Cleanups::start(backend).await;
    let empty = s.carts(6, 0, STALE).await;
    let filled = s.carts(6, 2, STALE).await;
    let fresh = [s.carts(2, 0, FRESH).await, s.carts(2, 3, FRESH).await].concat();
    let at_cutoff = s.carts(1, 1, "2026-11-01T00:00:00Z").await;
    let just_before = s.carts(1, 0, "2026-10-31T23:59:59.999999Z").await;
    let runtime = s.runtime(s.task(CART_CLEANUP, Ages::default()));
    let plan = s.plan(&runtime, SLOT).await;
    assert_eq!(plan.planned, 13, "six empty, six with items, one a microsecond before the cutoff: {plan:?}");

    let now = utc("2026-12-01T02:00:04Z");
    s.app.touch(Swept::Carts, &[empty[0], empty[1], filled[0]], now).await.unwrap();
    s.app.add_cart_item(empty[2], now).await.unwrap();
    let report = s.drain(&runtime).await;
    assert_eq!((report.sent, report.skipped.get(KEPT)), (9, Some(&4)), "{report:?}");

    let kept = set([empty[0], empty[1], empty[2], filled[0]]);
    let survivors: BTreeSet<i64> = kept.iter().copied().chain(fresh.iter().copied()).chain(at_cutoff).collect();
    assert_eq!(s.left(Swept::Carts).await, survivors);
    assert!(!s.left(Swept::Carts).await.contains(&just_before[0]));
    assert_eq!(s.items().await, 2 + 1 + 6 + 1, "the survivors' items only: filled[0], empty[2], fresh, at the cutoff");
    let run = s.run(CART_CLEANUP, DAY).await;
    assert_eq!((run.status.as_str(), run.planned, run.sent, run.skipped), ("done", 13, 9, 4), "{run:?}");
}

/// Empty carts are planned first: worked in queue order, every stale empty cart is gone before any cart with
/// items is touched, though their ids are interleaved.
async fn empty_carts_go_before_the_rest(backend: Backend) {
    let s = Cleanups::start(backend).await;
    let (mut empty, mut filled) = (vec![], vec![]);
    for _ in 0..5 {
        empty.extend(s.carts(1, 0, STALE).await);
        filled.extend(s.carts(1, 1, STALE).await);
    }
    let runtime = s.runtime(s.carts_task(s.store.sweeper(), 2, 2));
    assert_eq!(s.plan(&runtime, SLOT).await.messages, 6, "three ranges of at most two per sweep");
    let (empty_set, filled_set) = (set(empty.clone()), set(filled.clone()));
    let seen = Mutex::new(vec![]);
    let sweeps = s
        .one_by_one(&runtime, async |sweep| {
            let left = s.left(Swept::Carts).await;
            seen.lock().unwrap().push((sweep.to_owned(), left));
        })
        .await;
    assert_eq!(sweeps, ["empty-carts", "empty-carts", "empty-carts", "filled-carts", "filled-carts", "filled-carts"]);
    for (sweep, left) in seen.into_inner().unwrap() {
        if sweep == "empty-carts" {
            assert!(filled_set.is_subset(&left), "a cart with items went before the empty ones: {left:?}");
        } else {
            assert!(left.is_disjoint(&empty_set), "an empty cart left while carts with items go: {left:?}");
        }
    }
    assert!(s.left(Swept::Carts).await.is_empty());
}

/// A sweeper that counts, around each delete transaction, what it did to the table.
struct Counting {
    inner: Arc<dyn Sweeper>,
    app: Arc<dyn MaintenanceWriter>,
    /// (limit, picked, deleted as reported, carts gone from the table)
    batches: Mutex<Vec<(u32, u64, u64, u64)>>,
}

#[async_trait]
impl Sweeper for Counting {
    async fn ranges(&self, sweep: Sweep, cutoff: DateTime<Utc>, max_rows_per_range: u32) -> Result<Vec<Range>> {
        self.inner.ranges(sweep, cutoff, max_rows_per_range).await
    }

    async fn sweep_batch(&self, pick: &Pick, task: &str, run: RunPart) -> Result<Batch> {
        let before = self.app.count(Swept::Carts).await?;
        let batch = self.inner.sweep_batch(pick, task, run).await?;
        let gone = before - self.app.count(Swept::Carts).await?;
        self.batches.lock().unwrap().push((pick.limit, batch.picked, batch.deleted, gone));
        Ok(batch)
    }
}

/// With batches of three, no transaction deletes more than three carts, whatever the range holds, and the
/// store says truly what each deleted; the batches together delete every stale cart.
async fn batches_stay_within_their_bound(backend: Backend) {
    let s = Cleanups::start(backend).await;
    s.carts(10, 0, STALE).await;
    s.carts(3, 0, FRESH).await;
    s.carts(11, 2, STALE).await;
    let counting = Arc::new(Counting { inner: s.store.sweeper(), app: s.app.clone(), batches: Mutex::default() });
    let runtime = s.runtime(s.carts_task(counting.clone(), 1_000, 3));
    assert_eq!(s.plan(&runtime, SLOT).await.messages, 2, "one range per sweep");
    s.one_by_one(&runtime, async |_| {}).await;
    let batches = counting.batches.lock().unwrap().clone();
    for &(limit, picked, deleted, gone) in &batches {
        assert_eq!(limit, 3);
        assert!(picked <= 3 && deleted <= picked, "{batches:?}");
        assert_eq!(deleted, gone, "the store reports what it deleted: {batches:?}");
    }
    assert_eq!(batches.iter().map(|b| b.3).sum::<u64>(), 21);
    assert_eq!(batches.len(), 4 + 4, "10 empty in 3+3+3+1, 11 with items in 3+3+3+2: {batches:?}");
    assert_eq!(s.app.count(Swept::Carts).await.unwrap(), 3);
    assert_eq!(s.run(CART_CLEANUP, DAY).await.sent, 21);
}

/// A sweeper whose worker is killed after `batches` delete transactions: the next call says so and never
/// returns, and the test drops the invocation, as Lambda stopping the process would.
struct Killed {
    inner: Arc<dyn Sweeper>,
    batches: usize,
    calls: AtomicUsize,
    reached: tokio::sync::Notify,
}

#[async_trait]
impl Sweeper for Killed {
    async fn ranges(&self, sweep: Sweep, cutoff: DateTime<Utc>, max_rows_per_range: u32) -> Result<Vec<Range>> {
        self.inner.ranges(sweep, cutoff, max_rows_per_range).await
    }

    async fn sweep_batch(&self, pick: &Pick, task: &str, run: RunPart) -> Result<Batch> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.batches {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.sweep_batch(pick, task, run).await
    }
}

/// A sweeper whose every delete transaction takes `pause` longer: the invocation's deadline comes mid-range.
struct Slow {
    inner: Arc<dyn Sweeper>,
    pause: Duration,
}

#[async_trait]
impl Sweeper for Slow {
    async fn ranges(&self, sweep: Sweep, cutoff: DateTime<Utc>, max_rows_per_range: u32) -> Result<Vec<Range>> {
        self.inner.ranges(sweep, cutoff, max_rows_per_range).await
    }

    async fn sweep_batch(&self, pick: &Pick, task: &str, run: RunPart) -> Result<Batch> {
        tokio::time::sleep(self.pause).await;
        self.inner.sweep_batch(pick, task, run).await
    }
}

/// A worker killed after two delete transactions never reports; SQS gives the message to another after its
/// visibility timeout, which finishes the range: every stale cart deleted once, the touched ones kept, and the
/// run counts deleted = sent and kept = skipped exactly, with the killed worker's deletions in.
async fn a_killed_delete_is_finished_by_the_redelivery_with_exact_counts(backend: Backend) {
    let s = Cleanups::start(backend).await;
    let stale = s.carts(14, 0, STALE).await;
    let fresh = s.carts(2, 0, FRESH).await;
    let planner = s.runtime(s.carts_task(s.store.sweeper(), 1_000, 2));
    assert_eq!(s.plan(&planner, SLOT).await.planned, 14);
    let touched = [stale[1], stale[6], stale[12], stale[13]];
    s.app.touch(Swept::Carts, &touched, utc("2026-12-01T02:00:04Z")).await.unwrap();

    let killed = Arc::new(Killed {
        inner: s.store.sweeper(),
        batches: 2,
        calls: AtomicUsize::new(0),
        reached: tokio::sync::Notify::new(),
    });
    let doomed = s.runtime(s.carts_task(killed.clone(), 1_000, 2));
    let received = doomed.queue.receive(1, VISIBILITY).await.unwrap();
    tokio::select! {
        () = killed.reached.notified() => {}
        outcome = doomed.work(sqs_event(&received)) => panic!("the worker finished before its kill: {outcome:?}"),
    }
    assert_eq!(s.app.count(Swept::Carts).await.unwrap(), 16 - 4, "two batches of two committed before the kill");

    // Hidden for the visibility timeout, then redelivered to a live worker.
    s.clock.advance(chrono::Duration::from_std(VISIBILITY).unwrap() + chrono::Duration::seconds(1));
    s.drain(&planner).await;
    let survivors: BTreeSet<i64> = touched.into_iter().chain(fresh).collect();
    assert_eq!(s.left(Swept::Carts).await, survivors);
    let run = s.run(CART_CLEANUP, DAY).await;
    assert_eq!((run.status.as_str(), run.messages_done, run.sent, run.skipped), ("done", 1, 10, 4), "{run:?}");
}

/// A message whose invocation's deadline comes mid-range hands the rest back; its retry finishes it, and the
/// run counts each deletion once and the kept ones once, however the range was split between deliveries.
async fn a_delete_cut_short_by_the_deadline_resumes_and_counts_once(backend: Backend) {
    let s = Cleanups::start(backend).await;
    let stale = s.carts(20, 1, STALE).await;
    let planner = s.runtime(s.carts_task(s.store.sweeper(), 1_000, 2));
    assert_eq!(s.plan(&planner, SLOT).await.planned, 20);
    s.app.touch(Swept::Carts, &stale[17..], utc("2026-12-01T02:00:04Z")).await.unwrap();

    let slow = Arc::new(Slow { inner: s.store.sweeper(), pause: Duration::from_millis(200) });
    let hurried = s.runtime(s.carts_task(slow, 1_000, 2));
    let received = hurried.queue.receive(1, VISIBILITY).await.unwrap();
    // 0.7 s in which a batch may start (1 s is the margin): nine batches of 0.2 s do not fit.
    let deadline = Deadline::new(tokio::time::Instant::now() + Duration::from_millis(1_700), Duration::from_secs(1));
    let context = Context { request_id: "cut-short".into(), deadline };
    let outcomes = hurried.work_within(sqs_event(&received), &context).await.messages;
    match &outcomes[0].1 {
        MessageOutcome::Retry { reason, .. } => assert!(reason.contains("deadline"), "{reason}"),
        other => panic!("the message must come back: {other:?}"),
    }
    let first = 20 - s.app.count(Swept::Carts).await.unwrap();
    assert!(first < 17, "the deadline stopped the range part-way: {first} deleted");
    let run = s.run(CART_CLEANUP, DAY).await;
    assert_eq!((run.sent, run.skipped, run.messages_done), (first, 0, 0), "counted as deleted, kept not yet known");

    s.clock.advance(chrono::Duration::minutes(1));
    s.drain(&planner).await;
    assert_eq!(s.left(Swept::Carts).await, set(stale[17..].iter().copied()));
    let run = s.run(CART_CLEANUP, DAY).await;
    assert_eq!((run.status.as_str(), run.messages_done, run.sent, run.skipped), ("done", 1, 17, 3), "{run:?}");
}

/// A message, forged or stale, with a narrower range deletes only the stale carts in that range: not the
/// others of its sweep, not a fresh cart inside it, not a cart of the other sweep.
async fn nothing_outside_its_range_is_deleted(backend: Backend) {
    let s = Cleanups::start(backend).await;
    let mut carts = s.carts(4, 0, STALE).await;
    carts.extend(s.carts(1, 0, FRESH).await);
    carts.extend(s.carts(1, 2, STALE).await);
    carts.extend(s.carts(4, 0, STALE).await);
    let runtime = s.runtime(s.task(CART_CLEANUP, Ages::default()));
    let (lo, hi) = (carts[2], carts[6]);
    let payload = serde_json::json!({ "sweep": "empty-carts", "lo": lo, "hi": hi, "candidates": 4 });
    let message = JobMessage { task: CART_CLEANUP.into(), slot: utc(SLOT), part: 0, payload };
    runtime.queue.send_batch(&[serde_json::to_string(&message).unwrap()]).await.unwrap();
    s.drain(&runtime).await;
    // carts[2], carts[3] and carts[6]: stale, empty and in the range.
    let gone = set([carts[2], carts[3], carts[6]]);
    assert_eq!(s.left(Swept::Carts).await, set(carts.iter().copied().filter(|c| !gone.contains(c))));
}

/// Messages no plan could have sent go to the dead-letter queue at once, each with its reason, and delete
/// nothing: another task's sweep, a sweep that does not exist, lo above hi, negative numbers, a field the
/// message must not carry (a cutoff of its own), and a body that is not a range at all.
async fn a_malformed_range_goes_to_the_dead_letter_queue_with_its_reason(backend: Backend) {
    let s = Cleanups::start(backend).await;
    let carts = s.carts(5, 0, STALE).await;
    let runtime = s.runtime(s.task(CART_CLEANUP, Ages::default()));
    let (lo, hi) = (carts[0], carts[4]);
    let bad = [
        (
            serde_json::json!({ "sweep": "idle-sessions", "lo": lo, "hi": hi, "candidates": 5 }),
            "not one of this task's",
        ),
        (serde_json::json!({ "sweep": "old-carts", "lo": lo, "hi": hi, "candidates": 5 }), "not one of this task's"),
        (serde_json::json!({ "sweep": "empty-carts", "lo": hi, "hi": lo, "candidates": 5 }), "is above hi"),
        (serde_json::json!({ "sweep": "empty-carts", "lo": -1, "hi": hi, "candidates": 5 }), "negative"),
        (serde_json::json!({ "sweep": "empty-carts", "lo": lo, "hi": hi, "candidates": -5 }), "negative"),
        (
            serde_json::json!({ "sweep": "empty-carts", "lo": lo, "hi": hi, "candidates": 5, "cutoff": "2030-01-01T00:00:00Z" }),
            "unknown field `cutoff`",
        ),
        (serde_json::json!({ "subscriptions": [1, 2] }), "not a range of a sweep"),
    ];
    let bodies: Vec<String> = bad
        .iter()
        .enumerate()
        .map(|(part, (payload, _))| {
            let message =
                JobMessage { task: CART_CLEANUP.into(), slot: utc(SLOT), part: part as u64, payload: payload.clone() };
            serde_json::to_string(&message).unwrap()
        })
        .collect();
    runtime.queue.send_batch(&bodies).await.unwrap();
    s.drain(&runtime).await;
    let dead = runtime.queue.peek_dead_letters(20).await.unwrap();
    assert_eq!(dead.len(), bad.len(), "{dead:?}");
    for (payload, why) in &bad {
        let letter = dead
            .iter()
            .find(|d| serde_json::from_str::<JobMessage>(&d.body).unwrap().payload == *payload)
            .unwrap_or_else(|| panic!("{payload} was not dead-lettered"));
        assert!(letter.reason.contains(why), "{payload}: {}", letter.reason);
        assert!(letter.reason.starts_with(CART_CLEANUP), "the reason names the task: {}", letter.reason);
    }
    assert_eq!(s.app.count(Swept::Carts).await.unwrap(), 5, "nothing deleted");
}

/// Each of the other sweeps deletes exactly the rows past its age at its slot, to the microsecond, and nothing
/// of another task's tables: expired tokens and codes (before the slot), sessions idle 30 days, audit logs
/// older than 90 days (on a Sunday), temporary uploads older than 24 hours.
async fn token_session_audit_and_temp_sweeps_delete_exactly_the_expired_rows(backend: Backend) {
    let s = Cleanups::start(backend).await;
    let users = s.users(2).await;
    let day = utc(DAY);
    let micro = chrono::Duration::microseconds(1);
    let rows = |ats: [DateTime<Utc>; 4]| -> Vec<NewRow> {
        ats.iter().enumerate().map(|(i, &at)| NewRow { owner: Some(users[i % 2]), at }).collect()
    };
    // Per table: two past the cutoff (one by a microsecond), one exactly at it, one after.
    let around = |cutoff: DateTime<Utc>| [cutoff - chrono::Duration::days(3), cutoff - micro, cutoff, cutoff + micro];
    let tokens = around(day);
    let mut seeded = vec![];
    for table in [Swept::PasswordResetTokens, Swept::EmailVerificationTokens, Swept::OtpCodes] {
        seeded.push((table, s.app.add_rows(table, &rows(tokens)).await.unwrap()));
    }
    let sessions = s.app.add_rows(Swept::Sessions, &rows(around(day - chrono::Duration::days(30)))).await.unwrap();
    let uploads = s.app.add_rows(Swept::TempUploads, &rows(around(day - chrono::Duration::hours(24)))).await.unwrap();
    // audit-log-retention runs on Sundays: 29 November.
    let sunday = utc("2026-11-29T00:00:00Z");
    let logs = s.app.add_rows(Swept::AuditLogs, &rows(around(sunday - chrono::Duration::days(90)))).await.unwrap();

    for (task, slot) in [
        (TOKEN_CLEANUP, "2026-12-01T03:00:00Z"),
        (SESSION_CLEANUP, "2026-12-01T03:30:00Z"),
        (TEMP_DATA_CLEANUP, "2026-12-01T00:00:00Z"),
        (AUDIT_LOG_RETENTION, "2026-11-29T04:00:00Z"),
    ] {
        let runtime = s.runtime(s.task(task, Ages::default()));
        let plan = s.plan(&runtime, slot).await;
        let expected = if task == TOKEN_CLEANUP { 6 } else { 2 };
        assert_eq!(plan.planned, expected, "{task}: {plan:?}");
        s.drain(&runtime).await;
        let run = s.run(task, &format!("{}T00:00:00Z", &slot[..10])).await;
        assert_eq!((run.status.as_str(), run.sent, run.skipped), ("done", expected, 0), "{task}: {run:?}");
    }
    for (table, ids) in seeded.into_iter().chain([(Swept::Sessions, sessions), (Swept::TempUploads, uploads)]) {
        assert_eq!(s.left(table).await, set(ids[2..].iter().copied()), "{table:?}");
    }
    assert_eq!(s.left(Swept::AuditLogs).await, set(logs[2..].iter().copied()));
}

/// CART_MAX_AGE_DAYS=7 reaches the task through the configuration: a cart 8 days old goes, one 6 days old
/// stays; and the other ages are read the same way.
async fn the_configured_age_is_the_one_applied(backend: Backend) {
    let s = Cleanups::start(backend).await;
    let vars = [("DATABASE_URL", "sqlite://unused.db"), ("MAIL_FROM", "a@b.c"), ("CART_MAX_AGE_DAYS", "7")];
    let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
    assert_eq!(config.cleanup_ages, Ages { cart_days: 7, ..Ages::default() });
    let old = s.carts(1, 1, "2026-11-23T00:00:00Z").await;
    let young = s.carts(1, 0, "2026-11-24T12:00:00Z").await;
    let runtime = s.runtime(s.task(CART_CLEANUP, config.cleanup_ages));
    assert_eq!(s.plan(&runtime, SLOT).await.planned, 1);
    s.drain(&runtime).await;
    assert_eq!(s.left(Swept::Carts).await, set(young));
    assert!(!s.left(Swept::Carts).await.contains(&old[0]));
}

/// A day whose run was missed is recorded skipped, not planned: the next run deletes its rows with its own,
/// each once, and counts none of them as kept (planning both would have counted the missed day's rows twice).
async fn a_missed_day_is_recorded_skipped_and_the_next_run_deletes_its_rows(backend: Backend) {
    let s = Cleanups::start(backend).await;
    // Due on 29 November (cutoff 30 October), on the 30th (31 October), on 1 December (1 November).
    let on_the_29th = s.carts(3, 0, "2026-10-29T12:00:00Z").await;
    s.carts(2, 1, "2026-10-30T12:00:00Z").await;
    s.carts(4, 0, "2026-10-31T12:00:00Z").await;
    let young = s.carts(1, 0, FRESH).await;
    let runtime = s.runtime(s.task(CART_CLEANUP, Ages::default()));
    assert_eq!(s.plan(&runtime, "2026-11-29T02:00:00Z").await.planned, 3);
    s.drain(&runtime).await;
    assert!(s.left(Swept::Carts).await.is_disjoint(&set(on_the_29th)));
    // 30 November's 02:00 never fired.
    let plan = s.plan(&runtime, SLOT).await;
    assert!(plan.caught_up.is_empty(), "{plan:?}");
    assert_eq!(plan.skipped_slots.iter().map(|(slot, _)| *slot).collect::<Vec<_>>(), [utc("2026-11-30T00:00:00Z")]);
    assert_eq!(plan.planned, 6);
    let report = s.drain(&runtime).await;
    assert_eq!((report.sent, report.skipped_total()), (6, 0), "{report:?}");
    assert_eq!(s.left(Swept::Carts).await, set(young));
    assert_eq!(s.run(CART_CLEANUP, "2026-11-30T00:00:00Z").await.status, "skipped");
    let run = s.run(CART_CLEANUP, DAY).await;
    assert_eq!((run.sent, run.skipped), (6, 0), "{run:?}");
}

integration_tests::on_both_stores!(
    a_cart_touched_between_plan_and_delete_survives,
    empty_carts_go_before_the_rest,
    batches_stay_within_their_bound,
    a_killed_delete_is_finished_by_the_redelivery_with_exact_counts,
    a_delete_cut_short_by_the_deadline_resumes_and_counts_once,
    nothing_outside_its_range_is_deleted,
    a_malformed_range_goes_to_the_dead_letter_queue_with_its_reason,
    token_session_audit_and_temp_sweeps_delete_exactly_the_expired_rows,
    the_configured_age_is_the_one_applied,
    a_missed_day_is_recorded_skipped_and_the_next_run_deletes_its_rows,
);

/// A bad age is refused at start, naming the variable and what it must be, whichever of the three it is.
#[test]
fn a_bad_configured_age_is_refused_clearly() {
    for name in ["CART_MAX_AGE_DAYS", "AUDIT_LOG_RETENTION_DAYS", "SESSION_IDLE_DAYS"] {
        for bad in ["0", "-1", "ninety", "30.5", "100000"] {
            let vars = [("DATABASE_URL", "sqlite://x.db"), ("MAIL_FROM", "a@b.c"), (name, bad)];
            let err =
                Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("environment variable {name} is invalid: {bad:?} is not a whole number of days from 1 to 3650")
            );
        }
    }
}

/// On PostgreSQL the app's locks win: a cart the app holds is skipped, not waited for, and kept; a cart whose
/// item the app holds makes its batch give up within the lock timeout (the message comes back), and once the
/// app commits its change, the cart is kept too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_the_apps_locks_are_never_waited_on() {
    let s = Cleanups::start(Backend::Postgres).await;
    let Store::Postgres(pg) = &s.store else { unreachable!() };
    let empty = s.carts(3, 0, STALE).await;
    let filled = s.carts(3, 1, STALE).await;
    let runtime = s.runtime(s.task(CART_CLEANUP, Ages::default()));
    assert_eq!(s.plan(&runtime, SLOT).await.planned, 6);

    // The app is in the middle of changing one cart, and of changing an item of another.
    let mut app = pg.pool().begin().await.unwrap();
    sqlx::query("SELECT id FROM carts WHERE id = $1 FOR UPDATE").bind(empty[1]).execute(&mut *app).await.unwrap();
    sqlx::query("UPDATE cart_items SET quantity = 2 WHERE cart_id = $1")
        .bind(filled[2])
        .execute(&mut *app)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let reports = tokio::time::timeout(Duration::from_secs(10), runtime.drain()).await.expect("no wait").unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let retried: Vec<&String> = reports
        .iter()
        .flat_map(|b| &b.messages)
        .filter_map(|(_, o)| match o {
            MessageOutcome::Retry { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(retried.len(), 1, "the batch that met the held item gave up: {reports:?}");
    assert!(retried[0].contains("lock timeout"), "{}", retried[0]);
    // The app finishes its changes, bumping both carts as it does, and commits.
    let now = utc("2026-12-01T02:00:05Z");
    sqlx::query("UPDATE carts SET updated_at = $2 WHERE id = ANY($1)")
        .bind(vec![empty[1], filled[2]])
        .bind(now)
        .execute(&mut *app)
        .await
        .unwrap();
    app.commit().await.unwrap();
    s.clock.advance(chrono::Duration::minutes(1));
    s.drain(&runtime).await;
    assert_eq!(s.left(Swept::Carts).await, set([empty[1], filled[2]]));
    let run = s.run(CART_CLEANUP, DAY).await;
    assert_eq!((run.status.as_str(), run.sent, run.skipped), ("done", 4, 2), "{run:?}");
}
