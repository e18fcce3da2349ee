//! Lambda: session-cleanup (`shared::tasks::maintenance::cleanup`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::maintenance::cleanup::SESSION_CLEANUP, shared::tasks::builders::session_cleanup)
        .await
}
