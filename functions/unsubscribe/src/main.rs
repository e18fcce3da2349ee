//! Lambda: unsubscribe, behind a function URL. Reads its config, connects the store and fetches the signing
//! key once, and hands every request to `shared::unsubscribe::http`.

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use infra::{config::UnsubscribeConfig, secrets, wiring::Store};
use lambda_runtime::{service_fn, LambdaEvent};
use shared::{
    time::{Clock, SystemClock},
    unsubscribe::http,
};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    infra::lambda::init_logging();
    let config = UnsubscribeConfig::from_env()?;
    let store = Store::open(&config.database).await?.unsubscribes();
    let key = secrets::key(&config.key).await?;
    let (store, key) = (&*store, key.expose().as_bytes());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<LambdaFunctionUrlRequest>| async move {
        Ok::<_, std::convert::Infallible>(http::handle(store, key, event.payload, SystemClock.now()).await)
    }))
    .await
}
