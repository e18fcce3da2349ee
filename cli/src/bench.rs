//! `jobs bench`: the measurements behind BENCHMARKS.md. `throughput` runs daily-summary through plan and work
//! for every hourly slot of a day on PostgreSQL, with a null mailer and an in-memory queue, so what is timed is
//! the runtime and its SQL; `leaderboards` and `user-stats` time those tasks' slots the same way over the same
//! data; `cold-start` times a function binary from process start to its first poll of the Lambda runtime API,
//! served here by a stand-in that never answers; `carts` runs cart-cleanup over millions of carts while the app
//! keeps writing to them, and says what the app's writes waited; `food` works meal photos' events, each delivered
//! twice, through concurrent workers and a model with latency.

use std::{sync::Arc, time::Instant};

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate};
use infra::{postgres::PgStore, wiring::Store};
use shared::{
    invocation::{Trigger, TriggerSource},
    limits::Pace,
    memory::{MemoryNotifier, MemoryQueue, NullMailer},
    ports::Queue,
    runtime::{JobRuntime, RuntimeSettings, Task, WorkReport},
    tasks::{self, messages::Letterhead},
    time::VirtualClock,
};
use sqlx::{Connection, PgConnection};

use crate::seed::{self, SeedSpec};

mod analytics;
pub mod floor;
mod mailer;
mod statements;

pub use analytics::AnalyticsArgs;
pub use floor::FloorArgs;
pub use mailer::MailerArgs;
pub use statements::StatementsArgs;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Users per second through plan + work, and peak memory.
    Throughput(Args),
    /// The floor under throughput: one set-based statement computing every summary's numbers, writing nothing.
    Floor(FloorArgs),
    /// daily-summary against a mailer with SES's latency and rate limit, with 1, 2, … instances: sends a second,
    /// sends in flight, refusals (none) and GB-seconds per 1,000 emails.
    Mailer(MailerArgs),
    /// Process start to the first poll of the runtime API.
    ColdStart(ColdStartArgs),
    /// Building a month's standings (monthly-report's ranks) over the throughput benchmark's data.
    Standings(StandingsArgs),
    /// Next-fire-time evaluations per second for representative schedule expressions.
    NextFire,
    /// subscription-processing: due subscriptions a second through 4 workers and a gateway with latency, and
    /// the duplicate orders and charges (which must be none).
    Subscriptions(SubscriptionArgs),
    /// cart-cleanup over millions of carts through 4 workers: rows deleted a second, the longest delete
    /// transaction, and the latency of the app's writes to carts before and during the cleanup.
    Carts(CartArgs),
    /// leaderboards: consecutive 3-hourly slots over the throughput benchmark's data (seeded if missing), each
    /// building every global board and active challenge's standings, and switching to them.
    Leaderboards(AnalyticsArgs),
    /// user-stats: the first night (every user's stats computed) and the next (those who trained since), over
    /// the throughput benchmark's data (seeded if missing).
    UserStats(AnalyticsArgs),
    /// food-recognition: meal photos a second through concurrent workers and a model with latency, each event
    /// delivered twice; the model's calls and the entries saved (one each per photo).
    Food(FoodArgs),
    /// The embedded store: µs a statement through its connection and through a sqlx pool of one, on one core.
    Statements(StatementsArgs),
}

pub async fn run(bench: Bench) -> Result<()> {
    match bench {
        Bench::Throughput(args) => throughput(args).await,
        Bench::Floor(args) => floor::floor(args).await,
        Bench::Mailer(args) => mailer::mailer(args).await,
        Bench::ColdStart(args) => cold_start(args).await,
        Bench::Standings(args) => standings(args).await,
        Bench::Subscriptions(args) => subscriptions(args).await,
        Bench::Carts(args) => carts(args).await,
        Bench::Leaderboards(args) => analytics::leaderboards(args).await,
        Bench::Statements(args) => statements::statements(args).await,
        Bench::UserStats(args) => analytics::user_stats(args).await,
        Bench::Food(args) => food(args).await,
        Bench::NextFire => {
            next_fire();
            Ok(())
        }
    }
}

/// The throughput benchmark's data, which `floor` computes over too.
#[derive(clap::Args)]
pub struct Data {
    /// The PostgreSQL server; the benchmark makes and keeps its own database there.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    #[arg(long, default_value = "jobs_bench")]
    database: String,
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// The last day of the seeded workouts, and the UTC day the run's slots start at.
    #[arg(long, default_value = "2026-11-22")]
    day: NaiveDate,
    /// Days of workouts seeded up to `day`: how much history each user has (a database seeded with another
    /// is seeded again, so give each its own `--database`).
    #[arg(long, default_value_t = HISTORY_DAYS, value_parser = clap::value_parser!(u32).range(1..))]
    history_days: u32,
}

