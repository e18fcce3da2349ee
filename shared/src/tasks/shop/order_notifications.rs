//! order-notifications: started by events, not a clock. The app, and subscription-processing, put order events
//! (source `shop.orders`: OrderPlaced, OrderShipped, PaymentFailed, DeliverySkipped, SubscriptionPaused) on the
//! bus; its rule routes them to this task's queue, so retries and the dead-letter queue work as for every task.
//! Each event becomes an email and an SMS (each where the customer allows it and can be reached), delivered once
//! per (order, event, channel): subject `order:<id>`, period `<event>/<channel>`.

use askama::Template;
use async_trait::async_trait;
use chrono::Duration;
use serde_json::Value;
use std::{collections::HashMap, sync::Arc};

use crate::{
    channels::{Channels, Rendered},
    deliveries::Deliveries,
    ports::{
        Contact, DeliveryKey, Email, Kind, OrderEventKind, OrderLine, OrderNotice, OrderNotices, ORDER_EVENT_SOURCE,
    },
    render::{self, filters, form, Footer},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    tasks::messages::{self, Letterhead, Message},
    time::Slot,
    Error, Result,
};

pub const NAME: &str = crate::ports::ORDER_EVENTS_TASK;

pub struct OrderNotifications {
    pub orders: Arc<dyn OrderNotices>,
    pub channels: Channels,
    pub letterhead: Letterhead,
}

/// What an event names: its kind (its detail-type) and its order (`detail.orderId`).
pub fn parse_event(event: &Value) -> Result<(OrderEventKind, i64)> {
    let detail_type = event.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    let kind = OrderEventKind::parse(detail_type).ok_or_else(|| {
        let known: Vec<&str> = OrderEventKind::ALL.iter().map(|k| k.as_str()).collect();
        Error::permanent(format!("unknown detail-type {detail_type:?}: the order events are {}", known.join(", ")))
    })?;
    // `detail` arrives as an object from a rule; some clients put it as a JSON string.
    let detail = match event.get("detail") {
        Some(Value::String(text)) => serde_json::from_str(text)
            .map_err(|e| Error::permanent(format!("{detail_type}: detail is a string that is not JSON: {e}")))?,
        Some(detail) => detail.clone(),
        None => Value::Null,
    };
    let order = detail
        .get("orderId")
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::permanent(format!("{detail_type}: detail.orderId is missing or not a whole number")))?;
    Ok((kind, order))
}

#[async_trait]
impl Task for OrderNotifications {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Events are counted in the run of their hour.
    fn granularity(&self) -> Duration {
        Duration::hours(1)
    }

    fn catch_up(&self) -> CatchUp {
        CatchUp::None
    }

    fn overlap(&self) -> Overlap {
        Overlap::Skip
    }

    fn event_source(&self) -> Option<&'static str> {
        Some(ORDER_EVENT_SOURCE)
    }

    async fn plan(&self, _slot: Slot, _fanout: &mut Fanout<'_>) -> Result<()> {
        Err(Error::permanent(format!("{NAME} is started by {ORDER_EVENT_SOURCE} events, never planned")))
    }

    async fn work(&self, _slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let (kind, order_id) = parse_event(&payload)?;
        let Some(order) = self.orders.order_notices(&[order_id]).await?.pop() else {
            return Err(Error::permanent(format!("{}: order {order_id} does not exist", kind.as_str())));
        };
        let mut report = WorkReport::default();
        let contacts: HashMap<i64, Contact> =
            self.channels.contacts.contacts(&[order.user_id]).await?.into_iter().map(|c| (c.user_id, c)).collect();
        let mut messages_out = vec![];
        if let Some(contact) = contacts.get(&order.user_id) {
            let now = deliveries.clock.now();
            let footer = self.letterhead.footer(order.user_id, Kind::Orders, now);
            messages_out.push(Message {
                user_id: order.user_id,
                key: DeliveryKey { subject: format!("order:{order_id}"), period: kind.as_str().to_owned() },
                rendered: render(&self.letterhead.from, contact, kind, &order, &footer)?,
            });
        }
        let now = deliveries.clock.now();
        messages::send_each(&self.channels, Kind::Orders, &contacts, messages_out, now, deliveries, &mut report)
            .await?;
        if contacts.is_empty() {
            report.skip("user deleted", 1);
        }
        Ok(report)
    }
}

