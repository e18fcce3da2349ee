//! `jobs simulate`: every slot of every task over a range of days on the embedded backend, a virtual clock
//! moving from slot to slot and the queues drained between them. During a downtime nothing fires; at the first
//! slot after it each task applies its catch-up policy. Ends with what each task fired, missed and caught up,
//! what it sent, and how many emails went twice (which must be none).

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use anyhow::{Context, Result};
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use infra::{config::Config, wiring::Backend};
use serde::Serialize;
use shared::{
    invocation::{Trigger, TriggerSource},
    ports::{Email, Mailer},
    runtime::{JobRuntime, RuntimeSettings},
    tasks,
    time::VirtualClock,
};

use crate::seed::{self, SeedSpec};

pub struct Spec {
    /// First and last simulated UTC days, both included.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Nothing fires in `[start, end)`.
    pub downtime: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Where the simulation's own database goes; it is made afresh.
    pub data_dir: PathBuf,
    pub users: usize,
}

/// What one task did over the simulation.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct TaskTally {
    pub task: String,
    /// Slots the schedule fired and the task planned.
    pub fired: u64,
    /// Slots that fell in the downtime.
    pub missed: u64,
    /// Missed slots planned later by the catch-up policy.
    pub caught_up: u64,
    /// Missed slots recorded as skipped by the catch-up policy.
    pub skipped: u64,
    pub messages: u64,
    pub emails: u64,
    /// Emails sent again to the same recipient with the same subject.
    pub duplicates: u64,
    pub retries: u64,
    pub dead_lettered: u64,
}

/// Counts emails by recipient and subject, to find any sent twice, without keeping them.
#[derive(Default)]
struct Tally(Mutex<HashMap<(String, String), u64>>);

#[async_trait]
impl Mailer for Tally {
    async fn send(&self, email: &Email) -> shared::Result<String> {
        *self.0.lock().expect("tally lock").entry((email.to.clone(), email.subject.clone())).or_default() += 1;
        Ok("simulated".into())
    }
}

impl Tally {
    fn counts(&self) -> (u64, u64) {
        let sent = self.0.lock().expect("tally lock");
        (sent.values().sum(), sent.values().map(|n| n - 1).sum())
    }
}

/// How much virtual time a drain lets pass for messages waiting out a retry delay.
const RETRY_WAIT: Duration = Duration::minutes(1);
const MAX_RETRY_WAITS: u32 = 60;

pub async fn run(spec: &Spec, on_slot: impl Fn(u64, u64)) -> Result<Vec<TaskTally>> {
    std::fs::create_dir_all(&spec.data_dir).with_context(|| format!("creating {}", spec.data_dir.display()))?;
    let db = spec.data_dir.join("simulate.db");
    for stale in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{stale}", db.display()));
    }
    let start = spec.from.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let end = (spec.to + Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let clock = Arc::new(VirtualClock::new(start));
    let config = Config::embedded(&db, spec.data_dir.join("outbox"));
    let mut backend = Backend::connect(config, clock.clone()).await?;
    backend.store.migrate().await?;
    let days = (spec.to - spec.from).num_days() as u32 + 2;
    let seed = SeedSpec { users: spec.users, last_day: spec.to, days, with_unknown_zone: true, seed: 42 };
    seed::seed(backend.store.writer().as_ref(), backend.store.contacts().as_ref(), &seed).await?;

    let mut runtimes: Vec<(JobRuntime, Arc<Tally>)> = vec![];
    let mut slots: Vec<(DateTime<Utc>, usize)> = vec![];
    for (i, name) in tasks::NAMES.iter().enumerate() {
        let tally = Arc::new(Tally::default());
        backend.mailer = tally.clone();
        let runtime = backend.runtime(name, RuntimeSettings::default())?;
        slots.extend(
            runtime.schedule.fires_between(start - Duration::seconds(1), end - Duration::seconds(1)).map(|t| (t, i)),
        );
        runtimes.push((runtime, tally));
    }
    slots.sort();

    let mut tallies: Vec<TaskTally> =
        tasks::NAMES.iter().map(|name| TaskTally { task: name.to_string(), ..Default::default() }).collect();
    let total = slots.len() as u64;
    for (done, (time, i)) in slots.into_iter().enumerate() {
        on_slot(done as u64 + 1, total);
        let tally = &mut tallies[i];
        if spec.downtime.is_some_and(|(from, to)| from <= time && time < to) {
            tally.missed += 1;
            continue;
        }
        let runtime = &runtimes[i].0;
        // Scheduler fires within the minute; a few seconds late is typical.
        clock.set(time + Duration::seconds(3));
        let plan = runtime.plan(Trigger { time, source: TriggerSource::Scheduler, task: None }).await?;
        tally.fired += 1;
        tally.caught_up += plan.caught_up.len() as u64;
        tally.skipped += plan.skipped_slots.len() as u64;
        tally.messages += plan.messages + plan.caught_up.iter().map(|r| r.messages).sum::<u64>();
        drain(runtime, &clock, tally).await?;
    }
    for (tally, (_, mailer)) in tallies.iter_mut().zip(&runtimes) {
        (tally.emails, tally.duplicates) = mailer.counts();
    }
    Ok(tallies)
}

/// Works the task's queue until it is empty, letting virtual time pass for messages waiting to be retried.
async fn drain(runtime: &JobRuntime, clock: &VirtualClock, tally: &mut TaskTally) -> Result<()> {
    for _ in 0..MAX_RETRY_WAITS {
        for batch in runtime.drain().await? {
            let (retried, dead) = batch.retried_and_dead_lettered();
            tally.retries += retried;
            tally.dead_lettered += dead;
        }
        if runtime.queue.depth().await? == 0 {
            return Ok(());
        }
        clock.advance(RETRY_WAIT);
    }
    anyhow::bail!("{}: messages still waiting after {MAX_RETRY_WAITS} minutes of retries", runtime.task.name())
}

pub fn print(tallies: &[TaskTally]) {
    println!(
        "{:<16} {:>6} {:>6} {:>9} {:>7} {:>8} {:>7} {:>7} {:>13} {:>10}",
        "task",
        "fired",
        "missed",
        "caught up",
        "skipped",
        "messages",
        "emails",
        "retries",
        "dead-lettered",
        "duplicates"
    );
    for t in tallies {
        println!(
            "{:<16} {:>6} {:>6} {:>9} {:>7} {:>8} {:>7} {:>7} {:>13} {:>10}",
            t.task,
            t.fired,
            t.missed,
            t.caught_up,
            t.skipped,
            t.messages,
            t.emails,
            t.retries,
            t.dead_lettered,
            t.duplicates
        );
    }
    println!("(No task sends SMS or push yet: emails are all there is to count.)");
}
