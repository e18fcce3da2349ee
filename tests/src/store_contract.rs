//! The store contract: what `RunStore`, `Ledger`, `ActivityStore`, the fitness tasks' ports, `Contacts` and
//! `AppWriter` promise, written once and run on PostgreSQL and SQLite alike (tests/tests/stores.rs).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use shared::ports::{
    ActivityStore, AppWriter, ChallengeEdge, ChallengeNotices, Channel, Choice, ClaimState, Contacts, DeliveryKey,
    Device, Inactive, InactivityReminders, Kind, Ledger, MonthlyReports, NewSet, NewUser, NewWorkout, PlanHistory,
    RunPart, RunStart, RunStore, Settled, Settlement, SkippedSlot, WeeklyReports, WorkTally, ZoneMoves,
};

/// `f(0)` to `f(n - 1)` at once, each on a task of its own (so on the runtime's threads in parallel), and their
/// results in that order.
async fn at_once<T, Fut>(n: u64, f: impl Fn(u64) -> Fut) -> Vec<T>
where
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("a task of at_once"));
    }
    results
}

/// One backend's ports, all over the same database.
#[derive(Clone)]
pub struct Stores {
    pub runs: Arc<dyn RunStore>,
    pub moves: Arc<dyn ZoneMoves>,
    pub ledger: Arc<dyn Ledger>,
    pub activity: Arc<dyn ActivityStore>,
    pub writer: Arc<dyn AppWriter>,
    pub weekly: Arc<dyn WeeklyReports>,
    pub monthly: Arc<dyn MonthlyReports>,
    pub inactivity: Arc<dyn InactivityReminders>,
    pub challenges: Arc<dyn ChallengeNotices>,
    pub contacts: Arc<dyn Contacts>,
    /// The store itself, for what no port does (moving the database's own stamps into the past).
    pub store: infra::wiring::Store,
}

impl From<infra::wiring::Store> for Stores {
    fn from(store: infra::wiring::Store) -> Self {
        Self {
            runs: store.runs(),
            moves: store.zone_moves(),
            ledger: store.ledger(),
            activity: store.activity(),
            writer: store.writer(),
            weekly: store.weekly_reports(),
            monthly: store.monthly_reports(),
            inactivity: store.inactivity_reminders(),
            challenges: store.challenge_notices(),
            contacts: store.contacts(),
            store,
        }
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn key(subject: &str) -> DeliveryKey {
    DeliveryKey { subject: subject.into(), period: "2026-11-21".into() }
}

const SLOT: &str = "2026-11-22T06:00:00Z";
const HOLD: Duration = Duration::from_secs(300);

pub async fn a_slot_is_planned_once_and_an_unfinished_plan_resumes(s: Stores) {
    let (slot, now) = (utc(SLOT), utc("2026-11-22T06:00:03Z"));
    assert_eq!(s.runs.begin_run("t", slot, now, false).await.unwrap(), RunStart::Started);
    // Its planner died before finish_plan: the next one resumes it.
    assert_eq!(s.runs.begin_run("t", slot, now, false).await.unwrap(), RunStart::Resumed);
    s.runs.finish_plan("t", slot, 7, 2, &[], now).await.unwrap();
    match s.runs.begin_run("t", slot, now, false).await.unwrap() {
        RunStart::AlreadyPlanned(run) => {
            assert_eq!((run.status.as_str(), run.planned, run.messages), ("planned", 7, 2));
            assert_eq!(run.slot, slot);
        }
        other => panic!("{other:?}"),
    }
    // Another task's run of the same slot is its own.
    assert_eq!(s.runs.begin_run("other", slot, now, false).await.unwrap(), RunStart::Started);
}

pub async fn a_plan_with_no_messages_is_done_at_once(s: Stores) {
    let (slot, now) = (utc(SLOT), utc("2026-11-22T06:00:03Z"));
    s.runs.begin_run("t", slot, now, false).await.unwrap();
    s.runs.finish_plan("t", slot, 0, 0, &["zone Mars/Olympus_Mons is unknown".into()], now).await.unwrap();
    let run = s.runs.run("t", slot).await.unwrap().unwrap();
    assert_eq!(run.status, "done");
    assert_eq!(run.finished_at, Some(now));
    assert_eq!(run.errors, ["zone Mars/Olympus_Mons is unknown"]);
}

pub async fn a_run_is_done_when_its_last_message_is_and_keeps_the_last_five_errors(s: Stores) {
    let (slot, now) = (utc(SLOT), utc("2026-11-22T06:00:03Z"));
    s.runs.begin_run("t", slot, now, false).await.unwrap();
    // A worker may finish a message before the plan is closed.
    let early = WorkTally { part: 0, message_finished: true, ..Default::default() };
    s.runs.record_work("t", slot, &early, now).await.unwrap();
    s.runs.finish_plan("t", slot, 30, 3, &[], now).await.unwrap();
    assert_eq!(s.runs.run("t", slot).await.unwrap().unwrap().status, "planned");
    for i in 0..6 {
        let retry = WorkTally { part: 1, errors: vec![format!("e{i}")], ..Default::default() };
        s.runs.record_work("t", slot, &retry, now).await.unwrap();
    }
    let second = WorkTally { part: 1, skipped: 4, message_finished: true, ..Default::default() };
    s.runs.record_work("t", slot, &second, now).await.unwrap();
    assert_eq!(s.runs.run("t", slot).await.unwrap().unwrap().status, "planned");
    let later = utc("2026-11-22T06:01:00Z");
    let last = WorkTally { part: 2, errors: vec!["e6".into()], message_finished: true, ..Default::default() };
    s.runs.record_work("t", slot, &last, later).await.unwrap();
    let run = s.runs.run("t", slot).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.messages_done, run.skipped), ("done", 3, 4));
    assert_eq!(run.finished_at, Some(later));
    assert_eq!(run.errors, ["e2", "e3", "e4", "e5", "e6"]);
}

