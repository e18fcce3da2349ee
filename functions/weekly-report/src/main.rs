//! Lambda: weekly-report (`shared::tasks::fitness::weekly_report`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::fitness::weekly_report::NAME, shared::tasks::builders::weekly_report).await
}
