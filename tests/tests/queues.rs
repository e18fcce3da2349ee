//! The queue contract on every queue adapter: the embedded queue (SQLite, virtual time) and SQS (moto, real
//! time); then what only the embedded queue promises.

use std::{path::PathBuf, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use infra::sqlite::SqliteStore;
use infra::{embedded_queue::EmbeddedQueue, sqs::SqsQueue};
use integration_tests::{
    moto::Moto,
    queue_contract::{receive_all, QueueUnderTest, MAX_RECEIVES, SHORT},
};
use shared::{ports::Queue, time::VirtualClock};

/// A fresh SQLite file with the schema, removed again on drop, and the store's connection to it.
struct TempDb {
    path: PathBuf,
    store: SqliteStore,
}

impl TempDb {
    async fn new() -> Self {
        let path = std::env::temp_dir().join(format!("queues-{}.db", uuid::Uuid::new_v4()));
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        store.migrate().await.unwrap();
        Self { path, store }
    }

    /// Another process's connection to the same file.
    async fn another_process(&self) -> SqliteStore {
        SqliteStore::connect(&format!("sqlite://{}", self.path.display())).await.unwrap()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

struct Embedded {
    queue: EmbeddedQueue,
    clock: Arc<VirtualClock>,
    _db: TempDb,
}

impl Embedded {
    async fn new() -> Self {
        let db = TempDb::new().await;
        let clock = Arc::new(VirtualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap()));
        let queue = EmbeddedQueue::new(db.store.db().clone(), "contract", clock.clone(), MAX_RECEIVES);
        Self { queue, clock, _db: db }
    }
}

#[async_trait]
impl QueueUnderTest for Embedded {
    fn queue(&self) -> &dyn Queue {
        &self.queue
    }
    async fn pass(&self, by: Duration) {
        self.clock.advance(chrono::Duration::from_std(by).unwrap());
    }
}

struct Sqs {
    queue: SqsQueue,
    _moto: Moto,
}

impl Sqs {
    async fn new() -> Self {
        let moto = Moto::start().await;
        let (url, dlq) = moto.create_queue_pair("contract", MAX_RECEIVES, 30).await;
        Self { queue: SqsQueue::new(moto.sqs().await, url, dlq), _moto: moto }
    }
}

#[async_trait]
impl QueueUnderTest for Sqs {
    fn queue(&self) -> &dyn Queue {
        &self.queue
    }
    async fn pass(&self, by: Duration) {
        // SQS counts visibility in whole seconds on its own clock: a little margin.
        tokio::time::sleep(by + Duration::from_millis(250)).await;
    }
}

macro_rules! on_every_queue {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                integration_tests::queue_contract::$scenario(&super::Embedded::new().await).await;
            })*
        }
        mod sqs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                integration_tests::queue_contract::$scenario(&super::Sqs::new().await).await;
            })*
        }
    };
}

on_every_queue!(
    a_batch_of_ten_is_received_whole_once,
    an_in_flight_message_comes_back_after_its_visibility_with_a_new_receipt,
    a_deleted_message_never_comes_back,
    zero_visibility_makes_a_message_visible_at_once,
    a_longer_visibility_keeps_a_message_hidden,
    after_max_receives_a_message_is_redriven_to_the_dead_letters,
    a_dead_lettered_body_keeps_its_reason,
    redrive_moves_the_dead_letters_back_as_new_messages,
    depth_counts_visible_and_in_flight,
    a_batch_of_eleven_is_refused_whole,
);

// What SQS leaves loose and the embedded queue pins down.

/// SQS's standard queues may hand a message out twice (at-least-once; moto does it under load): the delivery
/// ledger absorbs that. The embedded queue promises more, and the tests of the tasks count on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_concurrent_receivers_never_get_the_same_message() {
    integration_tests::queue_contract::concurrent_receivers_never_get_the_same_message(&Embedded::new().await).await;
}

