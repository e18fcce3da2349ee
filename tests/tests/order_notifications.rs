//! order-notifications, the task started by events, on both stores: the events subscription-processing
//! publishes reach its queue (as the bus's rule would put them there), each becomes one email and one SMS once
//! however often it is delivered, and whatever is not an order event of the shop is dead-lettered with its
//! reason while the rest of its batch goes on. On moto: the rule read from template.yaml routes the events.

use std::time::Duration;

use infra::event_bus::{EventBridgeBus, QueueOrderEvents};
use integration_tests::{moto::Moto, nudges::Backend, shop::ShopStack};
use shared::{
    ports::{Channel, Choice, Kind, OrderEvent, OrderEventKind, OrderEvents},
    runtime::{sqs_event, MessageOutcome},
    tasks::shop::order_notifications::{parse_event, NAME},
};

/// Two customers' first deliveries charged on 1 December, their OrderPlaced events published to the
/// notifications' queue at noon in London; the second customer turned SMS off for orders.
async fn placed_orders(backend: Backend) -> (ShopStack, Vec<OrderEvent>) {
    let stack = ShopStack::start(backend, "2026-12-01T00:00:00Z").await;
    let users = stack.users(2).await;
    let product = stack.product(129_900, 100).await;
    stack.subscribe(&users, product, 1, "2026-12-01", "pm_visa").await;
    let choice = Choice { kind: Kind::Orders, channel: Channel::Sms, allowed: false };
    stack.store.contacts().choose(users[1], choice).await.unwrap();
    let processing = stack.runtime(stack.task());
    stack.run_day(&processing, "2026-12-01").await;
    let events = stack.events.published();
    assert_eq!(events.len(), 2, "{events:?}");
    stack.clock.set("2026-12-01T12:00:00Z".parse().unwrap());
    (stack, events)
}

async fn each_order_event_is_one_email_and_one_sms_once(backend: Backend) {
    let (stack, events) = placed_orders(backend).await;
    let (runtime, mailer, notifier) = stack.notifications();
    let bus = QueueOrderEvents { queue: runtime.queue.clone() };
    bus.publish(&events).await.unwrap();
    runtime.drain().await.unwrap();
    let mut subjects: Vec<String> = mailer.sent().into_iter().map(|e| e.subject).collect();
    let mut expected: Vec<String> = events.iter().map(|e| format!("Order {} confirmed", e.order_id)).collect();
    subjects.sort();
    expected.sort();
    assert_eq!(subjects, expected);
    let sms = notifier.sms_sent();
    assert_eq!(sms.len(), 1, "the second customer turned SMS off for orders: {sms:?}");
    assert_eq!(sms[0].to, "+447700900000", "the first customer's phone");
    assert!(sms[0].text.contains(" confirmed: ₹1,299.00 charged"), "{sms:?}");

    // The bus delivers the same events again (each a new envelope): nothing goes twice.
    bus.publish(&events).await.unwrap();
    runtime.drain().await.unwrap();
    assert_eq!((mailer.sent().len(), notifier.sms_sent().len()), (2, 1));
    // The hour's run counts the events the bus delivered, and each send once.
    let run = stack.store.runs().run(NAME, "2026-12-01T00:00:00Z".parse().unwrap()).await.unwrap().unwrap();
    assert_eq!((run.planned, run.messages, run.messages_done, run.sent), (4, 4, 4, 3), "{run:?}");
    assert_eq!(run.status, "done");
}

async fn an_sms_in_the_customers_night_waits_for_the_morning_and_the_email_does_not(backend: Backend) {
    let (stack, events) = placed_orders(backend).await;
    stack.clock.set("2026-12-01T23:00:00Z".parse().unwrap());
    let (runtime, mailer, notifier) = stack.notifications();
    QueueOrderEvents { queue: runtime.queue.clone() }.publish(&events).await.unwrap();
    let outcomes = runtime.drain().await.unwrap();
    let held = outcomes.iter().flat_map(|b| &b.messages).filter(|(_, o)| matches!(o, MessageOutcome::Retry { .. }));
    assert_eq!(held.count(), 1, "the event whose customer takes SMS comes back in the morning: {outcomes:?}");
    assert_eq!((mailer.sent().len(), notifier.sms_sent().len()), (2, 0));
    stack.clock.set("2026-12-02T08:00:01Z".parse().unwrap());
    runtime.drain().await.unwrap();
    assert_eq!((mailer.sent().len(), notifier.sms_sent().len()), (2, 1));
}

