//! The job runtime: one entry point per task function. A scheduled invocation plans a slot (lease, `job_runs`
//! dedup, fan-out to the task's queue); an SQS batch works its messages and answers with the exact ids to
//! retry. Locally, `drain` plays the part of Lambda's SQS event source over any `Queue`.

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::{collections::BTreeMap, sync::Arc, time::Duration};

use crate::{
    backoff::Backoff,
    deliveries::{Deliveries, DeliveryTally},
    invocation::{recognise, Invocation, Trigger, TriggerSource},
    limits::{Breaker, Deadline, Pace},
    metrics,
    ports::{
        Ledger, PlanHistory, Queue, Received, Request, RequestOutcome, RequestStart, RunPart, RunStart, RunStore,
        SkippedSlot, WorkTally, MAX_QUEUE_BATCH,
    },
    schedule::Schedule,
    time::{Clock, Slot},
    Error, Result,
};

/// The body of every message a planner sends to its task's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    pub task: String,
    pub slot: DateTime<Utc>,
    /// The message's number within its run (0, 1, …): a redelivered or re-planned copy of a message has the
    /// same, so the run counts it once.
    pub part: u64,
    pub payload: Value,
}

/// A scheduled job: what to plan for a slot, and what to do with one planned message.
#[async_trait]
pub trait Task: Send + Sync {
    /// Kebab-case; equal to the function crate, its binary and its queue's name.
    fn name(&self) -> &'static str;
    /// Slots are truncated to this: the period of the task's schedule, at most.
    fn granularity(&self) -> chrono::Duration;
    /// What to do with the slots its schedule fired while nothing ran.
    fn catch_up(&self) -> CatchUp;
    /// What a plan does when another planner of the task holds the lease.
    fn overlap(&self) -> Overlap;
    /// Selects the subjects due in `slot` and pushes them in chunks to `fanout`.
    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()>;
    /// Performs one planned chunk. A `Permanent` error means the payload itself is bad.
    async fn work(&self, slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport>;
    /// For a task sent at a local time in each user's zone, that time and its cadence: what `jobs preview`
    /// needs to know which period a user's message is about at a given moment.
    fn local_time(&self) -> Option<(chrono::NaiveTime, crate::tasks::local_time::Cadence)> {
        None
    }
    /// For a task started by events rather than a clock, the EventBridge `source` its queue receives: each such
    /// event is worked as a message of the run of its hour (its payload the whole event), and nothing is planned.
    fn event_source(&self) -> Option<&'static str> {
        None
    }
    /// For an on-demand task (a user asked for it and waits for its answer), the request a message is, or why
    /// it names none. The runtime keeps each request's state in `job_requests` (queued, running, succeeded,
    /// failed), runs a request once at a time, never again once finished, and fails it on its last receive.
    fn request(&self, _payload: &Value) -> Option<Result<Request>> {
        None
    }
}

/// An EventBridge event as a rule delivers it to an SQS queue: what an event-driven task's messages are.
#[derive(Debug, Clone, Deserialize)]
struct BusEvent {
    id: String,
    source: String,
    time: DateTime<Utc>,
    #[serde(rename = "detail-type")]
    detail_type: String,
}

/// A stable message number for an event from its id (FNV-1a), so a redelivered event counts once in its run.
fn event_part(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)) >> 1
}

/// What a task does, at its next plan, with the slots its schedule fired while nothing ran (downtime, a broken
/// deploy, Scheduler's retries exhausted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatchUp {
    /// Plans every missed slot, oldest first: each slot's subjects are different people.
    All,
    /// Plans the newest missed slot and records the others as skipped: only the latest state matters.
    Latest,
    /// Records every missed slot as skipped.
    None,
}

impl CatchUp {
    /// Splits the missed slots (oldest first) into those to plan now and those to record as skipped, with why.
    pub fn split(self, missed: Vec<Slot>) -> (Vec<Slot>, Vec<(Slot, String)>) {
        let skip = |slots: Vec<Slot>, why: &str| slots.into_iter().map(|s| (s, why.to_owned())).collect();
        match self {
            Self::All => (missed, vec![]),
            Self::Latest => {
                let mut older = missed;
                let latest = older.pop();
                (latest.into_iter().collect(), skip(older, "missed; catch-up policy latest: a newer slot ran instead"))
            }
            Self::None => (vec![], skip(missed, "missed; catch-up policy none")),
        }
    }
}

/// What a plan does when another planner of its task holds the lease. Either way, a plan that cannot take the
/// lease records nothing (the holder may be planning that very slot) and fails as retryable, so the
/// invocation's retries (Lambda's for an asynchronous invocation) try again; if none gets through, the next
/// plan's catch-up accounts for the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Waits up to this long for the lease, then fails.
    Wait(Duration),
    /// Fails at once.
    Skip,
}