impl Data {
    /// The database, seeded if missing, its job tables emptied and vacuumed.
    async fn store(&self) -> Result<Arc<PgStore>> {
        bench_database(&self.server, &self.database, self.users, self.day, self.history_days).await
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: Data,
    /// The task whose slots are run.
    #[arg(long, default_value = "daily-summary")]
    task: String,
    /// Hours of slots from the day's start: 24 for a daily task; 48 reaches every zone's Monday 08:00 for
    /// weekly-report from a Sunday.
    #[arg(long, default_value_t = 24)]
    hours: i64,
}

#[derive(clap::Args)]
pub struct SubscriptionArgs {
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Made afresh on each run.
    #[arg(long, default_value = "jobs_bench_shop")]
    database: String,
    #[arg(long, default_value_t = 100_000)]
    subscriptions: usize,
    /// Concurrent workers, each with its own connection pool, as Lambda instances would be.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// The fake gateway's latency per charge.
    #[arg(long, default_value_t = 5)]
    latency_ms: u64,
}

/// Seeds `subscriptions` due subscriptions (five per user, across ten products with stock for all), plans the
/// day into an in-memory queue, then times `workers` runtimes draining it at once; checks one order and one
/// charge per subscription.
async fn subscriptions(args: SubscriptionArgs) -> Result<()> {
    use infra::payments::FakeGateway;
    use shared::{memory::MemoryOrderEvents, ports::NewProduct, tasks::shop::subscription_processing::NAME};
    let (url, store) = fresh_database(&args.server, &args.database).await?;
    let store = Store::Postgres(Arc::new(store));
    let day = NaiveDate::from_ymd_opt(2026, 12, 1).expect("a date");
    let started = Instant::now();
    let user_ids = store.writer().add_users(&users("customer", args.subscriptions.div_ceil(5))).await?;
    let products: Vec<NewProduct> = (0..10)
        .map(|i| NewProduct {
            name: format!("Product {i}"),
            price_cents: 10_000 + i * 1_000,
            currency: "INR".into(),
            stock: args.subscriptions as i64 * 3,
        })
        .collect();
    let product_ids = store.shop_writer().add_products(&products).await?;
    let subscriptions: Vec<_> = (0..args.subscriptions)
        .map(|i| shared::ports::NewSubscription {
            user_id: user_ids[i / 5],
            product_id: product_ids[i % product_ids.len()],
            quantity: 1 + (i % 3) as i64,
            frequency: ["weekly", "monthly"][i % 2].into(),
            interval_days: None,
            anchor_day: Some(1),
            next_delivery_date: day,
            payment_method: format!("pm_card_{i}"),
        })
        .collect();
    store.shop_writer().add_subscriptions(&subscriptions).await?;
    let Store::Postgres(pg) = &store else { unreachable!("made on PostgreSQL") };
    sqlx::query("ANALYZE").execute(pg.pool()).await?;
    println!("seeded {} subscriptions in {:.1} s", args.subscriptions, started.elapsed().as_secs_f64());

    let gateway = Arc::new(FakeGateway::new(std::time::Duration::from_millis(args.latency_ms)));
    let events = Arc::new(MemoryOrderEvents::default());
    let queue = Arc::new(MemoryQueue::default());
    let clock = Arc::new(VirtualClock::new(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()));
    let runtimes = workers(&url, args.workers, NAME, queue.clone(), &clock, |worker| {
        let deps =
            tasks::Deps { payments: Some(gateway.clone()), order_events: Some(events.clone()), ..null_deps(worker) };
        tasks::build(NAME, &deps)
    })
    .await?;
    let started = Instant::now();
    let trigger =
        Trigger { time: shared::time::Clock::now(clock.as_ref()), source: TriggerSource::Scheduler, task: None };
    let plan = runtimes[0].plan(trigger).await?;
    let plan_time = started.elapsed().as_secs_f64();
    let reports = futures::future::try_join_all(runtimes.iter().map(|runtime| runtime.drain())).await?;
    let seconds = started.elapsed().as_secs_f64();
    let mut total = WorkReport::default();
    for batch in reports.iter().flatten() {
        total.merge(&batch.totals());
    }

    let (orders, distinct, paid, charged_twice): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders),
                (SELECT count(DISTINCT (subscription_id, delivery_date)) FROM orders),
                (SELECT count(*) FROM payments WHERE status = 'succeeded'),
                (SELECT count(*) FROM (SELECT order_id FROM payments WHERE status = 'succeeded'
                                       GROUP BY order_id HAVING count(*) > 1) twice)",
    )
    .fetch_one(pg.pool())
    .await?;
    let charges = gateway.charges();
    let keys: std::collections::HashSet<&str> = charges.iter().map(|c| c.key.as_str()).collect();
    println!(
        "{NAME}: {} due subscriptions, {} workers, gateway latency {} ms, PostgreSQL:",
        plan.planned, args.workers, args.latency_ms
    );
    println!("  plan            {plan_time:.2} s ({} messages)", plan.messages);
    println!("  plan + work     {seconds:.2} s");
    // Charged, not planned: a message left waiting for a retry (the in-memory queue never brings it back)
    // would otherwise count as done.
    println!("  throughput      {:.0} subscriptions charged a second", paid as f64 / seconds);
    println!(
        "  charged         {} (report), {paid} payments succeeded, {} gateway charges of {} keys",
        total.sent,
        charges.len(),
        keys.len()
    );
    println!("  orders          {orders}, {distinct} distinct (subscription, date)");
    println!("  duplicates      {} orders, {charged_twice} orders charged twice", orders - distinct);
    println!("  events          {} published", events.published().len());
    println!("  peak RSS        {} MiB (VmHWM of this process, seeding included)", peak_rss_mib());
    anyhow::ensure!(orders == distinct && charged_twice == 0 && charges.len() == keys.len(), "duplicates found");
    anyhow::ensure!(
        paid as u64 == plan.planned,
        "{} of {} subscriptions were not charged",
        plan.planned - paid as u64,
        plan.planned
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct FoodArgs {
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Made afresh on each run.
    #[arg(long, default_value = "jobs_bench_food")]
    database: String,
    #[arg(long, default_value_t = 5_000)]
    photos: usize,
    /// Concurrent workers, each with its own connection pool, as Lambda instances would be.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// The model's latency per photo.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

/// The embedded model with a latency, counting its calls.
struct CountedModel {
    latency: std::time::Duration,
    calls: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl shared::ports::FoodRecognizer for CountedModel {
    async fn recognize(
        &self,
        photo: &shared::ports::Photo,
    ) -> Result<shared::ports::Recognition, shared::ports::RecognizeError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(self.latency).await;
        infra::food::SampleRecognizer.recognize(photo).await
    }

    fn timeout(&self) -> std::time::Duration {
        self.latency + std::time::Duration::from_secs(1)
    }
}

/// Uploads `photos` sample photos (five per user) to a temporary uploads folder, queues each one's event twice
/// (S3 and EventBridge deliver at least once), then times `workers` runtimes draining the queue at once; checks
/// one model call and one entry per photo.
async fn food(args: FoodArgs) -> Result<()> {
    use infra::food::{LocalUploads, SAMPLES};
    use shared::{ports::Queue, tasks::fitness::food_recognition::NAME};
    let (url, store) = fresh_database(&args.server, &args.database).await?;
    let store = Store::Postgres(Arc::new(store));
    let user_ids = store.writer().add_users(&users("eater", args.photos.div_ceil(5))).await?;
    let dir = std::env::temp_dir().join(format!("jobs-bench-food-{}", std::process::id()));
    let uploads = LocalUploads::new(&dir);
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::default());
    let clock = Arc::new(VirtualClock::new("2026-12-01T12:00:00Z".parse().expect("an instant")));
    let now = shared::time::Clock::now(clock.as_ref());
    for i in 0..args.photos {
        let meal = &SAMPLES[i % 3];
        uploads.put(&queue, user_ids[i / 5], &format!("photo-{i}.png"), meal.bytes, now).await?;
        let key = format!("food/{}/photo-{i}.png", user_ids[i / 5]);
        queue.send_batch(&[LocalUploads::event(&key, meal.bytes.len() as u64, now).to_string()]).await?;
    }
    let model = Arc::new(CountedModel {
        latency: std::time::Duration::from_millis(args.latency_ms),
        calls: std::sync::atomic::AtomicU64::new(0),
    });
    let runtimes = workers(&url, args.workers, NAME, queue.clone(), &clock, |worker| {
        let deps = tasks::Deps {
            photos: Some(Arc::new(LocalUploads::new(&dir))),
            recognizer: Some(model.clone()),
            ..null_deps(worker)
        };
        tasks::build(NAME, &deps)
    })
    .await?;
    let started = Instant::now();
    let reports = futures::future::try_join_all(runtimes.iter().map(|runtime| runtime.drain())).await?;
    let seconds = started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&dir)?;
    let deliveries: usize = reports.iter().flatten().map(|batch| batch.messages.len()).sum();
    let Store::Postgres(pg) = &store else { unreachable!("made on PostgreSQL") };
    let (entries, succeeded): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM food_entries), (SELECT count(*) FROM job_requests WHERE state = 'succeeded')",
    )
    .fetch_one(pg.pool())
    .await?;
    let calls = model.calls.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{NAME}: {} photos, each event delivered twice, {} workers, model latency {} ms, PostgreSQL:",
        args.photos, args.workers, args.latency_ms
    );
    println!("  work            {seconds:.2} s ({deliveries} deliveries)");
    println!("  throughput      {:.0} photos recognised a second", succeeded as f64 / seconds);
    println!("  model calls     {calls}; entries {entries}; requests succeeded {succeeded}");
    println!("  peak RSS        {} MiB (VmHWM of this process, seeding included)", peak_rss_mib());
    anyhow::ensure!(calls as usize == args.photos, "{calls} model calls for {} photos", args.photos);
    anyhow::ensure!(entries as usize == args.photos && succeeded as usize == args.photos, "a photo was lost");
    Ok(())
}

