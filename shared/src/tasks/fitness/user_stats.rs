//! user-stats: daily at 01:30 UTC, the app's 30-day stats cache (`user_stats`), one row per user, so the
//! profile screen reads one row instead of a month of workouts.
//!
//! # What a row holds
//!
//! Over the 30 local dates up to the slot's UTC day, both included: workouts, workouts per week (workouts
//! / (30 / 7)), minutes, volume (Σ weight × reps, kg), sets flagged as personal records, and per exercise
//! trained the best set (the heaviest, of equally heavy sets the one with the most reps) and its count of
//! personal-record sets. A user who did not train in the window gets a row of zeros, so that they are not
//! planned again every night.
//!
//! # Who is refreshed
//!
//! Users who never had stats, whose stats are a week old or more (their window ended 7 or more days before the
//! slot's day), or who have a workout in the window that was written after their stats were computed. So a
//! nightly run refreshes the users who trained and, spread over the week, everyone else (their window slides),
//! not all users every night.
//!
//! "Written after" is by id: a row keeps the id of the newest workout of the window it was computed over, and a
//! workout of the new window with a greater id was written since. The app writes a workout when it ends, and a
//! phone offline writes it days later: a workout under way at 01:30, or logged offline on Monday and synced on
//! Thursday, started before the stats and was written after. What started when cannot tell those apart from
//! what the stats already hold; the order of writing can. A workout written since that falls before the window
//! changes nothing in it and makes no one due. (Ids are taken when a row is inserted, not when it commits: a
//! workout whose insert was under way at the computation and committed after is seen the next night if no later
//! workout of the same user committed before it; two of one user's workouts written at once in that order wait
//! for the weekly refresh.)
//!
//! # Plan and work
//!
//! The plan pages through the users due by id (keyset) and queues them in chunks of `chunk_size`. A chunk is
//! one INSERT … SELECT … ON CONFLICT DO UPDATE, computed set-based for all its users, that writes a user's row
//! only if it holds an earlier window than this slot's; its count goes into the run in the same transaction.
//! So a redelivered chunk writes and counts nothing, and a late message of an older slot never overwrites a
//! newer row. Chunks of one run hold different users; two runs' chunks may overlap, and the newer window wins.
//! Catch-up: only the latest slot matters.

use async_trait::async_trait;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use crate::{
    deliveries::Deliveries,
    ports::StatsCache,
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    time::Slot,
    Error, Result,
};

pub const NAME: &str = "user-stats";

/// Days in a stats window, the slot's day included.
pub const WINDOW_DAYS: i64 = 30;
/// Stats whose window ended this many days before the slot's day, or more, are refreshed.
pub const STALE_AFTER_DAYS: i64 = 7;
/// The most users a message may name: a chunk is one statement, and a message at most 256 KiB.
pub const MAX_CHUNK: usize = 10_000;

pub struct UserStatsTask {
    pub cache: Arc<dyn StatsCache>,
    /// Users per queued message.
    pub chunk_size: u32,
}

/// One planned message: users in ascending id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    pub users: Vec<i64>,
}

impl Chunk {
    /// A message's payload, or the permanent error that sends it to the dead-letter queue with why.
    pub fn parse(payload: Value) -> Result<Self> {
        let chunk: Self = serde_json::from_value(payload)
            .map_err(|e| Error::permanent(format!("a {NAME} payload that does not parse: {e}")))?;
        let bad = |why: String| Err(Error::permanent(format!("{NAME}: {why}")));
        match chunk.users.as_slice() {
            [] => bad("a chunk without users".into()),
            users if users.len() > MAX_CHUNK => {
                bad(format!("{} users in one chunk, more than {MAX_CHUNK}", users.len()))
            }
            users => match users.iter().find(|id| **id <= 0) {
                Some(id) => bad(format!("no user has the id {id}")),
                None if users.windows(2).any(|w| w[0] >= w[1]) => {
                    bad("user ids out of order or repeated: a planner sends them ascending".into())
                }
                None => Ok(chunk),
            },
        }
    }
}

/// The window of a slot's UTC day: the 30 days ending with it.
pub fn window(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    (day - Duration::days(WINDOW_DAYS - 1), day)
}

#[async_trait]
impl Task for UserStatsTask {
    fn name(&self) -> &'static str {
        NAME
    }

    fn granularity(&self) -> Duration {
        Duration::days(1)
    }

    /// The latest window is the one worth computing: a missed night's users are due the next night anyway.
    fn catch_up(&self) -> CatchUp {
        CatchUp::Latest
    }

    fn overlap(&self) -> Overlap {
        Overlap::Wait(std::time::Duration::from_secs(20))
    }

    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        let day = slot.time().date_naive();
        let (start, end) = window(day);
        let stale_through = day - Duration::days(STALE_AFTER_DAYS);
        let mut after = 0;
        loop {
            let users = self.cache.stats_due(start, end, stale_through, after, self.chunk_size).await?;
            let Some(&last) = users.last() else { return Ok(()) };
            after = last;
            let count = users.len() as u64;
            fanout.push(serde_json::to_value(Chunk { users }).expect("a chunk serialises"), count).await?;
        }
    }

    async fn work(&self, slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let chunk = Chunk::parse(payload)?;
        let mut report = WorkReport::default();
        if let Some(reason) = deliveries.held_back() {
            report.retry = Some(reason);
            return Ok(report);
        }
        let (start, end) = window(slot.time().date_naive());
        let now = deliveries.clock.now();
        let written = self.cache.refresh_stats(&chunk.users, start, end, NAME, deliveries.run, now).await?;
        report.sent = written;
        // Stats this delivery did not write: written for this window before (a redelivery), or for a later one,
        // or the user is gone.
        report.already_done = chunk.users.len() as u64 - written;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_window_is_thirty_days_ending_with_the_slots_day() {
        let (start, end) = window("2026-11-22".parse().unwrap());
        assert_eq!((start.to_string(), end.to_string()), ("2026-10-24".into(), "2026-11-22".into()));
        assert_eq!((end - start).num_days() + 1, WINDOW_DAYS);
    }

    #[test]
    fn a_chunk_is_ascending_positive_ids_and_anything_else_is_permanent() {
        assert_eq!(Chunk::parse(json!({ "users": [1, 5, 9] })), Ok(Chunk { users: vec![1, 5, 9] }));
        let cases = [
            (json!({ "users": [] }), "without users"),
            (json!({ "users": [3, 0] }), "no user has the id 0"),
            (json!({ "users": [4, 2] }), "out of order"),
            (json!({ "users": [2, 2] }), "repeated"),
            (json!({ "users": [1], "since": "2026-11-01" }), "unknown field"),
            (json!({ "users": ["1"] }), "does not parse"),
            (json!({ "users": (1..=MAX_CHUNK as i64 + 1).collect::<Vec<_>>() }), "more than 10000"),
        ];
        for (payload, says) in cases {
            match Chunk::parse(payload) {
                Err(Error::Permanent(reason)) => assert!(reason.contains(says), "{reason} should say {says}"),
                other => panic!("{says}: {other:?}"),
            }
        }
    }
}
