//! Missed slots, dead and overlapping planners, through the real runtime on both stores: what each catch-up
//! policy plans and records, the horizon, manual triggers and backfills, a plan that finds its task's lease
//! taken, and a plan its planner never finished.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use infra::wiring::Store;
use serde_json::{json, Value};
use shared::{
    deliveries::Deliveries,
    invocation::{Trigger, TriggerSource},
    limits::Pace,
    memory::MemoryQueue,
    runtime::{CatchUp, Fanout, JobRuntime, Overlap, PlanStatus, RuntimeSettings, Task, WorkReport},
    schedule::Schedule,
    time::{Clock, Slot, VirtualClock},
    Result,
};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// An hourly task that plans one message per slot, with the policies a test gives it.
struct Probe {
    catch_up: CatchUp,
    overlap: Overlap,
    /// How long planning takes.
    plan_time: Duration,
}

#[async_trait]
impl Task for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }
    fn granularity(&self) -> chrono::Duration {
        chrono::Duration::hours(1)
    }
    fn catch_up(&self) -> CatchUp {
        self.catch_up
    }
    fn overlap(&self) -> Overlap {
        self.overlap
    }
    async fn plan(&self, _: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        tokio::time::sleep(self.plan_time).await;
        fanout.push(json!({}), 1).await
    }
    async fn work(&self, _: Slot, _: Value, _: &Deliveries<'_>) -> Result<WorkReport> {
        Ok(WorkReport::default())
    }
}

fn runtime(store: &Store, catch_up: CatchUp, overlap: Overlap) -> JobRuntime {
    runtime_at(store, catch_up, overlap, Arc::new(VirtualClock::new(utc("2026-11-22T00:00:00Z"))))
}

fn runtime_at(store: &Store, catch_up: CatchUp, overlap: Overlap, clock: Arc<VirtualClock>) -> JobRuntime {
    JobRuntime {
        task: Arc::new(Probe { catch_up, overlap, plan_time: Duration::ZERO }),
        schedule: Some(Schedule::parse("cron(0 * * * ? *)", "UTC").unwrap()),
        runs: store.runs(),
        ledger: store.ledger(),
        queue: Arc::new(MemoryQueue::default()),
        clock,
        pace: Pace::new(None),
        settings: RuntimeSettings { lease_poll: Duration::from_millis(20), ..RuntimeSettings::default() },
    }
}

fn scheduled(at: &str) -> Trigger {
    Trigger { time: utc(at), source: TriggerSource::Scheduler, task: None }
}

async fn status(store: &Store, slot: &str) -> Option<(String, Vec<String>)> {
    store.runs().run("probe", utc(slot)).await.unwrap().map(|r| (r.status, r.errors))
}

async fn catch_up_all_plans_every_missed_slot_oldest_first(store: Store) {
    let runtime = runtime(&store, CatchUp::All, Overlap::Skip);
    let first = runtime.plan(scheduled("2026-11-22T01:00:00Z")).await.unwrap();
    assert!(first.caught_up.is_empty(), "the first run ever has nothing to catch up");
    // Down from 01:00 to 05:00: 02:00, 03:00 and 04:00 never fired.
    let report = runtime.plan(scheduled("2026-11-22T05:00:00Z")).await.unwrap();
    let caught: Vec<_> = report.caught_up.iter().map(|r| (r.slot.format("%H:%M").to_string(), r.status)).collect();
    assert_eq!(
        caught,
        [
            ("02:00".into(), PlanStatus::Planned),
            ("03:00".into(), PlanStatus::Planned),
            ("04:00".into(), PlanStatus::Planned)
        ]
    );
    assert_eq!((report.status, report.messages), (PlanStatus::Planned, 1));
    assert!(report.skipped_slots.is_empty());
    for slot in ["2026-11-22T02:00:00Z", "2026-11-22T03:00:00Z", "2026-11-22T04:00:00Z"] {
        assert_eq!(status(&store, slot).await.unwrap().0, "planned");
    }
    // Nothing is missed twice: the next hour catches nothing up.
    assert!(runtime.plan(scheduled("2026-11-22T06:00:00Z")).await.unwrap().caught_up.is_empty());
}

async fn catch_up_latest_plans_the_newest_missed_slot_and_records_the_rest(store: Store) {
    let runtime = runtime(&store, CatchUp::Latest, Overlap::Skip);
    runtime.plan(scheduled("2026-11-22T01:00:00Z")).await.unwrap();
    let report = runtime.plan(scheduled("2026-11-22T05:00:00Z")).await.unwrap();
    assert_eq!(report.caught_up.iter().map(|r| r.slot).collect::<Vec<_>>(), [utc("2026-11-22T04:00:00Z")]);
    assert_eq!(report.skipped_slots.len(), 2);
    let (status_02, why) = status(&store, "2026-11-22T02:00:00Z").await.unwrap();
    assert_eq!(status_02, "skipped");
    assert!(why[0].contains("latest"), "{why:?}");
    assert_eq!(status(&store, "2026-11-22T04:00:00Z").await.unwrap().0, "planned");
}