/// The longest SQS hides a message (ChangeMessageVisibility's limit).
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// What working one message did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkReport {
    /// Side effects performed now.
    pub sent: u64,
    /// Side effects that failed for good now.
    pub failed: u64,
    /// Subjects passed over for the task's reasons ("no activity", "opted out"…).
    pub skipped: BTreeMap<String, u64>,
    /// Subjects whose side effect was performed, or failed for good, by an earlier delivery: nothing to do.
    pub already_done: u64,
    pub errors: Vec<String>,
    /// Set when the message must come back: something retryable failed, or another worker holds a subject.
    pub retry: Option<String>,
    /// With `retry`: the earliest the message may come back, when the provider said (Retry-After). It comes
    /// back at the later of this and the runtime's backoff, so a provider's short waits do not spend its
    /// receives in seconds.
    pub retry_at: Option<DateTime<Utc>>,
    /// Set when subjects are held back (no push or SMS in the night of their zone): the message comes back
    /// at this instant for them, and the subjects already served are skipped then by their delivery keys.
    pub held_until: Option<DateTime<Utc>>,
    /// What an on-demand request produced, for the user who asked: kept in `job_requests`.
    pub result: Option<Value>,
}

impl WorkReport {
    pub fn skip(&mut self, reason: &str, count: u64) {
        if count > 0 {
            *self.skipped.entry(reason.to_owned()).or_default() += count;
        }
    }

    /// Holds a subject until `until`: the message comes back at the earliest instant any subject waits for.
    pub fn hold(&mut self, until: DateTime<Utc>) {
        self.held_until = Some(self.held_until.map_or(until, |held| held.min(until)));
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn add(&mut self, deliveries: DeliveryTally) {
        self.sent += deliveries.sent;
        self.failed += deliveries.failed;
        self.already_done += deliveries.already_done + deliveries.failed_before;
        self.errors.extend(deliveries.errors);
        if deliveries.retry.is_some() {
            self.retry = deliveries.retry;
        }
    }

    pub fn merge(&mut self, other: &WorkReport) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.already_done += other.already_done;
        for (reason, n) in &other.skipped {
            self.skip(reason, *n);
        }
        self.errors.extend(other.errors.iter().cloned());
    }
}

/// Buffers a planner's chunks and sends them `MAX_QUEUE_BATCH` to a SendMessageBatch call.
pub struct Fanout<'a> {
    queue: &'a dyn Queue,
    task: &'static str,
    slot: Slot,
    buffer: Vec<String>,
    messages: u64,
    subjects: u64,
    errors: Vec<String>,
}

impl Fanout<'_> {
    /// Queues one chunk of `subjects` subjects.
    pub async fn push(&mut self, payload: Value, subjects: u64) -> Result<()> {
        let part = self.messages + self.buffer.len() as u64;
        let message = JobMessage { task: self.task.to_owned(), slot: self.slot.time(), part, payload };
        self.buffer.push(serde_json::to_string(&message).expect("a JSON value serialises"));
        self.subjects += subjects;
        if self.buffer.len() == MAX_QUEUE_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Notes something wrong the plan passed over (a user with an unknown time zone…): it goes into the run.
    pub fn error(&mut self, error: String) {
        tracing::warn!(task = self.task, slot = %self.slot, %error, "planning passed over");
        self.errors.push(error);
    }

    /// Sends what is buffered.
    pub async fn flush(&mut self) -> Result<()> {
        if !self.buffer.is_empty() {
            self.queue.send_batch(&self.buffer).await?;
            self.messages += self.buffer.len() as u64;
            self.buffer.clear();
        }
        Ok(())
    }
}

/// How a plan invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Planned,
    /// Planned again after an earlier planner of the same slot died part-way.
    Resumed,
    /// The slot had been planned before: nothing new was sent.
    AlreadyPlanned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanReport {
    pub task: &'static str,
    pub slot: DateTime<Utc>,
    pub status: PlanStatus,
    pub planned: u64,
    pub messages: u64,
    pub errors: Vec<String>,
    /// Earlier slots planned before this one, oldest first: plans a dead planner left unfinished (resumed), then
    /// missed slots (catch-up).
    pub caught_up: Vec<PlanReport>,
    /// Missed slots recorded as skipped, with why.
    pub skipped_slots: Vec<(DateTime<Utc>, String)>,
}

/// What happened to one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MessageOutcome {
    Done {
        report: WorkReport,
    },
    /// Reported in batchItemFailures, hidden for `delay_ms` first.
    Retry {
        reason: String,
        delay_ms: u64,
    },
    /// Moved to the dead-letter queue at once: it could never succeed.
    DeadLettered {
        reason: String,
    },
    /// An on-demand request that failed for good on its merits (a bad photo): the request says why to the user
    /// who made it, and the message is deleted, since no operator has anything to redrive.
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// Message id → outcome, in batch order.
    pub messages: Vec<(String, MessageOutcome)>,
    /// Set when the sender or the account was refused: every send of the batch stopped there.
    pub sender_refused: Option<String>,
}

