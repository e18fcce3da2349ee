//! What every task sent at a wall-clock time in each user's own zone shares: which zones reach that time in
//! a slot, what period (day, week, month) the message is about there, and the paging of those zones' users
//! into chunks. The schedule fires hourly in UTC; each slot plans the zones whose local time it reached.
//!
//! A user who changes zone gets each period's message once and loses none: moving west, the new zone plans a
//! period already sent, which the delivery key skips; moving east past the local time, no plan picks them for
//! the period in between. So a plan takes the period before its own too for each user who moved since that
//! period's first plan started (`ZoneMoves`): those who fell between two zones' plans get it now, and for the
//! others the ledger finds the key done. Nothing is written per user: the app's move is the only record.

use async_trait::async_trait;
use chrono::{Datelike, Duration, Months, NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

use crate::{
    ports::{ActivityStore, ZoneMoves, MAX_QUEUE_BATCH},
    runtime::Fanout,
    time::{reached_in, Slot},
    Error, Result,
};

/// Which local days a task fires on, and what period each firing is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// Every day, about the day before.
    DayBefore,
    /// Mondays, about the Monday–Sunday before (the period is that Monday).
    WeekBefore,
    /// The 1st, about the month before (the period is its 1st).
    MonthBefore,
    /// Every day, about that day.
    SameDay,
    /// Every day, about the next day.
    DayAfter,
}

impl Cadence {
    /// The period a firing on local date `today` is about, if the cadence fires that day.
    pub fn period(self, today: NaiveDate) -> Option<NaiveDate> {
        match self {
            Cadence::DayBefore => today.pred_opt(),
            Cadence::WeekBefore => (today.weekday() == Weekday::Mon).then(|| today - Duration::days(7)),
            Cadence::MonthBefore => (today.day() == 1).then(|| today - Months::new(1)),
            Cadence::SameDay => Some(today),
            Cadence::DayAfter => today.succ_opt(),
        }
    }

    /// The period the latest firing on or before local date `today` was about (`jobs preview`).
    pub fn latest(self, today: NaiveDate) -> NaiveDate {
        today.iter_days().rev().find_map(|day| self.period(day)).expect("every cadence fires within a month")
    }

    /// The period before `period`.
    pub fn previous(self, period: NaiveDate) -> NaiveDate {
        match self {
            Cadence::WeekBefore => period - Duration::days(7),
            Cadence::MonthBefore => period - Months::new(1),
            Cadence::DayBefore | Cadence::SameDay | Cadence::DayAfter => period - Duration::days(1),
        }
    }
}

/// One planned chunk: users and the period each one's message is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub users: Vec<Due>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    pub id: i64,
    /// The period: a day, a week's Monday, a month's 1st.
    pub day: NaiveDate,
}

impl Chunk {
    pub fn parse(task: &str, payload: serde_json::Value) -> Result<Chunk> {
        serde_json::from_value(payload)
            .map_err(|e| Error::permanent(format!("a {task} payload that does not parse: {e}")))
    }
}

/// Who a task plans among the users of some zones.
#[async_trait]
pub trait Audience: Send + Sync {
    /// Ids of the users in `zones` planned for `period`, ascending, after `after` (keyset pagination).
    async fn page(&self, zones: &[String], period: NaiveDate, after: i64, limit: u32) -> Result<Vec<i64>>;
}

/// Every user of the zones: the task decides in its work whether they get something.
pub struct EveryUser<'a>(pub &'a dyn ActivityStore);

#[async_trait]
impl Audience for EveryUser<'_> {
    async fn page(&self, zones: &[String], _period: NaiveDate, after: i64, limit: u32) -> Result<Vec<i64>> {
        self.0.users_in_zones(zones, after, limit).await
    }
}

/// A task sent at `at` local time on its cadence's days.
pub struct LocalTime<'a> {
    pub task: &'static str,
    pub at: NaiveTime,
    pub cadence: Cadence,
    pub users: &'a dyn ActivityStore,
    /// Set when a period a zone move skipped must be caught (reports); unset when a missed period does not
    /// matter (a reminder is about today).
    pub moves: Option<&'a dyn ZoneMoves>,
    /// Users per queued message.
    pub chunk_size: u32,
}