pub async fn concurrent_workers_lose_no_count(s: Stores) {
    let (slot, now) = (utc(SLOT), utc("2026-11-22T06:00:03Z"));
    s.runs.begin_run("t", slot, now, false).await.unwrap();
    s.runs.finish_plan("t", slot, 500, 50, &[], now).await.unwrap();
    at_once(50, |part| {
        let (runs, ledger) = (s.runs.clone(), s.ledger.clone());
        async move {
            // Each worker sends to three users of its own and fails one for good, then reports.
            let keys: Vec<_> = (0..4).map(|n| key(&format!("user:{part}-{n}"))).collect();
            ledger.claim("t", &keys, now, HOLD).await.unwrap();
            let outcomes: Vec<_> = keys
                .iter()
                .map(|k| Settled {
                    key: k.clone(),
                    attempt: 1,
                    settlement: if k.subject.ends_with("-3") {
                        Settlement::Failed("rejected".into())
                    } else {
                        Settlement::Done
                    },
                })
                .collect();
            ledger.settle("t", RunPart { slot, part }, &outcomes, now).await.unwrap();
            let tally = WorkTally { part, skipped: 1, message_finished: true, ..Default::default() };
            runs.record_work("t", slot, &tally, now).await.unwrap();
        }
    })
    .await;
    let run = s.runs.run("t", slot).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.messages_done, run.sent, run.skipped, run.failed), ("done", 50, 150, 50, 50));
}

/// A worker killed after its sends were recorded, before it reported its message: the sends still count.
pub async fn a_settlement_counts_in_its_run_whether_or_not_its_worker_reports(s: Stores) {
    let (slot, now) = (utc(SLOT), utc("2026-11-22T06:00:03Z"));
    s.runs.begin_run("t", slot, now, false).await.unwrap();
    s.runs.finish_plan("t", slot, 3, 1, &[], now).await.unwrap();
    let keys = [key("user:1"), key("user:2"), key("user:3")];
    s.ledger.claim("t", &keys, now, HOLD).await.unwrap();
    let run = RunPart { slot, part: 0 };
    s.ledger.settle("t", run, &[settled("user:1", 1, Settlement::Done)], now).await.unwrap();
    // Killed here. Its message comes back after the claims expired: the retry sends the other two.
    let later = now + chrono::Duration::seconds(301);
    let again = s.ledger.claim("t", &keys, later, HOLD).await.unwrap();
    assert_eq!(
        again.iter().map(|(_, state)| *state).collect::<Vec<_>>(),
        [ClaimState::Done, ClaimState::Won(2), ClaimState::Won(2)]
    );
    let rest = [settled("user:2", 2, Settlement::Done), settled("user:3", 2, Settlement::Failed("rejected".into()))];
    s.ledger.settle("t", run, &rest, later).await.unwrap();
    // A late settlement of the first worker's claims is fenced, and counts nothing.
    assert_eq!(s.ledger.settle("t", run, &[settled("user:2", 1, Settlement::Done)], later).await.unwrap(), 0);
    let tally = WorkTally { part: 0, message_finished: true, ..Default::default() };
    s.runs.record_work("t", slot, &tally, later).await.unwrap();
    let run = s.runs.run("t", slot).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.sent, run.failed, run.messages_done), ("done", 2, 1, 1));
}

pub async fn recent_runs_come_newest_first_and_filter_by_task(s: Stores) {
    let now = utc("2026-11-22T09:00:00Z");
    for (task, slot) in [("a", "2026-11-22T06:00:00Z"), ("b", "2026-11-22T07:00:00Z"), ("a", "2026-11-22T08:00:00Z")] {
        s.runs.begin_run(task, utc(slot), now, false).await.unwrap();
    }
    let all: Vec<_> =
        s.runs.recent_runs(None, 10).await.unwrap().into_iter().map(|r| (r.task, r.slot.hour())).collect();
    assert_eq!(all, [("a".to_string(), 8), ("b".to_string(), 7), ("a".to_string(), 6)]);
    let a: Vec<_> = s.runs.recent_runs(Some("a"), 1).await.unwrap().into_iter().map(|r| r.slot.hour()).collect();
    assert_eq!(a, [8]);
}

fn skipped(slot: DateTime<Utc>, reason: &str) -> Vec<SkippedSlot> {
    vec![SkippedSlot { slot, reason: reason.into() }]
}

pub async fn a_skipped_slot_is_recorded_once_with_its_reason(s: Stores) {
    let (slot, now) = (utc(SLOT), utc("2026-11-22T06:00:03Z"));
    assert_eq!(s.runs.plan_history("t").await.unwrap(), PlanHistory::default());
    assert_eq!(s.runs.record_skipped("t", &skipped(slot, "missed; catch-up policy none"), now).await.unwrap(), 1);
    assert_eq!(s.runs.record_skipped("t", &skipped(slot, "again"), now).await.unwrap(), 0);
    let run = s.runs.run("t", slot).await.unwrap().unwrap();
    assert_eq!(
        (run.status.as_str(), run.errors.as_slice()),
        ("skipped", ["missed; catch-up policy none".to_string()].as_slice())
    );
    assert!(matches!(s.runs.begin_run("t", slot, now, false).await.unwrap(), RunStart::AlreadyPlanned(_)));
    // A planned slot is never turned into a skipped one; many slots are recorded in one call.
    let planned = utc("2026-11-22T07:00:00Z");
    s.runs.begin_run("t", planned, now, false).await.unwrap();
    s.runs.finish_plan("t", planned, 1, 1, &[], now).await.unwrap();
    let mut many = skipped(planned, "overlap");
    many.extend(skipped(utc("2026-11-22T04:00:00Z"), "older than the catch-up horizon"));
    assert_eq!(s.runs.record_skipped("t", &many, now).await.unwrap(), 1);
    assert_eq!(s.runs.run("t", planned).await.unwrap().unwrap().status, "planned");
    assert_eq!(s.runs.run("t", utc("2026-11-22T04:00:00Z")).await.unwrap().unwrap().status, "skipped");
    assert_eq!(s.runs.plan_history("t").await.unwrap().latest, Some(planned));
}

