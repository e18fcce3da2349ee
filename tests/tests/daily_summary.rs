//! daily-summary end to end through the real runtime, written once and run on both stacks: the embedded one
//! (SQLite, embedded queue, virtual time) and the production one (PostgreSQL, SQS and SES on moto).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use infra::{embedded_queue::EmbeddedQueue, ses::SesMailer, sqs::SqsQueue};
use integration_tests::{db, moto::Moto};
use shared::{
    backoff::Backoff,
    invocation::{Trigger, TriggerSource},
    limits::{Deadline, Pace},
    memory::{MemoryMailer, MemoryNotifier},
    ports::{AppWriter, Email, Mailer, NewSet, NewUser, NewWorkout, Queue},
    runtime::{sqs_event, Context, JobRuntime, MessageOutcome, PlanStatus, RuntimeSettings, WorkReport},
    tasks::{self, fitness::daily_summary, messages::Letterhead},
    time::{Clock, VirtualClock},
    Error,
};

const MAX_RECEIVES: u32 = 3;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Fails retryably while `failing` is set, as a throttled provider would; otherwise passes on.
struct Flaky {
    inner: Arc<dyn Mailer>,
    failing: AtomicU64,
    /// How long each send takes, in milliseconds.
    latency_ms: AtomicU64,
}

#[async_trait]
impl Mailer for Flaky {
    async fn send(&self, email: &Email) -> shared::Result<String> {
        if self.failing.load(Ordering::SeqCst) > 0 {
            return Err(Error::retryable("Throttling: maximum sending rate exceeded (test)"));
        }
        tokio::time::sleep(Duration::from_millis(self.latency_ms.load(Ordering::SeqCst))).await;
        self.inner.send(email).await
    }
}

/// One stack: the runtime over it, and how to see what it sent and let time pass.
#[async_trait]
trait Stack: Send + Sync {
    fn runtime(&self) -> &JobRuntime;
    fn mailer(&self) -> &Flaky;
    /// The runtime's clock: what dates runs and claims.
    fn clock(&self) -> &VirtualClock;
    /// Recipients of the emails sent so far.
    async fn sent_to(&self) -> Vec<String> {
        self.sent().await.into_iter().map(|(to, _)| to).collect()
    }
    /// (recipient, subject) of the emails sent so far.
    async fn sent(&self) -> Vec<(String, String)>;
    /// The app's tables, to change them between plans.
    fn app(&self) -> &dyn AppWriter;
    async fn pass(&self, by: Duration);
}

/// Users due at 01:00 UTC (Asia/Kolkata reaches 06:00 at 00:30 UTC) and one due at 11:00 UTC (New York).
async fn seed(writer: &dyn AppWriter) -> Vec<i64> {
    let users = [
        ("Ana", "ana@example.com", "Asia/Kolkata", true),
        ("Bo", "bo@example.com", "Asia/Kolkata", false),
        ("Cy", "cy@example.com", "Asia/Kolkata", true),
        ("Di", "di@example.com", "America/New_York", true),
    ];
    let users: Vec<NewUser> = users
        .iter()
        .map(|(name, email, zone, opt_in)| NewUser {
            name: name.to_string(),
            email: email.to_string(),
            phone: None,
            time_zone: zone.to_string(),
            email_opt_in: *opt_in,
        })
        .collect();
    let ids = writer.add_users(&users).await.unwrap();
    let bench = writer.add_exercises(&["Bench press".into()]).await.unwrap()[0];
    let day: NaiveDate = "2026-11-21".parse().unwrap();
    let workout = |user_id, name: &str| NewWorkout {
        user_id,
        name: name.into(),
        started_at: utc("2026-11-21T12:00:00Z"),
        local_date: day,
        duration_minutes: 45,
        calories: 400,
        sets: vec![NewSet { exercise_id: bench, weight_kg: 80.0, reps: 5, personal_record: true }],
    };
    // Ana and Bo (opted out) trained on their 21 November; Cy did not; Di did.
    writer
        .add_workouts(&[workout(ids[0], "Upper body"), workout(ids[1], "Leg day"), workout(ids[3], "Pull")])
        .await
        .unwrap();
    ids
}

