//! The queue port on the embedded SQLite database, with SQS's semantics: a visibility timeout, a receive count,
//! a fresh receipt per receive, and the redrive of a message to the dead letters once it has been received
//! `max_receive_count` times. Time comes from the `Clock`, so tests and `jobs simulate` can move it.
//!
//! A stale receipt (the message was received again, deleted or dead-lettered since) deletes nothing and
//! succeeds, as SQS documents for DeleteMessage: the ledger keeps the redelivery from acting twice, and a slow
//! worker's clean-up must not fail its batch. Changing the visibility with a stale receipt fails, as
//! ChangeMessageVisibility does.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use shared::ports::{DeadLetter, Queue, Received, MAX_QUEUE_BATCH};
use shared::time::Clock;
use shared::{Error as JobError, Result};
use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;

use crate::error::job;
use crate::sqlite::{later, parse_stamp, stamp, Db};
use crate::sqs::MAX_VISIBILITY;

pub struct EmbeddedQueue {
    db: Db,
    queue: String,
    clock: Arc<dyn Clock>,
    max_receive_count: u32,
}

impl EmbeddedQueue {
    pub fn new(db: Db, queue: &str, clock: Arc<dyn Clock>, max_receive_count: u32) -> Self {
        Self { db, queue: queue.to_owned(), clock, max_receive_count }
    }

    /// When the earliest of the queue's messages is (or was) visible, if it holds any: how far a simulation's
    /// virtual clock may jump, since no receive before then can find anything.
    pub async fn next_visible(&self) -> Result<Option<DateTime<Utc>>> {
        let next: Option<String> = sqlx::query_scalar("SELECT min(visible_at) FROM queue_messages WHERE queue = ?")
            .bind(&self.queue)
            .fetch_one(&self.db)
            .await
            .map_err(job)?;
        next.as_deref().map(parse_stamp).transpose().map_err(job)
    }