impl BatchReport {
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for (id, outcome) in &self.messages {
            if matches!(outcome, MessageOutcome::Retry { .. }) {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// The sum of the finished messages' reports.
    pub fn totals(&self) -> WorkReport {
        let mut total = WorkReport::default();
        for (_, outcome) in &self.messages {
            if let MessageOutcome::Done { report } = outcome {
                total.merge(report);
            }
        }
        total
    }

    /// How many messages will come back, and how many went to the dead-letter queue.
    pub fn retried_and_dead_lettered(&self) -> (u64, u64) {
        self.messages.iter().fold((0, 0), |(retried, dead), (_, outcome)| match outcome {
            MessageOutcome::Retry { .. } => (retried + 1, dead),
            MessageOutcome::DeadLettered { .. } => (retried, dead + 1),
            MessageOutcome::Done { .. } | MessageOutcome::Failed { .. } => (retried, dead),
        })
    }

    /// The on-demand requests that failed for good on their merits (their requesters are told why).
    pub fn requests_failed(&self) -> u64 {
        self.messages.iter().filter(|(_, outcome)| matches!(outcome, MessageOutcome::Failed { .. })).count() as u64
    }
}

/// How far back a plan looks for missed slots by default.
pub const CATCH_UP_HORIZON: chrono::Duration = chrono::Duration::days(2);

#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Identifies this process in leases: random per process (Lambda environments share pids), joined with the
    /// request id of each invocation.
    pub holder: String,
    /// A local invocation's time budget (the demo, `jobs run`, `drain`): the function's timeout in template.yaml.
    pub timeout: Duration,
    /// Nothing starts closer than this to the invocation's deadline: the longest a send may take (the SDK's
    /// operation timeout) plus its settlement.
    pub deadline_margin: Duration,
    /// How long claims and leases outlive their invocation's deadline: a live worker's claim never expires
    /// under it, and a dead one's frees soon after.
    pub hold_slack: Duration,
    pub send_concurrency: usize,
    pub backoff: Backoff,
    /// The visibility timeout `drain` receives with.
    pub visibility: Duration,
    /// The queue's maxReceiveCount: an on-demand request's attempt on this receive is its last, and fails it.
    pub max_receive_count: u32,
    /// How far back a plan looks for missed slots; older ones are recorded as skipped, not caught up. Never
    /// more than `CATCH_UP_HORIZON` in production: job-history retention counts on it.
    pub catch_up_horizon: chrono::Duration,
    /// How often a plan waiting for its task's lease tries again.
    pub lease_poll: Duration,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            holder: format!("{:016x}", rand::random::<u64>()),
            timeout: Duration::from_secs(60),
            deadline_margin: Duration::from_secs(15),
            hold_slack: Duration::from_secs(30),
            send_concurrency: 16,
            backoff: Backoff::default(),
            visibility: Duration::from_secs(6 * 60),
            max_receive_count: 5,
            catch_up_horizon: CATCH_UP_HORIZON,
            lease_poll: Duration::from_millis(500),
        }
    }
}

impl RuntimeSettings {
    /// The longest a claim or lease taken at any moment of an invocation of `timeout` holds.
    fn longest_hold(&self, timeout: Duration) -> Duration {
        timeout + self.hold_slack
    }

    /// Checks the deployed queue against these settings, so that a dead worker's keys are always claimable
    /// again before its message can reach the dead-letter queue: the message reappears only after its claims
    /// expired, and a message that finds keys held retries for longer than any claim holds.
    pub fn check_queue(&self, timeout: Duration, visibility: Duration, max_receive_count: u32) -> Result<(), String> {
        let hold = self.longest_hold(timeout);
        if visibility < hold {
            return Err(format!(
                "the queue's visibility timeout ({} s) is shorter than a claim's longest hold ({} s)",
                visibility.as_secs(),
                hold.as_secs()
            ));
        }
        let retrying: Duration = (1..max_receive_count).map(|n| self.backoff.ceiling(n) / 2).sum();
        if retrying < hold {
            return Err(format!(
                "{max_receive_count} receives retry for at least {} s, less than a claim's longest hold ({} s)",
                retrying.as_secs(),
                hold.as_secs()
            ));
        }
        Ok(())
    }

    /// The budget of a local invocation.
    pub fn local_context(&self) -> Context {
        Context {
            request_id: format!("local-{:08x}", rand::random::<u32>()),
            deadline: Deadline::after(self.timeout, self.deadline_margin),
        }
    }
}

/// One invocation: its request id and when it will be stopped.
#[derive(Debug, Clone)]
pub struct Context {
    pub request_id: String,
    pub deadline: Deadline,
}

pub struct JobRuntime {
    pub task: Arc<dyn Task>,
    /// The task's schedule in template.yaml: what catch-up compares `job_runs` with. None for a task started
    /// by events.
    pub schedule: Option<Schedule>,
    pub runs: Arc<dyn RunStore>,
    pub ledger: Arc<dyn Ledger>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// The provider's send rate, shared by every message this process works at once.
    pub pace: Pace,
    pub settings: RuntimeSettings,
}

