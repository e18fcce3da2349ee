//! CloudWatch metrics without an API call: lines in the embedded metric format (EMF) on standard output, which
//! Lambda's log agent turns into metrics of the namespace `Jobs` with the dimension `Task`. template.yaml's
//! alarms and dashboard read them. One line per plan and one per batch carry every count of it; a skip's reason
//! gets a line of its own, since a line holds one value per dimension.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::runtime::{BatchReport, MessageOutcome, PlanReport};

/// A line of `metrics` (name, value, CloudWatch unit) for `task`, and for each `(dimension, value)` of `more`.
pub fn line(task: &str, more: &[(&str, &str)], metrics: &[(&str, u64, &str)], timestamp_ms: i64) -> String {
    let mut dimensions = vec!["Task"];
    dimensions.extend(more.iter().map(|(name, _)| *name));
    let definitions: Vec<Value> = metrics.iter().map(|(name, _, unit)| json!({ "Name": name, "Unit": unit })).collect();
    let mut fields = Map::new();
    fields.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{ "Namespace": "Jobs", "Dimensions": [dimensions], "Metrics": definitions }],
        }),
    );
    fields.insert("Task".into(), task.into());
    for (name, value) in more {
        fields.insert((*name).into(), (*value).into());
    }
    for (name, value, _) in metrics {
        fields.insert((*name).into(), (*value).into());
    }
    Value::Object(fields).to_string()
}

/// A plan's line: the subjects it planned (its caught-up slots' too) and how long it took.
pub fn plan(report: &PlanReport, took: Duration, timestamp_ms: i64) -> Vec<String> {
    fn planned(report: &PlanReport) -> u64 {
        report.planned + report.caught_up.iter().map(planned).sum::<u64>()
    }
    let metrics = [("Planned", planned(report), "Count"), ("PlanDuration", took.as_millis() as u64, "Milliseconds")];
    vec![line(report.task, &[], &metrics, timestamp_ms)]
}

/// A batch's lines: its sends, failures for good (a failed on-demand request's too), skips, the messages put
/// back for a retry and those dead-lettered, how long it took; then its skips by reason.
pub fn batch(task: &str, report: &BatchReport, took: Duration, timestamp_ms: i64) -> Vec<String> {
    let totals = report.totals();
    let count =
        |matches: fn(&MessageOutcome) -> bool| report.messages.iter().filter(|(_, o)| matches(o)).count() as u64;
    let metrics = [
        ("Sent", totals.sent, "Count"),
        ("Failed", totals.failed + count(|o| matches!(o, MessageOutcome::Failed { .. })), "Count"),
        ("Skipped", totals.skipped.values().sum(), "Count"),
        ("Retried", count(|o| matches!(o, MessageOutcome::Retry { .. })), "Count"),
        ("DeadLettered", count(|o| matches!(o, MessageOutcome::DeadLettered { .. })), "Count"),
        ("BatchDuration", took.as_millis() as u64, "Milliseconds"),
    ];
    let mut lines = vec![line(task, &[], &metrics, timestamp_ms)];
    for (reason, skipped) in &totals.skipped {
        lines.push(line(task, &[("Reason", reason)], &[("Skipped", *skipped, "Count")], timestamp_ms));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{PlanStatus, WorkReport};
    use chrono::{TimeZone, Utc};

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn a_line_is_in_the_embedded_metric_format() {
        let line = parse(&line("daily-summary", &[], &[("SenderRefused", 1, "Count")], 42));
        assert_eq!(line["Task"], "daily-summary");
        assert_eq!(line["SenderRefused"], 1);
        let definition = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(definition["Namespace"], "Jobs");
        assert_eq!(definition["Dimensions"], json!([["Task"]]));
        assert_eq!(definition["Metrics"], json!([{ "Name": "SenderRefused", "Unit": "Count" }]));
        assert_eq!(line["_aws"]["Timestamp"], 42);
    }

    #[test]
    fn a_plan_counts_its_caught_up_slots() {
        let slot = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap();
        let report = |planned, caught_up| PlanReport {
            task: "daily-summary",
            slot,
            status: PlanStatus::Planned,
            planned,
            messages: 1,
            errors: vec![],
            caught_up,
            skipped_slots: vec![],
        };
        let lines = plan(&report(3, vec![report(4, vec![])]), Duration::from_millis(1500), 7);
        let line = parse(&lines[0]);
        assert_eq!((line["Planned"].as_u64(), line["PlanDuration"].as_u64()), (Some(7), Some(1500)));
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Unit"], "Milliseconds");
    }

    #[test]
    fn a_batch_counts_each_outcome_and_each_skip_reason() {
        let mut done = WorkReport { sent: 5, failed: 1, ..WorkReport::default() };
        done.skip("no activity", 3);
        done.skip("opted out", 2);
        let report = BatchReport {
            messages: vec![
                ("a".into(), MessageOutcome::Done { report: done }),
                ("b".into(), MessageOutcome::Retry { reason: "throttled".into(), delay_ms: 1000 }),
                ("c".into(), MessageOutcome::DeadLettered { reason: "malformed".into() }),
                ("d".into(), MessageOutcome::Failed { reason: "not food".into() }),
            ],
            sender_refused: None,
        };
        let lines: Vec<Value> =
            batch("daily-summary", &report, Duration::from_millis(80), 7).iter().map(|l| parse(l)).collect();
        let counts: Vec<_> = ["Sent", "Failed", "Skipped", "Retried", "DeadLettered", "BatchDuration"]
            .map(|m| lines[0][m].as_u64())
            .into();
        assert_eq!(counts, [Some(5), Some(2), Some(5), Some(1), Some(1), Some(80)]);
        assert_eq!(lines.len(), 3);
        assert_eq!((lines[1]["Reason"].as_str(), lines[1]["Skipped"].as_u64()), (Some("no activity"), Some(3)));
        assert_eq!(lines[2]["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Task", "Reason"]]));
    }
}
