//! The fitness app's tasks: what its users receive about their training.

pub mod challenge_notifications;
pub mod daily_summary;
pub mod inactivity_reminders;
pub mod monthly_report;
pub mod weekly_report;
