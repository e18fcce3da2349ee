//! The 30-day stats cache's SQL on PostgreSQL: who is due, and a chunk of users' stats in one upsert.

use shared::ports::{StatsCache, UserStats};

use super::*;
use crate::store::user_stats::StatsRow;

/// `refresh_stats`' one statement, `$1` the chunk's users, `$2` and `$3` the window's first and last days, `$4`
/// the time it is computed: the chunk's workouts in the window once; their days, and their sets per exercise: the
/// best set (the heaviest, then the most reps: the greatest [weight, reps] pair), the personal-record sets and the
/// volume. A row is written only over one of an earlier window: a redelivery writes, and counts, nothing.
pub const USER_STATS_REFRESH: &str = r#"WITH chunk AS (SELECT id AS user_id FROM users WHERE id = ANY($1)),
     trained AS MATERIALIZED (
         SELECT w.id, w.user_id, w.duration_minutes
         FROM chunk c JOIN workouts w ON w.user_id = c.user_id AND w.local_date BETWEEN $2 AND $3),
     days AS (
         SELECT user_id, count(*) AS workouts, sum(duration_minutes) AS minutes, max(id) AS last_workout_id
         FROM trained GROUP BY user_id),
     per_exercise AS (
         SELECT t.user_id, s.exercise_id, max(ARRAY[s.weight_kg, s.reps]) AS best,
                count(*) FILTER (WHERE s.personal_record) AS pr_sets,
                sum(s.weight_kg * s.reps) AS volume_kg
         FROM trained t JOIN workout_sets s ON s.workout_id = t.id
         GROUP BY t.user_id, s.exercise_id),
     lifted AS (
         SELECT p.user_id, sum(p.volume_kg) AS volume_kg, sum(p.pr_sets) AS pr_sets,
                jsonb_agg(jsonb_build_object('exercise_id', p.exercise_id, 'exercise', e.name,
                                             'best_weight_kg', p.best[1], 'best_reps', p.best[2]::int,
                                             'pr_sets', p.pr_sets)
                          ORDER BY e.name COLLATE "C", e.id) AS records
         FROM per_exercise p JOIN exercises e ON e.id = p.exercise_id
         GROUP BY p.user_id)
     INSERT INTO user_stats (user_id, window_start, window_end, workouts, workouts_per_week, minutes,
                             volume_kg, pr_sets, records, computed_at, last_workout_id)
     SELECT c.user_id, $2, $3, coalesce(d.workouts, 0),
            coalesce(d.workouts, 0) * 7.0 / ($3::date - $2::date + 1), coalesce(d.minutes, 0),
            coalesce(l.volume_kg, 0), coalesce(l.pr_sets, 0), coalesce(l.records, '[]'), $4, d.last_workout_id
     FROM chunk c
     LEFT JOIN days d ON d.user_id = c.user_id
     LEFT JOIN lifted l ON l.user_id = c.user_id
     ON CONFLICT (user_id) DO UPDATE SET
         window_start = excluded.window_start, window_end = excluded.window_end,
         workouts = excluded.workouts, workouts_per_week = excluded.workouts_per_week,
         minutes = excluded.minutes, volume_kg = excluded.volume_kg, pr_sets = excluded.pr_sets,
         records = excluded.records, computed_at = excluded.computed_at, last_workout_id = excluded.last_workout_id
     WHERE user_stats.window_end < excluded.window_end"#;

#[async_trait]
impl StatsCache for PgStore {
    async fn stats_due(
        &self,
        window_start: NaiveDate,
        window_end: NaiveDate,
        stale_through: NaiveDate,
        after: i64,
        limit: u32,
    ) -> Result<Vec<i64>> {
        // A workout written since the stats, in the window: the user's range of the window in the index of their
        // days, read from the index alone (it holds the ids).
        sqlx::query_scalar(
            "SELECT u.id FROM users u
             LEFT JOIN user_stats s ON s.user_id = u.id
             WHERE u.id > $4
               AND (s.user_id IS NULL
                    OR s.window_end <= $3
                    OR (s.window_end < $2
                        AND EXISTS (SELECT 1 FROM workouts w
                                    WHERE w.user_id = u.id AND w.local_date BETWEEN $1 AND $2
                                      AND w.id > coalesce(s.last_workout_id, 0))))
             ORDER BY u.id
             LIMIT $5",
        )
        .bind(window_start)
        .bind(window_end)
        .bind(stale_through)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(job)?;
        // A chunk's sets (some 80,000 for 2,000 users) are sorted and grouped in memory rather than on disk. And
        // the generic plan, always: it walks each user's workouts and each workout's sets by index, right for a
        // chunk of any size. The custom plans PostgreSQL tries on a connection's first five executions estimate
        // from the ids and merge-join the whole workout_sets index instead: 212 ms a chunk of 2,000, not 126.
        sqlx::query(
            "SELECT set_config('work_mem', '64MB', true), set_config('plan_cache_mode', 'force_generic_plan', true)",
        )
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        let written = sqlx::query(USER_STATS_REFRESH)
            .bind(users)
            .bind(window_start)
            .bind(window_end)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(job)?
            .rows_affected();
        crate::postgres::runs::count_in_run(&mut tx, task, run, written as i64, 0).await?;
        tx.commit().await.map_err(job)?;
        Ok(written)
    }

    async fn stats(&self, users: &[i64]) -> Result<Vec<UserStats>> {
        let rows: Vec<StatsRow> = sqlx::query_as(
            "SELECT user_id, window_start, window_end, workouts::bigint AS workouts, workouts_per_week,
                    minutes, volume_kg, pr_sets::bigint AS pr_sets, records::text AS records, computed_at
             FROM user_stats WHERE user_id = ANY($1) ORDER BY user_id",
        )
        .bind(users)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        rows.into_iter().map(UserStats::try_from).collect()
    }
}