fn runtime(
    store: &infra::wiring::Store,
    queue: Arc<dyn Queue>,
    mailer: Arc<Flaky>,
    clock: Arc<dyn Clock>,
) -> JobRuntime {
    let letterhead = Letterhead { from: "jobs@example.com".into(), signer: None, preferences: None };
    let deps = store.deps(mailer, Arc::new(MemoryNotifier::default()), letterhead);
    let one_second = Duration::from_secs(1);
    JobRuntime {
        task: tasks::build(daily_summary::NAME, &deps).unwrap(),
        schedule: tasks::schedule(daily_summary::NAME).unwrap(),
        runs: store.runs(),
        ledger: store.ledger(),
        queue,
        clock,
        // A send every 50 ms at most: starts are spread in time, as SES's send rate spreads them.
        pace: Pace::new(Some(20.0)),
        settings: RuntimeSettings {
            backoff: Backoff { base: one_second, cap: one_second },
            visibility: Duration::from_secs(30),
            ..RuntimeSettings::default()
        },
    }
}

struct Embedded {
    runtime: JobRuntime,
    app: Arc<dyn AppWriter>,
    mailer: Arc<Flaky>,
    memory: Arc<MemoryMailer>,
    clock: Arc<VirtualClock>,
}

impl Embedded {
    async fn start() -> Self {
        let store = db::fresh_sqlite().await;
        seed(&store).await;
        let clock = Arc::new(VirtualClock::new(utc("2026-11-22T01:00:05Z")));
        let queue = Arc::new(EmbeddedQueue::new(store.db().clone(), daily_summary::NAME, clock.clone(), MAX_RECEIVES));
        let memory = Arc::new(MemoryMailer::default());
        let mailer =
            Arc::new(Flaky { inner: memory.clone(), failing: AtomicU64::new(0), latency_ms: AtomicU64::new(0) });
        let store = infra::wiring::Store::Sqlite(Arc::new(store));
        let runtime = runtime(&store, queue, mailer.clone(), clock.clone());
        Self { runtime, app: store.writer(), mailer, memory, clock }
    }
}

#[async_trait]
impl Stack for Embedded {
    fn runtime(&self) -> &JobRuntime {
        &self.runtime
    }
    fn mailer(&self) -> &Flaky {
        &self.mailer
    }
    fn clock(&self) -> &VirtualClock {
        &self.clock
    }
    async fn sent(&self) -> Vec<(String, String)> {
        self.memory.sent().into_iter().map(|e| (e.to, e.subject)).collect()
    }
    fn app(&self) -> &dyn AppWriter {
        self.app.as_ref()
    }
    async fn pass(&self, by: Duration) {
        self.clock.advance(chrono::Duration::from_std(by).unwrap());
    }
}

struct Aws {
    runtime: JobRuntime,
    app: Arc<dyn AppWriter>,
    clock: Arc<VirtualClock>,
    mailer: Arc<Flaky>,
    moto: Moto,
}

impl Aws {
    async fn start() -> Self {
        let moto = Moto::start().await;
        let store = db::fresh_postgres().await;
        seed(&store).await;
        let (url, dlq) = moto.create_queue_pair(&format!("daily-summary-{}", uuid()), MAX_RECEIVES, 30).await;
        let ses = moto.ses().await;
        ses.verify_email_identity().email_address("jobs@example.com").send().await.unwrap();
        let queue = Arc::new(SqsQueue::new(moto.sqs().await, url, dlq));
        let mailer = Arc::new(Flaky {
            inner: Arc::new(SesMailer::new(ses)),
            failing: AtomicU64::new(0),
            latency_ms: AtomicU64::new(0),
        });
        // SQS keeps real time; the runtime's clock only dates runs and claims, so a test can age claims.
        let clock = Arc::new(VirtualClock::new(shared::time::SystemClock.now()));
        let store = infra::wiring::Store::Postgres(Arc::new(store));
        let runtime = runtime(&store, queue, mailer.clone(), clock.clone());
        Self { runtime, app: store.writer(), clock, mailer, moto }
    }
}