/// What `handle` did, in the shape Lambda answers with.
#[derive(Debug)]
pub enum Handled {
    Plan(PlanReport),
    Batch(BatchReport),
}

impl Handled {
    /// The function's answer: the plan report, or the `SqsBatchResponse` Lambda reads partial failures from.
    pub fn into_response(self) -> Value {
        match self {
            Self::Plan(report) => serde_json::to_value(report),
            Self::Batch(report) => serde_json::to_value(report.response()),
        }
        .expect("reports serialise")
    }
}

impl JobRuntime {
    /// The function's one entry point: recognises the event and plans or works. A batch in which the sender
    /// or the account was refused fails whole, as retryable: the function's error is what raises the alarm,
    /// and every message comes back once the sender is fixed (the ledger keeps what was sent from repeating).
    /// Each plan and batch writes its metrics (`metrics`).
    pub async fn handle(&self, event: Value, context: &Context) -> Result<Handled> {
        let started = std::time::Instant::now();
        let emit = |lines: Vec<String>| lines.iter().for_each(|line| println!("{line}"));
        match recognise(event)? {
            Invocation::Scheduled(trigger) => {
                let report = self.plan_within(trigger, context).await?;
                emit(metrics::plan(&report, started.elapsed(), self.clock.now().timestamp_millis()));
                Ok(Handled::Plan(report))
            }
            Invocation::Batch(batch) => {
                let report = self.work_within(batch, context).await;
                emit(metrics::batch(self.task.name(), &report, started.elapsed(), self.clock.now().timestamp_millis()));
                match &report.sender_refused {
                    Some(reason) => Err(Error::sender(format!("sends stopped: the sender was refused: {reason}"))),
                    None => Ok(Handled::Batch(report)),
                }
            }
        }
    }

    /// How long a lease or claim taken now holds: past the invocation's deadline, so it frees only once its
    /// holder is surely stopped.
    fn hold(&self, context: &Context) -> Duration {
        context.deadline.remaining() + self.settings.hold_slack
    }

    /// Plans a slot with a local invocation's budget.
    pub async fn plan(&self, trigger: Trigger) -> Result<PlanReport> {
        self.plan_within(trigger, &self.settings.local_context()).await
    }

    /// Plans the slot a trigger names, once per `(task, slot)`, under the task's planner lease. It first
    /// resumes the plans a dead planner left unfinished; a scheduled trigger then applies the task's catch-up
    /// policy to the slots missed since the last finished plan.
    pub async fn plan_within(&self, trigger: Trigger, context: &Context) -> Result<PlanReport> {
        let task = self.task.name();
        if let Some(named) = trigger.task.as_deref().filter(|named| *named != task) {
            return Err(Error::permanent(format!("unknown task {named:?}: this function runs {task:?}")));
        }
        if let Some(source) = self.task.event_source() {
            return Err(Error::permanent(format!("{task} is started by {source} events, not planned by a schedule")));
        }
        let slot = Slot::new(trigger.time, self.task.granularity());
        let lease = format!("plan:{task}");
        let holder = format!("{}/{}", self.settings.holder, context.request_id);
        if let Some(reason) = self.take_lease(&lease, &holder, self.hold(context)).await? {
            tracing::warn!(task, %slot, %reason, "not planning now: a retry of this invocation or the next plan will");
            return Err(Error::retryable(reason));
        }
        let planned = self.plan_with_catch_up(slot, trigger.source).await;
        if let Err(e) = self.runs.release_lease(&lease, &holder).await {
            tracing::warn!(task, %slot, error = %e, "could not release the planner lease; it expires by itself");
        }
        planned
    }

    /// Takes the task's lease per its overlap policy; `Some(reason)` when it could not.
    async fn take_lease(&self, lease: &str, holder: &str, ttl: Duration) -> Result<Option<String>> {
        let wait = match self.task.overlap() {
            Overlap::Wait(wait) => wait,
            Overlap::Skip => Duration::ZERO,
        };
        let started = std::time::Instant::now();
        loop {
            if self.runs.acquire_lease(lease, holder, self.clock.now(), ttl).await? {
                return Ok(None);
            }
            if started.elapsed() >= wait {
                let waited = if wait.is_zero() { String::new() } else { format!(" for {} s", wait.as_secs()) };
                return Ok(Some(format!("overlap: another planner of {} held its lease{waited}", self.task.name())));
            }
            tokio::time::sleep(self.settings.lease_poll).await;
        }
    }

