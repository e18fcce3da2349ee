//! The notifiers: SNS on moto publishes SMS and pushes and reads a disabled endpoint as a gone device; the
//! outbox appends JSON lines and honours its gone-endpoints list; both refuse a malformed number or ARN.

use std::sync::Arc;

use infra::{outbox::OutboxNotifier, sns::SnsNotifier};
use integration_tests::moto::Moto;
use shared::ports::{Notifier, Push, Pushed, Sms};

fn sms(to: &str) -> Sms {
    Sms { to: to.into(), text: "Zeit zu trainieren ✓".into() }
}

fn push(endpoint_arn: &str) -> Push {
    Push { endpoint_arn: endpoint_arn.into(), title: "Time to train".into(), body: "Your streak: 4 days ✓".into() }
}

/// A platform application and one endpoint of it on moto: the endpoint's ARN.
async fn endpoint(moto: &Moto, token: &str) -> String {
    let sns = moto.sns().await;
    let app = sns
        .create_platform_application()
        .name("fitness")
        .platform("GCM")
        .attributes("PlatformCredential", "server-key")
        .send()
        .await
        .expect("a platform application");
    let endpoint = sns
        .create_platform_endpoint()
        .platform_application_arn(app.platform_application_arn().expect("its ARN"))
        .token(token)
        .send()
        .await
        .expect("a platform endpoint");
    endpoint.endpoint_arn().expect("its ARN").to_owned()
}

#[tokio::test]
async fn sns_publishes_an_sms_to_the_number() {
    let moto = Moto::start().await;
    let id = SnsNotifier::new(moto.sns().await).sms(&sms("+447700900123")).await.unwrap();
    // moto keeps number and text, not the Transactional attribute: that part is checked by nobody here.
    assert_eq!(moto.sms_messages().await, [(id, "+447700900123".into(), "Zeit zu trainieren ✓".into())]);
}

#[tokio::test]
async fn sns_pushes_title_and_body_to_an_endpoint() {
    let moto = Moto::start().await;
    let arn = endpoint(&moto, "token-1").await;
    let Pushed::Sent(id) = SnsNotifier::new(moto.sns().await).push(&push(&arn)).await.unwrap() else {
        panic!("not sent")
    };
    let endpoints = moto.endpoint_messages().await;
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].0, arn);
    let message: serde_json::Value = serde_json::from_str(endpoints[0].1[&id].as_str().expect("the message")).unwrap();
    let fcm: serde_json::Value = serde_json::from_str(message["GCM"].as_str().unwrap()).unwrap();
    assert_eq!(fcm["notification"]["title"], "Time to train");
    assert_eq!(fcm["notification"]["body"], "Your streak: 4 days ✓");
}

#[tokio::test]
async fn a_disabled_or_deleted_endpoint_is_gone_and_named_nowhere() {
    let moto = Moto::start().await;
    let sns = moto.sns().await;
    let notifier = SnsNotifier::new(sns.clone());
    let arn = endpoint(&moto, "token-2").await;
    sns.set_endpoint_attributes().endpoint_arn(&arn).attributes("Enabled", "false").send().await.unwrap();
    match notifier.push(&push(&arn)).await.unwrap() {
        Pushed::Gone(reason) => {
            assert!(reason.starts_with("EndpointDisabled"), "{reason}");
            assert!(!reason.contains("endpoint/"), "{reason}");
        }
        sent => panic!("{sent:?}"),
    }
    sns.delete_endpoint().endpoint_arn(&arn).send().await.unwrap();
    assert!(
        matches!(notifier.push(&push(&arn)).await.unwrap(), Pushed::Gone(reason) if reason.starts_with("NotFound"))
    );
}

#[tokio::test]
async fn a_malformed_number_or_arn_fails_for_good_before_sns_is_asked() {
    let moto = Moto::start().await;
    let notifier = SnsNotifier::new(moto.sns().await);
    let e = notifier.sms(&sms("07700 900123")).await.unwrap_err();
    assert!(matches!(&e, shared::Error::Permanent(m) if !m.contains("900123")), "{e:?}");
    let e = notifier.push(&push("arn:aws:sns:us-east-1:123456789012:fitness-topic")).await.unwrap_err();
    assert!(matches!(&e, shared::Error::Permanent(m) if !m.contains("fitness-topic")), "{e:?}");
    assert!(moto.sms_messages().await.is_empty());
}

#[tokio::test]
async fn an_endpoint_sns_never_made_is_gone() {
    // A well-formed ARN of no endpoint: SNS answers NotFound, a gone device rather than an error.
    let moto = Moto::start().await;
    let arn = "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/fitness/00000000-0000-0000-0000-000000000000";
    assert!(matches!(SnsNotifier::new(moto.sns().await).push(&push(arn)).await.unwrap(), Pushed::Gone(_)));
}

fn outbox_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()))
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_outbox_appends_one_whole_line_per_message_even_from_concurrent_senders() {
    let dir = outbox_dir();
    let outbox = Arc::new(OutboxNotifier::new(&dir).unwrap());
    let arn = "arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/fitness/1";
    let sends: Vec<_> = (0..50)
        .map(|i| {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let text = format!("{i} {}", "x".repeat(2000));
                outbox.sms(&Sms { to: "+447700900123".into(), text }).await.unwrap();
                outbox.push(&push(arn)).await.unwrap()
            })
        })
        .collect();
    for send in sends {
        assert!(matches!(send.await.unwrap(), Pushed::Sent(_)));
    }
    let sms = lines(&dir.join("sms.jsonl"));
    assert_eq!(sms.len(), 50);
    assert!(sms.iter().all(|l| l["to"] == "+447700900123" && l["text"].as_str().unwrap().len() > 2000));
    let at = sms[0]["at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    let pushes = lines(&dir.join("push.jsonl"));
    assert_eq!(pushes.len(), 50);
    assert_eq!((pushes[0]["endpoint_arn"].as_str(), pushes[0]["title"].as_str()), (Some(arn), Some("Time to train")));
    assert!(pushes[0]["body"].is_string() && pushes[0]["id"].is_string());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_outbox_treats_a_listed_endpoint_as_gone_and_refuses_malformed_ones() {
    let dir = outbox_dir();
    let outbox = OutboxNotifier::new(&dir).unwrap();
    let (gone, kept) = (
        "arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/fitness/1",
        "arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/fitness/2",
    );
    std::fs::write(dir.join(infra::outbox::GONE_ENDPOINTS), format!("{gone}\n")).unwrap();
    assert!(matches!(outbox.push(&push(gone)).await.unwrap(), Pushed::Gone(_)));
    assert!(matches!(outbox.push(&push(kept)).await.unwrap(), Pushed::Sent(_)));
    assert_eq!(lines(&dir.join("push.jsonl")).len(), 1, "nothing written for the gone one");
    assert!(matches!(outbox.push(&push("arn:nope")).await.unwrap_err(), shared::Error::Permanent(_)));
    assert!(matches!(outbox.sms(&sms("+44")).await.unwrap_err(), shared::Error::Permanent(_)));
    std::fs::remove_dir_all(&dir).unwrap();
}
