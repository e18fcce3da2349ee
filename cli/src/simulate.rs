//! `jobs simulate`, and the engine of `jobs demo`: every slot of every task over a range of days on the
//! embedded backend, a virtual clock moving from slot to slot and the queues drained between them. During a
//! downtime nothing fires; at the first slot after it each task applies its catch-up policy. Ends with what
//! each task fired, missed and caught up, what it sent on each channel, how many messages went twice (which
//! must be none), and what the cleanups deleted and kept.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use anyhow::{Context, Result};
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use infra::{
    config::Config,
    embedded_queue::EmbeddedQueue,
    sqlite::SqliteStore,
    wiring::{Backend, Store},
};
use serde::Serialize;
use shared::{
    invocation::{Trigger, TriggerSource},
    memory::NullMailer,
    ports::{AppWriter, Email, Mailer, NewWorkout, Notifier, Push, Pushed, Sms},
    runtime::{JobRuntime, PlanStatus, RuntimeSettings, WorkReport},
    tasks::{self, maintenance::cleanup},
    time::{Clock, VirtualClock},
};

use crate::seed::{self, SeedSpec};

pub struct Spec {
    /// First and last simulated UTC days, both included.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Nothing fires in `[start, end)`.
    pub downtime: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Where the simulation's own database goes; it is made afresh.
    pub data_dir: PathBuf,
    pub users: usize,
}

/// What one task sent on each channel.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sent {
    pub emails: u64,
    pub sms: u64,
    pub pushes: u64,
}

impl Sent {
    /// What was sent after `before` was counted.
    fn since(self, before: Sent) -> Sent {
        Sent { emails: self.emails - before.emails, sms: self.sms - before.sms, pushes: self.pushes - before.pushes }
    }

    fn add(&mut self, other: Sent) {
        self.emails += other.emails;
        self.sms += other.sms;
        self.pushes += other.pushes;
    }
}

/// What one task did over the simulation.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct TaskTally {
    pub task: String,
    /// Slots the schedule fired and the task planned.
    pub fired: u64,
    /// Slots that fell in the downtime.
    pub missed: u64,
    /// Missed slots planned later by the catch-up policy.
    pub caught_up: u64,
    /// Missed slots recorded as skipped by the catch-up policy.
    pub skipped: u64,
    pub messages: u64,
    pub sent: Sent,
    /// Messages sent again to the same address, number or device with the same content within a day.
    pub duplicates: u64,
    pub retries: u64,
    pub dead_lettered: u64,
    /// The cleanups' rows deleted, and their candidates kept, as their runs counted them.
    pub deleted: u64,
    pub kept: u64,
}

/// Counts what one task sends, by channel, passing each message on; remembers when each recipient was last
/// sent each content (not the message) to find any sent twice. The totals are kept as messages go, since every
/// slot asks.
pub struct Counter {
    mailer: Arc<dyn Mailer>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    seen: Mutex<Seen>,
}

/// A message sent again within this long of the last with the same recipient and content is a duplicate: a
/// message retried, redelivered or caught up goes again within the drain's hold (`MAX_WAIT`). The same words a
/// day or more later are another message: an inactivity reminder for a new stretch reads like the last one.
const SAME_MESSAGE_WITHIN: Duration = Duration::days(1);

#[derive(Default)]
struct Seen {
    last: HashMap<(&'static str, String, String), DateTime<Utc>>,
    sent: Sent,
    duplicates: u64,
}

impl Counter {
    pub fn new(mailer: Arc<dyn Mailer>, notifier: Arc<dyn Notifier>, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self { mailer, notifier, clock, seen: Mutex::default() })
    }

    fn count(&self, channel: &'static str, to: &str, content: &str) {
        let now = self.clock.now();
        let mut seen = self.seen.lock().expect("counter lock");
        if let Some(last) = seen.last.insert((channel, to.to_owned(), content.to_owned()), now) {
            if now - last < SAME_MESSAGE_WITHIN {
                seen.duplicates += 1;
            }
        }
        match channel {
            "email" => seen.sent.emails += 1,
            "sms" => seen.sent.sms += 1,
            _ => seen.sent.pushes += 1,
        }
    }

    /// What went out so far, and how many messages went more than once.
    pub fn sent(&self) -> (Sent, u64) {
        let seen = self.seen.lock().expect("counter lock");
        (seen.sent, seen.duplicates)
    }
}

#[async_trait]
impl Mailer for Counter {
    async fn send(&self, email: &Email) -> shared::Result<String> {
        let id = self.mailer.send(email).await?;
        self.count("email", &email.to, &email.subject);
        Ok(id)
    }
}

