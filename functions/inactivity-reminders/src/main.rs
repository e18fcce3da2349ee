//! Lambda: inactivity-reminders (`shared::tasks::fitness::inactivity_reminders`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(
        shared::tasks::fitness::inactivity_reminders::NAME,
        shared::tasks::builders::inactivity_reminders,
    )
    .await
}
