//! What the AWS adapters share: the SDK configuration and the one reading of an SDK failure as retryable,
//! permanent or the sender's (a service's adapter adds what only it knows, see `ses`).

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::config::SharedHttpClient;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::{Error, Fault};

/// The SDK configuration from the environment: region, credentials, and `AWS_ENDPOINT_URL` (or a per-service
/// `AWS_ENDPOINT_URL_SQS`…) when a local emulator stands in for AWS.
pub async fn sdk_config() -> SdkConfig {
    loader().load().await
}

/// The defaults with our HTTPS client and timeouts, before the environment is read (a local emulator's tests
/// add its endpoint and keys).
pub fn loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client()).timeout_config(timeouts())
}

/// The SDK's HTTPS client on rustls with ring: the SDK's own default would link aws-lc-rs as a second crypto
/// library (0.55 MB of each function, BENCHMARKS.md). It trusts the system's certificate store, as the
/// default does.
fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The longest any SDK call may take, retries included: the runtime's deadline margin must cover it.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds on every SDK call. By default the SDK sets only a connect timeout, so a call whose answer never comes
/// (a half-open connection, a stalled endpoint) would hold a worker until the Lambda's own timeout kills the
/// invocation, stranding the claims it holds and leaving no time to hand the rest of the batch back. Our calls
/// are small (one email, ten queue messages, no long polling) and usually answer well within a second, so:
/// - 4 s per attempt gives a slow answer ample room, yet cuts a stalled one short so the SDK's retry (three
///   attempts in standard mode) can try a fresh connection;
/// - 10 s for the whole operation, retries and their backoff included, keeps one call to a small part of the
///   function's 60 s (template.yaml), so after a stuck call the invocation still has time to settle its claims
///   and hand the rest of its batch back;
/// - 2 s to connect: in-region endpoints connect in milliseconds, and a refused or unroutable one should fail
///   fast and count as retryable.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(2))
        .build()
}

/// Error codes that mean "slow down": worth a retry later. Services prefix some (`AWS.SimpleQueueService.…`),
/// so only the last dotted segment is compared.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "Throttled",
    "KmsThrottled",
    "KMSThrottling",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
];

/// Codes that mean our credentials were refused, whatever the service: no call of any kind can pass until
/// they are fixed.
const CREDENTIALS_REFUSED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
];

/// Whether the code says our credentials were refused: the sender's fault for every service that sends.
pub(crate) fn credentials_refused(code: &str) -> bool {
    CREDENTIALS_REFUSED.contains(&code)
}

/// Any SDK failure as the adapters' error: retryable for throttling, timeouts, failures to reach the service
/// and 5xx answers; permanent for what the service refused on its merits (a rejected message, a missing queue)
/// or a request that could not even be built.
pub(crate) fn aws_error<E>(service: &'static str, e: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    aws_error_read_by(service, e, |_, _| None)
}

/// `aws_error`, with a service's own reading of its answers first: `read(code, message)` sees the error code
/// and the whole text, personal data included, and returns a fault or leaves the decision to the general rule.
pub(crate) fn aws_error_read_by<E>(
    service: &'static str,
    e: SdkError<E, HttpResponse>,
    read: impl FnOnce(&str, &str) -> Option<Fault>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let retryable = |yes: bool| if yes { Fault::Retryable } else { Fault::Permanent };
    let fault = match &e {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Fault::Retryable,
        SdkError::DispatchFailure(failure) => retryable(!failure.is_user()),
        SdkError::ServiceError(failure) => {
            read(e.code().unwrap_or(""), e.message().unwrap_or("")).unwrap_or_else(|| {
                retryable(
                    failure.raw().status().is_server_error()
                        || e.code()
                            .and_then(|code| code.rsplit('.').next())
                            .is_some_and(|code| THROTTLING.contains(&code)),
                )
            })
        }
        _ => Fault::Permanent,
    };
    let message = match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => DisplayErrorContext(&e).to_string(),
    };
    failure(service, &message, fault)
}

/// A request the SDK's builders refused before anything was sent: a bug on our side, never worth a retry.
pub(crate) fn invalid_request(service: &'static str, e: impl std::fmt::Display) -> Error {
    failure(service, &format!("invalid request: {e}"), Fault::Permanent)
}

/// The one way an AWS failure becomes the adapters' error: a service's answer may quote an address or a phone
/// number (SES names the identities that failed its check), and the text goes on to logs and the database.
pub(crate) fn failure(service: &'static str, message: &str, fault: Fault) -> Error {
    Error::Aws { service, message: crate::redact::personal_data(message), fault }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ses::error::ErrorMetadata;
    use aws_sdk_ses::operation::send_raw_email::SendRawEmailError;

    fn service_error(status: u16, code: &str, message: &str) -> SdkError<SendRawEmailError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(status.try_into().expect("status"), "".into());
        SdkError::service_error(SendRawEmailError::generic(meta), raw)
    }

    fn classify(e: SdkError<SendRawEmailError, HttpResponse>) -> (String, bool) {
        match aws_error("ses", e) {
            Error::Aws { service: "ses", message, fault } => {
                assert_ne!(fault, Fault::Sender, "the general rule knows no sender");
                (message, fault == Fault::Retryable)
            }
            other => panic!("not an AWS error: {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_call_is_bounded_per_attempt_and_in_all() {
        // A region of our own, so loading reads no instance metadata; the timeouts come from the loader.
        let config = loader().region(aws_config::Region::new("eu-west-1")).load().await;
        let timeouts = config.timeout_config().expect("a timeout configuration");
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(timeouts.operation_attempt_timeout(), Some(Duration::from_secs(4)));
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        assert_eq!(
            classify(service_error(400, "Throttling", "Maximum sending rate exceeded.")),
            ("Throttling: Maximum sending rate exceeded.".to_owned(), true)
        );
        assert!(classify(service_error(400, "AWS.SimpleQueueService.RequestThrottled", "slow down")).1);
        assert!(classify(service_error(503, "SomethingNew", "unavailable")).1);
        assert!(classify(SdkError::timeout_error("read timed out")).1);
    }

    #[test]
    fn refusals_on_the_merits_are_permanent() {
        let (message, retryable) = classify(service_error(
            400,
            "MessageRejected",
            "Email address is not verified. The following identities failed the check in region US-EAST-1: \
             ana@example.com",
        ));
        // The code and the reason stay; the address, personal data on its way to logs and the database, goes.
        assert_eq!(
            message,
            "MessageRejected: Email address is not verified. The following identities failed the check in region \
             US-EAST-1: <address>"
        );
        assert!(!message.contains("ana@") && !message.contains("example.com"), "{message}");
        assert!(!retryable);
        assert!(!classify(SdkError::construction_failure("missing field")).1);
    }

    #[test]
    fn a_dispatch_failure_is_retryable_unless_the_request_itself_was_bad() {
        use aws_sdk_ses::error::ConnectorError;
        let io = SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let (message, retryable) = classify(io);
        assert!(retryable);
        assert!(message.contains("connection refused"), "{message}");
        assert!(!classify(SdkError::dispatch_failure(ConnectorError::user("bad uri".into()))).1);
    }
}
