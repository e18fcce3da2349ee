//! Lambda: renewal-reminders (`shared::tasks::shop::renewal_reminders`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::shop::renewal_reminders::NAME, shared::tasks::builders::renewal_reminders).await
}
