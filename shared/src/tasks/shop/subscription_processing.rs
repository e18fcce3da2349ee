//! subscription-processing: daily at 00:00 UTC, turns each due subscription into an order and charges it,
//! exactly once whatever crashes, redeliveries and concurrent workers do.
//!
//! # The states of one delivery, and why each is safe
//!
//! Working a subscription is a loop of `ShopStore::next_step` (one transaction under the subscription's row
//! lock) and, when it returns a charge, the gateway call and `ShopStore::settle_charge` (a second
//! transaction). Between any two of these the process may die; the message then comes back and the loop starts
//! again from whatever the store holds:
//!
//! 1. **Nothing written.** The subscription is active and due. `next_step` creates the order (unique per
//!    subscription and delivery date), takes the stock (a conditional update: never below zero), writes a
//!    pending payment with its idempotency key `order-<id>-attempt-1`, and advances `next_delivery_date`, all
//!    in one transaction: either all of it happened or none.
//! 2. **Order and pending payment committed, gateway not asked (or asked, its answer lost).** `next_step`
//!    finds the pending payment first, before anything else, and returns it: the charge is asked again with
//!    the *same* key, which the gateway charges at most once and answers with its first answer. The
//!    subscription is no longer due (its date moved on), so no second order can be made.
//! 3. **Charged, not recorded.** As 2: the same key returns the recorded charge, which is then settled.
//! 4. **Settled, events not published.** The order's events (OrderPlaced, PaymentFailed…) were written in the
//!    settling transaction, to the `order_events` outbox; the chunk publishes every unpublished event of its
//!    subscriptions, then marks them published. A crash between the two publishes an event twice, and the
//!    order notifications deliver once per (order, event, channel) anyway.
//! 5. **Everything done.** `next_step` finds nothing due and nothing pending: a redelivery changes nothing.
//!
//! Two workers on the same subscription: the row lock orders their `next_step`s; the second finds the first's
//! pending payment claimed (`claimed_until`) and comes back later, so one worker asks the gateway at a time,
//! and should a claim expire under a slow worker, the same key still charges once. `settle_charge` settles
//! only a payment still pending, and the store refuses a second successful payment of an order.
//!
//! A pause or cancel committed before `next_step` takes the lock wins: no order. A declined charge is
//! retried 1, 3 and 5 days after its first decline (`DUNNING_DAYS`), each attempt its own key, then the
//! subscription is paused and the order's stock returned. An out-of-stock delivery waits up to
//! `STOCK_WAIT_DAYS` days (no order, no charge), then is skipped with a notice and the subscription moves to
//! its next date.

use async_trait::async_trait;
use chrono::{Duration, NaiveDate};
use futures::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::{collections::HashMap, sync::Arc};

use crate::{
    deliveries::Deliveries,
    ports::{ChargeOutcome, OrderEvents, Payments, PendingCharge, ShopStore, Step},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    time::Slot,
    Error, Result,
};

pub const NAME: &str = "subscription-processing";

/// Steps one subscription may take in one message: a pending charge, then a due delivery (or a skip, then
/// the delivery after it). More means the store keeps answering the same thing: a bug, reported.
const MAX_STEPS: usize = 6;

pub struct SubscriptionProcessing {
    pub shop: Arc<dyn ShopStore>,
    pub payments: Arc<dyn Payments>,
    pub events: Arc<dyn OrderEvents>,
    /// Subscriptions per queued message.
    pub chunk_size: u32,
    /// Subscriptions of a message worked at once: the gateway's latency is what they overlap.
    pub concurrency: usize,
}

/// The body of one planned message: the subscriptions to work on the slot's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    pub subscriptions: Vec<i64>,
}

