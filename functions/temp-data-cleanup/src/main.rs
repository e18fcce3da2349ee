//! Lambda: temp-data-cleanup (`shared::tasks::maintenance::cleanup`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(
        shared::tasks::maintenance::cleanup::TEMP_DATA_CLEANUP,
        shared::tasks::builders::temp_data_cleanup,
    )
    .await
}
