//! monthly-report: on the 1st at 09:00 in each user's own time zone, an email about their previous local
//! month — workouts, time, minutes per week, best week, and where they ranked among the members active that
//! month. The standings are built once per month, by the first slot that reaches a 1st anywhere, before any
//! report of that month is queued. Delivery key: (user, month).

use askama::Template;
use async_trait::async_trait;
use chrono::{Duration, NaiveTime};
use serde_json::Value;
use std::sync::Arc;

use crate::{
    channels::{Channels, Rendered},
    deliveries::Deliveries,
    ports::{ActivityStore, Contact, DeliveryKey, Email, Kind, MonthActivity, MonthlyReports, Standing, ZoneMoves},
    render::{self, filters, Footer},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    tasks::{
        local_time::{subject, Cadence, Chunk, EveryUser, LocalTime},
        messages::{self, Letterhead, Message},
    },
    time::Slot,
    Result,
};

pub const NAME: &str = "monthly-report";

/// The local time on the 1st each user gets their report at.
pub fn send_at() -> NaiveTime {
    NaiveTime::from_hms_opt(9, 0, 0).expect("09:00 is a time")
}

pub struct MonthlyReport {
    /// Users by zone.
    pub activity: Arc<dyn ActivityStore>,
    pub months: Arc<dyn MonthlyReports>,
    pub moves: Arc<dyn ZoneMoves>,
    pub channels: Channels,
    pub letterhead: Letterhead,
    /// Users per queued message.
    pub chunk_size: u32,
}

impl MonthlyReport {
    fn local(&self) -> LocalTime<'_> {
        LocalTime {
            task: NAME,
            at: send_at(),
            cadence: Cadence::MonthBefore,
            users: self.activity.as_ref(),
            moves: Some(self.moves.as_ref()),
            chunk_size: self.chunk_size,
        }
    }
}

#[async_trait]
impl Task for MonthlyReport {
    fn name(&self) -> &'static str {
        NAME
    }

    fn granularity(&self) -> Duration {
        Duration::hours(1)
    }

    /// Each hourly slot has its own users (those whose 1st 09:00 it reached): a missed slot is caught up.
    fn catch_up(&self) -> CatchUp {
        CatchUp::All
    }

    fn overlap(&self) -> Overlap {
        Overlap::Wait(std::time::Duration::from_secs(20))
    }

    fn local_time(&self) -> Option<(NaiveTime, Cadence)> {
        Some((send_at(), Cadence::MonthBefore))
    }

    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        let local = self.local();
        let (due, _) = local.zones_due(slot, self.granularity()).await?;
        // Most slots the schedule fires (the 28th to the 31st) reach no 1st anywhere: nothing to build or plan.
        // Unknown zones are reported by the slots that do plan.
        if due.is_empty() {
            return Ok(());
        }
        // Set-based and once per month (a later or concurrent call builds nothing), before the first report is
        // queued, so every report of the month reads the same standings. Stamped with the slot: a plan has no
        // other clock, and the slot is when they were due.
        for month in due.keys() {
            self.months.build_standings(*month, slot.time()).await?;
        }
        local.plan(slot, self.granularity(), &EveryUser(self.activity.as_ref()), fanout).await
    }

    async fn work(&self, _slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let chunk = Chunk::parse(NAME, payload)?;
        let mut report = WorkReport::default();
        let (contacts, wanted) = messages::reachable(&self.channels, &chunk, &mut report).await?;
        let months = self.months.months(&wanted).await?;
        report.skip("no workout that month", (wanted.len() - months.len()) as u64);

        let now = deliveries.clock.now();
        let messages = months
            .iter()
            .map(|month| {
                let contact = &contacts[&month.user_id];
                let footer = self.letterhead.footer(month.user_id, Kind::Reports, now);
                Ok(Message {
                    user_id: month.user_id,
                    key: DeliveryKey {
                        subject: subject(month.user_id),
                        period: month.month.format("%Y-%m").to_string(),
                    },
                    rendered: Rendered {
                        email: Some(render(&self.letterhead.from, contact, month, &footer)?),
                        ..Rendered::default()
                    },
                })
            })
            .collect::<Result<_>>()?;
        messages::send(&self.channels, Kind::Reports, &contacts, messages, now, deliveries, &mut report).await?;
        Ok(report)
    }
}

