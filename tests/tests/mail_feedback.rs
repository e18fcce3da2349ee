//! mail-feedback end to end, on both stores: AWS's sample SES notifications published to an SNS topic on moto,
//! taken from the SQS queue subscribed to it exactly as SNS delivered them, handed to the function's handler as
//! a Lambda SNS event; then a mailing task (daily-summary) sends no email to a suppressed address.

use chrono::{DateTime, NaiveDate, Utc};
use integration_tests::{
    moto::Moto,
    nudges::{Backend, Stack},
    on_both_stores,
};
use shared::{
    mail_feedback::{handle, Handled},
    ports::{NewSet, NewUser, NewWorkout, SuppressedAddress, Suppression, SuppressionReason, Suppressions},
    tasks::fitness::daily_summary,
};

const PERMANENT: &str = include_str!("../../events/ses-bounce-permanent.json");
const TRANSIENT: &str = include_str!("../../events/ses-bounce-transient.json");
const COMPLAINT: &str = include_str!("../../events/ses-complaint.json");
const EVENT_BOUNCE: &str = include_str!("../../events/ses-event-bounce.json");
const EVENT_DELIVERY: &str = include_str!("../../events/ses-event-delivery.json");

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// SES's topic on moto, and the queue that sees what SNS delivers.
struct Feed {
    moto: Moto,
    topic_arn: String,
    queue_url: String,
    subscription_arn: String,
}

impl Feed {
    async fn start() -> Feed {
        let moto = Moto::start().await;
        let (topic_arn, queue_url, subscription_arn) = moto.topic_into_queue("ses-feedback").await;
        Feed { moto, topic_arn, queue_url, subscription_arn }
    }

    /// Publishes each message to the topic, and returns what SNS delivered as the Lambda SNS event the
    /// function gets: one record per message, each `Sns` the envelope SNS wrote into the queue.
    async fn deliver(&self, messages: &[&str]) -> aws_lambda_events::sns::SnsEvent {
        let (sns, sqs) = (self.moto.sns().await, self.moto.sqs().await);
        for message in messages {
            sns.publish().topic_arn(&self.topic_arn).message(*message).send().await.expect("publish");
        }
        let mut records = vec![];
        while records.len() < messages.len() {
            let received = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            for message in received.messages() {
                let envelope: serde_json::Value = serde_json::from_str(message.body().unwrap()).unwrap();
                assert_eq!(envelope["Type"], "Notification", "{envelope}");
                assert_eq!(envelope["TopicArn"], self.topic_arn.as_str());
                records.push(serde_json::json!({
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": self.subscription_arn,
                    "Sns": envelope,
                }));
                let receipt = message.receipt_handle().unwrap();
                sqs.delete_message().queue_url(&self.queue_url).receipt_handle(receipt).send().await.unwrap();
            }
        }
        // SQS does not keep order: the records are put back in the order they were published.
        records.sort_by_key(|r| {
            let message = r["Sns"]["Message"].as_str().unwrap().to_owned();
            messages.iter().position(|m| *m == message).expect("a published message")
        });
        serde_json::from_value(serde_json::json!({ "Records": records })).expect("a Lambda SNS event")
    }
}

/// (address, reason, subtype, count) of every row.
async fn rows(store: &dyn Suppressions) -> Vec<(String, SuppressionReason, Option<String>, i64)> {
    store.suppressions().await.unwrap().into_iter().map(|s| (s.address, s.reason, s.subtype, s.count)).collect()
}

async fn row(store: &dyn Suppressions, address: &str) -> SuppressedAddress {
    store.suppressions().await.unwrap().into_iter().find(|s| s.address == address).expect(address)
}

/// Jane (her address as the app stored it, in capitals), Mary and Richard, in Kolkata, each trained on their
/// 21 November: daily-summary's 01:00 UTC slot of the 22nd emails each of them.
async fn seed(stack: &Stack) -> Vec<i64> {
    let user = |name: &str, email: &str| NewUser {
        name: name.into(),
        email: email.into(),
        phone: None,
        time_zone: "Asia/Kolkata".into(),
        email_opt_in: true,
    };
    let users =
        [user("Jane", "Jane@Example.com"), user("Mary", "mary@example.com"), user("Richard", "richard@example.com")];
    let ids = stack.app.add_users(&users).await.unwrap();
    let bench = stack.app.add_exercises(&["Bench press".into()]).await.unwrap()[0];
    let workouts: Vec<NewWorkout> = ids
        .iter()
        .map(|&user_id| NewWorkout {
            user_id,
            name: "Upper body".into(),
            started_at: utc("2026-11-21T12:00:00Z"),
            local_date: "2026-11-21".parse::<NaiveDate>().unwrap(),
            duration_minutes: 45,
            calories: 400,
            sets: vec![NewSet { exercise_id: bench, weight_kg: 80.0, reps: 5, personal_record: false }],
        })
        .collect();
    stack.app.add_workouts(&workouts).await.unwrap();
    ids
}

async fn start(backend: Backend) -> Stack {
    let stack = Stack::start(daily_summary::NAME, backend, utc("2026-11-22T01:00:05Z")).await;
    seed(&stack).await;
    stack
}

/// Runs daily-summary's slot; the addresses it emailed, and how many it skipped as suppressed.
async fn mail(stack: &Stack) -> (Vec<String>, u64) {
    stack.plan("2026-11-22T01:00:00Z").await;
    let work = stack.drain_totals().await;
    let mut to: Vec<String> = stack.mailer.sent().into_iter().map(|e| e.to).collect();
    to.sort();
    (to, work.skipped.get("suppressed").copied().unwrap_or(0))
}

