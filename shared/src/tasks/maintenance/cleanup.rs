//! The cleanup tasks: one generic task, `Cleanup`, deletes the app's rows that are old enough, for five tasks
//! that differ only in their sweeps and their age (`Cleanup::new`; schedules in template.yaml):
//!
//! | task | sweeps, in plan order | a row goes when |
//! |---|---|---|
//! | `cart-cleanup` | empty carts, then carts with items (their items by ON DELETE CASCADE) | not updated for `CART_MAX_AGE_DAYS` (30) days |
//! | `token-cleanup` | password reset tokens, email verification tokens, OTP codes | expired before the slot |
//! | `audit-log-retention` | audit logs | older than `AUDIT_LOG_RETENTION_DAYS` (90) days |
//! | `session-cleanup` | sessions | not seen for `SESSION_IDLE_DAYS` (30) days |
//! | `temp-data-cleanup` | temporary uploads' rows (their files expire by the bucket's lifecycle rule) | older than 24 hours |
//!
//! # Plan: ranges
//!
//! The cutoff is the slot (the day, 00:00 UTC) minus the task's age, computed from the slot alone. For each
//! sweep, in order, the store numbers the rows due before the cutoff in id order and cuts them into ranges of at
//! most `range_rows` (one statement: `row_number()` buckets), and each range becomes one message
//! `{"sweep", "lo", "hi", "candidates"}`. Empty carts are planned first, so they are the first messages on the
//! queue: they are the cheapest rows to delete and the most of them.
//!
//! # Work: short batches
//!
//! A message deletes its range in batches of at most `batch_rows` rows, each one short transaction that picks
//! the next candidates of the range in id order (`after < id <= hi`; PostgreSQL locks them `FOR UPDATE SKIP
//! LOCKED`), deletes them, and counts the deletions into the run message in the same transaction
//! (`Sweeper::sweep_batch`). Short, because the app's own writes to a row being deleted wait for the batch's
//! commit, and a batch is milliseconds; and because a crash then loses at most the one uncommitted batch, rolled
//! back whole. Before each batch the invocation's deadline is checked: near it, the message is handed back with
//! `retry` and resumes later.
//!
//! # Why nothing is deleted that should not be, and every deletion is counted once
//!
//! - **The message only narrows.** The cutoff comes from the slot, never from the message, and every row is
//!   checked against it again: a message can only say which ids to look at. A forged or stale message cannot
//!   delete anything younger, nor anything outside its range. A malformed one (unknown fields, a sweep that is
//!   not this task's, `lo > hi`, a negative number) fails as permanent: the dead-letter queue, with the reason.
//! - **A row touched after the plan survives.** The app bumps `carts.updated_at` on any change to a cart or
//!   its items, and a session's `last_seen_at` on use; the batch's pick and the delete's own `WHERE` check the
//!   age (and the sweep's condition: empty, or not) again, so a cart changed between plan and delete is no
//!   longer due and stays. On PostgreSQL a row the app holds locked at that moment is skipped rather than
//!   waited for, as touched: the app is changing it. Either way it counts as kept; if it is still old
//!   tomorrow, tomorrow's run takes it.
//! - **A crash or a deadline finishes right.** Each batch's deletions and their count commit together. The
//!   message comes back (a retry, or SQS after a dead worker's visibility timeout) and walks its range from
//!   `lo` again: deleted rows are gone, touched rows fail the check again, the rest is deleted. The count lives
//!   in the run message (`run_messages`), cumulative over every delivery, so `job_runs.sent` is each deleted row
//!   once, and `kept = candidates − message_deleted_total` (reported as skipped, "kept: touched since the
//!   plan", once the range is done) is right whichever delivery finishes. A delivery of a finished message
//!   deletes nothing and reports the same.
//! - A row the app deleted itself between plan and work counts as kept too: it was not this run's to delete.
//!   A plan resumed after its planner died cuts the ranges again from what is left, so its messages' `kept` may
//!   be off; what was deleted is still counted exactly once.
//!
//! Catch-up: none; every missed slot is recorded skipped, with why. Each run deletes everything older than its
//! own cutoff, the missed days' rows included, so a missed run loses nothing. Planning the latest missed slot
//! too (as subscription-processing does, whose days are different deliveries) would plan the same rows twice in
//! one invocation: the current slot's plan counts rows the caught-up run's messages then delete, and reports
//! them as kept. Overlap: skip. Two planners of a slot would cut the same ranges, and the second has nothing to
//! add: it fails at once, and its retry finds the slot planned.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use crate::{
    deliveries::Deliveries,
    ports::{Pick, Range, Sweep, Sweeper},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    time::Slot,
    Error, Result,
};

