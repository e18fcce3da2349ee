//! The monthly report's SQL on SQLite: the month's standings, built once for everyone, and each user's month.

use shared::ports::{MonthActivity, MonthlyReports};

use super::*;
use crate::store::monthly_report::{self, MonthRow};

#[async_trait]
impl MonthlyReports for SqliteStore {
    async fn build_standings(&self, month: NaiveDate, now: DateTime<Utc>) -> Result<u64> {
        let (first, next) = monthly_report::bounds(month)?;
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin().await.map_err(job)?;
        // The month's marker first: its write lock makes a concurrent caller wait for this transaction, then
        // find the marker.
        let marked = sqlx::query(
            "INSERT INTO standings_months (month, users, built_at) VALUES (?, 0, ?) ON CONFLICT (month) DO NOTHING",
        )
        .bind(first)
        .bind(stamp(now))
        .execute(&mut *tx)
        .await
        .map_err(job)?
        .rows_affected()
            == 1;
        if !marked {
            let users: i64 = sqlx::query_scalar("SELECT users FROM standings_months WHERE month = ?")
                .bind(first)
                .fetch_one(&mut *tx)
                .await
                .map_err(job)?;
            return Ok(users as u64);
        }
        // One pass over the month's workouts. Ranks by minutes, most first, equal minutes sharing a rank; `below`
        // is the rank from the other end, less one: the users with strictly fewer minutes.
        let ranked = sqlx::query(
            "INSERT INTO month_standings (month, user_id, workouts, minutes, rank, below)
             SELECT ?1, user_id, count(*), sum(duration_minutes),
                    rank() OVER (ORDER BY sum(duration_minutes) DESC),
                    rank() OVER (ORDER BY sum(duration_minutes)) - 1
             FROM workouts WHERE local_date >= ?1 AND local_date < ?2
             GROUP BY user_id",
        )
        .bind(first)
        .bind(next)
        .execute(&mut *tx)
        .await
        .map_err(job)?
        .rows_affected();
        sqlx::query("UPDATE standings_months SET users = ?2 WHERE month = ?1")
            .bind(first)
            .bind(ranked as i64)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        tx.commit().await.map_err(job)?;
        Ok(ranked)
    }

    async fn months(&self, months: &[(i64, NaiveDate)]) -> Result<Vec<MonthActivity>> {
        if months.is_empty() {
            return Ok(vec![]);
        }
        let due = months
            .iter()
            .map(|(user, month)| {
                let (first, next) = monthly_report::bounds(*month)?;
                Ok(json!([user, first.to_string(), next.to_string()]))
            })
            .collect::<Result<Vec<_>>>()?;
        // Minutes per ISO week inside the month, then the month's totals and its best week (the earliest of
        // equals) over those, with the user's standing if the standings have them.
        let rows: Vec<MonthRow> = sqlx::query_as(
            "WITH due (user_id, month, next) AS (
                 SELECT DISTINCT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
                 FROM json_each(?1)),
             weeks AS (
                 SELECT due.user_id, due.month, date(w.local_date, '-6 days', 'weekday 1') AS monday,
                        count(*) AS workouts, sum(w.duration_minutes) AS minutes
                 FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date >= due.month
                                         AND w.local_date < due.next
                 GROUP BY 1, 2, 3),
             months AS (
                 SELECT user_id, month, monday,
                        sum(workouts) OVER per_month AS workouts, sum(minutes) OVER per_month AS minutes,
                        row_number() OVER (per_month ORDER BY minutes DESC, monday) AS nth
                 FROM weeks WINDOW per_month AS (PARTITION BY user_id, month))
             SELECT m.user_id, m.month, m.workouts, m.minutes, m.monday, s.rank, t.users, s.below
             FROM months m
             LEFT JOIN month_standings s ON s.month = m.month AND s.user_id = m.user_id
             LEFT JOIN standings_months t ON t.month = s.month
             WHERE m.nth = 1",
        )
        .bind(json!(due).to_string())
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        rows.into_iter().map(monthly_report::activity).collect()
    }
}
