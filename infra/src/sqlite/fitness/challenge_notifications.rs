//! The challenge notifications' SQL on SQLite: who joined a challenge that starts or ends on a day.

use shared::ports::{ChallengeNotice, ChallengeNotices};

use super::*;
use crate::store::challenge_notifications::{self, ParticipationRow};

#[async_trait]
impl ChallengeNotices for SqliteStore {
    async fn participants_due(
        &self,
        zones: &[String],
        tomorrow: NaiveDate,
        after_user: i64,
        limit: u32,
    ) -> Result<Vec<i64>> {
        // From the day's few challenges to their participants, rather than through every user of the zones.
        sqlx::query_scalar(
            "SELECT DISTINCT p.user_id
             FROM challenges c
             JOIN challenge_participants p ON p.challenge_id = c.id AND p.user_id > ?3
             JOIN users u ON u.id = p.user_id AND u.time_zone IN (SELECT value FROM json_each(?1))
             WHERE c.starts_on = ?2 OR c.ends_on = ?2
             ORDER BY p.user_id LIMIT ?4",
        )
        .bind(json!(zones).to_string())
        .bind(tomorrow)
        .bind(after_user)
        .bind(limit)
        .fetch_all(&self.db)
        .await
        .map_err(job)
    }

    async fn notices(&self, users: &[i64], tomorrow: NaiveDate) -> Result<Vec<ChallengeNotice>> {
        let rows: Vec<ParticipationRow> = sqlx::query_as(
            "SELECT p.user_id, c.id, c.title, c.starts_on, c.ends_on
             FROM challenge_participants p JOIN challenges c ON c.id = p.challenge_id
             WHERE p.user_id IN (SELECT value FROM json_each(?1)) AND (c.starts_on = ?2 OR c.ends_on = ?2)
             ORDER BY p.user_id, c.id",
        )
        .bind(json!(users).to_string())
        .bind(tomorrow)
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        Ok(challenge_notifications::notices(rows, tomorrow))
    }
}
