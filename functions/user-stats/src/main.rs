//! Lambda: user-stats (`shared::tasks::fitness::user_stats`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::fitness::user_stats::NAME, shared::tasks::builders::user_stats).await
}
