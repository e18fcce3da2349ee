//! mail-feedback: SES's bounce and complaint feedback, delivered by SNS, becomes the suppression list
//! (`ports::Suppressions`) that no task mails again.
//!
//! The rule:
//! - a `Permanent` bounce suppresses each bounced recipient: the mailbox does not exist or refuses our mail for
//!   good, and mailing it again hurts the account's reputation;
//! - a `Transient` or `Undetermined` bounce (a full mailbox, a message too large, an unclear answer) suppresses
//!   nobody: the address may well work next time. It is logged at INFO with its subtype, never its address;
//! - any complaint suppresses each complained recipient: they told their provider our mail is unwanted;
//! - anything else SES publishes (Delivery, Send, Open, Click, DeliveryDelay, a subscription's confirmation…) is
//!   acknowledged and ignored.
//!
//! SES writes feedback in two formats, both read here: configuration-set event publishing names the type in
//! `eventType`, an identity's notifications in `notificationType`; the `bounce` and `complaint` objects are
//! the same. A message that is not such JSON fails the whole invocation, before anything is written, so that
//! Lambda's retries and then the function's on-failure destination keep it: nothing is lost, and its log line
//! names the SNS message id, never an address.

use aws_lambda_events::sns::SnsEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    ports::{normalise, Suppression, SuppressionReason, Suppressions},
    Error, Result,
};

/// What one SES message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// Suppress these addresses.
    Suppress(Vec<Suppression>),
    /// A bounce that is not permanent: nobody is suppressed.
    Passing { bounce_type: String, subtype: Option<String> },
    /// Not a bounce or a complaint: the event type, as SES named it.
    Ignored(String),
}

/// The part of SES's JSON this reads; SES adds fields as it likes, and the rest (the `mail` object with its
/// headers) is not needed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    event_type: Option<String>,
    notification_type: Option<String>,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    bounce_sub_type: Option<String>,
    bounced_recipients: Vec<Recipient>,
    feedback_id: String,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    complained_recipients: Vec<Recipient>,
    feedback_id: String,
    timestamp: Option<DateTime<Utc>>,
    /// The ISP's feedback type (abuse, fraud…), when its report had one.
    complaint_feedback_type: Option<String>,
    /// `OnAccountSuppressionList` when SES did not send because of the account-level list.
    complaint_sub_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
}

/// Why a message is not SES feedback, in words that quote nothing of it: serde's own texts may quote a value,
/// which may be an address. Only a missing field's name is kept, and where the problem is.
fn unreadable(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Data => {
            let text = e.to_string();
            match text.strip_prefix("missing field ").and_then(|rest| rest.split(' ').next()) {
                Some(field) => format!("its field {field} is missing"),
                None => "a field has a value of the wrong type".to_owned(),
            }
        }
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "it is not JSON".to_owned(),
        serde_json::error::Category::Io => "it could not be read".to_owned(),
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

/// The suppressions of a list of recipients, each address normalised; one without an `@` makes the message
/// malformed (its text is not quoted).
fn suppressions(
    recipients: Vec<Recipient>,
    reason: SuppressionReason,
    feedback_id: String,
    subtype: Option<String>,
    at: DateTime<Utc>,
) -> Result<Feedback, String> {
    if recipients.is_empty() {
        return Err(format!("its {} names no recipient", reason.as_str()));
    }
    recipients
        .into_iter()
        .map(|r| {
            let address = normalise(&r.email_address);
            match address.split_once('@') {
                Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                    Ok(Suppression { address, reason, feedback_id: feedback_id.clone(), subtype: subtype.clone(), at })
                }
                _ => Err(format!("a recipient of its {} is not an email address", reason.as_str())),
            }
        })
        .collect::<Result<_, _>>()
        .map(Feedback::Suppress)
}

