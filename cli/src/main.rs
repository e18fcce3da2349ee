//! The `jobs` command: run the scheduled jobs on this machine (embedded SQLite, embedded queue, file outbox)
//! or against AWS and PostgreSQL, and look at what they did.

use std::{
    cell::OnceCell,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use infra::{config::Config, wiring::Backend};
use jobs::{bench, demo, preview, simulate};
use shared::{
    invocation::{Trigger, TriggerSource},
    ports::{normalise, RunRecord, SuppressedAddress},
    runtime::{RuntimeSettings, WorkReport},
    schedule::{Schedule, ScheduleError},
    tasks,
    tasks::fitness::food_recognition,
    tasks::maintenance::job_history_retention::{self, Retention},
    time::{Clock, SystemClock},
};

#[derive(Parser)]
#[command(name = "jobs", version, about = "Run and inspect the scheduled jobs, locally or against AWS")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The order events `jobs publish` puts, by their kebab-case names.
#[derive(Clone, Copy, clap::ValueEnum)]
enum PublishKind {
    OrderPlaced,
    OrderShipped,
    PaymentFailed,
    DeliverySkipped,
    SubscriptionPaused,
}

impl From<PublishKind> for shared::ports::OrderEventKind {
    fn from(kind: PublishKind) -> Self {
        match kind {
            PublishKind::OrderPlaced => Self::OrderPlaced,
            PublishKind::OrderShipped => Self::OrderShipped,
            PublishKind::PaymentFailed => Self::PaymentFailed,
            PublishKind::DeliverySkipped => Self::DeliverySkipped,
            PublishKind::SubscriptionPaused => Self::SubscriptionPaused,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Seeds a demo data set and runs every task through every slot of a simulated week, on the embedded
    /// backend (SQLite, embedded queue, an outbox of .eml files and push/SMS JSON lines). Running it again
    /// writes nothing new.
    Demo {
        /// Where the database and the outbox go [default: JOBS_DATA_DIR, else .local/ in the project checkout
        /// this runs in, else the platform's data directory].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The first UTC day to simulate: the default week has a Monday (weekly reports) and a 1st (monthly).
        #[arg(long, default_value = "2026-11-29")]
        from: chrono::NaiveDate,
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// What a user would receive from a task at a moment, in every form, without sending or claiming anything.
    Preview {
        task: String,
        #[arg(long)]
        user: i64,
        /// The moment [default: now].
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
    /// Runs one slot of a task now: plan, then work its queue until it is empty.
    Run {
        task: String,
        /// The slot's scheduled time [default: now].
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
    /// Puts one order event on the shop's bus (EVENT_BUS_NAME), or without one straight onto order-notifications'
    /// embedded queue, as the app does when an order changes; `jobs run order-notifications` then works it here.
    Publish {
        kind: PublishKind,
        #[arg(long)]
        order: i64,
    },
    /// A manual run of one slot [default: now]. With EVENT_BUS_NAME set, an event on that EventBridge bus that
    /// the task's rule (template.yaml) routes to its function; otherwise `run` on the configured backend. Either
    /// way the slot is planned once, under the task's lease.
    Trigger {
        task: String,
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
    /// Triggers every slot of the task's schedule from FROM to TO (RFC 3339, both included), as `trigger` does.
    Backfill {
        task: String,
        #[arg(long)]
        from: DateTime<Utc>,
        #[arg(long)]
        to: DateTime<Utc>,
    },
    /// The next fire times of a schedule expression, one RFC 3339 UTC timestamp per line (fewer when the
    /// schedule ends). Exits with 2 and the reason when the expression or zone is invalid.
    Next {
        /// cron(…), rate(…) or at(…), as in template.yaml.
        expression: String,
        /// The IANA zone the expression is evaluated in.
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Start after this instant [default: now].
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
    /// Every slot of every task from FROM to TO (UTC days, both included) on a fresh embedded backend, with a
    /// virtual clock, the queues drained between slots; nothing fires during the downtime, and each task then
    /// applies its catch-up policy. Ends with a table per task.
    Simulate {
        #[arg(long)]
        from: chrono::NaiveDate,
        #[arg(long)]
        to: chrono::NaiveDate,
        /// START..END, RFC 3339 instants: nothing fires in between.
        #[arg(long, value_parser = parse_downtime)]
        downtime: Option<(DateTime<Utc>, DateTime<Utc>)>,
        /// Demo users to seed.
        #[arg(long, default_value_t = 300)]
        users: usize,
        #[arg(long)]
        json: bool,
    },
    /// Deletes the jobs' history (runs, their messages' counts, delivery keys) older than DAYS days, as the
    /// job-history-retention task does; refuses fewer days than a message can still arrive in and claim a key.
    Cleanup {
        #[arg(long, allow_negative_numbers = true)]
        days: i64,
        /// Counts what would be deleted, and deletes nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Every task with its schedule from template.yaml, its next five fire times, and its last run; or, with
    /// `--deployed`, how the stack's schedules in EventBridge Scheduler differ from template.yaml's (a missing,
    /// extra or different schedule exits non-zero).
    Schedules {
        #[arg(long)]
        json: bool,
        #[arg(long, requires = "stack")]
        deployed: bool,
        /// The CloudFormation stack whose schedules to read (its schedules' names start with it).
        #[arg(long, env = "STACK_NAME")]
        stack: Option<String>,
        /// The Scheduler group the stack's schedules are in.
        #[arg(long, default_value = "default")]
        group: String,
    },
    /// The task's dead-lettered messages with why they were dead-lettered (the default), or `--redrive` to
    /// move them back onto the task's queue (SQS StartMessageMoveTask, or a move by hand where that call is
    /// not available).
    Dlq {
        task: String,
        #[arg(long, conflicts_with = "redrive")]
        peek: bool,
        #[arg(long)]
        redrive: bool,
        /// At most this many shown (SQS shows a sample of at most ten).
        #[arg(long, default_value_t = 10)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Uploads a meal photo for a user as the app does, to the local uploads folder that plays the bucket
    /// (UPLOADS_DIR, by default beside the database), and queues the bucket's event; `jobs run
    /// food-recognition` then recognises it, and `jobs status ID` shows what came of it.
    Photo {
        file: PathBuf,
        #[arg(long)]
        user: i64,
        /// The upload's id, which the request is known by [default: a new one, with the file's extension].
        #[arg(long)]
        id: Option<String>,
    },
    /// What became of an on-demand request (a meal photo's recognition): its state, attempts, and its result
    /// or why it failed; or a user's newest requests.
    Status {
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        #[arg(long)]
        user: Option<i64>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Recent runs with their counts and last five errors.
    Runs {
        task: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// The mail suppression list: addresses SES reported as bouncing for good or whose owner complained (the
    /// mail-feedback function writes it), which no task mails; `remove ADDRESS` lifts one, once its owner has
    /// fixed their mailbox.
    Suppressions {
        #[command(subcommand)]
        action: Option<SuppressionsAction>,
        #[arg(long)]
        json: bool,
    },
    /// Creates or updates the database schema.
    Migrate,
    /// The measurements behind BENCHMARKS.md.
    #[command(subcommand)]
    Bench(bench::Bench),
}

#[derive(Subcommand)]
enum SuppressionsAction {
    /// Lifts the suppression of ADDRESS: the tasks mail it again.
    Remove { address: String },
}

fn main() {
    let cli = Cli::parse();
    let serial = matches!(
        cli.command,
        Command::Demo { .. } | Command::Simulate { .. } | Command::Bench(bench::Bench::Statements(_))
    );
    if serial {
        // Before the runtime's threads and the database's start: they inherit it.
        serial_threads();
    }
    tokio::runtime::Runtime::new().expect("a tokio runtime").block_on(run_main(cli, serial));
}

/// Keeps the process on the core it started on, its threads taking turns rather than preempting one another.
/// The demo and the simulation are serial (slots in time order, one SQLite connection, whose statements run on
/// a thread of sqlx's): the work goes back and forth between that thread and the runtime's at every statement.
/// - One core: each turn is a switch of threads; across two it wakes the idle core, which on a virtual machine
///   is a trip through the hypervisor. A year of simulation took 25% less time so (BENCHMARKS.md).
/// - `SCHED_BATCH`: a thread woken by another does not preempt it. sqlx's thread wakes the runtime's at every
///   row it hands over; normally the runtime's thread then preempts it, takes the row and waits again, a switch
///   both ways per row. So each thread runs until it waits: 4.4 million preemptions in a year of simulation
///   became about a thousand, and the year took 7% less time.
///
/// Linux only; elsewhere the scheduler decides. Threads inherit both from the thread that starts them, and this
/// runs first. On failure (a container forbidding it) the process runs as the scheduler puts it, only slower.
fn serial_threads() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy, ThreadPriority,
            ThreadSchedulePolicy,
        };
        if let Ok(cpu) = nix::sched::sched_getcpu() {
            let mut set = nix::sched::CpuSet::new();
            if set.set(cpu).is_ok() {
                let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
            }
        }
        // The call also sets the thread's niceness, to the OS value given: 0, the default.
        let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
        let _ = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Os(Default::default()), batch);
    }
}

async fn run_main(cli: Cli, serial: bool) {
    // The demo and simulations tell their own story on stdout; elsewhere warnings say what went wrong. RUST_LOG overrides both.
    let default_level = if serial { "error" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_level.into()))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        // 2: what was asked is invalid (as clap does for bad arguments); 1: it could not be done.
        let invalid_input = e.downcast_ref::<ScheduleError>().is_some();
        std::process::exit(if invalid_input { 2 } else { 1 });
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo { data_dir, from, days } => demo::run(&data_dir.unwrap_or_else(local_dir), from, days).await,
        Command::Preview { task, user, at } => {
            let at = at.unwrap_or_else(|| SystemClock.now());
            preview::run(local_config()?, &task, user, at, &std::env::temp_dir()).await
        }
        Command::Publish { kind, order } => {
            let backend = connect(Arc::new(SystemClock)).await?;
            let events = backend.order_events().context("no EVENT_BUS_NAME and no embedded queue for order events")?;
            let event = shared::ports::OrderEvent { id: 0, order_id: order, kind: kind.into(), at: SystemClock.now() };
            events.publish(&[event]).await?;
            let kind = shared::ports::OrderEventKind::from(kind).as_str();
            match &backend.config.event_bus {
                Some(bus) => println!("{kind} for order {order} put on the EventBridge bus {bus}"),
                None => println!(
                    "{kind} for order {order} put on {}'s queue; `jobs run {}` works it",
                    shared::ports::ORDER_EVENTS_TASK,
                    shared::ports::ORDER_EVENTS_TASK
                ),
            }
            Ok(())
        }
        Command::Run { task, at } => run_slots(&task, &[at.unwrap_or_else(|| SystemClock.now())]).await,
        Command::Trigger { task, at } => trigger(&task, &[at.unwrap_or_else(|| SystemClock.now())]).await,
        Command::Backfill { task, from, to } => {
            anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
            let schedule = scheduled(&task)?;
            let slots: Vec<_> = schedule.fires_between(from - chrono::Duration::seconds(1), to).collect();
            println!("{task}: {} slots of {} in {from} .. {to}", slots.len(), schedule.expression());
            trigger(&task, &slots).await
        }
        Command::Cleanup { days, dry_run } => {
            let retention = Retention::days(days)?;
            let backend = connect(Arc::new(SystemClock)).await?;
            let cutoff = retention.cutoff(SystemClock.now());
            let history = backend.store.history();
            let (counts, verb) = if dry_run {
                (history.count_history(&cutoff).await?, "would delete")
            } else {
                let (counts, _) = job_history_retention::delete(
                    history.as_ref(),
                    &cutoff,
                    job_history_retention::BATCH_ROWS,
                    None,
                    || true,
                )
                .await?;
                (counts, "deleted")
            };
            println!(
                "{verb} {} runs, {} run messages, {} delivery keys and {} on-demand requests older than {} ({} days)",
                counts.runs,
                counts.run_messages,
                counts.deliveries,
                counts.requests,
                cutoff.before,
                retention.in_days()
            );
            if !dry_run {
                println!("slots before {} will not be planned or worked again", cutoff.floor);
            }
            Ok(())
        }
        Command::Schedules { json, deployed: true, stack, group } => {
            let client = aws_sdk_scheduler::Client::new(&infra::aws::sdk_config().await);
            let stack = stack.expect("clap requires --stack with --deployed");
            let deployed = jobs::drift::deployed(&client, &stack, &group).await?;
            let drifts = jobs::drift::compare(&deployed)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&drifts)?);
            } else if drifts.is_empty() {
                println!("{} schedules of {stack} in group {group}, as template.yaml says", deployed.len());
            }
            if drifts.is_empty() {
                return Ok(());
            }
            if !json {
                drifts.iter().for_each(|drift| println!("{drift}"));
            }
            anyhow::bail!("{} differences between template.yaml and the schedules deployed for {stack}", drifts.len())
        }
        Command::Schedules { json, .. } => {
            let backend = connect(Arc::new(SystemClock)).await?;
            let now = SystemClock.now();
            let mut rows = vec![];
            for task in tasks::NAMES {
                let Some(schedule) = tasks::schedule(task)? else { continue };
                let last = backend.store.runs().recent_runs(Some(task), 1).await?.into_iter().next();
                rows.push(serde_json::json!({
                    "task": task,
                    "expression": schedule.expression(),
                    "zone": schedule.zone().name(),
                    "next": schedule.fires_after(now).take(5).collect::<Vec<_>>(),
                    "last_run": last,
                }));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for row in &rows {
                    let last = match &row["last_run"] {
                        serde_json::Value::Null => "never run".to_owned(),
                        run => {
                            format!("{} {}", run["slot"].as_str().unwrap_or(""), run["status"].as_str().unwrap_or(""))
                        }
                    };
                    println!(
                        "{}  {}  {}  last run: {last}",
                        row["task"].as_str().unwrap_or(""),
                        row["expression"].as_str().unwrap_or(""),
                        row["zone"].as_str().unwrap_or("")
                    );
                    for next in row["next"].as_array().into_iter().flatten() {
                        println!("    next {}", next.as_str().unwrap_or(""));
                    }
                }
            }
            Ok(())
        }
        Command::Dlq { task, peek: _, redrive, limit, json } => {
            tasks::known(&task)?;
            let queue = connect(Arc::new(SystemClock)).await?.queue(&task);
            if redrive {
                let moved = queue.redrive().await?;
                if json {
                    println!("{}", serde_json::json!({ "task": task, "redriven": moved }));
                } else {
                    println!("{task}: {moved} dead-lettered messages moved back onto the queue");
                }
                return Ok(());
            }
            let letters = queue.peek_dead_letters(limit).await?;
            if json {
                let letters: Vec<_> = letters
                    .iter()
                    .map(|l| serde_json::json!({"message_id": l.message_id, "reason": l.reason, "body": l.body}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&letters)?);
            } else if letters.is_empty() {
                println!("{task}: no dead-lettered messages");
            } else {
                for letter in &letters {
                    let body: String = letter.body.chars().take(100).collect();
                    println!("{}  {}\n    {body}", letter.message_id, letter.reason);
                }
                println!("Move them back with: jobs dlq {task} --redrive");
            }
            Ok(())
        }
        Command::Next { expression, tz, from, count } => {
            let schedule = Schedule::parse(&expression, &tz)?;
            let from = from.unwrap_or_else(|| SystemClock.now());
            for time in schedule.fires_after(from).take(count) {
                println!("{}", time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            Ok(())
        }
        Command::Simulate { from, to, downtime, users, json } => {
            anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
            let spec = simulate::Spec { from, to, downtime, data_dir: local_dir().join("simulate"), users };
            let progress = indicatif::ProgressBar::new(0);
            let tallies = simulate::run(&spec, |done, total| {
                progress.set_length(total);
                progress.set_position(done);
            })
            .await?;
            progress.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string_pretty(&tallies)?);
            } else {
                simulate::print(&tallies);
            }
            Ok(())
        }
        Command::Photo { file, user, id } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let id = id.unwrap_or_else(|| {
                let extension = file.extension().and_then(|e| e.to_str()).map(|e| format!(".{e}")).unwrap_or_default();
                format!("{}{extension}", uuid::Uuid::new_v4().simple())
            });
            anyhow::ensure!(
                food_recognition::valid_upload_id(&id),
                "{id:?} is not an upload id: letters, digits, '.', '_' and '-', starting with a letter or digit"
            );
            let backend = connect(Arc::new(SystemClock)).await?;
            let key = jobs::requests::upload(&backend, user, &id, &bytes, SystemClock.now()).await?;
            println!(
                "uploaded {} as {key}; `jobs run {}` works it, `jobs status {id}` shows it",
                file.display(),
                food_recognition::NAME
            );
            Ok(())
        }
        Command::Status { id, user, limit, json } => {
            let backend = connect(Arc::new(SystemClock)).await?;
            let runs = backend.store.runs();
            let requests = match (&id, user) {
                (Some(id), _) => {
                    vec![runs.request(id).await?.with_context(|| {
                        format!("no request {id:?} (not uploaded yet, or its event not worked yet)")
                    })?]
                }
                (None, Some(user)) => runs.user_requests(user, limit).await?,
                (None, None) => unreachable!("clap requires an id or --user"),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&requests)?);
            } else if requests.is_empty() {
                println!("user {}: no requests", user.unwrap_or_default());
            } else {
                for request in &requests {
                    println!("{}", jobs::requests::describe(request, SystemClock.now()));
                }
            }
            Ok(())
        }
        Command::Runs { task, limit, json } => {
            let backend = connect(Arc::new(SystemClock)).await?;
            let runs = backend.store.runs().recent_runs(task.as_deref(), limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print_runs(&runs);
            }
            Ok(())
        }
        Command::Suppressions { action, json } => {
            let suppressions = connect(Arc::new(SystemClock)).await?.store.suppressions();
            match action {
                Some(SuppressionsAction::Remove { address }) => {
                    let address = normalise(&address);
                    anyhow::ensure!(suppressions.lift(&address).await?, "{address} is not suppressed: nothing lifted");
                    println!("{address}: suppression lifted; the tasks mail it again");
                }
                None if json => println!("{}", serde_json::to_string_pretty(&suppressions.suppressions().await?)?),
                None => print_suppressions(&suppressions.suppressions().await?),
            }
            Ok(())
        }
        Command::Migrate => {
            Backend::connect(local_config()?, Arc::new(SystemClock)).await?.store.migrate().await?;
            println!("schema is up to date");
            Ok(())
        }
        Command::Bench(bench) => bench::run(bench).await,
    }
}

