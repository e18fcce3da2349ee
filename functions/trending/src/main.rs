//! Lambda: trending (`shared::tasks::fitness::trending`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::fitness::trending::NAME, shared::tasks::builders::trending).await
}
