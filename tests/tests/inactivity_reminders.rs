//! inactivity-reminders through the real runtime on both stores (SQLite, PostgreSQL), with the queue embedded on
//! virtual time and the senders in memory: who is reminded, by which channel, once per stretch, and not at night.

use chrono::{DateTime, NaiveDate, Utc};
use integration_tests::nudges::{Backend, Stack};
use shared::{
    ports::{Channel, Choice, Device, Kind, NewUser, NewWorkout},
    runtime::MessageOutcome,
    tasks::fitness::inactivity_reminders::NAME,
};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn arn(n: i64) -> String {
    format!("arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/fitness/device-{n}")
}

/// London's users on Sunday 22 November 2026 (GMT: 18:00 local is 18:00 UTC), three days the threshold.
struct People {
    /// Last trained exactly three days ago, has a phone app: pushed.
    ana: i64,
    /// Trained two days ago: not yet.
    bo: i64,
    /// Never trained, signed up weeks ago, no device: invited by email.
    cy: i64,
    /// Signed up yesterday: not yet.
    di: i64,
    /// Push off for reminders, SMS on: texted.
    ed: i64,
    /// Push off for reminders, emails off: nothing.
    fi: i64,
    /// A phone but no SMS choice and no device: emailed, never texted.
    gu: i64,
}

async fn workout(stack: &Stack, user_id: i64, day: &str) {
    let local_date: NaiveDate = day.parse().unwrap();
    let started_at = utc(&format!("{day}T07:00:00Z"));
    let workout = NewWorkout {
        user_id,
        name: "Run".into(),
        started_at,
        local_date,
        duration_minutes: 30,
        calories: 300,
        sets: vec![],
    };
    stack.app.add_workouts(&[workout]).await.unwrap();
}

async fn seed(stack: &Stack) -> People {
    let user = |name: &str, phone: Option<&str>, email_opt_in| NewUser {
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        phone: phone.map(str::to_owned),
        time_zone: "Europe/London".into(),
        email_opt_in,
    };
    let users = [
        user("Ana", None, true),
        user("Bo", None, true),
        user("Cy", None, true),
        user("Di", None, true),
        user("Ed", Some("+447700900123"), true),
        user("Fi", None, false),
        user("Gu", Some("+447700900456"), true),
    ];
    let ids = stack.app.add_users(&users).await.unwrap();
    let p = People { ana: ids[0], bo: ids[1], cy: ids[2], di: ids[3], ed: ids[4], fi: ids[5], gu: ids[6] };
    stack.app.set_created_at(&ids, utc("2026-11-01T10:00:00Z")).await.unwrap();
    stack.app.set_created_at(&[p.di], utc("2026-11-21T10:00:00Z")).await.unwrap();
    workout(stack, p.ana, "2026-11-19").await;
    workout(stack, p.bo, "2026-11-20").await;
    for user in [p.ed, p.fi, p.gu] {
        workout(stack, user, "2026-11-15").await;
    }
    for user in [p.ana, p.ed, p.fi] {
        stack.contacts.add_device(user, &Device { endpoint_arn: arn(user), platform: "apns".into() }).await.unwrap();
    }
    let choose = |kind, channel, allowed| Choice { kind, channel, allowed };
    for user in [p.ed, p.fi] {
        stack.contacts.choose(user, choose(Kind::Reminders, Channel::Push, false)).await.unwrap();
    }
    stack.contacts.choose(p.ed, choose(Kind::Reminders, Channel::Sms, true)).await.unwrap();
    // Gu allows SMS, but for challenges only: reminders still do not text them.
    stack.contacts.choose(p.gu, choose(Kind::Challenges, Channel::Sms, true)).await.unwrap();
    p
}

async fn start(backend: Backend, now: &str) -> (Stack, People) {
    let stack = Stack::start(NAME, backend, utc(now)).await;
    let people = seed(&stack).await;
    (stack, people)
}

