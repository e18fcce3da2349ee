//! The fitness app's data, as its tasks read it and as the demo, tests and benchmarks seed it.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::Result;

/// A user as the daily summary needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: i64,
    pub name: String,
    pub email: String,
    pub time_zone: String,
    pub email_opt_in: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkoutLine {
    pub name: String,
    pub duration_minutes: i64,
    pub calories: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordLine {
    pub exercise: String,
    pub weight_kg: f64,
    pub reps: i64,
}

/// One user's activity on one of their local days.
#[derive(Debug, Clone, PartialEq)]
pub struct DayActivity {
    pub user_id: i64,
    pub day: NaiveDate,
    pub workouts: Vec<WorkoutLine>,
    /// Σ weight × reps over the day's sets.
    pub volume_kg: f64,
    pub records: Vec<RecordLine>,
    /// Consecutive active local days ending with `day`.
    pub streak_days: i64,
}

/// Users and their workouts, read by the activity tasks.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Every distinct time zone users have, valid or not.
    async fn time_zones(&self) -> Result<Vec<String>>;
    /// Ids of users in `zones`, ordered, after `after` (keyset pagination).
    async fn users_in_zones(&self, zones: &[String], after: i64, limit: u32) -> Result<Vec<i64>>;
    async fn recipients(&self, user_ids: &[i64]) -> Result<Vec<Recipient>>;
    /// The activity of each `(user, local day)` that has any; users with none are absent.
    async fn day_activity(&self, days: &[(i64, NaiveDate)]) -> Result<Vec<DayActivity>>;
}

/// A user as the app creates them: for seeding the demo, tests and benchmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub time_zone: String,
    pub email_opt_in: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewSet {
    pub exercise_id: i64,
    pub weight_kg: f64,
    pub reps: i64,
    pub personal_record: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewWorkout {
    pub user_id: i64,
    pub name: String,
    pub started_at: DateTime<Utc>,
    /// The user's calendar day of the workout, in their zone.
    pub local_date: NaiveDate,
    pub duration_minutes: i64,
    pub calories: i64,
    pub sets: Vec<NewSet>,
}

/// The app's side of its tables, in bulk: what seeds the demo, the tests and the benchmarks.
#[async_trait]
pub trait AppWriter: Send + Sync {
    /// Inserts exercises (or finds them by name) and returns their ids in order.
    async fn add_exercises(&self, names: &[String]) -> Result<Vec<i64>>;
    /// Inserts users and returns their ids in order.
    async fn add_users(&self, users: &[NewUser]) -> Result<Vec<i64>>;
    async fn add_workouts(&self, workouts: &[NewWorkout]) -> Result<()>;
    /// Moves users to another time zone, as the app does when they travel or move.
    async fn set_time_zone(&self, user_ids: &[i64], zone: &str) -> Result<()>;
}
