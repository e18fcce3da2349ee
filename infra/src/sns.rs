//! The notifier port on Amazon SNS: a transactional SMS published to a phone number, a push published to a
//! device's platform endpoint; and SNS's own reading of its refusals: a disabled or deleted endpoint is a gone
//! device, not a failure, and the account's or the application's refusals stop every send.

use async_trait::async_trait;
use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use shared::channels::{check_push, check_sms};
use shared::ports::{Notifier, Push, Pushed, Sms};
use shared::Result;

use crate::aws::{aws_error_read_by, credentials_refused, invalid_request};
use crate::error::{job, Fault};

const SERVICE: &str = "sns";

pub struct SnsNotifier {
    client: Client,
}

impl SnsNotifier {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn sms(&self, sms: &Sms) -> Result<String> {
        check_sms(sms)?;
        // Transactional: SNS routes it for reliability (one-time codes, reminders) rather than lowest cost.
        let transactional = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("Transactional")
            .build()
            .map_err(|e| job(invalid_request(SERVICE, e)))?;
        let sent = self
            .client
            .publish()
            .phone_number(&sms.to)
            .message(&sms.text)
            .message_attributes("AWS.SNS.SMS.SMSType", transactional)
            .send()
            .await
            .map_err(|e| job(sns_error(e)))?;
        Ok(sent.message_id().unwrap_or_default().to_owned())
    }

    async fn push(&self, push: &Push) -> Result<Pushed> {
        check_push(push)?;
        match self
            .client
            .publish()
            .target_arn(&push.endpoint_arn)
            .message_structure("json")
            .message(payload(push))
            .send()
            .await
        {
            Ok(sent) => Ok(Pushed::Sent(sent.message_id().unwrap_or_default().to_owned())),
            Err(e) if matches!(e.code(), Some(code) if GONE_CODES.contains(&code)) => {
                let reason = format!("{}: {}", e.code().unwrap_or_default(), e.message().unwrap_or_default());
                Ok(Pushed::Gone(crate::redact::personal_data(&reason)))
            }
            Err(e) => Err(job(sns_error(e))),
        }
    }
}

/// One message for every platform an endpoint may be on (SNS picks the endpoint's own): title and body as
/// APNs and FCM show them, the body alone for the rest.
fn payload(push: &Push) -> String {
    let apns = serde_json::json!({ "aps": { "alert": { "title": push.title, "body": push.body } } }).to_string();
    let fcm = serde_json::json!({ "notification": { "title": push.title, "body": push.body } }).to_string();
    serde_json::json!({ "default": push.body, "APNS": apns, "APNS_SANDBOX": apns, "GCM": fcm }).to_string()
}

/// The endpoint was disabled (the platform said the token is no longer valid: the app was uninstalled) or
/// deleted.
const GONE_CODES: &[&str] = &["EndpointDisabled", "NotFound"];

/// Codes that mean no SMS or push can leave, whoever it is for: the account is not authorised (the SMS
/// sandbox, a missing permission), the request's signature was refused, the encryption key of the account is
/// unusable, or the platform application's own credentials (APNs certificate, FCM key) are disabled.
const SENDER_CODES: &[&str] = &[
    "AuthorizationError",
    "InvalidSecurity",
    "KMSAccessDenied",
    "KMSDisabled",
    "KMSInvalidState",
    "KMSNotFound",
    "KMSOptInRequired",
    "PlatformApplicationDisabled",
];

/// An SNS failure as the adapters' error: the sender's when SENDER_CODES or refused credentials say so, else
/// the general rule (throttling and 5xx retryable; an invalid parameter, or a number that opted out, permanent).
fn sns_error<E>(e: SdkError<E, HttpResponse>) -> crate::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    aws_error_read_by(SERVICE, e, |code, _| {
        (SENDER_CODES.contains(&code) || credentials_refused(code)).then_some(Fault::Sender)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::error::ErrorMetadata;
    use aws_sdk_sns::operation::publish::PublishError;

    fn service_error(status: u16, code: &str, message: &str) -> SdkError<PublishError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(status.try_into().expect("status"), "".into());
        SdkError::service_error(PublishError::generic(meta), raw)
    }

    fn read(status: u16, code: &str, message: &str) -> (Fault, String) {
        match sns_error(service_error(status, code, message)) {
            crate::Error::Aws { service: "sns", message, fault } => (fault, message),
            other => panic!("not an AWS error: {other:?}"),
        }
    }

    #[test]
    fn the_account_or_the_application_at_fault_stops_the_sends() {
        for code in SENDER_CODES.iter().chain(&["AccessDenied", "InvalidClientTokenId", "SignatureDoesNotMatch"]) {
            assert_eq!(read(403, code, "refused").0, Fault::Sender, "{code}");
        }
    }

    #[test]
    fn throttling_server_errors_and_timeouts_are_retryable() {
        for (status, code) in [(400, "Throttled"), (400, "KMSThrottling"), (500, "InternalError"), (503, "Unknown")] {
            assert_eq!(read(status, code, "slow down").0, Fault::Retryable, "{code}");
        }
        let timeout: SdkError<PublishError, HttpResponse> = SdkError::timeout_error("attempt timed out");
        assert!(matches!(sns_error(timeout), crate::Error::Aws { fault: Fault::Retryable, .. }));
    }

    #[test]
    fn a_bad_request_or_an_opted_out_number_fails_that_message_only_and_names_no_one() {
        let (fault, message) = read(
            400,
            "InvalidParameter",
            "Invalid parameter: TargetArn Reason: arn:aws:sns:us-east-1:123456789012:endpoint/APNS/app/1 is bad",
        );
        assert_eq!(fault, Fault::Permanent);
        assert_eq!(message, "InvalidParameter: Invalid parameter: TargetArn Reason: <endpoint> is bad");
        // One person replied STOP: their SMS fails, everyone else's may go.
        let (fault, message) = read(400, "OptedOut", "Phone number +447700900123 is opted out");
        assert_eq!((fault, message.as_str()), (Fault::Permanent, "OptedOut: Phone number <phone> is opted out"));
        assert_eq!(read(400, "ParameterValueInvalid", "bad").0, Fault::Permanent);
    }

    #[test]
    fn the_payload_carries_title_and_body_for_each_platform() {
        let push = Push { endpoint_arn: "arn".into(), title: "Zeit \"jetzt\"".into(), body: "Los ✓".into() };
        let outer: serde_json::Value = serde_json::from_str(&payload(&push)).unwrap();
        assert_eq!(outer["default"], "Los ✓");
        let apns: serde_json::Value = serde_json::from_str(outer["APNS"].as_str().unwrap()).unwrap();
        assert_eq!(apns["aps"]["alert"]["title"], "Zeit \"jetzt\"");
        let fcm: serde_json::Value = serde_json::from_str(outer["GCM"].as_str().unwrap()).unwrap();
        assert_eq!(fcm["notification"]["body"], "Los ✓");
    }
}
