//! challenge-notifications through the real runtime on both stores (SQLite, PostgreSQL), with the queue embedded
//! on virtual time and the senders in memory: who is told what the day before, and nothing twice.

use chrono::{DateTime, NaiveDate, Utc};
use infra::wiring::Store;
use integration_tests::nudges::{Backend, Stack};
use shared::{
    ports::{Device, NewUser},
    tasks::fitness::challenge_notifications::NAME,
};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Moves a challenge, as the app may after its notices went out.
async fn move_challenge(store: &Store, id: i64, starts_on: &str) {
    let sql = format!("UPDATE challenges SET starts_on = '{starts_on}' WHERE id = {id}");
    match store {
        Store::Sqlite(s) => sqlx::query(&sql).execute(s.db()).await.map(drop),
        Store::Postgres(s) => sqlx::query(&sql).execute(s.pool()).await.map(drop),
    }
    .unwrap();
}

/// London, Sunday 22 November 2026: tomorrow, "Step it up" starts, "One day" starts and ends, "Stairs" ends,
/// and "Backwards" starts but was stored ending before it.
async fn tells_each_participant_the_day_before_and_nothing_twice(backend: Backend) {
    let stack = Stack::start(NAME, backend, utc("2026-11-22T09:00:05Z")).await;
    let user = |name: &str| NewUser {
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        phone: None,
        time_zone: "Europe/London".into(),
        email_opt_in: true,
    };
    let ids = stack.app.add_users(&[user("Ana"), user("Bo"), user("Cy"), user("Di")]).await.unwrap();
    let (ana, bo, cy) = (ids[0], ids[1], ids[2]);
    let arn = "arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/fitness/ana";
    stack.contacts.add_device(ana, &Device { endpoint_arn: arn.into(), platform: "apns".into() }).await.unwrap();
    let app = &stack.app;
    let step = app.add_challenge("Step it up", d("2026-11-23"), d("2026-11-29")).await.unwrap();
    let one_day = app.add_challenge("One day", d("2026-11-23"), d("2026-11-23")).await.unwrap();
    let stairs = app.add_challenge("Stairs", d("2026-11-16"), d("2026-11-23")).await.unwrap();
    let backwards = app.add_challenge("Backwards", d("2026-11-23"), d("2026-11-20")).await.unwrap();
    app.join_challenge(step, &[ana, bo]).await.unwrap();
    app.join_challenge(one_day, &[ana]).await.unwrap();
    app.join_challenge(stairs, &[cy]).await.unwrap();
    app.join_challenge(backwards, &[bo, cy]).await.unwrap();

    let plan = stack.plan("2026-11-22T09:00:00Z").await;
    assert_eq!(plan.planned, 3, "Di joined nothing");
    let work = stack.drain_totals().await;
    let reason = format!("challenge {backwards} ends before it starts");
    assert_eq!((work.sent, work.skipped.get(&reason)), (5, Some(&2)), "{work:?}");
    let mut titles: Vec<String> = stack.notifier.pushed().into_iter().map(|p| p.title).collect();
    titles.sort();
    assert_eq!(titles, ["'One day' ends tomorrow", "'One day' starts tomorrow", "'Step it up' starts tomorrow"]);
    let mut emails: Vec<(String, String)> = stack.mailer.sent().into_iter().map(|e| (e.to, e.subject)).collect();
    emails.sort();
    assert_eq!(
        emails,
        [
            ("bo@example.com".to_owned(), "'Step it up' starts tomorrow".to_owned()),
            ("cy@example.com".to_owned(), "'Stairs' ends tomorrow".to_owned()),
        ]
    );
    let run = stack.runtime.runs.run(NAME, utc("2026-11-22T09:00:00Z")).await.unwrap().unwrap();
    assert_eq!(run.errors, [reason], "once, and with no address");

    // "Step it up" moves to start on the 24th: the notice of its start went out, nothing is sent again.
    move_challenge(&stack.store, step, "2026-11-24").await;
    stack.set_clock("2026-11-23T09:00:05Z");
    assert_eq!(stack.plan("2026-11-23T09:00:00Z").await.planned, 2, "Ana and Bo are due again");
    let again = stack.drain_totals().await;
    assert_eq!((again.sent, again.already_done), (0, 2), "{again:?}");
}

integration_tests::on_both_stores!(tells_each_participant_the_day_before_and_nothing_twice);
