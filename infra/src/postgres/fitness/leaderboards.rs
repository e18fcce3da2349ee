//! The leaderboards' SQL on PostgreSQL: each board's entries in one INSERT … SELECT (kept and switched by
//! `boards.rs`), and the challenges they rank. Every board orders its entries by score, most first, then by user
//! id: `rank()` gives equal scores the same rank and skips after them (1, 1, 3), `row_number()` a unique
//! position in that order.

use shared::ports::{BoardSpec, ChallengeDates, Challenges};

use super::*;

/// The entries statement of a leaderboard: `$1` the version, then the parameters `store::boards::args` gives.
pub(super) fn entries_sql(spec: &BoardSpec) -> &'static str {
    match spec {
        // $2 Monday, $3 Sunday. Rounded to 0.01 kg so that equal volumes compare equal however they were summed.
        BoardSpec::WeekVolume { .. } => {
            "INSERT INTO board_entries (version, position, rank, subject_id, score)
             SELECT $1, row_number() OVER (ORDER BY score DESC, user_id), rank() OVER (ORDER BY score DESC),
                    user_id, score
             FROM (SELECT w.user_id, round(sum(s.weight_kg * s.reps)::numeric, 2)::float8 AS score
                   FROM workouts w JOIN workout_sets s ON s.workout_id = w.id
                   WHERE w.local_date BETWEEN $2 AND $3
                   GROUP BY w.user_id) week
             WHERE score > 0"
        }
        // $2 Monday, $3 Sunday.
        BoardSpec::WeekWorkouts { .. } => {
            "INSERT INTO board_entries (version, position, rank, subject_id, score)
             SELECT $1, row_number() OVER (ORDER BY workouts DESC, user_id), rank() OVER (ORDER BY workouts DESC),
                    user_id, workouts
             FROM (SELECT user_id, count(*) AS workouts FROM workouts
                   WHERE local_date BETWEEN $2 AND $3
                   GROUP BY user_id) week"
        }
        // $2 the slot's day. The users whose latest active day is within a day of it; each streak runs back to
        // its first day, the latest active day whose day before was not: an index walk per user that stops
        // there, rather than a pass over everyone's history.
        BoardSpec::Streak { .. } => concat!(
            "INSERT INTO board_entries (version, position, rank, subject_id, score)
             SELECT $1, row_number() OVER (ORDER BY days DESC, user_id), rank() OVER (ORDER BY days DESC),
                    user_id, days
             FROM (SELECT l.user_id, l.last_day - ",
            streak_start!("l.user_id", "l.last_day"),
            " + 1 AS days
                   FROM (SELECT user_id, max(local_date) AS last_day FROM workouts
                         WHERE local_date BETWEEN $2::date - 1 AND $2::date + 1
                         GROUP BY user_id) l) streaks"
        ),
        // $2 the challenge, $3 its first day, $4 its last.
        BoardSpec::Challenge { .. } => {
            "INSERT INTO board_entries (version, position, rank, subject_id, score)
             SELECT $1, row_number() OVER (ORDER BY minutes DESC, user_id), rank() OVER (ORDER BY minutes DESC),
                    user_id, minutes
             FROM (SELECT p.user_id, coalesce(sum(w.duration_minutes), 0) AS minutes
                   FROM challenge_participants p
                   LEFT JOIN workouts w ON w.user_id = p.user_id AND w.local_date BETWEEN $3 AND $4
                   WHERE p.challenge_id = $2
                   GROUP BY p.user_id) standings"
        }
        BoardSpec::TrendingWorkouts { .. } | BoardSpec::TrendingExercises { .. } => {
            unreachable!("trending boards are trending.rs's")
        }
    }
}

#[async_trait]
impl Challenges for PgStore {
    async fn active_challenges(&self, day: NaiveDate, after: i64, limit: u32) -> Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM challenges WHERE starts_on <= $1 AND ends_on >= $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(day)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(job)
    }

    async fn challenge(&self, id: i64) -> Result<Option<ChallengeDates>> {
        let row: Option<(i64, String, NaiveDate, NaiveDate)> =
            sqlx::query_as("SELECT id, title, starts_on, ends_on FROM challenges WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(job)?;
        Ok(row.map(|(id, title, starts_on, ends_on)| ChallengeDates { id, title, starts_on, ends_on }))
    }
}
