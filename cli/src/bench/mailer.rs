//! daily-summary against a mailer shaped like SES after its first quota increase: each send takes `latency`,
//! and the account refuses a send as throttled when it has no token left in a bucket of `rate` tokens refilled
//! at `rate` a second. Works a day of slots with 1, 2, … function instances at once, each pacing its sends to
//! its share of the rate as a deployed function does (`SEND_RATE` / `MAX_CONCURRENCY`), and reports the sends a
//! second, the most sends started in any one second (strictly: any window of 1 s), the sends in flight, the
//! refusals (which must be none) and the Lambda GB-seconds per 1,000 emails.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::Result;
use async_trait::async_trait;
use chrono::NaiveDate;
use shared::{
    invocation::{Trigger, TriggerSource},
    limits::Pace,
    memory::{MemoryNotifier, MemoryQueue},
    ports::{Email, Mailer},
    runtime::WorkReport,
    tasks::{self, fitness::daily_summary::NAME, messages::Letterhead},
    time::VirtualClock,
};

#[derive(clap::Args)]
pub struct MailerArgs {
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Seeded once and kept, like the throughput benchmark's (a day's emails take minutes at 200 a second).
    #[arg(long, default_value = "jobs_bench_10k")]
    database: String,
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    #[arg(long, default_value = "2026-11-22")]
    day: NaiveDate,
    /// Each send's latency.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// The account's sends a second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Function instances working at once, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,5")]
    instances: Vec<usize>,
    /// The function's memory (template.yaml's MemorySize), for the GB-seconds.
    #[arg(long, default_value_t = 256)]
    memory_mb: u64,
}

/// SES's shape: a fixed latency, and a refusal for a send the account's rate has no token for.
struct ShapedMailer {
    latency: Duration,
    rate: f64,
    /// Tokens left, as of an instant.
    bucket: Mutex<(f64, Instant)>,
    /// Every accepted send's start.
    starts: Mutex<Vec<Instant>>,
    accepted: AtomicU64,
    refused: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

#[async_trait]
impl Mailer for ShapedMailer {
    async fn send(&self, _email: &Email) -> shared::Result<String> {
        let now = Instant::now();
        {
            let mut bucket = self.bucket.lock().expect("not poisoned");
            let (tokens, at) = *bucket;
            let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.rate).min(self.rate);
            if tokens < 1.0 {
                *bucket = (tokens, now);
                self.refused.fetch_add(1, Ordering::SeqCst);
                return Err(shared::Error::Retryable("Throttling: Maximum sending rate exceeded.".into()));
            }
            *bucket = (tokens - 1.0, now);
            self.starts.lock().expect("not poisoned").push(now);
        }
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let n = self.accepted.fetch_add(1, Ordering::SeqCst);
        Ok(format!("shaped-{n}"))
    }
}

/// The most starts in any window of one second.
fn most_in_a_second(starts: &[Instant]) -> usize {
    let mut starts = starts.to_vec();
    starts.sort();
    let mut first = 0;
    let mut most = 0;
    for (last, at) in starts.iter().enumerate() {
        while at.duration_since(starts[first]) >= Duration::from_secs(1) {
            first += 1;
        }
        most = most.max(last - first + 1);
    }
    most
}

pub async fn mailer(args: MailerArgs) -> Result<()> {
    let url = format!("{}/{}", args.server, args.database);
    println!(
        "{NAME} over the slots of {}, {} users, a mailer of {} ms a send and {} sends a second, {} MB functions:",
        args.day, args.users, args.latency_ms, args.rate, args.memory_mb
    );
    println!(
        "  instances  emails  work s  sends/s  most in 1 s  peak in flight  refused  instance-s  GB-s per 1,000 emails"
    );
    for &instances in &args.instances {
        let store =
            super::bench_database(&args.server, &args.database, args.users, args.day, super::HISTORY_DAYS).await?;
        let mailer = Arc::new(ShapedMailer {
            latency: Duration::from_millis(args.latency_ms),
            rate: args.rate,
            bucket: Mutex::new((args.rate, Instant::now())),
            starts: Mutex::new(vec![]),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
        });
        let start = args.day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let clock = Arc::new(VirtualClock::new(start));
        let queue = Arc::new(MemoryQueue::default());
        let letterhead = Letterhead { from: "bench@localhost".into(), signer: None, preferences: None };
        let mut runtimes = super::workers(&url, instances, NAME, queue, &clock, |worker| {
            tasks::build(NAME, &worker.deps(mailer.clone(), Arc::new(MemoryNotifier::default()), letterhead.clone()))
        })
        .await?;
        // Each instance's share of the account's rate, as `SEND_RATE` unset and `MAX_CONCURRENCY` set make it.
        for runtime in &mut runtimes {
            runtime.pace = Pace::new(Some(args.rate / instances as f64));
        }
        let schedule = runtimes[0].schedule.clone().expect("daily-summary has slots");
        let (mut work, mut busy) = (Duration::ZERO, Duration::ZERO);
        let mut total = WorkReport::default();
        for slot in schedule.fires_between(start, start + chrono::Duration::days(1)).collect::<Vec<_>>() {
            clock.set(slot);
            runtimes[0].plan(Trigger { time: slot, source: TriggerSource::Scheduler, task: None }).await?;
            let started = Instant::now();
            // Each instance's time from its first receive to its last is what Lambda bills it for.
            let drained = futures::future::try_join_all(runtimes.iter().map(|runtime| async move {
                let started = Instant::now();
                let reports = runtime.drain().await?;
                anyhow::Ok((reports, started.elapsed()))
            }))
            .await?;
            work += started.elapsed();
            for (reports, took) in drained {
                busy += took;
                for batch in reports {
                    total.merge(&batch.totals());
                }
            }
        }
        let emails = mailer.accepted.load(Ordering::SeqCst);
        let gb_seconds = busy.as_secs_f64() * args.memory_mb as f64 / 1024.0;
        println!(
            "  {instances:>9}  {emails:>6}  {:>6.1}  {:>7.1}  {:>11}  {:>14}  {:>7}  {:>10.1}  {:>21.3}",
            work.as_secs_f64(),
            emails as f64 / work.as_secs_f64(),
            most_in_a_second(&mailer.starts.lock().expect("not poisoned")),
            mailer.peak_in_flight.load(Ordering::SeqCst),
            mailer.refused.load(Ordering::SeqCst),
            busy.as_secs_f64(),
            gb_seconds * 1000.0 / emails.max(1) as f64,
        );
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE task = $1 AND status = 'done'")
            .bind(NAME)
            .fetch_one(store.pool())
            .await?;
        anyhow::ensure!(done as u64 == emails, "the ledger recorded {done} sends, the mailer took {emails}");
        if let (Some(retry), 0) = (&total.retry, mailer.refused.load(Ordering::SeqCst)) {
            anyhow::bail!("a message was left to retry with no send refused: {retry}");
        }
    }
    Ok(())
}
