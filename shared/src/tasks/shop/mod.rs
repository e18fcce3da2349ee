//! The shop's tasks: subscriptions turned into orders and charged, and what customers are told about them.

pub mod order_notifications;
pub mod renewal_reminders;
pub mod subscription_processing;