fn emailed(stack: &Stack) -> Vec<(String, String)> {
    let mut sent: Vec<_> = stack.mailer.sent().into_iter().map(|e| (e.to, e.subject)).collect();
    sent.sort();
    sent
}

async fn reminds_each_inactive_user_once_per_stretch_by_their_channel(backend: Backend) {
    let (stack, p) = start(backend, "2026-11-22T18:00:05Z").await;
    let plan = stack.plan("2026-11-22T18:00:00Z").await;
    assert_eq!(plan.planned, 7);
    let work = stack.drain_totals().await;
    assert_eq!(work.sent, 4, "{work:?}");
    assert_eq!(work.skipped.get("active recently or signed up recently"), Some(&2), "Bo and Di: {work:?}");
    assert_eq!(work.skipped.get("opted out of reminders on every channel"), Some(&1), "Fi: {work:?}");
    let pushed = stack.notifier.pushed();
    assert_eq!(pushed.len(), 1);
    assert_eq!(
        (pushed[0].endpoint_arn.as_str(), pushed[0].title.as_str()),
        (arn(p.ana).as_str(), "It's been 3 days since your last workout")
    );
    let sms = stack.notifier.sms_sent();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].to, "+447700900123", "Ed, who chose SMS for reminders");
    assert!(sms[0].text.starts_with("It's been 7 days since your last workout"), "{}", sms[0].text);
    assert_eq!(
        emailed(&stack),
        [
            ("cy@example.com".to_owned(), "You haven't logged a workout yet".to_owned()),
            ("gu@example.com".to_owned(), "It's been 7 days since your last workout".to_owned()),
        ],
        "Gu's phone is not texted without a choice for reminders"
    );

    // The next evenings: the same stretches send nothing again; Bo (idle since the 20th) reaches three days on
    // the 23rd, Di (signed up on the 21st) on the 24th, each reminded once.
    for (day, newly, before) in [("2026-11-23", "bo@example.com", 4), ("2026-11-24", "di@example.com", 5)] {
        stack.set_clock(&format!("{day}T18:00:05Z"));
        stack.plan(&format!("{day}T18:00:00Z")).await;
        let again = stack.drain_totals().await;
        assert_eq!((again.sent, again.already_done), (1, before), "{day}: {again:?}");
        assert_eq!(emailed(&stack).iter().filter(|(to, _)| to == newly).count(), 1, "{day}");
    }

    // Ana trains on the 24th, then stops: three days later, a new stretch and a new reminder.
    workout(&stack, p.ana, "2026-11-24").await;
    stack.set_clock("2026-11-27T18:00:05Z");
    stack.plan("2026-11-27T18:00:00Z").await;
    assert_eq!(stack.drain_totals().await.sent, 1, "only Ana's stretch is new");
    assert_eq!(stack.notifier.pushed().len(), 2, "a second stretch, a second reminder");
    assert_eq!(stack.notifier.sms_sent().len(), 1, "Ed's stretch goes on: no second text");
}

/// A plan whose work happens at 23:00 in London: the push and the SMS wait for 08:00 (their message hidden
/// until then), the emails go at once; at 08:00 the held ones are sent, once.
async fn quiet_hours_hold_push_and_sms_until_eight_and_send_them_once(backend: Backend) {
    let (stack, p) = start(backend, "2026-11-22T23:00:00Z").await;
    stack.plan("2026-11-22T18:00:00Z").await;
    let batches = stack.drain().await;
    let outcomes: Vec<&MessageOutcome> = batches.iter().flat_map(|b| b.messages.iter().map(|(_, o)| o)).collect();
    assert_eq!(outcomes.len(), 1);
    let MessageOutcome::Retry { reason, delay_ms } = outcomes[0] else { panic!("{:?}", outcomes[0]) };
    assert_eq!(reason, "held until 2026-11-23 08:00:00 UTC");
    assert_eq!(*delay_ms, 9 * 3_600_000, "the message is hidden until London's 08:00");
    assert!(stack.notifier.pushed().is_empty() && stack.notifier.sms_sent().is_empty(), "nothing buzzes at night");
    assert_eq!(stack.mailer.sent().len(), 2, "email is never held");

    stack.set_clock("2026-11-23T07:59:00Z");
    assert!(stack.drain().await.is_empty(), "still hidden before 08:00");
    stack.set_clock("2026-11-23T08:00:01Z");
    let morning = stack.drain_totals().await;
    assert_eq!((morning.sent, morning.already_done), (2, 2), "{morning:?}");
    assert_eq!(stack.notifier.pushed()[0].endpoint_arn, arn(p.ana));
    assert_eq!(stack.notifier.sms_sent().len(), 1);
    stack.set_clock("2026-11-23T09:00:00Z");
    assert!(stack.drain().await.is_empty(), "the message finished");
    assert_eq!((stack.notifier.pushed().len(), stack.mailer.sent().len()), (1, 2));
}

