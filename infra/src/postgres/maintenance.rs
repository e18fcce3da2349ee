//! The cleanups on PostgreSQL (the states are told in `shared::tasks::maintenance::cleanup`): ranges cut in one
//! statement, and batches that lock their rows `FOR UPDATE SKIP LOCKED`, delete them re-checked and count
//! them, in one short transaction. And the app's side of the swept tables, for seeding and counting.

use super::{app::SEED_CHUNK, shop::new_ids, *};
use shared::ports::{Batch, MaintenanceWriter, NewCart, NewRow, Pick, Range, Sweep, Sweeper, Swept};

use crate::store::sweeps;

/// The longest a delete waits for a lock: the cascade to a cart's items may meet an item the app holds while
/// it waits for the cart we hold. The batch then fails as retryable, rolled back whole, and the app goes on.
const LOCK_TIMEOUT: &str = "200ms";

#[async_trait]
impl Sweeper for PgStore {
    async fn ranges(&self, sweep: Sweep, cutoff: DateTime<Utc>, max_rows_per_range: u32) -> Result<Vec<Range>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(&sweeps::ranges(sweep, "$1", "$2"))
            .bind(cutoff)
            .bind(i64::from(max_rows_per_range.max(1)))
            .fetch_all(&self.pool)
            .await
            .map_err(job)?;
        Ok(rows.into_iter().map(|(lo, hi, candidates)| Range { lo, hi, candidates: candidates as u64 }).collect())
    }

    async fn sweep_batch(&self, pick: &Pick, task: &str, run: RunPart) -> Result<Batch> {
        let Pick { sweep, cutoff, after, hi, limit } = *pick;
        let table = sweeps::table(sweep.table()).name;
        let due = sweeps::due(sweep, "$3");
        // One statement picks, locks and deletes: a row the app holds is skipped, not waited for, and the
        // delete's own WHERE checks again what the pick saw (a row updated since the statement's snapshot is
        // read anew by the lock, and the delete sees that version).
        let statement = format!(
            "WITH picked AS (
                 SELECT t.id FROM {table} t
                 WHERE t.id > $1 AND t.id <= $2 AND {due}
                 ORDER BY t.id LIMIT $4
                 FOR UPDATE SKIP LOCKED),
             gone AS (
                 DELETE FROM {table} t USING picked p
                 WHERE t.id = p.id AND {due}
                 RETURNING t.id)
             SELECT (SELECT count(*) FROM picked), (SELECT max(id) FROM picked), (SELECT count(*) FROM gone)"
        );
        let mut tx = self.pool.begin().await.map_err(job)?;
        sqlx::query(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")).execute(&mut *tx).await.map_err(job)?;
        let (picked, last_seen, deleted): (i64, Option<i64>, i64) = sqlx::query_as(&statement)
            .bind(after)
            .bind(hi)
            .bind(cutoff)
            .bind(i64::from(limit.max(1)))
            .fetch_one(&mut *tx)
            .await
            .map_err(job)?;
        let total = super::runs::count_in_run(&mut tx, task, run, deleted, 0).await?;
        tx.commit().await.map_err(job)?;
        Ok(Batch { picked: picked as u64, deleted: deleted as u64, last_seen, message_deleted_total: total })
    }
}

#[async_trait]
impl MaintenanceWriter for PgStore {
    async fn add_carts(&self, carts: &[NewCart]) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(carts.len());
        for chunk in carts.chunks(SEED_CHUNK) {
            let chunk_ids = new_ids(&self.pool, "carts", chunk.len()).await?;
            let mut tx = self.pool.begin().await.map_err(job)?;
            sqlx::query(
                "INSERT INTO carts (id, user_id, created_at, updated_at)
                 SELECT c.id, c.user_id, c.at, c.at FROM UNNEST($1::bigint[], $2::bigint[], $3::timestamptz[])
                     AS c (id, user_id, at)",
            )
            .bind(&chunk_ids)
            .bind(chunk.iter().map(|c| c.user_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|c| c.updated_at).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(job)?;
            let lines: Vec<(i64, i64, DateTime<Utc>)> = chunk
                .iter()
                .zip(&chunk_ids)
                .flat_map(|(cart, &id)| (1..=i64::from(cart.items)).map(move |product| (id, product, cart.updated_at)))
                .collect();
            sqlx::query(
                "INSERT INTO cart_items (cart_id, product_id, quantity, added_at)
                 SELECT i.cart_id, i.product_id, 1, i.at FROM UNNEST($1::bigint[], $2::bigint[], $3::timestamptz[])
                     AS i (cart_id, product_id, at)",
            )
            .bind(lines.iter().map(|l| l.0).collect::<Vec<_>>())
            .bind(lines.iter().map(|l| l.1).collect::<Vec<_>>())
            .bind(lines.iter().map(|l| l.2).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(job)?;
            tx.commit().await.map_err(job)?;
            ids.extend(chunk_ids);
        }
        Ok(ids)
    }

    async fn add_rows(&self, table: Swept, rows: &[NewRow]) -> Result<Vec<i64>> {
        let sweeps::Table { name, age, owner, text } = sweeps::table(table);
        let Some((text, prefix)) = text else {
            return Err(shared::Error::permanent(format!("{name}: rows of it are added with add_carts")));
        };
        let mut ids = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(SEED_CHUNK) {
            let chunk_ids = new_ids(&self.pool, name, chunk.len()).await?;
            sqlx::query(&format!(
                "INSERT INTO {name} (id, {owner}, {age}, {text})
                 SELECT r.id, r.owner, r.at, '{prefix}' || r.id
                 FROM UNNEST($1::bigint[], $2::bigint[], $3::timestamptz[]) AS r (id, owner, at)"
            ))
            .bind(&chunk_ids)
            .bind(chunk.iter().map(|r| r.owner).collect::<Vec<_>>())
            .bind(chunk.iter().map(|r| r.at).collect::<Vec<_>>())
            .execute(&self.pool)
            .await
            .map_err(job)?;
            ids.extend(chunk_ids);
        }
        Ok(ids)
    }

    async fn add_cart_item(&self, cart: i64, at: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(job)?;
        sqlx::query(
            "INSERT INTO cart_items (cart_id, product_id, quantity, added_at)
             SELECT $1, coalesce(max(product_id), 0) + 1, 1, $2 FROM cart_items WHERE cart_id = $1",
        )
        .bind(cart)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(job)?;
        sqlx::query("UPDATE carts SET updated_at = $2 WHERE id = $1")
            .bind(cart)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        tx.commit().await.map_err(job)
    }

    async fn touch(&self, table: Swept, ids: &[i64], at: DateTime<Utc>) -> Result<()> {
        let sweeps::Table { name, age, .. } = sweeps::table(table);
        sqlx::query(&format!("UPDATE {name} SET {age} = $2 WHERE id = ANY($1)"))
            .bind(ids)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn ids(&self, table: Swept) -> Result<Vec<i64>> {
        sqlx::query_scalar(&format!("SELECT id FROM {} ORDER BY id", sweeps::table(table).name))
            .fetch_all(&self.pool)
            .await
            .map_err(job)
    }

    async fn count(&self, table: Swept) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", sweeps::table(table).name))
            .fetch_one(&self.pool)
            .await
            .map_err(job)?;
        Ok(count as u64)
    }
}
