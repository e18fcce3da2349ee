//! In-memory adapters for unit tests and benchmarks: a mailer and a notifier that keep what they are given (or
//! only count it), contacts, a ledger with the same claim rules as the SQL ones, and a queue without time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::Duration,
};

use crate::{
    ports::{
        Choice, ClaimState, Contact, Contacts, DeliveryKey, Device, Email, Ledger, Mailer, Notifier, OrderEvent,
        OrderEvents, Push, Pushed, RunPart, Settled, Settlement, Sms,
    },
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

/// Keeps every SMS and push it sends; can be told that an endpoint is gone, or that the next calls are throttled.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sms: Mutex<Vec<Sms>>,
    pushes: Mutex<Vec<Push>>,
    gone: Mutex<HashSet<String>>,
    throttle_next: AtomicU64,
}

impl MemoryNotifier {
    pub fn sms_sent(&self) -> Vec<Sms> {
        self.sms.lock().expect("notifier lock").clone()
    }

    /// The pushes that reached a device, not those to a gone endpoint.
    pub fn pushed(&self) -> Vec<Push> {
        self.pushes.lock().expect("notifier lock").clone()
    }

    /// From now on, a push to `endpoint_arn` finds it gone.
    pub fn gone(&self, endpoint_arn: &str) {
        self.gone.lock().expect("notifier lock").insert(endpoint_arn.to_owned());
    }

    /// The next `calls` (SMS or push) fail retryably, as a throttled provider's would.
    pub fn throttle_next(&self, calls: u64) {
        self.throttle_next.store(calls, Ordering::SeqCst);
    }

    fn throttled(&self) -> Result<()> {
        match self.throttle_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
            Ok(_) => Err(Error::retryable("notifier throttled (simulated)")),
            Err(_) => Ok(()),
        }
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn sms(&self, sms: &Sms) -> Result<String> {
        self.throttled()?;
        crate::channels::check_sms(sms)?;
        let mut sent = self.sms.lock().expect("notifier lock");
        sent.push(sms.clone());
        Ok(format!("memory-sms-{}", sent.len()))
    }

    async fn push(&self, push: &Push) -> Result<Pushed> {
        self.throttled()?;
        crate::channels::check_push(push)?;
        if self.gone.lock().expect("notifier lock").contains(&push.endpoint_arn) {
            return Ok(Pushed::Gone("endpoint disabled (simulated)".into()));
        }
        let mut pushes = self.pushes.lock().expect("notifier lock");
        pushes.push(push.clone());
        Ok(Pushed::Sent(format!("memory-push-{}", pushes.len())))
    }
}

/// Contacts kept as given, with every device (enabled or not) and choice the port records.
#[derive(Debug, Default)]
pub struct MemoryContacts(Mutex<Vec<(Contact, Devices)>>);

/// A user's devices, each with whether it is enabled.
type Devices = Vec<(Device, bool)>;

impl MemoryContacts {
    /// The contacts with their devices enabled.
    pub fn with(contacts: Vec<Contact>) -> Self {
        let kept = contacts
            .into_iter()
            .map(|c| {
                let devices = c.devices.iter().map(|d| (d.clone(), true)).collect();
                (c, devices)
            })
            .collect();
        Self(Mutex::new(kept))
    }
}

#[async_trait]
impl Contacts for MemoryContacts {
    async fn contacts(&self, user_ids: &[i64]) -> Result<Vec<Contact>> {
        let kept = self.0.lock().expect("contacts lock");
        Ok(kept
            .iter()
            .filter(|(c, _)| user_ids.contains(&c.user_id))
            .map(|(c, devices)| Contact {
                devices: devices.iter().filter(|(_, enabled)| *enabled).map(|(d, _)| d.clone()).collect(),
                ..c.clone()
            })
            .collect())
    }

    async fn disable_device(&self, endpoint_arn: &str) -> Result<()> {
        for (_, devices) in self.0.lock().expect("contacts lock").iter_mut() {
            devices.iter_mut().filter(|(d, _)| d.endpoint_arn == endpoint_arn).for_each(|(_, on)| *on = false);
        }
        Ok(())
    }

    async fn choose(&self, user_id: i64, choice: Choice) -> Result<()> {
        let mut kept = self.0.lock().expect("contacts lock");
        if let Some((contact, _)) = kept.iter_mut().find(|(c, _)| c.user_id == user_id) {
            contact.choices.retain(|c| (c.kind, c.channel) != (choice.kind, choice.channel));
            contact.choices.push(choice);
        }
        Ok(())
    }

    /// Moves the endpoint to `user_id`, enabled, as the stores' upsert does.
    async fn add_device(&self, user_id: i64, device: &Device) -> Result<()> {
        let mut kept = self.0.lock().expect("contacts lock");
        for (_, devices) in kept.iter_mut() {
            devices.retain(|(d, _)| d.endpoint_arn != device.endpoint_arn);
        }
        if let Some((_, devices)) = kept.iter_mut().find(|(c, _)| c.user_id == user_id) {
            devices.push((device.clone(), true));
        }
        Ok(())
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

/// Keeps every order event it is given, in order; `fail_next` makes the next publishes fail retryably.
#[derive(Debug, Default)]
pub struct MemoryOrderEvents {
    published: Mutex<Vec<OrderEvent>>,
    failures: AtomicU64,
}

impl MemoryOrderEvents {
    pub fn published(&self) -> Vec<OrderEvent> {
        self.published.lock().expect("events lock").clone()
    }

    pub fn fail_next(&self, publishes: u64) {
        self.failures.store(publishes, Ordering::SeqCst);
    }
}

#[async_trait]
impl OrderEvents for MemoryOrderEvents {
    async fn publish(&self, events: &[OrderEvent]) -> Result<()> {
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(Error::retryable("event bus: throttled"));
        }
        self.published.lock().expect("events lock").extend_from_slice(events);
        Ok(())
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
