//! In-memory adapters for unit tests and benchmarks: a mailer that keeps what it is given (or only counts
//! it) and a ledger with the same claim rules as the SQL ones.

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
    ports::{ClaimState, DeliveryKey, Email, Ledger, Mailer, Settlement},
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
                let slot = map.entry((task.to_owned(), key.clone()));
                let state = match slot {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(Entry { status: "in_progress", expires_at });
                        ClaimState::Won
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => match o.get().status {
                        "done" => ClaimState::Done,
                        "failed" => ClaimState::Failed,
                        "in_progress" if o.get().expires_at > now => ClaimState::Busy,
                        _ => {
                            o.insert(Entry { status: "in_progress", expires_at });
                            ClaimState::Won
                        }
                    },
                };
                (key.clone(), state)
            })
            .collect())
    }

    async fn settle(&self, task: &str, outcomes: &[(DeliveryKey, Settlement)], now: DateTime<Utc>) -> Result<()> {
        let mut map = self.0.lock().expect("ledger lock");
        for (key, settlement) in outcomes {
            let status = match settlement {
                Settlement::Done => "done",
                Settlement::Retry(_) => "retryable",
                Settlement::Failed(_) => "failed",
            };
            map.insert((task.to_owned(), key.clone()), Entry { status, expires_at: now });
        }
        Ok(())
    }
}