#[async_trait]
impl Notifier for Counter {
    async fn sms(&self, sms: &Sms) -> shared::Result<String> {
        let id = self.notifier.sms(sms).await?;
        self.count("sms", &sms.to, &sms.text);
        Ok(id)
    }

    async fn push(&self, push: &Push) -> shared::Result<Pushed> {
        let pushed = self.notifier.push(push).await?;
        if let Pushed::Sent(_) = pushed {
            self.count("push", &push.endpoint_arn, &format!("{}\n{}", push.title, push.body));
        }
        Ok(pushed)
    }
}

/// One task as a simulation runs it: its runtime, the counter in front of its senders, and its embedded queue,
/// read for when its next message shows.
pub struct Simulated {
    pub runtime: JobRuntime,
    pub counter: Arc<Counter>,
    queue: EmbeddedQueue,
}

/// Every task's runtime over `backend` (the embedded one), each with its own counter in front of the backend's
/// senders.
pub fn runtimes(backend: &mut Backend) -> Result<Vec<Simulated>> {
    let db = embedded(backend)?.db().clone();
    let (mailer, notifier) = (backend.mailer.clone(), backend.notifier.clone());
    let mut runtimes = vec![];
    for name in tasks::NAMES {
        let counter = Counter::new(mailer.clone(), notifier.clone(), backend.clock.clone());
        (backend.mailer, backend.notifier) = (counter.clone(), counter.clone());
        let queue = EmbeddedQueue::new(db.clone(), name, backend.clock.clone(), backend.config.max_receive_count);
        runtimes.push(Simulated { runtime: backend.runtime(name, RuntimeSettings::default())?, counter, queue });
    }
    (backend.mailer, backend.notifier) = (mailer, notifier);
    Ok(runtimes)
}

/// What the app does while the jobs run: before each slot (a simulation writes the workouts that ended by then),
/// and while a slot's messages wait on the queue, between the plan and the work (the demo touches carts there,
/// as customers would while cart-cleanup runs).
#[async_trait]
pub trait Meanwhile: Send + Sync {
    async fn before_slot(&self, _slot: DateTime<Utc>) -> Result<()> {
        Ok(())
    }

    async fn after_plan(&self, _task: &str, _slot: DateTime<Utc>) -> Result<()> {
        Ok(())
    }
}

/// The app writing each workout as it ends: the seed's workouts that end after the simulation starts, written
/// before the first slot at or after their end. Without it the whole year would be there from the first day,
/// and a user who trains in December would never look inactive in March.
struct Logbook {
    writer: Arc<dyn AppWriter>,
    /// In the order they end.
    later: Mutex<std::collections::VecDeque<NewWorkout>>,
}

#[async_trait]
impl Meanwhile for Logbook {
    async fn before_slot(&self, slot: DateTime<Utc>) -> Result<()> {
        let ended: Vec<NewWorkout> = {
            let mut later = self.later.lock().expect("logbook lock");
            let n = later.iter().take_while(|w| seed::written_at(w) <= slot).count();
            later.drain(..n).collect()
        };
        if !ended.is_empty() {
            self.writer.add_workouts(&ended).await?;
        }
        Ok(())
    }
}

/// What one fired slot of one task did.
pub struct SlotDone {
    pub task: usize,
    pub time: DateTime<Utc>,
    pub new: bool,
    pub planned: u64,
    pub report: WorkReport,
    pub sent: Sent,
    pub errors: Vec<String>,
}

