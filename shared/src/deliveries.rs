//! At-most-once side effects on top of the delivery ledger: claim every key of a chunk in one go, perform only
//! what this caller won, and settle each outcome as soon as it is known (a few at a time), so that a deadline
//! or a crash never strands many performed-but-unrecorded keys. Nothing starts within the deadline's margin,
//! nor after the sender or the account was refused: the unstarted keys are handed back for a retry.

use futures::{stream, StreamExt};
use std::{
    collections::HashMap,
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use crate::{
    limits::{Breaker, Deadline, Pace},
    ports::{ClaimState, DeliveryKey, Ledger, RunPart, Settled, Settlement},
    time::Clock,
    Error, Result,
};

/// Outcomes are recorded in groups of at most this many, and none waits longer than `SETTLE_EVERY`: a crash
/// strands at most a group's worth of performed-but-unrecorded keys, while a fast provider does not cost a
/// ledger transaction per send.
const SETTLE_GROUP: usize = 50;
const SETTLE_EVERY: Duration = Duration::from_millis(200);
/// Tries at recording a group of outcomes (50 ms, 200 ms, 800 ms apart) before the message is handed back.
const SETTLE_TRIES: u32 = 4;

/// How a chunk's deliveries went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryTally {
    /// Performed now.
    pub sent: u64,
    /// Keys performed before (a redelivery, a re-run): skipped, not performed again.
    pub already_done: u64,
    /// Keys that failed for good before: skipped, not tried again.
    pub failed_before: u64,
    /// Keys that failed for good now.
    pub failed: u64,
    pub errors: Vec<String>,
    /// Set when something is left to retry: a retryable failure, a key another worker holds, or keys not
    /// started because the deadline was near or sends were stopped.
    pub retry: Option<String>,
}

pub struct Deliveries<'a> {
    pub ledger: &'a dyn Ledger,
    pub clock: &'a dyn Clock,
    pub task: &'a str,
    /// The run message these deliveries are for: the ledger counts them there as it records them.
    pub run: RunPart,
    /// How long a claim holds before another worker may take it over: past the invocation's deadline, so a
    /// live worker's claim never expires under it.
    pub hold: Duration,
    /// Side effects in flight at once.
    pub concurrency: usize,
    pub deadline: Deadline,
    pub pace: &'a Pace,
    pub breaker: &'a Breaker,
}

