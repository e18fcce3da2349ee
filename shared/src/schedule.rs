//! EventBridge Scheduler's schedule expressions — `cron(…)`, `rate(…)`, `at(…)` — parsed with AWS's rules and
//! evaluated in an IANA zone with Scheduler's DST behaviour: a local time in the spring-forward gap does not
//! fire, and one in the repeated autumn hour fires once, at its first occurrence.
//!
//! No crate matched AWS exactly (six fields with a year, day-of-week 1 = SUN, `?` required in one day field,
//! `L`/`W`/`LW`/`#`, and Scheduler's DST rule), so the evaluator is written here, small and tested.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Why an expression or zone was refused; `column` counts characters of the expression from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule expression {expression:?} at column {column}: {reason}")]
    Invalid { expression: String, column: usize, reason: String },
    #[error("unknown time zone {0:?}: expected an IANA name such as Europe/London")]
    UnknownZone(String),
}

/// A schedule: its expression and the zone Scheduler evaluates it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    expression: Expression,
    zone: Tz,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expression {
    Cron(Cron),
    /// Fires every `every`. Scheduler counts a rate from the schedule's StartDate; slots must be reproducible,
    /// so rates count from the Unix epoch, which puts `rate(1 hour)` on the hour and `rate(1 day)` at 00:00 UTC.
    Rate(Duration),
    /// Fires once, at this local time.
    At(NaiveDateTime),
}

impl Schedule {
    pub fn parse(expression: &str, zone: &str) -> Result<Self, ScheduleError> {
        let zone: Tz = zone.parse().map_err(|_| ScheduleError::UnknownZone(zone.to_owned()))?;
        let invalid = |column: usize, reason: String| ScheduleError::Invalid {
            expression: expression.to_owned(),
            column,
            reason,
        };
        let (kind, body) = expression
            .split_once('(')
            .filter(|_| expression.ends_with(')'))
            .ok_or_else(|| invalid(1, "expected cron(…), rate(…) or at(…)".into()))?;
        let body = &body[..body.len() - 1];
        // Columns inside the parentheses start after "kind(".
        let offset = kind.chars().count() + 2;
        let parsed = match kind {
            "cron" => Expression::Cron(Cron::parse(body).map_err(|(at, reason)| invalid(offset + at, reason))?),
            "rate" => Expression::Rate(parse_rate(body).map_err(|(at, reason)| invalid(offset + at, reason))?),
            "at" => Expression::At(
                NaiveDateTime::parse_from_str(body, "%Y-%m-%dT%H:%M:%S")
                    .map_err(|e| invalid(offset, format!("expected at(yyyy-mm-ddThh:mm:ss): {e}")))?,
            ),
            _ => return Err(invalid(1, format!("unknown expression type {kind:?}: expected cron, rate or at"))),
        };
        Ok(Self { text: expression.to_owned(), expression: parsed, zone })
    }

    pub fn expression(&self) -> &str {
        &self.text
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first fire time strictly after `after`, or `None` when the schedule has ended.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.expression {
            Expression::Cron(cron) => cron.next_after(self.zone, after),
            Expression::Rate(every) => {
                let step = every.num_seconds();
                let next = (after.timestamp().div_euclid(step) + 1) * step;
                DateTime::from_timestamp(next, 0)
            }
            Expression::At(local) => resolve(self.zone, *local).filter(|at| *at > after),
        }
    }

    /// The fire times after `after`, in order, until the schedule ends.
    pub fn fires_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_after(after), move |t| self.next_after(*t))
    }

    /// The fire times in `(after, until]`, in order.
    pub fn fires_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.fires_after(after).take_while(move |t| *t <= until)
    }

    /// The latest fire time at or before `at`, looking back at most `horizon`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>, horizon: Duration) -> Option<DateTime<Utc>> {
        self.fires_between(at - horizon, at).last()
    }
}

