//! `jobs demo`: the whole system on one machine. Seeds the embedded database once, then runs every task
//! through every slot of a simulated week — plan, embedded queue, work, the outbox — and prints a table per
//! task. The week has a Monday (weekly reports) and a 1st (monthly reports). The cleanups delete the app's old
//! rows as they go; at the first cart-cleanup, a few customers change their old carts between its plan and its
//! work, and those carts are kept. Job-history retention deletes last summer's runs and delivery keys on the first
//! day, and keeps the reminders' keys, whatever their age. Three users upload meal photos, which the embedded
//! model recognises (or not) into their food logs. Running it again writes nothing new: every (task, slot) runs
//! once.

use std::{path::Path, sync::Arc};

use anyhow::{Context, Result};
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use infra::{config::Config, food::SAMPLES, outbox::GONE_ENDPOINTS, wiring::Backend};
use shared::{
    ports::{ClaimState, DeliveryKey, MaintenanceWriter, RunPart, Settled, Settlement, Swept},
    runtime::RuntimeSettings,
    tasks::{
        fitness::{daily_summary, food_recognition, inactivity_reminders},
        maintenance::{
            cleanup::{self, CART_CLEANUP},
            job_history_retention,
        },
    },
    time::{Clock, Slot, VirtualClock},
};

use crate::{
    seed::{self, SeedSpec},
    simulate::{self, Meanwhile, SlotDone},
};

/// Customers changing their old carts while the first cart-cleanup's messages wait on the queue: four carts
/// touched, and one given an item (which bumps the cart's updated_at, as the app does).
struct TouchCarts {
    app: Arc<dyn MaintenanceWriter>,
    clock: Arc<VirtualClock>,
    carts: std::sync::Mutex<Vec<i64>>,
}