/// Fires every slot of every task in `[start, end)` in time order, as Scheduler would a few seconds late, and
/// drains each task's queue after its slot; `done` hears of each fired slot. Returns each task's tally.
pub async fn drive(
    runtimes: &[Simulated],
    clock: &VirtualClock,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    downtime: Option<(DateTime<Utc>, DateTime<Utc>)>,
    meanwhile: Option<&dyn Meanwhile>,
    mut done: impl FnMut(u64, u64, Option<SlotDone>),
) -> Result<Vec<TaskTally>> {
    let mut slots: Vec<(DateTime<Utc>, usize)> = vec![];
    for (i, Simulated { runtime, .. }) in runtimes.iter().enumerate() {
        if let Some(schedule) = &runtime.schedule {
            let fires = schedule.fires_between(start - Duration::seconds(1), end - Duration::seconds(1));
            slots.extend(fires.map(|t| (t, i)));
        }
    }
    // Tasks started by events work what the others published, after each slot.
    let event_driven: Vec<usize> = (0..runtimes.len()).filter(|i| runtimes[*i].runtime.schedule.is_none()).collect();
    slots.sort();
    let mut tallies: Vec<TaskTally> =
        runtimes.iter().map(|t| TaskTally { task: t.runtime.task.name().to_string(), ..Default::default() }).collect();
    let total = slots.len() as u64;
    for (n, (time, i)) in slots.into_iter().enumerate() {
        if let Some(meanwhile) = meanwhile {
            meanwhile.before_slot(time).await?;
        }
        let tally = &mut tallies[i];
        if downtime.is_some_and(|(from, to)| from <= time && time < to) {
            tally.missed += 1;
            done(n as u64 + 1, total, None);
            continue;
        }
        let Simulated { runtime, counter, .. } = &runtimes[i];
        let before = counter.sent().0;
        // Scheduler fires within the minute; a few seconds late is typical.
        clock.set(time + Duration::seconds(3));
        let plan = runtime.plan(Trigger { time, source: TriggerSource::Scheduler, task: None }).await?;
        tally.fired += 1;
        tally.caught_up += plan.caught_up.len() as u64;
        tally.skipped += plan.skipped_slots.len() as u64;
        let queued = plan.messages + plan.caught_up.iter().map(|r| r.messages).sum::<u64>();
        tally.messages += queued;
        if let Some(meanwhile) = meanwhile {
            meanwhile.after_plan(runtime.task.name(), time).await?;
        }
        // Each drain empties the task's queue: a plan that queued nothing leaves nothing to work.
        let report = if queued == 0 { WorkReport::default() } else { drain(&runtimes[i], clock, tally).await? };
        if cleanup::NAMES.contains(&runtime.task.name()) {
            // Rows deleted by attempts that were retried are in the run, not in the finished messages' reports.
            for planned in plan.caught_up.iter().chain([&plan]).filter(|p| p.status != PlanStatus::AlreadyPlanned) {
                if let Some(run) = runtime.runs.run(runtime.task.name(), planned.slot).await? {
                    (tally.deleted, tally.kept) = (tally.deleted + run.sent, tally.kept + run.skipped);
                }
            }
        }
        // Events are published by work: the events' queues, empty since the last slot, stay so when none was done.
        for &j in event_driven.iter().filter(|_| queued > 0) {
            let Simulated { runtime, counter, .. } = &runtimes[j];
            let waiting = runtime.queue.depth().await?;
            if waiting == 0 {
                continue;
            }
            let before = counter.sent().0;
            let report = drain(&runtimes[j], clock, &mut tallies[j]).await?;
            let sent = counter.sent().0.since(before);
            tallies[j].messages += waiting;
            let worked = SlotDone { task: j, time, new: true, planned: waiting, report, sent, errors: vec![] };
            done(n as u64 + 1, total, Some(worked));
        }
        let sent = counter.sent().0.since(before);
        let new = !matches!(plan.status, PlanStatus::AlreadyPlanned);
        let slot = SlotDone { task: i, time, new, planned: plan.planned, report, sent, errors: plan.errors };
        done(n as u64 + 1, total, Some(slot));
    }
    for (tally, Simulated { counter, .. }) in tallies.iter_mut().zip(runtimes) {
        (tally.sent, tally.duplicates) = counter.sent();
    }
    Ok(tallies)
}

/// How much virtual time a drain lets pass for messages waiting out a retry delay or a night's hold.
const RETRY_WAIT: Duration = Duration::minutes(1);
const MAX_WAIT: Duration = Duration::hours(12);

/// Works the task's queue until it is empty, letting virtual time pass for messages waiting to be retried or
/// held to the morning; the clock comes back to where it was, as the next slot is earlier than a held message.
/// Time passes in steps of `RETRY_WAIT`, straight to the first step at which a message shows: a receive at the
/// steps before it would find nothing (and an empty queue is not received from at all).
async fn drain(task: &Simulated, clock: &VirtualClock, tally: &mut TaskTally) -> Result<WorkReport> {
    let runtime = &task.runtime;
    let mut total = WorkReport::default();
    let mut waited = Duration::zero();
    loop {
        let Some(next) = task.queue.next_visible().await? else {
            clock.advance(-waited);
            return Ok(total);
        };
        let gap = next - clock.now();
        if gap > Duration::zero() {
            anyhow::ensure!(waited < MAX_WAIT, "{}: messages still waiting after {MAX_WAIT}", runtime.task.name());
            let step = RETRY_WAIT.num_seconds();
            let steps = ((gap.num_seconds() + step - 1) / step).max(1);
            let steps = steps.min((MAX_WAIT - waited).num_seconds() / step);
            clock.advance(RETRY_WAIT * steps as i32);
            waited += RETRY_WAIT * steps as i32;
            continue;
        }
        for batch in runtime.drain().await? {
            let (retried, dead) = batch.retried_and_dead_lettered();
            tally.retries += retried;
            tally.dead_lettered += dead;
            total.merge(&batch.totals());
        }
    }
}

