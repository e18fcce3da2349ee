//! The cleanups on SQLite (the states are told in `shared::tasks::maintenance::cleanup`): ranges cut in one
//! statement, and batches that pick, delete re-checked and count in one short write transaction (`BEGIN
//! IMMEDIATE`: the app's writers wait for it, as SQLite's writers take turns anyway). And the app's side of the
//! swept tables, for seeding and counting.

use super::*;
use shared::ports::{Batch, MaintenanceWriter, NewCart, NewRow, Pick, Range, Sweep, Sweeper, Swept};

use crate::store::sweeps;

#[async_trait]
impl Sweeper for SqliteStore {
    async fn ranges(&self, sweep: Sweep, cutoff: DateTime<Utc>, max_rows_per_range: u32) -> Result<Vec<Range>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(&sweeps::ranges(sweep, "?1", "?2"))
            .bind(stamp(cutoff))
            .bind(i64::from(max_rows_per_range.max(1)))
            .fetch_all(&self.db)
            .await
            .map_err(job)?;
        Ok(rows.into_iter().map(|(lo, hi, candidates)| Range { lo, hi, candidates: candidates as u64 }).collect())
    }

    async fn sweep_batch(&self, pick: &Pick, task: &str, run: RunPart) -> Result<Batch> {
        let Pick { sweep, cutoff, after, hi, limit } = *pick;
        let table = sweeps::table(sweep.table()).name;
        let cutoff = stamp(cutoff);
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        let picked: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT t.id FROM {table} t WHERE t.id > ?1 AND t.id <= ?2 AND {} ORDER BY t.id LIMIT ?4",
            sweeps::due(sweep, "?3")
        ))
        .bind(after)
        .bind(hi)
        .bind(&cutoff)
        .bind(i64::from(limit.max(1)))
        .fetch_all(&mut *tx)
        .await
        .map_err(job)?;
        // Checked again in the delete itself, as on PostgreSQL; the items of a cart go by ON DELETE CASCADE
        // (the connection turns foreign keys on) and are not counted.
        let deleted = sqlx::query(&format!(
            "DELETE FROM {table} AS t WHERE t.id IN (SELECT value FROM json_each(?1)) AND {}",
            sweeps::due(sweep, "?2")
        ))
        .bind(json!(picked).to_string())
        .bind(&cutoff)
        .execute(&mut *tx)
        .await
        .map_err(job)?
        .rows_affected();
        let total = super::runs::count_in_run(&mut tx, task, run, deleted as i64, 0).await?;
        tx.commit().await.map_err(job)?;
        Ok(Batch {
            picked: picked.len() as u64,
            deleted,
            last_seen: picked.last().copied(),
            message_deleted_total: total,
        })
    }
}

#[async_trait]
impl MaintenanceWriter for SqliteStore {
    async fn add_carts(&self, carts: &[NewCart]) -> Result<Vec<i64>> {
        let rows: Vec<_> = carts.iter().map(|c| json!([c.user_id, stamp(c.updated_at)])).collect();
        let ids = self
            .insert_in_order(
                "INSERT INTO carts (id, user_id, created_at, updated_at)
                 SELECT ?1 + key, value ->> 0, value ->> 1, value ->> 1 FROM json_each(?2)",
                "carts",
                rows,
            )
            .await?;
        let lines: Vec<_> = carts
            .iter()
            .zip(&ids)
            .flat_map(|(cart, &id)| (1..=cart.items).map(move |product| json!([id, product, stamp(cart.updated_at)])))
            .collect();
        sqlx::query(
            "INSERT INTO cart_items (cart_id, product_id, quantity, added_at)
             SELECT value ->> 0, value ->> 1, 1, value ->> 2 FROM json_each(?1)",
        )
        .bind(json!(lines).to_string())
        .execute(&self.db)
        .await
        .map_err(job)?;
        Ok(ids)
    }

    async fn add_rows(&self, table: Swept, rows: &[NewRow]) -> Result<Vec<i64>> {
        let sweeps::Table { name, age, owner, text } = sweeps::table(table);
        let Some((text, prefix)) = text else {
            return Err(shared::Error::permanent(format!("{name}: rows of it are added with add_carts")));
        };
        let rows: Vec<_> = rows.iter().map(|r| json!([r.owner, stamp(r.at)])).collect();
        self.insert_in_order(
            &format!(
                "INSERT INTO {name} (id, {owner}, {age}, {text})
                 SELECT ?1 + key, value ->> 0, value ->> 1, '{prefix}' || (?1 + key) FROM json_each(?2)"
            ),
            name,
            rows,
        )
        .await
    }

    async fn add_cart_item(&self, cart: i64, at: DateTime<Utc>) -> Result<()> {
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(job)?;
        sqlx::query(
            "INSERT INTO cart_items (cart_id, product_id, quantity, added_at)
             SELECT ?1, coalesce(max(product_id), 0) + 1, 1, ?2 FROM cart_items WHERE cart_id = ?1",
        )
        .bind(cart)
        .bind(stamp(at))
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        sqlx::query("UPDATE carts SET updated_at = ?2 WHERE id = ?1")
            .bind(cart)
            .bind(stamp(at))
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        tx.commit().await.map_err(job)
    }

    async fn touch(&self, table: Swept, ids: &[i64], at: DateTime<Utc>) -> Result<()> {
        let sweeps::Table { name, age, .. } = sweeps::table(table);
        sqlx::query(&format!("UPDATE {name} SET {age} = ?2 WHERE id IN (SELECT value FROM json_each(?1))"))
            .bind(json!(ids).to_string())
            .bind(stamp(at))
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn ids(&self, table: Swept) -> Result<Vec<i64>> {
        sqlx::query_scalar(&format!("SELECT id FROM {} ORDER BY id", sweeps::table(table).name))
            .fetch_all(&self.db)
            .await
            .map_err(job)
    }

    async fn count(&self, table: Swept) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", sweeps::table(table).name))
            .fetch_one(&self.db)
            .await
            .map_err(job)?;
        Ok(count as u64)
    }
}
