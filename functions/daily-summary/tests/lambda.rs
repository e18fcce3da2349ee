//! The real `daily-summary` binary, end to end, behind a stand-in Lambda runtime API, with PostgreSQL, and SQS
//! and SES on moto: a scheduled invocation plans, an SQS batch mails, a repeat plans nothing, an event of
//! unknown shape is a clear error, and a missing variable fails the cold start naming it.

use std::process::Stdio;

use chrono::{DateTime, Utc};
use infra::{postgres::PgStore, sqs::SqsQueue};
use integration_tests::{
    db,
    lambda_api::{Answer, RuntimeApi},
    moto::Moto,
};
use serde_json::{json, Value};
use shared::ports::{AppWriter, NewUser, NewWorkout, Queue};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// One user in Asia/Kolkata, active on their 21 November: due in the 01:00 UTC slot of the 22nd.
async fn seed(store: &PgStore) {
    let ids = store
        .add_users(&[NewUser {
            name: "Ana".into(),
            email: "ana@example.com".into(),
            phone: None,
            time_zone: "Asia/Kolkata".into(),
            email_opt_in: true,
        }])
        .await
        .unwrap();
    store
        .add_workouts(&[NewWorkout {
            user_id: ids[0],
            name: "Leg day".into(),
            started_at: utc("2026-11-21T02:00:00Z"),
            local_date: "2026-11-21".parse().unwrap(),
            duration_minutes: 45,
            calories: 400,
            sets: vec![],
        }])
        .await
        .unwrap();
}

fn function(api: &RuntimeApi) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_daily-summary"));
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "daily-summary")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn plans_mails_and_answers_as_lambda_expects() {
    let moto = Moto::start().await;
    let url = db::fresh_postgres_url().await;
    seed(&PgStore::connect(&url).await.unwrap()).await;
    let (queue_url, dlq_url) = moto.create_queue_pair("daily-summary", 3, 360).await;
    moto.ses().await.verify_email_identity().email_address("jobs@example.com").send().await.unwrap();

    let mut api = RuntimeApi::start().await;
    let mut child = function(&api)
        .env("DATABASE_URL", &url)
        .env("QUEUE_URL", &queue_url)
        .env("DEAD_LETTER_QUEUE_URL", &dlq_url)
        .env("MAIL_FROM", "Fitness <jobs@example.com>")
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .spawn()
        .unwrap();

    // The schedule: Scheduler's Input with the scheduled time.
    let scheduled = json!({"task": "daily-summary", "scheduledTime": "2026-11-22T01:00:00Z"});
    let Answer::Response(plan) = api.invoke(scheduled.clone()).await else { panic!("the plan failed") };
    assert_eq!(
        (plan["status"].as_str(), plan["planned"].as_u64(), plan["messages"].as_u64()),
        (Some("planned"), Some(1), Some(1))
    );

    // Lambda's SQS event source, by hand: the planned message as a batch.
    let queue = SqsQueue::new(moto.sqs().await, queue_url.clone(), dlq_url);
    let received = queue.receive(10, std::time::Duration::from_secs(60)).await.unwrap();
    assert_eq!(received.len(), 1);
    let batch = serde_json::to_value(shared::runtime::sqs_event(&received)).unwrap();
    let Answer::Response(response) = api.invoke(batch).await else { panic!("the batch failed") };
    assert_eq!(response, json!({"batchItemFailures": []}));
    let emails = moto.raw_emails().await;
    assert_eq!(emails.len(), 1);
    assert!(emails[0].contains("To: ana@example.com"), "{}", emails[0]);

    // Scheduler's at-least-once delivery: the same slot again plans nothing.
    let Answer::Response(again) = api.invoke(scheduled).await else { panic!("the repeat failed") };
    assert_eq!((again["status"].as_str(), again["planned"].as_u64()), (Some("already_planned"), Some(0)));

    // Something that is neither a schedule nor a batch: an error that says what it got.
    let Answer::Error(error) = api.invoke(json!({"hello": "world"})).await else { panic!("accepted nonsense") };
    let message = error["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("hello"), "{error}");

    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let logs = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty() && lines.len() == logs.lines().count(), "JSON log lines only:\n{logs}");
    assert!(lines.iter().any(|l| l["fields"]["message"] == "planned" || l["message"] == "planned"), "{logs}");
    assert!(!logs.contains("ana@example.com"), "no email address in logs:\n{logs}");
}

#[tokio::test]
async fn a_missing_variable_fails_the_cold_start_naming_it() {
    let api = RuntimeApi::start().await;
    let output = function(&api).env("QUEUE_URL", "http://127.0.0.1:9/q").output().await.unwrap();
    assert!(!output.status.success());
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(said.contains("DATABASE_URL"), "{said}");
}

#[tokio::test]
async fn an_unreachable_database_fails_the_cold_start_naming_it() {
    let api = RuntimeApi::start().await;
    let output = function(&api)
        .env("DATABASE_URL", "postgres://jobs:s3cret@127.0.0.1:1/app")
        .env("QUEUE_URL", "http://127.0.0.1:9/q")
        .env("DEAD_LETTER_QUEUE_URL", "http://127.0.0.1:9/dlq")
        .env("MAIL_FROM", "jobs@example.com")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(said.contains("127.0.0.1:1/app") && !said.contains("s3cret"), "{said}");
}
