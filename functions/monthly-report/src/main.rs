//! Lambda: monthly-report (`shared::tasks::fitness::monthly_report`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::fitness::monthly_report::NAME, shared::tasks::builders::monthly_report).await
}
