//! In-memory adapters for unit tests and benchmarks: a mailer that keeps what it is given (or only counts
//! it), a ledger with the same claim rules as the SQL ones, and a queue without time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::Duration,
};

use crate::{
    ports::{ClaimState, DeliveryKey, Email, Ledger, Mailer, RunPart, Settled, Settlement},
    Error, Result,
};

/// Keeps every email it sends; `fail_next` makes the next sends fail retryably, as a throttled provider would.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<Email>>,
    fail_next: AtomicU64,
}

impl MemoryMailer {
    pub fn sent(&self) -> Vec<Email> {
        self.sent.lock().expect("mailer lock").clone()
    }

    pub fn fail_next(&self, sends: u64) {
        self.fail_next.store(sends, Ordering::SeqCst);
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, email: &Email) -> Result<String> {
        let failing = self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(Error::retryable("mailer throttled (simulated)"));
        }
        let mut sent = self.sent.lock().expect("mailer lock");
        sent.push(email.clone());
        Ok(format!("memory-{}", sent.len()))
    }
}

/// Counts and drops: the benchmark's mailer, so that what is measured is the jobs, not a mail provider.
#[derive(Debug, Default)]
pub struct NullMailer(AtomicU64);

impl NullMailer {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Mailer for NullMailer {
    async fn send(&self, _email: &Email) -> Result<String> {
        Ok(format!("null-{}", self.0.fetch_add(1, Ordering::Relaxed)))
    }
}

#[derive(Debug, Clone)]
struct Entry {
    status: &'static str,
    attempts: u32,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct MemoryLedger(Mutex<HashMap<(String, DeliveryKey), Entry>>);

#[async_trait]
impl Ledger for MemoryLedger {
    async fn claim(
        &self,
        task: &str,
        keys: &[DeliveryKey],
        now: DateTime<Utc>,
        hold: Duration,
    ) -> Result<Vec<(DeliveryKey, ClaimState)>> {
        let mut map = self.0.lock().expect("ledger lock");
        let expires_at = now + chrono::Duration::from_std(hold).expect("hold in range");
        Ok(keys
            .iter()
            .map(|key| {
                let entry = map.entry((task.to_owned(), key.clone())).or_insert(Entry {
                    status: "retryable",
                    attempts: 0,
                    expires_at: now,
                });
                let state = match entry.status {
                    "done" => ClaimState::Done,
                    "failed" => ClaimState::Failed,
                    "in_progress" if entry.expires_at > now => ClaimState::Busy,
                    _ => {
                        *entry = Entry { status: "in_progress", attempts: entry.attempts + 1, expires_at };
                        ClaimState::Won(entry.attempts)
                    }
                };
                (key.clone(), state)
            })
            .collect())
    }

    /// Keeps no runs: the run part is not counted here.
    async fn settle(&self, task: &str, _run: RunPart, outcomes: &[Settled], now: DateTime<Utc>) -> Result<u64> {
        let mut map = self.0.lock().expect("ledger lock");
        let mut settled = 0;
        for Settled { key, attempt, settlement } in outcomes {
            let Some(entry) = map.get_mut(&(task.to_owned(), key.clone())) else { continue };
            if entry.status != "in_progress" || entry.attempts != *attempt {
                continue; // no longer ours: the claim expired and another worker took it
            }
            entry.status = match settlement {
                Settlement::Done => "done",
                Settlement::Retry(_) => "retryable",
                Settlement::Failed(_) => "failed",
            };
            entry.expires_at = now;
            settled += 1;
        }
        Ok(settled)
    }
}

#[derive(Debug, Default)]
struct QueueState {
    next_id: u64,
    /// (id, body, receive count, in flight)
    messages: std::collections::VecDeque<(u64, String, u32, bool)>,
    dead: Vec<crate::ports::DeadLetter>,
}

/// A queue in memory for benchmarks: receive takes messages in order and holds them in flight until they are
/// deleted or their visibility is changed; time never passes, so there is no redelivery by timeout.
#[derive(Debug, Default)]
pub struct MemoryQueue(Mutex<QueueState>);

#[async_trait]
impl crate::ports::Queue for MemoryQueue {
    async fn send_batch(&self, bodies: &[String]) -> Result<()> {
        let mut q = self.0.lock().expect("queue lock");
        for body in bodies {
            q.next_id += 1;
            let id = q.next_id;
            q.messages.push_back((id, body.clone(), 0, false));
        }
        Ok(())
    }

    async fn receive(&self, max: u32, _visibility: Duration) -> Result<Vec<crate::ports::Received>> {
        let mut q = self.0.lock().expect("queue lock");
        Ok(q.messages
            .iter_mut()
            .filter(|m| !m.3)
            .take(max as usize)
            .map(|(id, body, count, in_flight)| {
                *count += 1;
                *in_flight = true;
                crate::ports::Received {
                    message_id: id.to_string(),
                    receipt: id.to_string(),
                    body: body.clone(),
                    receive_count: *count,
                }
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        self.0.lock().expect("queue lock").messages.retain(|m| m.0.to_string() != receipt);
        Ok(())
    }

    async fn change_visibility(&self, _receipt: &str, _visibility: Duration) -> Result<()> {
        // Time does not pass here: a message being retried stays in flight until the next benchmark run.
        Ok(())
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<()> {
        let mut q = self.0.lock().expect("queue lock");
        let message_id = format!("dead-{}", q.dead.len() + 1);
        q.dead.push(crate::ports::DeadLetter { message_id, body: body.to_owned(), reason: reason.to_owned() });
        Ok(())
    }

    async fn peek_dead_letters(&self, max: u32) -> Result<Vec<crate::ports::DeadLetter>> {
        Ok(self.0.lock().expect("queue lock").dead.iter().take(max as usize).cloned().collect())
    }

    async fn redrive(&self) -> Result<u64> {
        let mut q = self.0.lock().expect("queue lock");
        let dead = std::mem::take(&mut q.dead);
        for letter in &dead {
            q.next_id += 1;
            let id = q.next_id;
            q.messages.push_back((id, letter.body.clone(), 0, false));
        }
        Ok(dead.len() as u64)
    }

    async fn depth(&self) -> Result<u64> {
        Ok(self.0.lock().expect("queue lock").messages.len() as u64)
    }
}
