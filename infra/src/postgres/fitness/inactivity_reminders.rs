//! The inactivity reminders' SQL on PostgreSQL: who among some users has not trained for a number of days.

use shared::ports::{Inactive, InactivityReminders};

use super::*;
use crate::store::inactivity_reminders;

#[async_trait]
impl InactivityReminders for PgStore {
    async fn inactive(&self, users: &[i64], today: NaiveDate, days: u32) -> Result<Vec<Inactive>> {
        // Each user's last workout is the end of their range of the `workouts_user_day_covering` index.
        let rows: Vec<(i64, Option<NaiveDate>, NaiveDate)> = sqlx::query_as(
            "SELECT u.id, last.day, (u.created_at AT TIME ZONE 'UTC')::date
             FROM users u
             CROSS JOIN LATERAL (SELECT max(w.local_date) AS day FROM workouts w WHERE w.user_id = u.id) last
             WHERE u.id = ANY($1) AND coalesce(last.day, (u.created_at AT TIME ZONE 'UTC')::date) <= $2
             ORDER BY u.id",
        )
        .bind(users)
        .bind(inactivity_reminders::latest_active(today, days))
        .fetch_all(&self.pool)
        .await
        .map_err(job)?;
        Ok(rows.into_iter().map(inactivity_reminders::inactive).collect())
    }
}