    async fn plan_with_catch_up(&self, slot: Slot, source: TriggerSource) -> Result<PlanReport> {
        let task = self.task.name();
        let (mut caught_up, mut skipped_slots) = (vec![], vec![]);
        // Under the lease no other planner runs: a run still `planning` is one whose planner died.
        let PlanHistory { unfinished, mut latest } = self.runs.plan_history(task).await?;
        for unfinished in unfinished {
            let unfinished = Slot::new(unfinished, self.task.granularity());
            if unfinished != slot {
                tracing::warn!(task, slot = %unfinished, "resuming a plan whose planner died");
                caught_up.push(self.plan_leased(unfinished, source).await?);
                // Its planning has finished now: catch-up starts after it if it is the newest.
                latest = latest.max(Some(unfinished.time()));
            }
        }
        // A manual trigger or backfill names its slot on purpose: it catches nothing up.
        if source != TriggerSource::Manual {
            let (missed, too_old) = self.missed_slots(slot, latest);
            let (to_plan, to_skip) = self.task.catch_up().split(missed);
            let too_old = too_old.into_iter().map(|s| (s, "missed; older than the catch-up horizon".to_owned()));
            let skipped: Vec<SkippedSlot> =
                too_old.chain(to_skip).map(|(missed, reason)| SkippedSlot { slot: missed.time(), reason }).collect();
            if !skipped.is_empty() {
                let recorded = self.runs.record_skipped(task, &skipped, self.clock.now()).await?;
                tracing::warn!(task, missed = skipped.len(), recorded, "missed slots recorded as skipped");
            }
            skipped_slots = skipped.into_iter().map(|s| (s.slot, s.reason)).collect();
            for missed in to_plan {
                tracing::warn!(task, slot = %missed, "catching up a missed slot");
                caught_up.push(self.plan_leased(missed, source).await?);
            }
        }
        let report = self.plan_leased(slot, source).await?;
        Ok(PlanReport { caught_up, skipped_slots, ..report })
    }

    /// The slots the schedule fired after the task's latest finished plan and before `slot`: those within the
    /// catch-up horizon, and those before it. The task's first run ever has missed nothing.
    fn missed_slots(&self, slot: Slot, latest: Option<DateTime<Utc>>) -> (Vec<Slot>, Vec<Slot>) {
        let (Some(schedule), Some(latest)) = (&self.schedule, latest) else { return (vec![], vec![]) };
        let horizon = slot.time() - self.settings.catch_up_horizon;
        let mut missed: Vec<Slot> = schedule
            .fires_between(latest, slot.time())
            .map(|t| Slot::new(t, self.task.granularity()))
            .filter(|s| s.time() > latest && *s < slot)
            .collect();
        missed.dedup();
        let recent = missed.split_off(missed.partition_point(|s| s.time() < horizon));
        (recent, missed)
    }

    fn report(&self, slot: Slot, status: PlanStatus) -> PlanReport {
        PlanReport {
            task: self.task.name(),
            slot: slot.time(),
            status,
            planned: 0,
            messages: 0,
            errors: vec![],
            caught_up: vec![],
            skipped_slots: vec![],
        }
    }

    async fn plan_leased(&self, slot: Slot, source: TriggerSource) -> Result<PlanReport> {
        let task = self.task.name();
        // A person may plan a slot that was skipped (backfill), never one that was planned.
        let replan_skipped = source == TriggerSource::Manual;
        if let Some(reason) = self.before_history_floor(slot.time()).await? {
            return Err(Error::permanent(format!("{task} cannot plan {slot}: {reason}")));
        }
        let status = match self.runs.begin_run(task, slot.time(), self.clock.now(), replan_skipped).await? {
            RunStart::AlreadyPlanned(run) => {
                tracing::info!(task, %slot, ?source, status = %run.status, "slot planned before; planning nothing new");
                return Ok(self.report(slot, PlanStatus::AlreadyPlanned));
            }
            RunStart::Resumed => {
                tracing::warn!(task, %slot, "an earlier plan of this slot did not finish; planning it again");
                PlanStatus::Resumed
            }
            RunStart::Started => PlanStatus::Planned,
        };
        let mut fanout = Fanout {
            queue: self.queue.as_ref(),
            task,
            slot,
            buffer: Vec::with_capacity(MAX_QUEUE_BATCH),
            messages: 0,
            subjects: 0,
            errors: vec![],
        };
        self.task.plan(slot, &mut fanout).await?;
        fanout.flush().await?;
        let Fanout { messages, subjects, errors, .. } = fanout;
        self.runs.finish_plan(task, slot.time(), subjects, messages, &errors, self.clock.now()).await?;
        tracing::info!(task, %slot, ?source, planned = subjects, messages, errors = errors.len(), "planned");
        Ok(PlanReport { planned: subjects, messages, errors, ..self.report(slot, status) })
    }

    /// Works a batch with a local invocation's budget.
    pub async fn work(&self, batch: SqsEvent) -> BatchReport {
        self.work_within(batch, &self.settings.local_context()).await
    }

    /// Works a batch: each message succeeds, is retried with backoff, or is dead-lettered with its reason.
    /// The messages of a batch are independent (each claims its own subjects), so they are worked
    /// concurrently, paced together; the report keeps the batch's order.
    pub async fn work_within(&self, batch: SqsEvent, context: &Context) -> BatchReport {
        let breaker = Breaker::default();
        let messages =
            futures::future::join_all(batch.records.iter().map(|record| self.work_record(record, context, &breaker)))
                .await;
        let sender_refused = breaker.tripped().map(str::to_owned);
        if let Some(reason) = &sender_refused {
            tracing::error!(task = self.task.name(), %reason, "the sender was refused: sends stopped until it is fixed");
            let refused = [("SenderRefused", 1, "Count")];
            println!("{}", metrics::line(self.task.name(), &[], &refused, self.clock.now().timestamp_millis()));
        }
        BatchReport { messages, sender_refused }
    }

