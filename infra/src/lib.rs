//! Adapters of the scheduled jobs to the world: PostgreSQL and SQLite stores (sqlx), SQS and the embedded
//! queue, SES, SNS and the file outbox, the uploads bucket and the vision model. They implement `shared`'s ports
//! and decide no business rule.

pub mod aws;
pub mod config;
#[cfg(feature = "embedded")]
pub mod embedded_queue;
pub mod error;
pub mod event_bus;
pub mod food;
pub mod lambda;
pub mod mime;
#[cfg(feature = "embedded")]
pub mod outbox;
pub mod payments;
pub mod postgres;
pub mod redact;
pub mod secrets;
pub mod ses;
pub mod sns;
#[cfg(feature = "embedded")]
pub mod sqlite;
pub mod sqs;
mod store;
pub mod wiring;

pub use error::{Error, Fault};
