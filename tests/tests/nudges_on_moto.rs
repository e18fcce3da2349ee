//! inactivity-reminders end to end on the AWS stand-ins: PostgreSQL, SES and SNS on moto. A user with the app is
//! pushed to their platform endpoint, one who chose SMS is texted, one with neither is emailed — each once, even
//! when the message is worked again.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use infra::{embedded_queue::EmbeddedQueue, ses::SesMailer, sns::SnsNotifier, wiring::Store};
use integration_tests::{db, moto::Moto};
use shared::{
    invocation::{Trigger, TriggerSource},
    limits::Pace,
    ports::{Channel, Choice, Device, Kind, NewUser},
    runtime::{JobRuntime, RuntimeSettings},
    tasks::{self, fitness::inactivity_reminders::NAME, messages::Letterhead},
    time::VirtualClock,
};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_an_sms_and_an_email_reach_sns_and_ses_once_each() {
    let moto = Moto::start().await;
    let (ses, sns) = (moto.ses().await, moto.sns().await);
    ses.verify_email_identity().email_address("coach@example.com").send().await.unwrap();
    let app = sns
        .create_platform_application()
        .name("fitness")
        .platform("GCM")
        .attributes("PlatformCredential", "server-key")
        .send()
        .await
        .unwrap();
    let endpoint = sns
        .create_platform_endpoint()
        .platform_application_arn(app.platform_application_arn().unwrap())
        .token("phone-of-ana")
        .send()
        .await
        .unwrap()
        .endpoint_arn()
        .unwrap()
        .to_owned();

    let store = Store::Postgres(Arc::new(db::fresh_postgres().await));
    let user = |name: &str, phone: Option<&str>| NewUser {
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        phone: phone.map(str::to_owned),
        time_zone: "Europe/London".into(),
        email_opt_in: true,
    };
    let ids = store
        .writer()
        .add_users(&[user("Ana", None), user("Bo", Some("+447700900123")), user("Cy", None)])
        .await
        .unwrap();
    // Signed up long ago, never trained: all three are due a reminder.
    store.writer().set_created_at(&ids, utc("2026-10-01T12:00:00Z")).await.unwrap();
    store
        .contacts()
        .add_device(ids[0], &Device { endpoint_arn: endpoint.clone(), platform: "GCM".into() })
        .await
        .unwrap();
    store
        .contacts()
        .choose(ids[1], Choice { kind: Kind::Reminders, channel: Channel::Sms, allowed: true })
        .await
        .unwrap();

    // 18:00 in London on a November Sunday is 18:00 UTC: the slot that plans them.
    let clock = Arc::new(VirtualClock::new(utc("2026-11-22T18:00:05Z")));
    let queue_store = db::fresh_sqlite().await;
    let letterhead = Letterhead { from: "coach@example.com".into(), signer: None, preferences: None };
    let deps = store.deps(Arc::new(SesMailer::new(ses)), Arc::new(SnsNotifier::new(sns)), letterhead);
    let runtime = JobRuntime {
        task: tasks::build(NAME, &deps).unwrap(),
        schedule: tasks::schedule(NAME).unwrap(),
        runs: store.runs(),
        ledger: store.ledger(),
        queue: Arc::new(EmbeddedQueue::new(queue_store.db().clone(), NAME, clock.clone(), 3)),
        clock: clock.clone(),
        pace: Pace::new(None),
        settings: RuntimeSettings::default(),
    };
    let trigger = Trigger { time: utc("2026-11-22T18:00:00Z"), source: TriggerSource::Scheduler, task: None };
    let plan = runtime.plan(trigger.clone()).await.unwrap();
    assert_eq!(plan.planned, 3);
    let received = runtime.queue.receive(10, std::time::Duration::from_secs(30)).await.unwrap();
    let batch = shared::runtime::sqs_event(&received);
    // The same batch twice, as a redelivery would bring it: the ledger lets each message out once.
    let first = runtime.work(batch.clone()).await.totals();
    let again = runtime.work(batch).await.totals();
    assert_eq!((first.sent, again.sent, again.already_done), (3, 0, 3), "{first:?} {again:?}");

    let pushed = moto.endpoint_messages().await;
    assert_eq!(pushed.len(), 1);
    assert_eq!((pushed[0].0.as_str(), pushed[0].1.as_object().unwrap().len()), (endpoint.as_str(), 1));
    let texted = moto.sms_messages().await;
    assert_eq!(texted.len(), 1);
    assert_eq!(texted[0].1, "+447700900123");
    assert!(texted[0].2.contains("workout"), "the reminder, not something else: {}", texted[0].2);
    let emails = moto.raw_emails().await;
    assert_eq!(emails.len(), 1, "only Cy, who has neither app nor SMS, is emailed");
    assert!(emails[0].contains("cy@example.com"), "{}", emails[0]);
}
