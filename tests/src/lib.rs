//! Shared helpers of the workspace integration tests: fresh databases, the moto server, a Lambda runtime API, a provider's HTTP API, contract suites, a task's runtime on either stack.

pub mod db;
pub mod http_stand_in;
pub mod lambda_api;
pub mod moto;
pub mod nudges;
pub mod queue_contract;
pub mod shop;
pub mod store_contract;
pub mod task_stack;
pub mod template;
pub mod throwaway_pg;

/// Runs each named scenario, an `async fn(nudges::Backend)` of the calling test file, once on each store: as
/// `sqlite::name` and `postgres::name`, on a runtime with worker threads enough for its concurrent workers.
#[macro_export]
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $scenario() {
                super::$scenario($crate::nudges::Backend::Sqlite).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $scenario() {
                super::$scenario($crate::nudges::Backend::Postgres).await;
            })*
        }
    };
}
