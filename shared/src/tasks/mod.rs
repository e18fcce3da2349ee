//! The scheduled tasks, one module each, named as their functions are.

pub mod daily_summary;
