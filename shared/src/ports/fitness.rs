//! The fitness app's data, as its tasks read it and as the demo, tests and benchmarks seed it.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::{ports::RunPart, Result};

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

/// What a board ranks, and over which days. Each kind is one set-based statement in the store; every kind is
/// kept, versioned and switched the same way (`Boards`).
#[derive(Debug, Clone, PartialEq)]
pub enum BoardSpec {
    /// Users by their volume (Σ weight × reps, kg, to 0.01) over the workouts of the ISO week starting
    /// `monday`, by local date; users without volume that week are not on it.
    WeekVolume { monday: NaiveDate },
    /// Users by their workouts in the ISO week starting `monday`, by local date.
    WeekWorkouts { monday: NaiveDate },
    /// Users by their current streak: the run of consecutive active local days ending with their latest active
    /// day up to `today + 1` (zones ahead of UTC), if that day is `today - 1` or later (a streak is still current
    /// the day after its last workout).
    Streak { today: NaiveDate },
    /// A challenge's participants by their minutes trained from `starts_on` to `ends_on` (local dates, both
    /// included); participants who have not trained share the last rank with 0.
    Challenge { id: i64, starts_on: NaiveDate, ends_on: NaiveDate },
    /// Workout names by growth: workouts of each name in the 7 local days ending `last_day` (recent) against
    /// the 7 before (previous), scored (recent + 1) / (previous + 1); names with fewer than `min_recent` recent
    /// workouts are left out.
    TrendingWorkouts { last_day: NaiveDate, min_recent: i64 },
    /// Exercises likewise, counting the workouts that included each (a workout with five sets of it counts once).
    TrendingExercises { last_day: NaiveDate, min_recent: i64 },
}

impl BoardSpec {
    /// The board's name, what readers ask for: `week-volume`, `week-workouts`, `streak`, `challenge-<id>`,
    /// `trending-workouts`, `trending-exercises`.
    pub fn name(&self) -> String {
        match self {
            Self::WeekVolume { .. } => "week-volume".into(),
            Self::WeekWorkouts { .. } => "week-workouts".into(),
            Self::Streak { .. } => "streak".into(),
            Self::Challenge { id, .. } => format!("challenge-{id}"),
            Self::TrendingWorkouts { .. } => "trending-workouts".into(),
            Self::TrendingExercises { .. } => "trending-exercises".into(),
        }
    }
}

/// What building a board's version for a slot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardBuild {
    /// Built now with this many entries, and made current.
    Built(u64),
    /// Found built by an earlier delivery that stopped before its switch: made current now.
    Switched,
    /// This slot's version is current already (a redelivery, a concurrent worker): nothing done.
    AlreadyCurrent,
    /// A later slot's version is current: this slot's is not built, or is dropped.
    Superseded,
}

impl BoardBuild {
    /// Whether this call switched the board: what the run counts.
    pub fn switched(self) -> bool {
        matches!(self, Self::Built(_) | Self::Switched)
    }
}

/// One row of a board, in display order.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardEntry {
    /// 1, 2, 3…: the display order, unique. Within a tie: users by id; trending entries by more recent workouts,
    /// then by name (byte order).
    pub position: i64,
    /// Competition ranking: equal scores share the rank of the first of them and the next rank skips (1, 1, 3).
    pub rank: i64,
    /// The user (leaderboards) or the exercise (trending-exercises); none for workout names.
    pub subject_id: Option<i64>,
    /// The workout's or exercise's name (trending); none on users' boards.
    pub label: Option<String>,
    pub score: f64,
    /// Trending: the count in the last 7 days, and in the 7 before.
    pub recent: Option<i64>,
    pub previous: Option<i64>,
}

/// The current version of a board, as one consistent read.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    pub name: String,
    /// The version number: increases with every build of any board.
    pub version: i64,
    /// The slot it was built for.
    pub slot: DateTime<Utc>,
    pub built_at: DateTime<Utc>,
    /// Entries in the whole version; `entries` holds the first of them.
    pub total: i64,
    pub entries: Vec<BoardEntry>,
}

