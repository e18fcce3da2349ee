//! Missed slots and overlapping planners, through the real runtime on both stores: what each catch-up policy
//! plans and records, the horizon, manual triggers, and a plan that finds its task's lease taken.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use infra::wiring::Store;
use serde_json::{json, Value};
use shared::{
    deliveries::Deliveries,
    invocation::{Trigger, TriggerSource},
    memory::MemoryQueue,
    runtime::{CatchUp, Fanout, JobRuntime, Overlap, PlanStatus, RuntimeSettings, Task, WorkReport},
    schedule::Schedule,
    time::{Slot, VirtualClock},
    Result,
};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// An hourly task that plans one message per slot, with the policies a test gives it.
struct Probe {
    catch_up: CatchUp,
    overlap: Overlap,
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
        fanout.push(json!({}), 1).await
    }
    async fn work(&self, _: Slot, _: Value, _: &Deliveries<'_>) -> Result<WorkReport> {
        Ok(WorkReport::default())
    }
}

fn runtime(store: &Store, catch_up: CatchUp, overlap: Overlap) -> JobRuntime {
    JobRuntime {
        task: Arc::new(Probe { catch_up, overlap }),
        schedule: Schedule::parse("cron(0 * * * ? *)", "UTC").unwrap(),
        runs: store.runs(),
        ledger: store.ledger(),
        queue: Arc::new(MemoryQueue::default()),
        clock: Arc::new(VirtualClock::new(utc("2026-11-22T00:00:00Z"))),
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

async fn catch_up_looks_back_no_further_than_its_horizon(store: Store) {
    let runtime = runtime(&store, CatchUp::All, Overlap::Skip);
    runtime.plan(scheduled("2026-11-18T00:00:00Z")).await.unwrap();
    // Four days later; the horizon is two days: 47 slots between the horizon and now, none before it.
    let report = runtime.plan(scheduled("2026-11-22T00:00:00Z")).await.unwrap();
    assert_eq!(report.caught_up.len(), 47);
    assert_eq!(report.caught_up[0].slot, utc("2026-11-20T01:00:00Z"));
    assert_eq!(status(&store, "2026-11-19T12:00:00Z").await, None);
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

async fn a_plan_that_finds_its_task_running_skips_and_records_it(store: Store) {
    let runtime = runtime(&store, CatchUp::All, Overlap::Skip);
    let now = utc("2026-11-22T00:00:00Z");
    assert!(store.runs().acquire_lease("plan:probe", "another-planner", now, Duration::from_secs(600)).await.unwrap());
    let report = runtime.plan(scheduled("2026-11-22T03:00:00Z")).await.unwrap();
    assert_eq!((report.status, report.messages), (PlanStatus::Overlap, 0));
    let (status_03, why) = status(&store, "2026-11-22T03:00:00Z").await.unwrap();
    assert_eq!(status_03, "skipped");
    assert!(why[0].contains("overlap") && why[0].contains("lease"), "{why:?}");
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
    catch_up_looks_back_no_further_than_its_horizon,
    a_manual_trigger_plans_its_slot_and_catches_nothing_up,
    a_plan_that_finds_its_task_running_skips_and_records_it,
    a_plan_that_waits_for_its_task_runs_once_the_lease_is_free,
);
