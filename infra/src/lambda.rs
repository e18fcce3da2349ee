//! The one entry point of every task's Lambda function: reads the config once, builds the adapters once, and
//! hands every invocation — its schedule, a manual trigger, an SQS batch — to the task's job runtime.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use shared::{
    limits::Deadline,
    runtime::{Context, Handled, JobRuntime, RuntimeSettings},
    time::SystemClock,
};

use crate::{
    config::Config,
    wiring::{Backend, Store},
};

/// Serves `task` until Lambda stops the process. A config or connection error ends the cold start with a
/// message naming what is wrong (never a secret's value).
pub async fn serve(task: &'static str) -> Result<(), lambda_runtime::Error> {
    // JSON lines with the request id when the function's LoggingConfig says LogFormat: JSON.
    lambda_runtime::tracing::init_default_subscriber();
    // A task that sends nothing has no SES permission: it reads no send quota.
    let config = Config { sends: shared::tasks::SENDERS.contains(&task), ..Config::from_env()? };
    tracing::info!(task, queue = ?config.queue, mail = ?config.mail, "starting");
    let backend = Backend::connect(config, Arc::new(SystemClock)).await?;
    let runtime = backend.runtime(task, RuntimeSettings::default())?;
    let (store, runtime) = (&backend.store, &runtime);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let context =
            Context { deadline: deadline(&event.context, &runtime.settings), request_id: event.context.request_id };
        invoke(store, runtime, event.payload, &context).await.map(Handled::into_response).map_err(|e| Diagnostic {
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

/// The invocation's deadline, as Lambda gives it. An emulator may give one already past (`cargo lambda watch`
/// does), which Lambda never does: then the function's timeout from now, said once, so a local run works its
/// batches rather than putting every message back.
fn deadline(context: &lambda_runtime::Context, settings: &RuntimeSettings) -> Deadline {
    let given = Deadline::from_epoch_millis(context.deadline, settings.deadline_margin);
    if !given.remaining().is_zero() {
        return given;
    }
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        tracing::warn!(timeout = ?settings.timeout, "the invocation's deadline had passed when it arrived (an emulator?): using the function's timeout from now");
    });
    Deadline::after(settings.timeout, settings.deadline_margin)
}

/// One invocation. When the database refused the credentials during it and their secret now holds new ones (a
/// rotation), the next connections use them and the invocation is handled once more: every step of the runtime
/// is idempotent, so the second pass redoes nothing the first did.
pub async fn invoke(store: &Store, runtime: &JobRuntime, payload: Value, context: &Context) -> shared::Result<Handled> {
    let handled = runtime.handle(payload.clone(), context).await;
    match store.renew_credentials().await {
        Ok(true) => runtime.handle(payload, context).await,
        Ok(false) => handled,
        Err(e) => {
            tracing::error!(error = %e, "reading the database secret again after the server refused it");
            handled
        }
    }
}
