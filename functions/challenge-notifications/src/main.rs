//! Lambda: challenge-notifications (`shared::tasks::fitness::challenge_notifications`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(
        shared::tasks::fitness::challenge_notifications::NAME,
        shared::tasks::builders::challenge_notifications,
    )
    .await
}