pub async fn a_skipped_slot_can_be_planned_by_hand_but_a_planned_one_never(s: Stores) {
    let (slot, now) = (utc(SLOT), utc("2026-11-22T08:00:00Z"));
    s.runs.record_skipped("t", &skipped(slot, "missed; catch-up policy none"), now).await.unwrap();
    assert_eq!(s.runs.begin_run("t", slot, now, true).await.unwrap(), RunStart::Started, "a backfill plans it");
    let run = s.runs.run("t", slot).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.started_at, run.finished_at), ("planning", now, None));
    assert!(run.errors.is_empty(), "the skip's reason no longer describes the run: {:?}", run.errors);
    s.runs.finish_plan("t", slot, 3, 1, &[], now).await.unwrap();
    match s.runs.begin_run("t", slot, now, true).await.unwrap() {
        RunStart::AlreadyPlanned(run) => assert_eq!(run.status, "planned"),
        other => panic!("a planned slot was planned again: {other:?}"),
    }
}

pub async fn an_unfinished_plan_is_found_and_does_not_count_for_catch_up(s: Stores) {
    let now = utc("2026-11-22T09:00:00Z");
    let (done, dead, later_dead) = (utc(SLOT), utc("2026-11-22T07:00:00Z"), utc("2026-11-22T08:00:00Z"));
    s.runs.begin_run("t", done, now, false).await.unwrap();
    s.runs.finish_plan("t", done, 1, 1, &[], now).await.unwrap();
    s.runs.begin_run("t", dead, now, false).await.unwrap();
    s.runs.begin_run("t", later_dead, now, false).await.unwrap();
    s.runs.begin_run("other", utc("2026-11-22T05:00:00Z"), now, false).await.unwrap();
    let history = s.runs.plan_history("t").await.unwrap();
    assert_eq!(history.unfinished, [dead, later_dead], "oldest first, this task's");
    assert_eq!(history.latest, Some(done), "an unfinished plan is not where catch-up starts");
}

pub async fn a_message_delivered_again_counts_once(s: Stores) {
    let (slot, now) = (utc(SLOT), utc("2026-11-22T06:00:03Z"));
    s.runs.begin_run("t", slot, now, false).await.unwrap();
    s.runs.finish_plan("t", slot, 20, 2, &[], now).await.unwrap();
    // Part 0: cut short by the deadline, then finished by its retry, then delivered once more.
    let cut = WorkTally { part: 0, skipped: 2, ..Default::default() };
    let finished = WorkTally { part: 0, skipped: 2, message_finished: true, ..Default::default() };
    let duplicate = WorkTally { part: 0, skipped: 3, message_finished: true, ..Default::default() };
    for tally in [&cut, &finished, &duplicate] {
        s.runs.record_work("t", slot, tally, now).await.unwrap();
    }
    let run = s.runs.run("t", slot).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.messages_done, run.skipped), ("planned", 1, 2));
    // Two copies of part 1 at once (SQS delivered it twice): one finish.
    at_once(2, |_| {
        let runs = s.runs.clone();
        async move {
            let tally = WorkTally { part: 1, skipped: 10, message_finished: true, ..Default::default() };
            runs.record_work("t", slot, &tally, now).await.unwrap();
        }
    })
    .await;
    let run = s.runs.run("t", slot).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.messages_done, run.skipped), ("done", 2, 12));
}

/// Copies of one message settling and reporting at once (SQS delivered it many times): each key and the finish
/// count once in the run, however the settlements and the reports interleave.
pub async fn a_messages_counts_add_up_however_its_copies_interleave(s: Stores) {
    let (slot, now) = (utc(SLOT), utc("2026-11-22T06:00:03Z"));
    s.runs.begin_run("t", slot, now, false).await.unwrap();
    s.runs.finish_plan("t", slot, 20, 1, &[], now).await.unwrap();
    at_once(20, |n| {
        let (runs, ledger) = (s.runs.clone(), s.ledger.clone());
        async move {
            let subject = format!("user:{n}");
            ledger.claim("t", &[key(&subject)], now, HOLD).await.unwrap();
            let run = RunPart { slot, part: 0 };
            ledger.settle("t", run, &[settled(&subject, 1, Settlement::Done)], now).await.unwrap();
            let tally = WorkTally { part: 0, skipped: 1, message_finished: true, ..Default::default() };
            runs.record_work("t", slot, &tally, now).await.unwrap();
        }
    })
    .await;
    // Each settlement was followed by its copy's report, which saw it.
    let run = s.runs.run("t", slot).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.sent, run.skipped, run.messages_done), ("done", 20, 1, 1));
}

pub async fn a_lease_has_one_holder_until_it_expires_or_is_released(s: Stores) {
    let now = utc("2026-11-22T06:00:00Z");
    let ttl = Duration::from_secs(60);
    assert!(s.runs.acquire_lease("plan:t", "a", now, ttl).await.unwrap());
    assert!(!s.runs.acquire_lease("plan:t", "b", now, ttl).await.unwrap());
    assert!(s.runs.acquire_lease("plan:t", "a", now, ttl).await.unwrap(), "its holder renews it");
    assert!(s.runs.acquire_lease("plan:other", "b", now, ttl).await.unwrap(), "leases are per name");
    s.runs.release_lease("plan:t", "b").await.unwrap();
    assert!(!s.runs.acquire_lease("plan:t", "b", now, ttl).await.unwrap(), "only its holder releases it");
    let expired = now + chrono::Duration::seconds(61);
    assert!(s.runs.acquire_lease("plan:t", "b", expired, ttl).await.unwrap(), "an expired lease is taken over");
    s.runs.release_lease("plan:t", "b").await.unwrap();
    assert!(s.runs.acquire_lease("plan:t", "c", expired, ttl).await.unwrap());
}

