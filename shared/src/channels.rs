//! Which channel a message to a person goes by, written once: each user's choices over the channels' defaults,
//! push before SMS before email, quiet hours for what buzzes a phone, and the one send that performs a route.

use std::sync::Arc;

use chrono::{DateTime, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

use crate::{
    ports::{Channel, Contact, Contacts, Email, Kind, Mailer, Notifier, Push, Pushed, Sms},
    time::wall_clock_instant,
    Error, Result,
};

/// Whether a phone number is in E.164: a `+`, a country code not starting with 0, 7 to 15 digits in all (no
/// country's subscriber numbers are shorter than that).
pub fn is_e164(phone: &str) -> bool {
    phone
        .strip_prefix('+')
        .is_some_and(|digits| (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
        && !phone.starts_with("+0")
}

/// Whether the text is an SNS platform endpoint's ARN:
/// `arn:<partition>:sns:<region>:<account>:endpoint/<platform>/<application>/<id>`.
pub fn is_endpoint_arn(arn: &str) -> bool {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = fields[..] else { return false };
    let path: Vec<&str> = resource.split('/').collect();
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    prefix == "arn"
        && partition.starts_with("aws")
        && service == "sns"
        && word(region)
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && path.len() == 4
        && path[0] == "endpoint"
        && path[1..].iter().all(|part| word(part))
}

/// Refuses, for good, an SMS whose number is not E.164; the error does not quote the number.
pub fn check_sms(sms: &Sms) -> Result<()> {
    if is_e164(&sms.to) {
        Ok(())
    } else {
        Err(Error::permanent("SMS: the phone number is not in E.164 form (+ and up to 15 digits)"))
    }
}

/// Refuses, for good, a push whose endpoint is not an SNS endpoint ARN; the error does not quote it.
pub fn check_push(push: &Push) -> Result<()> {
    if is_endpoint_arn(&push.endpoint_arn) {
        Ok(())
    } else {
        Err(Error::permanent("push: the endpoint is not an SNS platform endpoint ARN"))
    }
}

/// Whether the user lets `kind` reach them on `channel`: their explicit choice, else the channel's default.
/// Email's account-wide switch wins over any choice; SMS costs money, so only an explicit choice allows it.
/// Transactional kinds (orders) always email, and text a phone unless its owner said no.
pub fn allows(contact: &Contact, kind: Kind, channel: Channel) -> bool {
    let choice = contact.choices.iter().find(|c| c.kind == kind && c.channel == channel).map(|c| c.allowed);
    match channel {
        // What a customer bought is told to them whatever their marketing switches say.
        Channel::Email if kind.is_transactional() => true,
        Channel::Email => contact.email_opt_in && choice.unwrap_or(true),
        Channel::Push => choice.unwrap_or(true),
        // A customer gave their phone to the shop for their orders; they can still turn it off.
        Channel::Sms if kind.is_transactional() => choice.unwrap_or(true),
        Channel::Sms => choice.unwrap_or(false),
    }
}

/// Where one message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// By `channel`; should it be push and every device turn out gone, by the first of `fallbacks` instead.
    Send { channel: Channel, fallbacks: Vec<Channel> },
    /// Nowhere, and why, in words for the run's log.
    None(String),
}

/// Why a message went nowhere when the only channel it could have taken is email to a suppressed address.
pub const SUPPRESSED: &str = "suppressed";

/// Push first (free and immediate), then SMS, then email, among the channels the task `offered` a rendering
/// for, the user allows for `kind`, and reach them: push needs an enabled device, SMS a valid phone number,
/// email an address not on the suppression list. This is the one place the suppression list is enforced:
/// every task's message is routed here. A message that could only have gone by email to a suppressed
/// address goes nowhere with the reason `SUPPRESSED` (a skip, never retried); one with another usable
/// channel goes by that one.
pub fn route(contact: &Contact, kind: Kind, offered: &[Channel]) -> Route {
    let reachable = |channel: Channel| match channel {
        Channel::Push => !contact.devices.is_empty(),
        Channel::Sms => contact.phone.as_deref().is_some_and(is_e164),
        Channel::Email => !contact.email_suppressed,
    };
    let allowed: Vec<Channel> = [Channel::Push, Channel::Sms, Channel::Email]
        .into_iter()
        .filter(|c| offered.contains(c) && allows(contact, kind, *c))
        .collect();
    let mut usable = allowed.iter().copied().filter(|c| reachable(*c));
    match usable.next() {
        Some(channel) => Route::Send { channel, fallbacks: usable.collect() },
        // A message offered on one channel (each channel of an order's notice is its own delivery) names it:
        // the others may well have gone.
        None if allowed.is_empty() => Route::None(match offered {
            [only] => format!("opted out of {} by {}", kind.as_str(), only.as_str()),
            _ => format!("opted out of {} on every channel", kind.as_str()),
        }),
        None if allowed.contains(&Channel::Email) && contact.email_suppressed => Route::None(SUPPRESSED.to_owned()),
        None => {
            let missing: Vec<&str> = allowed
                .iter()
                .map(|c| if *c == Channel::Push { "no enabled device for push" } else { "no valid phone for SMS" })
                .collect();
            Route::None(format!("cannot be reached for {}: {}", kind.as_str(), missing.join(", ")))
        }
    }
}

/// Until when a push or an SMS to someone in `zone` waits at `at`: nothing from 08:00 to 21:00 local, else the
/// next local 08:00 (the first instant at or after it, should a clock change skip it). Email is never held.
pub fn quiet_until(zone: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = at.with_timezone(&zone);
    let hour = local.hour();
    if (8..21).contains(&hour) {
        return None;
    }
    let date = if hour >= 21 { local.date_naive().succ_opt()? } else { local.date_naive() };
    Some(wall_clock_instant(zone, date, NaiveTime::from_hms_opt(8, 0, 0).expect("08:00")))
}

/// A push notification's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushText {
    pub title: String,
    pub body: String,
}

/// One message in each form the task has a rendering for; a task offers `route` exactly these channels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub email: Option<Email>,
    pub sms: Option<String>,
    pub push: Option<PushText>,
}