fn parse_downtime(text: &str) -> std::result::Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let (from, to) =
        text.split_once("..").ok_or("expected START..END, e.g. 2026-11-01T00:00:00Z..2026-11-01T06:00:00Z")?;
    let instant = |s: &str| s.parse::<DateTime<Utc>>().map_err(|e| format!("{s:?} is not an RFC 3339 instant: {e}"));
    let (from, to) = (instant(from)?, instant(to)?);
    if from >= to {
        return Err(format!("the downtime ends ({to}) before it starts ({from})"));
    }
    Ok((from, to))
}

/// Plans each slot as a manual trigger, then works the task's queue until it is empty.
async fn run_slots(task: &str, slots: &[DateTime<Utc>]) -> Result<()> {
    let backend = connect(Arc::new(SystemClock)).await?;
    let runtime = backend.runtime(task, RuntimeSettings::default())?;
    if runtime.schedule.is_none() {
        // Started by events: there is no slot to plan, only the queue to work.
        let mut totals = WorkReport::default();
        let (mut messages, mut dead, mut refused) = (0, 0, 0);
        for batch in runtime.drain().await? {
            totals.merge(&batch.totals());
            messages += batch.messages.len();
            dead += batch.retried_and_dead_lettered().1;
            refused += batch.requests_failed();
        }
        println!(
            "{task}: {messages} events worked: {} done, {} skipped, {} failed, {refused} requests failed, {dead} dead-lettered",
            totals.sent,
            totals.skipped_total(),
            totals.failed
        );
        return Ok(());
    }
    for &time in slots {
        let plan = runtime.plan(Trigger { time, source: TriggerSource::Manual, task: Some(task.to_owned()) }).await?;
        let mut totals = WorkReport::default();
        let mut messages = 0;
        for batch in runtime.drain().await? {
            totals.merge(&batch.totals());
            messages += batch.messages.len();
        }
        println!(
            "{task} {}: {:?}, {} planned; {messages} messages worked: {} done (sent, charged, deleted or built), {} skipped, {} failed",
            time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            plan.status,
            plan.planned,
            totals.sent,
            totals.skipped_total(),
            totals.failed
        );
        for error in &plan.errors {
            println!("    ! {error}");
        }
    }
    Ok(())
}

