//! `jobs demo`: the whole system on one machine. Seeds the embedded database once, then runs daily-summary
//! through every hourly slot of one UTC day — plan, embedded queue, work, file outbox — and says what happened.

use std::{path::Path, sync::Arc};

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate};
use infra::{config::Config, wiring::Backend};
use shared::{
    invocation::{Trigger, TriggerSource},
    runtime::{PlanStatus, RuntimeSettings, WorkReport},
    tasks::fitness::daily_summary,
    time::VirtualClock,
};

use crate::seed::{self, SeedSpec};

pub async fn run(dir: &Path, day: NaiveDate) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let outbox = dir.join("outbox");
    let config = Config::embedded(&dir.join("jobs.db"), outbox.clone());
    let start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let clock = Arc::new(VirtualClock::new(start));
    let backend = Backend::connect(config, clock.clone()).await?;
    backend.store.migrate().await?;

    let zones = backend.store.activity().time_zones().await?;
    if zones.is_empty() {
        let spec = SeedSpec { users: 300, last_day: day, days: 30, with_unknown_zone: true, seed: 42 };
        let seeded = seed::seed(backend.store.writer().as_ref(), backend.store.contacts().as_ref(), &spec).await?;
        println!(
            "Seeded {} users in {} time zones (and one with an unknown zone), {} workouts and {} sets over the 30 days to {day}.",
            seeded.users,
            seed::ZONES.len(),
            seeded.workouts,
            seeded.sets
        );
    } else {
        println!("Using the demo data already in {}.", dir.display());
    }

    let runtime = backend.runtime(daily_summary::NAME, RuntimeSettings::default())?;
    println!("\ndaily-summary, hourly slots of {day} (UTC); each user's summary is about their previous local day\n");
    println!("{:<17} {:>7} {:>8} {:>6}  skipped", "slot", "planned", "messages", "emails");
    let mut total = WorkReport::default();
    let (mut planned, mut new_slots, mut retried, mut dead) = (0, 0, 0, 0);
    let mut notes = std::collections::HashSet::new();
    for hour in 1..=24 {
        let slot = start + Duration::hours(hour);
        // Scheduler fires a few seconds after the slot.
        clock.set(slot + Duration::seconds(3));
        let trigger = Trigger { time: slot, source: TriggerSource::Scheduler, task: Some(daily_summary::NAME.into()) };
        let plan = runtime.plan(trigger).await?;
        let mut slot_report = WorkReport::default();
        for batch in runtime.drain().await? {
            slot_report.merge(&batch.totals());
            let (r, d) = batch.retried_and_dead_lettered();
            (retried, dead) = (retried + r, dead + d);
        }
        let skipped: Vec<String> = slot_report.skipped.iter().map(|(why, n)| format!("{n} {why}")).collect();
        let status = match plan.status {
            PlanStatus::AlreadyPlanned => "planned before: nothing new".to_owned(),
            PlanStatus::Planned | PlanStatus::Resumed => {
                new_slots += 1;
                skipped.join(", ")
            }
        };
        println!(
            "{:<17} {:>7} {:>8} {:>6}  {status}",
            slot.format("%Y-%m-%d %H:%M"),
            plan.planned,
            plan.messages,
            slot_report.sent
        );
        for error in plan.errors {
            if notes.insert(error.clone()) {
                println!("{:<17} note: {error} (recorded in every run; said once here)", "");
            }
        }
        planned += plan.planned;
        total.merge(&slot_report);
    }

    let files = std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0);
    println!();
    if new_slots == 0 {
        println!("Nothing new: every slot of {day} was planned before, and (task, slot) runs only once.");
        println!("Delete {} to start over.", dir.display());
    } else {
        let skipped: Vec<String> = total.skipped.iter().map(|(why, n)| format!("{n} {why}")).collect();
        println!(
            "{new_slots} slots planned {planned} users: {} emails written, {} failed; skipped: {}.",
            total.sent,
            total.failed,
            if skipped.is_empty() { "none".into() } else { skipped.join(", ") }
        );
        println!("Messages retried: {retried}; dead-lettered: {dead}.");
    }
    println!("Outbox: {} ({files} .eml files; open one in a mail client)", outbox.display());
    println!("Runs:   cargo run -p jobs -- runs");
    Ok(())
}