/// Reads one SES message (an SNS record's `Message`) and applies the rule; `now` dates feedback that carries
/// no timestamp of its own. An error says why the message is malformed, without quoting it.
pub fn parse(message: &str, now: DateTime<Utc>) -> Result<Feedback, String> {
    let message: Message = serde_json::from_str(message).map_err(|e| unreadable(&e))?;
    let Some(kind) = message.event_type.or(message.notification_type) else {
        return Err("it has neither an eventType nor a notificationType".to_owned());
    };
    match kind.as_str() {
        "Bounce" => {
            let bounce = message.bounce.ok_or("a Bounce without its bounce object")?;
            if bounce.bounce_type != "Permanent" {
                return Ok(Feedback::Passing { bounce_type: bounce.bounce_type, subtype: bounce.bounce_sub_type });
            }
            let at = bounce.timestamp.unwrap_or(now);
            suppressions(
                bounce.bounced_recipients,
                SuppressionReason::Bounce,
                bounce.feedback_id,
                bounce.bounce_sub_type,
                at,
            )
        }
        "Complaint" => {
            let complaint = message.complaint.ok_or("a Complaint without its complaint object")?;
            let at = complaint.timestamp.unwrap_or(now);
            let subtype = complaint.complaint_feedback_type.or(complaint.complaint_sub_type);
            suppressions(
                complaint.complained_recipients,
                SuppressionReason::Complaint,
                complaint.feedback_id,
                subtype,
                at,
            )
        }
        _ => Ok(Feedback::Ignored(kind)),
    }
}

/// What an invocation did, as the function answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Handled {
    /// Addresses recorded (a redelivered feedback included: recording it again changes nothing).
    pub suppressed: usize,
    /// Bounces that were not permanent.
    pub passing: usize,
    /// Records of other event types.
    pub ignored: usize,
}

