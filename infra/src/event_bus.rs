//! EventBridge: manual triggers, and the shop's order events.
//!
//! `jobs trigger` and `jobs backfill` put events that the task's rule in template.yaml (source `jobs.manual`,
//! detail-type `Manual Trigger`, `detail.task`) routes to its function, so a manual run passes the same slot
//! dedup and overlap rules as a scheduled one. Order events (source `shop.orders`) go to the app's bus, whose
//! rule routes them to the order notifications' queue; without a bus, `QueueOrderEvents` puts them on that
//! queue itself, in the envelope EventBridge delivers.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::SecondsFormat;
use serde_json::{json, Value};
use shared::ports::{OrderEvent, OrderEvents, Queue, ORDER_EVENT_SOURCE};

pub const SOURCE: &str = "jobs.manual";
pub const DETAIL_TYPE: &str = "Manual Trigger";
/// PutEvents takes at most ten entries a call.
const MAX_ENTRIES: usize = 10;

/// An order event's `detail`: the order, the outbox row it came from, and when it happened.
pub fn order_detail(event: &OrderEvent) -> Value {
    json!({
        "orderId": event.order_id,
        "eventId": event.id,
        "at": event.at.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

#[cfg(feature = "event-bus")]
pub use bridge::EventBridgeBus;

/// The EventBridge client: only in the builds that put events (subscription-processing, `jobs`).
#[cfg(feature = "event-bus")]
mod bridge {
    use super::*;
    use aws_sdk_eventbridge::{types::PutEventsRequestEntry, Client};
    use chrono::{DateTime, Utc};

    use crate::aws::{aws_error, failure};
    use crate::{Error, Fault};

    const SERVICE: &str = "eventbridge";

    pub struct EventBridgeBus {
        client: Client,
        bus: String,
    }

    impl EventBridgeBus {
        pub fn new(client: Client, bus: impl Into<String>) -> Self {
            Self { client, bus: bus.into() }
        }

        /// Puts one trigger per slot; fails naming the entries EventBridge refused. Returns how many were put.
        pub async fn trigger(&self, task: &str, slots: &[DateTime<Utc>]) -> Result<u64, Error> {
            let events: Vec<(String, String, Value)> = slots
                .iter()
                .map(|slot| {
                    let detail =
                        json!({ "task": task, "scheduledTime": slot.to_rfc3339_opts(SecondsFormat::Secs, true) });
                    (slot.to_string(), DETAIL_TYPE.to_owned(), detail)
                })
                .collect();
            self.put(SOURCE, &events).await?;
            Ok(slots.len() as u64)
        }

        /// Puts `(name, detail-type, detail)` events of `source`, ten a call; fails naming (by `name`) the entries
        /// EventBridge refused.
        async fn put(&self, source: &str, events: &[(String, String, Value)]) -> Result<(), Error> {
            for chunk in events.chunks(MAX_ENTRIES) {
                let entries = chunk
                    .iter()
                    .map(|(_, detail_type, detail)| {
                        PutEventsRequestEntry::builder()
                            .event_bus_name(&self.bus)
                            .source(source)
                            .detail_type(detail_type)
                            .detail(detail.to_string())
                            .build()
                    })
                    .collect();
                let put = self
                    .client
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| aws_error(SERVICE, e))?;
                if put.failed_entry_count() > 0 {
                    let refused: Vec<String> = put
                        .entries()
                        .iter()
                        .zip(chunk)
                        .filter(|(entry, _)| entry.error_code().is_some())
                        .map(|(entry, (name, ..))| {
                            format!(
                                "{name}: {} {}",
                                entry.error_code().unwrap_or(""),
                                entry.error_message().unwrap_or("")
                            )
                        })
                        .collect();
                    let message = format!("{} events refused: {}", refused.len(), refused.join("; "));
                    return Err(failure(SERVICE, &message, Fault::Retryable));
                }
            }
            Ok(())
        }
    }

    #[async_trait]
    impl OrderEvents for EventBridgeBus {
        async fn publish(&self, events: &[OrderEvent]) -> shared::Result<()> {
            let events: Vec<(String, String, Value)> = events
                .iter()
                .map(|e| {
                    (format!("order {} {}", e.order_id, e.kind.as_str()), e.kind.as_str().to_owned(), order_detail(e))
                })
                .collect();
            Ok(self.put(ORDER_EVENT_SOURCE, &events).await?)
        }
    }
}

/// Order events straight onto the order notifications' queue, as the bus's rule would put them there: the
/// embedded backend's bus.
pub struct QueueOrderEvents {
    pub queue: Arc<dyn Queue>,
}

impl QueueOrderEvents {
    /// The event as EventBridge delivers it to an SQS target.
    pub fn envelope(event: &OrderEvent) -> Value {
        json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": event.kind.as_str(),
            "source": ORDER_EVENT_SOURCE,
            "account": "000000000000",
            "time": event.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "region": "local",
            "resources": [],
            "detail": order_detail(event),
        })
    }
}

#[async_trait]
impl OrderEvents for QueueOrderEvents {
    async fn publish(&self, events: &[OrderEvent]) -> shared::Result<()> {
        for chunk in events.chunks(MAX_ENTRIES) {
            let bodies: Vec<String> = chunk.iter().map(|e| Self::envelope(e).to_string()).collect();
            self.queue.send_batch(&bodies).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_bus_puts_events_in_the_shape_eventbridge_delivers() {
        let sample: Value = serde_json::from_str(include_str!("../../events/order-placed.json")).unwrap();
        let event = OrderEvent {
            id: 1,
            order_id: 1001,
            kind: shared::ports::OrderEventKind::OrderPlaced,
            at: "2026-12-01T00:00:04.812Z".parse().unwrap(),
        };
        let envelope = QueueOrderEvents::envelope(&event);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&envelope), keys(&sample));
        assert_eq!(envelope["detail"], sample["detail"]);
        assert_eq!((&envelope["source"], &envelope["detail-type"]), (&sample["source"], &sample["detail-type"]));
    }
}