/// What a notice says, in its email.
#[derive(Template)]
#[template(path = "shop/order_notice.html")]
struct Notice<'a> {
    name: &'a str,
    headline: String,
    detail: String,
    lines: &'a [OrderLine],
    total_cents: i64,
    currency: &'a str,
    order_id: i64,
    delivery: Option<String>,
    footer: &'a Footer,
}

form!(Text, "shop/order_notice.txt", Notice);

/// The headline, the sentence under it, and the SMS of each kind of event.
fn words(kind: OrderEventKind, order: &OrderNotice) -> (String, String, String) {
    let total = render::money(order.total_cents, &order.currency);
    let id = order.order_id;
    match kind {
        OrderEventKind::OrderPlaced => (
            format!("Order {id} confirmed"),
            format!("Thank you: we charged {total} and are getting it ready."),
            format!("Order {id} confirmed: {total} charged. We'll text you when it ships."),
        ),
        OrderEventKind::OrderShipped => (
            format!("Order {id} has shipped"),
            "It is on its way to you.".to_owned(),
            format!("Order {id} has shipped and is on its way."),
        ),
        OrderEventKind::PaymentFailed => {
            let reason = order.decline_reason.as_deref().unwrap_or("the card was declined");
            let retry = match order.retry_on {
                Some(day) => {
                    format!(" We will try again on {}; please check your card before then.", day.format("%A %-d %B"))
                }
                None => String::new(),
            };
            (
                format!("We could not charge {total} for order {id}"),
                format!("Your payment did not go through ({reason}).{retry}"),
                format!("Payment for order {id} ({total}) failed. Please check your card in the app."),
            )
        }
        OrderEventKind::DeliverySkipped => (
            format!("Your delivery of order {id} is skipped"),
            "It stayed out of stock for three days, so we skipped this delivery and charged nothing. Your \
             subscription goes on with the next one."
                .to_owned(),
            format!("Delivery {id} skipped: out of stock. Nothing was charged; your next delivery comes as planned."),
        ),
        OrderEventKind::SubscriptionPaused => (
            "Your subscription is paused".to_owned(),
            format!(
                "We could not charge {total} for order {id} after several tries, so we paused your subscription. \
                 Update your card and resume it in the app whenever you like."
            ),
            format!("Your subscription is paused: payment for order {id} failed. Update your card in the app."),
        ),
    }
}