/// `1` → "1st", `12` → "12th", `22` → "22nd", `111` → "111th".
fn ordinal(n: i64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// "You ranked 12th of 340 — more than 96% of active members"; the share is rounded down so "more than"
/// stays true, and left out when it is under one percent (the last, or the only one ranked).
fn rank_line(standing: &Standing) -> String {
    let ranked = format!("You ranked {} of {}", ordinal(standing.rank), render::thousands(standing.ranked));
    match standing.percentile.floor() as i64 {
        0 => ranked,
        share => format!("{ranked} — more than {share}% of active members"),
    }
}

/// What the report says, for its two templates.
#[derive(Template)]
#[template(path = "fitness/monthly_report.html")]
struct Report<'a> {
    name: &'a str,
    month: &'a MonthActivity,
    /// "November 2026"
    title: String,
    minutes_per_week: i64,
    /// "the week of 9 November"
    best_week: String,
    /// None when the user is not in the month's standings.
    rank: Option<String>,
    footer: &'a Footer,
}

#[derive(Template)]
#[template(path = "fitness/monthly_report.txt")]
struct Text<'a>(&'a Report<'a>);

impl<'a> std::ops::Deref for Text<'a> {
    type Target = Report<'a>;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

/// The report email, as text and as HTML.
pub fn render(from: &str, to: &Contact, month: &MonthActivity, footer: &Footer) -> Result<Email> {
    let report = Report {
        name: &to.name,
        month,
        title: month.month.format("%B %Y").to_string(),
        minutes_per_week: month.minutes_per_week.round() as i64,
        best_week: month.best_week.format("the week of %-d %B").to_string(),
        rank: month.standing.as_ref().map(rank_line),
        footer,
    };
    let workouts = match month.workouts {
        1 => "1 workout".to_owned(),
        n => format!("{n} workouts"),
    };
    let subject = format!("Your {}: {workouts}, {}", report.title, render::duration(month.minutes));
    render::email(from, &to.email, subject, &report, &Text(&report), footer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient() -> Contact {
        Contact {
            user_id: 7,
            name: "Ana & <Bo>".into(),
            email: "ana@example.com".into(),
            phone: None,
            time_zone: "Europe/London".into(),
            email_opt_in: true,
            email_suppressed: false,
            devices: vec![],
            choices: vec![],
        }
    }

    fn month(standing: Option<Standing>) -> MonthActivity {
        MonthActivity {
            user_id: 7,
            month: "2026-11-01".parse().unwrap(),
            workouts: 12,
            minutes: 570,
            minutes_per_week: 133.4,
            best_week: "2026-11-09".parse().unwrap(),
            standing,
        }
    }

    fn email(standing: Option<Standing>) -> Email {
        let footer = Footer { kind: Kind::Reports, unsubscribe: None, preferences: None };
        render("jobs@example.com", &recipient(), &month(standing), &footer).unwrap()
    }

    #[test]
    fn the_report_says_what_the_month_held_and_the_rank_in_both_parts() {
        let email = email(Some(Standing { rank: 12, ranked: 340, percentile: 96.47 }));
        assert_eq!(email.subject, "Your November 2026: 12 workouts, 9 h 30 min");
        for part in [&email.text, &email.html] {
            assert!(part.contains("9 h 30 min"), "{part}");
            assert!(part.contains("2 h 13 min"), "{part}");
            assert!(part.contains("the week of 9 November"), "{part}");
            assert!(part.contains("You ranked 12th of 340 — more than 96% of active members"), "{part}");
        }
    }

    #[test]
    fn a_user_without_a_standing_gets_the_report_without_a_rank() {
        let email = email(None);
        for part in [&email.text, &email.html] {
            assert!(part.contains("9 h 30 min"), "{part}");
            assert!(!part.contains("ranked"), "{part}");
        }
    }

    #[test]
    fn ranks_read_as_ordinals_and_a_share_under_one_percent_is_left_out() {
        let ords: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111, 112].map(ordinal).to_vec();
        assert_eq!(
            ords,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th", "112th"]
        );
        assert_eq!(rank_line(&Standing { rank: 1, ranked: 1, percentile: 0.0 }), "You ranked 1st of 1");
        assert_eq!(
            rank_line(&Standing { rank: 1, ranked: 2_000, percentile: 99.95 }),
            "You ranked 1st of 2,000 — more than 99% of active members"
        );
    }

    #[test]
    fn user_text_is_escaped_in_html() {
        let email = email(None);
        assert!(email.html.contains("Ana &#38; &#60;Bo&#62;"), "{}", email.html);
        assert!(email.text.contains("Ana & <Bo>"), "{}", email.text);
    }
}
