//! The mailer port on Amazon SES (v1 SendRawEmail), so the message is the same MIME the outbox files; and SES's
//! own reading of its refusals: a recipient's problem fails that email, the sender's or the account's stops all.

use async_trait::async_trait;
use aws_sdk_ses::config::http::HttpResponse;
use aws_sdk_ses::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ses::primitives::Blob;
use aws_sdk_ses::types::RawMessage;
use aws_sdk_ses::Client;
use lettre::message::Mailbox;
use lettre::Address;
use shared::ports::{Email, Mailer};
use shared::Result;

use crate::aws::{aws_error_read_by, credentials_refused, invalid_request};
use crate::error::{job, Fault};

const SERVICE: &str = "ses";

pub struct SesMailer {
    client: Client,
    /// `MAIL_CONFIGURATION_SET`: the configuration set every send names, whose event destination publishes
    /// bounces and complaints to the mail-feedback function's topic.
    configuration_set: Option<String>,
}

impl SesMailer {
    pub fn new(client: Client) -> Self {
        Self { client, configuration_set: None }
    }

    /// Every send names this configuration set (none: the identity's own settings apply).
    pub fn with_configuration_set(self, configuration_set: Option<String>) -> Self {
        Self { configuration_set, ..self }
    }

    /// The account's maximum sending rate in emails a second (GetSendQuota's MaxSendRate), for the runtime to
    /// pace its sends by rather than meet SES's throttling one email at a time. Failures read as a send's do:
    /// refused credentials are the account's.
    pub async fn max_send_rate(&self) -> Result<f64> {
        let quota = self.client.get_send_quota().send().await.map_err(|e| job(ses_error(e, None)))?;
        Ok(quota.max_send_rate())
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &Email) -> Result<String> {
        let raw = RawMessage::builder()
            .data(Blob::new(crate::mime::render(email).map_err(job)?))
            .build()
            .map_err(|e| job(invalid_request(SERVICE, e)))?;
        // render has parsed it already: a sender that did not parse has failed above.
        let from = email.from.parse::<Mailbox>().ok().map(|mailbox| mailbox.email);
        let sent = self
            .client
            .send_raw_email()
            .raw_message(raw)
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|e| job(ses_error(e, from.as_ref())))?;
        Ok(sent.message_id().to_owned())
    }
}

/// Codes that mean no email can leave, whoever it is for: the MAIL FROM domain, the account or the
/// configuration set paused or missing (refused credentials are every service's: `credentials_refused`). SES's
/// query API names some with and some without the `Exception` suffix; both are listed.
const SENDER_CODES: &[&str] = &[
    "MailFromDomainNotVerified",
    "MailFromDomainNotVerifiedException",
    "AccountSendingPaused",
    "AccountSendingPausedException",
    "ConfigurationSetSendingPausedException",
    "ConfigurationSetDoesNotExist",
    "ConfigurationSetDoesNotExistException",
];

/// An SES failure as the adapters' error; `from` is the address the email was sent from, if any.
fn ses_error<E>(e: SdkError<E, HttpResponse>, from: Option<&Address>) -> crate::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    aws_error_read_by(SERVICE, e, |code, message| sender_fault(code, message, from))
}

/// `Some(Fault::Sender)` when SES says the sender or the account is at fault; else the general rule decides
/// (a rate throttle is retryable, a rejected recipient permanent).
fn sender_fault(code: &str, message: &str, from: Option<&Address>) -> Option<Fault> {
    let sender = SENDER_CODES.contains(&code)
        || credentials_refused(code)
        // SES answers both its limits with `Throttling`: the rate passes in a second, the day's quota not
        // before the next day (or a raise).
        || (code == "Throttling" && message.to_ascii_lowercase().contains("daily message quota exceeded"))
        // "Email address is not verified. The following identities failed the check in region …: <identities>"
        // names the sender when its address or domain is not verified (in the sandbox it may name recipients
        // too: the sender being among them decides).
        || (code == "MessageRejected" && from.is_some_and(|from| names(message, from)));
    sender.then_some(Fault::Sender)
}

