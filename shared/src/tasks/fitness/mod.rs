//! The fitness app's tasks: what its users receive about their training.

pub mod daily_summary;
pub mod monthly_report;
pub mod weekly_report;
