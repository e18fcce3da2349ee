//! renewal-reminders: 24 hours before subscription-processing charges and sends a delivery (at 00:00 UTC of
//! its date), an email saying what will be sent, what will be charged to which card, when in the customer's
//! own zone, and where to manage the subscription. Daily at 00:00 UTC: the slot of day D plans the active
//! subscriptions delivering on D + 1, and each chunk re-reads them at work time, so a subscription paused,
//! cancelled or moved after the plan gets nothing. Delivery key: (subscription, delivery date).

use askama::Template;
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::{collections::HashMap, sync::Arc};

use crate::{
    channels::{Channels, Rendered},
    deliveries::Deliveries,
    ports::{Contact, DeliveryKey, Email, Frequency, Kind, Renewal, Renewals},
    render::{self, filters, Footer},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    tasks::messages::{self, Letterhead, Message},
    time::Slot,
    Error, Result,
};

pub const NAME: &str = "renewal-reminders";

pub struct RenewalReminders {
    pub renewals: Arc<dyn Renewals>,
    pub channels: Channels,
    pub letterhead: Letterhead,
    /// The shop's web address (`SHOP_URL`): each email links to the subscription's page under it. Without it
    /// the email says where in the app to manage it, rather than carry a link that leads nowhere.
    pub shop_url: Option<String>,
    /// Subscriptions per queued message.
    pub chunk_size: u32,
}

/// One planned chunk: subscriptions whose next delivery was `delivery_date` when planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Chunk {
    delivery_date: NaiveDate,
    subscriptions: Vec<i64>,
}

/// When subscription-processing charges a delivery of `date`: the first slot of its daily 00:00 UTC schedule
/// that reaches it.
pub fn charged_at(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// A subscription as the ledger names it.
pub fn subject(subscription_id: i64) -> String {
    format!("subscription:{subscription_id}")
}

#[async_trait]
impl Task for RenewalReminders {
    fn name(&self) -> &'static str {
        NAME
    }

    fn granularity(&self) -> Duration {
        Duration::days(1)
    }

    /// Each day's slot reminds a different day's deliveries, so a missed slot is planned late. Its reminder is
    /// still worth sending while its delivery has not been charged; once it has, the work skips the whole
    /// chunk with that reason (and the re-read finds the date moved on anyway), so catching up never tells a
    /// customer of a charge already made.
    fn catch_up(&self) -> CatchUp {
        CatchUp::All
    }

    fn overlap(&self) -> Overlap {
        Overlap::Wait(std::time::Duration::from_secs(20))
    }

    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        let delivery_date = slot.time().date_naive() + Duration::days(1);
        let mut after = 0;
        loop {
            let subscriptions = self.renewals.renewals_due(delivery_date, after, self.chunk_size).await?;
            let Some(&last) = subscriptions.last() else { break };
            after = last;
            let count = subscriptions.len() as u64;
            let chunk = serde_json::to_value(Chunk { delivery_date, subscriptions }).expect("a chunk serialises");
            fanout.push(chunk, count).await?;
        }
        fanout.flush().await
    }

    async fn work(&self, _slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let Chunk { delivery_date, subscriptions } = serde_json::from_value(payload)
            .map_err(|e| Error::permanent(format!("a {NAME} payload that does not parse: {e}")))?;
        let mut report = WorkReport::default();
        let now = deliveries.clock.now();
        if now >= charged_at(delivery_date) {
            report.skip("the delivery was charged before its reminder could go", subscriptions.len() as u64);
            return Ok(report);
        }

        let found = self.renewals.renewals(&subscriptions).await?;
        report.skip("subscription deleted", (subscriptions.len() - found.len()) as u64);
        let mut renewing = vec![];
        for renewal in found {
            match renews(&renewal, delivery_date) {
                Ok(frequency) => renewing.push((renewal, frequency)),
                Err(NoRenewal { reason, error }) => {
                    report.skip(reason, 1);
                    report.errors.extend(error);
                }
            }
        }

        let users: Vec<i64> = renewing.iter().map(|(r, _)| r.user_id).collect();
        let contacts: HashMap<i64, Contact> =
            self.channels.contacts.contacts(&users).await?.into_iter().map(|c| (c.user_id, c)).collect();
        let mut messages = vec![];
        for (renewal, frequency) in &renewing {
            let Some(contact) = contacts.get(&renewal.user_id) else {
                report.skip("user deleted", 1);
                continue;
            };
            let footer = self.letterhead.footer(renewal.user_id, Kind::Orders, now);
            let email = render(&self.letterhead.from, contact, renewal, *frequency, self.shop_url.as_deref(), &footer)?;
            messages.push(Message {
                user_id: renewal.user_id,
                key: DeliveryKey { subject: subject(renewal.subscription_id), period: delivery_date.to_string() },
                rendered: Rendered { email: Some(email), ..Rendered::default() },
            });
        }
        messages::send(&self.channels, Kind::Orders, &contacts, messages, now, deliveries, &mut report).await?;
        Ok(report)
    }
}