pub async fn a_claim_is_won_once_and_settled_for_good(s: Stores) {
    let now = utc("2026-11-22T06:00:00Z");
    let keys = [key("user:1"), key("user:2"), key("user:3"), key("user:1")];
    let states: Vec<_> = s.ledger.claim("t", &keys, now, HOLD).await.unwrap().into_iter().map(|(_, st)| st).collect();
    assert_eq!(
        states,
        [ClaimState::Won(1), ClaimState::Won(1), ClaimState::Won(1), ClaimState::Busy],
        "a repeated key is won once"
    );
    let again: Vec<_> = s.ledger.claim("t", &keys[..1], now, HOLD).await.unwrap();
    assert_eq!(again, [(key("user:1"), ClaimState::Busy)]);
    let outcomes = [
        settled("user:1", 1, Settlement::Done),
        settled("user:2", 1, Settlement::Failed("address rejected".into())),
        settled("user:3", 1, Settlement::Retry("throttled".into())),
    ];
    assert_eq!(s.ledger.settle("t", RunPart { slot: utc(SLOT), part: 0 }, &outcomes, now).await.unwrap(), 3);
    let later = now + chrono::Duration::seconds(1);
    let states: Vec<_> =
        s.ledger.claim("t", &keys[..3], later, HOLD).await.unwrap().into_iter().map(|(_, st)| st).collect();
    assert_eq!(states, [ClaimState::Done, ClaimState::Failed, ClaimState::Won(2)], "a retryable key is claimed again");
    // The same subject and period under another task is another delivery.
    assert_eq!(s.ledger.claim("other", &keys[..1], later, HOLD).await.unwrap()[0].1, ClaimState::Won(1));
}

fn settled(subject: &str, attempt: u32, settlement: Settlement) -> Settled {
    Settled { key: key(subject), attempt, settlement }
}

pub async fn only_the_claims_holder_settles_it(s: Stores) {
    let now = utc("2026-11-22T06:00:00Z");
    assert_eq!(s.ledger.claim("t", &[key("user:1")], now, HOLD).await.unwrap()[0].1, ClaimState::Won(1));
    // The first worker stalls past its hold; a second takes the key over and sends.
    let after = now + chrono::Duration::seconds(301);
    assert_eq!(s.ledger.claim("t", &[key("user:1")], after, HOLD).await.unwrap()[0].1, ClaimState::Won(2));
    let run = RunPart { slot: utc(SLOT), part: 0 };
    assert_eq!(s.ledger.settle("t", run, &[settled("user:1", 2, Settlement::Done)], after).await.unwrap(), 1);
    // The stalled worker wakes and settles what it held: nothing changes, and no third claim wins.
    let stale = [settled("user:1", 1, Settlement::Retry("timed out".into()))];
    assert_eq!(s.ledger.settle("t", run, &stale, after).await.unwrap(), 0);
    let third = after + chrono::Duration::seconds(1);
    assert_eq!(s.ledger.claim("t", &[key("user:1")], third, HOLD).await.unwrap()[0].1, ClaimState::Done);
}

pub async fn a_crashed_workers_claim_expires_and_is_taken_over(s: Stores) {
    let now = utc("2026-11-22T06:00:00Z");
    assert_eq!(s.ledger.claim("t", &[key("user:1")], now, HOLD).await.unwrap()[0].1, ClaimState::Won(1));
    let before = now + chrono::Duration::seconds(299);
    assert_eq!(s.ledger.claim("t", &[key("user:1")], before, HOLD).await.unwrap()[0].1, ClaimState::Busy);
    let after = now + chrono::Duration::seconds(300);
    assert_eq!(s.ledger.claim("t", &[key("user:1")], after, HOLD).await.unwrap()[0].1, ClaimState::Won(2));
}

pub async fn concurrent_claims_of_one_key_have_one_winner(s: Stores) {
    let now = utc("2026-11-22T06:00:00Z");
    let claims = at_once(20, |_| {
        let ledger = s.ledger.clone();
        async move { ledger.claim("t", &[key("user:1")], now, HOLD).await.unwrap()[0].1 }
    })
    .await;
    assert_eq!(claims.iter().filter(|state| **state == ClaimState::Won(1)).count(), 1);
}

/// A plan counts a user's move from its period's first plan on, less a commit's slack, both on the database's
/// clock: who moved well before was in their new zone for every plan of the period. A period never planned (from
/// before this release, or forgotten) counts every move.
pub async fn moves_count_from_a_periods_first_plan(s: Stores) {
    let ids = users(&s, &["Ana", "Bo", "Cy"]).await;
    let (ana, cy) = (ids[0], ids[2]);
    let moved = |task: &'static str, period: &'static str| {
        let (moves, ids) = (s.moves.clone(), ids.clone());
        async move {
            let mut moved = moves.moved_since(task, period, &ids).await.unwrap();
            moved.sort();
            moved
        }
    };
    assert_eq!(moved("t", "2026-11-21").await, [] as [i64; 0]);
    s.writer.set_time_zone(&[ana], "America/New_York").await.unwrap();
    s.writer.set_time_zone(&ids[1..2], "Asia/Kolkata").await.unwrap(); // the same zone: no move
    assert_eq!(moved("t", "2026-11-21").await, [ana], "never planned: every move counts");
    backdate(&s.store, 60).await;
    s.moves.planning("t", "2026-11-20", "2026-11-18").await.unwrap();
    s.moves.planning("t", "2026-11-21", "2026-11-19").await.unwrap();
    assert_eq!(moved("t", "2026-11-21").await, [] as [i64; 0], "Ana moved an hour before the first plan");
    s.writer.set_time_zone(&[cy], "Europe/London").await.unwrap();
    assert_eq!(moved("t", "2026-11-21").await, [cy]);
    backdate(&s.store, 60).await;
    // Planned again an hour later: still counted from the first plan.
    s.moves.planning("t", "2026-11-21", "2026-11-19").await.unwrap();
    assert_eq!(moved("t", "2026-11-21").await, [cy]);
    s.moves.planning("other", "2026-11-21", "2026-11-19").await.unwrap();
    assert_eq!(moved("other", "2026-11-21").await, [] as [i64; 0], "another task's first plan is its own");
    assert_eq!(moved("t", "2026-11-20").await, [cy]);
    // The 22nd's first plan forgets the periods before the 21st: the 20th counts every move again.
    s.moves.planning("t", "2026-11-22", "2026-11-21").await.unwrap();
    assert_eq!(moved("t", "2026-11-20").await, [ana, cy]);
    assert_eq!(moved("t", "2026-11-21").await, [cy], "kept");
}

