//! job-history-retention: daily at 05:00 UTC, deletes the jobs' own history (`job_runs`, `run_messages`, the
//! delivery ledger's keys, and on-demand requests in `job_requests`) older than a retention, in bounded batches.
//! `jobs cleanup --days N [--dry-run]` does the same from the command line. A request not changed for the
//! retention is past every event that could touch it (a queue's and a dead-letter queue's retention are far
//! shorter), and what it produced stays where its task saved it (a food entry stays in the food log).
//!
//! # Why it can never let a side effect happen twice
//!
//! A delivery key is what keeps a message from being sent twice; deleting it while a message that claims it
//! can still arrive would let that message send again. Three rules make that impossible, whatever the
//! retention asked for:
//!
//! 1. **Only keys with a known reuse window go.** Each task says how far apart two slots can be that claim the
//!    same key (`tasks::keys_reused_within`): three days for a daily summary, a month and two days for a monthly report.
//!    A task whose keys can come back at any time (one inactivity reminder per stretch without a workout,
//!    however long it lasts; a challenge's notice, whatever dates the challenge is moved to; an order event an
//!    operator may publish again) says `None`, and its keys are never deleted.
//! 2. **The retention outlasts every redelivery.** A message can arrive as late as the catch-up horizon (a
//!    missed slot planned late), plus its queue's retention, plus its dead-letter queue's (an operator
//!    redrives it on the last day), plus a day for the Scheduler's and Lambda's own retries. With the longest
//!    reuse window on top, that is `Retention::minimum()`: a shorter retention is refused, in the task and in
//!    the CLI, with that arithmetic in the message.
//! 3. **Nothing older than the deleted history runs again.** Before it deletes, the retention raises the
//!    history floor to `cutoff + the longest reuse window`: every slot a deleted key could be claimed by is
//!    older than that. The runtime refuses to plan such a slot (a backfill) and dead-letters a message of one
//!    (a redrive from long ago) with that reason, so even a message that outlived its queues cannot reach a
//!    deleted key. Within the retention the floor is never in the way: it stays at least
//!    `Retention::minimum() - longest window` behind now. A plan left `planning` by a dead planner before the
//!    floor could never be resumed, and every later plan of its task resumes such plans first: it is deleted
//!    with the history, so it blocks nothing.
//!
//! Each batch is one short transaction deleting at most `batch_rows` rows of one table, with the age
//! re-checked in the delete (a key claimed again meanwhile stays) and the rows counted into the run in the same
//! transaction. A message cut short by its deadline comes back and goes on where the deleted rows end.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use crate::{
    deliveries::Deliveries,
    ports::{History, HistoryCounts, HistoryCutoff, RunPart},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport, CATCH_UP_HORIZON},
    tasks,
    time::Slot,
    Error, Result,
};

pub const NAME: &str = "job-history-retention";

/// Days of history kept unless configured (`JOB_HISTORY_RETENTION_DAYS`).
pub const DEFAULT_DAYS: u32 = 90;

/// How long SQS keeps a message in a task's queue: `MessageRetentionPeriod` of every queue in template.yaml
/// is at most this (tests/tests/template.rs checks it).
pub const QUEUE_RETENTION: Duration = Duration::days(4);
/// The same for the dead-letter queues: the longest SQS allows.
pub const DEAD_LETTER_RETENTION: Duration = Duration::days(14);
/// EventBridge Scheduler's and Lambda's own retries of a plan (at most an hour each), rounded up.
const PLATFORM_RETRIES: Duration = Duration::days(1);

/// Rows one transaction deletes at most.
pub const BATCH_ROWS: u32 = 5_000;

/// A retention of job history, checked against the longest time a message can still claim a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    days: u32,
}

impl Retention {
    /// The shortest retention that outlasts every redelivery: see the module doc, rule 2.
    pub fn minimum() -> Duration {
        longest_reuse() + CATCH_UP_HORIZON + QUEUE_RETENTION + DEAD_LETTER_RETENTION + PLATFORM_RETRIES
    }

    /// `days` of history, or why not.
    pub fn days(days: i64) -> Result<Self> {
        let minimum = Self::minimum();
        if days <= 0 {
            return Err(Error::permanent(format!("a retention of {days} days would delete every job's history")));
        }
        if Duration::days(days) < minimum {
            return Err(Error::permanent(format!(
                "a retention of {days} days is shorter than the {} days a message can still arrive and claim a \
                 delivery key (the longest key reuse window, {} days, + catch-up horizon {} + queue retention {} \
                 + dead-letter retention {} + platform retries {}): deleting its keys could send it twice",
                minimum.num_days(),
                longest_reuse().num_days(),
                CATCH_UP_HORIZON.num_days(),
                QUEUE_RETENTION.num_days(),
                DEAD_LETTER_RETENTION.num_days(),
                PLATFORM_RETRIES.num_days(),
            )));
        }
        Ok(Self { days: u32::try_from(days).unwrap_or(u32::MAX) })
    }

    pub fn in_days(&self) -> u32 {
        self.days
    }

    /// What may go at `now`: history before `now - retention`, the keys of the tasks whose reuse window is
    /// known, and the floor that keeps the slots of the deleted keys from running again.
    pub fn cutoff(&self, now: DateTime<Utc>) -> HistoryCutoff {
        let before = now - Duration::days(i64::from(self.days));
        HistoryCutoff {
            before,
            floor: before + longest_reuse(),
            key_tasks: tasks::NAMES
                .iter()
                .filter(|name| tasks::keys_reused_within(name).is_some())
                .map(|name| (*name).to_owned())
                .collect(),
        }
    }
}

