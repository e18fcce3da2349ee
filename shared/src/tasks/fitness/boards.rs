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