fn uuid() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

#[async_trait]
impl Stack for Aws {
    fn runtime(&self) -> &JobRuntime {
        &self.runtime
    }
    fn mailer(&self) -> &Flaky {
        &self.mailer
    }
    fn clock(&self) -> &VirtualClock {
        &self.clock
    }
    async fn sent(&self) -> Vec<(String, String)> {
        let header = |raw: &str, name: &str| raw.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned);
        self.moto
            .raw_emails()
            .await
            .iter()
            .filter_map(|raw| Some((header(raw, "To: ")?, header(raw, "Subject: ")?)))
            .collect()
    }
    fn app(&self) -> &dyn AppWriter {
        self.app.as_ref()
    }
    async fn pass(&self, by: Duration) {
        tokio::time::sleep(by).await;
        self.clock.advance(chrono::Duration::from_std(by).unwrap());
    }
}

fn trigger(at: &str) -> Trigger {
    Trigger { time: utc(at), source: TriggerSource::Scheduler, task: Some(daily_summary::NAME.into()) }
}

async fn drain_totals(stack: &dyn Stack) -> WorkReport {
    let mut total = WorkReport::default();
    for batch in stack.runtime().drain().await.unwrap() {
        total.merge(&batch.totals());
    }
    total
}

async fn fans_out_and_mails_each_due_active_user_once(stack: &dyn Stack) {
    let rt = stack.runtime();
    let plan = rt.plan(trigger("2026-11-22T01:00:00Z")).await.unwrap();
    assert_eq!((plan.status, plan.planned, plan.messages), (PlanStatus::Planned, 3, 1));
    assert_eq!(rt.queue.depth().await.unwrap(), 1);
    let work = drain_totals(stack).await;
    assert_eq!(work.sent, 1);
    assert_eq!(work.skipped.get("opted out of reports by email"), Some(&1));
    assert_eq!(work.skipped.get("no activity"), Some(&1));
    assert_eq!(stack.sent_to().await, vec!["ana@example.com".to_owned()]);
    let run = rt.runs.run(daily_summary::NAME, utc("2026-11-22T01:00:00Z")).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.planned, run.sent, run.skipped), ("done", 3, 1, 2));

    // The same slot again, as a retried or duplicated invocation: nothing new.
    let again = rt.plan(trigger("2026-11-22T01:00:00Z")).await.unwrap();
    assert_eq!((again.status, again.messages), (PlanStatus::AlreadyPlanned, 0));
    assert_eq!(rt.queue.depth().await.unwrap(), 0);
    // New York's slot is another run.
    let ny = rt.plan(trigger("2026-11-22T11:00:00Z")).await.unwrap();
    assert_eq!(ny.planned, 1);
    assert_eq!(drain_totals(stack).await.sent, 1);
}

async fn a_redelivered_message_sends_nothing_twice(stack: &dyn Stack) {
    let rt = stack.runtime();
    rt.plan(trigger("2026-11-22T01:00:00Z")).await.unwrap();
    let received = rt.queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(received.len(), 1);
    let first = rt.work(sqs_event(&received)).await;
    let second = rt.work(sqs_event(&received)).await;
    assert_eq!(first.totals().sent, 1);
    assert_eq!(second.totals().sent, 0);
    assert_eq!(second.totals().already_done, 1);
    assert!(second.response().batch_item_failures.is_empty());
    assert_eq!(stack.sent_to().await, vec!["ana@example.com".to_owned()]);
    // The run counts the message once: one sent, one finished message, Cy's "no activity" once.
    let run = rt.runs.run(daily_summary::NAME, utc("2026-11-22T01:00:00Z")).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.messages_done, run.sent, run.skipped), ("done", 1, 1, 2));
}

