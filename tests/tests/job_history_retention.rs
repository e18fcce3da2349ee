//! job-history-retention on both stores: what it deletes, what it never may (a key a message can still claim,
//! a key that can come back at any time), and the floor that keeps an old slot from running again after its
//! history is gone.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use integration_tests::nudges::{Backend, Stack};
use shared::{
    ports::{ClaimState, DeliveryKey, NewUser, NewWorkout, RunPart, Settled, Settlement},
    runtime::MessageOutcome,
    tasks::{
        fitness::{daily_summary, inactivity_reminders},
        maintenance::job_history_retention::{self, Retention},
        shop::order_notifications,
    },
    time::Clock,
};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A delivery key of `task` done at `at`, as a send at that moment leaves it.
async fn key_done(stack: &Stack, task: &str, subject: &str, period: &str, at: DateTime<Utc>) {
    let ledger = stack.store.ledger();
    let key = DeliveryKey { subject: subject.into(), period: period.into() };
    let claimed = ledger.claim(task, std::slice::from_ref(&key), at, Duration::from_secs(60)).await.unwrap();
    let [(_, ClaimState::Won(attempt))] = claimed[..] else { panic!("{claimed:?}") };
    let settled = Settled { key, attempt, settlement: Settlement::Done };
    ledger.settle(task, RunPart { slot: at, part: 0 }, &[settled], at).await.unwrap();
}

/// Whether a key is still recorded: a claim of it at `at` does not win.
async fn key_kept(stack: &Stack, task: &str, subject: &str, period: &str, at: DateTime<Utc>) -> bool {
    let key = DeliveryKey { subject: subject.into(), period: period.into() };
    let claimed = stack.store.ledger().claim(task, &[key], at, Duration::from_secs(60)).await.unwrap();
    claimed[0].1 == ClaimState::Done
}

async fn planned_run(stack: &Stack, task: &str, slot: DateTime<Utc>) {
    let runs = stack.store.runs();
    runs.begin_run(task, slot, slot, false).await.unwrap();
    runs.finish_plan(task, slot, 1, 1, &[], slot).await.unwrap();
}

async fn londoner_who_trained_on(stack: &Stack, day: &str) -> i64 {
    let user = NewUser {
        name: "Ana".into(),
        email: "ana@example.com".into(),
        phone: None,
        time_zone: "Europe/London".into(),
        email_opt_in: true,
    };
    let id = stack.app.add_users(&[user]).await.unwrap()[0];
    stack.app.set_created_at(&[id], utc("2026-01-05T10:00:00Z")).await.unwrap();
    let local_date: NaiveDate = day.parse().unwrap();
    let workout = NewWorkout {
        user_id: id,
        name: "Run".into(),
        started_at: utc(&format!("{day}T07:00:00Z")),
        local_date,
        duration_minutes: 30,
        calories: 300,
        sets: vec![],
    };
    stack.app.add_workouts(&[workout]).await.unwrap();
    id
}

/// Through the runtime, at the default retention (90 days): runs and keys older than it go, and the run counts
/// them; keys younger stay, and so do the keys of tasks that may claim them again at any time, however old.
async fn deletes_what_is_older_than_the_retention_and_never_a_key_that_can_come_back(backend: Backend) {
    let now = utc("2026-11-28T05:00:00Z");
    let stack = Stack::start(job_history_retention::NAME, backend, now).await;
    let (old, young, ancient) =
        (now - chrono::Duration::days(91), now - chrono::Duration::days(89), utc("2025-01-01T00:00:00Z"));
    key_done(&stack, daily_summary::NAME, "user:1", "2026-08-28", old).await;
    key_done(&stack, daily_summary::NAME, "user:2", "2026-08-30", young).await;
    key_done(&stack, inactivity_reminders::NAME, "user:1", "2024-12-01", ancient).await;
    key_done(&stack, order_notifications::NAME, "order:9", "order-placed", ancient).await;
    planned_run(&stack, daily_summary::NAME, old).await;
    planned_run(&stack, daily_summary::NAME, young).await;

    stack.plan("2026-11-28T05:00:00Z").await;
    let totals = stack.drain_totals().await;

    let later = now + chrono::Duration::minutes(1);
    assert!(!key_kept(&stack, daily_summary::NAME, "user:1", "2026-08-28", later).await, "the old key stayed");
    assert!(
        key_kept(&stack, daily_summary::NAME, "user:2", "2026-08-30", later).await,
        "a key within the retention went"
    );
    assert!(key_kept(&stack, inactivity_reminders::NAME, "user:1", "2024-12-01", later).await, "a reminder's key went");
    assert!(key_kept(&stack, order_notifications::NAME, "order:9", "order-placed", later).await, "an order's key went");
    let runs = stack.store.runs();
    assert!(runs.run(daily_summary::NAME, old).await.unwrap().is_none(), "the old run stayed");
    assert!(runs.run(daily_summary::NAME, young).await.unwrap().is_some(), "a run within the retention went");
    // The old run; the counts each old settlement wrote into a run message of its moment (three: the old key's,
    // and the ancient ones', whose keys stay); the old key.
    assert_eq!(totals.sent, 5, "{totals:?}");
    // The task's slots are days: its cutoff is counted from the day's start.
    let day = utc("2026-11-28T00:00:00Z");
    let run = runs.run(job_history_retention::NAME, day).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.sent), ("done", 5), "{run:?}");
    let floor = runs.history_floor().await.unwrap().unwrap();
    assert_eq!(floor, day - chrono::Duration::days(90) + chrono::Duration::days(33));
}

