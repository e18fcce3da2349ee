//! The scheduled jobs' core: domain tasks, time and slots, the job runtime and the ports it talks through.
//! Nothing here names AWS or SQL; adapters live in `infra`, wiring in the binaries.

pub mod backoff;
pub mod channels;
pub mod deliveries;
pub mod error;
pub mod invocation;
pub mod limits;
pub mod mail_feedback;
pub mod memory;
pub mod metrics;
pub mod ports;
pub mod render;
pub mod runtime;
pub mod schedule;
pub mod tasks;
pub mod time;
pub mod unsubscribe;

pub use error::{Error, Result};
