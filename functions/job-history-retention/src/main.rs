//! Lambda: job-history-retention (`shared::tasks::maintenance::job_history_retention`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(
        shared::tasks::maintenance::job_history_retention::NAME,
        shared::tasks::builders::job_history_retention,
    )
    .await
}
