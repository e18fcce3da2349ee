//! What the tasks that publish boards (leaderboards, trending) share: building a message's boards one after
//! the other through the versioned `Boards` store, stopping before the invocation's deadline, and saying in
//! the work report what each build did.

use crate::{
    deliveries::Deliveries,
    ports::{BoardBuild, BoardSpec, Boards},
    runtime::WorkReport,
    Result,
};

/// Builds each board for the message's slot, in order. A board built and switched counts as sent (the store
/// counts it into the run in the switching transaction); one found current already (a redelivery) as already
/// done; one a later slot's version has replaced as skipped. When the deadline is near, the boards not started
/// are left for the message's retry, which finds the ones built here current and builds nothing twice.
pub async fn build(
    boards: &dyn Boards,
    specs: &[BoardSpec],
    task: &str,
    deliveries: &Deliveries<'_>,
    report: &mut WorkReport,
) -> Result<()> {
    for (i, spec) in specs.iter().enumerate() {
        if let Some(reason) = deliveries.held_back() {
            report.retry = Some(format!("{} of {} boards left: {reason}", specs.len() - i, specs.len()));
            return Ok(());
        }
        match boards.build_board(spec, task, deliveries.run, deliveries.clock.now()).await? {
            BoardBuild::Built(_) | BoardBuild::Switched => report.sent += 1,
            BoardBuild::AlreadyCurrent => report.already_done += 1,
            BoardBuild::Superseded => report.skip("a later slot's board is current", 1),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        limits::{Breaker, Deadline, Pace},
        memory::MemoryLedger,
        ports::{Board, RunPart},
        time::{Clock, VirtualClock},
    };
    use async_trait::async_trait;
    use chrono::{DateTime, NaiveDate, Utc};
    use std::{sync::Mutex, time::Duration};

    /// Answers each build with the next scripted outcome, and remembers which boards it was asked for.
    struct Scripted {
        outcomes: Mutex<Vec<BoardBuild>>,
        asked: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Boards for Scripted {
        async fn build_board(&self, spec: &BoardSpec, _: &str, _: RunPart, _: DateTime<Utc>) -> Result<BoardBuild> {
            self.asked.lock().unwrap().push(spec.name());
            Ok(self.outcomes.lock().unwrap().remove(0))
        }
        async fn board(&self, _: &str, _: u32) -> Result<Option<Board>> {
            Ok(None)
        }
        async fn board_names(&self) -> Result<Vec<String>> {
            Ok(vec![])
        }
    }

    fn specs() -> Vec<BoardSpec> {
        let day = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        crate::tasks::fitness::leaderboards::global_boards(day).into()
    }

    async fn build_before(deadline: Deadline, outcomes: Vec<BoardBuild>) -> (WorkReport, Vec<String>) {
        let (ledger, pace, breaker) = (MemoryLedger::default(), Pace::new(None), Breaker::default());
        let clock = VirtualClock::new("2026-11-22T12:00:05Z".parse().unwrap());
        let deliveries = Deliveries {
            ledger: &ledger,
            clock: &clock,
            task: "leaderboards",
            run: RunPart { slot: clock.now(), part: 0 },
            hold: Duration::from_secs(90),
            concurrency: 1,
            deadline,
            pace: &pace,
            breaker: &breaker,
        };
        let boards = Scripted { outcomes: Mutex::new(outcomes), asked: Mutex::default() };
        let mut report = WorkReport::default();
        build(&boards, &specs(), "leaderboards", &deliveries, &mut report).await.unwrap();
        (report, boards.asked.into_inner().unwrap())
    }

    #[tokio::test]
    async fn each_board_is_told_as_built_already_current_or_superseded() {
        let far = Deadline::after(Duration::from_secs(60), Duration::from_secs(15));
        let outcomes = vec![BoardBuild::Built(10), BoardBuild::AlreadyCurrent, BoardBuild::Superseded];
        let (report, asked) = build_before(far, outcomes).await;
        assert_eq!(asked, ["week-volume", "week-workouts", "streak"]);
        assert_eq!((report.sent, report.already_done, report.retry), (1, 1, None));
        assert_eq!(report.skipped.get("a later slot's board is current"), Some(&1));
        let (report, _) = build_before(far, vec![BoardBuild::Switched; 3]).await;
        assert_eq!(report.sent, 3, "a version found built and switched to now counts as built");
    }

    #[tokio::test]
    async fn nothing_starts_near_the_deadline_and_the_message_comes_back() {
        let near = Deadline::after(Duration::from_secs(10), Duration::from_secs(15));
        let (report, asked) = build_before(near, vec![]).await;
        assert!(asked.is_empty(), "{asked:?}");
        let retry = report.retry.expect("the message comes back");
        assert!(retry.starts_with("3 of 3 boards left: not started"), "{retry}");
    }
}
