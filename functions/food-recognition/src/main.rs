//! Lambda: food-recognition (`shared::tasks::fitness::food_recognition`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::serve(shared::tasks::fitness::food_recognition::NAME, shared::tasks::builders::food_recognition)
        .await
}
