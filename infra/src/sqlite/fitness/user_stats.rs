//! The 30-day stats cache's SQL on SQLite, as on PostgreSQL: who is due, and a chunk of users' stats in one
//! upsert.

use shared::ports::{StatsCache, UserStats};

use super::*;
use crate::store::user_stats::StatsRow;

/// A chunk's stats in one upsert: `?1` the users (a JSON array), `?2`..`?3` the window, `?4` now. As on
/// PostgreSQL but for the best set of an exercise (its first by weight, then reps), found by two GROUP BYs rather
/// than a window: the most reps at each weight, then the heaviest weight, whose `reps` SQLite takes from the row
/// `max()` chose (one row per weight: no tie). 15 ms a chunk of the simulation's year rather than 19 ms. The sets
/// are read through the window's workouts (CROSS JOIN fixes that order): SQLite otherwise scans every set ever
/// logged against a Bloom filter of them (a year of the simulation's sets: 63 ms a chunk of 300 users, 53 ms so).
/// The window's workouts are read user by user from the chunk (CROSS JOIN again): the window is the newest days,
/// past the histogram of the last analysis, so SQLite took it to be nearly empty, read it by date and scanned the
/// chunk for each workout (104–160 ms a chunk of the year's 300 users, against 30 ms).
const REFRESH: &str = "WITH chunk AS (SELECT u.id AS user_id FROM users u JOIN json_each(?1) j ON u.id = j.value),
     trained AS MATERIALIZED (
         SELECT w.id, w.user_id, w.duration_minutes
         FROM chunk c CROSS JOIN workouts w ON w.user_id = c.user_id AND w.local_date BETWEEN ?2 AND ?3),
     days AS (
         SELECT user_id, count(*) AS workouts, sum(duration_minutes) AS minutes, max(id) AS last_workout_id
         FROM trained GROUP BY user_id),
     by_weight AS (
         SELECT t.user_id, s.exercise_id, s.weight_kg, max(s.reps) AS reps, sum(s.personal_record) AS pr_sets,
                sum(s.weight_kg * s.reps) AS volume_kg
         FROM trained t CROSS JOIN workout_sets s ON s.workout_id = t.id
         GROUP BY t.user_id, s.exercise_id, s.weight_kg),
     per_exercise AS (
         SELECT user_id, exercise_id, max(weight_kg) AS best_weight_kg, reps AS best_reps,
                sum(pr_sets) AS pr_sets, sum(volume_kg) AS volume_kg
         FROM by_weight GROUP BY user_id, exercise_id),
     lifted AS (
         SELECT p.user_id, sum(p.volume_kg) AS volume_kg, sum(p.pr_sets) AS pr_sets,
                json_group_array(json_object('exercise_id', p.exercise_id, 'exercise', e.name,
                                             'best_weight_kg', p.best_weight_kg, 'best_reps', p.best_reps,
                                             'pr_sets', p.pr_sets)
                                 ORDER BY e.name, e.id) AS records
         FROM per_exercise p JOIN exercises e ON e.id = p.exercise_id
         GROUP BY p.user_id)
     INSERT INTO user_stats (user_id, window_start, window_end, workouts, workouts_per_week, minutes,
                             volume_kg, pr_sets, records, computed_at, last_workout_id)
     SELECT c.user_id, ?2, ?3, coalesce(d.workouts, 0),
            coalesce(d.workouts, 0) * 7.0 / (julianday(?3) - julianday(?2) + 1), coalesce(d.minutes, 0),
            coalesce(l.volume_kg, 0.0), coalesce(l.pr_sets, 0), coalesce(l.records, '[]'), ?4, d.last_workout_id
     FROM chunk c
     LEFT JOIN days d ON d.user_id = c.user_id
     LEFT JOIN lifted l ON l.user_id = c.user_id
     WHERE true
     ON CONFLICT (user_id) DO UPDATE SET
         window_start = excluded.window_start, window_end = excluded.window_end,
         workouts = excluded.workouts, workouts_per_week = excluded.workouts_per_week,
         minutes = excluded.minutes, volume_kg = excluded.volume_kg, pr_sets = excluded.pr_sets,
         records = excluded.records, computed_at = excluded.computed_at, last_workout_id = excluded.last_workout_id
     WHERE user_stats.window_end < excluded.window_end";

