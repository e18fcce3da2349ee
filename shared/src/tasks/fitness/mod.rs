//! The fitness app's tasks: what its users receive about their training, and the analytics the app shows them
//! (leaderboards, trending, the stats cache), and what it works out for them on demand (food recognition).

pub mod boards;
pub mod challenge_notifications;
pub mod daily_summary;
pub mod food_recognition;
pub mod inactivity_reminders;
pub mod leaderboards;
pub mod monthly_report;
pub mod trending;
pub mod user_stats;
pub mod weekly_report;
