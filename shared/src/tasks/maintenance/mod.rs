//! The tasks that keep the database small: they send nothing, they delete rows, in short bounded batches.

pub mod job_history_retention;