/// The daily summary of a slot is sent; two months later its history is gone; then the slot's message comes
/// back (an operator redrives a copy kept somewhere) and a person backfills the slot. Neither sends again.
async fn an_old_slot_does_not_run_again_once_its_history_is_deleted(backend: Backend) {
    let slot = "2026-11-22T06:00:00Z";
    let stack = Stack::start(daily_summary::NAME, backend, utc(slot)).await;
    londoner_who_trained_on(&stack, "2026-11-21").await;
    stack.plan(slot).await;
    let queue = stack.runtime.queue.clone();
    let received = queue.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(received.len(), 1);
    let bodies: Vec<String> = received.iter().map(|m| m.body.clone()).collect();
    for message in &received {
        queue.change_visibility(&message.receipt, Duration::ZERO).await.unwrap();
    }
    stack.drain().await;
    assert_eq!(stack.mailer.sent().len(), 1);

    stack.set_clock("2027-01-30T05:00:00Z");
    let cutoff = Retention::days(Retention::minimum().num_days()).unwrap().cutoff(stack.clock.now());
    let history = stack.store.history();
    let (deleted, finished) =
        job_history_retention::delete(history.as_ref(), &cutoff, 100, None, || true).await.unwrap();
    assert!(finished && deleted.deliveries == 1 && deleted.runs == 1, "{deleted:?}");

    queue.send_batch(&bodies).await.unwrap();
    let outcomes: Vec<MessageOutcome> =
        stack.drain().await.into_iter().flat_map(|b| b.messages.into_iter().map(|(_, o)| o)).collect();
    match &outcomes[..] {
        [MessageOutcome::DeadLettered { reason }] => {
            assert!(reason.contains("older than the job history kept"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let trigger =
        shared::invocation::Trigger { time: utc(slot), source: shared::invocation::TriggerSource::Manual, task: None };
    let e = stack.runtime.plan(trigger).await.unwrap_err().to_string();
    assert!(e.contains("cannot plan") && e.contains("older than the job history kept"), "{e}");
    assert_eq!(stack.mailer.sent().len(), 1, "sent twice");
}

/// A plan whose planner died, older than the floor, could never be resumed (its slot is refused), and every
/// later plan of the task, which resumes such plans first, would fail on it: the retention deletes it.
async fn a_plan_left_unfinished_before_the_floor_blocks_no_later_plan(backend: Backend) {
    let stack = Stack::start(daily_summary::NAME, backend, utc("2027-01-30T05:00:00Z")).await;
    let dead = utc("2026-12-10T06:00:00Z");
    stack.store.runs().begin_run(daily_summary::NAME, dead, dead, false).await.unwrap();
    let cutoff = Retention::days(Retention::minimum().num_days()).unwrap().cutoff(stack.clock.now());
    assert!(cutoff.before < dead && dead < cutoff.floor, "{cutoff:?}");
    let history = stack.store.history();
    assert_eq!(history.count_history(&cutoff).await.unwrap().runs, 1);
    job_history_retention::delete(history.as_ref(), &cutoff, 100, None, || true).await.unwrap();
    stack.set_clock("2027-01-30T06:00:00Z");
    let report = stack.plan("2027-01-30T06:00:00Z").await;
    assert!(report.caught_up.is_empty(), "{report:?}");
    assert!(stack.store.runs().run(daily_summary::NAME, dead).await.unwrap().is_none());
}

/// One reminder per stretch without a workout, however long the stretch: its key outlives any retention, or the
/// reminder would come again the day after the key went.
async fn a_long_stretch_without_a_workout_gets_one_reminder_whatever_the_retention(backend: Backend) {
    let stack = Stack::start(inactivity_reminders::NAME, backend, utc("2026-11-22T18:00:00Z")).await;
    londoner_who_trained_on(&stack, "2026-11-15").await;
    stack.plan("2026-11-22T18:00:00Z").await;
    stack.drain().await;
    assert_eq!(stack.mailer.sent().len(), 1);

    stack.set_clock("2027-06-10T18:00:00Z");
    let cutoff = Retention::days(Retention::minimum().num_days()).unwrap().cutoff(stack.clock.now());
    let history = stack.store.history();
    job_history_retention::delete(history.as_ref(), &cutoff, 100, None, || true).await.unwrap();
    stack.plan("2027-06-10T18:00:00Z").await;
    stack.drain().await;
    assert_eq!(stack.mailer.sent().len(), 1, "reminded twice for one stretch");
}

/// Each transaction deletes at most its batch of each table; cut short (a deadline), the next pass finishes.
async fn batches_stay_within_their_bound_and_a_cut_short_pass_is_finished_by_the_next(backend: Backend) {
    let now = utc("2026-11-28T05:00:00Z");
    let stack = Stack::start(job_history_retention::NAME, backend, now).await;
    let old = now - chrono::Duration::days(100);
    for n in 0..12 {
        key_done(&stack, daily_summary::NAME, &format!("user:{n}"), "2026-08-20", old).await;
    }
    let cutoff = Retention::days(90).unwrap().cutoff(now);
    let history = stack.store.history();
    let before = history.count_history(&cutoff).await.unwrap();
    assert_eq!(before.deliveries, 12, "{before:?}");
    let batch = history.delete_history_batch(&cutoff, 5, None).await.unwrap();
    assert_eq!(batch.deliveries, 5, "{batch:?}");
    assert!(batch.run_messages <= 5 && batch.runs <= 5, "{batch:?}");
    // One more batch allowed, then the deadline: not finished.
    let allowed = std::sync::atomic::AtomicU32::new(1);
    let more = || allowed.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) > 0;
    let (cut, finished) = job_history_retention::delete(history.as_ref(), &cutoff, 5, None, more).await.unwrap();
    assert!(!finished && cut.deliveries == 5, "{cut:?}");
    let (rest, finished) = job_history_retention::delete(history.as_ref(), &cutoff, 5, None, || true).await.unwrap();
    assert!(finished && rest.deliveries == 2, "{rest:?}");
    assert_eq!(history.count_history(&cutoff).await.unwrap().total(), 0);
}

/// A batch of delivery keys takes the oldest first, whatever order they were written in. On PostgreSQL the
/// order is what makes the batch read its keys through (task, updated_at) rather than scan the table for any 500
/// (200 ms a batch behind 2 million kept keys; BENCHMARKS.md).
async fn a_batch_of_delivery_keys_takes_the_oldest_first(backend: Backend) {
    let now = utc("2026-11-28T05:00:00Z");
    let stack = Stack::start(job_history_retention::NAME, backend, now).await;
    let oldest = now - chrono::Duration::days(100);
    // Written newest first.
    for n in (0..6).rev() {
        key_done(&stack, daily_summary::NAME, &format!("user:{n}"), "2026-08-20", oldest + chrono::Duration::days(n))
            .await;
    }
    let cutoff = Retention::days(90).unwrap().cutoff(now);
    let batch = stack.store.history().delete_history_batch(&cutoff, 2, None).await.unwrap();
    assert_eq!(batch.deliveries, 2, "{batch:?}");
    let mut kept = vec![];
    for n in 0..6 {
        kept.push(key_kept(&stack, daily_summary::NAME, &format!("user:{n}"), "2026-08-20", now).await);
    }
    assert_eq!(kept, [false, false, true, true, true, true], "the two oldest keys went");
}

/// A key's age counts from its last claim. Its settlement leaves the stamp (on PostgreSQL that keeps the
/// settlement's update heap-only, writing no index entry: BENCHMARKS.md), and a claim taken again renews it.
/// A settlement two days after its claim is far-fetched; it makes the difference show.
async fn a_keys_age_counts_from_its_last_claim(backend: Backend) {
    let now = utc("2026-11-28T05:00:00Z");
    let stack = Stack::start(job_history_retention::NAME, backend, now).await;
    let (ledger, history) = (stack.store.ledger(), stack.store.history());
    let cutoff = Retention::days(90).unwrap().cutoff(now);
    let key = DeliveryKey { subject: "user:1".into(), period: "2026-08-28".into() };
    let (claimed, settled) = (now - chrono::Duration::days(91), now - chrono::Duration::days(89));
    let claim = |at| {
        let (ledger, key) = (ledger.clone(), key.clone());
        async move { ledger.claim(daily_summary::NAME, &[key], at, Duration::from_secs(60)).await.unwrap()[0].1 }
    };
    let settle = |attempt, at| {
        let (ledger, key) = (ledger.clone(), key.clone());
        let outcome = Settled { key, attempt, settlement: Settlement::Retry("throttled".into()) };
        async move { ledger.settle(daily_summary::NAME, RunPart { slot: at, part: 0 }, &[outcome], at).await.unwrap() }
    };

    assert_eq!(claim(claimed).await, ClaimState::Won(1));
    assert_eq!(settle(1, settled).await, 1);
    assert_eq!(history.count_history(&cutoff).await.unwrap().deliveries, 1, "the settlement renewed the key's age");
    assert_eq!(claim(settled).await, ClaimState::Won(2));
    assert_eq!(history.count_history(&cutoff).await.unwrap().deliveries, 0, "a new claim did not renew it");
}

/// The delivery keys' index of age is by task first: the retention deletes some tasks' keys and keeps the
/// others', and reads only the keys it may delete. On PostgreSQL it was built concurrently, and is valid.
async fn delivery_keys_are_indexed_by_task_then_age(backend: Backend) {
    let stack = Stack::start(job_history_retention::NAME, backend, utc("2026-11-28T05:00:00Z")).await;
    let indexes: Vec<(String, bool)> = match &stack.store {
        infra::wiring::Store::Postgres(pg) => sqlx::query_as(
            "SELECT c.relname::text, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = 'deliveries'::regclass ORDER BY 1",
        )
        .fetch_all(pg.pool())
        .await
        .unwrap(),
        infra::wiring::Store::Sqlite(lite) => sqlx::query_as(
            "SELECT name, true FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' ORDER BY 1",
        )
        .fetch_all(lite.db())
        .await
        .unwrap(),
    };
    let names: Vec<&str> = indexes.iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.contains(&"deliveries_task_updated"), "{indexes:?}");
    assert!(!names.contains(&"deliveries_updated"), "{indexes:?}");
    assert!(indexes.iter().all(|(_, valid)| *valid), "{indexes:?}");
}

/// On-demand requests not changed for the retention go (their events expired weeks before); newer ones,
/// finished or not, stay.
async fn requests_not_changed_for_the_retention_are_deleted(backend: Backend) {
    use shared::ports::{Request, RequestOutcome, RequestState};
    let now = utc("2026-11-28T05:00:00Z");
    let stack = Stack::start(job_history_retention::NAME, backend, now).await;
    let runs = stack.store.runs();
    let hold = Duration::from_secs(90);
    let finish = |id: &'static str, at: DateTime<Utc>| {
        let runs = runs.clone();
        async move {
            let request = Request { id: id.into(), user_id: 7 };
            runs.start_request("food-recognition", &request, at, hold).await.unwrap();
            runs.finish_request(id, 1, &RequestOutcome::Succeeded(serde_json::json!({})), at).await.unwrap();
        }
    };
    finish("summer.png", now - chrono::Duration::days(100)).await;
    finish("autumn.png", now - chrono::Duration::days(30)).await;
    let cutoff = Retention::days(90).unwrap().cutoff(now);
    let history = stack.store.history();
    assert_eq!(history.count_history(&cutoff).await.unwrap().requests, 1);
    let (deleted, finished) = job_history_retention::delete(history.as_ref(), &cutoff, 5, None, || true).await.unwrap();
    assert!(finished && deleted.requests == 1, "{deleted:?}");
    assert!(runs.request("summer.png").await.unwrap().is_none());
    assert_eq!(runs.request("autumn.png").await.unwrap().unwrap().state, RequestState::Succeeded);
}

integration_tests::on_both_stores!(
    a_batch_of_delivery_keys_takes_the_oldest_first,
    a_keys_age_counts_from_its_last_claim,
    delivery_keys_are_indexed_by_task_then_age,
    requests_not_changed_for_the_retention_are_deleted,
    deletes_what_is_older_than_the_retention_and_never_a_key_that_can_come_back,
    an_old_slot_does_not_run_again_once_its_history_is_deleted,
    a_long_stretch_without_a_workout_gets_one_reminder_whatever_the_retention,
    a_plan_left_unfinished_before_the_floor_blocks_no_later_plan,
    batches_stay_within_their_bound_and_a_cut_short_pass_is_finished_by_the_next,
);
