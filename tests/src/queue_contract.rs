//! The queue port's contract: what every `Queue` adapter must do, as scenarios any adapter's test instantiates.
//! SQS orders nothing, so no scenario asserts an order.

use async_trait::async_trait;
use shared::ports::{Queue, Received};
use std::collections::HashSet;
use std::time::Duration;

/// The redrive setting every queue under test is made with.
pub const MAX_RECEIVES: u32 = 2;
/// Short enough to wait out on a real queue, long enough for a test's few calls to fit in.
pub const SHORT: Duration = Duration::from_secs(1);
/// Long enough never to run out within a test.
pub const LONG: Duration = Duration::from_secs(60);

/// A queue made with `MAX_RECEIVES`, and a way to let its time pass.
#[async_trait]
pub trait QueueUnderTest: Send + Sync {
    fn queue(&self) -> &dyn Queue;
    /// Lets at least `by` pass for the queue: a virtual clock moves, a real queue is waited for.
    async fn pass(&self, by: Duration);
}

fn bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Receives until `n` messages came or a receive comes back empty (SQS may hand out fewer than asked).
async fn receive_n(queue: &dyn Queue, n: usize, visibility: Duration) -> Vec<Received> {
    let mut all = vec![];
    while all.len() < n {
        let batch = queue.receive(10, visibility).await.unwrap();
        if batch.is_empty() {
            break;
        }
        all.extend(batch);
    }
    all
}

fn body_set(received: &[Received]) -> HashSet<String> {
    received.iter().map(|m| m.body.clone()).collect()
}

pub async fn a_batch_of_ten_is_received_whole_once(t: &dyn QueueUnderTest) {
    let q = t.queue();
    let sent = bodies("ten", 10);
    q.send_batch(&sent).await.unwrap();
    let received = receive_n(q, 10, LONG).await;
    assert_eq!(received.len(), 10, "{received:?}");
    assert_eq!(body_set(&received), sent.iter().cloned().collect());
    assert!(received.iter().all(|m| m.receive_count == 1), "{received:?}");
    assert_eq!(received.iter().map(|m| &m.message_id).collect::<HashSet<_>>().len(), 10);
    assert_eq!(received.iter().map(|m| &m.receipt).collect::<HashSet<_>>().len(), 10);
    assert!(q.receive(10, LONG).await.unwrap().is_empty(), "all ten are in flight");
}

pub async fn an_in_flight_message_comes_back_after_its_visibility_with_a_new_receipt(t: &dyn QueueUnderTest) {
    let q = t.queue();
    q.send_batch(&["again".to_owned()]).await.unwrap();
    let first = q.receive(10, SHORT).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].receive_count, 1);
    assert!(q.receive(10, SHORT).await.unwrap().is_empty(), "hidden while in flight");
    t.pass(SHORT).await;
    let second = q.receive(10, SHORT).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!((&second[0].message_id, &second[0].body), (&first[0].message_id, &first[0].body));
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt, first[0].receipt);
}

pub async fn a_deleted_message_never_comes_back(t: &dyn QueueUnderTest) {
    let q = t.queue();
    q.send_batch(&["done".to_owned()]).await.unwrap();
    let received = q.receive(10, SHORT).await.unwrap();
    q.delete(&received[0].receipt).await.unwrap();
    assert_eq!(q.depth().await.unwrap(), 0);
    t.pass(SHORT).await;
    assert!(q.receive(10, SHORT).await.unwrap().is_empty());
}

pub async fn zero_visibility_makes_a_message_visible_at_once(t: &dyn QueueUnderTest) {
    let q = t.queue();
    q.send_batch(&["retry me".to_owned()]).await.unwrap();
    let received = q.receive(10, LONG).await.unwrap();
    q.change_visibility(&received[0].receipt, Duration::ZERO).await.unwrap();
    let again = q.receive(10, LONG).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((&again[0].message_id, again[0].receive_count), (&received[0].message_id, 2));
}