pub async fn run(spec: &Spec, on_slot: impl Fn(u64, u64)) -> Result<Vec<TaskTally>> {
    std::fs::create_dir_all(&spec.data_dir).with_context(|| format!("creating {}", spec.data_dir.display()))?;
    let db = spec.data_dir.join("simulate.db");
    for stale in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{stale}", db.display()));
    }
    // The embedded payment gateway keeps its charges beside the outbox: a run must not find the last run's.
    let outbox = spec.data_dir.join("outbox");
    if outbox.exists() {
        std::fs::remove_dir_all(&outbox).with_context(|| format!("emptying {}", outbox.display()))?;
    }
    let start = spec.from.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let end = (spec.to + Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let clock = Arc::new(VirtualClock::new(start));
    let config = Config::embedded(&db, outbox);
    let mut backend = Backend::connect(config, clock.clone()).await?;
    // The database is the run's alone, deleted by the next: nothing it writes has to wait on the disk.
    embedded(&backend)?.unsynced().await?;
    backend.store.migrate().await?;
    let days = (spec.to - spec.from).num_days() as u32 + 2;
    let seed = SeedSpec {
        users: spec.users,
        last_day: spec.to,
        days,
        with_unknown_zone: true,
        seed: 42,
        written_before: Some(start),
    };
    let writer = backend.store.writer();
    let seeded = seed::seed(writer.as_ref(), backend.store.contacts().as_ref(), &seed).await?;
    seed::seed_shop(backend.store.shop_writer().as_ref(), &seeded.user_ids, spec.from, days, 42).await?;
    seed::seed_maintenance(backend.store.maintenance_writer().as_ref(), &seeded.user_ids, spec.from, spec.to, 42)
        .await?;
    analyzed(&backend).await?;
    // Nothing is written: the counters count, a null mailer and a memory notifier take the messages.
    backend.mailer = Arc::new(NullMailer::default());
    backend.notifier = Arc::new(shared::memory::MemoryNotifier::default());
    let runtimes = runtimes(&mut backend)?;
    let logbook = Logbook { writer, later: Mutex::new(seeded.later.into()) };
    drive(&runtimes, &clock, (start, end), spec.downtime, Some(&logbook), |n, total, _| on_slot(n, total)).await
}

/// The embedded store's statistics after the seed: a simulation and the demo bulk-load a fresh database.
pub async fn analyzed(backend: &Backend) -> Result<()> {
    Ok(embedded(backend)?.analyze().await?)
}

/// The backend's SQLite store: what a simulation runs on.
fn embedded(backend: &Backend) -> Result<&SqliteStore> {
    let Store::Sqlite(store) = &backend.store else { anyhow::bail!("a simulation runs on the embedded backend") };
    Ok(store)
}

pub fn print(tallies: &[TaskTally]) {
    println!(
        "{:<24} {:>6} {:>6} {:>9} {:>7} {:>8} {:>7} {:>6} {:>6} {:>7} {:>13} {:>10} {:>8} {:>5}",
        "task",
        "fired",
        "missed",
        "caught up",
        "skipped",
        "messages",
        "emails",
        "sms",
        "pushes",
        "retries",
        "dead-lettered",
        "duplicates",
        "deleted",
        "kept"
    );
    for t in tallies {
        println!(
            "{:<24} {:>6} {:>6} {:>9} {:>7} {:>8} {:>7} {:>6} {:>6} {:>7} {:>13} {:>10} {:>8} {:>5}",
            t.task,
            t.fired,
            t.missed,
            t.caught_up,
            t.skipped,
            t.messages,
            t.sent.emails,
            t.sent.sms,
            t.sent.pushes,
            t.retries,
            t.dead_lettered,
            t.duplicates,
            t.deleted,
            t.kept
        );
    }
}

/// Sums sends by (task, UTC day): the demo's table.
pub fn by_day(slots: &[SlotDone]) -> BTreeMap<(usize, NaiveDate), (u64, Sent, WorkReport)> {
    let mut days: BTreeMap<(usize, NaiveDate), (u64, Sent, WorkReport)> = BTreeMap::new();
    for slot in slots {
        let day = days.entry((slot.task, slot.time.date_naive())).or_default();
        day.0 += slot.planned;
        day.1.add(slot.sent);
        day.2.merge(&slot.report);
    }
    days
}