/// The mail-feedback function's handler: reads every record of the SNS event first, and fails the invocation,
/// writing nothing, if one is malformed (logged at ERROR with its SNS message id); otherwise records every
/// suppression in one call. A store failure fails the invocation too, for Lambda to retry.
pub async fn handle(store: &dyn Suppressions, event: SnsEvent, now: DateTime<Utc>) -> Result<Handled> {
    let mut handled = Handled::default();
    let mut suppress = vec![];
    for record in &event.records {
        let message_id = record.sns.message_id.as_str();
        match parse(&record.sns.message, now) {
            Ok(Feedback::Suppress(addresses)) => {
                let reason = addresses.first().map(|s| s.reason.as_str()).unwrap_or_default();
                tracing::info!(message_id, reason, recipients = addresses.len(), "suppressing");
                handled.suppressed += addresses.len();
                suppress.extend(addresses);
            }
            Ok(Feedback::Passing { bounce_type, subtype }) => {
                tracing::info!(message_id, %bounce_type, subtype = subtype.as_deref().unwrap_or(""),
                    "a bounce that is not permanent: nobody suppressed");
                handled.passing += 1;
            }
            Ok(Feedback::Ignored(kind)) => {
                tracing::debug!(message_id, %kind, "not a bounce or a complaint: ignored");
                handled.ignored += 1;
            }
            Err(why) => {
                tracing::error!(message_id, %why, "an SNS message that is not SES feedback: failing the invocation");
                return Err(Error::permanent(format!("SNS message {message_id} is not SES feedback: {why}")));
            }
        }
    }
    if !suppress.is_empty() {
        store.suppress(&suppress).await?;
    }
    Ok(handled)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERMANENT: &str = include_str!("../../events/ses-bounce-permanent.json");
    const TRANSIENT: &str = include_str!("../../events/ses-bounce-transient.json");
    const COMPLAINT: &str = include_str!("../../events/ses-complaint.json");
    const EVENT_BOUNCE: &str = include_str!("../../events/ses-event-bounce.json");
    const EVENT_COMPLAINT: &str = include_str!("../../events/ses-event-complaint.json");
    const EVENT_DELIVERY: &str = include_str!("../../events/ses-event-delivery.json");

    fn now() -> DateTime<Utc> {
        "2026-11-28T10:00:00Z".parse().unwrap()
    }

    fn suppressed(message: &str) -> Vec<(String, SuppressionReason, Option<String>)> {
        match parse(message, now()).unwrap() {
            Feedback::Suppress(all) => all.into_iter().map(|s| (s.address, s.reason, s.subtype)).collect(),
            other => panic!("not suppressed: {other:?}"),
        }
    }

    #[test]
    fn a_permanent_bounce_suppresses_each_bounced_recipient_in_both_formats() {
        assert_eq!(
            suppressed(PERMANENT),
            [("jane@example.com".to_owned(), SuppressionReason::Bounce, Some("General".to_owned()))]
        );
        let Feedback::Suppress(all) = parse(PERMANENT, now()).unwrap() else { unreachable!() };
        assert_eq!(all[0].feedback_id, "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000");
        assert_eq!(all[0].at, "2016-01-27T14:59:38.237Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(suppressed(EVENT_BOUNCE)[0].0, "recipient@example.com");
    }

    #[test]
    fn a_transient_bounce_suppresses_nobody() {
        assert_eq!(
            parse(TRANSIENT, now()).unwrap(),
            Feedback::Passing { bounce_type: "Transient".into(), subtype: Some("MailboxFull".into()) }
        );
        let undetermined = PERMANENT.replace("\"Permanent\"", "\"Undetermined\"");
        assert!(matches!(parse(&undetermined, now()).unwrap(), Feedback::Passing { .. }));
    }

    #[test]
    fn a_complaint_suppresses_each_complained_recipient_in_both_formats() {
        assert_eq!(
            suppressed(COMPLAINT),
            [("richard@example.com".to_owned(), SuppressionReason::Complaint, Some("abuse".to_owned()))]
        );
        assert_eq!(suppressed(EVENT_COMPLAINT)[0].0, "recipient@example.com");
    }

    #[test]
    fn other_event_types_are_ignored() {
        assert_eq!(parse(EVENT_DELIVERY, now()).unwrap(), Feedback::Ignored("Delivery".into()));
        let subscribed = r#"{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"ok"}"#;
        assert_eq!(parse(subscribed, now()).unwrap(), Feedback::Ignored("AmazonSnsSubscriptionSucceeded".into()));
    }

    /// Records what it is asked to suppress.
    #[derive(Default)]
    struct Recorded(std::sync::Mutex<Vec<Suppression>>);

    #[async_trait::async_trait]
    impl Suppressions for Recorded {
        async fn suppress(&self, feedback: &[Suppression]) -> Result<()> {
            self.0.lock().unwrap().extend_from_slice(feedback);
            Ok(())
        }
        async fn suppressions(&self) -> Result<Vec<crate::ports::SuppressedAddress>> {
            Ok(vec![])
        }
        async fn lift(&self, _: &str) -> Result<bool> {
            Ok(false)
        }
    }

    fn sample_event() -> SnsEvent {
        serde_json::from_str(include_str!("../../events/mail-feedback-sns.json")).unwrap()
    }

    #[tokio::test]
    async fn the_sample_sns_event_suppresses_its_bounced_recipient() {
        let store = Recorded::default();
        let handled = handle(&store, sample_event(), now()).await.unwrap();
        assert_eq!(handled, Handled { suppressed: 1, passing: 0, ignored: 0 });
        assert_eq!(store.0.lock().unwrap()[0].address, "jane@example.com");
    }

    #[tokio::test]
    async fn one_malformed_record_fails_the_invocation_and_nothing_is_written() {
        let store = Recorded::default();
        let mut event = sample_event();
        let mut bad = event.records[0].clone();
        bad.sns.message_id = "bad-one".into();
        bad.sns.message = r#"{"eventType":"Bounce","bounce":{"bounceType":"Permanent"}}"#.into();
        event.records.push(bad);
        let e = handle(&store, event, now()).await.unwrap_err();
        assert_eq!(
            e,
            Error::permanent(
                "SNS message bad-one is not SES feedback: its field `bouncedRecipients` is missing (line 1, column 57)"
            )
        );
        assert!(store.0.lock().unwrap().is_empty());
    }

    #[test]
    fn a_malformed_message_says_why_without_quoting_it() {
        let cases = [
            ("jane@example.com bounced", "it is not JSON"),
            (r#"{"mail":{}}"#, "neither an eventType nor a notificationType"),
            (r#"{"eventType":"Bounce"}"#, "a Bounce without its bounce object"),
            (r#"{"eventType":"Complaint","complaint":{"feedbackId":"f"}}"#, "complainedRecipients"),
            (
                r#"{"eventType":"Complaint","complaint":{"feedbackId":"f","complainedRecipients":"jane@example.com"}}"#,
                "wrong type",
            ),
            (
                r#"{"eventType":"Complaint","complaint":{"feedbackId":"f","complainedRecipients":[{"emailAddress":"jane"}]}}"#,
                "not an email address",
            ),
            (r#"{"eventType":"Complaint","complaint":{"feedbackId":"f","complainedRecipients":[]}}"#, "no recipient"),
        ];
        for (message, why) in cases {
            let e = parse(message, now()).unwrap_err();
            assert!(e.contains(why), "{message}: {e}");
            assert!(!e.contains("jane"), "{e}");
        }
    }
}
