//! The shop's data as its tasks read and write it on PostgreSQL: each task's SQL in the file named after it.

use super::*;

mod renewal_reminders;
