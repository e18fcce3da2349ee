//! `jobs trigger` and `jobs backfill` in AWS: the events they put match the manual-trigger rule template.yaml
//! deploys (its pattern is read from the template), and the function recognises what the rule delivers as a
//! manual trigger of that slot. The rule's target is an SQS queue here, to read what it delivered.

use chrono::{DateTime, Utc};
use infra::event_bus::EventBridgeBus;
use integration_tests::moto::Moto;
use shared::invocation::{recognise, Invocation, TriggerSource};

/// The EventPattern of DailySummaryFunction's EventBridgeRule event, as template.yaml has it.
fn manual_trigger_pattern() -> String {
    let template = integration_tests::template::real();
    let events = &template["Resources"]["DailySummaryFunction"]["Properties"]["Events"];
    let rule = events
        .as_object()
        .unwrap()
        .values()
        .find(|e| e["Type"].as_str() == Some("EventBridgeRule"))
        .expect("template.yaml has a manual-trigger rule for daily-summary");
    serde_json::to_string(&rule["Properties"]["Pattern"]).unwrap()
}

#[tokio::test]
async fn triggers_reach_the_task_through_its_rule_as_manual_runs_of_their_slots() {
    let moto = Moto::start().await;
    let (url, _) = moto.create_queue_pair("manual-triggers", 3, 30).await;
    let sqs = moto.sqs().await;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let events = moto.events().await;
    events.put_rule().name("manual").event_pattern(manual_trigger_pattern()).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().unwrap();
    events.put_targets().rule("manual").targets(target).send().await.unwrap();

    // Twelve slots: more than one PutEvents call holds.
    let slots: Vec<DateTime<Utc>> = (0..12).map(|h| format!("2026-11-22T{h:02}:00:00Z").parse().unwrap()).collect();
    let bus = EventBridgeBus::new(events.clone(), "default");
    assert_eq!(bus.trigger("daily-summary", &slots).await.unwrap(), 12);
    // Another task's trigger does not match daily-summary's rule.
    bus.trigger("weekly-report", &slots[..1]).await.unwrap();

    let mut delivered = vec![];
    while delivered.len() < 13 {
        let batch = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        if batch.messages().is_empty() {
            break;
        }
        for message in batch.messages() {
            let event: serde_json::Value = serde_json::from_str(message.body().unwrap()).unwrap();
            let Invocation::Scheduled(trigger) = recognise(event).unwrap() else { panic!("not a trigger") };
            assert_eq!((trigger.source, trigger.task.as_deref()), (TriggerSource::Manual, Some("daily-summary")));
            delivered.push(trigger.time);
        }
    }
    delivered.sort();
    assert_eq!(delivered, slots);
}
