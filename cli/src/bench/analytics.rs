//! `jobs bench leaderboards` and `jobs bench user-stats`: the analytics tasks' slots through the real runtime
//! (plan, in-memory queue, work) on PostgreSQL, over the throughput benchmark's data — seeded in the benchmark's
//! own database when it is missing or of another size.

use std::{sync::Arc, time::Instant};

use anyhow::Result;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use infra::postgres::PgStore;
use shared::{
    invocation::{Trigger, TriggerSource},
    runtime::{JobRuntime, PlanReport, WorkReport},
    tasks::fitness::{leaderboards::NAME as LEADERBOARDS, user_stats::NAME as USER_STATS},
    time::VirtualClock,
};

use super::{bench_database, bench_runtime, HISTORY_DAYS};

#[derive(clap::Args)]
pub struct AnalyticsArgs {
    /// The PostgreSQL server; the benchmark makes and keeps its own database there.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Seeded as `bench throughput` seeds its own, once, and reused while it holds `--users` users; apart from
    /// throughput's so that neither empties the other's tables mid-run.
    #[arg(long, default_value = "jobs_bench_analytics")]
    database: String,
    /// Users seeded (with a month of workouts each); fewer for a quick debug run. Another number than the
    /// database holds reseeds it.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// The last day of the seeded workouts: the slots are on it.
    #[arg(long, default_value = "2026-11-22")]
    day: NaiveDate,
    /// leaderboards: consecutive 3-hourly slots (the first builds from nothing, the later ones also switch and
    /// delete superseded versions); user-stats: first nights, each from an empty cache.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// Plans `slot` as Scheduler would and works its queue; the plan, what the work did, and the seconds each took.
async fn run_slot(
    runtime: &JobRuntime,
    clock: &VirtualClock,
    slot: DateTime<Utc>,
) -> Result<(PlanReport, WorkReport, f64, f64)> {
    clock.set(slot + Duration::seconds(3));
    let started = Instant::now();
    let plan = runtime.plan(Trigger { time: slot, source: TriggerSource::Scheduler, task: None }).await?;
    let planned = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut total = WorkReport::default();
    for batch in runtime.drain().await? {
        let (retried, dead) = batch.retried_and_dead_lettered();
        anyhow::ensure!(retried + dead == 0, "{retried} messages retried, {dead} dead-lettered: {batch:?}");
        total.merge(&batch.totals());
    }
    Ok((plan, total, planned, started.elapsed().as_secs_f64()))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Times `runs` consecutive slots of leaderboards, three hours apart on `day`.
pub async fn leaderboards(args: AnalyticsArgs) -> Result<()> {
    let store = bench_database(&args.server, &args.database, args.users, args.day, HISTORY_DAYS).await?;
    let first = args.day.and_hms_opt(9, 0, 0).expect("09:00").and_utc();
    let clock = Arc::new(VirtualClock::new(first));
    let runtime = bench_runtime(&store, LEADERBOARDS, clock.clone())?;
    println!("{LEADERBOARDS} over {} users' month of workouts, PostgreSQL:", args.users);
    let mut times = vec![];
    for run in 0..args.runs {
        let slot = first + Duration::hours(3 * run as i64);
        let (plan, work, plan_time, work_time) = run_slot(&runtime, &clock, slot).await?;
        anyhow::ensure!(work.sent == plan.planned, "{} boards planned, {} built: {work:?}", plan.planned, work.sent);
        let sizes = board_sizes(&store).await?;
        let entries: i64 = sizes.iter().map(|(_, n)| n).sum();
        let seconds = plan_time + work_time;
        println!(
            "  {}: {} boards ({} messages), {entries} entries, in {seconds:.2} s (plan {plan_time:.2} s, work {work_time:.2} s)",
            slot.format("%Y-%m-%d %H:%M"),
            work.sent,
            plan.messages,
        );
        let shown: Vec<String> = sizes.iter().map(|(board, n)| format!("{board} {n}")).collect();
        println!("      {}", shown.join(", "));
        times.push(seconds);
    }
    println!("  median          {:.2} s a slot (target: under 5 s)", median(times));
    Ok(())
}

/// Each current board with its entries.
async fn board_sizes(store: &PgStore) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT c.board, v.entries::bigint FROM boards_current c JOIN board_versions v ON v.id = c.version
         ORDER BY c.board",
    )
    .fetch_all(store.pool())
    .await?)
}

