//! The monthly report's SQL on PostgreSQL: the month's standings, built once for everyone, and each user's month.

use shared::ports::{MonthActivity, MonthlyReports};

use super::*;
use crate::store::monthly_report::{self, MonthRow};

#[async_trait]
impl MonthlyReports for PgStore {
    async fn build_standings(&self, month: NaiveDate, now: DateTime<Utc>) -> Result<u64> {
        let (first, next) = monthly_report::bounds(month)?;
        let mut tx = self.pool.begin().await.map_err(job)?;
        // The month's marker first: a concurrent caller's insert waits for this transaction, then finds it.
        let marked = sqlx::query(
            "INSERT INTO standings_months (month, users, built_at) VALUES ($1, 0, $2) ON CONFLICT (month) DO NOTHING",
        )
        .bind(first)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(job)?
        .rows_affected()
            == 1;
        if !marked {
            let users: i32 = sqlx::query_scalar("SELECT users FROM standings_months WHERE month = $1")
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
             SELECT $1, user_id, count(*), sum(duration_minutes),
                    rank() OVER (ORDER BY sum(duration_minutes) DESC),
                    rank() OVER (ORDER BY sum(duration_minutes)) - 1
             FROM workouts WHERE local_date >= $1 AND local_date < $2
             GROUP BY user_id",
        )
        .bind(first)
        .bind(next)
        .execute(&mut *tx)
        .await
        .map_err(job)?
        .rows_affected();
        sqlx::query("UPDATE standings_months SET users = $2 WHERE month = $1")
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
        let mut users = Vec::with_capacity(months.len());
        let (mut firsts, mut nexts) = (Vec::with_capacity(months.len()), Vec::with_capacity(months.len()));
        for (user, month) in months {
            let (first, next) = monthly_report::bounds(*month)?;
            users.push(*user);
            firsts.push(first);
            nexts.push(next);
        }
        // Minutes per ISO week inside the month, then the month's totals and its best week (the earliest of
        // equals) over those, with the user's standing if the standings have them.
        let rows: Vec<MonthRow> = sqlx::query_as(
            "WITH due (user_id, month, next) AS (
                 SELECT DISTINCT * FROM UNNEST($1::bigint[], $2::date[], $3::date[])),
             weeks AS (
                 SELECT due.user_id, due.month, w.local_date - (extract(isodow FROM w.local_date)::int - 1) AS monday,
                        count(*) AS workouts, sum(w.duration_minutes) AS minutes
                 FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date >= due.month
                                         AND w.local_date < due.next
                 GROUP BY 1, 2, 3),
             months AS (
                 SELECT user_id, month, monday,
                        sum(workouts) OVER per_month AS workouts, sum(minutes) OVER per_month AS minutes,
                        row_number() OVER (per_month ORDER BY minutes DESC, monday) AS nth
                 FROM weeks WINDOW per_month AS (PARTITION BY user_id, month))
             SELECT m.user_id, m.month, m.workouts::bigint, m.minutes::bigint, m.monday,
                    s.rank::bigint, t.users::bigint, s.below::bigint
             FROM months m
             LEFT JOIN month_standings s ON s.month = m.month AND s.user_id = m.user_id
             LEFT JOIN standings_months t ON t.month = s.month
             WHERE m.nth = 1",
        )
        .bind(&users)
        .bind(&firsts)
        .bind(&nexts)
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        rows.into_iter().map(monthly_report::activity).collect()
    }
}
