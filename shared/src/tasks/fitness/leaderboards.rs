//! leaderboards: every three hours (UTC), the app's boards, each built whole for its slot and then switched
//! to, so the app reads a complete board, the old one or the new one, never a mix.
//!
//! # The boards
//!
//! - `week-volume`: users by this week's volume, Σ weight × reps of their sets, in kg to 0.01;
//! - `week-workouts`: users by this week's workouts;
//! - `streak`: users by their current streak of consecutive active days;
//! - `challenge-<id>`: each challenge active on the slot's day (`starts_on <= day <= ends_on`), its participants
//!   by minutes trained within the challenge's dates; a participant who has not trained is on it with 0.
//!
//! "This week" is the ISO week (Monday to Sunday) of the slot's UTC day, by the local date of each workout; a
//! streak is current when its last active local day is the slot's UTC day, the day before or (in zones ahead
//! of UTC) the day after. Days are the UTC calendar's rather than each user's: one board for everyone has to
//! cut its days somewhere.
//!
//! # Ties
//!
//! Competition ranking: equal scores share the rank of the first of them, and the next rank skips the places
//! they took (100, 100, 80 ranks 1, 1, 3). For display, every entry also has a unique position: by score, most
//! first, and within a tie by user id, oldest account first. The order within a tie is arbitrary but the same
//! from one build to the next, so a board does not reshuffle equal users every three hours.
//!
//! # Plan and work
//!
//! The plan queues one message for the three global boards and one per active challenge. Each board is built
//! by one INSERT … SELECT into a new version, keyed by (board, slot), then made current in one short
//! transaction that also counts it into the run (`Boards::build_board`). So a redelivered message, or two
//! workers on the same message, build each board once and count it once; a message of an older slot arriving
//! after a newer slot's board is current builds nothing; and versions older than the one replaced are deleted
//! once nobody can be reading them in one statement. Catch-up: only the latest slot matters.

use async_trait::async_trait;
use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use crate::{
    deliveries::Deliveries,
    ports::{BoardSpec, Boards, Challenges},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    tasks::fitness::boards,
    time::Slot,
    Error, Result,
};

pub const NAME: &str = "leaderboards";

/// Challenges read per page while planning.
const CHALLENGES_PAGE: u32 = 500;

pub struct Leaderboards {
    pub boards: Arc<dyn Boards>,
    pub challenges: Arc<dyn Challenges>,
}

/// One planned message: the global boards, or one challenge's standings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Part {
    /// `"global"`
    Global,
    /// `{"challenge": 12}`
    Challenge(i64),
}

impl Part {
    /// A message's payload, or the permanent error that sends it to the dead-letter queue with why.
    pub fn parse(payload: Value) -> Result<Self> {
        let part: Self = serde_json::from_value(payload)
            .map_err(|e| Error::permanent(format!("a {NAME} payload that does not parse: {e}")))?;
        match part {
            Self::Challenge(id) if id <= 0 => Err(Error::permanent(format!("{NAME}: no challenge has the id {id}"))),
            part => Ok(part),
        }
    }
}

/// The Monday of `day`'s ISO week.
pub fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// The global boards of the slot's UTC day.
pub fn global_boards(day: NaiveDate) -> [BoardSpec; 3] {
    let monday = monday_of(day);
    [BoardSpec::WeekVolume { monday }, BoardSpec::WeekWorkouts { monday }, BoardSpec::Streak { today: day }]
}

#[async_trait]
impl Task for Leaderboards {
    fn name(&self) -> &'static str {
        NAME
    }

    fn granularity(&self) -> Duration {
        Duration::hours(3)
    }

    /// A board is the latest state: a missed slot's would be replaced by the next one's at once.
    fn catch_up(&self) -> CatchUp {
        CatchUp::Latest
    }

    fn overlap(&self) -> Overlap {
        Overlap::Wait(std::time::Duration::from_secs(20))
    }

    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        let day = slot.time().date_naive();
        let global = serde_json::to_value(Part::Global).expect("a part serialises");
        fanout.push(global, global_boards(day).len() as u64).await?;
        let mut after = 0;
        loop {
            let ids = self.challenges.active_challenges(day, after, CHALLENGES_PAGE).await?;
            let Some(&last) = ids.last() else { return Ok(()) };
            after = last;
            for id in ids {
                fanout.push(serde_json::to_value(Part::Challenge(id)).expect("a part serialises"), 1).await?;
            }
        }
    }

    async fn work(&self, slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let part = Part::parse(payload)?;
        let day = slot.time().date_naive();
        let mut report = WorkReport::default();
        let specs: Vec<BoardSpec> = match part {
            Part::Global => global_boards(day).into(),
            // Read again at work time: the app may have deleted or moved the challenge since the plan.
            Part::Challenge(id) => match self.challenges.challenge(id).await? {
                None => {
                    report.skip("challenge deleted", 1);
                    vec![]
                }
                Some(challenge) if !challenge.active_on(day) => {
                    report.skip("challenge not active that day", 1);
                    vec![]
                }
                Some(challenge) => {
                    vec![BoardSpec::Challenge { id, starts_on: challenge.starts_on, ends_on: challenge.ends_on }]
                }
            },
        };
        boards::build(self.boards.as_ref(), &specs, NAME, deliveries, &mut report).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_week_is_the_iso_week_of_the_slots_day() {
        assert_eq!(monday_of(date("2026-11-22")), date("2026-11-16"), "a Sunday");
        assert_eq!(monday_of(date("2026-11-23")), date("2026-11-23"), "a Monday");
        assert_eq!(monday_of(date("2027-01-01")), date("2026-12-28"), "across a year's end");
    }

    #[test]
    fn parts_read_as_planned_and_anything_else_is_permanent() {
        for part in [Part::Global, Part::Challenge(12)] {
            assert_eq!(Part::parse(serde_json::to_value(part).unwrap()), Ok(part));
        }
        assert_eq!(serde_json::to_value(Part::Challenge(12)).unwrap(), json!({ "challenge": 12 }));
        for bad in [json!("weekly"), json!({ "challenge": 0 }), json!({ "challenge": "12" }), json!({}), json!(null)] {
            let e = Part::parse(bad.clone()).unwrap_err();
            assert!(matches!(e, Error::Permanent(_)), "{bad}: {e:?}");
        }
        let e = Part::parse(json!({ "challenge": -3 })).unwrap_err();
        assert!(e.to_string().contains("no challenge has the id -3"), "{e}");
    }

    #[test]
    fn board_names_are_what_readers_ask_for() {
        let names: Vec<String> = global_boards(date("2026-11-22")).iter().map(BoardSpec::name).collect();
        assert_eq!(names, ["week-volume", "week-workouts", "streak"]);
        let challenge = BoardSpec::Challenge { id: 7, starts_on: date("2026-11-01"), ends_on: date("2026-11-30") };
        assert_eq!(challenge.name(), "challenge-7");
    }
}