/// What a send did: the channel that carried the message and the provider's ids (one a device for push).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub channel: Channel,
    pub ids: Vec<String>,
}

/// The channels' ports together, for tasks that message people.
#[derive(Clone)]
pub struct Channels {
    pub mailer: Arc<dyn Mailer>,
    pub notifier: Arc<dyn Notifier>,
    pub contacts: Arc<dyn Contacts>,
}

impl Channels {
    /// Performs a route: one channel, or, when a push found every device gone (each is disabled on the way),
    /// the next of the route's fallbacks. `None` when the route goes nowhere or no fallback is left. A failure
    /// propagates as the provider's adapter read it, for the delivery ledger to retry or fail.
    pub async fn send(&self, route: &Route, contact: &Contact, rendered: &Rendered) -> Result<Option<Delivered>> {
        let Route::Send { channel, fallbacks } = route else { return Ok(None) };
        for channel in std::iter::once(channel).chain(fallbacks) {
            let ids = match channel {
                Channel::Push => self.push(contact, rendered).await?,
                Channel::Sms => {
                    let sms = Sms { to: contact.phone.clone().unwrap_or_default(), text: form(&rendered.sms, "SMS")? };
                    vec![self.notifier.sms(&sms).await?]
                }
                Channel::Email => vec![self.mailer.send(&form(&rendered.email, "email")?).await?],
            };
            if !ids.is_empty() {
                return Ok(Some(Delivered { channel: *channel, ids }));
            }
        }
        Ok(None)
    }

    /// Pushes to every enabled device; the ids of those it reached, none when all were gone.
    async fn push(&self, contact: &Contact, rendered: &Rendered) -> Result<Vec<String>> {
        let PushText { title, body } = form(&rendered.push, "push")?;
        let mut ids = vec![];
        for device in &contact.devices {
            let push = Push { endpoint_arn: device.endpoint_arn.clone(), title: title.clone(), body: body.clone() };
            match self.notifier.push(&push).await? {
                Pushed::Sent(id) => ids.push(id),
                Pushed::Gone(reason) => {
                    tracing::info!(user_id = contact.user_id, platform = %device.platform, %reason, "device gone");
                    self.contacts.disable_device(&device.endpoint_arn).await?;
                }
            }
        }
        Ok(ids)
    }
}

