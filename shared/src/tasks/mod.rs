//! The scheduled tasks, one module each, and the registry that builds a task from its name.

use std::sync::Arc;

use crate::{
    ports::{ActivityStore, Mailer},
    runtime::Task,
    Error, Result,
};

pub mod daily_summary;

/// Every task, by name; each has a function crate of the same name and a schedule in template.yaml.
pub const NAMES: &[&str] = &[daily_summary::NAME];

/// What the tasks need from the world.
#[derive(Clone)]
pub struct Deps {
    pub activity: Arc<dyn ActivityStore>,
    pub mailer: Arc<dyn Mailer>,
    /// The sender of every email.
    pub mail_from: String,
}

/// Builds the named task, or says which tasks there are.
pub fn build(name: &str, deps: &Deps) -> Result<Arc<dyn Task>> {
    match name {
        daily_summary::NAME => Ok(Arc::new(daily_summary::DailySummary {
            store: deps.activity.clone(),
            mailer: deps.mailer.clone(),
            from: deps.mail_from.clone(),
            chunk_size: 500,
        })),
        other => Err(Error::permanent(format!("unknown task {other:?}; the tasks are: {}", NAMES.join(", ")))),
    }
}