async fn what_is_not_an_order_event_is_dead_lettered_with_its_reason_and_the_batch_goes_on(backend: Backend) {
    let (stack, events) = placed_orders(backend).await;
    let (runtime, mailer, _) = stack.notifications();
    let good = QueueOrderEvents::envelope(&events[0]);
    let with = |key: &str, value: serde_json::Value| {
        let mut event = good.clone();
        event[key] = value;
        event.to_string()
    };
    let bodies = [
        ("not JSON", "{ nope".to_owned()),
        ("EventBridge event", serde_json::json!({ "detail-type": "OrderPlaced" }).to_string()),
        ("of source \"jobs.manual\"", with("source", "jobs.manual".into())),
        ("unknown detail-type \"OrderEaten\"", with("detail-type", "OrderEaten".into())),
        ("detail.orderId is missing", with("detail", serde_json::json!({ "order": 1 }))),
        ("order 999999 does not exist", with("detail", serde_json::json!({ "orderId": 999_999 }))),
        ("", good.to_string()),
    ];
    let texts: Vec<String> = bodies.iter().map(|(_, body)| body.clone()).collect();
    runtime.queue.send_batch(&texts).await.unwrap();
    let received = runtime.queue.receive(10, Duration::from_secs(60)).await.unwrap();
    let report = runtime.work(sqs_event(&received)).await;
    for ((reason, _), (_, outcome)) in bodies.iter().zip(&report.messages) {
        match outcome {
            MessageOutcome::DeadLettered { reason: why } => assert!(why.contains(reason), "{reason}: {why}"),
            MessageOutcome::Done { .. } => assert!(reason.is_empty(), "{reason} was worked"),
            other => panic!("{reason}: {other:?}"),
        }
    }
    assert_eq!(mailer.sent().len(), 1, "the good event of the batch was sent");
    assert_eq!(runtime.queue.peek_dead_letters(10).await.unwrap().len(), 6);
}

integration_tests::on_both_stores!(
    each_order_event_is_one_email_and_one_sms_once,
    an_sms_in_the_customers_night_waits_for_the_morning_and_the_email_does_not,
    what_is_not_an_order_event_is_dead_lettered_with_its_reason_and_the_batch_goes_on,
);

/// The rule template.yaml deploys, installed in moto's EventBridge with a queue as its target: the events the
/// EventBridge adapter puts reach the queue as the task reads them; other events do not.
#[tokio::test]
async fn the_templates_rule_routes_order_events_to_the_queue_and_nothing_else() {
    let moto = Moto::start().await;
    let (url, _) = moto.create_queue_pair("order-notifications", 4, 30).await;
    let sqs = moto.sqs().await;
    let arn_attribute = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    let attributes = sqs.get_queue_attributes().queue_url(&url).attribute_names(arn_attribute.clone()).send().await;
    let arn = attributes.unwrap().attributes().unwrap()[&arn_attribute].clone();
    let template = integration_tests::template::real();
    let pattern = &template["Resources"]["OrderEventsRule"]["Properties"]["EventPattern"];
    let events = moto.events().await;
    events.put_rule().name("orders").event_pattern(pattern.to_string()).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().unwrap();
    events.put_targets().rule("orders").targets(target).send().await.unwrap();

    let bus = EventBridgeBus::new(events.clone(), "default");
    let now = chrono::Utc::now();
    let published: Vec<OrderEvent> = OrderEventKind::ALL
        .into_iter()
        .enumerate()
        .map(|(i, kind)| OrderEvent { id: i as i64, order_id: 100 + i as i64, kind, at: now })
        .collect();
    bus.publish(&published).await.unwrap();
    // A manual trigger is another source: not for this rule.
    bus.trigger("daily-summary", &[now]).await.unwrap();

    let mut routed = vec![];
    loop {
        let batch = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        if batch.messages().is_empty() {
            break;
        }
        for message in batch.messages() {
            let event: serde_json::Value = serde_json::from_str(message.body().unwrap()).unwrap();
            assert_eq!(event["source"], "shop.orders");
            routed.push(parse_event(&event).unwrap());
        }
    }
    routed.sort();
    let mut expected: Vec<(OrderEventKind, i64)> = published.iter().map(|e| (e.kind, e.order_id)).collect();
    expected.sort();
    assert_eq!(routed, expected);
}