/// Why a planned subscription gets no reminder: a reason to count it under, and, for a row the app should
/// not have, an error for the run's log.
#[derive(Debug, PartialEq, Eq)]
struct NoRenewal {
    reason: &'static str,
    error: Option<String>,
}

impl NoRenewal {
    fn because(reason: &'static str) -> Self {
        Self { reason, error: None }
    }
}

/// Whether the subscription, as it is now, still renews on `delivery_date`: what subscription-processing
/// would refuse to charge is not announced.
fn renews(renewal: &Renewal, delivery_date: NaiveDate) -> Result<Frequency, NoRenewal> {
    match renewal.status.as_str() {
        "active" => {}
        "paused" => return Err(NoRenewal::because("subscription paused")),
        "cancelled" => return Err(NoRenewal::because("subscription cancelled")),
        _ => return Err(NoRenewal::because("subscription not active")),
    }
    if renewal.next_delivery_date != delivery_date {
        return Err(NoRenewal::because("delivery moved to another date"));
    }
    if renewal.product.is_none() {
        return Err(NoRenewal::because("product no longer sold"));
    }
    if renewal.quantity <= 0 {
        return Err(NoRenewal::because("quantity not above zero"));
    }
    Frequency::parse(&renewal.frequency, renewal.interval_days, renewal.anchor_day).map_err(|e| NoRenewal {
        reason: "frequency the code does not know",
        error: Some(format!("subscription {}: {e}", renewal.subscription_id)),
    })
}

/// What a reminder says, for its two templates. Every time in it is in the customer's zone.
#[derive(Template)]
#[template(path = "shop/renewal_reminder.html")]
struct Reminder<'a> {
    name: &'a str,
    product: &'a str,
    quantity: i64,
    amount_cents: i64,
    currency: &'a str,
    payment_method: &'a str,
    /// "Monday 30 November at 19:00"
    charged_at: String,
    /// "every month"
    cadence: String,
    /// When the delivery after this one is charged, as `charged_at`.
    following: String,
    /// Which zone the times are in, or that they are in UTC for want of the customer's.
    zone_note: String,
    /// The subscription's page in the shop, when the shop's address is configured.
    manage: Option<String>,
    footer: &'a Footer,
}

render::form!(Text, "shop/renewal_reminder.txt", Reminder);

/// The moment `date`'s delivery is charged, as the customer's clock shows it: "Monday 30 November at 19:00".
fn local(zone: Option<Tz>, date: NaiveDate) -> String {
    const FORMAT: &str = "%A %-d %B at %H:%M";
    match zone {
        Some(zone) => charged_at(date).with_timezone(&zone).format(FORMAT).to_string(),
        None => format!("{} UTC", charged_at(date).format(FORMAT)),
    }
}