/// Moves every stamp of a move or a period's plan `minutes` back, as if made that long ago.
async fn backdate(store: &infra::wiring::Store, minutes: i64) {
    use infra::wiring::Store;
    for (table, column) in [("zone_moves", "moved_at"), ("period_plans", "started_at")] {
        match store {
            Store::Postgres(pg) => {
                sqlx::query(&format!("UPDATE {table} SET {column} = {column} - make_interval(mins => $1::int)"))
                    .bind(minutes as i32)
                    .execute(pg.pool())
                    .await
                    .unwrap();
            }
            Store::Sqlite(lite) => {
                sqlx::query(&format!("UPDATE {table} SET {column} = {column} - ?1 / 1440.0"))
                    .bind(minutes)
                    .execute(lite.db())
                    .await
                    .unwrap();
            }
        }
    }
}

pub async fn a_user_moves_to_another_zone(s: Stores) {
    let ids = s.writer.add_users(&[user("Ana", "Asia/Kolkata", true), user("Bo", "Asia/Kolkata", true)]).await.unwrap();
    s.writer.set_time_zone(&ids[..1], "America/New_York").await.unwrap();
    let mut contacts = s.contacts.contacts(&ids).await.unwrap();
    contacts.sort_by_key(|c| c.user_id);
    let zones: Vec<_> = contacts.iter().map(|r| r.time_zone.as_str()).collect();
    assert_eq!(zones, ["America/New_York", "Asia/Kolkata"]);
}

fn user(name: &str, zone: &str, opt_in: bool) -> NewUser {
    NewUser {
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        phone: None,
        time_zone: zone.into(),
        email_opt_in: opt_in,
    }
}

fn workout(user_id: i64, name: &str, local: &str, at: &str, minutes: i64, sets: Vec<NewSet>) -> NewWorkout {
    NewWorkout {
        user_id,
        name: name.into(),
        started_at: utc(at),
        local_date: day(local),
        duration_minutes: minutes,
        calories: minutes * 10,
        sets,
    }
}

fn set(exercise_id: i64, weight_kg: f64, reps: i64, personal_record: bool) -> NewSet {
    NewSet { exercise_id, weight_kg, reps, personal_record }
}

pub async fn users_are_paged_by_zone_and_read_back(s: Stores) {
    let ids = s
        .writer
        .add_users(&[
            user("Ana", "Asia/Kolkata", true),
            user("Bo", "Europe/London", false),
            user("Cy", "Asia/Kolkata", true),
            user("Di", "Mars/Olympus_Mons", true),
            user("Ed", "Asia/Kathmandu", true),
        ])
        .await
        .unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in input order: {ids:?}");
    assert_eq!(
        s.activity.time_zones().await.unwrap(),
        ["Asia/Kathmandu", "Asia/Kolkata", "Europe/London", "Mars/Olympus_Mons"]
    );
    let zones = ["Asia/Kolkata".to_string(), "Asia/Kathmandu".to_string()];
    assert_eq!(s.activity.users_in_zones(&zones, 0, 2).await.unwrap(), [ids[0], ids[2]]);
    assert_eq!(s.activity.users_in_zones(&zones, ids[2], 2).await.unwrap(), [ids[4]]);
    assert!(s.activity.users_in_zones(&zones, ids[4], 2).await.unwrap().is_empty());
    // A user deleted since they were planned is simply absent.
    let recipients = s.contacts.contacts(&[ids[1], ids[0], 999_999]).await.unwrap();
    assert_eq!(recipients.len(), 2);
    let bo = recipients.iter().find(|r| r.user_id == ids[1]).unwrap();
    assert_eq!(
        (bo.name.as_str(), bo.email.as_str(), bo.time_zone.as_str(), bo.email_opt_in),
        ("Bo", "bo@example.com", "Europe/London", false)
    );
    let exercises = s.writer.add_exercises(&["Squat".into(), "Bench".into()]).await.unwrap();
    assert_eq!(s.writer.add_exercises(&["Bench".into()]).await.unwrap(), [exercises[1]], "found by name");
}