/// Versioned boards: each build writes a new version beside the current one, then switches the board's
/// `current` pointer to it in one short transaction, so a reader sees the old board or the new one, never a mix.
#[async_trait]
pub trait Boards: Send + Sync {
    /// Builds `spec`'s board for `run`'s slot and makes it current, once per (board, slot): a second call for
    /// the same slot, concurrent or later, builds nothing, and neither does one for a slot older than the
    /// current version's. The switch counts one side effect into `run` of `task` in its own transaction.
    /// Versions older than the one replaced are deleted after the switch; the replaced one is kept, for
    /// readers paging through it.
    async fn build_board(&self, spec: &BoardSpec, task: &str, run: RunPart, now: DateTime<Utc>) -> Result<BoardBuild>;
    /// The board's current version with its first `limit` entries, read in one statement; none before its
    /// first build.
    async fn board(&self, name: &str, limit: u32) -> Result<Option<Board>>;
    /// The names of the boards that have a current version, in name order.
    async fn board_names(&self) -> Result<Vec<String>>;
}

/// A challenge's dates, as the app stored them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeDates {
    pub id: i64,
    pub title: String,
    pub starts_on: NaiveDate,
    /// Possibly before `starts_on`: such a challenge is never active.
    pub ends_on: NaiveDate,
}

impl ChallengeDates {
    /// Whether `day` is within the challenge, both ends included.
    pub fn active_on(&self, day: NaiveDate) -> bool {
        self.starts_on <= day && day <= self.ends_on
    }
}

/// The challenges as the leaderboards read them.
#[async_trait]
pub trait Challenges: Send + Sync {
    /// Ids of the challenges active on `day` (`starts_on <= day <= ends_on`), ordered, after `after`.
    async fn active_challenges(&self, day: NaiveDate, after: i64, limit: u32) -> Result<Vec<i64>>;
    async fn challenge(&self, id: i64) -> Result<Option<ChallengeDates>>;
}

/// A user's best set of one exercise within their stats' window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExerciseRecord {
    pub exercise_id: i64,
    pub exercise: String,
    /// The heaviest set's weight, and its reps (of equally heavy sets, the most reps).
    pub best_weight_kg: f64,
    pub best_reps: i64,
    /// Sets of this exercise the app flagged as personal records.
    pub pr_sets: i64,
}

/// A user's cached stats over the 30 local days `window_start ..= window_end`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserStats {
    pub user_id: i64,
    pub window_start: NaiveDate,
    pub window_end: NaiveDate,
    pub workouts: i64,
    /// workouts / (30 / 7).
    pub workouts_per_week: f64,
    pub minutes: i64,
    /// Σ weight × reps, kg.
    pub volume_kg: f64,
    /// Sets flagged as personal records, all exercises.
    pub pr_sets: i64,
    /// One per exercise trained in the window, by exercise name.
    pub records: Vec<ExerciseRecord>,
    pub computed_at: DateTime<Utc>,
}

/// The 30-day stats cache (`user_stats`).
#[async_trait]
pub trait StatsCache: Send + Sync {
    /// Ids of users whose stats are due for the window `window_start ..= window_end`, ordered, after `after`:
    /// those who never had stats, whose stats' window ended on `stale_through` or earlier, or who have a workout
    /// in the window written since their stats were computed (an id greater than the newest their stats saw),
    /// whenever it started.
    async fn stats_due(
        &self,
        window_start: NaiveDate,
        window_end: NaiveDate,
        stale_through: NaiveDate,
        after: i64,
        limit: u32,
    ) -> Result<Vec<i64>>;
    /// Computes the stats of `users` over `window_start ..= window_end` in one statement and counts the users
    /// written into `run` of `task` in the same transaction. A user whose stats are for this window or a later
    /// one already is left as is (a redelivery writes and counts nothing); unknown users are passed over.
    /// Returns how many users' stats it wrote.
    async fn refresh_stats(
        &self,
        users: &[i64],
        window_start: NaiveDate,
        window_end: NaiveDate,
        task: &str,
        run: RunPart,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// The cached stats of those of `users` that have some.
    async fn stats(&self, users: &[i64]) -> Result<Vec<UserStats>>;
}
