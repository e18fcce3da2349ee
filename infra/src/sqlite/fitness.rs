//! The fitness app's data as its tasks read it on SQLite: the daily summary's here, each other task's SQL in
//! the file named after it.

use super::*;

mod boards;
mod challenge_notifications;
mod food_log;
mod inactivity_reminders;
mod leaderboards;
mod monthly_report;
mod trending;
mod user_stats;
mod weekly_report;

#[async_trait]
impl ActivityStore for SqliteStore {
    async fn time_zones(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT DISTINCT time_zone FROM users ORDER BY time_zone")
            .fetch_all(&self.db)
            .await
            .map_err(job)
    }

    async fn users_in_zones(&self, zones: &[String], after: i64, limit: u32) -> Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM users WHERE time_zone IN (SELECT value FROM json_each(?)) AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(json!(zones).to_string())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.db)
        .await
        .map_err(job)
    }

    async fn day_activity(&self, days: &[(i64, NaiveDate)]) -> Result<Vec<DayActivity>> {
        if days.is_empty() {
            return Ok(vec![]);
        }
        let due = json!(days.iter().map(|(id, day)| json!([id, day.to_string()])).collect::<Vec<_>>()).to_string();
        const DUE: &str = "WITH due (user_id, day) AS (
            SELECT DISTINCT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1))";
        let workouts: Vec<activity::WorkoutRow> = sqlx::query_as(&format!(
            "{DUE} SELECT w.user_id, w.local_date, w.name, w.duration_minutes, w.calories,
                   coalesce((SELECT sum(s.weight_kg * s.reps) FROM workout_sets s WHERE s.workout_id = w.id), 0.0)
             FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date = due.day
             ORDER BY w.user_id, w.local_date, w.started_at"
        ))
        .bind(&due)
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        let records: Vec<activity::RecordRow> = sqlx::query_as(&format!(
            "{DUE} SELECT w.user_id, w.local_date, e.name, s.weight_kg, s.reps
             FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date = due.day
             JOIN workout_sets s ON s.workout_id = w.id AND s.personal_record
             JOIN exercises e ON e.id = s.exercise_id
             ORDER BY w.user_id, w.local_date, w.started_at, s.id"
        ))
        .bind(&due)
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        // The streak runs back to where its run of active days began: the latest active day up to the day
        // whose previous day was not active. An index walk per user, stopping at that day.
        let streaks: Vec<(i64, NaiveDate, i64)> = sqlx::query_as(&format!(
            "{DUE} SELECT due.user_id, due.day, CAST(julianday(due.day) - julianday((
                 SELECT w.local_date FROM workouts w
                 WHERE w.user_id = due.user_id AND w.local_date <= due.day
                   AND NOT EXISTS (SELECT 1 FROM workouts p
                                   WHERE p.user_id = w.user_id AND p.local_date = date(w.local_date, '-1 day'))
                 ORDER BY w.local_date DESC LIMIT 1)) AS INTEGER) + 1
             FROM due
             WHERE EXISTS (SELECT 1 FROM workouts a WHERE a.user_id = due.user_id AND a.local_date = due.day)"
        ))
        .bind(&due)
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        Ok(activity::assemble(workouts, records, streaks))
    }
}