pub const CART_CLEANUP: &str = "cart-cleanup";
pub const TOKEN_CLEANUP: &str = "token-cleanup";
pub const AUDIT_LOG_RETENTION: &str = "audit-log-retention";
pub const SESSION_CLEANUP: &str = "session-cleanup";
pub const TEMP_DATA_CLEANUP: &str = "temp-data-cleanup";

/// Every cleanup task, as `tasks::NAMES` lists them.
pub const NAMES: [&str; 5] = [CART_CLEANUP, TOKEN_CLEANUP, AUDIT_LOG_RETENTION, SESSION_CLEANUP, TEMP_DATA_CLEANUP];

/// The skip reason of the candidates a message did not delete.
pub const KEPT: &str = "kept: touched since the plan";

/// Candidates per planned message: a range is worked in a few seconds, well inside an invocation.
pub const RANGE_ROWS: u32 = 10_000;
/// Rows per delete transaction: what the app's writes to those rows may wait for is one such transaction.
/// 250: on 5,000,000 carts (1,000,000 stale, items on three in five) with the app writing, 500 made the
/// longest transaction 326 ms and 250 made it 196 ms, at 113,000 carts a second (BENCHMARKS.md).
pub const BATCH_ROWS: u32 = 250;

/// How long the app's rows are kept, in days: the configured ages (`CART_MAX_AGE_DAYS`,
/// `AUDIT_LOG_RETENTION_DAYS`, `SESSION_IDLE_DAYS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ages {
    /// A cart not updated for this long is deleted.
    pub cart_days: u32,
    /// Audit logs are kept this long.
    pub audit_log_days: u32,
    /// A session not seen for this long is deleted.
    pub session_idle_days: u32,
}

impl Default for Ages {
    fn default() -> Self {
        Self { cart_days: 30, audit_log_days: 90, session_idle_days: 30 }
    }
}

/// A cleanup task: deletes, sweep by sweep, the rows older than `max_age` at its slot.
pub struct Cleanup {
    pub name: &'static str,
    /// Planned in this order.
    pub sweeps: &'static [Sweep],
    /// A row is due when its age column is before the slot minus this.
    pub max_age: Duration,
    pub sweeper: Arc<dyn Sweeper>,
    /// Candidates per planned message, at most.
    pub range_rows: u32,
    /// Rows per delete transaction, at most.
    pub batch_rows: u32,
}

impl Cleanup {
    /// The cleanup task of that name, with its sweeps and its configured age; None for another task's name.
    pub fn new(name: &'static str, sweeper: Arc<dyn Sweeper>, ages: &Ages) -> Option<Self> {
        let days = |n: u32| Duration::days(n.into());
        let (sweeps, max_age): (&'static [Sweep], Duration) = match name {
            CART_CLEANUP => (&[Sweep::EmptyCarts, Sweep::FilledCarts], days(ages.cart_days)),
            TOKEN_CLEANUP => {
                (&[Sweep::PasswordResetTokens, Sweep::EmailVerificationTokens, Sweep::OtpCodes], Duration::zero())
            }
            AUDIT_LOG_RETENTION => (&[Sweep::AuditLogs], days(ages.audit_log_days)),
            SESSION_CLEANUP => (&[Sweep::IdleSessions], days(ages.session_idle_days)),
            TEMP_DATA_CLEANUP => (&[Sweep::TempUploads], Duration::hours(24)),
            _ => return None,
        };
        Some(Self { name, sweeps, max_age, sweeper, range_rows: RANGE_ROWS, batch_rows: BATCH_ROWS })
    }