/// Times `runs` first nights of user-stats (every user computed, from an empty cache each time), then the
/// night after the last: only the users with a workout written since, here the day after's (see `write_next_day`).
pub async fn user_stats(args: AnalyticsArgs) -> Result<()> {
    let store = bench_database(&args.server, &args.database, args.users, args.day, HISTORY_DAYS).await?;
    let night = args.day.and_hms_opt(1, 30, 0).expect("01:30").and_utc();
    let clock = Arc::new(VirtualClock::new(night));
    println!("{USER_STATS} over {} users' month of workouts, PostgreSQL:", args.users);
    let mut rates = vec![];
    for run in 1..=args.runs.max(1) {
        sqlx::query("TRUNCATE user_stats, job_runs, run_messages, leases").execute(store.pool()).await?;
        let runtime = bench_runtime(&store, USER_STATS, clock.clone())?;
        let (plan, work, plan_time, work_time) = run_slot(&runtime, &clock, night).await?;
        anyhow::ensure!(work.sent == plan.planned, "{} users planned, {} written", plan.planned, work.sent);
        let rate = plan.planned as f64 / (plan_time + work_time);
        println!(
            "  first night {run}: {} users in {} messages, plan {plan_time:.2} s, work {work_time:.2} s: {rate:.0} users/s",
            plan.planned, plan.messages
        );
        rates.push(rate);
    }
    println!("  median          {:.0} users/s a first night (target: at least 20,000)", median(rates));
    let runtime = bench_runtime(&store, USER_STATS, clock.clone())?;
    let next = night + Duration::days(1);
    let trained = write_next_day(&store, args.day).await?;
    let night_after = run_slot(&runtime, &clock, next).await;
    remove_next_day(store.pool(), args.day).await?;
    let (plan, work, plan_time, work_time) = night_after?;
    println!(
        "  the night after: {trained} users trained the next day, {} due, {} written, plan {plan_time:.2} s, work \
         {work_time:.2} s",
        plan.planned, work.sent
    );
    Ok(())
}

/// The workouts of the day after `day` as the app writes them, after the night's stats: `day`'s again, a day
/// later, under new ids (and their sets); the users who trained. Those of an earlier run stopped before it took
/// them out go first.
async fn write_next_day(store: &PgStore, day: NaiveDate) -> Result<i64> {
    let mut tx = store.pool().begin().await?;
    remove_next_day(&mut *tx, day).await?;
    sqlx::query(
        "CREATE TEMP TABLE copied ON COMMIT DROP AS
         SELECT id, id + (SELECT max(id) FROM workouts) AS copy FROM workouts WHERE local_date = $1",
    )
    .bind(day)
    .execute(&mut *tx)
    .await?;
    for statement in [
        "INSERT INTO workouts (id, user_id, name, started_at, local_date, duration_minutes, calories)
         SELECT c.copy, w.user_id, w.name, w.started_at + interval '1 day', w.local_date + 1,
                w.duration_minutes, w.calories
         FROM copied c JOIN workouts w ON w.id = c.id ORDER BY c.copy",
        "INSERT INTO workout_sets (workout_id, exercise_id, weight_kg, reps, personal_record)
         SELECT c.copy, s.exercise_id, s.weight_kg, s.reps, s.personal_record
         FROM copied c JOIN workout_sets s ON s.workout_id = c.id ORDER BY c.copy, s.id",
    ] {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    let trained = sqlx::query_scalar("SELECT count(DISTINCT user_id) FROM workouts WHERE local_date > $1")
        .bind(day)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(trained)
}

/// Takes the workouts after `day` (and their sets) out again, so that the database stays as seeded.
async fn remove_next_day(db: impl sqlx::PgExecutor<'_>, day: NaiveDate) -> Result<()> {
    sqlx::query("DELETE FROM workouts WHERE local_date > $1").bind(day).execute(db).await?;
    Ok(())
}
