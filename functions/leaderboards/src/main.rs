//! Lambda: leaderboards (`shared::tasks::fitness::leaderboards`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::fitness::leaderboards::NAME, shared::tasks::builders::leaderboards).await
}
