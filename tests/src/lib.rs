//! Shared helpers of the workspace integration tests: fresh databases, the moto server, a Lambda runtime API, contract suites, a task's runtime on either stack.

pub mod db;
pub mod lambda_api;
pub mod moto;
pub mod nudges;
pub mod queue_contract;
pub mod shop;
pub mod store_contract;
pub mod task_stack;
pub mod template;
