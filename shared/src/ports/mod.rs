//! The ports: small, capability-sized traits the runtime and the tasks talk through, one file per what they
//! serve. Each has a production adapter (PostgreSQL, SQS, SES, SNS), an embedded one (SQLite, the embedded queue,
//! the file outbox), and where a unit test needs it an in-memory one (`crate::memory`).

mod fitness;
mod food;
mod jobs;
mod mail;
mod maintenance;
mod notify;
mod shop;
mod suppressions;
mod unsubscribe;

pub use fitness::*;
pub use food::*;
pub use jobs::*;
pub use mail::*;
pub use maintenance::*;
pub use notify::*;
pub use shop::*;
pub use suppressions::*;
pub use unsubscribe::*;