#[async_trait]
impl StatsCache for SqliteStore {
    async fn stats_due(
        &self,
        window_start: NaiveDate,
        window_end: NaiveDate,
        stale_through: NaiveDate,
        after: i64,
        limit: u32,
    ) -> Result<Vec<i64>> {
        // A workout written since the stats, in the window: the user's range of the window in the index of their
        // days, which holds the ids (the rowid).
        sqlx::query_scalar(
            "SELECT u.id FROM users u
             LEFT JOIN user_stats s ON s.user_id = u.id
             WHERE u.id > ?4
               AND (s.user_id IS NULL
                    OR s.window_end <= ?3
                    OR (s.window_end < ?2
                        AND EXISTS (SELECT 1 FROM workouts w
                                    WHERE w.user_id = u.id AND w.local_date BETWEEN ?1 AND ?2
                                      AND w.id > coalesce(s.last_workout_id, 0))))
             ORDER BY u.id
             LIMIT ?5",
        )
        .bind(window_start)
        .bind(window_end)
        .bind(stale_through)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.db)
        .await
        .map_err(job)
    }

    async fn refresh_stats(
        &self,
        users: &[i64],
        window_start: NaiveDate,
        window_end: NaiveDate,
        task: &str,
        run: RunPart,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        if users.is_empty() {
            return Ok(0);
        }
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        let written = sqlx::query(REFRESH)
            .bind(json!(users).to_string())
            .bind(window_start)
            .bind(window_end)
            .bind(stamp(now))
            .execute(&mut *tx)
            .await
            .map_err(job)?
            .rows_affected();
        crate::sqlite::runs::count_in_run(&mut tx, task, run, written as i64, 0).await?;
        tx.commit().await.map_err(job)?;
        Ok(written)
    }

    async fn stats(&self, users: &[i64]) -> Result<Vec<UserStats>> {
        let rows: Vec<StatsRow> = sqlx::query_as(
            "SELECT s.user_id, s.window_start, s.window_end, s.workouts, s.workouts_per_week, s.minutes,
                    s.volume_kg, s.pr_sets, s.records, s.computed_at
             FROM user_stats s JOIN json_each(?1) j ON s.user_id = j.value
             ORDER BY s.user_id",
        )
        .bind(json!(users).to_string())
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        rows.into_iter().map(UserStats::try_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::sqlite::tests::plan;

    #[tokio::test]
    async fn the_sets_are_read_through_the_windows_workouts() {
        // The statistics of the simulation's year (300 users), which made SQLite scan every set.
        let year = [
            ("workouts", "workouts_local_date", "51837 142"),
            ("workouts", "workouts_user_day", "51837 180 1"),
            ("workout_sets", "workout_sets_workout", "138688 5"),
            ("users", "users_time_zone_id", "300 28 1"),
        ];
        let args = ["[1]", "2026-06-01", "2026-06-30", "2026-07-01T00:00:00.000000Z"];
        let steps = plan(super::REFRESH, &args, &year).await;
        assert!(steps.iter().any(|s| s.starts_with("SEARCH s USING COVERING INDEX workout_sets_workout")), "{steps:?}");
        assert!(!steps.iter().any(|s| s.starts_with("SCAN s")), "{steps:?}");
    }

    #[tokio::test]
    async fn the_window_is_read_user_by_user_when_it_is_newer_than_the_statistics() {
        // Statistics gathered when the workouts reached March; the window is June's. The histogram of
        // `workouts_local_date` holds no June, so SQLite took the window to be nearly empty, read it by date and
        // scanned the chunk's JSON array for each of its workouts. In a simulated year, whose workouts are written
        // as they end: 104–160 ms a chunk of 300 users rather than 30 ms.
        let data = "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
                    INSERT INTO users (id, name, email, time_zone) SELECT i, 'Ana', 'user' || i || '@example.com', 'UTC'
                    FROM n;
                    WITH RECURSIVE d (day) AS (SELECT '2026-01-01' UNION ALL
                                               SELECT date(day, '+1 day') FROM d WHERE day < '2026-03-31')
                    INSERT INTO workouts (user_id, name, started_at, local_date, duration_minutes)
                    SELECT u.id, 'Run', d.day || 'T12:00:00.000000Z', d.day, 30 FROM users u, d;";
        let users = format!("[{}]", (1..=300).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        let args = [users.as_str(), "2026-06-01", "2026-06-30", "2026-07-01T00:00:00.000000Z"];
        let steps = crate::sqlite::tests::plan_over(super::REFRESH, &args, data).await;
        let window = steps.iter().position(|s| s.starts_with("SEARCH w USING INDEX workouts_user_day"));
        let chunk = steps.iter().position(|s| s.starts_with("SCAN j VIRTUAL TABLE"));
        assert!(matches!((chunk, window), (Some(c), Some(w)) if c < w), "{steps:?}");
    }
}