/// A local time as Scheduler fires it: once at its first occurrence when repeated, never when skipped.
fn resolve(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

fn parse_rate(body: &str) -> Result<Duration, (usize, String)> {
    let mut words = body.split(' ');
    let (value, unit) = match (words.next(), words.next(), words.next()) {
        (Some(value), Some(unit), None) => (value, unit),
        _ => return Err((0, "expected rate(value unit), e.g. rate(5 minutes)".into())),
    };
    let n: i64 = value
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| (0, format!("the rate's value {value:?} is not a positive whole number")))?;
    let unit_at = value.len() + 1;
    match unit {
        "minute" | "minutes" => Ok(Duration::minutes(n)),
        "hour" | "hours" => Ok(Duration::hours(n)),
        "day" | "days" => Ok(Duration::days(n)),
        _ => Err((unit_at, format!("unknown unit {unit:?}: expected minutes, hours or days"))),
    }
}

/// A set of small numbers (minutes, hours, days, months, years − 1970).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Bits([u64; 4]);

impl Bits {
    fn insert(&mut self, n: u32) {
        self.0[(n / 64) as usize] |= 1 << (n % 64);
    }

    fn contains(&self, n: u32) -> bool {
        n < 256 && self.0[(n / 64) as usize] & (1 << (n % 64)) != 0
    }

    fn iter(&self, max: u32) -> impl Iterator<Item = u32> + '_ {
        (0..=max).filter(|n| self.contains(*n))
    }
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
/// Day-of-week names in AWS's numbering: 1 = SUN … 7 = SAT.
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 2199;

/// One of the six fields: its name, range, value names and whether `/` is allowed.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    steps: bool,
}

const MINUTES: Field = Field { name: "minutes", min: 0, max: 59, names: &[], steps: true };
const HOURS: Field = Field { name: "hours", min: 0, max: 23, names: &[], steps: true };
const DAY_OF_MONTH: Field = Field { name: "day-of-month", min: 1, max: 31, names: &[], steps: true };
const MONTH: Field = Field { name: "month", min: 1, max: 12, names: &MONTHS, steps: true };
const DAY_OF_WEEK: Field = Field { name: "day-of-week", min: 1, max: 7, names: &WEEKDAYS, steps: false };
const YEAR: Field = Field { name: "year", min: FIRST_YEAR as u32, max: LAST_YEAR as u32, names: &[], steps: true };

type FieldResult<T> = Result<T, (usize, String)>;

impl Field {
    fn value(&self, text: &str, at: usize) -> FieldResult<u32> {
        let upper = text.to_ascii_uppercase();
        let n = match self.names.iter().position(|name| *name == upper) {
            Some(i) => i as u32 + self.min,
            None => text.parse().map_err(|_| {
                let named =
                    if self.names.is_empty() { String::new() } else { format!(" or a name like {}", self.names[0]) };
                (at, format!("{:?} is not a valid {} value: expected a number{named}", text, self.name))
            })?,
        };
        if !(self.min..=self.max).contains(&n) {
            return Err((at, format!("{} {n} is out of range {}-{}", self.name, self.min, self.max)));
        }
        Ok(n)
    }

    /// A comma-separated list of `*`, `n`, `a-b`, each optionally `/step`; values are stored minus `base`.
    fn parse(&self, text: &str, at: usize, base: u32) -> FieldResult<Bits> {
        let mut bits = Bits::default();
        let mut item_at = at;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some(_) if !self.steps => return Err((item_at, format!("{} does not take increments (/)", self.name))),
                Some((range, step)) => {
                    let step_at = item_at + range.len() + 1;
                    let step: u32 =
                        step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                            (step_at, format!("the increment {step:?} is not a positive whole number"))
                        })?;
                    (range, Some(step))
                }
                None => (item, None),
            };
            let (first, last) = match range.split_once('-') {
                _ if range == "*" => (self.min, self.max),
                Some((a, b)) => {
                    let (first, last) = (self.value(a, item_at)?, self.value(b, item_at + a.len() + 1)?);
                    if first > last {
                        return Err((item_at, format!("the {} range {range} runs backwards", self.name)));
                    }
                    (first, last)
                }
                // `5/15` starts at 5 and runs to the end of the field.
                None if step.is_some() => (self.value(range, item_at)?, self.max),
                None => {
                    let n = self.value(range, item_at)?;
                    (n, n)
                }
            };
            for n in (first..=last).step_by(step.unwrap_or(1) as usize) {
                bits.insert(n - base);
            }
            item_at += item.len() + 1;
        }
        Ok(bits)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cron {
    minutes: Bits,
    hours: Bits,
    days: Days,
    months: Bits,
    /// Years minus 1970.
    years: Bits,
}