/// The notice of `kind` about `order` to `to`, as an email and an SMS.
pub fn render(
    from: &str,
    to: &Contact,
    kind: OrderEventKind,
    order: &OrderNotice,
    footer: &Footer,
) -> Result<Rendered> {
    let (headline, detail, sms) = words(kind, order);
    let notice = Notice {
        name: &to.name,
        headline,
        detail,
        lines: &order.lines,
        total_cents: order.total_cents,
        currency: &order.currency,
        order_id: order.order_id,
        delivery: order.subscription_id.map(|_| order.delivery_date.format("%A %-d %B %Y").to_string()),
        footer,
    };
    let email: Email = render::email(from, &to.email, notice.headline.clone(), &notice, &Text(&notice), footer)?;
    Ok(Rendered { email: Some(email), sms: Some(sms), push: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> OrderNotice {
        OrderNotice {
            order_id: 42,
            user_id: 7,
            subscription_id: Some(3),
            delivery_date: "2026-12-01".parse().unwrap(),
            status: "paid".into(),
            total_cents: 259_800,
            currency: "INR".into(),
            lines: vec![OrderLine { product: "Whey <1 kg>".into(), quantity: 2, unit_price_cents: 129_900 }],
            decline_reason: Some("card declined: insufficient funds".into()),
            retry_on: Some("2026-12-02".parse().unwrap()),
        }
    }

    fn contact() -> Contact {
        Contact {
            user_id: 7,
            name: "Ana <admin>".into(),
            email: "ana@example.com".into(),
            phone: Some("+447700900123".into()),
            time_zone: "Europe/London".into(),
            email_opt_in: false,
            email_suppressed: false,
            devices: vec![],
            choices: vec![],
        }
    }

    fn rendered(kind: OrderEventKind) -> Rendered {
        let footer = Footer { kind: Kind::Orders, unsubscribe: None, preferences: None };
        render("shop@example.com", &contact(), kind, &order(), &footer).unwrap()
    }

    #[test]
    fn every_kind_has_an_email_with_its_lines_and_a_short_sms() {
        for kind in OrderEventKind::ALL {
            let rendered = rendered(kind);
            let (email, sms) = (rendered.email.unwrap(), rendered.sms.unwrap());
            assert!(email.text.contains("2 × Whey <1 kg>: ₹2,598.00"), "{kind:?}: {}", email.text);
            assert!(email.text.contains("Total: ₹2,598.00"), "{kind:?}: {}", email.text);
            assert!(email.html.contains("Whey &#60;1 kg&#62;") && !email.html.contains("<1 kg>"), "{}", email.html);
            assert!(email.text.contains("You get this because you have an order"), "{}", email.text);
            assert!(!email.text.contains("Unsubscribe"), "transactional: no unsubscribe link");
            assert!(sms.chars().count() < 160 && !sms.contains("http"), "{kind:?}: {sms}");
            assert!(sms.contains("42"), "{kind:?}: the SMS names the order: {sms}");
        }
    }

    #[test]
    fn a_declined_payment_says_why_and_when_it_is_tried_again() {
        let email = rendered(OrderEventKind::PaymentFailed).email.unwrap();
        assert_eq!(email.subject, "We could not charge ₹2,598.00 for order 42");
        assert!(
            email.text.contains("insufficient funds") && email.text.contains("Wednesday 2 December"),
            "{}",
            email.text
        );
    }

    #[test]
    fn an_event_names_its_kind_and_order_or_says_what_is_wrong() {
        let event = |detail_type: &str, detail: Value| json!({ "detail-type": detail_type, "detail": detail });
        assert_eq!(
            parse_event(&event("OrderPlaced", json!({"orderId": 9}))).unwrap(),
            (OrderEventKind::OrderPlaced, 9)
        );
        let string_detail = event("OrderShipped", json!("{\"orderId\": 5}"));
        assert_eq!(parse_event(&string_detail).unwrap(), (OrderEventKind::OrderShipped, 5));
        let unknown = parse_event(&event("OrderEaten", json!({"orderId": 9}))).unwrap_err().to_string();
        assert!(unknown.contains("unknown detail-type \"OrderEaten\"") && unknown.contains("OrderPlaced"), "{unknown}");
        let missing = parse_event(&event("OrderPlaced", json!({"order": 9}))).unwrap_err().to_string();
        assert!(missing.contains("detail.orderId"), "{missing}");
        assert!(matches!(parse_event(&event("OrderPlaced", json!({"orderId": "9"}))), Err(Error::Permanent(_))));
    }

    #[test]
    fn the_sample_events_are_what_the_task_reads() {
        let samples = [
            (include_str!("../../../../events/order-placed.json"), OrderEventKind::OrderPlaced),
            (include_str!("../../../../events/order-shipped.json"), OrderEventKind::OrderShipped),
            (include_str!("../../../../events/payment-failed.json"), OrderEventKind::PaymentFailed),
            (include_str!("../../../../events/delivery-skipped.json"), OrderEventKind::DeliverySkipped),
            (include_str!("../../../../events/subscription-paused.json"), OrderEventKind::SubscriptionPaused),
        ];
        for (text, kind) in samples {
            let event: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse_event(&event).unwrap().0, kind);
            assert_eq!(event["source"], ORDER_EVENT_SOURCE);
        }
        let batch: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_str(include_str!("../../../../events/order-events-batch.json")).unwrap();
        assert_eq!(batch.records.len(), 2);
        for record in batch.records {
            parse_event(&serde_json::from_str(record.body.as_deref().unwrap()).unwrap()).unwrap();
        }
    }
}
