//! The job runtime's own ports: queues, runs and leases, the delivery ledger, who moved zone.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::Result;

/// One message as a queue hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    /// How many times it has been received, this time included (SQS ApproximateReceiveCount).
    pub receive_count: u32,
}

/// A message that left its queue for the dead-letter queue, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    pub reason: String,
}

/// The most messages one `Queue` call sends or receives: SQS's limit for SendMessageBatch and ReceiveMessage.
pub const MAX_QUEUE_BATCH: usize = 10;

/// A task's queue with SQS semantics: visibility timeout, receive count, and a dead-letter queue that takes a
/// message after `max_receive_count` receives.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends at most `MAX_QUEUE_BATCH` bodies in one call (SendMessageBatch); fails whole if any entry fails.
    async fn send_batch(&self, bodies: &[String]) -> Result<()>;
    /// Receives up to `max` visible messages (at most `MAX_QUEUE_BATCH`) and hides them for `visibility`.
    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Received>>;
    async fn delete(&self, receipt: &str) -> Result<()>;
    async fn change_visibility(&self, receipt: &str, visibility: Duration) -> Result<()>;
    /// Puts a body straight into the dead-letter queue with the reason it could not be processed.
    async fn dead_letter(&self, body: &str, reason: &str) -> Result<()>;
    /// The dead-lettered messages, without taking them.
    async fn peek_dead_letters(&self, max: u32) -> Result<Vec<DeadLetter>>;
    /// Moves every dead-lettered message back onto the queue as a new message (receive count 0) and says how
    /// many it moved. A message may arrive twice if a move is interrupted: the delivery ledger absorbs that.
    async fn redrive(&self) -> Result<u64>;
    /// Messages visible or in flight (not dead-lettered): what is left to do.
    async fn depth(&self) -> Result<u64>;
}

/// What `begin_run` found for a `(task, slot)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStart {
    /// The first invocation of this slot: plan it.
    Started,
    /// A plan of this slot started before and did not finish (its planner died): plan it again; the
    /// delivery ledger keeps what was already sent from being sent twice.
    Resumed,
    /// This slot was planned already: plan nothing.
    AlreadyPlanned(RunRecord),
}

/// A row of `job_runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub task: String,
    pub slot: DateTime<Utc>,
    /// planning, planned, done, or skipped
    pub status: String,
    pub planned: u64,
    pub messages: u64,
    pub messages_done: u64,
    pub sent: u64,
    pub skipped: u64,
    pub failed: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The last five errors, newest last.
    pub errors: Vec<String>,
}

/// What one attempt at one message did to its run. A message may be delivered more than once (SQS is
/// at-least-once, a retry, a resumed plan sending its chunk again): the store counts each message of a run once.
/// Its sends and failures for good are not here: the ledger counts them as it records them (`Ledger::settle`),
/// so a worker killed before it reports still has every send it made counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkTally {
    /// The message's number within its run, given by the planner: what makes a redelivery the same message.
    pub part: u64,
    /// Subjects this attempt passed over for a reason of the task's (no activity, opted out…): the message's
    /// latest count replaces its earlier one.
    pub skipped: u64,
    pub errors: Vec<String>,
    /// Whether the message is finished (done, or failed for good); false when it will be redelivered.
    pub message_finished: bool,
}

/// What a planner reads of its task's runs before it plans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanHistory {
    /// The runs still `planning`, oldest first. Read under the task's lease, they are plans whose planner died.
    pub unfinished: Vec<DateTime<Utc>>,
    /// The newest slot whose planning finished (planned, done or skipped): where catch-up looks back to. A plan
    /// left unfinished does not count: it is resumed instead.
    pub latest: Option<DateTime<Utc>>,
}

/// A slot that was not planned, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSlot {
    pub slot: DateTime<Utc>,
    pub reason: String,
}

/// What an on-demand task's message asks for: one request of one user, known by its id (for food recognition,
/// the upload's). Its state is kept in `job_requests`, written by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    pub user_id: i64,
}

/// Where an on-demand request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for its first or next attempt.
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Succeeded, Self::Failed].into_iter().find(|s| s.as_str() == text)
    }
}

