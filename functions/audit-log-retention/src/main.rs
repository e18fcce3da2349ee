//! Lambda: audit-log-retention (`shared::tasks::maintenance::cleanup`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(
        shared::tasks::maintenance::cleanup::AUDIT_LOG_RETENTION,
        shared::tasks::builders::audit_log_retention,
    )
    .await
}
