//! daily-summary's emails against `jobs bench floor`'s statement: every number a summary shows (workouts, time,
//! calories, volume, records, streak) equals the set-based computation over the same seeded data, for every user
//! due in a day of slots, so an optimised query that changes a number fails here. On PostgreSQL, where both run.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, NaiveDate, Utc};
use infra::wiring::Store;
use integration_tests::db;
use jobs::{
    bench::floor::{self, Numbers},
    seed::{self, SeedSpec},
};
use shared::{
    invocation::{Trigger, TriggerSource},
    limits::Pace,
    memory::{MemoryMailer, MemoryNotifier, MemoryQueue},
    render,
    runtime::{JobRuntime, RuntimeSettings, WorkReport},
    tasks::{self, fitness::daily_summary::NAME, messages::Letterhead},
    time::VirtualClock,
};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The lines of the text part that carry numbers, as the numbers say they must read.
fn expected_lines(n: &Numbers) -> Vec<String> {
    let streak = match n.streak {
        1 => "1 day".to_owned(),
        days => format!("{days} days in a row"),
    };
    vec![
        format!("Total time: {}", render::duration(n.minutes)),
        format!("Calories: {} kcal", render::thousands(n.calories)),
        format!("Volume lifted: {} kg", render::thousands(n.volume_kg.round() as i64)),
        format!("Streak: {streak}"),
    ]
}

/// The personal records the text part lists.
fn records_listed(text: &str) -> i64 {
    let Some((_, records)) = text.split_once("Personal records:") else { return 0 };
    records.lines().take_while(|l| l.is_empty() || l.starts_with("- ")).filter(|l| l.starts_with("- ")).count() as i64
}

#[tokio::test]
async fn every_summarys_numbers_equal_the_set_based_computation() {
    let pg = Arc::new(db::fresh_postgres().await);
    let day = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    let spec =
        SeedSpec { users: 600, last_day: day, days: 30, with_unknown_zone: false, seed: 11, written_before: None };
    seed::seed(pg.as_ref(), pg.as_ref(), &spec).await.unwrap();
    let store = Store::Postgres(pg.clone());

    let (after, until) = (utc("2026-11-22T00:00:00Z"), utc("2026-11-23T00:00:00Z"));
    let mailer = Arc::new(MemoryMailer::default());
    let clock = Arc::new(VirtualClock::new(after));
    let letterhead = Letterhead { from: "jobs@example.com".into(), signer: None, preferences: None };
    let deps = store.deps(mailer.clone(), Arc::new(MemoryNotifier::default()), letterhead);
    let runtime = JobRuntime {
        task: tasks::build(NAME, &deps).unwrap(),
        schedule: tasks::schedule(NAME).unwrap(),
        runs: store.runs(),
        ledger: store.ledger(),
        queue: Arc::new(MemoryQueue::default()),
        clock: clock.clone(),
        pace: Pace::new(None),
        settings: RuntimeSettings::default(),
    };
    let mut total = WorkReport::default();
    let slots: Vec<_> = runtime.schedule.clone().unwrap().fires_between(after, until).collect();
    assert_eq!(slots.len(), 24);
    for slot in slots {
        clock.set(slot);
        runtime.plan(Trigger { time: slot, source: TriggerSource::Scheduler, task: None }).await.unwrap();
        for batch in runtime.drain().await.unwrap() {
            total.merge(&batch.totals());
        }
    }

    let expected = floor::summaries(pg.pool(), after, until, 2).await.unwrap();
    let emails: HashMap<String, i64> =
        sqlx::query_as("SELECT email, id FROM users").fetch_all(pg.pool()).await.unwrap().into_iter().collect();
    let sent = mailer.sent();
    let by_user: HashMap<i64, &Numbers> = expected.iter().map(|n| (n.user_id, n)).collect();
    assert!(sent.len() > 100, "{} emails: too few to test anything", sent.len());
    for email in &sent {
        let user = emails[&email.to];
        let numbers = by_user.get(&user).unwrap_or_else(|| panic!("user {user} got a summary the statement has not"));
        for line in expected_lines(numbers) {
            assert!(email.text.contains(&line), "user {user}: {line:?} is not in\n{}", email.text);
        }
        let workouts = match numbers.workouts {
            1 => "1 workout".to_owned(),
            n => format!("{n} workouts"),
        };
        assert!(email.subject.contains(&workouts), "user {user}: {workouts:?} is not in {:?}", email.subject);
        assert!(email.subject.contains(&numbers.day.format("%A %-d %B").to_string()), "{:?}", email.subject);
        assert_eq!(records_listed(&email.text), numbers.records, "user {user}'s records in\n{}", email.text);
    }
    // The statement's users with a summary are those mailed, and those the task chose not to mail.
    let not_mailed: u64 =
        total.skipped.iter().filter(|(reason, _)| reason.as_str() != "no activity").map(|(_, n)| n).sum();
    assert_eq!(sent.len() as u64 + not_mailed, expected.len() as u64, "skipped: {:?}", total.skipped);
    // The data exercises what could go wrong: streaks of several days, records, more than one workout a day.
    assert!(expected.iter().any(|n| n.streak > 2) && expected.iter().any(|n| n.records > 0));
    assert!(expected.iter().any(|n| n.workouts > 1) || expected.iter().filter(|n| n.volume_kg > 0.0).count() > 10);
}
