//! The shop's tasks: what customers are told about their subscriptions and orders.

pub mod renewal_reminders;