    async fn work_record(&self, record: &SqsMessage, context: &Context, breaker: &Breaker) -> (String, MessageOutcome) {
        let id = record.message_id.clone().unwrap_or_default();
        let outcome = match self.work_one(record, context, breaker).await {
            Ok(outcome) => outcome,
            Err(e) => self.retry(record, e.to_string(), None).await,
        };
        match &outcome {
            MessageOutcome::Retry { reason, delay_ms } => {
                tracing::warn!(message_id = %id, %reason, delay_ms, "message will be retried")
            }
            MessageOutcome::DeadLettered { reason } => {
                tracing::error!(message_id = %id, %reason, "message dead-lettered")
            }
            MessageOutcome::Failed { reason } => {
                tracing::warn!(message_id = %id, %reason, "request failed for good; its requester is told why")
            }
            MessageOutcome::Done { .. } => {}
        }
        (id, outcome)
    }

    async fn work_one(&self, record: &SqsMessage, context: &Context, breaker: &Breaker) -> Result<MessageOutcome> {
        let task = self.task.name();
        let body = record.body.as_deref().unwrap_or_default();
        let message = match self.task.event_source() {
            Some(source) => match self.event_message(body, source) {
                Ok(message) => message,
                Err(reason) => return self.dead_letter(body, reason).await,
            },
            None => match serde_json::from_str::<JobMessage>(body) {
                Ok(m) => m,
                Err(e) => return self.dead_letter(body, format!("unparseable message: {e}")).await,
            },
        };
        if message.task != task {
            return self.dead_letter(body, format!("message for task {:?} reached {task:?}", message.task)).await;
        }
        if let Some(reason) = self.before_history_floor(message.slot).await? {
            return self.dead_letter(body, format!("a message of {}: {reason}", message.slot)).await;
        }
        if self.task.event_source().is_some() {
            let slot = Slot::new(message.slot, self.task.granularity()).time();
            self.runs.record_event(task, slot, message.part, self.clock.now()).await?;
        }
        if !context.deadline.allows_start() {
            let left = context.deadline.remaining().as_secs_f64();
            let reason = format!("not started: the invocation's deadline is near ({left:.1} s left)");
            return Ok(self.retry(record, reason, None).await);
        }
        let slot = Slot::new(message.slot, self.task.granularity());
        let part = message.part;
        let deliveries = Deliveries {
            ledger: self.ledger.as_ref(),
            clock: self.clock.as_ref(),
            task,
            run: RunPart { slot: slot.time(), part },
            hold: self.hold(context),
            concurrency: self.settings.send_concurrency,
            deadline: context.deadline,
            pace: &self.pace,
            breaker,
        };
        let now = self.clock.now();
        let (attempt, worked) = match self.task.request(&message.payload) {
            None => (None, self.task.work(slot, message.payload, &deliveries).await),
            Some(Err(e)) => (None, Err(e)),
            Some(Ok(request)) => match self.runs.start_request(task, &request, now, self.hold(context)).await? {
                RequestStart::Started(n) => {
                    tracing::info!(task, request = %request.id, user = request.user_id, attempt = n, "request running");
                    (Some((request.id, n)), self.task.work(slot, message.payload, &deliveries).await)
                }
                RequestStart::Finished(done) => {
                    tracing::info!(task, request = %done.id, state = done.state.as_str(), "request finished before");
                    (None, Ok(WorkReport { already_done: 1, result: done.result, ..WorkReport::default() }))
                }
                RequestStart::Held(until) => return Ok(self.hold_until(record, until, now).await),
            },
        };
        // An on-demand request's last receive: what could be retried fails it instead, with why, so the user's
        // request ends (redrivable, as a message the queue dead-letters is).
        let receives = receive_count(record);
        let last_try = attempt.is_some() && receives >= self.settings.max_receive_count;
        let worked = match worked {
            Ok(WorkReport { retry: Some(reason), .. }) | Err(Error::Retryable(reason) | Error::Sender(reason))
                if last_try =>
            {
                Err(Error::permanent(format!("gave up after {receives} attempts: {reason}")))
            }
            worked => worked,
        };
        let run = RunPart { slot: slot.time(), part };
        // A request failing on its merits is told to its requester; what gave up on an outage is dead-lettered.
        let recorded = attempt.is_some() && !last_try;
        let outcome = self.settle(record, body, run, worked, recorded, breaker, now).await?;
        let Some((id, attempt)) = attempt else { return Ok(outcome) };
        let finished = match &outcome {
            MessageOutcome::Done { report } => RequestOutcome::Succeeded(report.result.clone().unwrap_or_default()),
            MessageOutcome::Retry { reason, delay_ms } => RequestOutcome::Queued {
                reason: reason.clone(),
                retry_at: now + chrono::Duration::milliseconds(*delay_ms as i64),
            },
            MessageOutcome::DeadLettered { reason } => {
                RequestOutcome::Failed { reason: reason.clone(), redrivable: last_try }
            }
            MessageOutcome::Failed { reason } => RequestOutcome::Failed { reason: reason.clone(), redrivable: false },
        };
        // If this fails the message comes back (work_record retries it): the request is taken again once this
        // attempt's hold ends, and the task finds what this attempt saved.
        if !self.runs.finish_request(&id, attempt, &finished, now).await? {
            tracing::warn!(task, request = %id, attempt, "the request was taken over by a later attempt");
        }
        Ok(outcome)
    }

