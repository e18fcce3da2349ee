//! The one entry point of every task's Lambda function: reads the config once, builds the adapters once, and
//! hands every invocation — its schedule, a manual trigger, an SQS batch — to the task's job runtime.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use shared::{
    limits::Deadline,
    runtime::{Context, Handled, JobRuntime, RuntimeSettings},
    tasks::Builder,
    time::SystemClock,
};

use tracing_subscriber::{
    filter::{LevelFilter, Targets},
    layer::SubscriberExt,
    util::SubscriberInitExt,
    Layer, Registry,
};

use crate::{
    config::Config,
    wiring::{Backend, Store},
};

/// Serves `task`, which `build` makes, until Lambda stops the process (a function names its task's own builder
/// so that it links no other task). A config or connection error ends the cold start with a message naming what
/// is wrong (never a secret's value).
pub async fn serve(task: &'static str, build: Builder) -> Result<(), lambda_runtime::Error> {
    init_logging();
    // A task that sends nothing has no SES permission: it reads no send quota.
    let config = Config { sends: shared::tasks::SENDERS.contains(&task), ..Config::from_env()? };
    tracing::info!(task, queue = ?config.queue, mail = ?config.mail, "starting");
    let backend = Backend::connect(config, Arc::new(SystemClock)).await?;
    let runtime = backend.runtime_of(task, build, RuntimeSettings::default())?;
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

/// Every function's logs, as Lambda's logging controls say: JSON lines (with the invocation's request id, from
/// the runtime's span) when the function's LoggingConfig has LogFormat JSON (`AWS_LAMBDA_LOG_FORMAT`), text
/// otherwise; the level from `RUST_LOG` (`debug`, or per module: `info,infra=debug`), an operator's setting on
/// the function, else Lambda's `AWS_LAMBDA_LOG_LEVEL` (the LoggingConfig's ApplicationLogLevel), else INFO.
/// No time (CloudWatch stamps each line), no colours (they would show as escape codes in the console).
pub fn init_logging() {
    let setting = std::env::var("RUST_LOG").or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL")).ok();
    let (filter, refused) = log_filter(setting.as_deref());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let layer = tracing_subscriber::fmt::layer().with_target(false).without_time().with_ansi(false);
    let layer: Box<dyn Layer<Registry> + Send + Sync> = if json { Box::new(layer.json()) } else { Box::new(layer) };
    tracing_subscriber::registry().with(layer).with(filter).init();
    if let Some(setting) = refused {
        tracing::warn!(setting, "the log level is not a level or a list of module=level: logging at INFO");
    }
}

/// The filter a log level setting asks for, and the setting when it is not one (then INFO). Lambda's FATAL is
/// tracing's ERROR.
fn log_filter(setting: Option<&str>) -> (Targets, Option<&str>) {
    let info = Targets::new().with_default(LevelFilter::INFO);
    match setting.map(str::trim) {
        None | Some("") => (info, None),
        Some(level) if level.eq_ignore_ascii_case("fatal") => (Targets::new().with_default(LevelFilter::ERROR), None),
        // A list that names no level for the rest (`infra=debug`) keeps INFO for it: nothing else goes silent.
        Some(setting) => match setting.parse::<Targets>() {
            Ok(targets) if targets.default_level().is_none() => (targets.with_default(LevelFilter::INFO), None),
            Ok(targets) => (targets, None),
            Err(_) => (info, Some(setting)),
        },
    }
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
    store.invocation_begins();
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

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    fn allows(setting: Option<&str>, target: &str, level: Level) -> bool {
        log_filter(setting).0.would_enable(target, &level)
    }

    #[test]
    fn info_unless_a_level_is_set() {
        assert!(allows(None, "infra", Level::INFO) && !allows(None, "infra", Level::DEBUG));
        assert!(allows(Some("DEBUG"), "shared::runtime", Level::DEBUG));
        assert!(!allows(Some("WARN"), "infra", Level::INFO) && allows(Some("warn"), "infra", Level::WARN));
    }

    #[test]
    fn lambdas_fatal_is_error() {
        assert!(allows(Some("FATAL"), "infra", Level::ERROR) && !allows(Some("FATAL"), "infra", Level::WARN));
    }

    #[test]
    fn a_module_can_have_its_own_level() {
        let setting = Some("info,infra::sqs=debug");
        assert!(allows(setting, "infra::sqs", Level::DEBUG));
        assert!(!allows(setting, "infra::ses", Level::DEBUG) && allows(setting, "infra::ses", Level::INFO));
    }

    #[test]
    fn modules_alone_leave_the_rest_at_info() {
        let setting = Some("infra::sqs=debug");
        assert!(allows(setting, "infra::sqs", Level::DEBUG));
        assert!(allows(setting, "shared::runtime", Level::INFO) && !allows(setting, "shared::runtime", Level::DEBUG));
    }

    #[test]
    fn a_setting_that_is_no_level_is_info_and_said() {
        assert_eq!(log_filter(Some("infra=loud")).1, Some("infra=loud"));
        let setting = Some("infra=loud");
        assert!(allows(setting, "infra", Level::INFO) && !allows(setting, "infra", Level::DEBUG));
        assert_eq!(log_filter(Some("debug")).1, None);
    }
}
