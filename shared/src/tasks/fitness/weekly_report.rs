//! weekly-report: on Monday at 08:00 in each user's own time zone, an email about their previous local
//! Monday–Sunday — workouts, time, calories, volume, records, the change on the week before, the best day and
//! a chart of the last eight weeks. Only users who trained that week get one. Delivery key: (user, ISO week).

use askama::Template;
use async_trait::async_trait;
use chrono::{Datelike, Duration, NaiveDate, NaiveTime};
use serde_json::Value;
use std::sync::Arc;

use crate::{
    channels::{Channels, Rendered},
    deliveries::Deliveries,
    ports::{ActivityStore, Contact, DeliveryKey, Email, Kind, WeekActivity, WeeklyReports, ZoneMoves},
    render::{self, filters, Footer},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    tasks::{
        local_time::{subject, Cadence, Chunk, EveryUser, LocalTime},
        messages::{self, Letterhead, Message},
    },
    time::Slot,
    Result,
};

pub const NAME: &str = "weekly-report";

/// The local time on Mondays each user gets their report at.
pub fn send_at() -> NaiveTime {
    NaiveTime::from_hms_opt(8, 0, 0).expect("08:00 is a time")
}

/// Characters in the text chart's longest bar.
const TEXT_BAR: i64 = 20;

pub struct WeeklyReport {
    /// Users by zone, and each best day's minutes.
    pub activity: Arc<dyn ActivityStore>,
    pub weeks: Arc<dyn WeeklyReports>,
    pub moves: Arc<dyn ZoneMoves>,
    pub channels: Channels,
    pub letterhead: Letterhead,
    /// Users per queued message.
    pub chunk_size: u32,
}

#[async_trait]
impl Task for WeeklyReport {
    fn name(&self) -> &'static str {
        NAME
    }

    fn granularity(&self) -> Duration {
        Duration::hours(1)
    }

    /// Each hourly slot has its own users (those whose Monday 08:00 it reached): a missed slot is caught up.
    fn catch_up(&self) -> CatchUp {
        CatchUp::All
    }

    fn overlap(&self) -> Overlap {
        Overlap::Wait(std::time::Duration::from_secs(20))
    }

    fn local_time(&self) -> Option<(NaiveTime, Cadence)> {
        Some((send_at(), Cadence::WeekBefore))
    }

    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        let local = LocalTime {
            task: NAME,
            at: send_at(),
            cadence: Cadence::WeekBefore,
            users: self.activity.as_ref(),
            moves: Some(self.moves.as_ref()),
            chunk_size: self.chunk_size,
        };
        local.plan(slot, self.granularity(), &EveryUser(self.activity.as_ref()), fanout).await
    }

    async fn work(&self, _slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let chunk = Chunk::parse(NAME, payload)?;
        let mut report = WorkReport::default();
        let (contacts, wanted) = messages::reachable(&self.channels, &chunk, &mut report).await?;
        let weeks = self.weeks.weeks(&wanted).await?;
        report.skip("no workout that week", (wanted.len() - weeks.len()) as u64);

        let now = deliveries.clock.now();
        let messages = weeks
            .iter()
            .map(|week| {
                let contact = &contacts[&week.user_id];
                let footer = self.letterhead.footer(week.user_id, Kind::Reports, now);
                Ok(Message {
                    user_id: week.user_id,
                    key: DeliveryKey { subject: subject(week.user_id), period: iso_week(week.monday) },
                    rendered: Rendered {
                        email: Some(render(&self.letterhead.from, contact, week, &footer)?),
                        ..Rendered::default()
                    },
                })
            })
            .collect::<Result<_>>()?;
        messages::send(&self.channels, Kind::Reports, &contacts, messages, now, deliveries, &mut report).await?;
        Ok(report)
    }
}

/// The ISO week a Monday starts, as the delivery key names it: "2026-W48".
pub fn iso_week(monday: NaiveDate) -> String {
    monday.format("%G-W%V").to_string()
}