/// The rendering a route's channel needs: a task that offered a channel it did not render is a bug.
fn form<T: Clone>(rendering: &Option<T>, channel: &str) -> Result<T> {
    rendering.clone().ok_or_else(|| Error::permanent(format!("routed to {channel} without a {channel} rendering")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryContacts, MemoryMailer, MemoryNotifier};
    use crate::ports::{Choice, Device};

    const ENDPOINT: &str =
        "arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/fitness/7c1e7d2a-0b8e-4c1f-9e55-1d6c3a0f2b11";
    const OTHER_ENDPOINT: &str = "arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/fitness/0a6e1b3c";
    const ALL: [Channel; 3] = [Channel::Push, Channel::Sms, Channel::Email];

    fn device(arn: &str) -> Device {
        Device { endpoint_arn: arn.into(), platform: "apns".into() }
    }

    fn contact() -> Contact {
        Contact {
            user_id: 7,
            name: "Ana".into(),
            email: "ana@example.com".into(),
            phone: Some("+447700900123".into()),
            time_zone: "Europe/London".into(),
            email_opt_in: true,
            email_suppressed: false,
            devices: vec![device(ENDPOINT)],
            choices: vec![],
        }
    }

    fn choose(mut contact: Contact, kind: Kind, channel: Channel, allowed: bool) -> Contact {
        contact.choices.push(Choice { kind, channel, allowed });
        contact
    }

    fn send(channel: Channel, fallbacks: &[Channel]) -> Route {
        Route::Send { channel, fallbacks: fallbacks.to_vec() }
    }

    #[test]
    fn defaults_allow_email_when_opted_in_and_push_but_never_sms() {
        let ana = contact();
        assert!(allows(&ana, Kind::Reminders, Channel::Push));
        assert!(allows(&ana, Kind::Reminders, Channel::Email));
        assert!(!allows(&ana, Kind::Reminders, Channel::Sms), "SMS costs money: explicit opt-in only");
        assert!(!allows(&Contact { email_opt_in: false, ..contact() }, Kind::Reports, Channel::Email));
        assert_eq!(route(&ana, Kind::Reminders, &ALL), send(Channel::Push, &[Channel::Email]));
    }

    #[test]
    fn explicit_choices_override_the_defaults_except_the_email_switch() {
        let sms = choose(contact(), Kind::Reminders, Channel::Sms, true);
        assert!(allows(&sms, Kind::Reminders, Channel::Sms));
        assert!(!allows(&sms, Kind::Challenges, Channel::Sms), "per kind");
        let no_push = choose(sms, Kind::Reminders, Channel::Push, false);
        assert_eq!(route(&no_push, Kind::Reminders, &ALL), send(Channel::Sms, &[Channel::Email]));
        let no_email = choose(contact(), Kind::Reports, Channel::Email, false);
        assert!(!allows(&no_email, Kind::Reports, Channel::Email), "an explicit no wins over the opt-in");
        let switched_off = choose(Contact { email_opt_in: false, ..contact() }, Kind::Reports, Channel::Email, true);
        assert!(!allows(&switched_off, Kind::Reports, Channel::Email), "the account-wide switch wins");
    }

    #[test]
    fn only_offered_and_reachable_channels_are_routed() {
        assert_eq!(route(&contact(), Kind::Reports, &[Channel::Email]), send(Channel::Email, &[]));
        let no_device = Contact { devices: vec![], ..choose(contact(), Kind::Reminders, Channel::Sms, true) };
        assert_eq!(route(&no_device, Kind::Reminders, &ALL), send(Channel::Sms, &[Channel::Email]));
        let no_phone = Contact { phone: None, ..no_device.clone() };
        assert_eq!(route(&no_phone, Kind::Reminders, &ALL), send(Channel::Email, &[]));
        let bad_phone = Contact { phone: Some("07700 900123".into()), ..no_device };
        assert_eq!(route(&bad_phone, Kind::Reminders, &ALL), send(Channel::Email, &[]));
        let unreachable = Contact { email_opt_in: false, ..bad_phone };
        assert_eq!(
            route(&unreachable, Kind::Reminders, &ALL),
            Route::None("cannot be reached for reminders: no enabled device for push, no valid phone for SMS".into())
        );
    }

    #[test]
    fn a_suppressed_address_gets_no_email_but_the_other_channels_still_go() {
        let suppressed = Contact { email_suppressed: true, ..contact() };
        assert_eq!(route(&suppressed, Kind::Reports, &[Channel::Email]), Route::None(SUPPRESSED.into()));
        assert_eq!(route(&suppressed, Kind::Reminders, &ALL), send(Channel::Push, &[]), "no email fallback");
        let no_device = Contact { devices: vec![], ..suppressed.clone() };
        assert_eq!(route(&no_device, Kind::Reminders, &ALL), Route::None(SUPPRESSED.into()));
        assert_eq!(route(&suppressed, Kind::Orders, &[Channel::Email]), Route::None(SUPPRESSED.into()), "even orders");
        assert_eq!(route(&suppressed, Kind::Orders, &[Channel::Sms]), send(Channel::Sms, &[]));
        let opted_out = Contact { email_opt_in: false, ..suppressed };
        assert_eq!(
            route(&opted_out, Kind::Reports, &[Channel::Email]),
            Route::None("opted out of reports by email".into()),
            "an opt-out says so first"
        );
    }

    #[test]
    fn opted_out_everywhere_routes_nowhere() {
        let mut ana = Contact { email_opt_in: false, ..contact() };
        ana = choose(ana, Kind::Reminders, Channel::Push, false);
        assert_eq!(route(&ana, Kind::Reminders, &ALL), Route::None("opted out of reminders on every channel".into()));
        assert_eq!(route(&ana, Kind::Challenges, &ALL), send(Channel::Push, &[]));
        let bo = choose(contact(), Kind::Orders, Channel::Sms, false);
        assert_eq!(route(&bo, Kind::Orders, &[Channel::Sms]), Route::None("opted out of orders by sms".into()));
    }

    #[test]
    fn phone_numbers_and_endpoint_arns_are_checked() {
        for good in ["+447700900123", "+15551234567", "+491511234567890"] {
            assert!(is_e164(good), "{good}");
        }
        for bad in ["447700900123", "+0447700900", "+44 7700 900123", "+4477009001234567", "+", "+1", "+44"] {
            assert!(!is_e164(bad), "{bad}");
        }
        assert!(is_endpoint_arn(ENDPOINT) && is_endpoint_arn(OTHER_ENDPOINT));
        for bad in [
            "arn:aws:sns:eu-west-1:123456789012:fitness-topic",
            "arn:aws:sns:eu-west-1:1234:endpoint/APNS/fitness/7c1e",
            "arn:aws:sqs:eu-west-1:123456789012:endpoint/APNS/fitness/7c1e",
            "arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/fitness",
            "arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/fitness/7c1e/more",
            "arn:aws:sns::123456789012:endpoint/APNS/fitness/7c1e",
            "not an arn",
        ] {
            assert!(!is_endpoint_arn(bad), "{bad}");
        }
        let e = check_sms(&Sms { to: "0044 7700".into(), text: "hi".into() }).unwrap_err();
        assert!(matches!(&e, Error::Permanent(m) if !m.contains("7700")), "{e:?}");
        let e = check_push(&Push { endpoint_arn: "arn:x".into(), title: "t".into(), body: "b".into() }).unwrap_err();
        assert!(matches!(&e, Error::Permanent(m) if !m.contains("arn:x")), "{e:?}");
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn quiet_hours_run_from_21_00_to_08_00_local() {
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap(); // UTC+05:30, no DST
        assert_eq!(quiet_until(kolkata, utc("2026-11-22T15:29:00Z")), None, "20:59");
        assert_eq!(quiet_until(kolkata, utc("2026-11-22T15:30:00Z")), Some(utc("2026-11-23T02:30:00Z")), "21:00");
        assert_eq!(quiet_until(kolkata, utc("2026-11-22T02:29:00Z")), Some(utc("2026-11-22T02:30:00Z")), "07:59");
        assert_eq!(quiet_until(kolkata, utc("2026-11-22T02:30:00Z")), None, "08:00");
        assert_eq!(quiet_until(kolkata, utc("2026-11-21T18:30:00Z")), Some(utc("2026-11-22T02:30:00Z")), "00:00");
    }

    #[test]
    fn quiet_hours_across_the_nights_london_changes_its_clocks() {
        let london: Tz = "Europe/London".parse().unwrap();
        // 21:30 GMT on Saturday; the clocks go forward at 01:00 UTC, so Sunday's 08:00 is BST, 07:00 UTC.
        assert_eq!(quiet_until(london, utc("2026-03-28T21:30:00Z")), Some(utc("2026-03-29T07:00:00Z")));
        assert_eq!(quiet_until(london, utc("2026-03-29T06:59:00Z")), Some(utc("2026-03-29T07:00:00Z")));
        assert_eq!(quiet_until(london, utc("2026-03-29T07:00:00Z")), None);
        // 21:30 BST on Saturday; the clocks go back at 01:00 UTC, so Sunday's 08:00 is GMT, 08:00 UTC.
        assert_eq!(quiet_until(london, utc("2026-10-24T20:30:00Z")), Some(utc("2026-10-25T08:00:00Z")));
        assert_eq!(quiet_until(london, utc("2026-10-25T01:30:00Z")), Some(utc("2026-10-25T08:00:00Z")), "repeat");
        assert_eq!(quiet_until(london, utc("2026-10-24T19:59:00Z")), None, "20:59 BST");
    }

    fn channels(contacts: &Arc<MemoryContacts>) -> (Channels, Arc<MemoryMailer>, Arc<MemoryNotifier>) {
        let (mailer, notifier) = (Arc::new(MemoryMailer::default()), Arc::new(MemoryNotifier::default()));
        let channels = Channels { mailer: mailer.clone(), notifier: notifier.clone(), contacts: contacts.clone() };
        (channels, mailer, notifier)
    }

    fn rendered() -> Rendered {
        Rendered {
            email: Some(Email {
                from: "coach@example.com".into(),
                to: "ana@example.com".into(),
                subject: "Time to train".into(),
                text: "Go".into(),
                html: "<p>Go</p>".into(),
                unsubscribe: None,
            }),
            sms: Some("Time to train".into()),
            push: Some(PushText { title: "Time to train".into(), body: "Go".into() }),
        }
    }

    #[tokio::test]
    async fn a_push_reaches_every_enabled_device_and_nothing_else() {
        let ana = Contact { devices: vec![device(ENDPOINT), device(OTHER_ENDPOINT)], ..contact() };
        let contacts = Arc::new(MemoryContacts::with(vec![ana.clone()]));
        let (channels, mailer, notifier) = channels(&contacts);
        let route = route(&ana, Kind::Reminders, &ALL);
        let delivered = channels.send(&route, &ana, &rendered()).await.unwrap().unwrap();
        assert_eq!((delivered.channel, delivered.ids.len()), (Channel::Push, 2));
        assert_eq!(notifier.pushed().len(), 2);
        assert!(mailer.sent().is_empty() && notifier.sms_sent().is_empty(), "one channel a message");
    }

    #[tokio::test]
    async fn a_gone_device_is_disabled_and_the_message_falls_back_to_email() {
        let contacts = Arc::new(MemoryContacts::with(vec![contact()]));
        let (channels, mailer, notifier) = channels(&contacts);
        notifier.gone(ENDPOINT);
        let route = route(&contact(), Kind::Reminders, &ALL);
        let delivered = channels.send(&route, &contact(), &rendered()).await.unwrap().unwrap();
        assert_eq!(delivered.channel, Channel::Email);
        assert_eq!(mailer.sent().len(), 1);
        assert!(notifier.pushed().is_empty());
        let ana = contacts.contacts(&[7]).await.unwrap().remove(0);
        assert!(ana.devices.is_empty(), "disabled, never tried again");
        // With no fallback left, nothing is delivered and nothing fails.
        let push_only = send(Channel::Push, &[]);
        assert_eq!(channels.send(&push_only, &contact(), &rendered()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_throttled_push_is_retryable_and_falls_back_to_nothing() {
        let contacts = Arc::new(MemoryContacts::with(vec![contact()]));
        let (channels, mailer, notifier) = channels(&contacts);
        notifier.throttle_next(1);
        let route = route(&contact(), Kind::Reminders, &ALL);
        let e = channels.send(&route, &contact(), &rendered()).await.unwrap_err();
        assert!(matches!(e, Error::Retryable(_)), "{e:?}");
        assert!(mailer.sent().is_empty(), "a failure is the ledger's to retry, not a reason to switch channel");
        assert_eq!(contacts.contacts(&[7]).await.unwrap()[0].devices.len(), 1);
    }

    #[tokio::test]
    async fn an_sms_goes_to_the_contacts_phone_and_a_missing_rendering_is_a_bug() {
        let contacts = Arc::new(MemoryContacts::with(vec![contact()]));
        let (channels, _, notifier) = channels(&contacts);
        let delivered = channels.send(&send(Channel::Sms, &[]), &contact(), &rendered()).await.unwrap().unwrap();
        assert_eq!(delivered.channel, Channel::Sms);
        assert_eq!(notifier.sms_sent(), [Sms { to: "+447700900123".into(), text: "Time to train".into() }]);
        let e = channels.send(&send(Channel::Sms, &[]), &contact(), &Rendered::default()).await.unwrap_err();
        assert!(matches!(e, Error::Permanent(_)), "{e:?}");
        assert_eq!(channels.send(&Route::None("opted out".into()), &contact(), &rendered()).await.unwrap(), None);
    }
}