/// The longest reuse window of any task's keys; the keys of tasks without one are never deleted.
fn longest_reuse() -> Duration {
    tasks::NAMES.iter().filter_map(|name| tasks::keys_reused_within(name)).max().unwrap_or_else(Duration::zero)
}

/// Deletes the history `cutoff` lets go, batch by batch, while `more` allows another batch; raises the floor
/// first. The counts are what was deleted; `finished` is false when `more` stopped it.
pub async fn delete(
    history: &dyn History,
    cutoff: &HistoryCutoff,
    batch_rows: u32,
    run: Option<(&str, RunPart)>,
    more: impl Fn() -> bool,
) -> Result<(HistoryCounts, bool)> {
    history.raise_floor(cutoff.floor).await?;
    let mut total = HistoryCounts::default();
    loop {
        if !more() {
            return Ok((total, false));
        }
        let batch = history.delete_history_batch(cutoff, batch_rows, run).await?;
        total.add(&batch);
        if batch.total() == 0 {
            return Ok((total, true));
        }
    }
}

pub struct JobHistoryRetention {
    pub history: Arc<dyn History>,
    pub retention: Retention,
    pub batch_rows: u32,
}

/// The one message of a run: nothing to say, the slot says when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {}

#[async_trait]
impl Task for JobHistoryRetention {
    fn name(&self) -> &'static str {
        NAME
    }

    fn granularity(&self) -> Duration {
        Duration::days(1)
    }

    /// Only the latest cutoff matters: it covers every older one.
    fn catch_up(&self) -> CatchUp {
        CatchUp::Latest
    }

    fn overlap(&self) -> Overlap {
        Overlap::Skip
    }

    async fn plan(&self, _slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        fanout.push(serde_json::to_value(Sweep {}).expect("serialises"), 1).await
    }

    /// Deletes what the slot's cutoff lets go (computed from the slot, never from the message): a redelivery,
    /// or a message cut short by its deadline, goes on where the deleted rows end.
    async fn work(&self, slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let Sweep {} = serde_json::from_value(payload)
            .map_err(|e| Error::permanent(format!("a {NAME} message takes no fields: {e}")))?;
        let cutoff = self.retention.cutoff(slot.time());
        let (deleted, finished) =
            delete(self.history.as_ref(), &cutoff, self.batch_rows, Some((NAME, deliveries.run)), || {
                deliveries.deadline.allows_start()
            })
            .await?;
        tracing::info!(
            task = NAME,
            %slot,
            before = %cutoff.before,
            floor = %cutoff.floor,
            runs = deleted.runs,
            run_messages = deleted.run_messages,
            deliveries = deleted.deliveries,
            requests = deleted.requests,
            finished,
            "job history deleted"
        );
        let mut report = WorkReport { sent: deleted.total(), ..WorkReport::default() };
        if !finished {
            report.retry = Some(format!("deadline reached after deleting {} rows; more to delete", deleted.total()));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_outlasts_the_monthly_reports_key_and_every_redelivery() {
        let monthly = tasks::keys_reused_within(tasks::fitness::monthly_report::NAME).unwrap();
        assert!(Retention::minimum() >= monthly + CATCH_UP_HORIZON + QUEUE_RETENTION + DEAD_LETTER_RETENTION);
        assert!(Retention::days(i64::from(DEFAULT_DAYS)).is_ok());
    }

    #[test]
    fn zero_negative_and_too_short_retentions_are_refused_with_why() {
        for days in [0, -5] {
            assert!(Retention::days(days).unwrap_err().to_string().contains("every job's history"), "{days}");
        }
        let short = Retention::minimum().num_days() - 1;
        let e = Retention::days(short).unwrap_err().to_string();
        assert!(e.contains("could send it twice") && e.contains("dead-letter retention 14"), "{e}");
        assert!(Retention::days(Retention::minimum().num_days()).is_ok());
    }

    #[test]
    fn keys_that_can_come_back_any_time_are_never_deleted() {
        let cutoff = Retention::days(90).unwrap().cutoff("2026-11-28T05:00:00Z".parse().unwrap());
        for task in [tasks::fitness::inactivity_reminders::NAME, tasks::fitness::challenge_notifications::NAME] {
            assert!(!cutoff.key_tasks.iter().any(|t| t == task), "{task}");
        }
        assert!(cutoff.key_tasks.iter().any(|t| t == tasks::fitness::daily_summary::NAME));
    }

    #[test]
    fn the_floor_covers_every_slot_a_deleted_key_could_be_claimed_by_and_stays_behind_any_live_message() {
        let now: DateTime<Utc> = "2026-11-28T05:00:00Z".parse().unwrap();
        let retention = Retention::days(Retention::minimum().num_days()).unwrap();
        let cutoff = retention.cutoff(now);
        assert_eq!(cutoff.floor - cutoff.before, longest_reuse());
        // The oldest slot a live message can have.
        let oldest_live = now - (CATCH_UP_HORIZON + QUEUE_RETENTION + DEAD_LETTER_RETENTION + PLATFORM_RETRIES);
        assert!(cutoff.floor <= oldest_live, "{} > {oldest_live}", cutoff.floor);
    }
}