/// "16–22 November", or "26 October – 1 November" across a month's end.
fn week_span(monday: NaiveDate) -> String {
    let sunday = monday + Duration::days(6);
    if monday.month() == sunday.month() {
        format!("{}–{}", monday.day(), sunday.format("%-d %B"))
    } else {
        format!("{} – {}", monday.format("%-d %B"), sunday.format("%-d %B"))
    }
}

/// One week's row of the chart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bar {
    /// The week's Monday, its day padded so the text bars line up: " 5 Oct", "12 Oct".
    label: String,
    minutes: i64,
    /// The HTML bar's width, in percent of the longest.
    percent: i64,
    /// The text bar.
    blocks: String,
}

/// The chart of `minutes_by_week` (oldest first, the last the week of `monday`), each bar proportional to the
/// longest week. Bars are table cells and characters rather than an image: nothing for a client that blocks
/// images to hide, no host to fetch it from, and nothing that tells anyone the email was opened.
fn chart(monday: NaiveDate, minutes_by_week: &[i64]) -> Vec<Bar> {
    let longest = minutes_by_week.iter().copied().max().unwrap_or(0).max(1);
    // A week with any minutes shows at least a sliver: rounding must not make it look like a week off.
    let scale = |minutes: i64, full: i64| match minutes * full / longest {
        0 if minutes > 0 => 1,
        n => n,
    };
    let weeks = minutes_by_week.len() as i64;
    minutes_by_week
        .iter()
        .enumerate()
        .map(|(i, &minutes)| Bar {
            label: (monday - Duration::weeks(weeks - 1 - i as i64)).format("%e %b").to_string(),
            minutes,
            percent: scale(minutes, 100),
            blocks: "█".repeat(scale(minutes, TEXT_BAR) as usize),
        })
        .collect()
}

/// What the report says, for its two templates.
#[derive(Template)]
#[template(path = "fitness/weekly_report.html")]
struct Report<'a> {
    name: &'a str,
    week: &'a WeekActivity,
    /// "16–22 November"
    dates: String,
    volume: i64,
    /// Time against the week before: "+12%", "new".
    change: String,
    /// "Wednesday"
    best_day: String,
    best_day_minutes: i64,
    chart: Vec<Bar>,
    footer: &'a Footer,
}

#[derive(Template)]
#[template(path = "fitness/weekly_report.txt")]
struct Text<'a>(&'a Report<'a>);