async fn catch_up_none_records_every_missed_slot_as_skipped(store: Store) {
    let runtime = runtime(&store, CatchUp::None, Overlap::Skip);
    runtime.plan(scheduled("2026-11-22T01:00:00Z")).await.unwrap();
    let report = runtime.plan(scheduled("2026-11-22T04:00:00Z")).await.unwrap();
    assert!(report.caught_up.is_empty());
    assert_eq!(
        report.skipped_slots.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [utc("2026-11-22T02:00:00Z"), utc("2026-11-22T03:00:00Z")]
    );
    let (status_03, why) = status(&store, "2026-11-22T03:00:00Z").await.unwrap();
    assert_eq!((status_03.as_str(), why[0].contains("policy none")), ("skipped", true));
}

async fn catch_up_looks_back_no_further_than_its_horizon_and_records_what_is_older(store: Store) {
    let runtime = runtime(&store, CatchUp::All, Overlap::Skip);
    runtime.plan(scheduled("2026-11-18T00:00:00Z")).await.unwrap();
    // Four days later; the horizon is two days: the 48 slots from the horizon on are planned, the 47 before it
    // are recorded as skipped, with why.
    let report = runtime.plan(scheduled("2026-11-22T00:00:00Z")).await.unwrap();
    assert_eq!(report.caught_up.len(), 48);
    assert_eq!(report.caught_up[0].slot, utc("2026-11-20T00:00:00Z"));
    assert_eq!(report.skipped_slots.len(), 47);
    let (status_19, why) = status(&store, "2026-11-19T12:00:00Z").await.unwrap();
    assert_eq!(
        (status_19.as_str(), why.as_slice()),
        ("skipped", ["missed; older than the catch-up horizon".to_owned()].as_slice())
    );
    let accounted = store.runs().recent_runs(Some("probe"), 1000).await.unwrap();
    assert_eq!(accounted.len(), 4 * 24 + 1, "every slot from the first to the last has a run");
}

async fn a_manual_trigger_plans_its_slot_and_catches_nothing_up(store: Store) {
    let runtime = runtime(&store, CatchUp::All, Overlap::Skip);
    runtime.plan(scheduled("2026-11-22T01:00:00Z")).await.unwrap();
    let manual = Trigger { source: TriggerSource::Manual, ..scheduled("2026-11-22T09:00:00Z") };
    let report = runtime.plan(manual).await.unwrap();
    assert_eq!((report.status, report.caught_up.len()), (PlanStatus::Planned, 0));
    // A backfill of an older slot is not a reason to skip anything either.
    let old = Trigger { source: TriggerSource::Manual, ..scheduled("2026-11-21T09:00:00Z") };
    assert_eq!(runtime.plan(old).await.unwrap().status, PlanStatus::Planned);
}

async fn a_plan_that_finds_its_task_running_fails_as_retryable_and_records_nothing(store: Store) {
    let runtime = runtime(&store, CatchUp::All, Overlap::Skip);
    let now = utc("2026-11-22T00:00:00Z");
    assert!(store.runs().acquire_lease("plan:probe", "another-planner", now, Duration::from_secs(600)).await.unwrap());
    let e = runtime.plan(scheduled("2026-11-22T03:00:00Z")).await.unwrap_err();
    assert!(e.is_retryable() && e.to_string().contains("overlap"), "{e}");
    assert_eq!(status(&store, "2026-11-22T03:00:00Z").await, None, "the holder may be planning this very slot");
}

/// Two planners of one task in one process (Lambda environments can share a pid; a restart reuses one): one
/// plans, the other is refused, and the slot is planned once.
async fn two_planners_in_one_process_never_plan_at_once(store: Store) {
    let slow = |store: &Store| JobRuntime {
        task: Arc::new(Probe { catch_up: CatchUp::All, overlap: Overlap::Skip, plan_time: Duration::from_millis(300) }),
        ..runtime(store, CatchUp::All, Overlap::Skip)
    };
    let (a, b) = (slow(&store), slow(&store));
    let (first, second) = tokio::join!(a.plan(scheduled("2026-11-22T03:00:00Z")), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.plan(scheduled("2026-11-22T03:00:00Z")).await
    });
    assert_eq!(first.unwrap().messages, 1);
    assert!(second.unwrap_err().to_string().contains("overlap"));
    let run = store.runs().run("probe", utc("2026-11-22T03:00:00Z")).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.messages), ("planned", 1));
}

