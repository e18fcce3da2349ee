//! The floor under daily-summary's work: every number of every summary due in a window of UTC time, computed by
//! one set-based statement that writes nothing. `jobs bench floor` times it beside `jobs bench throughput`, and
//! a test holds the emails the task renders to its numbers, so a faster query that changes a number fails.
//!
//! Written apart from the task's own queries, on purpose: the zones' periods come from PostgreSQL's zone rules,
//! not chrono-tz's; each user's numbers from one grouping of their day's workouts and sets; the streak from the
//! first day of its run, the latest active day up to the summary's whose day before was not.

use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use shared::tasks::fitness::daily_summary;
use sqlx::PgPool;

/// One user's summary, as numbers.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Numbers {
    pub user_id: i64,
    /// The local day the summary is about.
    pub day: NaiveDate,
    pub workouts: i64,
    pub minutes: i64,
    pub calories: i64,
    pub volume_kg: f64,
    pub records: i64,
    pub streak: i64,
}

/// Users whose `$3` local time falls in `($1, $2]` are due, about their local day before; of them, those with
/// `id % $4 = $5` (one of `$4` sessions) and a workout that day have a summary. A zone PostgreSQL does not know
/// fails the statement (the task reports its users and goes on): the benchmark's and the test's zones are real.
const SQL: &str = "
WITH zone_days AS (
    SELECT z.time_zone, l.today - 1 AS day
    FROM (SELECT DISTINCT time_zone FROM users) z
    CROSS JOIN LATERAL (SELECT (($1::timestamptz AT TIME ZONE z.time_zone)::date + i) AS today
                        FROM generate_series(0, 2) i) l
    WHERE ((l.today + $3::time) AT TIME ZONE z.time_zone) > $1
      AND ((l.today + $3::time) AT TIME ZONE z.time_zone) <= $2
),
due AS (
    SELECT u.id AS user_id, zd.day FROM users u JOIN zone_days zd USING (time_zone) WHERE u.id % $4 = $5
),
totals AS (
    SELECT due.user_id, due.day, count(*) AS workouts, sum(w.duration_minutes)::bigint AS minutes,
           sum(w.calories)::bigint AS calories, coalesce(sum(l.volume_kg), 0) AS volume_kg,
           sum(l.records)::bigint AS records
    FROM due JOIN workouts w ON w.user_id = due.user_id AND w.local_date = due.day
    CROSS JOIN LATERAL (SELECT sum(s.weight_kg * s.reps) AS volume_kg,
                               count(*) FILTER (WHERE s.personal_record) AS records
                        FROM workout_sets s WHERE s.workout_id = w.id) l
    GROUP BY due.user_id, due.day
)
SELECT t.user_id, t.day, t.workouts, t.minutes, t.calories, t.volume_kg, t.records,
       (t.day - (SELECT max(w.local_date) FROM workouts w
                 WHERE w.user_id = t.user_id AND w.local_date <= t.day
                   AND NOT EXISTS (SELECT 1 FROM workouts b
                                   WHERE b.user_id = w.user_id AND b.local_date = w.local_date - 1)) + 1)::bigint
           AS streak
FROM totals t
ORDER BY t.user_id";

/// The summaries of the users due in `(after, until]`, computed in `sessions` parts at once, each on a
/// connection of its own, by user id.
pub async fn summaries(
    pool: &PgPool,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    sessions: i64,
) -> Result<Vec<Numbers>> {
    let parts = (0..sessions).map(|session| {
        sqlx::query_as::<_, Numbers>(SQL)
            .bind(after)
            .bind(until)
            .bind(daily_summary::send_at())
            .bind(sessions)
            .bind(session)
            .fetch_all(pool)
    });
    let mut all: Vec<Numbers> =
        futures::future::try_join_all(parts).await.context("the floor's statement")?.into_iter().flatten().collect();
    all.sort_by_key(|n| n.user_id);
    Ok(all)
}

/// The task name `--ledger` claims its keys under, apart from the job's; they are deleted before each run.
const LEDGER_TASK: &str = "bench-floor";