/// SNS reports Ana's device gone: it is disabled and she is emailed instead.
async fn a_gone_device_is_disabled_and_the_reminder_goes_by_email(backend: Backend) {
    let (stack, p) = start(backend, "2026-11-22T18:00:05Z").await;
    stack.notifier.gone(&arn(p.ana));
    stack.plan("2026-11-22T18:00:00Z").await;
    assert_eq!(stack.drain_totals().await.sent, 4);
    assert!(stack.notifier.pushed().is_empty());
    assert!(emailed(&stack).iter().any(|(to, _)| to == "ana@example.com"));
    let ana = stack.contacts.contacts(&[p.ana]).await.unwrap().remove(0);
    assert!(ana.devices.is_empty(), "the device is disabled");
}

async fn a_redelivered_message_sends_nothing_twice(backend: Backend) {
    let (stack, _) = start(backend, "2026-11-22T18:00:05Z").await;
    stack.plan("2026-11-22T18:00:00Z").await;
    let rt = &stack.runtime;
    let received = rt.queue.receive(10, std::time::Duration::from_secs(30)).await.unwrap();
    let first = rt.work(shared::runtime::sqs_event(&received)).await.totals();
    let second = rt.work(shared::runtime::sqs_event(&received)).await.totals();
    assert_eq!((first.sent, second.sent, second.already_done), (4, 0, 4));
    assert_eq!(stack.notifier.pushed().len() + stack.notifier.sms_sent().len() + stack.mailer.sent().len(), 4);
}

/// A device registered with a malformed ARN: that user's delivery fails for good and is recorded; the others
/// are sent.
async fn a_malformed_endpoint_fails_that_delivery_for_good_and_no_other(backend: Backend) {
    let (stack, p) = start(backend, "2026-11-22T18:00:05Z").await;
    let device =
        Device { endpoint_arn: "arn:aws:sns:eu-west-1:123456789012:not-an-endpoint".into(), platform: "apns".into() };
    stack.contacts.add_device(p.cy, &device).await.unwrap();
    stack.plan("2026-11-22T18:00:00Z").await;
    let work = stack.drain_totals().await;
    assert_eq!((work.sent, work.failed), (3, 1), "{work:?}");
    let run = stack.runtime.runs.run(NAME, utc("2026-11-22T18:00:00Z")).await.unwrap().unwrap();
    assert_eq!((run.sent, run.failed), (3, 1));
    assert!(run.errors.iter().any(|e| e.contains("not an SNS platform endpoint ARN")), "{:?}", run.errors);
    assert!(run.errors.iter().all(|e| !e.contains("not-an-endpoint") && !e.contains('@')), "{:?}", run.errors);
}

integration_tests::on_both_stores!(
    reminds_each_inactive_user_once_per_stretch_by_their_channel,
    quiet_hours_hold_push_and_sms_until_eight_and_send_them_once,
    a_gone_device_is_disabled_and_the_reminder_goes_by_email,
    a_redelivered_message_sends_nothing_twice,
    a_malformed_endpoint_fails_that_delivery_for_good_and_no_other,
);