async fn feedback_through_sns_suppresses_by_the_rule_once_per_feedback(backend: Backend) {
    let stack = start(backend).await;
    let store = stack.store.suppressions();
    let store = &*store;
    let feed = Feed::start().await;
    let now = utc("2026-11-28T10:00:00Z");

    // A permanent bounce suppresses Jane; a transient one does not suppress Mary; a complaint suppresses
    // Richard; the event-publishing format reads the same; a delivery is acknowledged and ignored.
    let event = feed.deliver(&[PERMANENT, TRANSIENT, COMPLAINT, EVENT_BOUNCE, EVENT_DELIVERY]).await;
    let handled = handle(store, event, now).await.unwrap();
    assert_eq!(handled, Handled { suppressed: 3, passing: 1, ignored: 1 });
    let general = Some("General".to_owned());
    assert_eq!(
        rows(store).await,
        [
            ("jane@example.com".to_owned(), SuppressionReason::Bounce, general.clone(), 1),
            ("recipient@example.com".to_owned(), SuppressionReason::Bounce, general.clone(), 1),
            ("richard@example.com".to_owned(), SuppressionReason::Complaint, Some("abuse".to_owned()), 1),
        ]
    );
    let jane = row(store, "jane@example.com").await;
    assert_eq!(jane.feedback_id, "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000");
    assert_eq!((jane.first_at, jane.last_at), (utc("2016-01-27T14:59:38.237Z"), utc("2016-01-27T14:59:38.237Z")));

    // The same notification again (SNS delivers at least once): one row, unchanged.
    let again = handle(store, feed.deliver(&[PERMANENT]).await, now).await.unwrap();
    assert_eq!(again.suppressed, 1);
    assert_eq!(row(store, "jane@example.com").await, jane, "a redelivery changed the row");

    // Another bounce of Jane's, later: still one row, counted twice, its last time moved on.
    let later = PERMANENT.replace("ddddaaaa068a-000000", "ddddaaaa0aaa-000000").replace(
        "\"timestamp\": \"2016-01-27T14:59:38.237Z\",\n    \"feedbackId\"",
        "\"timestamp\": \"2016-02-01T09:00:00.000Z\",\n    \"feedbackId\"",
    );
    assert_ne!(later, PERMANENT);
    handle(store, feed.deliver(&[&later]).await, now).await.unwrap();
    let twice = row(store, "jane@example.com").await;
    assert_eq!((twice.count, twice.first_at), (2, jane.first_at));
    assert_eq!(twice.last_at, utc("2016-02-01T09:00:00Z"));
    assert_eq!(twice.feedback_id, "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0aaa-000000");

    // A malformed message fails the invocation and writes nothing, its good neighbour included; the error
    // names the SNS message, never an address.
    let before = rows(store).await;
    let bad =
        r#"{"notificationType":"Complaint","complaint":{"feedbackId":"x","complainedRecipients":"mary@example.com"}}"#;
    let event = feed.deliver(&[TRANSIENT.replace("Transient", "Permanent").as_str(), bad]).await;
    let bad_id = event.records[1].sns.message_id.clone();
    let e = handle(store, event, now).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&bad_id) && text.contains("not SES feedback"), "{text}");
    assert!(!text.contains('@'), "{text}");
    assert_eq!(rows(store).await, before, "a malformed batch wrote something");
    assert!(handle(store, feed.deliver(&["not JSON at all"]).await, now).await.is_err());

    // daily-summary then mails Mary, whose bounce was transient, and skips Jane and Richard as suppressed.
    let (emailed, suppressed) = mail(&stack).await;
    assert_eq!(emailed, ["mary@example.com"], "suppressed: {suppressed}");
    assert_eq!(suppressed, 2);

    // The operator lifts Jane's suppression: the next day's summary reaches her again.
    assert!(store.lift("JANE@example.com").await.unwrap());
    assert!(!store.lift("jane@example.com").await.unwrap(), "lifted once");
    assert_eq!(rows(store).await.len(), 2);
}

async fn a_seeded_suppression_is_skipped_by_a_mailing_task_and_the_others_are_mailed(backend: Backend) {
    let stack = start(backend).await;
    let suppression = Suppression {
        address: "jane@example.com".into(),
        reason: SuppressionReason::Complaint,
        feedback_id: "seeded".into(),
        subtype: Some("abuse".into()),
        at: utc("2026-11-20T10:00:00Z"),
    };
    stack.store.suppressions().suppress(&[suppression]).await.unwrap();
    let (emailed, suppressed) = mail(&stack).await;
    assert_eq!(emailed, ["mary@example.com", "richard@example.com"]);
    assert_eq!(suppressed, 1, "Jane, whose address the app stored in capitals, skipped as suppressed");
    let run = stack.store.runs().recent_runs(Some(daily_summary::NAME), 1).await.unwrap().remove(0);
    assert_eq!((run.sent, run.skipped, run.failed), (2, 1, 0), "a skip, not a failure: {run:?}");
}

on_both_stores!(
    feedback_through_sns_suppresses_by_the_rule_once_per_feedback,
    a_seeded_suppression_is_skipped_by_a_mailing_task_and_the_others_are_mailed,
);
