//! The weekly report's SQL on PostgreSQL: each week's active days over its eight-week chart, and its records.

use shared::ports::{WeekActivity, WeeklyReports};

use super::*;
use crate::store::weekly_report::{self, DayRow, RecordRow};

/// The (user, Monday) pairs of a `weeks` call with their chart's first day and the day after the week, as the
/// `due` relation both queries start from. Each user's rows are one range of the `workouts_user_day_covering` index.
const DUE: &str = "WITH due (user_id, monday, first, next) AS (
    SELECT DISTINCT * FROM UNNEST($1::bigint[], $2::date[], $3::date[], $4::date[]))";

#[async_trait]
impl WeeklyReports for PgStore {
    async fn weeks(&self, weeks: &[(i64, NaiveDate)]) -> Result<Vec<WeekActivity>> {
        if weeks.is_empty() {
            return Ok(vec![]);
        }
        let users: Vec<i64> = weeks.iter().map(|(user, _)| *user).collect();
        let mondays: Vec<NaiveDate> = weeks.iter().map(|(_, monday)| *monday).collect();
        let (firsts, nexts): (Vec<NaiveDate>, Vec<NaiveDate>) =
            mondays.iter().map(|monday| weekly_report::window(*monday)).unzip();
        // Volume only for the report's own week: CASE keeps the sets of the seven weeks before unread.
        let days: Vec<DayRow> = sqlx::query_as(&format!(
            "{DUE} SELECT due.user_id, due.monday, w.local_date, count(*), sum(w.duration_minutes)::bigint,
                   sum(w.calories)::bigint,
                   coalesce(sum(CASE WHEN w.local_date >= due.monday THEN
                       (SELECT sum(s.weight_kg * s.reps) FROM workout_sets s WHERE s.workout_id = w.id) END), 0)
             FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date >= due.first
                                     AND w.local_date < due.next
             GROUP BY due.user_id, due.monday, w.local_date"
        ))
        .bind(&users)
        .bind(&mondays)
        .bind(&firsts)
        .bind(&nexts)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        let records: Vec<RecordRow> = sqlx::query_as(&format!(
            "{DUE} SELECT due.user_id, due.monday, e.name, s.weight_kg, s.reps::bigint
             FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date >= due.monday
                                     AND w.local_date < due.next
             JOIN workout_sets s ON s.workout_id = w.id AND s.personal_record
             JOIN exercises e ON e.id = s.exercise_id
             ORDER BY due.user_id, due.monday, w.local_date, w.started_at, s.id"
        ))
        .bind(&users)
        .bind(&mondays)
        .bind(&firsts)
        .bind(&nexts)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        Ok(weekly_report::assemble(days, records))
    }
}
