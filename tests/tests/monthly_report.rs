//! monthly-report end to end through the real runtime, run slot by slot as its schedule fires, on both
//! stacks: the embedded one (SQLite, embedded queue) and the production one (PostgreSQL, SQS and SES on moto).

use chrono::{DateTime, Utc};
use integration_tests::task_stack::TaskStack;
use shared::{
    ports::{Channel, Choice, Kind, NewUser, NewWorkout},
    tasks::fitness::monthly_report,
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

/// The one email sent to `to`.
fn email_to(stack: &TaskStack, to: &str) -> shared::ports::Email {
    let mut sent: Vec<_> = stack.sent().into_iter().filter(|e| e.to == to).collect();
    assert_eq!(sent.len(), 1, "{to} got {} emails", sent.len());
    sent.remove(0)
}

/// October 2026's reports. The first 1st 09:00 anywhere is Kiritimati's (UTC+14), 19:00 UTC on the 31st: that
/// slot builds the standings before it queues Ki's report; the slots of the 28th to the 31st before it plan
/// nothing. London's 1st is 09:00 UTC; New York's 1st is the day it leaves summer time (01:00 happens twice
/// that night; no zone has a spring-forward gap on a 1st in 2026), its 09:00 is 14:00 UTC. Ana and Bo trained
/// the same minutes and share the 1st rank; Ny trained on the 31st after the standings were built: their
/// report has no rank. Op opted out of reports by email.
async fn standings_are_built_once_before_the_first_report_and_ties_share_a_rank(stack: &TaskStack) {
    let app = stack.store.writer();
    let users = [
        user("Ana <admin> & co", "Europe/London"),
        user("Bo", "Europe/London"),
        user("Ki", "Pacific/Kiritimati"),
        user("Op", "Europe/London"),
        user("Ny", "America/New_York"),
    ];
    let ids = app.add_users(&users).await.unwrap();
    let (ana, bo, ki, op, ny) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    app.add_workouts(&[
        workout(ana, "2026-10-05", 60),
        workout(ana, "2026-10-14", 60),
        workout(bo, "2026-10-20", 120),
        workout(ki, "2026-10-07", 45),
        workout(op, "2026-10-09", 30),
    ])
    .await
    .unwrap();
    let opt_out = Choice { kind: Kind::Reports, channel: Channel::Email, allowed: false };
    stack.store.contacts().choose(op, opt_out).await.unwrap();

    let (before, _) = stack.run_between(utc("2026-10-27T23:00:00Z"), utc("2026-10-31T19:00:00Z")).await;
    assert_eq!(before, [(utc("2026-10-31T19:00:00Z"), 1)], "only Kiritimati's 1st, at its 09:00");
    app.add_workouts(&[workout(ny, "2026-10-31", 200)]).await.unwrap();
    let (after, work) = stack.run_between(utc("2026-10-31T19:00:00Z"), utc("2026-11-02T00:00:00Z")).await;
    assert_eq!(after, [(utc("2026-11-01T09:00:00Z"), 3), (utc("2026-11-01T14:00:00Z"), 1)]);
    assert_eq!(work.skipped.get("opted out of reports by email"), Some(&1));
    assert_eq!(stack.sent().len(), 4);

    // Four ranked (Ny came later): Ana and Bo first with 120 min, Ki third, Op fourth.
    let tie = "You ranked 1st of 4 — more than 50% of active members";
    for to in ["ana@example.com", "bo@example.com"] {
        let email = email_to(stack, to);
        assert_eq!(
            email.subject,
            "Your October 2026: ".to_owned() + if to.starts_with("ana") { "2 workouts, 2 h" } else { "1 workout, 2 h" }
        );
        assert!(email.text.contains(tie) && email.html.contains(tie), "{}", email.text);
    }
    let ki = email_to(stack, "ki@example.com");
    assert!(ki.text.contains("You ranked 3rd of 4 — more than 25% of active members"), "{}", ki.text);
    let ny = email_to(stack, "ny@example.com");
    assert!(
        ny.text.contains("3 h 20 min") && !ny.text.contains("ranked") && !ny.html.contains("ranked"),
        "{}",
        ny.text
    );
    let ana = email_to(stack, "ana@example.com");
    assert!(ana.html.contains("Ana &#60;admin&#62; &#38; co") && !ana.html.contains("<admin>"), "{}", ana.html);

    // The whole stretch again, as duplicated invocations: nothing is planned or sent twice.
    let (again, _) = stack.run_between(utc("2026-10-27T23:00:00Z"), utc("2026-11-02T00:00:00Z")).await;
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(stack.sent().len(), 4);
    if let Some(moto) = &stack.moto {
        assert_eq!(moto.raw_emails().await.len(), 4, "SES has each once");
    }
}

macro_rules! on_both_stacks {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(&super::TaskStack::embedded(super::monthly_report::NAME).await).await;
            })*
        }
        mod postgres_and_moto {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(&super::TaskStack::aws(super::monthly_report::NAME).await).await;
            })*
        }
    };
}

on_both_stacks!(standings_are_built_once_before_the_first_report_and_ties_share_a_rank);
