//! At-most-once side effects on top of the delivery ledger: claim every key of a chunk in one go, perform
//! only what this caller won, settle the outcomes in one go. A redelivered message finds its keys done.

use futures::{stream, StreamExt};
use std::{future::Future, time::Duration};

use crate::{
    ports::{ClaimState, DeliveryKey, Ledger, Settlement},
    time::Clock,
    Error, Result,
};

/// How a chunk's deliveries went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryTally {
    pub sent: u64,
    /// Keys delivered before (a redelivery, a re-run): skipped, not sent again.
    pub already_done: u64,
    /// Keys that failed for good, now or before.
    pub failed: u64,
    pub errors: Vec<String>,
    /// Set when something is left to retry: a retryable failure, or a key another worker holds.
    pub retry: Option<String>,
}

pub struct Deliveries<'a> {
    pub ledger: &'a dyn Ledger,
    pub clock: &'a dyn Clock,
    pub task: &'a str,
    /// How long a claim holds before another worker may take it over.
    pub hold: Duration,
    /// Side effects in flight at once.
    pub concurrency: usize,
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
        let mut won = std::collections::HashSet::new();
        for (key, state) in states {
            match state {
                ClaimState::Won => {
                    won.insert(key);
                }
                ClaimState::Done => tally.already_done += 1,
                ClaimState::Failed => tally.failed += 1,
                ClaimState::Busy => {
                    tally.retry = Some(format!("{} is being delivered by another worker", key.subject));
                }
            }
        }
        let outcomes: Vec<(DeliveryKey, Settlement)> = stream::iter(items.into_iter().filter(|(k, _)| won.contains(k)))
            .map(|(key, item)| {
                let fut = perform(item);
                async move {
                    let settlement = match fut.await {
                        Ok(()) => Settlement::Done,
                        Err(Error::Retryable(e) | Error::Sender(e)) => Settlement::Retry(e),
                        Err(Error::Permanent(e)) => Settlement::Failed(e),
                    };
                    (key, settlement)
                }
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        for (key, settlement) in &outcomes {
            match settlement {
                Settlement::Done => tally.sent += 1,
                Settlement::Retry(e) => tally.retry = Some(format!("{}: {e}", key.subject)),
                Settlement::Failed(e) => {
                    tally.failed += 1;
                    tally.errors.push(format!("{}: {e}", key.subject));
                }
            }
        }
        self.ledger.settle(self.task, &outcomes, self.clock.now()).await?;
        Ok(tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{memory::MemoryLedger, time::VirtualClock};
    use std::sync::Mutex;

    fn key(n: u32) -> DeliveryKey {
        DeliveryKey { subject: format!("user:{n}"), period: "2026-11-22".into() }
    }

    fn items(ns: &[u32]) -> Vec<(DeliveryKey, u32)> {
        ns.iter().map(|&n| (key(n), n)).collect()
    }

    struct Fixture {
        ledger: MemoryLedger,
        clock: VirtualClock,
        performed: Mutex<Vec<u32>>,
    }

    impl Fixture {
        fn new() -> Self {
            let clock = VirtualClock::new("2026-11-23T06:00:00Z".parse().unwrap());
            Self { ledger: MemoryLedger::default(), clock, performed: Mutex::new(vec![]) }
        }

        fn deliveries(&self) -> Deliveries<'_> {
            Deliveries {
                ledger: &self.ledger,
                clock: &self.clock,
                task: "t",
                hold: Duration::from_secs(300),
                concurrency: 4,
            }
        }

        /// Delivers, failing `retryable` retryably and `permanent` for good.
        async fn run(&self, ns: &[u32], retryable: &[u32], permanent: &[u32]) -> DeliveryTally {
            self.deliveries()
                .deliver(items(ns), |n| async move {
                    if retryable.contains(&n) {
                        return Err(Error::retryable("throttled"));
                    }
                    if permanent.contains(&n) {
                        return Err(Error::permanent("address rejected"));
                    }
                    self.performed.lock().unwrap().push(n);
                    Ok(())
                })
                .await
                .unwrap()
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
    async fn a_permanent_failure_is_recorded_and_never_retried() {
        let f = Fixture::new();
        let first = f.run(&[1, 2], &[], &[2]).await;
        assert_eq!((first.sent, first.failed, first.retry.clone()), (1, 1, None));
        assert_eq!(first.errors, vec!["user:2: address rejected".to_owned()]);
        let again = f.run(&[1, 2], &[], &[]).await;
        assert_eq!((again.sent, again.failed, again.already_done), (0, 1, 1));
        assert_eq!(f.performed(), vec![1]);
    }

    #[tokio::test]
    async fn a_key_held_by_another_worker_is_left_to_it_until_its_claim_expires() {
        let f = Fixture::new();
        f.ledger.claim("t", &[key(1)], f.clock.now(), Duration::from_secs(300)).await.unwrap();
        let busy = f.run(&[1, 2], &[], &[]).await;
        assert_eq!(busy.sent, 1);
        assert!(busy.retry.is_some(), "the message must come back for the held key");
        f.clock.advance(chrono::Duration::minutes(6));
        let after = f.run(&[1, 2], &[], &[]).await;
        assert_eq!((after.sent, after.already_done, after.retry), (1, 1, None));
        assert_eq!(f.performed(), vec![1, 2]);
    }
}