async fn a_message_failing_every_receive_lands_in_the_dead_letter_queue(stack: &dyn Stack) {
    let rt = stack.runtime();
    stack.mailer().failing.store(1, Ordering::SeqCst);
    rt.plan(trigger("2026-11-22T01:00:00Z")).await.unwrap();
    let mut retries = 0;
    for _ in 0..10 {
        for batch in rt.drain().await.unwrap() {
            let failures = batch.response().batch_item_failures;
            retries += failures.len();
            assert!(matches!(batch.messages[0].1, MessageOutcome::Retry { .. }));
        }
        if !rt.queue.peek_dead_letters(10).await.unwrap().is_empty() {
            break;
        }
        stack.pass(Duration::from_millis(1_500)).await;
    }
    assert_eq!(retries, MAX_RECEIVES as usize, "each receive but the last failed and asked for a retry");
    let dead = rt.queue.peek_dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body.contains("\"daily-summary\""));
    assert_eq!(rt.queue.depth().await.unwrap(), 0);
    assert!(stack.sent_to().await.is_empty());
    let run = rt.runs.run(daily_summary::NAME, utc("2026-11-22T01:00:00Z")).await.unwrap().unwrap();
    assert!(run.errors.last().unwrap().contains("Throttling"), "{:?}", run.errors);
}

async fn a_malformed_message_is_dead_lettered_while_its_batch_goes_on(stack: &dyn Stack) {
    let rt = stack.runtime();
    rt.plan(trigger("2026-11-22T01:00:00Z")).await.unwrap();
    rt.queue.send_batch(&["{not json".to_owned()]).await.unwrap();
    let reports = rt.drain().await.unwrap();
    let outcomes: Vec<&MessageOutcome> = reports.iter().flat_map(|b| b.messages.iter().map(|(_, o)| o)).collect();
    assert_eq!(outcomes.len(), 2);
    assert!(reports.iter().all(|b| b.response().batch_item_failures.is_empty()));
    assert_eq!(stack.sent_to().await, vec!["ana@example.com".to_owned()]);
    let dead = rt.queue.peek_dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "{not json");
    assert!(dead[0].reason.starts_with("unparseable message"), "{}", dead[0].reason);
    assert_eq!(rt.queue.depth().await.unwrap(), 0);
}

/// Mo moves from New York to Tokyo at 10:00 UTC on the 22nd, just before New York's 06:00 would have sent
/// their 21st, and after Tokyo's had passed: no plan picks them for the 21st. Lu moves from Tokyo to New York
/// just after Tokyo's 06:00 sent their 21st: New York's 06:00 plans the 21st again, and the 20th, since Lu
/// moved. Each still gets each active day once, from the first 06:00 that plans it.
async fn a_user_who_moves_zone_gets_each_days_summary_once_and_loses_none(stack: &dyn Stack) {
    let rt = stack.runtime();
    let app = stack.app();
    let movers = [("Mo", "mo@example.com", "America/New_York"), ("Lu", "lu@example.com", "Asia/Tokyo")];
    let users: Vec<NewUser> = movers
        .iter()
        .map(|(name, email, zone)| NewUser {
            name: name.to_string(),
            email: email.to_string(),
            phone: None,
            time_zone: zone.to_string(),
            email_opt_in: true,
        })
        .collect();
    let ids = app.add_users(&users).await.unwrap();
    let (mo, lu) = (ids[0], ids[1]);
    let mut workouts = vec![];
    for user in [mo, lu] {
        for day in ["2026-11-20", "2026-11-21", "2026-11-22"] {
            workouts.push(NewWorkout {
                user_id: user,
                name: "Run".into(),
                started_at: utc(&format!("{day}T03:00:00Z")),
                local_date: day.parse().unwrap(),
                duration_minutes: 30,
                calories: 300,
                sets: vec![],
            });
        }
    }
    app.add_workouts(&workouts).await.unwrap();
    let start = utc("2026-11-20T12:00:00Z");
    for hour in 0..72 {
        let slot = start + chrono::Duration::hours(hour);
        if slot == utc("2026-11-21T22:00:00Z") {
            app.set_time_zone(&[lu], "America/New_York").await.unwrap();
        }
        if slot == utc("2026-11-22T10:00:00Z") {
            app.set_time_zone(&[mo], "Asia/Tokyo").await.unwrap();
        }
        rt.plan(Trigger { time: slot, source: TriggerSource::Scheduler, task: None }).await.unwrap();
        drain_totals(stack).await;
    }
    let sent = stack.sent().await;
    assert_eq!(days_for(&sent, "mo@example.com"), ["Friday 20 November", "Saturday 21 November", "Sunday 22 November"]);
    assert_eq!(days_for(&sent, "lu@example.com"), ["Friday 20 November", "Saturday 21 November", "Sunday 22 November"]);
}