    /// Records in its run what working a message did, and says what becomes of the message. With `recorded`, a
    /// permanent failure is recorded where its requester reads it, and the message is not dead-lettered.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        record: &SqsMessage,
        body: &str,
        run: RunPart,
        worked: Result<WorkReport>,
        recorded: bool,
        breaker: &Breaker,
        now: DateTime<Utc>,
    ) -> Result<MessageOutcome> {
        let task = self.task.name();
        let RunPart { slot, part } = run;
        match worked {
            Ok(report) => {
                let tally = WorkTally {
                    part,
                    skipped: report.skipped_total(),
                    errors: report.errors.iter().chain(&report.retry).cloned().collect(),
                    message_finished: report.retry.is_none() && report.held_until.is_none(),
                };
                self.runs.record_work(task, slot, &tally, now).await?;
                Ok(match (&report.retry, report.held_until) {
                    (Some(reason), _) => self.retry(record, reason.clone(), report.retry_at).await,
                    (None, Some(until)) => self.hold_until(record, until, now).await,
                    (None, None) => MessageOutcome::Done { report },
                })
            }
            Err(Error::Permanent(reason)) => {
                let tally =
                    WorkTally { part, errors: vec![reason.clone()], message_finished: true, ..Default::default() };
                self.runs.record_work(task, slot, &tally, now).await?;
                if recorded {
                    return Ok(MessageOutcome::Failed { reason });
                }
                self.dead_letter(body, reason).await
            }
            Err(e @ (Error::Retryable(_) | Error::Sender(_))) => {
                if let Error::Sender(reason) = &e {
                    breaker.trip(reason);
                }
                let reason = e.to_string();
                let tally = WorkTally { part, errors: vec![reason.clone()], ..Default::default() };
                // The run's bookkeeping is best effort here: the message comes back whatever it says.
                if let Err(e) = self.runs.record_work(task, slot, &tally, now).await {
                    tracing::warn!(error = %e, "could not record a retryable failure in job_runs");
                }
                Ok(self.retry(record, reason, None).await)
            }
        }
    }

    /// Why a slot must not run, if it is older than the job history kept (see `tasks::maintenance::
    /// job_history_retention`). A slot of the last day is never: the floor stays weeks behind now, so only an
    /// older slot costs a read of it.
    async fn before_history_floor(&self, slot: DateTime<Utc>) -> Result<Option<String>> {
        if slot >= self.clock.now() - chrono::Duration::days(1) {
            return Ok(None);
        }
        Ok(self.runs.history_floor().await?.filter(|floor| slot < *floor).map(|floor| {
            format!(
                "older than the job history kept (from {floor}): the delivery keys that stop its side effects \
                 from happening twice may be deleted"
            )
        }))
    }

    /// An event-driven task's message: an EventBridge event of its source, as the work of the event's hour.
    fn event_message(&self, body: &str, source: &str) -> std::result::Result<JobMessage, String> {
        let event: Value = serde_json::from_str(body).map_err(|e| format!("an event that is not JSON: {e}"))?;
        let bus: BusEvent = serde_json::from_value(event.clone())
            .map_err(|e| format!("not an EventBridge event (id, source, time, detail-type): {e}"))?;
        if bus.source != source {
            return Err(format!(
                "an event of source {:?} ({}) reached a task of {source:?}",
                bus.source, bus.detail_type
            ));
        }
        Ok(JobMessage { task: self.task.name().to_owned(), slot: bus.time, part: event_part(&bus.id), payload: event })
    }

    async fn dead_letter(&self, body: &str, reason: String) -> Result<MessageOutcome> {
        // If this fails the message is retried instead, so it is never dropped.
        self.queue.dead_letter(body, &reason).await?;
        Ok(MessageOutcome::DeadLettered { reason })
    }

    /// Hides the message for the backoff of its receive, or until `not_before` if that is later.
    async fn retry(&self, record: &SqsMessage, reason: String, not_before: Option<DateTime<Utc>>) -> MessageOutcome {
        let backoff = self.settings.backoff.delay(receive_count(record), &mut rand::rng());
        let asked = not_before.and_then(|at| (at - self.clock.now()).to_std().ok()).unwrap_or_default();
        let delay = backoff.max(asked).min(MAX_VISIBILITY);
        if let Some(receipt) = record.receipt_handle.as_deref() {
            if let Err(e) = self.queue.change_visibility(receipt, delay).await {
                tracing::warn!(error = %e, "could not set the retry delay; the queue's visibility timeout applies");
            }
        }
        MessageOutcome::Retry { reason, delay_ms: delay.as_millis() as u64 }
    }

    /// Brings the message back at `until` (SQS hides a message 12 hours at most: a longer hold is taken again).
    async fn hold_until(&self, record: &SqsMessage, until: DateTime<Utc>, now: DateTime<Utc>) -> MessageOutcome {
        let delay = (until - now).to_std().unwrap_or_default().min(MAX_VISIBILITY);
        if let Some(receipt) = record.receipt_handle.as_deref() {
            if let Err(e) = self.queue.change_visibility(receipt, delay).await {
                tracing::warn!(error = %e, "could not hold the message; the queue's visibility timeout applies");
            }
        }
        MessageOutcome::Retry { reason: format!("held until {until}"), delay_ms: delay.as_millis() as u64 }
    }

    /// Lambda's SQS event source, locally: receives batches of up to ten, works them, deletes what succeeded,
    /// until no message is visible. Messages waiting out a retry delay stay for a later drain.
    pub async fn drain(&self) -> Result<Vec<BatchReport>> {
        let mut reports = vec![];
        loop {
            let received = self.queue.receive(MAX_QUEUE_BATCH as u32, self.settings.visibility).await?;
            if received.is_empty() {
                return Ok(reports);
            }
            let batch = sqs_event(&received);
            let report = self.work(batch).await;
            for (message, (_, outcome)) in received.iter().zip(&report.messages) {
                if !matches!(outcome, MessageOutcome::Retry { .. }) {
                    self.queue.delete(&message.receipt).await?;
                }
            }
            reports.push(report);
        }
    }
}