pub async fn a_days_activity_adds_up_with_its_records_and_streak(s: Stores) {
    let ids = users(&s, &["Ana", "Bo", "Cy"]).await;
    let (ana, bo, cy) = (ids[0], ids[1], ids[2]);
    let ex = s.writer.add_exercises(&["Squat".into(), "Bench".into()]).await.unwrap();
    s.writer
        .add_workouts(&[
            // Ana: active on the 19th, 20th and 21st (two workouts that day), not the 18th, active the 17th.
            workout(
                ana,
                "Legs",
                "2026-11-21",
                "2026-11-21T02:00:00Z",
                50,
                vec![set(ex[0], 100.0, 5, true), set(ex[0], 80.0, 10, false)],
            ),
            workout(ana, "Run", "2026-11-21", "2026-11-21T12:00:00Z", 30, vec![]),
            workout(ana, "Push", "2026-11-20", "2026-11-20T02:00:00Z", 40, vec![set(ex[1], 60.0, 8, true)]),
            workout(ana, "Pull", "2026-11-19", "2026-11-19T02:00:00Z", 40, vec![]),
            workout(ana, "Yoga", "2026-11-17", "2026-11-17T02:00:00Z", 40, vec![]),
            // Bo: only the day before: nothing on the 21st.
            workout(bo, "Run", "2026-11-20", "2026-11-20T02:00:00Z", 25, vec![]),
            // Cy: the 21st only, a streak of one.
            workout(cy, "Bench day", "2026-11-21", "2026-11-21T03:00:00Z", 45, vec![set(ex[1], 50.0, 10, false)]),
        ])
        .await
        .unwrap();
    let d21 = day("2026-11-21");
    let days = s.activity.day_activity(&[(ana, d21), (bo, d21), (cy, d21), (ana, d21)]).await.unwrap();
    assert_eq!(days.len(), 2, "Bo, with no workout that day, is absent: {days:?}");
    let a = days.iter().find(|d| d.user_id == ana).unwrap();
    assert_eq!(a.day, d21);
    let names: Vec<_> = a.workouts.iter().map(|w| (w.name.as_str(), w.duration_minutes, w.calories)).collect();
    assert_eq!(names, [("Legs", 50, 500), ("Run", 30, 300)], "in the order they started");
    assert_eq!(a.volume_kg, 100.0 * 5.0 + 80.0 * 10.0);
    assert_eq!(a.records.len(), 1);
    assert_eq!((a.records[0].exercise.as_str(), a.records[0].weight_kg, a.records[0].reps), ("Squat", 100.0, 5));
    assert_eq!(a.streak_days, 3, "the 19th to the 21st; the gap on the 18th ends it");
    let c = days.iter().find(|d| d.user_id == cy).unwrap();
    assert_eq!((c.volume_kg, c.records.len(), c.streak_days), (500.0, 0, 1));
    // The same user on another day is another summary.
    let d20 = day("2026-11-20");
    let a20 = s.activity.day_activity(&[(ana, d20)]).await.unwrap();
    assert_eq!((a20[0].streak_days, a20[0].volume_kg, a20[0].records.len()), (2, 480.0, 1));
    assert!(s.activity.day_activity(&[]).await.unwrap().is_empty());
}

async fn users(s: &Stores, names: &[&str]) -> Vec<i64> {
    let users: Vec<_> = names.iter().map(|name| user(name, "Asia/Kolkata", true)).collect();
    s.writer.add_users(&users).await.unwrap()
}

/// A workout of `minutes` on a local day, without sets.
fn trained(user_id: i64, local: &str, minutes: i64) -> NewWorkout {
    workout(user_id, "Run", local, &format!("{local}T02:00:00Z"), minutes, vec![])
}

pub async fn a_weeks_report_adds_up_monday_to_sunday_with_eight_weeks_of_minutes(s: Stores) {
    let ids = users(&s, &["Ana", "Bo", "Cy"]).await;
    let (ana, bo, cy) = (ids[0], ids[1], ids[2]);
    let ex = s.writer.add_exercises(&["Squat".into(), "Bench".into()]).await.unwrap();
    s.writer
        .add_workouts(&[
            // Ana's week of Monday the 16th: Monday and Sunday only, 30 minutes each.
            workout(
                ana,
                "Legs",
                "2026-11-16",
                "2026-11-16T02:00:00Z",
                30,
                vec![set(ex[0], 100.0, 5, true), set(ex[0], 80.0, 10, false)],
            ),
            workout(ana, "Run", "2026-11-22", "2026-11-22T02:00:00Z", 20, vec![set(ex[1], 60.0, 8, true)]),
            workout(ana, "Swim", "2026-11-22", "2026-11-22T12:00:00Z", 10, vec![]),
            // Outside the week: the Monday after and the Sunday before (the chart's previous week).
            trained(ana, "2026-11-23", 90),
            trained(ana, "2026-11-15", 25),
            // The chart's first week, and the day before it.
            trained(ana, "2026-09-28", 15),
            trained(ana, "2026-09-27", 99),
            // Bo trained the week before only; Cy this week only.
            trained(bo, "2026-11-15", 40),
            trained(cy, "2026-11-18", 45),
        ])
        .await
        .unwrap();
    let monday = day("2026-11-16");
    let weeks = s.weekly.weeks(&[(ana, monday), (bo, monday), (cy, monday), (ana, monday)]).await.unwrap();
    assert_eq!(weeks.iter().map(|w| w.user_id).collect::<Vec<_>>(), [ana, cy], "Bo, idle that week, is absent");
    let a = &weeks[0];
    assert_eq!(a.monday, monday);
    assert_eq!((a.workouts, a.minutes, a.calories), (3, 60, 600));
    assert_eq!(a.volume_kg, 100.0 * 5.0 + 80.0 * 10.0 + 60.0 * 8.0, "the week's sets only");
    let records: Vec<_> = a.records.iter().map(|r| (r.exercise.as_str(), r.weight_kg, r.reps)).collect();
    assert_eq!(records, [("Squat", 100.0, 5), ("Bench", 60.0, 8)]);
    assert_eq!((a.best_day, a.best_day_minutes), (monday, 30), "30 minutes on Monday and on Sunday: the earlier");
    assert_eq!(a.minutes_by_week, [15, 0, 0, 0, 0, 0, 25, 60]);
    let c = &weeks[1];
    assert_eq!((c.workouts, c.minutes, c.volume_kg, c.best_day), (1, 45, 0.0, day("2026-11-18")));
    assert_eq!(c.minutes_by_week, [0, 0, 0, 0, 0, 0, 0, 45], "a week before with nothing is a zero");
    assert!(s.weekly.weeks(&[]).await.unwrap().is_empty());
}