    /// Adds a dead letter of this queue, received `receive_count` times; one already there stays as it is.
    async fn bury<'e>(
        &self,
        db: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
        letter: &DeadLetter,
        receive_count: u32,
        at: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT OR IGNORE INTO dead_letters (id, queue, body, reason, receive_count, dead_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&letter.message_id)
        .bind(&self.queue)
        .bind(&letter.body)
        .bind(&letter.reason)
        .bind(receive_count)
        .bind(at)
        .execute(db)
        .await
        .map_err(job)?;
        Ok(())
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn send_batch(&self, bodies: &[String]) -> Result<()> {
        // SQS's limit, so that the embedded queue refuses what SQS would.
        if bodies.len() > MAX_QUEUE_BATCH {
            return Err(JobError::permanent(format!(
                "embedded queue {}: {} messages in one batch, at most {MAX_QUEUE_BATCH}",
                self.queue,
                bodies.len()
            )));
        }
        // One statement, so all or none are sent, in the batch's order (a receive takes the oldest first).
        let messages: Vec<_> = bodies.iter().map(|body| json!([uuid::Uuid::new_v4().to_string(), body])).collect();
        sqlx::query(
            "INSERT INTO queue_messages (id, queue, body, receive_count, visible_at, sent_at)
             SELECT value ->> 0, ?1, value ->> 1, 0, ?2, ?2 FROM json_each(?3) ORDER BY key",
        )
        .bind(&self.queue)
        .bind(stamp(self.clock.now()))
        .bind(json!(messages).to_string())
        .execute(&self.db)
        .await
        .map_err(job)?;
        Ok(())
    }

    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Received>> {
        let now = self.clock.now();
        let (now_text, hidden_until) = (stamp(now), later(now, visibility.min(MAX_VISIBILITY)));
        // Every statement writes, so the transaction holds SQLite's write lock from its first statement on:
        // two receivers never see the same visible message.
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin().await.map_err(job)?;
        // Redrive: a visible message already received max_receive_count times goes to the dead letters
        // instead of out again. Taken from the queue first: a receive that finds none has written nothing more.
        let dead: Vec<(String, String, u32)> = sqlx::query_as(
            "DELETE FROM queue_messages WHERE queue = ?1 AND visible_at <= ?2 AND receive_count >= ?3
             RETURNING id, body, receive_count",
        )
        .bind(&self.queue)
        .bind(&now_text)
        .bind(self.max_receive_count)
        .fetch_all(&mut *tx)
        .await
        .map_err(job)?;
        for (id, body, receive_count) in dead {
            let max = self.max_receive_count;
            let reason = format!("received {receive_count} times without success (maxReceiveCount {max})");
            let letter = DeadLetter { message_id: id, body, reason };
            self.bury(&mut *tx, &letter, receive_count, &now_text).await?;
        }
        let mut rows: Vec<(String, String, String, u32, String, i64)> = sqlx::query_as(
            "UPDATE queue_messages
             SET receive_count = receive_count + 1, receipt = lower(hex(randomblob(16))), visible_at = ?3
             WHERE id IN (SELECT id FROM queue_messages WHERE queue = ?1 AND visible_at <= ?2
                          ORDER BY sent_at, rowid LIMIT ?4)
             RETURNING id, receipt, body, receive_count, sent_at, rowid",
        )
        .bind(&self.queue)
        .bind(&now_text)
        .bind(&hidden_until)
        .bind(max.min(MAX_QUEUE_BATCH as u32))
        .fetch_all(&mut *tx)
        .await
        .map_err(job)?;
        tx.commit().await.map_err(job)?;
        // RETURNING keeps no order: oldest first, as they were picked.
        rows.sort_by(|a, b| (&a.4, a.5).cmp(&(&b.4, b.5)));
        Ok(rows
            .into_iter()
            .map(|(message_id, receipt, body, receive_count, _, _)| Received {
                message_id,
                receipt,
                body,
                receive_count,
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        sqlx::query("DELETE FROM queue_messages WHERE queue = ? AND receipt = ?")
            .bind(&self.queue)
            .bind(receipt)
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn change_visibility(&self, receipt: &str, visibility: Duration) -> Result<()> {
        let changed = sqlx::query("UPDATE queue_messages SET visible_at = ? WHERE queue = ? AND receipt = ?")
            .bind(later(self.clock.now(), visibility.min(MAX_VISIBILITY)))
            .bind(&self.queue)
            .bind(receipt)
            .execute(&self.db)
            .await
            .map_err(job)?;
        if changed.rows_affected() == 0 {
            return Err(JobError::permanent(format!(
                "embedded queue {}: receipt handle {receipt:?} is invalid (the message was received again, \
                 deleted or dead-lettered since)",
                self.queue
            )));
        }
        Ok(())
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<()> {
        let letter =
            DeadLetter { message_id: uuid::Uuid::new_v4().to_string(), body: body.into(), reason: reason.into() };
        self.bury(&self.db, &letter, 0, &stamp(self.clock.now())).await
    }

    async fn peek_dead_letters(&self, max: u32) -> Result<Vec<DeadLetter>> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT id, body, reason FROM dead_letters WHERE queue = ? ORDER BY dead_at, rowid LIMIT ?")
                .bind(&self.queue)
                .bind(max)
                .fetch_all(&self.db)
                .await
                .map_err(job)?;
        Ok(rows.into_iter().map(|(message_id, body, reason)| DeadLetter { message_id, body, reason }).collect())
    }

    async fn redrive(&self) -> Result<u64> {
        let now = stamp(self.clock.now());
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin().await.map_err(job)?;
        let moved = sqlx::query(
            "INSERT INTO queue_messages (id, queue, body, receive_count, visible_at, sent_at)
             SELECT lower(hex(randomblob(16))), queue, body, 0, ?2, ?2 FROM dead_letters WHERE queue = ?1
             ORDER BY dead_at, rowid",
        )
        .bind(&self.queue)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(job)?
        .rows_affected();
        sqlx::query("DELETE FROM dead_letters WHERE queue = ?")
            .bind(&self.queue)
            .execute(&mut *tx)
            .await
            .map_err(job)?;
        tx.commit().await.map_err(job)?;
        Ok(moved)
    }

    async fn depth(&self) -> Result<u64> {
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM queue_messages WHERE queue = ?")
            .bind(&self.queue)
            .fetch_one(&self.db)
            .await
            .map_err(job)?;
        Ok(count as u64)
    }
}
