//! food-recognition's food log on SQLite.

use super::*;
use shared::ports::{FoodEntry, FoodLog, Recognition};

const COLUMNS: &str = "upload_id, user_id, image_key, name, calories, protein_g, carbs_g, fat_g, confidence, logged_at";

fn entry(row: &sqlx::sqlite::SqliteRow) -> std::result::Result<FoodEntry, sqlx::Error> {
    Ok(FoodEntry {
        upload_id: row.try_get("upload_id")?,
        user_id: row.try_get("user_id")?,
        image_key: row.try_get("image_key")?,
        recognition: Recognition {
            name: row.try_get("name")?,
            calories: row.try_get("calories")?,
            protein_g: row.try_get("protein_g")?,
            carbs_g: row.try_get("carbs_g")?,
            fat_g: row.try_get("fat_g")?,
            confidence: row.try_get("confidence")?,
        },
        logged_at: parse_stamp(row.try_get("logged_at")?)?,
    })
}

#[async_trait]
impl FoodLog for SqliteStore {
    async fn user_exists(&self, user_id: i64) -> Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)")
            .bind(user_id)
            .fetch_one(&self.db)
            .await
            .map_err(job)
    }

    async fn food_entry(&self, upload_id: &str) -> Result<Option<FoodEntry>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM food_entries WHERE upload_id = ?1"))
            .bind(upload_id)
            .fetch_optional(&self.db)
            .await
            .map_err(job)?;
        row.as_ref().map(entry).transpose().map_err(job)
    }

    async fn save_food_entry(&self, new: &FoodEntry, task: &str, run: RunPart) -> Result<FoodEntry> {
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        let r = &new.recognition;
        let saved = sqlx::query(&format!(
            "INSERT INTO food_entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (upload_id) DO NOTHING"
        ))
        .bind(&new.upload_id)
        .bind(new.user_id)
        .bind(&new.image_key)
        .bind(&r.name)
        .bind(r.calories)
        .bind(r.protein_g)
        .bind(r.carbs_g)
        .bind(r.fat_g)
        .bind(r.confidence)
        .bind(stamp(new.logged_at))
        .execute(&mut *tx)
        .await
        .map_err(job)?
        .rows_affected();
        crate::sqlite::runs::count_in_run(&mut tx, task, run, saved as i64, 0).await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM food_entries WHERE upload_id = ?1"))
            .bind(&new.upload_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(job)?;
        tx.commit().await.map_err(job)?;
        entry(&row).map_err(job)
    }

    async fn food_entries(&self, user_id: i64, limit: u32) -> Result<Vec<FoodEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM food_entries WHERE user_id = ?1 ORDER BY logged_at DESC, upload_id LIMIT ?2"
        ))
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(&self.db)
        .await
        .map_err(job)?;
        rows.iter().map(entry).collect::<std::result::Result<_, _>>().map_err(job)
    }
}