/// Manual runs through the task's EventBridge rule when EVENT_BUS_NAME names a bus, else here.
/// A task's schedule; a task started by events has none, and says how it is started instead.
fn scheduled(task: &str) -> Result<Schedule> {
    tasks::schedule(tasks::known(task)?)?.with_context(|| {
        format!("{task} is started by events, not by a schedule: `jobs publish` puts one on its queue")
    })
}

async fn trigger(task: &str, slots: &[DateTime<Utc>]) -> Result<()> {
    scheduled(task)?;
    let Some(bus) = std::env::var("EVENT_BUS_NAME").ok().filter(|b| !b.is_empty()) else {
        return run_slots(task, slots).await;
    };
    let client = aws_sdk_eventbridge::Client::new(&infra::aws::sdk_config().await);
    let put = infra::event_bus::EventBridgeBus::new(client, &bus).trigger(task, slots).await?;
    println!("{task}: {put} manual triggers put on the EventBridge bus {bus}; `jobs runs {task}` shows them run");
    Ok(())
}

/// The configured backend. The embedded SQLite database is this command's own, so its schema is brought up
/// to date here; a PostgreSQL schema is migrated only by `jobs migrate`, as a deployment step.
async fn connect(clock: Arc<dyn Clock>) -> Result<Backend> {
    let backend = Backend::connect(local_config()?, clock).await?;
    if matches!(backend.store, infra::wiring::Store::Sqlite(_)) {
        backend.store.migrate().await?;
    }
    Ok(backend)
}