impl Deliveries<'_> {
    pub async fn deliver<T, F, Fut>(&self, items: Vec<(DeliveryKey, T)>, perform: F) -> Result<DeliveryTally>
    where
        F: Fn(T) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let mut tally = DeliveryTally::default();
        if items.is_empty() {
            return Ok(tally);
        }
        let keys: Vec<DeliveryKey> = items.iter().map(|(k, _)| k.clone()).collect();
        let states = self.ledger.claim(self.task, &keys, self.clock.now(), self.hold).await?;
        let mut won = HashMap::new();
        for (key, state) in states {
            match state {
                ClaimState::Won(attempt) => {
                    won.insert(key, attempt);
                }
                ClaimState::Done => tally.already_done += 1,
                ClaimState::Failed => tally.failed_before += 1,
                ClaimState::Busy => {
                    tally.retry = Some(format!("{} is being delivered by another worker", key.subject));
                }
            }
        }
        let won: Vec<(DeliveryKey, u32, T)> =
            items.into_iter().filter_map(|(key, item)| won.remove(&key).map(|attempt| (key, attempt, item))).collect();
        // Set when the ledger cannot record an outcome: nothing more starts whose outcome could not be kept.
        let ledger_down = AtomicBool::new(false);
        let mut outcomes = stream::iter(won)
            .map(|(key, attempt, item)| {
                // Built now, run only if the gates let it start: an unpolled future performs nothing.
                let perform = perform(item);
                let ledger_down = &ledger_down;
                async move {
                    let settlement = match self.gate(ledger_down) {
                        Some(held_back) => Settlement::Retry(held_back),
                        None => {
                            self.pace.wait().await;
                            match self.gate(ledger_down) {
                                Some(held_back) => Settlement::Retry(held_back),
                                None => match perform.await {
                                    Ok(()) => Settlement::Done,
                                    Err(Error::Retryable(e)) => Settlement::Retry(e),
                                    Err(Error::Sender(e)) => {
                                        self.breaker.trip(&e);
                                        Settlement::Retry(e)
                                    }
                                    Err(Error::Permanent(e)) => Settlement::Failed(e),
                                },
                            }
                        }
                    };
                    Settled { key, attempt, settlement }
                }
            })
            .buffer_unordered(self.concurrency.max(1));
        let mut unrecorded = None;
        let mut group: Vec<Settled> = Vec::with_capacity(SETTLE_GROUP);
        let mut settle_by = None;
        loop {
            let finished = match settle_by {
                Some(at) => tokio::select! {
                    next = outcomes.next() => next.map(Some),
                    () = tokio::time::sleep_until(at) => Some(None),
                },
                None => outcomes.next().await.map(Some),
            };
            let last = finished.is_none();
            if let Some(Some(outcome)) = finished {
                group.push(outcome);
                settle_by.get_or_insert_with(|| tokio::time::Instant::now() + SETTLE_EVERY);
                if group.len() < SETTLE_GROUP {
                    continue;
                }
            }
            // The group is full, its oldest outcome has waited long enough, or every outcome is in.
            settle_by = None;
            if group.is_empty() {
                if last {
                    break;
                }
                continue;
            }
            let group = std::mem::take(&mut group);
            for Settled { key, settlement, .. } in &group {
                match settlement {
                    Settlement::Done => tally.sent += 1,
                    Settlement::Retry(e) => tally.retry = Some(format!("{}: {e}", key.subject)),
                    Settlement::Failed(e) => {
                        tally.failed += 1;
                        tally.errors.push(format!("{}: {e}", key.subject));
                    }
                }
            }
            match self.settle(&group).await {
                Ok(settled) if settled < group.len() as u64 => tracing::error!(
                    task = self.task,
                    lost = group.len() as u64 - settled,
                    "claims expired before their outcome was recorded: another worker may repeat them"
                ),
                Ok(_) => {}
                Err(e) => {
                    ledger_down.store(true, Ordering::SeqCst);
                    unrecorded = Some(e);
                }
            }
            if last {
                break;
            }
        }
        match unrecorded {
            // The performed keys stay claimed until their hold ends; the message comes back for the rest.
            Some(e) => Err(e),
            None => Ok(tally),
        }
    }

    /// Records performed side effects, trying again a few times on a retryable failure (a deadlock, a lost
    /// connection, a failover): an outcome left unrecorded would be performed again once its claim expires.
    async fn settle(&self, group: &[Settled]) -> Result<u64> {
        let mut pause = Duration::from_millis(50);
        for _ in 1..SETTLE_TRIES {
            match self.ledger.settle(self.task, self.run, group, self.clock.now()).await {
                Err(e) if e.is_retryable() && self.deadline.remaining() > pause => {
                    tracing::warn!(task = self.task, error = %e, "recording deliveries failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 4;
                }
                settled => return settled,
            }
        }
        self.ledger.settle(self.task, self.run, group, self.clock.now()).await
    }

    /// Why a side effect must not start now, if it must not.
    fn gate(&self, ledger_down: &AtomicBool) -> Option<String> {
        if ledger_down.load(Ordering::SeqCst) {
            return Some("not started: the ledger could not record outcomes".to_owned());
        }
        self.held_back()
    }

    /// Why nothing may start now, if nothing may: sends were stopped after the sender was refused, or the
    /// invocation's deadline is too near. For tasks whose side effects are not deliveries (a charge).
    pub fn held_back(&self) -> Option<String> {
        if let Some(reason) = self.breaker.tripped() {
            return Some(format!("not started: sends stopped after the sender was refused ({reason})"));
        }
        if !self.deadline.allows_start() {
            let left = self.deadline.remaining().as_secs_f64();
            return Some(format!("not started: {left:.1} s left before the invocation's deadline"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{memory::MemoryLedger, time::VirtualClock};
    use std::sync::Mutex;

    const HOLD: Duration = Duration::from_secs(300);

    fn key(n: u32) -> DeliveryKey {
        DeliveryKey { subject: format!("user:{n}"), period: "2026-11-22".into() }
    }

    fn items(ns: &[u32]) -> Vec<(DeliveryKey, u32)> {
        ns.iter().map(|&n| (key(n), n)).collect()
    }

    struct Fixture {
        ledger: MemoryLedger,
        clock: VirtualClock,
        pace: Pace,
        breaker: Breaker,
        performed: Mutex<Vec<u32>>,
        /// How long each side effect takes (tokio time: tests run it paused).
        latency: Duration,
        concurrency: usize,
    }

    impl Fixture {
        fn new() -> Self {
            let clock = VirtualClock::new("2026-11-23T06:00:00Z".parse().unwrap());
            Self {
                ledger: MemoryLedger::default(),
                clock,
                pace: Pace::new(None),
                breaker: Breaker::default(),
                performed: Mutex::new(vec![]),
                latency: Duration::ZERO,
                concurrency: 4,
            }
        }

        fn deliveries(&self, deadline: Deadline) -> Deliveries<'_> {
            Deliveries {
                ledger: &self.ledger,
                clock: &self.clock,
                task: "t",
                run: RunPart { slot: self.clock.now(), part: 0 },
                hold: HOLD,
                concurrency: self.concurrency,
                deadline,
                pace: &self.pace,
                breaker: &self.breaker,
            }
        }

        /// Delivers before a distant deadline, failing `retryable` retryably and `permanent` for good.
        async fn run(&self, ns: &[u32], retryable: &[u32], permanent: &[u32]) -> DeliveryTally {
            self.run_until(ns, retryable, permanent, Deadline::after(Duration::from_secs(3600), Duration::ZERO))
                .await
                .unwrap()
        }

        async fn run_until(
            &self,
            ns: &[u32],
            retryable: &[u32],
            permanent: &[u32],
            deadline: Deadline,
        ) -> Result<DeliveryTally> {
            self.deliveries(deadline)
                .deliver(items(ns), |n| async move {
                    tokio::time::sleep(self.latency).await;
                    if retryable.contains(&n) {
                        return Err(Error::retryable("throttled"));
                    }
                    if permanent.contains(&n) {
                        return Err(Error::permanent("address rejected"));
                    }
                    if n == 666 {
                        return Err(Error::sender("AccountSendingPaused: sending is paused for this account"));
                    }
                    self.performed.lock().unwrap().push(n);
                    Ok(())
                })
                .await
        }

        fn performed(&self) -> Vec<u32> {
            let mut p = self.performed.lock().unwrap().clone();
            p.sort();
            p
        }
    }

    #[tokio::test]
    async fn a_redelivered_chunk_performs_nothing_twice() {
        let f = Fixture::new();
        let first = f.run(&[1, 2, 3], &[], &[]).await;
        assert_eq!((first.sent, first.already_done, first.retry.as_deref()), (3, 0, None));
        let again = f.run(&[1, 2, 3], &[], &[]).await;
        assert_eq!((again.sent, again.already_done), (0, 3));
        assert_eq!(f.performed(), vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn a_retryable_failure_asks_for_a_retry_that_performs_only_what_is_left() {
        let f = Fixture::new();
        let first = f.run(&[1, 2, 3], &[2], &[]).await;
        assert_eq!(first.sent, 2);
        assert!(first.retry.as_deref().unwrap().contains("user:2"));
        let retry = f.run(&[1, 2, 3], &[], &[]).await;
        assert_eq!((retry.sent, retry.already_done, retry.retry), (1, 2, None));
        assert_eq!(f.performed(), vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn a_permanent_failure_is_recorded_once_and_never_retried() {
        let f = Fixture::new();
        let first = f.run(&[1, 2], &[], &[2]).await;
        assert_eq!((first.sent, first.failed, first.retry.clone()), (1, 1, None));
        assert_eq!(first.errors, vec!["user:2: address rejected".to_owned()]);
        let again = f.run(&[1, 2], &[], &[]).await;
        assert_eq!((again.sent, again.failed, again.failed_before, again.already_done), (0, 0, 1, 1));
        assert_eq!(f.performed(), vec![1]);
    }

    #[tokio::test]
    async fn a_key_held_by_another_worker_is_left_to_it_until_its_claim_expires() {
        let f = Fixture::new();
        f.ledger.claim("t", &[key(1)], f.clock.now(), HOLD).await.unwrap();
        let busy = f.run(&[1, 2], &[], &[]).await;
        assert_eq!(busy.sent, 1);
        assert!(busy.retry.is_some(), "the message must come back for the held key");
        f.clock.advance(chrono::Duration::minutes(6));
        let after = f.run(&[1, 2], &[], &[]).await;
        assert_eq!((after.sent, after.already_done, after.retry), (1, 1, None));
        assert_eq!(f.performed(), vec![1, 2]);
    }

    /// Ten sends of a second each, one at a time, with 6.5 s before the deadline and a 2 s margin: the first
    /// five start, the rest are handed back unstarted and claimable at once.
    #[tokio::test(start_paused = true)]
    async fn nothing_starts_within_the_deadlines_margin_and_the_rest_is_handed_back() {
        let f = Fixture { latency: Duration::from_secs(1), concurrency: 1, ..Fixture::new() };
        let all: Vec<u32> = (1..=10).collect();
        let deadline = Deadline::after(Duration::from_millis(6_500), Duration::from_secs(2));
        let cut = f.run_until(&all, &[], &[], deadline).await.unwrap();
        assert_eq!(cut.sent, 5);
        assert!(cut.retry.as_deref().unwrap().contains("deadline"), "{:?}", cut.retry);
        // The retry comes before the claim hold ends: the unstarted keys are free, the sent ones done.
        let retry = f.run(&all, &[], &[]).await;
        assert_eq!((retry.sent, retry.already_done, retry.retry), (5, 5, None));
        assert_eq!(f.performed(), all);
    }

    /// The process killed mid-chunk (the future dropped, as when Lambda stops at its deadline): every send that
    /// returned was recorded when it returned, so the redelivery after the claim hold repeats none of them.
    #[tokio::test(start_paused = true)]
    async fn a_worker_killed_mid_chunk_left_every_finished_send_recorded() {
        let f = Fixture { latency: Duration::from_secs(1), concurrency: 2, ..Fixture::new() };
        let all: Vec<u32> = (1..=10).collect();
        let no_deadline = Deadline::after(Duration::from_secs(3600), Duration::ZERO);
        let killed = tokio::time::timeout(Duration::from_millis(3_500), f.run_until(&all, &[], &[], no_deadline)).await;
        assert!(killed.is_err(), "the chunk was cut short");
        assert_eq!(f.performed().len(), 6, "three rounds of two finished before the kill");
        f.clock.advance(chrono::Duration::from_std(HOLD).unwrap() + chrono::Duration::seconds(1));
        let redelivered = f.run(&all, &[], &[]).await;
        assert_eq!((redelivered.sent, redelivered.already_done), (4, 6));
        assert_eq!(f.performed(), all, "each key performed exactly once");
    }

    #[tokio::test]
    async fn a_refused_sender_stops_every_further_send_and_leaves_the_keys_claimable() {
        let f = Fixture { concurrency: 1, ..Fixture::new() };
        let tally = f.run(&[1, 666, 2, 3], &[], &[]).await;
        assert_eq!((tally.sent, tally.failed), (1, 0), "nothing after the refusal starts, nothing fails for good");
        assert!(f.breaker.tripped().unwrap().contains("AccountSendingPaused"));
        assert!(tally.retry.is_some());
        // After the fix (a new invocation, a new breaker), the redrive sends what is left.
        let fixed = Fixture { ledger: f.ledger, ..Fixture::new() };
        let redrive = fixed.run(&[1, 2, 3], &[], &[]).await;
        assert_eq!((redrive.sent, redrive.already_done), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn sends_are_paced_to_the_rate() {
        let f = Fixture { pace: Pace::new(Some(4.0)), concurrency: 8, ..Fixture::new() };
        let start = tokio::time::Instant::now();
        let tally = f.run(&(1..=9).collect::<Vec<_>>(), &[], &[]).await;
        assert_eq!(tally.sent, 9);
        assert_eq!(start.elapsed(), Duration::from_secs(2), "nine starts at four a second take two seconds");
    }

    /// Fails the first settlements retryably, as a deadlock or a failover would.
    struct Stumbling {
        inner: MemoryLedger,
        failures: std::sync::atomic::AtomicU32,
    }

    #[async_trait::async_trait]
    impl Ledger for Stumbling {
        async fn claim(
            &self,
            task: &str,
            keys: &[DeliveryKey],
            now: chrono::DateTime<chrono::Utc>,
            hold: Duration,
        ) -> Result<Vec<(DeliveryKey, ClaimState)>> {
            self.inner.claim(task, keys, now, hold).await
        }

        async fn settle(
            &self,
            task: &str,
            run: RunPart,
            outcomes: &[Settled],
            now: chrono::DateTime<chrono::Utc>,
        ) -> Result<u64> {
            let left = self.failures.load(Ordering::SeqCst);
            if left > 0 {
                self.failures.store(left - 1, Ordering::SeqCst);
                return Err(Error::retryable("deadlock detected (40P01)"));
            }
            self.inner.settle(task, run, outcomes, now).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_settlement_that_fails_for_a_moment_is_tried_again_so_nothing_is_sent_twice() {
        let f = Fixture::new();
        let ledger = Stumbling { inner: MemoryLedger::default(), failures: 2.into() };
        let deliveries =
            Deliveries { ledger: &ledger, ..f.deliveries(Deadline::after(Duration::from_secs(60), Duration::ZERO)) };
        let send = |n: u32| {
            let performed = &f.performed;
            async move {
                performed.lock().unwrap().push(n);
                Ok(())
            }
        };
        let tally = deliveries.deliver(items(&[1, 2, 3]), send).await.unwrap();
        assert_eq!(tally.sent, 3);
        // Long after every claim's hold: all three are done, none is sent again.
        f.clock.advance(chrono::Duration::hours(1));
        let again = deliveries.deliver(items(&[1, 2, 3]), send).await.unwrap();
        assert_eq!((again.sent, again.already_done), (0, 3));
        assert_eq!(f.performed(), vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn a_settlement_only_applies_to_the_claim_it_holds() {
        let f = Fixture::new();
        let first = f.ledger.claim("t", &[key(1)], f.clock.now(), HOLD).await.unwrap();
        let ClaimState::Won(stale) = first[0].1 else { panic!("{first:?}") };
        f.clock.advance(chrono::Duration::minutes(6));
        let second = f.ledger.claim("t", &[key(1)], f.clock.now(), HOLD).await.unwrap();
        let ClaimState::Won(current) = second[0].1 else { panic!("{second:?}") };
        let late = Settled { key: key(1), attempt: stale, settlement: Settlement::Retry("late".into()) };
        let run = RunPart { slot: f.clock.now(), part: 0 };
        assert_eq!(f.ledger.settle("t", run, &[late], f.clock.now()).await.unwrap(), 0, "the expired claim is fenced");
        let done = Settled { key: key(1), attempt: current, settlement: Settlement::Done };
        assert_eq!(f.ledger.settle("t", run, &[done], f.clock.now()).await.unwrap(), 1);
        let third = f.ledger.claim("t", &[key(1)], f.clock.now(), HOLD).await.unwrap();
        assert_eq!(third[0].1, ClaimState::Done);
    }
}
