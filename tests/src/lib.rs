//! Shared helpers of the workspace integration tests: fresh databases, the moto server, contract suites.

pub mod db;
pub mod moto;
pub mod queue_contract;
pub mod store_contract;