/// A row of `job_requests`: what the app shows the user who asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    pub id: String,
    /// The task that works it.
    pub kind: String,
    pub user_id: i64,
    pub state: RequestState,
    /// Attempts started, this one included.
    pub attempts: u32,
    /// What it produced, once succeeded.
    pub result: Option<serde_json::Value>,
    /// Why it failed, or why its last attempt did when queued again: words a person can read.
    pub reason: Option<String>,
    /// Queued after a failed attempt: when the next one comes at the earliest.
    pub retry_at: Option<DateTime<Utc>>,
    /// Running: until when its worker holds it; past that, the worker was lost and a redelivery takes it over.
    pub held_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What `start_request` found.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestStart {
    /// This caller runs attempt `n`; its outcome must name it.
    Started(u32),
    /// Finished before (succeeded, or failed for good): nothing to do.
    Finished(RequestRecord),
    /// Another worker's attempt holds it until then.
    Held(DateTime<Utc>),
}

/// How an attempt at a request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestOutcome {
    Succeeded(serde_json::Value),
    /// Comes back at `retry_at`, with why this attempt failed.
    Queued {
        reason: String,
        retry_at: DateTime<Utc>,
    },
    /// Failed for good. `redrivable` when it failed for want of tries (every retry spent on an outage), so
    /// that an operator's redrive from the dead-letter queue runs it again; a bad request never runs again.
    Failed {
        reason: String,
        redrivable: bool,
    },
}

/// `job_runs` and the planner leases.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Starts the run of `(task, slot)`, or finds it. With `replan_skipped` (a manual trigger or backfill), a
    /// slot recorded as skipped is planned after all; a slot that was planned never is.
    async fn begin_run(
        &self,
        task: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
        replan_skipped: bool,
    ) -> Result<RunStart>;
    /// Closes the planning of a run; `errors` are what planning found wrong (bad time zones…).
    async fn finish_plan(
        &self,
        task: &str,
        slot: DateTime<Utc>,
        planned: u64,
        messages: u64,
        errors: &[String],
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Adds an attempt at a message to its run, counting each message once whatever its deliveries; the run
    /// is done when every message is finished.
    async fn record_work(&self, task: &str, slot: DateTime<Utc>, tally: &WorkTally, now: DateTime<Utc>) -> Result<()>;
    /// Counts one event (an event-driven task's message, numbered `part`) into the run of its slot: the run is
    /// made `planned` by its slot's first event, and each new event adds one to its subjects and messages and
    /// makes it `planned` again until `record_work` has seen them all. A redelivered event counts once.
    async fn record_event(&self, task: &str, slot: DateTime<Utc>, part: u64, now: DateTime<Utc>) -> Result<()>;
    /// Records slots that were not planned, with why (missed while down, older than the catch-up horizon); a
    /// slot that already has a run keeps it. Returns how many were recorded.
    async fn record_skipped(&self, task: &str, slots: &[SkippedSlot], now: DateTime<Utc>) -> Result<u64>;
    /// Where the task's next plan starts from, in one read: see `PlanHistory`.
    async fn plan_history(&self, task: &str) -> Result<PlanHistory>;
    async fn run(&self, task: &str, slot: DateTime<Utc>) -> Result<Option<RunRecord>>;
    /// The newest runs first, of one task or of all.
    async fn recent_runs(&self, task: Option<&str>, limit: u32) -> Result<Vec<RunRecord>>;
    /// Takes the named lease for `holder` until `now + ttl` if it is free or expired (or already theirs).
    async fn acquire_lease(&self, name: &str, holder: &str, now: DateTime<Utc>, ttl: Duration) -> Result<bool>;
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
    /// The oldest slot whose history is whole, once job-history retention has deleted any: a slot before it
    /// may have lost the keys that keep its side effects from happening twice, so it is never planned or
    /// worked again.
    async fn history_floor(&self) -> Result<Option<DateTime<Utc>>>;
    /// Starts an attempt at an on-demand request of `kind`, holding it until `now + hold`: creates it, or takes
    /// it when queued, failed redrivably, or held by a worker past its hold. An id of another kind or user is a
    /// permanent error.
    async fn start_request(
        &self,
        kind: &str,
        request: &Request,
        now: DateTime<Utc>,
        hold: Duration,
    ) -> Result<RequestStart>;
    /// Records how attempt `attempt` ended; an attempt taken over since (its holder was presumed lost) records
    /// nothing. Returns whether it was recorded.
    async fn finish_request(
        &self,
        id: &str,
        attempt: u32,
        outcome: &RequestOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    async fn request(&self, id: &str) -> Result<Option<RequestRecord>>;
    /// A user's requests, newest first.
    async fn user_requests(&self, user_id: i64, limit: u32) -> Result<Vec<RequestRecord>>;
}

/// What job-history retention may delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCutoff {
    /// Runs of slots before this, and delivery keys last claimed before it (a settlement leaves the stamp).
    pub before: DateTime<Utc>,
    /// The history floor to raise first: every slot that could claim a deleted key is before it.
    pub floor: DateTime<Utc>,
    /// The tasks whose keys may go; the others' keys can come back at any time and are kept.
    pub key_tasks: Vec<String>,
}

