//! The tasks that keep the database small: they send nothing, they delete rows that are old enough, in short
//! bounded batches: the app's own (carts, tokens, sessions, audit logs, temporary uploads: all five by one
//! generic cleanup), and the jobs' own history.

pub mod cleanup;
pub mod job_history_retention;