#[derive(clap::Args)]
pub struct CartArgs {
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Made afresh on each run.
    #[arg(long, default_value = "jobs_bench_carts")]
    database: String,
    /// Carts in all; three in five of them have one or two items.
    #[arg(long, default_value_t = 5_000_000)]
    carts: u64,
    /// Of those, not updated for over 30 days (spread evenly over the ids): what cart-cleanup deletes.
    #[arg(long, default_value_t = 1_000_000)]
    stale: u64,
    /// Concurrent workers, each with its own connection pool, as Lambda instances would be.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// The app: connections updating a random cart's updated_at, one statement at a time, as fast as they can.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Seconds the writers run alone before the cleanup starts: their latency without it.
    #[arg(long, default_value_t = 10)]
    baseline_secs: u64,
    /// Candidates per planned message.
    #[arg(long, default_value_t = shared::tasks::maintenance::cleanup::RANGE_ROWS)]
    range_rows: u32,
    /// Rows per delete transaction.
    #[arg(long, default_value_t = shared::tasks::maintenance::cleanup::BATCH_ROWS)]
    batch_rows: u32,
}

/// A sweeper that times each delete transaction, from its BEGIN to its COMMIT's answer: how long it can have
/// held the rows it deletes.
struct Timed {
    inner: Arc<dyn shared::ports::Sweeper>,
    batches: Arc<std::sync::Mutex<Vec<std::time::Duration>>>,
}