impl<'a> std::ops::Deref for Text<'a> {
    type Target = Report<'a>;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

/// The report email, as text and as HTML.
pub fn render(from: &str, to: &Contact, week: &WeekActivity, footer: &Footer) -> Result<Email> {
    // The chart's second last week is the week before; a store that gave fewer weeks had none of it.
    let before = week.minutes_by_week.iter().rev().nth(1).copied().unwrap_or(0);
    let report = Report {
        name: &to.name,
        week,
        dates: week_span(week.monday),
        volume: week.volume_kg.round() as i64,
        change: render::change(week.minutes as f64, before as f64),
        best_day: week.best_day.format("%A").to_string(),
        best_day_minutes: week.best_day_minutes,
        chart: chart(week.monday, &week.minutes_by_week),
        footer,
    };
    let workouts = match week.workouts {
        1 => "1 workout".to_owned(),
        n => format!("{n} workouts"),
    };
    let subject = format!("Your week, {}: {workouts}, {}", report.dates, render::duration(week.minutes));
    render::email(from, &to.email, subject, &report, &Text(&report), footer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::RecordLine;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn recipient() -> Contact {
        Contact {
            user_id: 7,
            name: "Ana <admin>".into(),
            email: "ana@example.com".into(),
            phone: None,
            time_zone: "Europe/London".into(),
            email_opt_in: true,
            email_suppressed: false,
            devices: vec![],
            choices: vec![],
        }
    }

    fn week(minutes_by_week: Vec<i64>) -> WeekActivity {
        WeekActivity {
            user_id: 7,
            monday: d("2026-10-19"),
            workouts: 3,
            minutes: *minutes_by_week.last().unwrap(),
            calories: 1_860,
            volume_kg: 12_345.4,
            records: vec![RecordLine { exercise: "Squat & lunge".into(), weight_kg: 100.0, reps: 3 }],
            best_day: d("2026-10-21"),
            best_day_minutes: 65,
            minutes_by_week,
        }
    }

    fn footer() -> Footer {
        Footer { kind: Kind::Reports, unsubscribe: Some("https://u.example/?token=a.b&c".into()), preferences: None }
    }

    fn email(minutes_by_week: Vec<i64>) -> Email {
        render("jobs@example.com", &recipient(), &week(minutes_by_week), &footer()).unwrap()
    }

    #[test]
    fn the_report_says_what_the_week_held_in_both_parts() {
        let email = email(vec![0, 0, 30, 60, 0, 90, 100, 125]);
        assert_eq!(email.subject, "Your week, 19–25 October: 3 workouts, 2 h 5 min");
        for part in [&email.text, &email.html] {
            assert!(part.contains("2 h 5 min"), "{part}");
            assert!(part.contains("1,860 kcal"), "{part}");
            assert!(part.contains("12,345 kg"), "{part}");
            assert!(part.contains("+25%"), "{part}");
            assert!(part.contains("Wednesday, 1 h 5 min"), "{part}");
            assert!(part.contains("100 kg"), "{part}");
        }
        assert!(email.text.contains("- Squat & lunge: 100 kg × 3"), "{}", email.text);
    }

    #[test]
    fn a_week_after_a_week_off_is_new_not_infinite() {
        let email = email(vec![0, 0, 0, 0, 0, 0, 0, 45]);
        assert!(email.text.contains("Against the week before: new\n"), "{}", email.text);
        assert!(email.html.contains("Against the week before: <strong>new</strong>"), "{}", email.html);
    }

    #[test]
    fn the_chart_is_in_both_parts_with_proportional_bars() {
        let email = email(vec![0, 0, 30, 60, 0, 90, 100, 120]);
        for width in ["25%", "50%", "75%", "83%", "100%"] {
            assert!(email.html.contains(&format!("<table width=\"{width}\" cellpadding=\"0\"")), "{}", email.html);
        }
        assert!(!email.html.contains("<img"), "{}", email.html);
        assert!(email.text.contains(&format!("19 Oct  {} 2 h", "█".repeat(20))), "{}", email.text);
        assert!(email.text.contains(" 7 Sep   0 min"), "{}", email.text);
    }

    #[test]
    fn bars_scale_to_the_longest_week_and_a_short_week_still_shows() {
        let bars = chart(d("2026-10-19"), &[0, 1, 50, 100]);
        let widths: Vec<(i64, usize)> = bars.iter().map(|b| (b.percent, b.blocks.chars().count())).collect();
        assert_eq!(widths, [(0, 0), (1, 1), (50, 10), (100, 20)]);
        let labels: Vec<&str> = bars.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["28 Sep", " 5 Oct", "12 Oct", "19 Oct"]);
        assert!(chart(d("2026-10-19"), &[0, 0]).iter().all(|b| b.percent == 0 && b.blocks.is_empty()));
    }

    #[test]
    fn weeks_are_named_by_iso_week_and_by_their_days() {
        assert_eq!(iso_week(d("2026-11-23")), "2026-W48");
        assert_eq!(iso_week(d("2026-12-28")), "2026-W53");
        assert_eq!(iso_week(d("2027-01-04")), "2027-W01");
        assert_eq!(week_span(d("2026-11-16")), "16–22 November");
        assert_eq!(week_span(d("2026-10-26")), "26 October – 1 November");
    }

    #[test]
    fn user_text_is_escaped_in_html() {
        let email = email(vec![10, 20]);
        assert!(email.html.contains("Ana &#60;admin&#62;"), "{}", email.html);
        assert!(email.html.contains("Squat &#38; lunge"), "{}", email.html);
        assert!(!email.html.contains("<admin>"));
    }
}