/// Whether the text names the address, or its domain as an identity of its own, as a whole word; a recipient
/// at the same domain (`ana@example.com` for `news@example.com`) is not the sender.
fn names(text: &str, address: &Address) -> bool {
    text.split(|c: char| c.is_whitespace() || ",;:<>()[]\"'".contains(c))
        .map(|word| word.trim_end_matches('.'))
        .any(|word| word.eq_ignore_ascii_case(address.as_ref()) || word.eq_ignore_ascii_case(address.domain()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ses::error::ErrorMetadata;
    use aws_sdk_ses::operation::send_raw_email::SendRawEmailError;

    const FROM: &str = "news@fitness.example";

    fn service_error(status: u16, code: &str, message: &str) -> SdkError<SendRawEmailError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(status.try_into().expect("status"), "".into());
        SdkError::service_error(SendRawEmailError::generic(meta), raw)
    }

    /// The error SendRawEmail's answer becomes for an email from `FROM`: its fault and its text.
    fn read(status: u16, code: &str, message: &str) -> (Fault, String) {
        let from: Address = FROM.parse().unwrap();
        match ses_error(service_error(status, code, message), Some(&from)) {
            crate::Error::Aws { service: "ses", message, fault } => (fault, message),
            other => panic!("not an AWS error: {other:?}"),
        }
    }

    #[test]
    fn the_sender_or_the_account_at_fault_stops_the_sends() {
        let codes = [
            (400, "MailFromDomainNotVerified"),
            (400, "MailFromDomainNotVerifiedException"),
            (400, "AccountSendingPausedException"),
            (400, "AccountSendingPaused"),
            (400, "ConfigurationSetSendingPausedException"),
            (400, "ConfigurationSetDoesNotExist"),
            (403, "AccessDenied"),
            (403, "AccessDeniedException"),
            (403, "InvalidClientTokenId"),
            (403, "SignatureDoesNotMatch"),
            (400, "UnrecognizedClientException"),
        ];
        for (status, code) in codes {
            assert_eq!(read(status, code, "refused").0, Fault::Sender, "{code}");
        }
        let (fault, message) = read(400, "Throttling", "Daily message quota exceeded.");
        assert_eq!((fault, message.as_str()), (Fault::Sender, "Throttling: Daily message quota exceeded."));
        let job_error = job(ses_error(service_error(403, "AccessDenied", "User is not authorized"), None));
        assert!(matches!(&job_error, shared::Error::Sender(_)) && job_error.is_retryable(), "passes once fixed");
    }

    #[test]
    fn an_unverified_sender_is_told_from_an_unverified_recipient() {
        let not_verified = "Email address is not verified. The following identities failed the check in region \
                            US-EAST-1: ";
        for identities in [
            "news@fitness.example",
            "Fitness <News@Fitness.example>",
            "fitness.example",
            "ana@example.com, news@fitness.example",
        ] {
            let (fault, message) = read(400, "MessageRejected", &format!("{not_verified}{identities}"));
            assert_eq!(fault, Fault::Sender, "{identities}");
            assert!(!message.contains('@'), "no address in {message}");
        }
        // The recipient alone, even at the sender's domain: that email fails, the others may go.
        for identities in ["ana@example.com", "ana@fitness.example", "Ana <ana@fitness.example>"] {
            let (fault, message) = read(400, "MessageRejected", &format!("{not_verified}{identities}"));
            assert_eq!(fault, Fault::Permanent, "{identities}");
            assert!(message.starts_with("MessageRejected: Email address is not verified."), "{message}");
            assert!(!message.contains('@') && message.contains("<address>"), "{message}");
        }
        // moto's wording for an unverified sender.
        assert_eq!(
            read(400, "MessageRejected", "Did not have authority to send from email news@fitness.example").0,
            Fault::Sender
        );
        assert_eq!(read(400, "MessageRejected", "Address blacklisted.").0, Fault::Permanent);
    }

    #[test]
    fn a_rate_throttle_server_errors_and_timeouts_stay_retryable() {
        assert_eq!(
            read(400, "Throttling", "Maximum sending rate exceeded."),
            (Fault::Retryable, "Throttling: Maximum sending rate exceeded.".to_owned())
        );
        assert_eq!(read(500, "InternalFailure", "oops").0, Fault::Retryable);
        assert_eq!(read(503, "ServiceUnavailable", "later").0, Fault::Retryable);
        let from: Address = FROM.parse().unwrap();
        let timeout: SdkError<SendRawEmailError, HttpResponse> = SdkError::timeout_error("attempt timed out");
        assert!(matches!(ses_error(timeout, Some(&from)), crate::Error::Aws { fault: Fault::Retryable, .. }));
        assert_eq!(read(400, "InvalidParameterValue", "Missing domain").0, Fault::Permanent);
    }
}
