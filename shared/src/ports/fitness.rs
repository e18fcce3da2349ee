//! The fitness app's data, as its tasks read it and as the demo, tests and benchmarks seed it.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::Result;

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
    /// Backdates (or postdates) users' sign-up, for accounts older than the seeding.
    async fn set_created_at(&self, user_ids: &[i64], at: DateTime<Utc>) -> Result<()>;
    /// Creates a challenge and returns its id. `ends_on` is not checked against `starts_on`: the app's may not be.
    async fn add_challenge(&self, title: &str, starts_on: NaiveDate, ends_on: NaiveDate) -> Result<i64>;
    /// Makes users participants of a challenge; joining again changes nothing.
    async fn join_challenge(&self, challenge_id: i64, user_ids: &[i64]) -> Result<()>;
}

/// One user's week, Monday to Sunday of their local days.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekActivity {
    pub user_id: i64,
    pub monday: NaiveDate,
    pub workouts: i64,
    pub minutes: i64,
    pub calories: i64,
    /// Σ weight × reps over the week's sets.
    pub volume_kg: f64,
    /// The week's personal records, in the order they were set.
    pub records: Vec<RecordLine>,
    /// The local day with the most minutes; of equal days, the earliest.
    pub best_day: NaiveDate,
    /// That day's minutes.
    pub best_day_minutes: i64,
    /// Minutes of the eight weeks ending with this one, oldest first, weeks without a workout as 0.
    pub minutes_by_week: Vec<i64>,
}

/// What the weekly report reads.
#[async_trait]
pub trait WeeklyReports: Send + Sync {
    /// The week starting on each `(user, Monday)` that has a workout; users with none that week are absent.
    async fn weeks(&self, weeks: &[(i64, NaiveDate)]) -> Result<Vec<WeekActivity>>;
}

/// Where a user stood in a month's standings, as they were built once for everyone.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// 1 for the most minutes; equal minutes share a rank and the next rank skips (1, 1, 3).
    pub rank: i64,
    /// How many users were ranked: every user with a workout that month when the standings were built.
    pub ranked: i64,
    /// The share of ranked users with strictly fewer minutes, 0 to 100.
    pub percentile: f64,
}

/// One user's calendar month.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthActivity {
    pub user_id: i64,
    /// The month's first day.
    pub month: NaiveDate,
    pub workouts: i64,
    pub minutes: i64,
    /// Minutes over the month's weeks: minutes / (days in the month / 7).
    pub minutes_per_week: f64,
    /// The Monday of the ISO week with the most minutes inside the month (weeks cut by its edges count only
    /// their days in it, and the first week's Monday may be in the month before); of equal weeks, the earliest.
    pub best_week: NaiveDate,
    /// None when the user is not in the standings: they trained only after those were built.
    pub standing: Option<Standing>,
}

/// What the monthly report reads, and the standings it builds once per month.
#[async_trait]
pub trait MonthlyReports: Send + Sync {
    /// Ranks every user with a workout in `month` (its first day) by minutes, once: a later or concurrent
    /// call builds nothing. Returns how many users the standings rank.
    async fn build_standings(&self, month: NaiveDate, now: DateTime<Utc>) -> Result<u64>;
    /// The month starting on each `(user, first day)` that has a workout; users with none are absent.
    async fn months(&self, months: &[(i64, NaiveDate)]) -> Result<Vec<MonthActivity>>;
}

/// A user who has not trained for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inactive {
    pub user_id: i64,
    /// None if they never trained.
    pub last_workout: Option<NaiveDate>,
    /// The first day without a workout: the day after the last one, or the sign-up day. One reminder per stretch.
    pub stretch_start: NaiveDate,
}

/// What the inactivity reminders read.
#[async_trait]
pub trait InactivityReminders: Send + Sync {
    /// Those of `users` whose last workout was `days` or more days before `today` (by local date), or who never
    /// trained and signed up (by the UTC date of `created_at`) `days` or more days before it.
    async fn inactive(&self, users: &[i64], today: NaiveDate, days: u32) -> Result<Vec<Inactive>>;
}

/// Which edge of a challenge a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChallengeEdge {
    Starts,
    Ends,
}

/// A challenge a user joined that starts or ends on the day asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeNotice {
    pub user_id: i64,
    pub challenge_id: i64,
    pub title: String,
    pub starts_on: NaiveDate,
    /// As the app stored it: possibly before `starts_on`, which the task reports rather than sends.
    pub ends_on: NaiveDate,
    pub edge: ChallengeEdge,
}

/// What the challenge notifications read.
#[async_trait]
pub trait ChallengeNotices: Send + Sync {
    /// Ids of users in `zones` who joined a challenge starting or ending on `tomorrow`, ordered, after
    /// `after_user` (keyset pagination).
    async fn participants_due(
        &self,
        zones: &[String],
        tomorrow: NaiveDate,
        after_user: i64,
        limit: u32,
    ) -> Result<Vec<i64>>;
    /// One notice per (user, challenge, edge) on `tomorrow`: a challenge starting and ending that day gives two.
    async fn notices(&self, users: &[i64], tomorrow: NaiveDate) -> Result<Vec<ChallengeNotice>>;
}