/// A planner killed mid-plan leaves its slot `planning` and its lease held. Until the lease expires a retry
/// records nothing; then the next plan, whichever slot fired it, resumes the dead plan, and catch-up starts
/// from the last plan that finished, so no slot is hidden by the dead one.
async fn a_dead_planners_slot_is_resumed_by_the_next_plan_and_hides_no_missed_slot(store: Store) {
    let clock = Arc::new(VirtualClock::new(utc("2026-11-22T01:00:00Z")));
    let runtime = runtime_at(&store, CatchUp::All, Overlap::Skip, clock.clone());
    runtime.plan(scheduled("2026-11-22T01:00:00Z")).await.unwrap();
    // The 02:00 planner took the lease, began its run, and was killed.
    let runs = store.runs();
    assert!(runs.acquire_lease("plan:probe", "dead-planner", clock.now(), Duration::from_secs(90)).await.unwrap());
    runs.begin_run("probe", utc("2026-11-22T02:00:00Z"), clock.now(), false).await.unwrap();
    // Scheduler's retry meets the dead planner's lease: it fails and records nothing.
    assert!(runtime.plan(scheduled("2026-11-22T02:00:00Z")).await.unwrap_err().is_retryable());
    assert_eq!(status(&store, "2026-11-22T02:00:00Z").await.unwrap().0, "planning");
    // The 04:00 plan, after the lease expired: 02:00 resumed, 03:00 caught up, 04:00 planned.
    clock.set(utc("2026-11-22T04:00:00Z"));
    let report = runtime.plan(scheduled("2026-11-22T04:00:00Z")).await.unwrap();
    let earlier: Vec<_> = report.caught_up.iter().map(|r| (r.slot.format("%H:%M").to_string(), r.status)).collect();
    assert_eq!(earlier, [("02:00".into(), PlanStatus::Resumed), ("03:00".into(), PlanStatus::Planned)]);
    assert_eq!(report.status, PlanStatus::Planned);
    for slot in ["2026-11-22T02:00:00Z", "2026-11-22T03:00:00Z", "2026-11-22T04:00:00Z"] {
        assert_eq!(status(&store, slot).await.unwrap().0, "planned", "{slot}");
    }
}

/// A backfill plans a slot that was skipped (down, or a policy's choice), never one that was planned.
async fn a_backfill_plans_a_skipped_slot_but_never_a_planned_one(store: Store) {
    let runtime = runtime(&store, CatchUp::None, Overlap::Skip);
    runtime.plan(scheduled("2026-11-22T01:00:00Z")).await.unwrap();
    runtime.plan(scheduled("2026-11-22T04:00:00Z")).await.unwrap();
    assert_eq!(status(&store, "2026-11-22T02:00:00Z").await.unwrap().0, "skipped");
    let backfill = |at| Trigger { source: TriggerSource::Manual, ..scheduled(at) };
    let report = runtime.plan(backfill("2026-11-22T02:00:00Z")).await.unwrap();
    assert_eq!((report.status, report.messages), (PlanStatus::Planned, 1));
    assert_eq!(status(&store, "2026-11-22T02:00:00Z").await.unwrap().0, "planned");
    let again = runtime.plan(backfill("2026-11-22T04:00:00Z")).await.unwrap();
    assert_eq!((again.status, again.messages), (PlanStatus::AlreadyPlanned, 0));
    // A scheduled retry of a skipped slot leaves it skipped: only a person's backfill changes it.
    let retry = runtime.plan(scheduled("2026-11-22T03:00:00Z")).await.unwrap();
    assert_eq!(retry.status, PlanStatus::AlreadyPlanned);
}

async fn a_plan_that_waits_for_its_task_runs_once_the_lease_is_free(store: Store) {
    let runtime = runtime(&store, CatchUp::All, Overlap::Wait(Duration::from_secs(5)));
    let now = utc("2026-11-22T00:00:00Z");
    let runs = store.runs();
    assert!(runs.acquire_lease("plan:probe", "another-planner", now, Duration::from_secs(600)).await.unwrap());
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        runs.release_lease("plan:probe", "another-planner").await.unwrap();
    });
    let report = runtime.plan(scheduled("2026-11-22T03:00:00Z")).await.unwrap();
    release.await.unwrap();
    assert_eq!((report.status, report.messages), (PlanStatus::Planned, 1));
    assert_eq!(status(&store, "2026-11-22T03:00:00Z").await.unwrap().0, "planned");
}

macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(infra::wiring::Store::Sqlite(std::sync::Arc::new(integration_tests::db::fresh_sqlite().await))).await;
            })*
        }
        mod on_postgres {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(infra::wiring::Store::Postgres(std::sync::Arc::new(integration_tests::db::fresh_postgres().await))).await;
            })*
        }
    };
}

on_both_stores!(
    catch_up_all_plans_every_missed_slot_oldest_first,
    catch_up_latest_plans_the_newest_missed_slot_and_records_the_rest,
    catch_up_none_records_every_missed_slot_as_skipped,
    catch_up_looks_back_no_further_than_its_horizon_and_records_what_is_older,
    a_manual_trigger_plans_its_slot_and_catches_nothing_up,
    a_plan_that_finds_its_task_running_fails_as_retryable_and_records_nothing,
    two_planners_in_one_process_never_plan_at_once,
    a_dead_planners_slot_is_resumed_by_the_next_plan_and_hides_no_missed_slot,
    a_backfill_plans_a_skipped_slot_but_never_a_planned_one,
    a_plan_that_waits_for_its_task_runs_once_the_lease_is_free,
);
