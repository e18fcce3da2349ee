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
                        Err(Error::Retryable(e)) => Settlement::Retry(e),
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
