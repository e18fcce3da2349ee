//! trending: daily at 01:00 UTC, the workouts (by name) and the exercises trending in the app, for its
//! explore screen: boards `trending-workouts` and `trending-exercises`, kept, versioned and switched by the
//! same store as the leaderboards (`Boards`), so a reader sees the old list or the new one, never a mix.
//!
//! # The numbers
//!
//! For each workout name, `recent` is how many workouts of that name were done in the last 7 complete days —
//! the 7 local dates ending the day before the slot's UTC day (at 01:00 UTC the slot's own day has hardly
//! begun) — and `previous` how many in the 7 days before those. An exercise counts the workouts that
//! included it (five sets of squats in one workout count once). The score is the growth
//!
//! ```text
//! growth = (recent + 1) / (previous + 1)
//! ```
//!
//! The +1 keeps something new (previous 0) finite and ranked by how much of it there is, and damps small
//! counts: 1 against 0 is 2, not infinity. Only entries with at least `MIN_RECENT` recent workouts are on a
//! board, so a name three people used once cannot top it. Ranked by growth, equal growth sharing a rank
//! (1, 1, 3); for display, ties go by more recent workouts first, then by name.
//!
//! # Plan and work
//!
//! One message per board. Each is built whole into a new version keyed by (board, slot) and switched to in one
//! short transaction that counts it into the run: a redelivered message finds its board current and builds
//! nothing; a message of an older slot builds nothing once a newer one's board is current. Catch-up: only the
//! latest slot matters.

use async_trait::async_trait;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use crate::{
    deliveries::Deliveries,
    ports::{BoardSpec, Boards},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    tasks::fitness::boards,
    time::Slot,
    Error, Result,
};

pub const NAME: &str = "trending";

/// The fewest workouts in the last 7 days that put a name or an exercise on a board.
pub const MIN_RECENT: i64 = 5;

pub struct Trending {
    pub boards: Arc<dyn Boards>,
}

/// One planned message: which board to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Part {
    /// `"workouts"`
    Workouts,
    /// `"exercises"`
    Exercises,
}

impl Part {
    /// A message's payload, or the permanent error that sends it to the dead-letter queue with why.
    pub fn parse(payload: Value) -> Result<Self> {
        serde_json::from_value(payload)
            .map_err(|e| Error::permanent(format!("a {NAME} payload that does not parse: {e}")))
    }

    /// The board of the slot's UTC day.
    pub fn board(self, day: NaiveDate) -> BoardSpec {
        let last_day = last_day(day);
        match self {
            Self::Workouts => BoardSpec::TrendingWorkouts { last_day, min_recent: MIN_RECENT },
            Self::Exercises => BoardSpec::TrendingExercises { last_day, min_recent: MIN_RECENT },
        }
    }
}

/// The last day of the recent window: the day before the slot's UTC day.
pub fn last_day(day: NaiveDate) -> NaiveDate {
    day - Duration::days(1)
}

#[async_trait]
impl Task for Trending {
    fn name(&self) -> &'static str {
        NAME
    }

    fn granularity(&self) -> Duration {
        Duration::days(1)
    }

    /// Yesterday's list is of no use once today's can be built.
    fn catch_up(&self) -> CatchUp {
        CatchUp::Latest
    }

    fn overlap(&self) -> Overlap {
        Overlap::Wait(std::time::Duration::from_secs(20))
    }

    async fn plan(&self, _slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        for part in [Part::Workouts, Part::Exercises] {
            fanout.push(serde_json::to_value(part).expect("a part serialises"), 1).await?;
        }
        Ok(())
    }

    async fn work(&self, slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let board = Part::parse(payload)?.board(slot.time().date_naive());
        let mut report = WorkReport::default();
        boards::build(self.boards.as_ref(), &[board], NAME, deliveries, &mut report).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_recent_window_ends_the_day_before_the_slot() {
        let day: NaiveDate = "2026-11-23".parse().unwrap();
        assert_eq!(
            Part::Workouts.board(day),
            BoardSpec::TrendingWorkouts { last_day: "2026-11-22".parse().unwrap(), min_recent: MIN_RECENT }
        );
        assert_eq!(Part::Exercises.board(day).name(), "trending-exercises");
    }

    #[test]
    fn anything_but_a_board_is_permanent() {
        assert_eq!(Part::parse(json!("workouts")), Ok(Part::Workouts));
        for bad in [json!("runs"), json!({ "board": "workouts" }), json!(["exercises"])] {
            assert!(matches!(Part::parse(bad.clone()), Err(Error::Permanent(_))), "{bad}");
        }
    }
}