/// Where the embedded database and the outbox live, decided when the command runs (a built binary may run
/// anywhere): `JOBS_DATA_DIR`; else `.local/` (git-ignored) in the project checkout the command runs in; else
/// the platform's data directory. Says which on standard error.
fn local_dir() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    let (dir, why) = data_dir(&cwd, |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from));
    eprintln!("jobs: local data in {} ({why})", dir.display());
    dir
}

fn data_dir(cwd: &Path, var: impl Fn(&str) -> Option<PathBuf>) -> (PathBuf, &'static str) {
    if let Some(dir) = var("JOBS_DATA_DIR") {
        return (dir, "JOBS_DATA_DIR");
    }
    // The project's checkout: the folder holding both its workspace manifest and template.yaml.
    if let Some(root) = cwd.ancestors().find(|d| d.join("template.yaml").is_file() && d.join("Cargo.toml").is_file()) {
        return (root.join(".local"), "the project checkout this runs in");
    }
    let data_home = var("XDG_DATA_HOME").or_else(|| var("HOME").map(|home| home.join(".local").join("share")));
    (data_home.unwrap_or_else(std::env::temp_dir).join("jobs"), "the platform's data directory")
}

/// The environment's configuration, with the embedded backend for whatever it leaves unset.
fn local_config() -> Result<Config> {
    // Only looked for (and said) when the environment leaves the database or the outbox to it.
    let dir = OnceCell::new();
    let local = |file: &str| -> Result<String> {
        let dir: &PathBuf = dir.get_or_init(local_dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir.join(file).display().to_string())
    };
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let db = match set("DATABASE_URL") {
        Some(url) => url,
        None => format!("sqlite://{}", local("jobs.db")?),
    };
    let outbox = match set("OUTBOX_DIR") {
        None if set("QUEUE_URL").is_none() => Some(local("outbox")?),
        given => given,
    };
    // Locally, meal photos go to a folder beside the database, and the embedded model reads them.
    let local_run = set("QUEUE_URL").is_none();
    let uploads = match set("UPLOADS_DIR") {
        None if local_run && set("UPLOADS_BUCKET").is_none() => Some(local("uploads")?),
        given => given,
    };
    let food_model = set("FOOD_MODEL_URL").or_else(|| local_run.then(|| "samples".to_owned()));
    Ok(Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(db.clone()),
        "OUTBOX_DIR" => outbox.clone(),
        "UPLOADS_DIR" => uploads.clone(),
        "FOOD_MODEL_URL" => food_model.clone(),
        "MAIL_FROM" => set(name).or_else(|| Some("jobs@localhost".into())),
        _ => set(name),
    })?)
}