/// Which days fire: exactly one of the two day fields constrains, the other is `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Days {
    /// Days of the month 1–31 (`*` sets them all).
    Dates(Bits),
    /// `L`: the month's last day.
    LastDay,
    /// `LW`: the month's last weekday (Monday–Friday).
    LastWeekday,
    /// `nW`: the weekday nearest day n, within the month.
    NearestWeekday(u32),
    /// Days of the week, 1 = Sunday.
    Weekdays(Bits),
    /// `nL` (or `L`, Saturday): the month's last such weekday.
    LastOf(u32),
    /// `d#n`: the month's nth such weekday.
    Nth(u32, u32),
}

impl Cron {
    fn parse(body: &str) -> FieldResult<Self> {
        let mut fields = vec![];
        let mut start = None;
        for (i, c) in body.char_indices().chain([(body.len(), ' ')]) {
            match (c.is_whitespace(), start) {
                (true, Some(s)) => {
                    fields.push((&body[s..i], body[..s].chars().count()));
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        let found = fields.len();
        let [(minutes, m_at), (hours, h_at), (dom, dom_at), (month, mo_at), (dow, dow_at), (year, y_at)]: [_; 6] =
            fields.try_into().map_err(|_| {
                let fields = "minutes hours day-of-month month day-of-week year";
                (0, format!("a cron expression has six fields ({fields}); found {found}"))
            })?;
        let days = match (dom, dow) {
            ("?", "?") => return Err((dow_at, "only one of day-of-month and day-of-week can be ?".into())),
            (dom, "?") => day_of_month(dom, dom_at)?,
            ("?", dow) => day_of_week(dow, dow_at)?,
            _ => return Err((dow_at, "day-of-month and day-of-week cannot both be set: one of them must be ?".into())),
        };
        Ok(Self {
            minutes: MINUTES.parse(minutes, m_at, 0)?,
            hours: HOURS.parse(hours, h_at, 0)?,
            days,
            months: MONTH.parse(month, mo_at, 0)?,
            years: YEAR.parse(year, y_at, FIRST_YEAR as u32)?,
        })
    }

    fn next_after(&self, zone: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // A day earlier than `after`'s local day: where clocks fall back across midnight, its late hours can
        // still be ahead of `after`.
        let mut date = after.with_timezone(&zone).date_naive().pred_opt()?;
        while date.year() <= LAST_YEAR {
            if !self.years.contains((date.year() - FIRST_YEAR) as u32) {
                date = NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)?;
                continue;
            }
            if !self.months.contains(date.month()) {
                date = first_of_next_month(date)?;
                continue;
            }
            if self.days.contain(date) {
                for hour in self.hours.iter(23) {
                    for minute in self.minutes.iter(59) {
                        let local = date.and_hms_opt(hour, minute, 0).expect("valid time");
                        if let Some(t) = resolve(zone, local).filter(|t| *t > after) {
                            return Some(t);
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    let (year, month) = if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
    NaiveDate::from_ymd_opt(year, month, 1)
}

fn last_of_month(date: NaiveDate) -> NaiveDate {
    first_of_next_month(date).and_then(|d| d.pred_opt()).expect("in range")
}

fn is_weekend(date: NaiveDate) -> bool {
    date.weekday().number_from_monday() >= 6
}

/// AWS's day-of-week number, 1 = Sunday.
fn aws_weekday(date: NaiveDate) -> u32 {
    date.weekday().number_from_sunday()
}

fn day_of_month(text: &str, at: usize) -> FieldResult<Days> {
    Ok(match text {
        "L" => Days::LastDay,
        "LW" => Days::LastWeekday,
        _ => match text.strip_suffix('W') {
            Some(day) => Days::NearestWeekday(DAY_OF_MONTH.value(day, at)?),
            None if text.contains('L') || text.contains('W') => {
                return Err((at, format!("{text:?}: L and W stand alone (L, LW, or nW with one day)")))
            }
            None => Days::Dates(DAY_OF_MONTH.parse(text, at, 0)?),
        },
    })
}

fn day_of_week(text: &str, at: usize) -> FieldResult<Days> {
    if let Some((day, n)) = text.split_once('#') {
        if text.contains(',') {
            return Err((at, "# allows only one expression in day-of-week (3#1,6#3 is two)".into()));
        }
        let nth = n
            .parse()
            .ok()
            .filter(|n| (1..=5).contains(n))
            .ok_or_else(|| (at + day.len() + 1, format!("the # instance {n:?} must be 1 to 5")))?;
        return Ok(Days::Nth(DAY_OF_WEEK.value(day, at)?, nth));
    }
    Ok(match text {
        "L" => Days::LastOf(7),
        _ => match text.strip_suffix('L') {
            Some(day) => Days::LastOf(DAY_OF_WEEK.value(day, at)?),
            None => Days::Weekdays(DAY_OF_WEEK.parse(text, at, 0)?),
        },
    })
}

impl Days {
    fn contain(&self, date: NaiveDate) -> bool {
        let last = last_of_month(date);
        match self {
            Days::Dates(days) => days.contains(date.day()),
            Days::LastDay => date == last,
            Days::LastWeekday => {
                let mut day = last;
                while is_weekend(day) {
                    day = day.pred_opt().expect("in range");
                }
                date == day
            }
            Days::NearestWeekday(n) => {
                // Like a plain day number, a day the month lacks (30W in February) fires nothing that month.
                let Some(target) = date.with_day(*n) else { return false };
                let nearest = match target.weekday().number_from_monday() {
                    // Saturday: Friday, unless that leaves the month (the 1st), then Monday the 3rd.
                    6 if target.day() == 1 => target + Duration::days(2),
                    6 => target - Duration::days(1),
                    // Sunday: Monday, unless that leaves the month, then Friday.
                    7 if target == last => target - Duration::days(2),
                    7 => target + Duration::days(1),
                    _ => target,
                };
                date == nearest
            }
            Days::Weekdays(days) => days.contains(aws_weekday(date)),
            Days::LastOf(weekday) => aws_weekday(date) == *weekday && date + Duration::days(7) > last,
            Days::Nth(weekday, n) => aws_weekday(date) == *weekday && (date.day() - 1) / 7 + 1 == *n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// The next `n` fire times after `from`, as RFC 3339 strings.
    fn next(expression: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
        let schedule = Schedule::parse(expression, zone).unwrap();
        schedule.fires_after(utc(from)).take(n).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).collect()
    }

    fn error(expression: &str) -> (usize, String) {
        match Schedule::parse(expression, "UTC").unwrap_err() {
            ScheduleError::Invalid { column, reason, .. } => (column, reason),
            other => panic!("{other}"),
        }
    }

    // The examples of AWS's cron expression reference.
    #[test]
    fn every_day_at_ten() {
        assert_eq!(
            next("cron(0 10 * * ? *)", "UTC", "2026-11-23T10:00:00Z", 2),
            ["2026-11-24T10:00:00Z", "2026-11-25T10:00:00Z"]
        );
    }

    #[test]
    fn at_twelve_fifteen_every_day() {
        assert_eq!(next("cron(15 12 * * ? *)", "UTC", "2026-11-23T12:14:59Z", 1), ["2026-11-23T12:15:00Z"]);
    }

    #[test]
    fn at_six_pm_monday_to_friday() {
        // 2026-11-27 is a Friday.
        assert_eq!(
            next("cron(0 18 ? * MON-FRI *)", "UTC", "2026-11-27T18:00:00Z", 2),
            ["2026-11-30T18:00:00Z", "2026-12-01T18:00:00Z"]
        );
    }

    #[test]
    fn at_eight_on_the_first_of_every_month() {
        assert_eq!(
            next("cron(0 8 1 * ? *)", "UTC", "2026-11-23T00:00:00Z", 3),
            ["2026-12-01T08:00:00Z", "2027-01-01T08:00:00Z", "2027-02-01T08:00:00Z"]
        );
    }

    #[test]
    fn every_fifteen_minutes() {
        assert_eq!(
            next("cron(0/15 * * * ? *)", "UTC", "2026-11-23T23:40:00Z", 3),
            ["2026-11-23T23:45:00Z", "2026-11-24T00:00:00Z", "2026-11-24T00:15:00Z"]
        );
    }

    #[test]
    fn every_ten_minutes_on_weekdays() {
        // Saturday 2026-11-28 23:55 → Monday.
        assert_eq!(next("cron(0/10 * ? * MON-FRI *)", "UTC", "2026-11-28T23:55:00Z", 1), ["2026-11-30T00:00:00Z"]);
    }

    #[test]
    fn every_five_minutes_in_office_hours() {
        assert_eq!(
            next("cron(0/5 8-17 ? * MON-FRI *)", "UTC", "2026-11-23T17:50:00Z", 2),
            ["2026-11-23T17:55:00Z", "2026-11-24T08:00:00Z"]
        );
    }

    #[test]
    fn first_monday_of_each_month() {
        assert_eq!(
            next("cron(0 9 ? * 2#1 *)", "UTC", "2026-11-23T00:00:00Z", 3),
            ["2026-12-07T09:00:00Z", "2027-01-04T09:00:00Z", "2027-02-01T09:00:00Z"]
        );
    }

    #[test]
    fn increments_start_at_their_first_value() {
        assert_eq!(
            next("cron(1/10 0 * * ? *)", "UTC", "2026-11-23T00:00:00Z", 6),
            [1, 11, 21, 31, 41, 51].map(|m| format!("2026-11-23T00:{m:02}:00Z"))
        );
        assert_eq!(next("cron(0 10-20/5 * * ? *)", "UTC", "2026-11-23T00:00:00Z", 4).len(), 4);
        assert_eq!(
            next("cron(0 10-20/5 * * ? *)", "UTC", "2026-11-23T00:00:00Z", 4),
            ["2026-11-23T10:00:00Z", "2026-11-23T15:00:00Z", "2026-11-23T20:00:00Z", "2026-11-24T10:00:00Z"]
        );
    }

    #[test]
    fn lists_and_names_mix() {
        assert_eq!(
            next("cron(0 6 ? jan,Jul,12 sun,3 *)", "UTC", "2026-11-30T00:00:00Z", 3),
            ["2026-12-01T06:00:00Z", "2026-12-06T06:00:00Z", "2026-12-08T06:00:00Z"]
        );
    }

    #[test]
    fn last_day_of_the_month_including_leap_february() {
        assert_eq!(
            next("cron(0 0 L * ? *)", "UTC", "2027-12-31T00:00:00Z", 3),
            ["2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z"]
        );
        assert_eq!(next("cron(0 0 L 2 ? *)", "UTC", "2026-03-01T00:00:00Z", 1), ["2027-02-28T00:00:00Z"]);
    }

    #[test]
    fn the_29th_of_february_fires_in_leap_years_only() {
        assert_eq!(
            next("cron(0 12 29 2 ? *)", "UTC", "2026-01-01T00:00:00Z", 2),
            ["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"]
        );
    }

    #[test]
    fn last_weekday_of_the_month() {
        // 2026-01-31 is a Saturday, 2026-05-31 a Sunday, 2026-03-31 a Tuesday.
        assert_eq!(next("cron(0 0 LW 1 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-01-30T00:00:00Z"]);
        assert_eq!(next("cron(0 0 LW 5 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-05-29T00:00:00Z"]);
        assert_eq!(next("cron(0 0 LW 3 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-03-31T00:00:00Z"]);
    }

    #[test]
    fn nearest_weekday_stays_in_its_month() {
        // 2026-11-01 is a Sunday: 1W is Monday the 2nd. 2026-08-01 is a Saturday: 1W is Monday the 3rd, not
        // Friday in July. 2026-11-15 is a Sunday: 15W is Monday the 16th; 2026-11-14 a Saturday: 14W is Friday.
        assert_eq!(next("cron(0 0 1W 11 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-11-02T00:00:00Z"]);
        assert_eq!(next("cron(0 0 1W 8 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-08-03T00:00:00Z"]);
        assert_eq!(next("cron(0 0 15W 11 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-11-16T00:00:00Z"]);
        assert_eq!(next("cron(0 0 14W 11 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-11-13T00:00:00Z"]);
        // 2026-05-31 is a Sunday and the month's last day: 31W is Friday the 29th.
        assert_eq!(next("cron(0 0 31W 5 ? *)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-05-29T00:00:00Z"]);
    }

    #[test]
    fn last_and_nth_weekdays() {
        // Last Friday (6L) of November 2026 is the 27th; L alone is the last Saturday.
        assert_eq!(next("cron(0 0 ? 11 6L 2026)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-11-27T00:00:00Z"]);
        assert_eq!(next("cron(0 0 ? 11 L 2026)", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-11-28T00:00:00Z"]);
        // The fifth Sunday: November 2026 has one (the 29th), December 2026 none, January 2027 the 31st.
        assert_eq!(
            next("cron(0 0 ? * 1#5 *)", "UTC", "2026-11-01T00:00:00Z", 2),
            ["2026-11-29T00:00:00Z", "2027-01-31T00:00:00Z"]
        );
    }

    #[test]
    fn years_bound_the_schedule() {
        assert_eq!(
            next("cron(0 0 1 1 ? 2027-2028)", "UTC", "2026-06-01T00:00:00Z", 5),
            ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]
        );
        assert_eq!(
            next("cron(0 0 1 1 ? 2030/10)", "UTC", "2026-06-01T00:00:00Z", 2),
            ["2030-01-01T00:00:00Z", "2040-01-01T00:00:00Z"]
        );
        assert!(next("cron(0 0 * * ? 2025)", "UTC", "2026-01-01T00:00:00Z", 1).is_empty());
    }

    #[test]
    fn evaluates_in_the_schedule_zone() {
        // Asia/Kolkata is UTC+5:30 all year; Asia/Kathmandu UTC+5:45.
        assert_eq!(next("cron(0 6 * * ? *)", "Asia/Kolkata", "2026-11-23T00:00:00Z", 1), ["2026-11-23T00:30:00Z"]);
        assert_eq!(next("cron(0 6 * * ? *)", "Asia/Kathmandu", "2026-11-23T00:00:00Z", 1), ["2026-11-23T00:15:00Z"]);
    }

    #[test]
    fn new_york_spring_forward_skips_the_missing_time() {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT. 02:30 does not exist that day.
        assert_eq!(
            next("cron(30 2 * * ? *)", "America/New_York", "2026-03-06T12:00:00Z", 3),
            ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]
        );
        // An hourly schedule fires 23 times that local day.
        let s = Schedule::parse("cron(0 * * * ? *)", "America/New_York").unwrap();
        assert_eq!(s.fires_between(utc("2026-03-08T05:00:00Z"), utc("2026-03-09T04:00:00Z")).count(), 23);
    }

    #[test]
    fn new_york_fall_back_runs_the_repeated_time_once() {
        // 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 happens at 05:30Z and 06:30Z and fires at the first.
        assert_eq!(
            next("cron(30 1 * * ? *)", "America/New_York", "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
        assert_eq!(next("cron(30 1 * * ? *)", "America/New_York", "2026-11-01T05:30:00Z", 1), ["2026-11-02T06:30:00Z"]);
        let s = Schedule::parse("cron(0 * * * ? *)", "America/New_York").unwrap();
        assert_eq!(s.fires_between(utc("2026-11-01T03:00:00Z"), utc("2026-11-02T04:00:00Z")).count(), 24);
    }

    #[test]
    fn london_transitions() {
        // 2026-03-29 01:00 GMT → 02:00 BST: 01:30 is skipped. 2026-10-25 02:00 BST → 01:00 GMT: 01:30 once.
        assert_eq!(
            next("cron(30 1 * * ? *)", "Europe/London", "2026-03-28T12:00:00Z", 2),
            ["2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]
        );
        assert_eq!(
            next("cron(30 1 * * ? *)", "Europe/London", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
    }

    #[test]
    fn lord_howe_shifts_by_thirty_minutes() {
        // Lord Howe is UTC+10:30, and UTC+11 in summer. 2026-10-04 02:00 → 02:30: 02:15 is skipped.
        assert_eq!(
            next("cron(15 2 * * ? *)", "Australia/Lord_Howe", "2026-10-02T12:00:00Z", 2),
            ["2026-10-02T15:45:00Z", "2026-10-04T15:15:00Z"]
        );
        // 2026-04-05 02:00 → 01:30: 01:45 happens twice (14:45Z at +11, 15:15Z at +10:30) and fires once.
        assert_eq!(
            next("cron(45 1 * * ? *)", "Australia/Lord_Howe", "2026-04-03T12:00:00Z", 2),
            ["2026-04-03T14:45:00Z", "2026-04-04T14:45:00Z"]
        );
        assert_eq!(
            next("cron(45 1 * * ? *)", "Australia/Lord_Howe", "2026-04-04T14:45:00Z", 1),
            ["2026-04-05T15:15:00Z"]
        );
    }

    #[test]
    fn rates_count_from_the_epoch() {
        assert_eq!(
            next("rate(5 minutes)", "UTC", "2026-11-23T10:02:00Z", 2),
            ["2026-11-23T10:05:00Z", "2026-11-23T10:10:00Z"]
        );
        assert_eq!(next("rate(1 hour)", "America/New_York", "2026-11-23T10:00:00Z", 1), ["2026-11-23T11:00:00Z"]);
        assert_eq!(next("rate(1 day)", "UTC", "2026-11-23T10:00:00Z", 1), ["2026-11-24T00:00:00Z"]);
    }

    #[test]
    fn at_fires_once_in_its_zone() {
        assert_eq!(
            next("at(2026-12-01T09:00:00)", "Europe/London", "2026-11-23T00:00:00Z", 3),
            ["2026-12-01T09:00:00Z"]
        );
        assert!(next("at(2026-12-01T09:00:00)", "UTC", "2026-12-01T09:00:00Z", 1).is_empty());
        // In the spring-forward gap it never happens.
        assert!(next("at(2026-03-08T02:30:00)", "America/New_York", "2026-01-01T00:00:00Z", 1).is_empty());
    }

    #[test]
    fn invalid_expressions_say_where_and_why() {
        let (column, reason) = error("cron(0 10 * * *)");
        assert_eq!(column, 6);
        assert!(reason.contains("six fields") && reason.contains("found 5"), "{reason}");
        let (column, reason) = error("cron(0 10 * * MON *)");
        assert_eq!(column, 15);
        assert!(reason.contains("must be ?"), "{reason}");
        assert_eq!(error("cron(0 10 ? * ? *)").0, 15);
        let (column, reason) = error("cron(60 10 * * ? *)");
        assert_eq!((column, reason.as_str()), (6, "minutes 60 is out of range 0-59"));
        let (column, reason) = error("cron(0 1,25 * * ? *)");
        assert_eq!((column, reason.as_str()), (10, "hours 25 is out of range 0-23"));
        let (column, reason) = error("cron(0 10 ? FOO MON *)");
        assert_eq!(column, 13);
        assert!(reason.contains("not a valid month"), "{reason}");
        assert_eq!(error("cron(0 10 ? * 2#6 *)").0, 17);
        assert!(error("cron(0 10 ? * 2#1,6#3 *)").1.contains("only one expression"));
        assert!(error("cron(0 10 ? * MON/2 *)").1.contains("increments"));
        assert!(error("cron(0/0 10 * * ? *)").1.contains("increment"));
        assert!(error("cron(0 10 * * ? 1969)").1.contains("out of range 1970-2199"));
        assert!(error("cron(0 20-10 * * ? *)").1.contains("backwards"));
        assert!(error("cron(0 10 5L * ? *)").1.contains("L and W"));
        let (column, reason) = error("rate(0 minutes)");
        assert_eq!(column, 6);
        assert!(reason.contains("positive"), "{reason}");
        assert_eq!(error("rate(5 weeks)").0, 8);
        assert!(error("at(2026-13-01T00:00:00)").1.contains("yyyy-mm-dd"));
        assert_eq!(error("every(5 minutes)").0, 1);
        assert_eq!(error("cron(0 10 * * ? *").0, 1);
        assert_eq!(
            Schedule::parse("rate(5 minutes)", "Mars/Olympus_Mons").unwrap_err(),
            ScheduleError::UnknownZone("Mars/Olympus_Mons".into())
        );
    }
}
