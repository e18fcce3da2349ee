//! Manual triggers through EventBridge: `jobs trigger` and `jobs backfill` put events that the task's rule in
//! template.yaml (source `jobs.manual`, detail-type `Manual Trigger`, `detail.task`) routes to its function,
//! so a manual run passes the same slot dedup and overlap rules as a scheduled one.

use aws_sdk_eventbridge::{types::PutEventsRequestEntry, Client};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::aws::{aws_error, failure};
use crate::{Error, Fault};

const SERVICE: &str = "eventbridge";
pub const SOURCE: &str = "jobs.manual";
pub const DETAIL_TYPE: &str = "Manual Trigger";
/// PutEvents takes at most ten entries a call.
const MAX_ENTRIES: usize = 10;

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
        for chunk in slots.chunks(MAX_ENTRIES) {
            let entries = chunk
                .iter()
                .map(|slot| {
                    let detail = serde_json::json!({
                        "task": task,
                        "scheduledTime": slot.to_rfc3339_opts(SecondsFormat::Secs, true),
                    });
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(DETAIL_TYPE)
                        .detail(detail.to_string())
                        .build()
                })
                .collect();
            let put =
                self.client.put_events().set_entries(Some(entries)).send().await.map_err(|e| aws_error(SERVICE, e))?;
            if put.failed_entry_count() > 0 {
                let refused: Vec<String> = put
                    .entries()
                    .iter()
                    .zip(chunk)
                    .filter(|(entry, _)| entry.error_code().is_some())
                    .map(|(entry, slot)| {
                        format!("{slot}: {} {}", entry.error_code().unwrap_or(""), entry.error_message().unwrap_or(""))
                    })
                    .collect();
                let message = format!("{} triggers refused: {}", refused.len(), refused.join("; "));
                return Err(failure(SERVICE, &message, Fault::Retryable));
            }
        }
        Ok(slots.len() as u64)
    }
}
