//! Lambda: order-notifications (`shared::tasks::shop::order_notifications`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::shop::order_notifications::NAME, shared::tasks::builders::order_notifications)
        .await
}