/// A summary's numbers, its delivery key and where it goes.
#[derive(sqlx::FromRow)]
struct Addressed {
    #[sqlx(flatten)]
    #[allow(dead_code)] // read from the database as the job reads them; the benchmark renders nothing
    numbers: Numbers,
    subject: String,
    period: String,
    #[allow(dead_code)] // read as the job reads it; the benchmark sends nothing
    email: String,
}

/// The least writing a summary sent once needs, for `--ledger`: each session's statement reads its users'
/// numbers and addresses and claims their keys, and one more statement settles the keys it claimed.
async fn summaries_claimed_and_settled(
    pool: &PgPool,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    sessions: i64,
) -> Result<usize> {
    // Each key once, in `local_time::subject`'s form: the claim inserts it and the settlement is given it back.
    let claim = format!(
        "WITH summaries AS ({SQL}),
         keyed AS (SELECT s.*, 'user:' || s.user_id AS subject, s.day::text AS period FROM summaries s),
         claimed AS (
             INSERT INTO deliveries (task, subject, period, status, attempts, expires_at, updated_at)
             SELECT $6, k.subject, k.period, 'in_progress', 1, now() + interval '15 minutes', now()
             FROM keyed k
             ON CONFLICT DO NOTHING)
         SELECT k.*, u.email FROM keyed k JOIN users u ON u.id = k.user_id"
    );
    let parts = (0..sessions).map(|session| {
        let claim = &claim;
        async move {
            let rows: Vec<Addressed> = sqlx::query_as(claim)
                .bind(after)
                .bind(until)
                .bind(daily_summary::send_at())
                .bind(sessions)
                .bind(session)
                .bind(LEDGER_TASK)
                .fetch_all(pool)
                .await?;
            let (subjects, periods): (Vec<&str>, Vec<&str>) =
                rows.iter().map(|r| (r.subject.as_str(), r.period.as_str())).unzip();
            sqlx::query(
                "UPDATE deliveries d SET status = 'done'
                 FROM UNNEST($2::text[], $3::text[]) AS k (subject, period)
                 WHERE d.task = $1 AND d.subject = k.subject AND d.period = k.period AND d.status = 'in_progress'",
            )
            .bind(LEDGER_TASK)
            .bind(&subjects)
            .bind(&periods)
            .execute(pool)
            .await?;
            Ok::<_, sqlx::Error>(rows.len())
        }
    });
    let counts = futures::future::try_join_all(parts).await.context("the floor's statements with the ledger")?;
    Ok(counts.into_iter().sum())
}

#[derive(clap::Args)]
pub struct FloorArgs {
    /// The data and day of `jobs bench throughput`, whose 24 hourly slots cover every user once.
    #[command(flatten)]
    data: super::Data,
    /// Connections computing a part of the users each, at once.
    #[arg(long, default_value_t = 2)]
    sessions: i64,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also each summary's address read, and its delivery key claimed and settled, set-based: the floor under a
    /// job that sends each summary once.
    #[arg(long)]
    ledger: bool,
}

/// Times the statement over the throughput benchmark's data and day, `runs` times.
pub async fn floor(args: FloorArgs) -> Result<()> {
    let store = args.data.store().await?;
    // The slots `throughput` runs, 01:00 to 24:00, cover (00:00, 24:00].
    let after = args.data.day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let until = after + Duration::days(1);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(store.pool()).await?;
    let what = if args.ledger { "numbers, addresses and claimed and settled keys" } else { "numbers" };
    println!("daily-summary's {what} for the users due in ({after}, {until}], {} sessions:", args.sessions);
    for _ in 0..args.runs {
        if args.ledger {
            let delete = sqlx::query("DELETE FROM deliveries WHERE task = $1").bind(LEDGER_TASK);
            delete.execute(store.pool()).await.context("the last run's keys")?;
        }
        let started = Instant::now();
        let count = if args.ledger {
            summaries_claimed_and_settled(store.pool(), after, until, args.sessions).await?
        } else {
            summaries(store.pool(), after, until, args.sessions).await?.len()
        };
        let seconds = started.elapsed().as_secs_f64();
        println!("  {seconds:.2} s: {count} summaries, {:.0} users/s of the {users} users", users as f64 / seconds);
    }
    Ok(())
}
