//! Recognises what invoked a task's function, by its shape: a scheduled trigger (EventBridge Scheduler
//! with its Input, a rule's event, a manual trigger through the bus, a console or CLI Input) or an SQS batch.

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{Error, Result};

/// Where a scheduled invocation came from: kept in logs and run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerSource {
    /// EventBridge Scheduler, with `scheduledTime` from `<aws.scheduler.scheduled-time>` in its Input.
    Scheduler,
    /// An EventBridge rule's event (`detail-type` "Scheduled Event" or any other), timed by the event.
    Rule,
    /// `jobs trigger` / `jobs backfill` through the bus, or a person at the console.
    Manual,
}

/// A request to plan one slot of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub time: DateTime<Utc>,
    pub source: TriggerSource,
    /// The task the trigger names, when it names one; a trigger for another task is refused.
    pub task: Option<String>,
}

#[derive(Debug)]
pub enum Invocation {
    Scheduled(Trigger),
    Batch(SqsEvent),
}

/// Tells the invocation's kind from its JSON, or says plainly why it can't.
pub fn recognise(event: Value) -> Result<Invocation> {
    let Value::Object(map) = &event else {
        return Err(unknown_shape(&event));
    };
    if map.contains_key("Records") {
        return serde_json::from_value(event)
            .map(Invocation::Batch)
            .map_err(|e| Error::permanent(format!("an SQS batch that does not parse: {e}")));
    }
    if map.contains_key("detail-type") {
        return bus_event(map).map(Invocation::Scheduled);
    }
    if map.contains_key("scheduledTime") {
        return input(map, TriggerSource::Scheduler).map(Invocation::Scheduled);
    }
    Err(unknown_shape(&event))
}

fn bus_event(map: &serde_json::Map<String, Value>) -> Result<Trigger> {
    // Scheduler's EventBridge target and some clients send `detail` as a JSON string, not an object.
    let detail = match map.get("detail") {
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Default::default()),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|e| Error::permanent(format!("event detail is a string that is not JSON: {e}")))?,
        Some(other) => other.clone(),
        None => Value::Object(Default::default()),
    };
    let source = match map.get("source").and_then(Value::as_str) {
        Some("jobs.manual") => TriggerSource::Manual,
        Some("aws.scheduler") => TriggerSource::Scheduler,
        _ => TriggerSource::Rule,
    };
    let detail = detail.as_object().cloned().unwrap_or_default();
    if detail.contains_key("scheduledTime") {
        return input(&detail, source);
    }
    let time = map
        .get("time")
        .ok_or_else(|| Error::permanent("an EventBridge event with neither detail.scheduledTime nor time"))?;
    Ok(Trigger { time: timestamp("time", time)?, source, task: task_name(&detail)? })
}

fn input(map: &serde_json::Map<String, Value>, default_source: TriggerSource) -> Result<Trigger> {
    let source = match map.get("source").and_then(Value::as_str) {
        Some("manual") | Some("jobs.manual") => TriggerSource::Manual,
        _ => default_source,
    };
    Ok(Trigger { time: timestamp("scheduledTime", &map["scheduledTime"])?, source, task: task_name(map)? })
}

fn task_name(map: &serde_json::Map<String, Value>) -> Result<Option<String>> {
    match map.get("task") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Error::permanent(format!("`task` must be a string, got {other}"))),
    }
}

fn timestamp(field: &str, value: &Value) -> Result<DateTime<Utc>> {
    let text =
        value.as_str().ok_or_else(|| Error::permanent(format!("`{field}` must be an RFC 3339 string, got {value}")))?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::permanent(format!("`{field}` is not an RFC 3339 time ({text:?}): {e}")))
}

fn unknown_shape(event: &Value) -> Error {
    let what = match event {
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).take(8).collect();
            format!("an object with keys {keys:?}")
        }
        other => format!("a JSON {}", json_kind(other)),
    };
    Error::permanent(format!(
        "unrecognised event: expected an SQS batch (Records), an EventBridge event (detail-type) \
         or a scheduled Input (scheduledTime), got {what}"
    ))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scheduled(event: Value) -> Trigger {
        match recognise(event).unwrap() {
            Invocation::Scheduled(t) => t,
            other => panic!("expected a trigger, got {other:?}"),
        }
    }

    #[test]
    fn scheduler_input_carries_the_scheduled_time() {
        let t = scheduled(serde_json::from_str(include_str!("../../events/scheduled.json")).unwrap());
        assert_eq!(t.time.to_rfc3339(), "2026-11-23T06:00:00+00:00");
        assert_eq!(t.source, TriggerSource::Scheduler);
        assert_eq!(t.task.as_deref(), Some("daily-summary"));
    }

    #[test]
    fn rule_event_is_timed_by_its_time() {
        let t = scheduled(json!({
            "version": "0", "id": "53dc4d37", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-03-08T07:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/daily"], "detail": {}
        }));
        assert_eq!(t.time.to_rfc3339(), "2026-03-08T07:00:00+00:00");
        assert_eq!(t.source, TriggerSource::Rule);
        assert_eq!(t.task, None);
    }

    #[test]
    fn manual_trigger_through_the_bus_names_its_task_and_time() {
        let t = scheduled(serde_json::from_str(include_str!("../../events/manual-trigger.json")).unwrap());
        assert_eq!(t.source, TriggerSource::Manual);
        assert_eq!(t.task.as_deref(), Some("daily-summary"));
        assert_eq!(t.time.to_rfc3339(), "2026-11-22T06:00:00+00:00");
    }

    #[test]
    fn detail_given_as_a_json_string_is_read() {
        let t = scheduled(json!({
            "detail-type": "Scheduled Event", "source": "aws.scheduler", "time": "2026-01-01T00:00:00Z",
            "detail": "{\"scheduledTime\":\"2026-01-01T05:00:00Z\",\"task\":\"daily-summary\"}"
        }));
        assert_eq!(t.time.to_rfc3339(), "2026-01-01T05:00:00+00:00");
        assert_eq!(t.source, TriggerSource::Scheduler);
    }

    #[test]
    fn sqs_batch_is_recognised() {
        let e = recognise(serde_json::from_str(include_str!("../../events/sqs-batch.json")).unwrap()).unwrap();
        let Invocation::Batch(batch) = e else { panic!("expected a batch") };
        assert_eq!(batch.records.len(), 2);
    }

    #[test]
    fn unknown_shapes_are_refused_with_what_was_seen() {
        let err = recognise(json!({"hello": "world"})).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("\"hello\""), "{err}");
        let err = recognise(json!([1, 2])).unwrap_err();
        assert!(err.to_string().contains("JSON array"), "{err}");
    }

    #[test]
    fn a_bad_time_names_the_field_and_the_value() {
        let err = recognise(json!({"scheduledTime": "tomorrow"})).unwrap_err();
        assert!(err.to_string().contains("scheduledTime") && err.to_string().contains("tomorrow"), "{err}");
    }
}
