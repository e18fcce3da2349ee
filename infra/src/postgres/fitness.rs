//! The fitness app's data as its tasks read it on PostgreSQL: the daily summary's here, each other task's SQL in
//! the file named after it.

use super::*;

/// The first day of the run of active days that ends on `$day`, a day `$user` trained: down the user's days from
/// `$day`, the first whose day before has no workout. Each step probes the day before by a scalar subquery, one
/// index probe. Written as `NOT EXISTS`, the probe was planned as an anti-join that read each user's whole
/// history (a chunk of 500 users with a year of workouts: 22–33 ms rather than 5 ms; the test is
/// `the_fitness_statements` in tests/tests/stores.rs).
macro_rules! streak_start {
    ($user:literal, $day:literal) => {
        concat!(
            "(SELECT r.local_date FROM workouts r WHERE r.user_id = ",
            $user,
            " AND r.local_date <= ",
            $day,
            " AND (SELECT 1 FROM workouts p WHERE p.user_id = r.user_id AND p.local_date = r.local_date - 1 LIMIT 1)
                   IS NULL
             ORDER BY r.local_date DESC LIMIT 1)"
        )
    };
}

mod boards;
mod challenge_notifications;
mod food_log;
mod inactivity_reminders;
mod leaderboards;
mod monthly_report;
mod trending;
mod user_stats;
mod weekly_report;

pub use user_stats::USER_STATS_REFRESH;

/// `day_activity`'s one statement, `$1` the users and `$2` their days: each workout of the days with its sets'
/// volume and personal records read beside it, and its day's streak, which runs back to where its run of active
/// days began (an index walk per workout, stopping at that day).
pub const DAY_ACTIVITY: &str = concat!(
    "WITH due (user_id, day) AS (SELECT DISTINCT * FROM UNNEST($1::bigint[], $2::date[]))
     SELECT w.user_id, w.local_date, w.name, w.duration_minutes, w.calories, sets.volume, sets.records,
            due.day - ",
    streak_start!("due.user_id", "due.day"),
    " + 1
     FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date = due.day
     CROSS JOIN LATERAL (
         SELECT coalesce(sum(s.weight_kg * s.reps), 0) AS volume,
                coalesce(json_agg(json_build_array(
                             (SELECT e.name FROM exercises e WHERE e.id = s.exercise_id), s.weight_kg, s.reps)
                         ORDER BY s.id) FILTER (WHERE s.personal_record), '[]') AS records
         FROM workout_sets s WHERE s.workout_id = w.id) sets
     ORDER BY w.user_id, w.local_date, w.started_at"
);

#[async_trait]
impl ActivityStore for PgStore {
    async fn time_zones(&self) -> Result<Vec<String>> {
        // A skip scan of the (time_zone, id) index: one probe per zone, where DISTINCT reads every user.
        sqlx::query_scalar(
            "WITH RECURSIVE zones (time_zone) AS (
                 (SELECT time_zone FROM users ORDER BY time_zone LIMIT 1)
                 UNION ALL
                 SELECT (SELECT u.time_zone FROM users u WHERE u.time_zone > zones.time_zone
                         ORDER BY u.time_zone LIMIT 1)
                 FROM zones WHERE zones.time_zone IS NOT NULL)
             SELECT time_zone FROM zones WHERE time_zone IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(job)
    }

    async fn users_in_zones(&self, zones: &[String], after: i64, limit: u32) -> Result<Vec<i64>> {
        // Each zone's next ids from the (time_zone, id) index, merged: `time_zone = ANY(..) ORDER BY id` walks
        // the primary key instead and filters out every other zone's users.
        sqlx::query_scalar(
            "SELECT u.id FROM UNNEST($1::text[]) AS z (time_zone)
             CROSS JOIN LATERAL (SELECT id FROM users WHERE time_zone = z.time_zone AND id > $2
                                 ORDER BY id LIMIT $3) u
             ORDER BY u.id LIMIT $3",
        )
        .bind(zones)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(job)
    }

    async fn day_activity(&self, days: &[(i64, NaiveDate)]) -> Result<Vec<DayActivity>> {
        if days.is_empty() {
            return Ok(vec![]);
        }
        let (users, dates): (Vec<i64>, Vec<NaiveDate>) = days.iter().copied().unzip();
        type Row = (i64, NaiveDate, String, i32, i32, f64, Json<Vec<(String, f64, i64)>>, i32);
        let rows: Vec<Row> =
            sqlx::query_as(DAY_ACTIVITY).bind(&users).bind(&dates).fetch_all(&self.pool).await.map_err(job)?;
        let (mut workouts, mut records, mut streaks) = (vec![], vec![], vec![]);
        for (user, day, name, minutes, calories, volume, Json(sets), streak) in rows {
            records.extend(sets.into_iter().map(|(exercise, weight, reps)| (user, day, exercise, weight, reps)));
            workouts.push((user, day, name, i64::from(minutes), i64::from(calories), volume));
            streaks.push((user, day, i64::from(streak)));
        }
        Ok(activity::assemble(workouts, records, streaks))
    }
}