    /// Rows whose age column is before this are due: from the slot, the same for every message of the run.
    pub fn cutoff(&self, slot: Slot) -> DateTime<Utc> {
        slot.time() - self.max_age
    }

    /// The sweep and range a message names, or why it cannot be worked.
    fn read(&self, payload: Value) -> Result<(Sweep, Range)> {
        let bad = |why: String| Error::permanent(format!("{}: {why}", self.name));
        let message: RangeMessage = serde_json::from_value(payload)
            .map_err(|e| bad(format!("a message that is not a range of a sweep: {e}")))?;
        let RangeMessage { sweep, lo, hi, candidates } = message;
        let known = self.sweeps.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ");
        let sweep = Sweep::parse(&sweep)
            .filter(|s| self.sweeps.contains(s))
            .ok_or_else(|| bad(format!("sweep {sweep:?} is not one of this task's ({known})")))?;
        if lo < 0 || hi < 0 || candidates < 0 {
            return Err(bad(format!("{sweep}: a negative number in lo {lo}, hi {hi}, candidates {candidates}")));
        }
        if lo > hi {
            return Err(bad(format!("{sweep}: lo {lo} is above hi {hi}")));
        }
        Ok((sweep, Range { lo, hi, candidates: candidates as u64 }))
    }
}

/// The body of one planned message: ids `lo ..= hi` of a sweep's table, holding `candidates` due rows when
/// planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeMessage {
    pub sweep: String,
    pub lo: i64,
    pub hi: i64,
    pub candidates: i64,
}