fn print_suppressions(rows: &[SuppressedAddress]) {
    if rows.is_empty() {
        println!("no suppressed addresses");
        return;
    }
    println!("{:<40} {:<9} {:<24} {:>5}  {:<16}  last (UTC)", "address", "reason", "subtype", "count", "first (UTC)");
    for r in rows {
        println!(
            "{:<40} {:<9} {:<24} {:>5}  {:<16}  {}",
            r.address,
            r.reason.as_str(),
            r.subtype.as_deref().unwrap_or("-"),
            r.count,
            r.first_at.format("%Y-%m-%d %H:%M"),
            r.last_at.format("%Y-%m-%d %H:%M"),
        );
    }
    println!("Lift one with: jobs suppressions remove ADDRESS");
}

fn print_runs(runs: &[RunRecord]) {
    if runs.is_empty() {
        println!("no runs yet");
        return;
    }
    // done: what the task does, each counted once: emails sent, cards charged, rows deleted, boards built.
    println!(
        "{:<23} {:<20} {:<9} {:>8} {:>8} {:>7} {:>8} {:>6}",
        "task", "slot (UTC)", "status", "planned", "messages", "done", "skipped", "failed"
    );
    for r in runs {
        println!(
            "{:<23} {:<20} {:<9} {:>8} {:>4}/{:<3} {:>7} {:>8} {:>6}",
            r.task,
            r.slot.format("%Y-%m-%d %H:%M"),
            r.status,
            r.planned,
            r.messages_done,
            r.messages,
            r.sent,
            r.skipped,
            r.failed,
        );
        for error in &r.errors {
            println!("    ! {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_dir_is_decided_where_the_command_runs() {
        let checkout = std::env::temp_dir().join(format!("jobs-data-dir-{}", std::process::id()));
        let inside = checkout.join("functions").join("daily-summary");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(checkout.join("Cargo.toml"), "[workspace]").unwrap();
        std::fs::write(checkout.join("template.yaml"), "Resources: {}").unwrap();
        let home = |name: &str| (name == "HOME").then(|| PathBuf::from("/home/ana"));
        assert_eq!(data_dir(&inside, home).0, checkout.join(".local"), "in a checkout: its .local");
        let elsewhere = std::env::temp_dir();
        assert_eq!(data_dir(&elsewhere, home).0, PathBuf::from("/home/ana/.local/share/jobs"));
        let xdg = |name: &str| (name == "XDG_DATA_HOME").then(|| PathBuf::from("/data"));
        assert_eq!(data_dir(&elsewhere, xdg).0, PathBuf::from("/data/jobs"));
        let told = |name: &str| (name == "JOBS_DATA_DIR").then(|| PathBuf::from("/srv/jobs"));
        assert_eq!(data_dir(&inside, told), (PathBuf::from("/srv/jobs"), "JOBS_DATA_DIR"));
        std::fs::remove_dir_all(&checkout).unwrap();
    }
}
