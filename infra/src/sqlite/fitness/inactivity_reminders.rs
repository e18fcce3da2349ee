//! The inactivity reminders' SQL on SQLite: who among some users has not trained for a number of days.

use shared::ports::{Inactive, InactivityReminders};

use super::*;
use crate::store::inactivity_reminders;

#[async_trait]
impl InactivityReminders for SqliteStore {
    async fn inactive(&self, users: &[i64], today: NaiveDate, days: u32) -> Result<Vec<Inactive>> {
        // Each user's last workout is the end of their range of the `workouts_user_day` index.
        let rows: Vec<(i64, Option<NaiveDate>, NaiveDate)> = sqlx::query_as(
            "SELECT id, last, signed_up FROM (
                 SELECT u.id, (SELECT max(w.local_date) FROM workouts w WHERE w.user_id = u.id) AS last,
                        date(u.created_at) AS signed_up
                 FROM users u WHERE u.id IN (SELECT value FROM json_each(?1)))
             WHERE coalesce(last, signed_up) <= ?2
             ORDER BY id",
        )
        .bind(json!(users).to_string())
        .bind(inactivity_reminders::latest_active(today, days))
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        Ok(rows.into_iter().map(inactivity_reminders::inactive).collect())
    }
}
