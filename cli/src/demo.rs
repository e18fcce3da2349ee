//! `jobs demo`: the whole system on one machine. Seeds the embedded database once, then runs every task
//! through every slot of a simulated week — plan, embedded queue, work, the outbox — and prints a table per
//! task. The week has a Monday (weekly reports) and a 1st (monthly reports). Running it again writes nothing
//! new: every (task, slot) runs once.

use std::{path::Path, sync::Arc};

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate};
use infra::{config::Config, outbox::GONE_ENDPOINTS, wiring::Backend};
use shared::time::VirtualClock;

use crate::{
    seed::{self, SeedSpec},
    simulate::{self, SlotDone},
};

mod analytics;

pub async fn run(dir: &Path, first_day: NaiveDate, days: u32) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let outbox = dir.join("outbox");
    let config = Config::embedded(&dir.join("jobs.db"), outbox.clone());
    let last_day = first_day + Duration::days(days as i64 - 1);
    let start = first_day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let end = start + Duration::days(days as i64);
    let clock = Arc::new(VirtualClock::new(start));
    let mut backend = Backend::connect(config, clock.clone()).await?;
    backend.store.migrate().await?;

    let zones = backend.store.activity().time_zones().await?;
    if zones.is_empty() {
        let spec = SeedSpec { users: 300, last_day, days: 40, with_unknown_zone: true, seed: 42 };
        let seeded = seed::seed(backend.store.writer().as_ref(), backend.store.contacts().as_ref(), &spec).await?;
        println!(
            "Seeded {} users in {} time zones (and one with an unknown zone), {} workouts and {} sets over the 40 days \
             to {last_day}, {} phones with the app, {} challenges.",
            seeded.users,
            seed::ZONES.len(),
            seeded.workouts,
            seeded.sets,
            seeded.devices,
            seeded.challenges
        );
        let shop = seed::seed_shop(backend.store.shop_writer().as_ref(), &seeded.user_ids, first_day, days, 42).await?;
        println!(
            "Seeded the shop: {} products (one sold out, one nearly), {} subscriptions, {} of them due in these days.",
            shop.products, shop.subscriptions, shop.due_in_range
        );
        // One uninstalled app: SNS would say its endpoint is disabled; the outbox plays that from this file.
        let some: Vec<i64> = (1..=50).collect();
        let contacts = backend.store.contacts().contacts(&some).await?;
        if let Some(device) = contacts.iter().flat_map(|c| &c.devices).next() {
            std::fs::create_dir_all(&outbox)?;
            std::fs::write(outbox.join(GONE_ENDPOINTS), format!("{}\n", device.endpoint_arn))?;
        }
    } else {
        println!("Using the demo data already in {}.", dir.display());
    }

    let runtimes = simulate::runtimes(&mut backend)?;
    println!("\nEvery task over {first_day} .. {last_day} (UTC days), each at its local time in each user's zone.");
    let mut slots: Vec<SlotDone> = vec![];
    let mut notes = std::collections::BTreeSet::new();
    simulate::drive(&runtimes, &clock, (start, end), None, |_, _, slot| slots.extend(slot)).await?;
    let days_done = simulate::by_day(&slots);
    for (i, (runtime, _)) in runtimes.iter().enumerate() {
        println!("\n{}", runtime.task.name());
        println!("  {:<10} {:>5} {:>7} {:>6} {:>5} {:>6}  skipped", "day", "new", "planned", "emails", "sms", "pushes");
        for day in (0..days).map(|d| first_day + Duration::days(d as i64)) {
            let fired: Vec<&SlotDone> = slots.iter().filter(|s| s.task == i && s.time.date_naive() == day).collect();
            let new = fired.iter().filter(|s| s.new).count();
            let Some((planned, sent, report)) = days_done.get(&(i, day)) else { continue };
            let mut skipped: Vec<String> = report.skipped.iter().map(|(why, n)| format!("{n} {why}")).collect();
            // The shop's charges are its side effects, said first, as counted once each in job_runs (a message
            // that was retried counts there what it did before the retry).
            if runtime.task.name() == shared::tasks::shop::subscription_processing::NAME {
                let (mut charged, mut declined) = (0, 0);
                for slot in &fired {
                    if let Some(run) = runtime.runs.run(runtime.task.name(), slot.time).await? {
                        (charged, declined) = (charged + run.sent, declined + run.failed);
                    }
                }
                skipped.insert(0, format!("{charged} charged, {declined} declined"));
            }
            if let Some(done) = analytics::done(runtime, &fired).await? {
                skipped.insert(0, done);
            }
            println!(
                "  {day:<10} {new:>5} {planned:>7} {:>6} {:>5} {:>6}  {}",
                sent.emails,
                sent.sms,
                sent.pushes,
                skipped.join(", ")
            );
            for slot in fired {
                notes.extend(slot.errors.iter().map(|e| format!("{}: {e}", runtime.task.name())));
                notes.extend(slot.report.errors.iter().map(|e| format!("{}: {e}", runtime.task.name())));
            }
        }
    }
    print_shop(&backend, &outbox).await?;
    analytics::print(&backend).await?;
    let new_slots = slots.iter().filter(|s| s.new).count();
    println!();
    if new_slots == 0 {
        println!("Nothing new: every slot of these days was planned before, and (task, slot) runs only once.");
        println!("Delete {} to start over.", dir.display());
    }
    for note in notes {
        println!("note: {note}");
    }
    let eml = std::fs::read_dir(&outbox)
        .map(|d| d.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))).count())
        .unwrap_or(0);
    println!("\nOutbox: {} ({eml} .eml files; push.jsonl and sms.jsonl beside them)", outbox.display());
    println!("Runs:    cargo run -p jobs -- runs");
    println!("Preview: cargo run -p jobs -- preview weekly-report --user 5");
    Ok(())
}

/// The orders subscription-processing made, by status, and what the fake gateway charged and declined.
async fn print_shop(backend: &Backend, outbox: &Path) -> Result<()> {
    let orders = backend.store.shop_writer().orders().await?;
    let mut by_status = std::collections::BTreeMap::<&str, u64>::new();
    let (mut charged, mut declined, mut total_cents) = (0, 0, 0);
    for order in &orders {
        *by_status.entry(order.status.as_str()).or_default() += 1;
        for (_, status, _) in &order.payments {
            match status.as_str() {
                "succeeded" => {
                    charged += 1;
                    total_cents += order.total_cents;
                }
                "declined" => declined += 1,
                _ => {}
            }
        }
    }
    let statuses: Vec<String> = by_status.iter().map(|(status, n)| format!("{n} {status}")).collect();
    println!(
        "\nThe shop: {} orders ({}); {charged} charges for {} in all, {declined} declined attempts.",
        orders.len(),
        statuses.join(", "),
        shared::render::money(total_cents, "INR")
    );
    println!("Charges: {} (the fake gateway's; a key is charged once)", outbox.join("charges.jsonl").display());
    Ok(())
}
