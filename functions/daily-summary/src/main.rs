//! Lambda: daily-summary (`shared::tasks::fitness::daily_summary`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::fitness::daily_summary::NAME, shared::tasks::builders::daily_summary).await
}
