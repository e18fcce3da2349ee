use super::*;

#[async_trait]
impl Contacts for SqliteStore {
    async fn contacts(&self, user_ids: &[i64]) -> Result<Vec<Contact>> {
        // One statement: each user's suppression, devices and choices read beside their row.
        let rows: Vec<contact_rows::ContactRow> = sqlx::query_as(&format!(
            "SELECT u.id, u.name, u.email, u.phone, u.time_zone, u.email_opt_in, {},
                    (SELECT json_group_array(json_array(d.endpoint_arn, d.platform))
                     FROM (SELECT * FROM devices WHERE user_id = u.id AND enabled ORDER BY id) d),
                    (SELECT json_group_array(json_array(p.kind, p.channel, json(CASE WHEN p.allowed THEN 'true'
                                                                                 ELSE 'false' END)))
                     FROM preferences p WHERE p.user_id = u.id)
             FROM users u WHERE u.id IN (SELECT value FROM json_each(?1)) ORDER BY u.id",
            contact_rows::SUPPRESSED
        ))
        .bind(json!(user_ids).to_string())
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        rows.into_iter().map(|row| contact_rows::contact(row).map_err(job)).collect()
    }

    async fn disable_device(&self, endpoint_arn: &str) -> Result<()> {
        sqlx::query("UPDATE devices SET enabled = 0 WHERE endpoint_arn = ?1")
            .bind(endpoint_arn)
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn choose(&self, user_id: i64, choice: Choice) -> Result<()> {
        sqlx::query(
            "INSERT INTO preferences (user_id, kind, channel, allowed) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, kind, channel) DO UPDATE SET allowed = excluded.allowed",
        )
        .bind(user_id)
        .bind(choice.kind.as_str())
        .bind(choice.channel.as_str())
        .bind(choice.allowed)
        .execute(&self.db)
        .await
        .map_err(job)?;
        Ok(())
    }

    async fn add_device(&self, user_id: i64, device: &Device) -> Result<()> {
        // An endpoint is one app install: signed in as someone else, it is theirs now.
        sqlx::query(
            "INSERT INTO devices (user_id, endpoint_arn, platform) VALUES (?1, ?2, ?3)
             ON CONFLICT (endpoint_arn) DO UPDATE
             SET user_id = excluded.user_id, platform = excluded.platform, enabled = 1",
        )
        .bind(user_id)
        .bind(&device.endpoint_arn)
        .bind(&device.platform)
        .execute(&self.db)
        .await
        .map_err(job)?;
        Ok(())
    }
}