/// Rows of job history, by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HistoryCounts {
    pub runs: u64,
    pub run_messages: u64,
    pub deliveries: u64,
    /// On-demand requests last changed before the cutoff: every event that could touch them is long gone.
    pub requests: u64,
}

impl HistoryCounts {
    pub fn total(&self) -> u64 {
        self.runs + self.run_messages + self.deliveries + self.requests
    }

    pub fn add(&mut self, other: &HistoryCounts) {
        self.runs += other.runs;
        self.run_messages += other.run_messages;
        self.deliveries += other.deliveries;
        self.requests += other.requests;
    }
}

/// The jobs' own history, for its retention.
#[async_trait]
pub trait History: Send + Sync {
    /// Raises the history floor to `floor` (never lowers it), before anything is deleted.
    async fn raise_floor(&self, floor: DateTime<Utc>) -> Result<()>;
    /// What `cutoff` would delete, without deleting it.
    async fn count_history(&self, cutoff: &HistoryCutoff) -> Result<HistoryCounts>;
    /// Deletes at most `limit` rows of each table that `cutoff` lets go, one short transaction per table, the
    /// age re-checked in each delete; with `run`, counts them into that run's message in the same transaction.
    async fn delete_history_batch(
        &self,
        cutoff: &HistoryCutoff,
        limit: u32,
        run: Option<(&str, RunPart)>,
    ) -> Result<HistoryCounts>;
}

/// One side effect on one subject in one period: the unit that must happen at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeliveryKey {
    pub subject: String,
    pub period: String,
}

/// Where a key stood when a claim did not win it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    /// Won: this caller, and only this one, performs the side effect now. The number is the claim's attempt:
    /// its fence, which the settlement must name.
    Won(u32),
    /// Performed before: skip.
    Done,
    /// Failed for good before: skip.
    Failed,
    /// Another worker holds an unexpired claim: come back later.
    Busy,
}

/// How a claimed side effect ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Done,
    /// Failed in a way worth retrying: the key can be claimed again at once.
    Retry(String),
    /// Failed for good: never claimed again.
    Failed(String),
}

/// The message of a run that side effects are performed for: their settlements count in its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPart {
    pub slot: DateTime<Utc>,
    pub part: u64,
}

/// A claimed key's settlement, fenced by the attempt its claim won.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub key: DeliveryKey,
    pub attempt: u32,
    pub settlement: Settlement,
}

/// The delivery ledger: `deliveries (task, subject, period)`.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Claims every key it can in one go; a claim expires after `hold` so a crashed worker's keys come back.
    async fn claim(
        &self,
        task: &str,
        keys: &[DeliveryKey],
        now: DateTime<Utc>,
        hold: Duration,
    ) -> Result<Vec<(DeliveryKey, ClaimState)>>;
    /// Settles claims this caller holds and, in the same transaction, counts those done and failed for good in
    /// `run`'s message and run. A claim that expired and was taken over since is left to its new holder: the
    /// number returned is how many were settled.
    async fn settle(&self, task: &str, run: RunPart, outcomes: &[Settled], now: DateTime<Utc>) -> Result<u64>;
}

/// How much older than a period's first plan a move may be stamped and still count: the stamp is taken as the
/// app's transaction commits, and others see the move a moment later (PostgreSQL: the commit's write; SQLite: the
/// rest of the transaction). Counting an older move costs only a key the ledger finds done.
pub const MOVE_COMMIT_SLACK: Duration = Duration::from_secs(600);

/// Who moved zone since a task first planned a period: what lets a plan notice a period a user fell between two
/// zones' plans of (a user who moved east past their 06:00). The app's writes record the moves (a trigger on
/// `users` fills `zone_moves`) and each period's first plan records when it started (`period_plans`), both by
/// the database's clock, so the two compare whatever clock the jobs run on. Periods compare as text (ISO dates).
#[async_trait]
pub trait ZoneMoves: Send + Sync {
    /// Records that `task` has started planning `period`, unless it had; the first time, forgets the periods
    /// before `forget_before` (no plan asks about them any more).
    async fn planning(&self, task: &str, period: &str, forget_before: &str) -> Result<()>;
    /// Those of `users` whose latest move is no older than `task`'s first plan of `period`, less
    /// `MOVE_COMMIT_SLACK` (a move is stamped as its transaction commits, a moment before others see it);
    /// every one who ever moved if `task` has no record of planning `period`.
    async fn moved_since(&self, task: &str, period: &str, users: &[i64]) -> Result<Vec<i64>>;
}