/// Two processes on one database file (a `jobs worker` and a `jobs run`, say): each its own connection, and still
/// no message to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_receivers_in_two_processes_never_get_the_same_message() {
    let t = Embedded::new().await;
    let other = t._db.another_process().await;
    let theirs = EmbeddedQueue::new(other.db().clone(), "contract", t.clock.clone(), MAX_RECEIVES);
    for chunk in 0..3 {
        let bodies: Vec<String> = (0..10).map(|i| format!("race-{chunk}-{i}")).collect();
        t.queue.send_batch(&bodies).await.unwrap();
    }
    let (ours, theirs): (&dyn Queue, &dyn Queue) = (&t.queue, &theirs);
    let (a, b, c, d) = tokio::join!(receive_all(ours), receive_all(theirs), receive_all(ours), receive_all(theirs));
    let all: Vec<String> = [a, b, c, d].concat();
    let distinct: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a message went to two receivers");
    assert_eq!(all.len(), 30);
}

#[tokio::test]
async fn embedded_hands_out_the_oldest_first() {
    let t = Embedded::new().await;
    t.queue.send_batch(&["a".to_owned(), "b".to_owned()]).await.unwrap();
    t.pass(SHORT).await;
    t.queue.send_batch(&["c".to_owned()]).await.unwrap();
    let bodies: Vec<String> = t.queue.receive(10, SHORT).await.unwrap().into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, ["a", "b", "c"]);
}

#[tokio::test]
async fn embedded_a_stale_receipt_deletes_nothing_and_changes_nothing() {
    let t = Embedded::new().await;
    t.queue.send_batch(&["slow".to_owned()]).await.unwrap();
    let first = t.queue.receive(1, SHORT).await.unwrap().remove(0);
    t.pass(SHORT).await;
    let second = t.queue.receive(1, SHORT).await.unwrap().remove(0);
    // The slow first worker finishes late: its delete succeeds but takes nothing from the second.
    t.queue.delete(&first.receipt).await.unwrap();
    assert_eq!(t.queue.depth().await.unwrap(), 1);
    let e = t.queue.change_visibility(&first.receipt, Duration::ZERO).await.unwrap_err();
    assert!(!e.is_retryable());
    assert!(e.to_string().contains(&first.receipt), "{e}");
    t.queue.delete(&second.receipt).await.unwrap();
    assert_eq!(t.queue.depth().await.unwrap(), 0);
    t.queue.delete(&second.receipt).await.unwrap();
}

#[tokio::test]
async fn embedded_redrive_says_why_and_queues_do_not_mix() {
    let t = Embedded::new().await;
    let other = EmbeddedQueue::new(t._db.store.db().clone(), "other", t.clock.clone(), MAX_RECEIVES);
    other.send_batch(&["elsewhere".to_owned()]).await.unwrap();
    t.queue.send_batch(&["poison".to_owned()]).await.unwrap();
    for _ in 0..MAX_RECEIVES {
        assert_eq!(t.queue.receive(10, SHORT).await.unwrap().len(), 1);
        t.pass(SHORT).await;
    }
    assert!(t.queue.receive(10, SHORT).await.unwrap().is_empty());
    let dead = t.queue.peek_dead_letters(10).await.unwrap();
    assert_eq!(
        dead[0].reason,
        format!("received {MAX_RECEIVES} times without success (maxReceiveCount {MAX_RECEIVES})")
    );
    assert_eq!(other.depth().await.unwrap(), 1);
    assert!(other.peek_dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn embedded_visibility_is_capped_at_twelve_hours_as_on_sqs() {
    let t = Embedded::new().await;
    t.queue.send_batch(&["long".to_owned()]).await.unwrap();
    t.queue.receive(1, Duration::from_secs(7 * 24 * 3600)).await.unwrap();
    t.pass(Duration::from_secs(12 * 3600)).await;
    assert_eq!(t.queue.receive(1, SHORT).await.unwrap().len(), 1);
}
