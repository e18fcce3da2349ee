//! Lambda: subscription-processing (`shared::tasks::shop::subscription_processing`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(
        shared::tasks::shop::subscription_processing::NAME,
        shared::tasks::builders::subscription_processing,
    )
    .await
}