#[async_trait]
impl Task for Cleanup {
    fn name(&self) -> &'static str {
        self.name
    }

    /// A run is a day: every invocation of the day (a retry, a manual trigger) is the same run, with the same
    /// cutoff.
    fn granularity(&self) -> Duration {
        Duration::days(1)
    }

    /// Each run deletes everything older than its cutoff, the missed days' rows included: a missed slot is
    /// recorded skipped, and planning it as well would count the same rows in two runs.
    fn catch_up(&self) -> CatchUp {
        CatchUp::None
    }

    /// A second planner would cut the same ranges: it fails at once and its retry finds the slot planned.
    fn overlap(&self) -> Overlap {
        Overlap::Skip
    }

    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        let cutoff = self.cutoff(slot);
        for &sweep in self.sweeps {
            for range in self.sweeper.ranges(sweep, cutoff, self.range_rows).await? {
                let message = RangeMessage {
                    sweep: sweep.name().to_owned(),
                    lo: range.lo,
                    hi: range.hi,
                    candidates: range.candidates as i64,
                };
                fanout.push(serde_json::to_value(message).expect("a range serialises"), range.candidates).await?;
            }
        }
        Ok(())
    }

    async fn work(&self, slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let (sweep, range) = self.read(payload)?;
        let cutoff = self.cutoff(slot);
        let mut report = WorkReport::default();
        let (mut after, mut batches, mut deleted_total) = (range.lo - 1, 0u64, None);
        loop {
            if !deliveries.deadline.allows_start() {
                let left = deliveries.deadline.remaining().as_secs_f64();
                report.retry = Some(format!(
                    "{sweep} {}..={}: stopped after {batches} batches, {left:.1} s before the invocation's deadline",
                    range.lo, range.hi
                ));
                break;
            }
            let batch = self
                .sweeper
                .sweep_batch(
                    &Pick { sweep, cutoff, after, hi: range.hi, limit: self.batch_rows },
                    self.name,
                    deliveries.run,
                )
                .await?;
            batches += 1;
            report.sent += batch.deleted;
            deleted_total = Some(batch.message_deleted_total);
            match batch.last_seen {
                Some(last) if batch.picked >= u64::from(self.batch_rows) && last < range.hi => after = last,
                _ => break,
            }
        }
        // Known once the range is done: a message handed back reports it when it comes back and finishes.
        let kept = deleted_total.filter(|_| report.retry.is_none()).map(|total| range.candidates.saturating_sub(total));
        report.skip(KEPT, kept.unwrap_or(0));
        tracing::info!(
            task = self.name,
            %sweep,
            lo = range.lo,
            hi = range.hi,
            deleted = report.sent,
            kept,
            batches,
            finished = report.retry.is_none(),
            "swept"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        limits::{Breaker, Deadline, Pace},
        memory::MemoryLedger,
        ports::{Batch, RunPart},
        time::VirtualClock,
    };
    use std::sync::Mutex;

    /// One table in memory: (id, age, touched after the plan); deleted rows leave it. Counts per message.
    #[derive(Default)]
    struct Rows {
        rows: Mutex<Vec<(i64, DateTime<Utc>)>>,
        counted: Mutex<u64>,
        cutoffs: Mutex<Vec<DateTime<Utc>>>,
    }

    #[async_trait]
    impl Sweeper for Rows {
        async fn ranges(&self, _: Sweep, _: DateTime<Utc>, _: u32) -> Result<Vec<Range>> {
            unreachable!("plans are tested against the stores")
        }

        async fn sweep_batch(&self, pick: &Pick, _: &str, _: RunPart) -> Result<Batch> {
            let Pick { cutoff, after, hi, limit, .. } = *pick;
            self.cutoffs.lock().unwrap().push(cutoff);
            let mut rows = self.rows.lock().unwrap();
            let picked: Vec<i64> = rows
                .iter()
                .filter(|(id, at)| *id > after && *id <= hi && *at < cutoff)
                .map(|(id, _)| *id)
                .take(limit as usize)
                .collect();
            rows.retain(|(id, _)| !picked.contains(id));
            let mut counted = self.counted.lock().unwrap();
            *counted += picked.len() as u64;
            Ok(Batch {
                picked: picked.len() as u64,
                deleted: picked.len() as u64,
                last_seen: picked.last().copied(),
                message_deleted_total: *counted,
            })
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn slot() -> Slot {
        Slot::new(t("2026-12-01T02:00:03Z"), Duration::days(1))
    }

    /// Carts 1..=10; the even ones were updated after the cutoff of the slot of 1 December (1 November).
    fn carts() -> Arc<Rows> {
        let rows =
            (1..=10).map(|id| (id, if id % 2 == 0 { t("2026-11-20T00:00:00Z") } else { t("2026-10-01T00:00:00Z") }));
        Arc::new(Rows { rows: Mutex::new(rows.collect()), ..Default::default() })
    }

    fn cleanup(rows: Arc<Rows>, batch_rows: u32) -> Cleanup {
        Cleanup { batch_rows, ..Cleanup::new(CART_CLEANUP, rows, &Ages::default()).unwrap() }
    }

    async fn work(task: &Cleanup, payload: Value, deadline: Deadline) -> Result<WorkReport> {
        let (ledger, clock, pace, breaker) = (
            MemoryLedger::default(),
            VirtualClock::new(t("2026-12-01T02:00:05Z")),
            Pace::new(None),
            Breaker::default(),
        );
        let deliveries = Deliveries {
            ledger: &ledger,
            clock: &clock,
            task: task.name,
            run: RunPart { slot: slot().time(), part: 0 },
            hold: std::time::Duration::from_secs(90),
            concurrency: 1,
            deadline,
            pace: &pace,
            breaker: &breaker,
        };
        task.work(slot(), payload, &deliveries).await
    }

    fn roomy() -> Deadline {
        Deadline::after(std::time::Duration::from_secs(60), std::time::Duration::from_secs(15))
    }

    #[tokio::test]
    async fn a_range_is_deleted_in_batches_with_the_cutoff_of_the_slot_and_what_was_touched_is_kept() {
        let rows = carts();
        let task = cleanup(rows.clone(), 2);
        // Planned when all ten were old: the five touched since are kept.
        let payload = serde_json::json!({ "sweep": "filled-carts", "lo": 1, "hi": 10, "candidates": 10 });
        let report = work(&task, payload, roomy()).await.unwrap();
        assert_eq!(report.sent, 5);
        assert_eq!(report.skipped.get(KEPT), Some(&5));
        assert_eq!(report.retry, None);
        let left: Vec<i64> = rows.rows.lock().unwrap().iter().map(|r| r.0).collect();
        assert_eq!(left, [2, 4, 6, 8, 10]);
        let cutoffs = rows.cutoffs.lock().unwrap();
        assert!(cutoffs.len() >= 3, "five rows in batches of two: {cutoffs:?}");
        assert!(cutoffs.iter().all(|c| *c == t("2026-11-01T00:00:00Z")), "30 days before the day: {cutoffs:?}");
    }

    #[tokio::test]
    async fn nothing_outside_the_range_is_touched() {
        let rows = carts();
        let payload = serde_json::json!({ "sweep": "empty-carts", "lo": 3, "hi": 5, "candidates": 3 });
        let report = work(&cleanup(rows.clone(), 100), payload, roomy()).await.unwrap();
        assert_eq!(report.sent, 2);
        let left: Vec<i64> = rows.rows.lock().unwrap().iter().map(|r| r.0).collect();
        assert_eq!(left, [1, 2, 4, 6, 7, 8, 9, 10]);
    }

    #[tokio::test]
    async fn near_the_deadline_the_message_is_handed_back_and_reports_no_kept_yet() {
        let rows = carts();
        let payload = serde_json::json!({ "sweep": "filled-carts", "lo": 1, "hi": 10, "candidates": 10 });
        let spent = Deadline::after(std::time::Duration::from_secs(10), std::time::Duration::from_secs(15));
        let report = work(&cleanup(rows.clone(), 2), payload, spent).await.unwrap();
        assert!(report.retry.as_deref().is_some_and(|r| r.contains("deadline")), "{report:?}");
        assert_eq!((report.sent, report.skipped_total()), (0, 0));
        assert_eq!(rows.rows.lock().unwrap().len(), 10);
    }

    #[tokio::test]
    async fn a_malformed_message_is_permanent_and_says_why() {
        let rows = carts();
        let task = cleanup(rows.clone(), 2);
        for (payload, why) in [
            (serde_json::json!({ "sweep": "audit-logs", "lo": 1, "hi": 2, "candidates": 1 }), "not one of this task's"),
            (serde_json::json!({ "sweep": "sessions", "lo": 1, "hi": 2, "candidates": 1 }), "not one of this task's"),
            (serde_json::json!({ "sweep": "empty-carts", "lo": 5, "hi": 2, "candidates": 1 }), "lo 5 is above hi 2"),
            (serde_json::json!({ "sweep": "empty-carts", "lo": -5, "hi": 2, "candidates": 1 }), "negative"),
            (serde_json::json!({ "sweep": "empty-carts", "lo": 1, "hi": 2, "candidates": -1 }), "negative"),
            (
                serde_json::json!({ "sweep": "empty-carts", "lo": 1, "hi": 2, "candidates": 1, "cutoff": "2030-01-01" }),
                "unknown field",
            ),
            (serde_json::json!({ "sweep": "empty-carts", "lo": 1 }), "missing field"),
        ] {
            match work(&task, payload.clone(), roomy()).await {
                Err(Error::Permanent(reason)) => assert!(reason.contains(why), "{payload}: {reason}"),
                other => panic!("{payload}: {other:?}"),
            }
        }
        assert_eq!(rows.rows.lock().unwrap().len(), 10, "nothing deleted");
    }

    #[test]
    fn each_task_has_its_sweeps_and_its_age() {
        let rows: Arc<dyn Sweeper> = carts();
        let ages = Ages { cart_days: 7, audit_log_days: 365, session_idle_days: 14 };
        let hours: Vec<(&str, i64)> = NAMES
            .iter()
            .map(|name| (*name, Cleanup::new(name, rows.clone(), &ages).unwrap().max_age.num_hours()))
            .collect();
        assert_eq!(
            hours,
            [
                (CART_CLEANUP, 7 * 24),
                (TOKEN_CLEANUP, 0),
                (AUDIT_LOG_RETENTION, 365 * 24),
                (SESSION_CLEANUP, 14 * 24),
                (TEMP_DATA_CLEANUP, 24)
            ]
        );
        let carts = Cleanup::new(CART_CLEANUP, rows.clone(), &ages).unwrap();
        assert_eq!(carts.sweeps, [Sweep::EmptyCarts, Sweep::FilledCarts], "empty carts first");
        assert!(Cleanup::new("daily-summary", rows, &ages).is_none());
    }
}