/// The reminder to `to` of the delivery `renewal` is due for, as an email.
pub fn render(
    from: &str,
    to: &Contact,
    renewal: &Renewal,
    frequency: Frequency,
    shop_url: Option<&str>,
    footer: &Footer,
) -> Result<Email> {
    let zone = to.time_zone.parse::<Tz>().ok();
    let zone_note = match zone {
        Some(_) => format!("Times are in your time zone, {}.", to.time_zone),
        None => "Times are in UTC: we do not know your time zone (you can set it in the app).".to_owned(),
    };
    let cadence = match frequency {
        Frequency::Weekly => "every week".to_owned(),
        Frequency::EveryDays(1) => "every day".to_owned(),
        Frequency::EveryDays(n) => format!("every {n} days"),
        Frequency::Monthly { .. } => "every month".to_owned(),
    };
    let reminder = Reminder {
        name: &to.name,
        product: renewal.product.as_deref().unwrap_or_default(),
        quantity: renewal.quantity,
        amount_cents: renewal.amount_cents,
        currency: &renewal.currency,
        payment_method: &renewal.payment_method,
        charged_at: local(zone, renewal.next_delivery_date),
        cadence,
        following: local(zone, frequency.next(renewal.next_delivery_date)),
        zone_note,
        manage: shop_url
            .map(|url| format!("{}/account/subscriptions/{}", url.trim_end_matches('/'), renewal.subscription_id)),
        footer,
    };
    let subject = format!(
        "Renewing {}: {} × {} for {}",
        reminder.charged_at,
        reminder.quantity,
        reminder.product,
        render::money(reminder.amount_cents, reminder.currency)
    );
    render::email(from, &to.email, subject, &reminder, &Text(&reminder), footer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn contact(zone: &str) -> Contact {
        Contact {
            user_id: 7,
            name: "Ana <admin>".into(),
            email: "ana@example.com".into(),
            phone: Some("+447700900123".into()),
            time_zone: zone.into(),
            email_opt_in: false,
            email_suppressed: false,
            devices: vec![],
            choices: vec![],
        }
    }

    fn renewal(next: &str) -> Renewal {
        Renewal {
            subscription_id: 42,
            user_id: 7,
            status: "active".into(),
            next_delivery_date: d(next),
            product: Some("Beans & <Co> \"dark\"".into()),
            quantity: 2,
            amount_cents: 259_800,
            currency: "INR".into(),
            payment_method: "card_visa_4242".into(),
            frequency: "monthly".into(),
            interval_days: None,
            anchor_day: Some(31),
        }
    }

    fn footer() -> Footer {
        Footer { kind: Kind::Orders, unsubscribe: None, preferences: Some("https://app.example/prefs".into()) }
    }

    fn email(zone: &str, next: &str, shop_url: Option<&str>) -> Email {
        let frequency = Frequency::Monthly { anchor_day: 31 };
        render("shop@example.com", &contact(zone), &renewal(next), frequency, shop_url, &footer()).unwrap()
    }

    #[test]
    fn the_charge_moment_is_told_in_the_customers_zone_east_and_west_of_utc() {
        // 00:00 UTC on Tuesday 1 December 2026.
        assert_eq!(local("America/New_York".parse().ok(), d("2026-12-01")), "Monday 30 November at 19:00");
        assert_eq!(local("Asia/Kolkata".parse().ok(), d("2026-12-01")), "Tuesday 1 December at 05:30");
        assert_eq!(local("Pacific/Kiritimati".parse().ok(), d("2026-12-01")), "Tuesday 1 December at 14:00");
        assert_eq!(local(None, d("2026-12-01")), "Tuesday 1 December at 00:00 UTC");
    }

    #[test]
    fn the_charge_moment_follows_daylight_saving() {
        let london = "Europe/London".parse().ok();
        assert_eq!(local(london, d("2027-03-28")), "Sunday 28 March at 00:00", "GMT until 01:00 UTC that day");
        assert_eq!(local(london, d("2027-03-29")), "Monday 29 March at 01:00", "BST from the 28th");
        let new_york = "America/New_York".parse().ok();
        assert_eq!(local(new_york, d("2027-03-14")), "Saturday 13 March at 19:00", "EST");
        assert_eq!(local(new_york, d("2027-03-15")), "Sunday 14 March at 20:00", "EDT from the 14th");
    }

    #[test]
    fn the_email_says_what_is_sent_and_charged_to_which_card_and_when() {
        let email = email("America/New_York", "2026-12-31", Some("https://shop.example/"));
        assert_eq!(email.subject, "Renewing Wednesday 30 December at 19:00: 2 × Beans & <Co> \"dark\" for ₹2,598.00");
        for part in [&email.text, &email.html] {
            assert!(part.contains("₹2,598.00"), "{part}");
            assert!(part.contains("card_visa_4242"), "{part}");
            assert!(part.contains("Wednesday 30 December at 19:00"), "{part}");
            assert!(part.contains("America/New_York"), "{part}");
            // Monthly on the 31st: the delivery after 31 December is 31 January, charged the 30th in New York.
            assert!(part.contains("every month") && part.contains("Saturday 30 January at 19:00"), "{part}");
            assert!(part.contains("https://shop.example/account/subscriptions/42"), "{part}");
            assert!(part.contains("You get this because you have an order or a subscription with us."), "{part}");
        }
        assert!(email.text.contains("Hi Ana <admin>,") && email.text.contains("2 × Beans & <Co> \"dark\""));
    }

    #[test]
    fn html_escapes_what_the_customer_and_the_app_wrote() {
        let html = email("Europe/London", "2026-12-01", None).html;
        assert!(html.contains("Ana &#60;admin&#62;") && !html.contains("<admin>"), "{html}");
        assert!(html.contains("Beans &#38; &#60;Co&#62; &#34;dark&#34;") && !html.contains("<Co>"), "{html}");
    }

    #[test]
    fn a_transactional_reminder_has_no_unsubscribe_link() {
        let email = email("Europe/London", "2026-12-01", Some("https://shop.example"));
        assert_eq!(email.unsubscribe, None);
        for part in [&email.text, &email.html] {
            assert!(!part.to_lowercase().contains("unsubscribe"), "{part}");
            assert!(part.contains("https://app.example/prefs"), "{part}");
        }
    }

    #[test]
    fn without_a_shop_url_the_email_points_to_the_app_not_a_broken_link() {
        let email = email("Europe/London", "2026-12-01", None);
        for part in [&email.text, &email.html] {
            assert!(!part.contains("/account/subscriptions"), "{part}");
            assert!(part.contains("Subscriptions in your account in the app"), "{part}");
        }
    }

    #[test]
    fn an_unknown_zone_falls_back_to_utc_and_says_so() {
        let email = email("Mars/Olympus_Mons", "2026-12-01", None);
        for part in [&email.text, &email.html] {
            assert!(part.contains("Tuesday 1 December at 00:00 UTC"), "{part}");
            assert!(part.contains("we do not know your time zone"), "{part}");
        }
    }

    #[test]
    fn what_would_not_be_charged_is_not_announced_and_says_why() {
        let day = d("2026-12-01");
        let check = |change: fn(&mut Renewal)| {
            let mut r = renewal("2026-12-01");
            change(&mut r);
            renews(&r, day).map_err(|e| e.reason)
        };
        assert_eq!(check(|_| {}), Ok(Frequency::Monthly { anchor_day: 31 }));
        assert_eq!(check(|r| r.status = "paused".into()), Err("subscription paused"));
        assert_eq!(check(|r| r.status = "cancelled".into()), Err("subscription cancelled"));
        assert_eq!(check(|r| r.next_delivery_date = d("2026-12-08")), Err("delivery moved to another date"));
        assert_eq!(check(|r| r.product = None), Err("product no longer sold"));
        assert_eq!(check(|r| r.quantity = 0), Err("quantity not above zero"));
        assert_eq!(check(|r| r.frequency = "fortnightly".into()), Err("frequency the code does not know"));
        let mut odd = renewal("2026-12-01");
        odd.frequency = "fortnightly".into();
        let error = renews(&odd, day).unwrap_err().error.unwrap();
        assert!(error.starts_with("subscription 42: unknown frequency"), "{error}");
    }

    #[test]
    fn the_key_is_the_subscription_and_its_delivery_date() {
        assert_eq!(subject(42), "subscription:42");
        assert_eq!(charged_at(d("2026-12-01")), "2026-12-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }
}