#[async_trait::async_trait]
impl shared::ports::Sweeper for Timed {
    async fn ranges(
        &self,
        sweep: shared::ports::Sweep,
        cutoff: chrono::DateTime<chrono::Utc>,
        max_rows_per_range: u32,
    ) -> shared::Result<Vec<shared::ports::Range>> {
        self.inner.ranges(sweep, cutoff, max_rows_per_range).await
    }

    async fn sweep_batch(
        &self,
        pick: &shared::ports::Pick,
        task: &str,
        run: shared::ports::RunPart,
    ) -> shared::Result<shared::ports::Batch> {
        let started = Instant::now();
        let batch = self.inner.sweep_batch(pick, task, run).await;
        self.batches.lock().expect("timings lock").push(started.elapsed());
        batch
    }
}

/// The database `database` on `server` made afresh and migrated: its URL and a store on it.
async fn fresh_database(server: &str, database: &str) -> Result<(String, PgStore)> {
    let url = format!("{server}/{database}");
    let mut admin = PgConnection::connect(&format!("{server}/postgres")).await.context("connecting to PostgreSQL")?;
    let database = database.replace('"', "");
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)")).execute(&mut admin).await?;
    sqlx::query(&format!("CREATE DATABASE \"{database}\"")).execute(&mut admin).await?;
    let store = PgStore::connect(&url).await?;
    store.migrate().await?;
    Ok((url, store))
}

/// `n` workers of `name` on one queue and clock, as many concurrent function instances: each its own
/// connection pool, the task `build` makes over it, and the runtime's defaults.
async fn workers(
    url: &str,
    n: usize,
    name: &str,
    queue: Arc<dyn Queue>,
    clock: &Arc<VirtualClock>,
    build: impl Fn(&Store) -> shared::Result<Arc<dyn Task>>,
) -> Result<Vec<JobRuntime>> {
    let mut runtimes = vec![];
    for _ in 0..n {
        let worker = Store::Postgres(Arc::new(PgStore::connect(url).await?));
        runtimes.push(JobRuntime {
            task: build(&worker)?,
            schedule: tasks::schedule(name)?,
            runs: worker.runs(),
            ledger: worker.ledger(),
            queue: queue.clone(),
            clock: clock.clone(),
            pace: Pace::new(None),
            settings: RuntimeSettings::default(),
        });
    }
    Ok(runtimes)
}

/// What a benchmark's task needs from `worker`, sending to nowhere.
fn null_deps(worker: &Store) -> tasks::Deps {
    let letterhead = Letterhead { from: "bench@localhost".into(), signer: None, preferences: None };
    worker.deps(Arc::new(NullMailer::default()), Arc::new(MemoryNotifier::default()), letterhead)
}

/// `n` users named `<who> <i>` in one zone, for the benchmarks that need only someone to act for.
fn users(who: &str, n: usize) -> Vec<shared::ports::NewUser> {
    (0..n)
        .map(|i| shared::ports::NewUser {
            name: format!("{who} {i}"),
            email: format!("{who}{i}@example.com"),
            phone: None,
            time_zone: "Asia/Kolkata".into(),
            email_opt_in: true,
        })
        .collect()
}

