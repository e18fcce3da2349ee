//! `jobs suppressions`: the mail suppression list shown as a table and as JSON, and one address lifted by an
//! operator, in whatever case they type it; lifting one that is not suppressed says so and fails.

mod common;

use common::{jobs, text};

use shared::ports::{Suppression, SuppressionReason, Suppressions};

#[tokio::test]
async fn suppressions_are_listed_and_one_is_lifted() {
    let dir = std::env::temp_dir().join(format!("jobs-suppressions-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = jobs(&["suppressions"], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no suppressed addresses"), "{}", text(&out.stdout));

    let store =
        infra::sqlite::SqliteStore::connect(&format!("sqlite://{}", dir.join("jobs.db").display())).await.unwrap();
    let at = |s: &str| s.parse().unwrap();
    let feedback = [
        Suppression {
            address: "jane@example.com".into(),
            reason: SuppressionReason::Bounce,
            feedback_id: "b-1".into(),
            subtype: Some("General".into()),
            at: at("2026-11-20T10:00:00Z"),
        },
        Suppression {
            address: "richard@example.com".into(),
            reason: SuppressionReason::Complaint,
            feedback_id: "c-1".into(),
            subtype: Some("abuse".into()),
            at: at("2026-11-21T11:30:00Z"),
        },
    ];
    store.suppress(&feedback).await.unwrap();

    let out = jobs(&["suppressions"], &dir);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = shown.lines().collect();
    assert!(lines[0].starts_with("address") && lines[0].contains("reason"), "{shown}");
    assert!(lines[1].starts_with("jane@example.com") && lines[1].contains("bounce    General"), "{shown}");
    assert!(lines[1].contains("2026-11-20 10:00  2026-11-20 10:00"), "{shown}");
    assert!(lines[2].starts_with("richard@example.com") && lines[2].contains("complaint abuse"), "{shown}");

    let out = jobs(&["suppressions", "--json"], &dir);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["address"], "jane@example.com", "{rows}");
    assert_eq!(rows[0]["reason"], "bounce");
    assert_eq!(rows[0]["count"], 1);
    assert_eq!(rows[1]["reason"], "complaint");

    let out = jobs(&["suppressions", "remove", "Jane@Example.com"], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("jane@example.com: suppression lifted"), "{}", text(&out.stdout));
    let out = jobs(&["suppressions", "--json"], &dir);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["address"], "richard@example.com");

    let out = jobs(&["suppressions", "remove", "jane@example.com"], &dir);
    assert!(!out.status.success(), "lifted twice");
    assert!(text(&out.stderr).contains("is not suppressed"), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}