/// The days of the summaries sent to `to`, in the order of the calendar, each as often as it was sent.
fn days_for(sent: &[(String, String)], to: &str) -> Vec<String> {
    let mut days: Vec<(NaiveDate, String)> = sent
        .iter()
        .filter(|(recipient, _)| recipient == to)
        .map(|(_, subject)| {
            let day = subject.strip_prefix("Your ").and_then(|s| s.split(':').next()).unwrap_or(subject).to_owned();
            (NaiveDate::parse_from_str(&format!("{day} 2026"), "%A %d %B %Y").unwrap(), day)
        })
        .collect();
    days.sort();
    days.into_iter().map(|(_, day)| day).collect()
}

/// A batch cut off by its invocation's deadline: the sends that finished are recorded at once, the rest are
/// handed back unstarted. Run again — right away, and once more after every claim's hold has passed — each
/// user is mailed once.
async fn a_batch_cut_off_by_its_deadline_mails_each_user_once(stack: &dyn Stack) {
    let rt = stack.runtime();
    let more: Vec<NewUser> = (0..9)
        .map(|n| NewUser {
            name: format!("K{n}"),
            email: format!("k{n}@example.com"),
            phone: None,
            time_zone: "Asia/Kolkata".into(),
            email_opt_in: true,
        })
        .collect();
    let ids = stack.app().add_users(&more).await.unwrap();
    let workouts: Vec<NewWorkout> = ids
        .iter()
        .map(|&user_id| NewWorkout {
            user_id,
            name: "Row".into(),
            started_at: utc("2026-11-21T03:00:00Z"),
            local_date: "2026-11-21".parse().unwrap(),
            duration_minutes: 20,
            calories: 200,
            sets: vec![],
        })
        .collect();
    stack.app().add_workouts(&workouts).await.unwrap();
    rt.plan(trigger("2026-11-22T01:00:00Z")).await.unwrap();
    let received = rt.queue.receive(10, Duration::from_secs(30)).await.unwrap();
    stack.mailer().latency_ms.store(100, Ordering::SeqCst);
    // One second left, 0.8 s of it the margin: sends start (one per 50 ms) only in the first 0.2 s.
    let context = Context {
        request_id: "cut-short".into(),
        deadline: Deadline::new(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_millis(800)),
    };
    let cut = rt.work_within(sqs_event(&received), &context).await;
    let first = stack.sent_to().await.len();
    assert!((1..10).contains(&first), "some sends started before the margin, not all: {first}");
    assert_eq!(cut.totals().sent, 0, "the message is not done");
    let (retried, _) = cut.retried_and_dead_lettered();
    assert_eq!(retried, 1);
    // Again at once: the unstarted users were handed back and are sent now; the sent ones are not repeated.
    let again = rt.work(sqs_event(&received)).await;
    assert_eq!(again.totals().sent as usize, 10 - first);
    // And once more after the claims' hold: nothing is left to send.
    stack.clock().advance(chrono::Duration::minutes(3));
    let late = rt.work(sqs_event(&received)).await;
    assert_eq!((late.totals().sent, late.totals().already_done), (0, 10));
    let mut sent = stack.sent_to().await;
    sent.sort();
    let before = sent.len();
    sent.dedup();
    assert_eq!((before, sent.len()), (10, 10), "each of the ten active users mailed once");
    let run = rt.runs.run(daily_summary::NAME, utc("2026-11-22T01:00:00Z")).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.sent, run.messages_done), ("done", 10, 1));
}

