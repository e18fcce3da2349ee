//! Time as the jobs see it: a `Clock` port (so tests and simulations can move time), slots, and the
//! instant a wall-clock time is reached in an IANA zone, across DST gaps and repeats.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::sync::Mutex;

/// The only way the jobs read the time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to: for tests, the demo and simulations.
#[derive(Debug)]
pub struct VirtualClock(Mutex<DateTime<Utc>>);

impl VirtualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = at;
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// The scheduled time of a run, truncated to its task's granularity: `(task, slot)` names a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(DateTime<Utc>);

impl Slot {
    pub fn new(time: DateTime<Utc>, granularity: Duration) -> Self {
        let step = granularity.num_seconds().max(1);
        let secs = time.timestamp().div_euclid(step) * step;
        Self(DateTime::from_timestamp(secs, 0).expect("a truncated timestamp is in range"))
    }

    pub fn time(&self) -> DateTime<Utc> {
        self.0
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%SZ"))
    }
}

/// The instant at which `date` `at` happens in `zone`. In a repeated (autumn) hour that is the first
/// occurrence, so it happens once; in a skipped (spring) gap it is the first instant after the gap, so a
/// day never loses its moment.
pub fn wall_clock_instant(zone: Tz, date: NaiveDate, at: NaiveTime) -> DateTime<Utc> {
    let mut local = date.and_time(at);
    // A gap is at most a few hours in any zone's history; step over it minute by minute.
    for _ in 0..=24 * 60 {
        match zone.from_local_datetime(&local) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => local += Duration::minutes(1),
        }
    }
    unreachable!("no zone skips a whole day of wall-clock time")
}

/// The local date whose `at` wall-clock moment falls in `(after, until]` in `zone`, if one does.
/// An hourly plan asks this with its previous and current slot to find who has just reached 06:00.
pub fn reached_in(zone: Tz, at: NaiveTime, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<NaiveDate> {
    let last = until.with_timezone(&zone).date_naive();
    let first = after.with_timezone(&zone).date_naive();
    let mut date = first;
    while date <= last {
        let instant = wall_clock_instant(zone, date, at);
        if instant > after && instant <= until {
            return Some(date);
        }
        date = date.succ_opt()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn six() -> NaiveTime {
        NaiveTime::from_hms_opt(6, 0, 0).unwrap()
    }

    /// Which local date reaches 06:00 in the hour ending at `slot`.
    fn hour_ending(zone: Tz, slot: &str) -> Option<NaiveDate> {
        let until = utc(slot);
        reached_in(zone, six(), until - Duration::hours(1), until)
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn slot_truncates_to_granularity() {
        let s = Slot::new(utc("2026-03-08T10:59:59Z"), Duration::hours(1));
        assert_eq!(s.to_string(), "2026-03-08T10:00:00Z");
        let s = Slot::new(utc("2026-03-08T10:07:30Z"), Duration::minutes(1));
        assert_eq!(s.to_string(), "2026-03-08T10:07:00Z");
    }

    #[test]
    fn new_york_reaches_six_at_eleven_utc_in_winter_and_ten_in_summer() {
        let ny = chrono_tz::America::New_York;
        assert_eq!(hour_ending(ny, "2026-01-15T11:00:00Z"), Some(date("2026-01-15")));
        assert_eq!(hour_ending(ny, "2026-01-15T10:00:00Z"), None);
        assert_eq!(hour_ending(ny, "2026-07-15T10:00:00Z"), Some(date("2026-07-15")));
        assert_eq!(hour_ending(ny, "2026-07-15T11:00:00Z"), None);
    }

    #[test]
    fn every_day_of_a_dst_year_reaches_six_exactly_once() {
        for zone in [
            chrono_tz::America::New_York,
            chrono_tz::Europe::London,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Kolkata,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::America::St_Johns,
            chrono_tz::Pacific::Chatham,
        ] {
            let start = utc("2026-01-01T00:00:00Z");
            let mut seen = std::collections::BTreeMap::new();
            for h in 1..=(366 * 24) {
                let until = start + Duration::hours(h);
                if let Some(d) = reached_in(zone, six(), until - Duration::hours(1), until) {
                    *seen.entry(d).or_insert(0) += 1;
                }
            }
            assert!(seen.values().all(|n| *n == 1), "{zone}: a day reached 06:00 twice");
            let days = (date("2026-12-31") - date("2026-01-02")).num_days() as usize + 1;
            let inside = seen.keys().filter(|d| **d >= date("2026-01-02") && **d <= date("2026-12-31")).count();
            assert_eq!(inside, days, "{zone}: a day never reached 06:00");
        }
    }

    #[test]
    fn half_and_quarter_hour_zones_are_planned_in_the_hour_that_contains_their_six() {
        // Kolkata +05:30: 06:00 local is 00:30 UTC, inside the hour ending 01:00.
        assert_eq!(hour_ending(chrono_tz::Asia::Kolkata, "2026-05-10T01:00:00Z"), Some(date("2026-05-10")));
        // Kathmandu +05:45: 06:00 local is 00:15 UTC.
        assert_eq!(hour_ending(chrono_tz::Asia::Kathmandu, "2026-05-10T01:00:00Z"), Some(date("2026-05-10")));
        assert_eq!(hour_ending(chrono_tz::Asia::Kathmandu, "2026-05-10T00:00:00Z"), None);
    }

    #[test]
    fn a_time_in_the_spring_gap_happens_at_the_end_of_the_gap() {
        // New York skips 02:00-03:00 on 2026-03-08.
        let ny = chrono_tz::America::New_York;
        let t = wall_clock_instant(ny, date("2026-03-08"), NaiveTime::from_hms_opt(2, 30, 0).unwrap());
        assert_eq!(t, utc("2026-03-08T07:00:00Z"));
    }

    #[test]
    fn a_time_in_the_autumn_repeat_happens_at_its_first_occurrence() {
        // New York repeats 01:00-02:00 on 2026-11-01: first as EDT (-4), then as EST (-5).
        let ny = chrono_tz::America::New_York;
        let t = wall_clock_instant(ny, date("2026-11-01"), NaiveTime::from_hms_opt(1, 30, 0).unwrap());
        assert_eq!(t, utc("2026-11-01T05:30:00Z"));
    }
}