#[async_trait]
impl Meanwhile for TouchCarts {
    async fn after_plan(&self, task: &str, _slot: DateTime<Utc>) -> Result<()> {
        if task != CART_CLEANUP {
            return Ok(());
        }
        let carts = std::mem::take(&mut *self.carts.lock().expect("carts lock"));
        let Some((&given_an_item, touched)) = carts.split_first() else { return Ok(()) };
        let now = self.clock.now();
        self.app.touch(Swept::Carts, touched, now).await?;
        self.app.add_cart_item(given_an_item, now).await?;
        println!("  (at {now}: {} old carts changed by their customers after cart-cleanup's plan)", carts.len());
        Ok(())
    }
}
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
    let mut touch = None;
    let mut photographers = vec![];
    if zones.is_empty() {
        let spec = SeedSpec { users: 300, last_day, days: 40, with_unknown_zone: true, seed: 42, written_before: None };
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
        let app = backend.store.maintenance_writer();
        let kept = seed::seed_maintenance(app.as_ref(), &seeded.user_ids, first_day, last_day, 42).await?;
        // Old enough for the first cart-cleanup: five of them are changed between its plan and its work.
        let cutoff = start - Duration::days(cleanup::Ages::default().cart_days.into());
        let old: Vec<i64> = kept.carts.iter().filter(|(_, at)| *at < cutoff).map(|(id, _)| *id).collect();
        println!(
            "Seeded the rows the cleanups delete: {} carts ({} not changed for 30 days by the first day), {} \
             tokens, codes, sessions, audit logs and temporary uploads of every age.",
            kept.carts.len(),
            old.len(),
            kept.rows
        );
        let (days, keys, reminders) = seed_old_history(&backend, &seeded.user_ids[..10]).await?;
        println!(
            "Seeded last June's job history, older than the {} days kept: {keys} daily-summary keys of {days} days, \
             and {reminders} inactivity reminders' keys, which are kept whatever their age.",
            job_history_retention::DEFAULT_DAYS
        );
        simulate::analyzed(&backend).await?;
        photographers = seeded.user_ids[..3].to_vec();
        let carts = old.iter().step_by(old.len().div_ceil(5).max(1)).take(5).copied().collect();
        touch = Some(TouchCarts { app, clock: clock.clone(), carts: std::sync::Mutex::new(carts) });
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
    let meanwhile = touch.as_ref().map(|t| t as &dyn Meanwhile);
    simulate::drive(&runtimes, &clock, (start, end), None, meanwhile, |_, _, slot| slots.extend(slot)).await?;
    let days_done = simulate::by_day(&slots);
    for (i, simulate::Simulated { runtime, .. }) in runtimes.iter().enumerate() {
        if runtime.task.name() == food_recognition::NAME {
            continue; // on demand, not by slot: its own section below
        }
        println!("\n{}", runtime.task.name());
        if cleanup::NAMES.contains(&runtime.task.name()) || runtime.task.name() == job_history_retention::NAME {
            print_cleanup(runtime, i, &slots, first_day, days).await?;
            continue;
        }
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
    print_left(&backend).await?;
    analytics::print(&backend).await?;
    food(&backend, &photographers).await?;
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

/// The meal photos three users take on the demo's first run, by upload id: three meals the embedded model knows,
/// a photo of a shoe, an empty upload and a shopping list saved as a photo.
fn meal_photos() -> Vec<(&'static str, &'static [u8])> {
    let sample = |name: &str| SAMPLES.iter().find(|s| s.file == name).expect("a sample photo").bytes;
    vec![
        ("demo-salad.png", sample("salad.png")),
        ("demo-porridge.png", sample("porridge.png")),
        ("demo-chicken-rice.png", sample("chicken-rice.png")),
        ("demo-shoe.png", sample("running-shoe.png")),
        ("demo-empty.jpg", b""),
        ("demo-list.jpg", b"oats, bananas, eggs"),
    ]
}

/// food-recognition, on demand: on the first run, `users` upload the meal photos into the uploads folder (which
/// plays the bucket), and their events are worked; then each request as `jobs status` shows it.
async fn food(backend: &Backend, users: &[i64]) -> Result<()> {
    let photos = meal_photos();
    println!("\n{} (on demand: meal photos uploaded to the uploads folder)", food_recognition::NAME);
    if !users.is_empty() {
        for (i, (id, bytes)) in photos.iter().enumerate() {
            crate::requests::upload(backend, users[i % users.len()], id, bytes, backend.clock.now()).await?;
        }
        let runtime = backend.runtime(food_recognition::NAME, RuntimeSettings::default())?;
        runtime.drain().await?;
    }
    let runs = backend.store.runs();
    for (id, _) in &photos {
        if let Some(request) = runs.request(id).await? {
            println!("  {}", crate::requests::describe(&request, backend.clock.now()).replace('\n', "\n  "));
        }
    }
    println!("  Status: cargo run -p jobs -- status demo-salad.png (or --user ID); a photo of yours: jobs photo FILE --user ID");
    Ok(())
}

/// The delivery keys (and their run messages' counts) a daily summary and the inactivity reminders would have
/// left last June, for `users`: each day's, sent at 06:00 UTC; one reminder's each. No runs: the tasks' first
/// plans here would then catch up the months since. Returns (days, summary keys, reminder keys).
async fn seed_old_history(backend: &Backend, users: &[i64]) -> Result<(u64, u64, u64)> {
    let ledger = backend.store.ledger();
    let hold = std::time::Duration::from_secs(60);
    let done = |task: &'static str, keys: Vec<DeliveryKey>, at: DateTime<Utc>| {
        let ledger = ledger.clone();
        async move {
            let mut settled = vec![];
            for (key, state) in ledger.claim(task, &keys, at, hold).await? {
                if let ClaimState::Won(attempt) = state {
                    settled.push(Settled { key, attempt, settlement: Settlement::Done });
                }
            }
            ledger.settle(task, RunPart { slot: at, part: 0 }, &settled, at).await?;
            anyhow::Ok(settled.len() as u64)
        }
    };
    let subject = |user: &i64| format!("user:{user}");
    let (mut days, mut keys) = (0, 0);
    for day in NaiveDate::from_ymd_opt(2026, 6, 1).expect("a date").iter_days().take(30) {
        let slot = day.and_hms_opt(6, 0, 0).expect("06:00").and_utc();
        let period = day.pred_opt().expect("a day before").to_string();
        let day_keys = users.iter().map(|u| DeliveryKey { subject: subject(u), period: period.clone() }).collect();
        let sent = done(daily_summary::NAME, day_keys, slot).await?;
        (days, keys) = (days + 1, keys + sent);
    }
    let at = NaiveDate::from_ymd_opt(2026, 6, 10).expect("a date").and_hms_opt(18, 0, 0).expect("18:00").and_utc();
    let stretch = users.iter().map(|u| DeliveryKey { subject: subject(u), period: "2026-06-07".into() }).collect();
    let reminders = done(inactivity_reminders::NAME, stretch, at).await?;
    Ok((days, keys, reminders))
}

/// A cleanup's days: what each day's run planned, deleted, and kept because it changed after the plan, as its
/// run counted them.
async fn print_cleanup(
    runtime: &shared::runtime::JobRuntime,
    task: usize,
    slots: &[SlotDone],
    first_day: NaiveDate,
    days: u32,
) -> Result<()> {
    let name = runtime.task.name();
    println!("  {:<10} {:>5} {:>7} {:>8} {:>5}", "day", "new", "planned", "deleted", "kept");
    for day in (0..days).map(|d| first_day + Duration::days(d as i64)) {
        let fired: Vec<&SlotDone> = slots.iter().filter(|s| s.task == task && s.time.date_naive() == day).collect();
        if fired.is_empty() {
            continue;
        }
        let (mut planned, mut deleted, mut kept) = (0, 0, 0);
        for slot in &fired {
            let run_slot = Slot::new(slot.time, runtime.task.granularity()).time();
            if let Some(run) = runtime.runs.run(name, run_slot).await? {
                (planned, deleted, kept) = (planned + run.planned, deleted + run.sent, kept + run.skipped);
            }
        }
        let new = fired.iter().filter(|s| s.new).count();
        println!("  {day:<10} {new:>5} {planned:>7} {deleted:>8} {kept:>5}");
    }
    Ok(())
}

/// What the cleanups left of the app's tables.
async fn print_left(backend: &Backend) -> Result<()> {
    let app = backend.store.maintenance_writer();
    let mut left = vec![];
    for (table, name) in [
        (Swept::Carts, "carts"),
        (Swept::PasswordResetTokens, "password reset tokens"),
        (Swept::EmailVerificationTokens, "email verification tokens"),
        (Swept::OtpCodes, "OTP codes"),
        (Swept::Sessions, "sessions"),
        (Swept::AuditLogs, "audit logs"),
        (Swept::TempUploads, "temporary uploads"),
    ] {
        left.push(format!("{} {name}", app.count(table).await?));
    }
    println!("\nLeft after the cleanups: {}.", left.join(", "));
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