macro_rules! on_both_stacks {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(&super::Embedded::start().await).await;
            })*
        }
        mod postgres_and_moto {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(&super::Aws::start().await).await;
            })*
        }
    };
}

on_both_stacks!(
    fans_out_and_mails_each_due_active_user_once,
    a_redelivered_message_sends_nothing_twice,
    a_message_failing_every_receive_lands_in_the_dead_letter_queue,
    a_malformed_message_is_dead_lettered_while_its_batch_goes_on,
    a_user_who_moves_zone_gets_each_days_summary_once_and_loses_none,
    a_batch_cut_off_by_its_deadline_mails_each_user_once,
);

#[tokio::test]
async fn the_email_read_back_from_ses_has_a_text_and_an_html_part() {
    let stack = Aws::start().await;
    stack.runtime.plan(trigger("2026-11-22T01:00:00Z")).await.unwrap();
    assert_eq!(drain_totals(&stack).await.sent, 1);
    let raw = stack.moto.raw_emails().await;
    assert_eq!(raw.len(), 1);
    let mail = &raw[0];
    assert!(mail.contains("text/plain") && mail.contains("text/html"), "{mail}");
    assert!(mail.contains("Subject: Your Saturday 21 November: 1 workout, 45 min"), "{mail}");
}

/// SES refuses the sender (its identity was removed): no recipient is at fault. The batch stops sending and fails
/// as the function's error, with no address in any text it leaves; nothing is marked failed for good, so the
/// same batch after the fix sends each email once.
#[tokio::test]
async fn a_refused_sender_fails_the_batch_and_the_retry_after_the_fix_sends_each_email_once() {
    let stack = Aws::start().await;
    let ses = stack.moto.ses().await;
    ses.delete_identity().identity("jobs@example.com").send().await.unwrap();
    let rt = &stack.runtime;
    rt.plan(trigger("2026-11-22T01:00:00Z")).await.unwrap();
    let received = rt.queue.receive(10, Duration::from_secs(30)).await.unwrap();
    let batch = serde_json::to_value(sqs_event(&received)).unwrap();
    let e = rt.handle(batch.clone(), &rt.settings.local_context()).await.unwrap_err();
    assert!(matches!(e, Error::Sender(_)) && e.is_retryable(), "{e:?}");
    assert!(!e.to_string().contains('@'), "an address in the function's error: {e}");
    assert!(stack.sent_to().await.is_empty());
    let run = rt.runs.run(daily_summary::NAME, utc("2026-11-22T01:00:00Z")).await.unwrap().unwrap();
    assert_eq!((run.failed, run.messages_done), (0, 0), "nobody failed for good, the message is not finished");
    assert!(run.errors.iter().all(|e| !e.contains('@')), "an address in job_runs.errors: {:?}", run.errors);
    ses.verify_email_identity().email_address("jobs@example.com").send().await.unwrap();
    let fixed = rt.handle(batch, &rt.settings.local_context()).await.unwrap().into_response();
    assert_eq!(fixed["batchItemFailures"], serde_json::json!([]));
    assert_eq!(stack.sent_to().await, vec!["ana@example.com".to_owned()]);
    let run = rt.runs.run(daily_summary::NAME, utc("2026-11-22T01:00:00Z")).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.sent, run.failed), ("done", 1, 0));
}
