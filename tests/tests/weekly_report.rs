//! weekly-report end to end through the real runtime, run slot by slot as its schedule fires, on both stacks:
//! the embedded one (SQLite, embedded queue) and the production one (PostgreSQL, SQS and SES on moto).

use std::time::Duration;

use chrono::{DateTime, Utc};
use integration_tests::task_stack::TaskStack;
use shared::{
    invocation::{Trigger, TriggerSource},
    ports::{Channel, Choice, Kind, NewSet, NewUser, NewWorkout},
    runtime::{sqs_event, PlanStatus},
    tasks::fitness::weekly_report,
};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn user(name: &str, zone: &str) -> NewUser {
    NewUser {
        name: name.into(),
        email: format!("{}@example.com", name.split(' ').next().unwrap().to_lowercase()),
        phone: None,
        time_zone: zone.into(),
        email_opt_in: true,
    }
}

/// A workout on the user's local `day`, without sets.
fn workout(user_id: i64, day: &str, minutes: i64) -> NewWorkout {
    NewWorkout {
        user_id,
        name: "Run".into(),
        started_at: utc(&format!("{day}T12:00:00Z")),
        local_date: day.parse().unwrap(),
        duration_minutes: minutes,
        calories: minutes * 10,
        sets: vec![],
    }
}

/// The subjects of the emails sent to `to`, sorted.
fn subjects_to(stack: &TaskStack, to: &str) -> Vec<String> {
    let mut subjects: Vec<String> = stack.sent().into_iter().filter(|e| e.to == to).map(|e| e.subject).collect();
    subjects.sort();
    subjects
}

/// Europe/London leaves summer time on Sunday 25 October 2026: the week Monday 19 – Sunday 25 goes out on
/// Monday 26 at 08:00 GMT (08:00 UTC, not 07:00). No zone changes its clocks on a Monday in 2026; New York
/// falls back on Sunday 1 November, so its Monday 08:00 right after the change is 13:00 UTC (12:00 the week
/// before). Only users who trained that week are mailed; one opted out of reports by email is skipped.
async fn weeks_across_dst_changes_go_out_on_monday_0800_local(stack: &TaskStack) {
    let app = stack.store.writer();
    let users = [
        user("Ana <admin> & co", "Europe/London"),
        user("Bo", "Europe/London"),
        user("Cy", "Europe/London"),
        user("Di", "America/New_York"),
    ];
    let ids = app.add_users(&users).await.unwrap();
    let (ana, bo, cy, di) = (ids[0], ids[1], ids[2], ids[3]);
    let squat = app.add_exercises(&["Squat & <lunge>".into()]).await.unwrap()[0];
    let mut sunday = workout(ana, "2026-10-25", 60);
    sunday.sets = vec![NewSet { exercise_id: squat, weight_kg: 100.0, reps: 3, personal_record: true }];
    app.add_workouts(&[
        workout(ana, "2026-10-19", 40),
        sunday,
        workout(bo, "2026-10-20", 30),
        // Cy trained the week before only.
        workout(cy, "2026-10-14", 30),
        workout(di, "2026-10-27", 30),
        workout(di, "2026-11-01", 45),
    ])
    .await
    .unwrap();
    let opt_out = Choice { kind: Kind::Reports, channel: Channel::Email, allowed: false };
    stack.store.contacts().choose(bo, opt_out).await.unwrap();

    let (planned, work) = stack.run_between(utc("2026-10-24T00:00:00Z"), utc("2026-11-03T00:00:00Z")).await;
    assert_eq!(
        planned,
        [
            (utc("2026-10-26T08:00:00Z"), 3),
            (utc("2026-10-26T12:00:00Z"), 1),
            (utc("2026-11-02T08:00:00Z"), 3),
            (utc("2026-11-02T13:00:00Z"), 1),
        ]
    );
    assert_eq!(work.sent, 2);
    assert_eq!(work.skipped.get("opted out of reports by email"), Some(&1));
    // Cy both Mondays, Bo and Ana the second, Di the first.
    assert_eq!(work.skipped.get("no workout that week"), Some(&5));
    assert_eq!(subjects_to(stack, "ana@example.com"), ["Your week, 19–25 October: 2 workouts, 1 h 40 min"]);
    assert_eq!(subjects_to(stack, "di@example.com"), ["Your week, 26 October – 1 November: 2 workouts, 1 h 15 min"]);
    assert!(subjects_to(stack, "bo@example.com").is_empty() && subjects_to(stack, "cy@example.com").is_empty());
    if let Some(moto) = &stack.moto {
        assert_eq!(moto.raw_emails().await.len(), 2, "SES has both");
    }

    let email = stack.sent().into_iter().find(|e| e.to == "ana@example.com").unwrap();
    // Nothing the week before: the change is "new", not an infinite percentage.
    assert!(email.text.contains("Against the week before: new\n"), "{}", email.text);
    assert!(email.text.contains("Best day: Sunday, 1 h\n"), "{}", email.text);
    // The chart in both parts: its longest bar is this week's, the week before has none.
    assert!(email.text.contains(&format!("19 Oct  {} 1 h 40 min", "█".repeat(20))), "{}", email.text);
    assert!(email.text.contains("12 Oct   0 min"), "{}", email.text);
    assert!(email.html.contains("<table width=\"100%\" cellpadding=\"0\""), "{}", email.html);
    // The user's and the exercise's names are escaped in HTML, as they are in the text.
    assert!(email.html.contains("Ana &#60;admin&#62; &#38; co") && !email.html.contains("<admin>"), "{}", email.html);
    assert!(email.html.contains("Squat &#38; &#60;lunge&#62;: 100 kg"), "{}", email.html);
    assert!(email.text.contains("- Squat & <lunge>: 100 kg × 3"), "{}", email.text);
}