/// Latencies in microseconds, as `n, p50, p99, max` in milliseconds.
fn latencies(mut micros: Vec<u64>) -> String {
    if micros.is_empty() {
        return "none".into();
    }
    micros.sort_unstable();
    let at = |p: f64| micros[((micros.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    format!("{} writes, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", micros.len(), at(0.5), at(0.99), at(1.0))
}

/// Seeds `carts` carts (`stale` of them not updated for over 30 days) and their items with `generate_series`,
/// starts the writers, and after their baseline runs cart-cleanup's slot of today through `workers` runtimes
/// on an in-memory queue; reports the deletions a second, the delete transactions' times, and the writers'
/// latency before and during the cleanup. Checks that no stale cart is left and that the run counted every
/// candidate as deleted or kept.
async fn carts(args: CartArgs) -> Result<()> {
    use shared::tasks::maintenance::cleanup::{Ages, Cleanup, CART_CLEANUP};
    use std::sync::atomic::{AtomicU8, Ordering};
    anyhow::ensure!(args.stale <= args.carts && args.carts > 0, "--stale must be at most --carts");
    let (url, store) = fresh_database(&args.server, &args.database).await?;
    let pool = store.pool().clone();

    // Today's cart-cleanup: its cutoff is 30 days before today, 00:00 UTC.
    let day = chrono::Utc::now().date_naive();
    let slot = day.and_hms_opt(2, 0, 0).expect("02:00").and_utc();
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let cutoff = midnight - Duration::days(Ages::default().cart_days.into());
    let started = Instant::now();
    // Cart g is stale when the stale count steps up at g: exactly `stale` of them, evenly spread. Stale ones were
    // last changed 31 to 120 days before today, the others within the last 29; two in five have no items.
    sqlx::query(
        "INSERT INTO carts (id, user_id, created_at, updated_at)
         SELECT g, NULL, t, t FROM generate_series(1, $1::bigint) g,
         LATERAL (SELECT CASE WHEN (g * $2) / $1 <> ((g - 1) * $2) / $1
                              THEN $3::timestamptz - make_interval(days => 31 + (g % 90)::int, secs => (g % 86400)::int)
                              ELSE $3::timestamptz - make_interval(days => (g % 29)::int, secs => (g % 86400)::int)
                         END AS t) stamp",
    )
    .bind(args.carts as i64)
    .bind(args.stale as i64)
    .bind(midnight)
    .execute(&pool)
    .await?;
    sqlx::query("SELECT setval(pg_get_serial_sequence('carts', 'id'), $1)")
        .bind(args.carts as i64)
        .execute(&pool)
        .await?;
    sqlx::query(
        "INSERT INTO cart_items (cart_id, product_id, quantity, added_at)
         SELECT c.id, p, 1, c.updated_at FROM carts c, generate_series(1, 1 + (c.id % 2)::int) p
         WHERE c.id % 5 >= 2",
    )
    .execute(&pool)
    .await?;
    sqlx::query("VACUUM ANALYZE carts, cart_items").execute(&pool).await?;
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM cart_items").fetch_one(&pool).await?;
    println!(
        "seeded {} carts ({} stale) and {items} items in {:.1} s",
        args.carts,
        args.stale,
        started.elapsed().as_secs_f64()
    );

    // The app: each writer its own connection, one UPDATE at a time; phase 0 baseline, 1 during, 2 stop.
    let phase = Arc::new(AtomicU8::new(0));
    let mut writers = vec![];
    for n in 0..args.writers {
        let mut conn = PgConnection::connect(&url).await?;
        let (phase, carts) = (phase.clone(), args.carts);
        writers.push(tokio::spawn(async move {
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
            let (mut before, mut during) = (vec![], vec![]);
            loop {
                let now = phase.load(Ordering::SeqCst);
                if now == 2 {
                    return Ok::<_, sqlx::Error>((before, during));
                }
                let id = rng.random_range(1..=carts as i64);
                let started = Instant::now();
                sqlx::query("UPDATE carts SET updated_at = now() WHERE id = $1").bind(id).execute(&mut conn).await?;
                let micros = started.elapsed().as_micros() as u64;
                if now == 0 {
                    before.push(micros)
                } else {
                    during.push(micros)
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_secs(args.baseline_secs)).await;
    phase.store(1, Ordering::SeqCst);

    let queue = Arc::new(MemoryQueue::default());
    let clock = Arc::new(VirtualClock::new(slot));
    let timings = Arc::new(std::sync::Mutex::new(vec![]));
    let runtimes = workers(&url, args.workers, CART_CLEANUP, queue.clone(), &clock, |worker| {
        let sweeper = Arc::new(Timed { inner: worker.sweeper(), batches: timings.clone() });
        let task = Cleanup::new(CART_CLEANUP, sweeper, &Ages::default()).expect("cart-cleanup is a cleanup");
        Ok(Arc::new(Cleanup { range_rows: args.range_rows, batch_rows: args.batch_rows, ..task }) as Arc<dyn Task>)
    })
    .await?;
    let started = Instant::now();
    let plan = runtimes[0].plan(Trigger { time: slot, source: TriggerSource::Scheduler, task: None }).await?;
    let plan_time = started.elapsed().as_secs_f64();
    futures::future::try_join_all(runtimes.iter().map(|runtime| runtime.drain())).await?;
    let seconds = started.elapsed().as_secs_f64();
    phase.store(2, Ordering::SeqCst);
    let (mut before, mut during) = (vec![], vec![]);
    for writer in writers {
        let (b, d) = writer.await??;
        before.extend(b);
        during.extend(d);
    }

    let run = runtimes[0].runs.run(CART_CLEANUP, midnight).await?.context("the run of today's slot")?;
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM carts WHERE updated_at < $1").bind(cutoff).fetch_one(&pool).await?;
    let mut batches = std::mem::take(&mut *timings.lock().expect("timings lock"));
    batches.sort_unstable();
    let batch_ms = |p: f64| {
        batches.get(((batches.len().max(1) - 1) as f64 * p).round() as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{CART_CLEANUP}: {} carts, {} stale, {} workers, ranges of {}, batches of {}, {} writers, PostgreSQL:",
        args.carts, args.stale, args.workers, args.range_rows, args.batch_rows, args.writers
    );
    println!("  plan            {plan_time:.2} s ({} candidates in {} messages)", plan.planned, plan.messages);
    println!("  plan + work     {seconds:.2} s");
    println!(
        "  deleted         {} carts ({:.0} a second), {} kept (touched by the writers since the plan)",
        run.sent,
        run.sent as f64 / seconds,
        run.skipped
    );
    println!(
        "  delete txns     {}: p50 {:.1} ms, p99 {:.1} ms, longest {:.1} ms",
        batches.len(),
        batch_ms(0.5),
        batch_ms(0.99),
        batch_ms(1.0)
    );
    println!("  writes before   {}", latencies(before));
    println!("  writes during   {}", latencies(during));
    println!("  peak RSS        {} MiB (VmHWM of this process, seeding included)", peak_rss_mib());
    anyhow::ensure!(left == 0, "{left} carts older than the cutoff are left");
    anyhow::ensure!(
        run.status == "done" && run.sent + run.skipped == plan.planned,
        "the run is {} with {} deleted and {} kept of {} candidates: a message was left for a retry",
        run.status,
        run.sent,
        run.skipped,
        plan.planned
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct StandingsArgs {
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/jobs_bench")]
    database_url: String,
    /// The month's first day.
    #[arg(long, default_value = "2026-11-01")]
    month: NaiveDate,
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// Times building a month's standings over the benchmark data (seeded by `bench throughput`), from scratch each
/// run: the one set-based statement every monthly report's rank comes from.
async fn standings(args: StandingsArgs) -> Result<()> {
    let store = PgStore::connect(&args.database_url).await.context("connecting to the benchmark database")?;
    store.migrate().await?;
    let monthly = Store::Postgres(Arc::new(store)).monthly_reports();
    let mut db = PgConnection::connect(&args.database_url).await?;
    for run in 1..=args.runs {
        sqlx::query("DELETE FROM month_standings WHERE month = $1").bind(args.month).execute(&mut db).await?;
        sqlx::query("DELETE FROM standings_months WHERE month = $1").bind(args.month).execute(&mut db).await?;
        let started = Instant::now();
        let ranked = monthly.build_standings(args.month, chrono::Utc::now()).await?;
        println!("run {run}: {ranked} users ranked for {} in {:.2} s", args.month, started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Days of workouts the benchmark data has by default: a month.
pub(crate) const HISTORY_DAYS: u32 = 30;

/// The benchmark database on `server`, made when missing, with `users` seeded users who trained over the
/// `history_days` up to `day` (seeded again, from an empty schema, when it holds another number of users or
/// a history of another length), its job and analytics tables emptied and its statistics fresh.
pub(crate) async fn bench_database(
    server: &str,
    database: &str,
    users: usize,
    day: NaiveDate,
    history_days: u32,
) -> Result<Arc<PgStore>> {
    let url = format!("{server}/{database}");
    let seeded = existing_data(server, database, users, history_days, &url).await?;
    let store = Arc::new(PgStore::connect(&url).await.context("connecting to the benchmark database")?);
    store.migrate().await?;
    if !seeded {
        let started = Instant::now();
        let spec = SeedSpec {
            users,
            last_day: day,
            days: history_days,
            with_unknown_zone: false,
            seed: 7,
            written_before: None,
        };
        let seeded = seed::seed(store.as_ref(), store.as_ref(), &spec).await?;
        println!(
            "seeded {} users, {} workouts, {} sets in {:.1} s",
            seeded.users,
            seeded.workouts,
            seeded.sets,
            started.elapsed().as_secs_f64()
        );
    }
    if !in_time_order(&store).await? {
        let started = Instant::now();
        lay_out_in_time_order(&store).await?;
        println!("laid the workouts and their sets out in time order in {:.1} s", started.elapsed().as_secs_f64());
    }
    sqlx::query(
        "TRUNCATE job_runs, run_messages, deliveries, leases, period_plans, month_standings, standings_months,
                  boards_current, board_entries, board_versions, user_stats",
    )
    .execute(store.pool())
    .await?;
    // As autovacuum would have by the time a production table is read: planner statistics for the fresh data,
    // and a visibility map, without which no index-only scan is (seeding updates every user once).
    sqlx::query("VACUUM ANALYZE").execute(store.pool()).await?;
    Ok(store)
}

/// Whether the workouts sit on disk in time order, as the statistics of the last analysis saw them (a database
/// seeded before its layout was, or never analysed, is not).
async fn in_time_order(store: &PgStore) -> Result<bool> {
    let correlation: Option<f32> = sqlx::query_scalar(
        "SELECT correlation FROM pg_stats WHERE schemaname = 'public' AND tablename = 'workouts'
         AND attname = 'started_at'",
    )
    .fetch_optional(store.pool())
    .await?
    .flatten();
    Ok(correlation.is_some_and(|c| c > 0.99))
}

/// Lays the workouts and their sets out as the app writes them, as they happen: a day's workouts, and their
/// sets, together on disk and in the indexes of their ids. The seed writes them user by user, so a day's were
/// spread over every page of both tables and of the sets' index, and a day's work read most of them (from the
/// OS's cache, past a default `shared_buffers`). Every value stays; ids are given again in time order (each
/// workout's sets keep their order).
async fn lay_out_in_time_order(store: &PgStore) -> Result<()> {
    let mut tx = store.pool().begin().await?;
    for statement in [
        "CREATE TEMP TABLE renumbered ON COMMIT DROP AS
         SELECT id AS old, row_number() OVER (ORDER BY started_at, id) AS new FROM workouts",
        "CREATE INDEX ON renumbered (old)",
        "CREATE TEMP TABLE new_workouts ON COMMIT DROP AS
         SELECT r.new AS id, w.user_id, w.name, w.started_at, w.local_date, w.duration_minutes, w.calories
         FROM workouts w JOIN renumbered r ON r.old = w.id",
        "CREATE TEMP TABLE new_sets ON COMMIT DROP AS
         SELECT row_number() OVER (ORDER BY r.new, s.id) AS id, r.new AS workout_id, s.exercise_id, s.weight_kg,
                s.reps, s.personal_record
         FROM workout_sets s JOIN renumbered r ON r.old = s.workout_id",
        "TRUNCATE workouts, workout_sets",
        "INSERT INTO workouts SELECT * FROM new_workouts ORDER BY id",
        "INSERT INTO workout_sets SELECT * FROM new_sets ORDER BY id",
    ] {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A task's runtime over the benchmark store: an in-memory queue, a null mailer, a virtual clock.
pub(crate) fn bench_runtime(store: &Arc<PgStore>, task: &str, clock: Arc<VirtualClock>) -> Result<JobRuntime> {
    let deps = null_deps(&Store::Postgres(store.clone()));
    let task = tasks::known(task)?;
    Ok(JobRuntime {
        task: tasks::build(task, &deps)?,
        schedule: tasks::schedule(task)?,
        runs: store.clone(),
        ledger: store.clone(),
        queue: Arc::new(MemoryQueue::default()),
        clock,
        pace: Pace::new(None),
        settings: RuntimeSettings::default(),
    })
}

async fn throughput(args: Args) -> Result<()> {
    let store = args.data.store().await?;
    let mailer = Arc::new(NullMailer::default());
    let start = args.data.day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let clock = Arc::new(VirtualClock::new(start));
    let letterhead = Letterhead { from: "bench@localhost".into(), signer: None, preferences: None };
    let deps = Store::Postgres(store.clone()).deps(mailer.clone(), Arc::new(MemoryNotifier::default()), letterhead);
    let task = tasks::known(&args.task)?;
    // The null mailer is this one, so that its count can be shown.
    let runtime = JobRuntime { task: tasks::build(task, &deps)?, ..bench_runtime(&store, task, clock.clone())? };

    // A day of production finds the ledger full of the days before, with statistics to
    // match: the same hours of the day before run first, untimed, and are analysed.
    let warm = Slots::run(&runtime, &clock, start - Duration::days(1), start).await?;
    let emailed_before = mailer.count();
    sqlx::query("ANALYZE deliveries, job_runs, run_messages").execute(store.pool()).await?;
    // The day before's dirty pages written out now, not by a checkpoint in the middle of the timed run; and every
    // page the run changes then writes its full image to the WAL once, in every run alike. (CHECKPOINT needs a
    // superuser or pg_checkpoint: without, the run goes on as the server's own checkpoints fall.)
    if let Err(e) = sqlx::query("CHECKPOINT").execute(store.pool()).await {
        println!("  (no checkpoint before the run: {e})");
    }
    // From here the peak is the timed run's own, not the seeding's (Linux: "5" resets VmHWM).
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let cpu_before = Cpu::now();
    // The WAL the run wrote (its writes, and the full-page images of the checkpoints they caused): a count
    // that does not move with the machine's speed, as timings here do.
    let wal_before: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text").fetch_one(store.pool()).await?;
    let slots = Slots::run(&runtime, &clock, start, start + Duration::hours(args.hours)).await?;
    let cpu = cpu_before.zip(Cpu::now()).map(|(before, after)| after.since(before));
    let wal: f64 = sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8")
        .bind(&wal_before)
        .fetch_one(store.pool())
        .await?;
    let seconds = slots.plan_time + slots.work_time;
    println!("{task} over the slots of ({start}, {}], PostgreSQL, null mailer:", start + Duration::hours(args.hours));
    println!("  (the day before ran first, untimed: {} users, {} sent)", warm.planned, warm.total.sent);
    println!("  users planned   {} in {} messages", slots.planned, slots.messages);
    // Sent on every channel (a task may push or text), of which the null mailer took the emails.
    println!(
        "  sent            {} (emails the null mailer took: {})",
        slots.total.sent,
        mailer.count() - emailed_before
    );
    println!("  skipped         {:?}", slots.total.skipped);
    println!("  plan            {:.2} s", slots.plan_time);
    println!("  work            {:.2} s", slots.work_time);
    println!("  throughput      {:.0} users/s through plan + work", slots.planned as f64 / seconds);
    if let Some(Cpu { process, machine, busy }) = cpu {
        println!(
            "  CPU             this process {process:.2} s; the machine {busy:.2} s busy of {machine:.2} s (all cores)"
        );
    }
    println!("  WAL written     {:.1} MiB", wal / (1024.0 * 1024.0));
    let scope = if peak_reset { "the timed run only" } else { "seeding included: could not reset it" };
    println!("  peak RSS        {} MiB (VmHWM of this process, {scope})", peak_rss_mib());
    Ok(())
}

/// What a task's slots in a range did, and the time their plans and their work took.
#[derive(Default)]
struct Slots {
    plan_time: f64,
    work_time: f64,
    planned: u64,
    messages: u64,
    total: WorkReport,
}

impl Slots {
    /// Plans each slot in `(after, until]` at its time and drains its messages before the next.
    async fn run(
        runtime: &JobRuntime,
        clock: &VirtualClock,
        after: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Slots> {
        let name = runtime.task.name();
        let schedule =
            runtime.schedule.clone().with_context(|| format!("{name} is started by events: it has no slots"))?;
        let mut slots = Slots::default();
        for slot in schedule.fires_between(after, until).collect::<Vec<_>>() {
            clock.set(slot);
            let started = Instant::now();
            let plan = runtime.plan(Trigger { time: slot, source: TriggerSource::Scheduler, task: None }).await?;
            slots.plan_time += started.elapsed().as_secs_f64();
            slots.planned += plan.planned;
            slots.messages += plan.messages;
            let started = Instant::now();
            for batch in runtime.drain().await? {
                slots.total.merge(&batch.totals());
            }
            slots.work_time += started.elapsed().as_secs_f64();
        }
        Ok(slots)
    }
}

/// Whether the benchmark database holds `wanted` users with `history_days` of workouts (within a week: the
/// first and last days are those someone trained on), creating the database when it is missing and emptying its
/// schema when it holds other data. The data's last day is not compared: a run may start on a later day.
async fn existing_data(server: &str, database: &str, wanted: usize, history_days: u32, url: &str) -> Result<bool> {
    let mut admin = PgConnection::connect(&format!("{server}/postgres")).await.context("connecting to PostgreSQL")?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(database)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE \"{}\"", database.replace('"', ""))).execute(&mut admin).await?;
        return Ok(false);
    }
    let mut db = PgConnection::connect(url).await?;
    let found: Option<(i64, Option<i32>)> = sqlx::query_as(
        "SELECT (SELECT count(*) FROM users), (SELECT max(local_date) - min(local_date) + 1 FROM workouts)",
    )
    .fetch_one(&mut db)
    .await
    .ok();
    match found {
        Some((users, Some(days))) if users == wanted as i64 && days.abs_diff(history_days as i32) < 7 => Ok(true),
        Some(_) => {
            // Another size or history: start again from an empty schema.
            sqlx::query("DROP SCHEMA public CASCADE").execute(&mut db).await?;
            sqlx::query("CREATE SCHEMA public").execute(&mut db).await?;
            Ok(false)
        }
        None => Ok(false),
    }
}

/// CPU time, from Linux's /proc: this process's (its threads' time on a CPU), and the whole machine's, busy and
/// in all (every core's; PostgreSQL's share is most of the difference).
#[derive(Clone, Copy)]
struct Cpu {
    process: f64,
    machine: f64,
    busy: f64,
}

impl Cpu {
    fn now() -> Option<Cpu> {
        let process = std::fs::read_to_string("/proc/self/schedstat").ok()?;
        let process = process.split_whitespace().next()?.parse::<f64>().ok()? / 1e9;
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        // "cpu user nice system idle iowait irq softirq steal …", in USER_HZ (100 a second on Linux).
        let ticks: Vec<f64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
        let machine = ticks.iter().take(8).sum::<f64>() / 100.0;
        let idle = (ticks.get(3)? + ticks.get(4)?) / 100.0;
        Some(Cpu { process, machine, busy: machine - idle })
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            process: self.process - before.process,
            machine: self.machine - before.machine,
            busy: self.busy - before.busy,
        }
    }
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(0, |kb| kb / 1024)
}

#[derive(clap::Args)]
pub struct ColdStartArgs {
    /// The function binary, e.g. target/release/daily-summary.
    binary: std::path::PathBuf,
    /// The database the function connects to at init.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
    #[arg(long, default_value_t = 20)]
    runs: usize,
}

async fn cold_start(args: ColdStartArgs) -> Result<()> {
    use tokio::{io::AsyncReadExt, net::TcpListener, process::Command};
    let size = std::fs::metadata(&args.binary).with_context(|| format!("{}", args.binary.display()))?.len();
    let mut times = vec![];
    for _ in 0..args.runs {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let api = listener.local_addr()?.to_string();
        let started = Instant::now();
        let mut child = Command::new(&args.binary)
            .env_clear()
            .envs([
                ("AWS_LAMBDA_RUNTIME_API", api.as_str()),
                ("AWS_LAMBDA_FUNCTION_NAME", "daily-summary"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
                ("AWS_LAMBDA_LOG_GROUP_NAME", "bench"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "bench"),
                ("AWS_SECRET_ACCESS_KEY", "bench"),
                ("DATABASE_URL", args.database_url.as_str()),
                ("QUEUE_URL", "http://127.0.0.1:9/queue/daily-summary"),
                ("DEAD_LETTER_QUEUE_URL", "http://127.0.0.1:9/queue/daily-summary-dlq"),
                ("MAIL_FROM", "jobs@example.com"),
                // Else the function asks SES for the account's send rate at init, which needs AWS: a deployed
                // function makes that one call more (GetSendQuota) before its first poll.
                ("SEND_RATE", "14"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let (mut socket, _) = tokio::time::timeout(std::time::Duration::from_secs(10), listener.accept())
            .await
            .context("the function did not poll the runtime API within 10 s")??;
        let mut request = [0u8; 256];
        let n = socket.read(&mut request).await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            String::from_utf8_lossy(&request[..n]).contains("/runtime/invocation/next"),
            "the first request was not a poll for the next invocation"
        );
        child.kill().await?;
        times.push(elapsed.as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("{}: {:.1} MiB", args.binary.display(), size as f64 / (1024.0 * 1024.0));
    println!(
        "init to first poll over {} runs: median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms",
        times.len(),
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}

/// Expressions from everyday to worst case (a fire once every four years), with the zones that make DST matter.
const EXPRESSIONS: &[(&str, &str)] = &[
    ("cron(0 * * * ? *)", "UTC"),
    ("cron(0/15 * * * ? *)", "Europe/London"),
    ("cron(30 2 * * ? *)", "America/New_York"),
    ("cron(0 9 ? * 2#1 *)", "Australia/Lord_Howe"),
    ("cron(0 0 LW * ? *)", "Asia/Kolkata"),
    ("cron(0/5 8-17 ? * MON-FRI *)", "America/Los_Angeles"),
    ("rate(5 minutes)", "UTC"),
    ("cron(0 12 29 2 ? *)", "UTC"),
];

fn next_fire() {
    use shared::schedule::Schedule;
    println!("{:<34} {:<20} {:>14}", "expression", "zone", "evaluations/s");
    for (expression, zone) in EXPRESSIONS {
        let schedule = Schedule::parse(expression, zone).expect("a valid expression");
        let start = "2026-01-01T00:00:00Z".parse().expect("an instant");
        let (mut at, mut evaluations) = (start, 0u64);
        let started = Instant::now();
        // Chained, so each evaluation starts where the last fired; restarted when the schedule ends.
        while started.elapsed().as_secs_f64() < 1.0 {
            for _ in 0..100 {
                at = schedule.next_after(at).unwrap_or(start);
                evaluations += 1;
            }
        }
        println!("{expression:<34} {zone:<20} {:>14.0}", evaluations as f64 / started.elapsed().as_secs_f64());
    }
}
