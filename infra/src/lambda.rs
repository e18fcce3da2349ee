//! The one entry point of every task's Lambda function: reads the config once, builds the adapters once, and
//! hands every invocation — its schedule, a manual trigger, an SQS batch — to the task's job runtime.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use shared::{
    limits::Deadline,
    runtime::{Context, RuntimeSettings},
    time::SystemClock,
};

use crate::{config::Config, wiring::Backend};

/// Serves `task` until Lambda stops the process. A config or connection error ends the cold start with a
/// message naming what is wrong (never a secret's value).
pub async fn serve(task: &'static str) -> Result<(), lambda_runtime::Error> {
    // JSON lines with the request id when the function's LoggingConfig says LogFormat: JSON.
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    tracing::info!(task, queue = ?config.queue, mail = ?config.mail, "starting");
    let backend = Backend::connect(config, Arc::new(SystemClock)).await?;
    let runtime = backend.runtime(task, RuntimeSettings::default())?;
    let runtime = &runtime;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let context = Context {
            deadline: Deadline::from_epoch_millis(event.context.deadline, runtime.settings.deadline_margin),
            request_id: event.context.request_id,
        };
        runtime.handle(event.payload, &context).await.map(|handled| handled.into_response()).map_err(|e| Diagnostic {
            // What the console and the Errors metric show: whether trying again can help.
            error_type: match e {
                shared::Error::Retryable(_) => "Retryable",
                shared::Error::Permanent(_) => "Permanent",
                shared::Error::Sender(_) => "SenderRefused",
            }
            .into(),
            error_message: e.to_string(),
        })
    }))
    .await
}