/// The same message worked twice (SQS delivers at least once) and the same slot planned again, by the
/// scheduler or by hand: one email.
async fn a_redelivered_message_and_a_replanned_slot_send_nothing_twice(stack: &TaskStack) {
    let app = stack.store.writer();
    let ana = app.add_users(&[user("Ana", "Europe/London")]).await.unwrap()[0];
    app.add_workouts(&[workout(ana, "2026-10-21", 30)]).await.unwrap();
    let rt = &stack.runtime;
    assert_eq!(stack.plan(utc("2026-10-26T08:00:00Z")).await, 1);
    let received = rt.queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(received.len(), 1);
    let first = rt.work(sqs_event(&received)).await.totals();
    let second = rt.work(sqs_event(&received)).await.totals();
    assert_eq!((first.sent, second.sent, second.already_done), (1, 0, 1));
    for source in [TriggerSource::Scheduler, TriggerSource::Manual] {
        let trigger = Trigger { time: utc("2026-10-26T08:00:00Z"), source, task: None };
        let again = rt.plan(trigger).await.unwrap();
        assert_eq!((again.status, again.messages), (PlanStatus::AlreadyPlanned, 0));
    }
    assert_eq!(stack.drain().await.sent, 0);
    assert_eq!(subjects_to(stack, "ana@example.com").len(), 1);
}

/// Mo moves from New York to Tokyo on Monday 2 November at 10:00 UTC, after Tokyo's Monday 08:00 (Sunday 23:00
/// UTC) and before New York's (13:00 UTC): no plan picks them for the week of 26 October, so Tokyo's next Monday
/// plans it with the next. Lu moves from Tokyo to New York after Tokyo's Monday 08:00 sent that week: New
/// York's plans it again, and the delivery key skips it. Each gets each week once.
async fn a_user_who_moves_zone_gets_each_week_once_and_loses_none(stack: &TaskStack) {
    let app = stack.store.writer();
    let ids = app.add_users(&[user("Mo", "America/New_York"), user("Lu", "Asia/Tokyo")]).await.unwrap();
    let (mo, lu) = (ids[0], ids[1]);
    let days = ["2026-10-28", "2026-11-04"];
    app.add_workouts(&[mo, lu].iter().flat_map(|&u| days.map(|d| workout(u, d, 30))).collect::<Vec<_>>())
        .await
        .unwrap();
    stack.run_between(utc("2026-10-24T00:00:00Z"), utc("2026-11-02T02:00:00Z")).await;
    app.set_time_zone(&[lu], "America/New_York").await.unwrap();
    stack.run_between(utc("2026-11-02T02:00:00Z"), utc("2026-11-02T10:00:00Z")).await;
    app.set_time_zone(&[mo], "Asia/Tokyo").await.unwrap();
    let (_, work) = stack.run_between(utc("2026-11-02T10:00:00Z"), utc("2026-11-10T00:00:00Z")).await;
    assert!(work.already_done >= 1, "New York planned Lu's week again: {work:?}");
    let weeks = ["Your week, 26 October – 1 November: 1 workout, 30 min", "Your week, 2–8 November: 1 workout, 30 min"];
    assert_eq!(subjects_to(stack, "mo@example.com"), weeks);
    assert_eq!(subjects_to(stack, "lu@example.com"), weeks);
}

macro_rules! on_both_stacks {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(&super::TaskStack::embedded(super::weekly_report::NAME).await).await;
            })*
        }
        mod postgres_and_moto {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(&super::TaskStack::aws(super::weekly_report::NAME).await).await;
            })*
        }
    };
}

on_both_stacks!(
    weeks_across_dst_changes_go_out_on_monday_0800_local,
    a_redelivered_message_and_a_replanned_slot_send_nothing_twice,
    a_user_who_moves_zone_gets_each_week_once_and_loses_none,
);
