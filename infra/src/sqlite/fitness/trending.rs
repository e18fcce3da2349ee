//! Trending's SQL on SQLite, as on PostgreSQL: `?2` is the recent window's last day (recent its 7 days,
//! previous the 7 before), `?3` the fewest recent workouts that put an entry on the board.

use shared::ports::BoardSpec;

/// The entries statement of a trending board: `?1` the version, then the parameters `store::boards::args` gives.
pub(super) fn entries_sql(spec: &BoardSpec) -> &'static str {
    match spec {
        BoardSpec::TrendingWorkouts { .. } => {
            "INSERT INTO board_entries (version, position, rank, label, score, recent, previous)
             SELECT ?1, row_number() OVER (ORDER BY score DESC, recent DESC, name),
                    rank() OVER (ORDER BY score DESC),
                    name, score, recent, previous
             FROM (SELECT name, recent, previous, (recent + 1) * 1.0 / (previous + 1) AS score
                   FROM (SELECT name, count(*) FILTER (WHERE local_date > date(?2, '-7 days')) AS recent,
                                count(*) FILTER (WHERE local_date <= date(?2, '-7 days')) AS previous
                         FROM workouts
                         WHERE local_date BETWEEN date(?2, '-13 days') AND ?2
                         GROUP BY name) counts) scored
             WHERE recent >= ?3"
        }
        // A workout counts once for an exercise however many of its sets were of it.
        BoardSpec::TrendingExercises { .. } => {
            "INSERT INTO board_entries (version, position, rank, subject_id, label, score, recent, previous)
             SELECT ?1, row_number() OVER (ORDER BY score DESC, recent DESC, name),
                    rank() OVER (ORDER BY score DESC),
                    id, name, score, recent, previous
             FROM (SELECT e.id, e.name, c.recent, c.previous, (c.recent + 1) * 1.0 / (c.previous + 1) AS score
                   FROM (SELECT exercise_id, count(*) FILTER (WHERE local_date > date(?2, '-7 days')) AS recent,
                                count(*) FILTER (WHERE local_date <= date(?2, '-7 days')) AS previous
                         FROM (SELECT DISTINCT s.workout_id, s.exercise_id, w.local_date
                               FROM workouts w JOIN workout_sets s ON s.workout_id = w.id
                               WHERE w.local_date BETWEEN date(?2, '-13 days') AND ?2) included
                         GROUP BY exercise_id) c
                   JOIN exercises e ON e.id = c.exercise_id) scored
             WHERE recent >= ?3"
        }
        _ => unreachable!("the leaderboards' boards are leaderboards.rs's"),
    }
}
