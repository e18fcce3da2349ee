//! Lambda: cart-cleanup (`shared::tasks::maintenance::cleanup`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::maintenance::cleanup::CART_CLEANUP, shared::tasks::builders::cart_cleanup).await
}
