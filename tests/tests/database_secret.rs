//! The database's credentials from Secrets Manager (`DATABASE_URL_SECRET_ARN`): read at cold start and read again
//! when the server refuses them, so a rotation heals without a deploy. On a throwaway PostgreSQL that checks
//! passwords (the shared test server trusts every local connection) and moto's Secrets Manager.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use infra::{lambda::invoke, postgres::PgStore};
use integration_tests::{moto::Moto, task_stack::TaskStack, throwaway_pg::ThrowawayPostgres};
use serde_json::json;
use shared::{limits::Deadline, runtime::Context};

const TASK: &str = "cart-cleanup";

fn url(server: &ThrowawayPostgres, password: &str) -> String {
    format!("postgres://jobs:{password}@127.0.0.1:{}/postgres", server.port)
}

/// A server whose role `jobs` logs in with `first-password`, and the secret holding its URL.
async fn server_and_secret(moto: &Moto) -> (ThrowawayPostgres, aws_sdk_secretsmanager::Client, String) {
    let server = ThrowawayPostgres::start("host all all 127.0.0.1/32 scram-sha-256");
    server
        .admin(
            "CREATE ROLE jobs LOGIN PASSWORD 'first-password'; ALTER DATABASE postgres OWNER TO jobs; \
             ALTER SCHEMA public OWNER TO jobs",
        )
        .await;
    let secrets = moto.secrets().await;
    let created =
        secrets.create_secret().name("database").secret_string(url(&server, "first-password")).send().await.unwrap();
    (server, secrets, created.arn().unwrap().to_owned())
}

/// Sets the role's password on the server and ends its sessions, so the pool must log in again.
async fn rotate_on_the_server(server: &ThrowawayPostgres, password: &str) {
    server
        .admin(&format!(
            "ALTER ROLE jobs PASSWORD '{password}'; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'jobs'"
        ))
        .await;
}

/// The task's slot (daily at 02:00 UTC) of 2026-11-`day`.
fn slot(day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 2, 0, 0).unwrap()
}

fn plan(day: u32) -> serde_json::Value {
    json!({ "task": TASK, "scheduledTime": slot(day).to_rfc3339() })
}

fn context() -> Context {
    Context { request_id: "test".into(), deadline: Deadline::after(Duration::from_secs(60), Duration::from_secs(5)) }
}

#[tokio::test]
async fn a_password_rotated_between_two_invocations_is_read_again_once_and_the_invocation_works() {
    let moto = Moto::start().await;
    let (server, secrets, arn) = server_and_secret(&moto).await;
    let store = PgStore::connect_with_secret(secrets.clone(), arn.clone()).await.expect("connecting with the secret");
    store.migrate().await.unwrap();
    let stack = TaskStack::aws_on(TASK, store).await;
    invoke(&stack.store, &stack.runtime, plan(26), &context()).await.expect("the first invocation");

    // A rotation: the server's password and the secret change between two invocations.
    rotate_on_the_server(&server, "second-password").await;
    secrets.put_secret_value().secret_id(&arn).secret_string(url(&server, "second-password")).send().await.unwrap();
    let second =
        invoke(&stack.store, &stack.runtime, plan(27), &context()).await.expect("the invocation after the rotation");
    assert_eq!(second.into_response()["status"], "planned");

    // The password changed on the server but not in the secret: nothing to heal with. The invocation fails as
    // retryable (the schedule's retries, or the queue's, come back), naming the refusal, never a password.
    rotate_on_the_server(&server, "third-password").await;
    let refused = invoke(&stack.store, &stack.runtime, plan(28), &context()).await.unwrap_err();
    assert!(matches!(refused, shared::Error::Retryable(_)), "{refused:?}");
    let message = refused.to_string();
    assert!(message.contains("password authentication failed"), "{message}");
    assert!(!message.contains("second-password") && !message.contains("third-password"), "{message}");
}

#[tokio::test]
async fn a_cold_start_with_refused_credentials_fails_naming_the_server_and_never_the_password() {
    let moto = Moto::start().await;
    let (server, secrets, arn) = server_and_secret(&moto).await;
    rotate_on_the_server(&server, "not-in-the-secret").await;
    let message = PgStore::connect_with_secret(secrets, arn).await.err().expect("refused").to_string();
    assert!(message.contains(&format!("127.0.0.1:{}/postgres", server.port)), "{message}");
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(!message.contains("first-password") && !message.contains("not-in-the-secret"), "{message}");
}

#[tokio::test]
async fn a_secret_that_holds_no_database_url_is_a_clear_error() {
    let moto = Moto::start().await;
    let secrets = moto.secrets().await;
    let arn =
        secrets.create_secret().name("db").secret_string("hunter2").send().await.unwrap().arn().unwrap().to_owned();
    let message = PgStore::connect_with_secret(secrets, arn.clone()).await.err().expect("refused").to_string();
    assert!(message.contains(&arn) && message.contains("neither a postgres:// URL nor JSON"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}
