//! Lambda: mail-feedback, subscribed to the SNS topic SES publishes bounces and complaints to. Reads its
//! config and connects the store once, and hands every SNS event to `shared::mail_feedback::handle`; a
//! malformed message fails the invocation, so Lambda's retries and the on-failure destination keep it.

use aws_lambda_events::sns::SnsEvent;
use infra::{config::MailFeedbackConfig, wiring::Store};
use lambda_runtime::{service_fn, LambdaEvent};
use shared::{
    mail_feedback,
    time::{Clock, SystemClock},
};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::init_logging();
    let config = MailFeedbackConfig::from_env()?;
    let store = Store::open(&config.database).await?.suppressions();
    let store = &*store;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        mail_feedback::handle(store, event.payload, SystemClock.now()).await.map_err(lambda_runtime::Error::from)
    }))
    .await
}
