//! Lambda: token-cleanup (`shared::tasks::maintenance::cleanup`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::maintenance::cleanup::TOKEN_CLEANUP, shared::tasks::builders::token_cleanup)
        .await
}
