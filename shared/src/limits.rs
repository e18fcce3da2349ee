//! What bounds an invocation's side effects: its deadline (Lambda's, or a local stand-in), the provider's send
//! rate shared by every message in flight, and a breaker that stops all sends once the sender or the account
//! is refused.

use std::{
    sync::{Mutex, OnceLock},
    time::{Duration, SystemTime},
};
use tokio::time::Instant;

/// When the invocation will be stopped, and how close to it a side effect may still start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    /// The longest a started side effect and its settlement may take: nothing starts closer to `at` than this.
    margin: Duration,
}

impl Deadline {
    pub fn new(at: Instant, margin: Duration) -> Self {
        Self { at, margin }
    }

    /// `timeout` from now: a local invocation (the demo, `jobs run`, tests) given the same budget as a Lambda.
    pub fn after(timeout: Duration, margin: Duration) -> Self {
        Self::new(Instant::now() + timeout, margin)
    }

    /// Lambda's deadline (milliseconds since the Unix epoch, from the invocation's context).
    pub fn from_epoch_millis(millis: u64, margin: Duration) -> Self {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(millis);
        let left = at.duration_since(SystemTime::now()).unwrap_or_default();
        Self::new(Instant::now() + left, margin)
    }

    /// Time left until the invocation is stopped.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether a side effect may still start: more than the margin is left.
    pub fn allows_start(&self) -> bool {
        self.remaining() > self.margin
    }

    /// Whether a call that may take up to `longest` may still start: it and the margin fit in what is left.
    pub fn allows(&self, longest: Duration) -> bool {
        self.remaining() > self.margin + longest
    }
}

/// Spaces the starts of side effects to a rate, across every message an invocation works at once (SES counts
/// an account's sends per second, not a message's).
#[derive(Debug)]
pub struct Pace {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pace {
    /// At most `per_second` starts a second; `None` (or a rate that is not positive) does not pace.
    pub fn new(per_second: Option<f64>) -> Self {
        let interval = per_second
            .filter(|rate| rate.is_finite() && *rate > 0.0)
            .map_or(Duration::ZERO, |rate| Duration::from_secs_f64(1.0 / rate));
        Self { interval, next: Mutex::new(None) }
    }

    /// Waits for this caller's turn.
    pub async fn wait(&self) {
        if self.interval.is_zero() {
            return;
        }
        let turn = {
            let mut next = self.next.lock().expect("pace lock");
            let turn = next.map_or_else(Instant::now, |n| n.max(Instant::now()));
            *next = Some(turn + self.interval);
            turn
        };
        tokio::time::sleep_until(turn).await;
    }
}

/// Trips on the first refusal of the sender or the account (`Error::Sender`) and stays tripped for the rest
/// of the invocation: one such refusal means every further send would be refused too.
#[derive(Debug, Default)]
pub struct Breaker(OnceLock<String>);

impl Breaker {
    pub fn trip(&self, reason: &str) {
        let _ = self.0.set(reason.to_owned());
    }

    /// Why it tripped, if it did.
    pub fn tripped(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pace_spaces_starts_across_callers() {
        let pace = std::sync::Arc::new(Pace::new(Some(10.0)));
        let start = Instant::now();
        let waits = (0..5).map(|_| {
            let pace = pace.clone();
            tokio::spawn(async move {
                pace.wait().await;
                Instant::now() - start
            })
        });
        let mut at: Vec<Duration> = futures::future::join_all(waits).await.into_iter().map(Result::unwrap).collect();
        at.sort();
        assert_eq!(at, (0..5).map(|n| Duration::from_millis(100 * n)).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn no_rate_does_not_wait() {
        let start = Instant::now();
        Pace::new(None).wait().await;
        Pace::new(Some(0.0)).wait().await;
        assert_eq!(Instant::now(), start);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_stops_starts_within_its_margin() {
        let deadline = Deadline::after(Duration::from_secs(10), Duration::from_secs(3));
        assert!(deadline.allows_start());
        tokio::time::advance(Duration::from_secs(7)).await;
        assert!(!deadline.allows_start(), "3 s left is within the margin");
        assert_eq!(deadline.remaining(), Duration::from_secs(3));
    }

    #[test]
    fn a_lambda_deadline_in_the_past_leaves_no_time() {
        let deadline = Deadline::from_epoch_millis(1_000, Duration::ZERO);
        assert_eq!(deadline.remaining(), Duration::ZERO);
        assert!(!deadline.allows_start());
    }

    #[test]
    fn the_breaker_keeps_its_first_reason() {
        let breaker = Breaker::default();
        assert_eq!(breaker.tripped(), None);
        breaker.trip("AccountSendingPaused");
        breaker.trip("later");
        assert_eq!(breaker.tripped(), Some("AccountSendingPaused"));
    }
}