/// How many times SQS has handed the message out, this time included.
fn receive_count(record: &SqsMessage) -> u32 {
    record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1)
}

/// The event Lambda would build from these messages.
pub fn sqs_event(messages: &[Received]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = Some(m.message_id.clone());
            record.receipt_handle = Some(m.receipt.clone());
            record.body = Some(m.body.clone());
            record.attributes.insert("ApproximateReceiveCount".into(), m.receive_count.to_string());
            record.event_source = Some("aws:sqs".into());
            record
        })
        .collect();
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(hours: &[u32]) -> Vec<Slot> {
        hours
            .iter()
            .map(|h| Slot::new(format!("2026-11-22T{h:02}:00:00Z").parse().unwrap(), chrono::Duration::hours(1)))
            .collect()
    }

    #[test]
    fn catch_up_all_plans_every_missed_slot_oldest_first() {
        let (plan, skip) = CatchUp::All.split(slots(&[3, 4, 5]));
        assert_eq!(plan, slots(&[3, 4, 5]));
        assert!(skip.is_empty());
    }

    #[test]
    fn catch_up_latest_plans_the_newest_and_skips_the_rest_with_why() {
        let (plan, skip) = CatchUp::Latest.split(slots(&[3, 4, 5]));
        assert_eq!(plan, slots(&[5]));
        assert_eq!(skip.iter().map(|(s, _)| *s).collect::<Vec<_>>(), slots(&[3, 4]));
        assert!(skip[0].1.contains("latest"), "{}", skip[0].1);
    }

    #[test]
    fn the_sample_batch_carries_job_messages() {
        let batch: SqsEvent = serde_json::from_str(include_str!("../../events/sqs-batch.json")).unwrap();
        let parts: Vec<u64> = batch
            .records
            .iter()
            .map(|r| serde_json::from_str::<JobMessage>(r.body.as_deref().unwrap()).unwrap().part)
            .collect();
        assert_eq!(parts, [0, 1], "what sam local invoke -e events/sqs-batch.json works must parse");
    }

    #[test]
    fn the_queue_must_outlast_a_dead_workers_claims() {
        let settings = RuntimeSettings::default();
        assert_eq!(settings.check_queue(Duration::from_secs(60), Duration::from_secs(360), 5), Ok(()));
        let short = settings.check_queue(Duration::from_secs(60), Duration::from_secs(60), 5).unwrap_err();
        assert!(short.contains("visibility"), "{short}");
        // Two receives retry after 15 s at the least: a 90 s claim outlives them.
        let few = settings.check_queue(Duration::from_secs(60), Duration::from_secs(360), 2).unwrap_err();
        assert!(few.contains("2 receives"), "{few}");
    }

    #[test]
    fn catch_up_none_skips_every_missed_slot() {
        let (plan, skip) = CatchUp::None.split(slots(&[3, 4]));
        assert!(plan.is_empty());
        assert_eq!(skip.len(), 2);
        assert!(skip.iter().all(|(_, why)| why.contains("policy none")));
        assert_eq!(CatchUp::Latest.split(vec![]), (vec![], vec![]));
    }
}