pub async fn a_longer_visibility_keeps_a_message_hidden(t: &dyn QueueUnderTest) {
    let q = t.queue();
    q.send_batch(&["later".to_owned()]).await.unwrap();
    let received = q.receive(10, SHORT).await.unwrap();
    q.change_visibility(&received[0].receipt, LONG).await.unwrap();
    t.pass(SHORT).await;
    assert!(q.receive(10, SHORT).await.unwrap().is_empty(), "the new visibility holds it back");
    assert_eq!(q.depth().await.unwrap(), 1);
}

pub async fn after_max_receives_a_message_is_redriven_to_the_dead_letters(t: &dyn QueueUnderTest) {
    let q = t.queue();
    q.send_batch(&["poison".to_owned()]).await.unwrap();
    for receive in 1..=MAX_RECEIVES {
        let received = q.receive(10, SHORT).await.unwrap();
        assert_eq!(received.len(), 1, "receive {receive}");
        assert_eq!(received[0].receive_count, receive);
        t.pass(SHORT).await;
    }
    assert!(q.receive(10, SHORT).await.unwrap().is_empty(), "moved instead of handed out again");
    let dead = q.peek_dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].body, "poison");
    assert!(!dead[0].reason.is_empty());
    assert_eq!(q.depth().await.unwrap(), 0);
    assert_eq!(q.peek_dead_letters(10).await.unwrap().len(), 1, "peeking takes nothing");
}

pub async fn a_dead_lettered_body_keeps_its_reason(t: &dyn QueueUnderTest) {
    let q = t.queue();
    q.dead_letter("{not json", "unparseable message: expected value").await.unwrap();
    let dead = q.peek_dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].body.as_str(), dead[0].reason.as_str()), ("{not json", "unparseable message: expected value"));
    assert!(!dead[0].message_id.is_empty());
    assert_eq!(q.depth().await.unwrap(), 0);
}

pub async fn redrive_moves_the_dead_letters_back_as_new_messages(t: &dyn QueueUnderTest) {
    let q = t.queue();
    q.dead_letter("first", "failed").await.unwrap();
    q.dead_letter("second", "failed").await.unwrap();
    assert_eq!(q.redrive().await.unwrap(), 2);
    assert!(q.peek_dead_letters(10).await.unwrap().is_empty());
    let received = receive_n(q, 2, LONG).await;
    assert_eq!(body_set(&received), ["first".to_owned(), "second".to_owned()].into_iter().collect());
    assert!(received.iter().all(|m| m.receive_count == 1), "counted afresh: {received:?}");
    assert_eq!(q.redrive().await.unwrap(), 0, "nothing left to move");
}

pub async fn depth_counts_visible_and_in_flight(t: &dyn QueueUnderTest) {
    let q = t.queue();
    assert_eq!(q.depth().await.unwrap(), 0);
    q.send_batch(&bodies("depth", 3)).await.unwrap();
    assert_eq!(q.depth().await.unwrap(), 3);
    let received = receive_n(q, 1, LONG).await;
    assert_eq!(q.depth().await.unwrap(), 3, "in flight still counts");
    q.delete(&received[0].receipt).await.unwrap();
    assert_eq!(q.depth().await.unwrap(), 2);
}

pub async fn a_batch_of_eleven_is_refused_whole(t: &dyn QueueUnderTest) {
    let q = t.queue();
    let e = q.send_batch(&bodies("eleven", 11)).await.unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(q.depth().await.unwrap(), 0, "nothing of it was sent");
    q.send_batch(&[]).await.unwrap();
}

/// The ids of what one receiver gets, three at a time, until the queue hands out nothing more.
pub async fn receive_all(q: &dyn Queue) -> Vec<String> {
    let mut got = vec![];
    loop {
        let batch = q.receive(3, LONG).await.unwrap();
        if batch.is_empty() {
            return got;
        }
        got.extend(batch.into_iter().map(|m| m.message_id));
    }
}

pub async fn concurrent_receivers_never_get_the_same_message(t: &dyn QueueUnderTest) {
    let q = t.queue();
    for chunk in 0..3 {
        q.send_batch(&bodies(&format!("race-{chunk}"), 10)).await.unwrap();
    }
    let (a, b, c, d) = tokio::join!(receive_all(q), receive_all(q), receive_all(q), receive_all(q));
    let all: Vec<String> = [a, b, c, d].concat();
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a message went to two receivers");
    assert_eq!(all.len(), 30);
}