#[async_trait]
impl Task for SubscriptionProcessing {
    fn name(&self) -> &'static str {
        NAME
    }

    fn granularity(&self) -> Duration {
        Duration::days(1)
    }

    /// A day's plan takes every subscription due on or before it, and every dunning retry due by then: the
    /// latest missed day covers the ones before it.
    fn catch_up(&self) -> CatchUp {
        CatchUp::Latest
    }

    fn overlap(&self) -> Overlap {
        Overlap::Wait(std::time::Duration::from_secs(20))
    }

    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        let day = slot.time().date_naive();
        let mut after = 0;
        loop {
            let subscriptions = self.shop.subscriptions_due(day, after, self.chunk_size).await?;
            let Some(&last) = subscriptions.last() else { return Ok(()) };
            after = last;
            let count = subscriptions.len() as u64;
            let chunk = serde_json::to_value(Chunk { subscriptions }).expect("a chunk serialises");
            fanout.push(chunk, count).await?;
        }
    }

    async fn work(&self, slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let chunk: Chunk = serde_json::from_value(payload)
            .map_err(|e| Error::permanent(format!("{NAME}: a message that is not a chunk of subscriptions: {e}")))?;
        let day = slot.time().date_naive();
        // The plainly due ones start together, in one transaction; each then goes on alone from its charge.
        let mut started: HashMap<i64, PendingCharge> = match deliveries.held_back() {
            Some(_) => HashMap::new(),
            None => {
                let now = deliveries.clock.now();
                self.shop.start_due(&chunk.subscriptions, day, now, deliveries.hold).await?.into_iter().collect()
            }
        };
        let work: Vec<(i64, Option<PendingCharge>)> =
            chunk.subscriptions.iter().map(|&subscription| (subscription, started.remove(&subscription))).collect();
        let worked: Vec<(i64, Result<WorkReport>)> = stream::iter(work)
            .map(|(subscription, charge)| async move {
                (subscription, self.subscription(subscription, charge, day, deliveries).await)
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        let mut report = WorkReport::default();
        let mut failure = None;
        for (subscription, outcome) in worked {
            match outcome {
                Ok(one) => {
                    report.merge(&one);
                    if one.retry.is_some() {
                        report.retry = one.retry;
                    }
                }
                // Something about this subscription's rows: recorded, and the rest of the chunk goes on.
                Err(Error::Permanent(e)) => {
                    report.skip("cannot be processed", 1);
                    report.errors.push(format!("subscription {subscription}: {e}"));
                }
                // The store failed: the message comes back, and every step is safe to take again.
                Err(e) => failure = Some(e),
            }
        }
        // Whatever happened to the charges, the events they wrote go out (those of earlier deliveries too).
        self.publish(&chunk.subscriptions, deliveries).await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}

impl SubscriptionProcessing {
    /// Takes one subscription as far as it goes on `day`, from `started` if its charge was started already.
    async fn subscription(
        &self,
        subscription: i64,
        mut started: Option<PendingCharge>,
        day: NaiveDate,
        deliveries: &Deliveries<'_>,
    ) -> Result<WorkReport> {
        let mut report = WorkReport::default();
        for step in 0..MAX_STEPS {
            if let Some(reason) = deliveries.held_back() {
                if let Some(charge) = &started {
                    self.shop.release_charge(charge).await?;
                }
                report.retry = Some(format!("subscription {subscription}: {reason}"));
                return Ok(report);
            }
            let now = deliveries.clock.now();
            let next = match started.take() {
                Some(charge) => Step::Charge(charge),
                None => self.shop.next_step(subscription, day, now, deliveries.hold).await?,
            };
            match next {
                Step::Charge(charge) => {
                    let outcome = match self.payments.charge(&charge.request).await {
                        Ok(outcome) => outcome,
                        Err(Error::Permanent(e)) => ChargeOutcome::Declined { reason: format!("refused: {e}") },
                        Err(e) => {
                            // Charged or not, nobody knows: the same key is asked again on the retry.
                            if let Err(release) = self.shop.release_charge(&charge).await {
                                tracing::warn!(subscription, error = %release, "could not release a charge's claim");
                            }
                            if let Error::Sender(reason) = &e {
                                deliveries.breaker.trip(reason);
                            }
                            report.retry = Some(format!("subscription {subscription}: the gateway: {e}"));
                            return Ok(report);
                        }
                    };
                    let now = deliveries.clock.now();
                    self.shop.settle_charge(NAME, deliveries.run, &charge, &outcome, day, now).await?;
                    match &outcome {
                        ChargeOutcome::Charged { .. } => report.sent += 1,
                        ChargeOutcome::Declined { reason } => {
                            report.failed += 1;
                            tracing::info!(subscription, order = charge.order_id, attempt = charge.attempt, %reason,
                                "charge declined");
                        }
                    }
                    if !charge.more_due {
                        return Ok(report);
                    }
                }
                Step::Busy => {
                    report.retry = Some(format!("subscription {subscription} is being charged by another worker"));
                    return Ok(report);
                }
                Step::OutOfStock => {
                    report.skip("out of stock: the delivery waits", 1);
                    return Ok(report);
                }
                Step::Changed(what) => report.skip(what, 1),
                Step::Done => {
                    if step == 0 {
                        report.already_done += 1;
                    }
                    return Ok(report);
                }
                Step::Nothing(why) => {
                    // After a charge or a change, nothing more is the normal end; first thing, it is why.
                    if step == 0 {
                        report.skip(why, 1);
                    }
                    return Ok(report);
                }
                Step::Invalid(reason) => {
                    report.skip("cannot be processed", 1);
                    report.errors.push(format!("subscription {subscription}: {reason}"));
                    return Ok(report);
                }
            }
        }
        Err(Error::permanent(format!("still had work after {MAX_STEPS} steps on {day}; left for the next day")))
    }

    /// Publishes the subscriptions' unpublished order events, then marks them published.
    async fn publish(&self, subscriptions: &[i64], deliveries: &Deliveries<'_>) -> Result<()> {
        let events = self.shop.unpublished(subscriptions).await?;
        if events.is_empty() {
            return Ok(());
        }
        self.events.publish(&events).await?;
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        self.shop.mark_published(&ids, deliveries.clock.now()).await
    }
}