pub async fn a_months_standings_are_built_once_and_ties_share_a_rank(s: Stores) {
    let ids = users(&s, &["Ana", "Bo", "Cy", "Di", "Ed"]).await;
    let (ana, bo, cy, di, ed) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    s.writer
        .add_workouts(&[
            // November 2026 starts on a Sunday and ends on a Monday: its first and last weeks are cut.
            // Ana: 30 on Sunday the 1st (100 more the day before, in October), 40 in the week of the 2nd, 30 on
            // Monday the 30th (100 more the day after, in December). The week of the 2nd is her best.
            trained(ana, "2026-10-31", 100),
            trained(ana, "2026-11-01", 30),
            trained(ana, "2026-11-03", 40),
            trained(ana, "2026-11-30", 30),
            trained(ana, "2026-12-01", 100),
            // Bo: as many minutes as Ana, 50 in the week of the 9th and 50 in that of the 30th: the earlier.
            trained(bo, "2026-11-10", 50),
            trained(bo, "2026-11-30", 50),
            trained(cy, "2026-11-15", 50),
            // Di trained in October only.
            trained(di, "2026-10-15", 60),
        ])
        .await
        .unwrap();
    let november = day("2026-11-01");
    let now = utc("2026-12-01T00:05:00Z");
    let builds = at_once(2, |_| {
        let monthly = s.monthly.clone();
        async move { monthly.build_standings(november, now).await.unwrap() }
    })
    .await;
    assert_eq!(builds, [3, 3], "both callers see the one build's users");
    // Ed trains after the standings were built: his month has no standing, and building again changes nothing.
    s.writer.add_workouts(&[trained(ed, "2026-11-20", 500)]).await.unwrap();
    assert_eq!(s.monthly.build_standings(november, now).await.unwrap(), 3);
    let mut months = s
        .monthly
        .months(&[(ana, november), (bo, november), (cy, november), (di, november), (ed, november)])
        .await
        .unwrap();
    months.sort_by_key(|m| m.user_id);
    assert_eq!(months.iter().map(|m| m.user_id).collect::<Vec<_>>(), [ana, bo, cy, ed], "Di, idle, is absent");
    let standing = |i: usize| months[i].standing.as_ref().map(|s| (s.rank, s.ranked, (s.percentile * 100.0).round()));
    assert_eq!(standing(0), Some((1, 3, 3333.0)), "one of three below");
    assert_eq!(standing(1), Some((1, 3, 3333.0)), "equal minutes share the rank");
    assert_eq!(standing(2), Some((3, 3, 0.0)), "after two at rank 1 comes rank 3");
    assert_eq!(standing(3), None, "not in the standings");
    let a = &months[0];
    assert_eq!((a.month, a.workouts, a.minutes), (november, 3, 100), "October's and December's days left out");
    assert_eq!((a.minutes_per_week * 1000.0).round(), 23_333.0, "100 minutes over 30/7 weeks");
    assert_eq!(a.best_week, day("2026-11-02"), "the cut first and last weeks count only their November days");
    assert_eq!(months[1].best_week, day("2026-11-09"), "of equal weeks, the earlier");
    assert_eq!(months[2].best_week, day("2026-11-09"));
    assert_eq!(months[3].best_week, day("2026-11-16"));
    assert!(s.monthly.build_standings(day("2026-11-02"), now).await.is_err(), "not a month's first day");
}

pub async fn inactivity_counts_from_the_last_workout_or_the_sign_up(s: Stores) {
    let ids = users(&s, &["Ana", "Bo", "Cy", "Di", "Ed"]).await;
    let (ana, bo, cy, di, ed) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    s.writer.set_created_at(&ids, utc("2026-01-01T10:00:00Z")).await.unwrap();
    // Di signed up yesterday, late in the UTC day.
    s.writer.set_created_at(&[di], utc("2026-11-21T23:30:00Z")).await.unwrap();
    s.writer
        .add_workouts(&[
            // Ana last trained three days ago, Bo two; Ed's last workout was long ago, but he is not asked about.
            trained(ana, "2026-11-10", 30),
            trained(ana, "2026-11-19", 30),
            trained(bo, "2026-11-20", 30),
            trained(ed, "2026-10-01", 30),
        ])
        .await
        .unwrap();
    let today = day("2026-11-22");
    let inactive = s.inactivity.inactive(&[ana, bo, cy, di], today, 3).await.unwrap();
    assert_eq!(
        inactive,
        [
            Inactive { user_id: ana, last_workout: Some(day("2026-11-19")), stretch_start: day("2026-11-20") },
            Inactive { user_id: cy, last_workout: None, stretch_start: day("2026-01-01") },
        ],
        "three days without a workout is inactive, two is not; a user who never trained counts from sign-up"
    );
    let later = s.inactivity.inactive(&[di], day("2026-11-24"), 3).await.unwrap();
    assert_eq!(later, [Inactive { user_id: di, last_workout: None, stretch_start: day("2026-11-21") }]);
    assert!(s.inactivity.inactive(&[], today, 3).await.unwrap().is_empty());
}

