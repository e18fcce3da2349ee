//! The weekly report's SQL on SQLite: each week's active days over its eight-week chart, and its records.

use shared::ports::{WeekActivity, WeeklyReports};

use super::*;
use crate::store::weekly_report::{self, DayRow, RecordRow};

/// The (user, Monday) pairs of a `weeks` call with their chart's first day and the day after the week, as the
/// `due` relation both queries start from. Each user's rows are one range of the `workouts_user_day` index.
const DUE: &str = "WITH due (user_id, monday, first, next) AS (
    SELECT DISTINCT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                    json_extract(value, '$[3]')
    FROM json_each(?1))";

#[async_trait]
impl WeeklyReports for SqliteStore {
    async fn weeks(&self, weeks: &[(i64, NaiveDate)]) -> Result<Vec<WeekActivity>> {
        if weeks.is_empty() {
            return Ok(vec![]);
        }
        let due = json!(weeks
            .iter()
            .map(|(user, monday)| {
                let (first, next) = weekly_report::window(*monday);
                json!([user, monday.to_string(), first.to_string(), next.to_string()])
            })
            .collect::<Vec<_>>())
        .to_string();
        // Volume only for the report's own week: CASE keeps the sets of the seven weeks before unread.
        let days: Vec<DayRow> = sqlx::query_as(&format!(
            "{DUE} SELECT due.user_id, due.monday, w.local_date, count(*), sum(w.duration_minutes), sum(w.calories),
                   coalesce(sum(CASE WHEN w.local_date >= due.monday THEN
                       (SELECT sum(s.weight_kg * s.reps) FROM workout_sets s WHERE s.workout_id = w.id) END), 0.0)
             FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date >= due.first
                                     AND w.local_date < due.next
             GROUP BY due.user_id, due.monday, w.local_date"
        ))
        .bind(&due)
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        let records: Vec<RecordRow> = sqlx::query_as(&format!(
            "{DUE} SELECT due.user_id, due.monday, e.name, s.weight_kg, s.reps
             FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date >= due.monday
                                     AND w.local_date < due.next
             JOIN workout_sets s ON s.workout_id = w.id AND s.personal_record
             JOIN exercises e ON e.id = s.exercise_id
             ORDER BY due.user_id, due.monday, w.local_date, w.started_at, s.id"
        ))
        .bind(&due)
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        Ok(weekly_report::assemble(days, records))
    }
}
