//! `jobs preview <task> --user ID [--at …]`: what that user would receive from the task at that moment, in
//! every form it would take — without sending anything, claiming any delivery key, or recording a run. The
//! task works a one-user chunk against the configured database with a throwaway ledger and senders that keep
//! what they are given.

use std::{path::Path, sync::Arc};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use infra::{config::Config, wiring::Backend};
use shared::{
    deliveries::Deliveries,
    limits::{Breaker, Deadline, Pace},
    memory::{MemoryLedger, MemoryMailer, MemoryNotifier},
    ports::RunPart,
    runtime::RuntimeSettings,
    tasks::{
        self,
        local_time::{Chunk, Due},
    },
    time::{Slot, VirtualClock},
};

pub async fn run(config: Config, task: &str, user_id: i64, at: DateTime<Utc>, html_dir: &Path) -> Result<()> {
    let task = tasks::known(task)?;
    let clock = Arc::new(VirtualClock::new(at));
    let mut backend = Backend::connect(config, clock.clone()).await?;
    let (mailer, notifier) = (Arc::new(MemoryMailer::default()), Arc::new(MemoryNotifier::default()));
    (backend.mailer, backend.notifier) = (mailer.clone(), notifier.clone());
    let runtime = backend.runtime(task, RuntimeSettings::default())?;
    let (send_at, cadence) =
        runtime.task.local_time().with_context(|| format!("{task} is not sent at a local time: nothing to preview"))?;
    let contact =
        backend.store.contacts().contacts(&[user_id]).await?.pop().with_context(|| format!("no user {user_id}"))?;
    let zone: Tz = contact.time_zone.parse().map_err(|_| {
        anyhow::anyhow!("user {user_id} has the unknown time zone {:?}: they get nothing", contact.time_zone)
    })?;
    // The latest firing: today's if their send time has passed, else one of the days before.
    let local = at.with_timezone(&zone);
    let today =
        if local.time() >= send_at { local.date_naive() } else { local.date_naive() - chrono::Duration::days(1) };
    let period = cadence.latest(today);
    println!("{task} for user {user_id} ({}) at {at}: the message about {period}", contact.time_zone);

    let payload = serde_json::to_value(Chunk { users: vec![Due { id: user_id, day: period }] })?;
    let (ledger, pace, breaker) = (MemoryLedger::default(), Pace::new(None), Breaker::default());
    let slot = Slot::new(at, runtime.task.granularity());
    let deliveries = Deliveries {
        ledger: &ledger,
        clock: clock.as_ref(),
        task,
        run: RunPart { slot: slot.time(), part: 0 },
        hold: std::time::Duration::from_secs(60),
        concurrency: 1,
        deadline: Deadline::after(std::time::Duration::from_secs(3600), std::time::Duration::ZERO),
        pace: &pace,
        breaker: &breaker,
    };
    let report = runtime.task.work(slot, payload, &deliveries).await?;
    for email in mailer.sent() {
        println!("\nemail to {}\nsubject: {}\n{}", email.to, email.subject, email.text);
        std::fs::create_dir_all(html_dir)?;
        let path = html_dir.join(format!("preview-{task}-{user_id}.html"));
        std::fs::write(&path, &email.html)?;
        println!("(HTML part: {})", path.display());
    }
    for sms in notifier.sms_sent() {
        println!("\nSMS to {}\n{}", sms.to, sms.text);
    }
    for push in notifier.pushed() {
        println!("\npush to a device\n{}\n{}", push.title, push.body);
    }
    for (why, n) in &report.skipped {
        println!("\nnothing: {why} ({n})");
    }
    if let Some(until) = report.held_until {
        println!("\nheld: it is night where they are; it would go at {until}");
    }
    for error in &report.errors {
        println!("\nerror: {error}");
    }
    Ok(())
}