pub async fn challenge_notices_come_for_each_edge_falling_on_the_day(s: Stores) {
    let ids = users(&s, &["Ana", "Bo", "Cy", "Di", "Ed"]).await;
    let (ana, bo, cy, di, ed) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    s.writer.set_time_zone(&[cy], "Europe/London").await.unwrap();
    let tomorrow = day("2026-11-23");
    let challenge = |title: &'static str, starts: &'static str, ends: &'static str| {
        let writer = s.writer.clone();
        async move { writer.add_challenge(title, day(starts), day(ends)).await.unwrap() }
    };
    let starts = challenge("Starts", "2026-11-23", "2026-11-30").await;
    let ends = challenge("Ends", "2026-11-01", "2026-11-23").await;
    let one_day = challenge("One day", "2026-11-23", "2026-11-23").await;
    let backwards = challenge("Backwards", "2026-11-23", "2026-11-20").await;
    let later = challenge("Later", "2026-11-24", "2026-11-30").await;
    s.writer.join_challenge(starts, &[ana, cy]).await.unwrap();
    s.writer.join_challenge(starts, &[ana]).await.unwrap();
    s.writer.join_challenge(one_day, &[ana]).await.unwrap();
    s.writer.join_challenge(ends, &[bo]).await.unwrap();
    s.writer.join_challenge(backwards, &[bo]).await.unwrap();
    s.writer.join_challenge(later, &[di]).await.unwrap();
    let kolkata = ["Asia/Kolkata".to_string()];
    assert_eq!(s.challenges.participants_due(&kolkata, tomorrow, 0, 10).await.unwrap(), [ana, bo]);
    assert_eq!(s.challenges.participants_due(&kolkata, tomorrow, 0, 1).await.unwrap(), [ana]);
    assert_eq!(s.challenges.participants_due(&kolkata, tomorrow, ana, 1).await.unwrap(), [bo]);
    assert!(s.challenges.participants_due(&kolkata, tomorrow, bo, 10).await.unwrap().is_empty());
    let mut notices: Vec<_> = s
        .challenges
        .notices(&[ana, bo, cy, di, ed], tomorrow)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.user_id, n.challenge_id, n.title, n.starts_on, n.ends_on, n.edge))
        .collect();
    notices.sort();
    let notice = |user: i64, id: i64, title: &str, starts: &str, ends: &str, edge: ChallengeEdge| {
        (user, id, title.to_string(), day(starts), day(ends), edge)
    };
    let mut expected = vec![
        notice(ana, starts, "Starts", "2026-11-23", "2026-11-30", ChallengeEdge::Starts),
        notice(ana, one_day, "One day", "2026-11-23", "2026-11-23", ChallengeEdge::Starts),
        notice(ana, one_day, "One day", "2026-11-23", "2026-11-23", ChallengeEdge::Ends),
        notice(bo, ends, "Ends", "2026-11-01", "2026-11-23", ChallengeEdge::Ends),
        notice(bo, backwards, "Backwards", "2026-11-23", "2026-11-20", ChallengeEdge::Starts),
        notice(cy, starts, "Starts", "2026-11-23", "2026-11-30", ChallengeEdge::Starts),
    ];
    expected.sort();
    assert_eq!(notices, expected, "Di's challenge is another day; Ed joined none");
}

fn device(id: &str, platform: &str) -> Device {
    Device {
        endpoint_arn: format!("arn:aws:sns:eu-west-1:123456789012:endpoint/{platform}/fitness/{id}"),
        platform: platform.into(),
    }
}

pub async fn contacts_carry_enabled_devices_and_explicit_choices(s: Stores) {
    let mut ana = user("Ana", "Europe/London", true);
    ana.phone = Some("+447700900123".into());
    let ids = s.writer.add_users(&[ana, user("Bo", "Asia/Kolkata", false)]).await.unwrap();
    let (phone, tablet) = (device("1", "APNS"), device("2", "GCM"));
    s.contacts.add_device(ids[0], &phone).await.unwrap();
    s.contacts.add_device(ids[0], &tablet).await.unwrap();
    s.contacts.disable_device(&tablet.endpoint_arn).await.unwrap();
    let sms = Choice { kind: Kind::Reminders, channel: Channel::Sms, allowed: true };
    s.contacts.choose(ids[0], sms).await.unwrap();
    s.contacts.choose(ids[0], Choice { allowed: false, ..sms }).await.unwrap();
    s.contacts.choose(ids[0], Choice { kind: Kind::Reports, channel: Channel::Email, allowed: false }).await.unwrap();

    // A user deleted since they were planned is absent; a user with neither devices nor choices is there.
    let mut contacts = s.contacts.contacts(&[ids[1], 999_999, ids[0]]).await.unwrap();
    contacts.sort_by_key(|c| c.user_id);
    assert_eq!(contacts.len(), 2);
    let (ana, bo) = (&contacts[0], &contacts[1]);
    assert_eq!(
        (ana.name.as_str(), ana.email.as_str(), ana.phone.as_deref(), ana.time_zone.as_str(), ana.email_opt_in),
        ("Ana", "ana@example.com", Some("+447700900123"), "Europe/London", true)
    );
    assert_eq!(ana.devices, std::slice::from_ref(&phone), "the disabled tablet is left out");
    let mut choices = ana.choices.clone();
    choices.sort_by_key(|c| (c.kind, c.channel));
    assert_eq!(
        choices,
        [
            Choice { kind: Kind::Reports, channel: Channel::Email, allowed: false },
            Choice { kind: Kind::Reminders, channel: Channel::Sms, allowed: false },
        ],
        "the last choice of a (kind, channel) stands"
    );
    assert!(bo.devices.is_empty() && bo.choices.is_empty() && !bo.email_opt_in && bo.phone.is_none());

    // Registered again, the tablet is enabled again; signed in on by Bo, the phone is his now.
    s.contacts.add_device(ids[0], &tablet).await.unwrap();
    s.contacts.add_device(ids[1], &phone).await.unwrap();
    let mut contacts = s.contacts.contacts(&ids).await.unwrap();
    contacts.sort_by_key(|c| c.user_id);
    assert_eq!((&contacts[0].devices, &contacts[1].devices), (&vec![tablet], &vec![phone]));
}

pub async fn contacts_of_many_users_are_read_at_once(s: Stores) {
    let users: Vec<NewUser> = (0..1500).map(|i| user(&format!("U{i}"), "Asia/Kolkata", true)).collect();
    let mut ids = s.writer.add_users(&users).await.unwrap();
    for id in &ids[..3] {
        s.contacts.add_device(*id, &device(&id.to_string(), "APNS")).await.unwrap();
    }
    ids.extend(2_000_000..2_001_000);
    let contacts = s.contacts.contacts(&ids).await.unwrap();
    assert_eq!(contacts.len(), 1500);
    assert_eq!(contacts.iter().filter(|c| c.devices.len() == 1).count(), 3);
    assert!(s.contacts.contacts(&[]).await.unwrap().is_empty());
}