impl LocalTime<'_> {
    /// The zones that reach `at` in the hour `slot` closes, by the period they plan. Zones that do not parse
    /// are errors of the plan: their users are never planned until fixed.
    pub async fn zones_due(
        &self,
        slot: Slot,
        granularity: Duration,
    ) -> Result<(BTreeMap<NaiveDate, Vec<String>>, Vec<String>)> {
        let until = slot.time();
        let after = until - granularity;
        let (mut due, mut errors): (BTreeMap<NaiveDate, Vec<String>>, _) = (BTreeMap::new(), vec![]);
        for zone in self.users.time_zones().await? {
            match zone.parse::<Tz>() {
                Ok(tz) => {
                    if let Some(period) =
                        reached_in(tz, self.at, after, until).and_then(|today| self.cadence.period(today))
                    {
                        due.entry(period).or_default().push(zone);
                    }
                }
                Err(_) => errors.push(format!("users with the unknown time zone {zone:?} are never planned")),
            }
        }
        Ok((due, errors))
    }

    /// Plans the slot: the users `audience` picks in each zone due, in chunks.
    pub async fn plan(
        &self,
        slot: Slot,
        granularity: Duration,
        audience: &dyn Audience,
        fanout: &mut Fanout<'_>,
    ) -> Result<()> {
        let (due, errors) = self.zones_due(slot, granularity).await?;
        for error in errors {
            fanout.error(error);
        }
        for (period, zones) in due {
            self.plan_period(period, &zones, audience, fanout).await?;
        }
        Ok(())
    }

    async fn plan_period(
        &self,
        period: NaiveDate,
        zones: &[String],
        audience: &dyn Audience,
        fanout: &mut Fanout<'_>,
    ) -> Result<()> {
        let previous = self.cadence.previous(period);
        let (previous_period, before) = (previous.to_string(), self.cadence.previous(previous).to_string());
        if let Some(moves) = self.moves {
            // Stamped before any user is read, so that the next period's plans count every move since.
            moves.planning(self.task, &period.to_string(), &before).await?;
        }
        // A page is a SendMessageBatch's worth of chunks: one read of users and one of moves per ten messages.
        let chunk_size = self.chunk_size.max(1);
        let page_size = chunk_size * MAX_QUEUE_BATCH as u32;
        let mut after_id = 0;
        loop {
            let ids = audience.page(zones, period, after_id, page_size).await?;
            let Some(&last) = ids.last() else { break };
            after_id = last;
            // Read after the page: a move the page saw is one this sees.
            let moved: HashSet<i64> = match self.moves {
                Some(moves) => moves.moved_since(self.task, &previous_period, &ids).await?.into_iter().collect(),
                None => HashSet::new(),
            };
            for ids in ids.chunks(chunk_size as usize) {
                let mut users = Vec::with_capacity(ids.len());
                for &id in ids {
                    if moved.contains(&id) {
                        users.push(Due { id, day: previous });
                    }
                    users.push(Due { id, day: period });
                }
                let chunk = serde_json::to_value(Chunk { users }).expect("a chunk serialises");
                fanout.push(chunk, ids.len() as u64).await?;
            }
        }
        fanout.flush().await
    }
}

/// A user as the ledger and the progress table name them.
pub fn subject(user_id: i64) -> String {
    format!("user:{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn each_cadence_fires_on_its_days_about_its_period() {
        assert_eq!(Cadence::DayBefore.period(d("2026-03-01")), Some(d("2026-02-28")));
        assert_eq!(Cadence::WeekBefore.period(d("2026-11-30")), Some(d("2026-11-23")), "a Monday");
        assert_eq!(Cadence::WeekBefore.period(d("2026-11-29")), None, "a Sunday");
        assert_eq!(Cadence::MonthBefore.period(d("2026-03-01")), Some(d("2026-02-01")));
        assert_eq!(Cadence::MonthBefore.period(d("2026-03-02")), None);
        assert_eq!(Cadence::SameDay.period(d("2026-03-02")), Some(d("2026-03-02")));
        assert_eq!(Cadence::DayAfter.period(d("2026-12-31")), Some(d("2027-01-01")));
    }

    #[test]
    fn the_latest_period_is_that_of_the_last_firing() {
        assert_eq!(Cadence::WeekBefore.latest(d("2026-12-02")), d("2026-11-23"), "Monday 30 Nov fired last");
        assert_eq!(Cadence::MonthBefore.latest(d("2026-12-15")), d("2026-11-01"));
        assert_eq!(Cadence::DayBefore.latest(d("2026-12-15")), d("2026-12-14"));
    }

    #[test]
    fn the_period_before_steps_by_the_cadence() {
        assert_eq!(Cadence::WeekBefore.previous(d("2026-11-23")), d("2026-11-16"));
        assert_eq!(Cadence::MonthBefore.previous(d("2026-03-01")), d("2026-02-01"));
        assert_eq!(Cadence::MonthBefore.previous(d("2026-01-01")), d("2025-12-01"));
        assert_eq!(Cadence::DayBefore.previous(d("2026-03-01")), d("2026-02-28"));
    }
}
