//! daily-summary: at 06:00 in each user's own time zone, an email about their previous local day — workouts,
//! total time, calories, volume lifted, personal records, streak. Planned by zone (`tasks::local_time`);
//! delivery key: (user, local day).

use askama::Template;
use async_trait::async_trait;
use chrono::{Duration, NaiveDate, NaiveTime};
use serde_json::Value;
use std::sync::Arc;

use crate::{
    channels::{Channels, Rendered},
    deliveries::Deliveries,
    ports::{ActivityStore, Contact, DayActivity, DeliveryKey, Email, Kind, ZoneMoves},
    render::{self, filters, Footer},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    tasks::{
        local_time::{subject, Cadence, Chunk, Due, EveryUser, LocalTime},
        messages::{self, Letterhead, Message},
    },
    time::Slot,
    Result,
};

pub const NAME: &str = "daily-summary";

/// The local time each user gets their summary at.
pub fn send_at() -> NaiveTime {
    NaiveTime::from_hms_opt(6, 0, 0).expect("06:00 is a time")
}

pub struct DailySummary {
    pub store: Arc<dyn ActivityStore>,
    pub moves: Arc<dyn ZoneMoves>,
    pub channels: Channels,
    pub letterhead: Letterhead,
    /// Users per queued message.
    pub chunk_size: u32,
}

#[async_trait]
impl Task for DailySummary {
    fn name(&self) -> &'static str {
        NAME
    }

    fn granularity(&self) -> Duration {
        Duration::hours(1)
    }

    /// Each hourly slot has its own users (those whose 06:00 it reached): a missed slot is caught up.
    fn catch_up(&self) -> CatchUp {
        CatchUp::All
    }

    fn overlap(&self) -> Overlap {
        Overlap::Wait(std::time::Duration::from_secs(20))
    }

    fn local_time(&self) -> Option<(NaiveTime, Cadence)> {
        Some((send_at(), Cadence::DayBefore))
    }

    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        let local = LocalTime {
            task: NAME,
            at: send_at(),
            cadence: Cadence::DayBefore,
            users: self.store.as_ref(),
            moves: Some(self.moves.as_ref()),
            chunk_size: self.chunk_size,
        };
        local.plan(slot, self.granularity(), &EveryUser(self.store.as_ref()), fanout).await
    }

    async fn work(&self, _slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let chunk = Chunk::parse(NAME, payload)?;
        let mut report = WorkReport::default();
        // Activity first: most users of a day did not train, and only those who did need their contacts read.
        let due: Vec<(i64, NaiveDate)> = chunk.users.iter().map(|due| (due.id, due.day)).collect();
        let activity = self.store.day_activity(&due).await?;
        report.skip("no activity", (due.len() - activity.len()) as u64);
        let active = Chunk { users: activity.iter().map(|day| Due { id: day.user_id, day: day.day }).collect() };
        let (contacts, _) = messages::reachable(&self.channels, &active, &mut report).await?;
        let activity: Vec<_> = activity.into_iter().filter(|day| contacts.contains_key(&day.user_id)).collect();

        let now = deliveries.clock.now();
        let messages = activity
            .iter()
            .map(|day| {
                let contact = &contacts[&day.user_id];
                let footer = self.letterhead.footer(day.user_id, Kind::Reports, now);
                Ok(Message {
                    user_id: day.user_id,
                    key: DeliveryKey { subject: subject(day.user_id), period: day.day.to_string() },
                    rendered: Rendered {
                        email: Some(render(&self.letterhead.from, contact, day, &footer)?),
                        ..Rendered::default()
                    },
                })
            })
            .collect::<Result<_>>()?;
        messages::send(&self.channels, Kind::Reports, &contacts, messages, now, deliveries, &mut report).await?;
        Ok(report)
    }
}

/// What the summary says, for its two templates.
#[derive(Template)]
#[template(path = "fitness/daily_summary.html")]
struct Summary<'a> {
    name: &'a str,
    day: &'a DayActivity,
    /// "Sunday 22 November"
    date: String,
    minutes: i64,
    calories: i64,
    volume: i64,
    streak: String,
    footer: &'a Footer,
}

#[derive(Template)]
#[template(path = "fitness/daily_summary.txt")]
struct Text<'a>(&'a Summary<'a>);

impl<'a> std::ops::Deref for Text<'a> {
    type Target = Summary<'a>;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

/// The summary email, as text and as HTML.
pub fn render(from: &str, to: &Contact, day: &DayActivity, footer: &Footer) -> Result<Email> {
    let summary = Summary {
        name: &to.name,
        day,
        date: day.day.format("%A %-d %B").to_string(),
        minutes: day.workouts.iter().map(|w| w.duration_minutes).sum(),
        calories: day.workouts.iter().map(|w| w.calories).sum(),
        volume: day.volume_kg.round() as i64,
        streak: match day.streak_days {
            1 => "1 day".to_owned(),
            n => format!("{n} days in a row"),
        },
        footer,
    };
    let workouts = match day.workouts.len() {
        1 => "1 workout".to_owned(),
        n => format!("{n} workouts"),
    };
    let subject = format!("Your {}: {workouts}, {}", summary.date, render::duration(summary.minutes));
    render::email(from, &to.email, subject, &summary, &Text(&summary), footer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{RecordLine, WorkoutLine};

    fn recipient() -> Contact {
        Contact {
            user_id: 7,
            name: "Ana <admin>".into(),
            email: "ana@example.com".into(),
            phone: None,
            time_zone: "Asia/Kolkata".into(),
            email_opt_in: true,
            email_suppressed: false,
            devices: vec![],
            choices: vec![],
        }
    }

    fn day() -> DayActivity {
        DayActivity {
            user_id: 7,
            day: "2026-11-22".parse().unwrap(),
            workouts: vec![
                WorkoutLine { name: "Push & pull".into(), duration_minutes: 65, calories: 540 },
                WorkoutLine { name: "Run".into(), duration_minutes: 30, calories: 1_320 },
            ],
            volume_kg: 12_345.4,
            records: vec![RecordLine { exercise: "Bench press".into(), weight_kg: 82.5, reps: 5 }],
            streak_days: 4,
        }
    }

    fn footer() -> Footer {
        Footer {
            kind: Kind::Reports,
            unsubscribe: Some("https://u.example/?token=a.b&c".into()),
            preferences: Some("https://app.example/preferences".into()),
        }
    }

    fn email() -> Email {
        render("jobs@example.com", &recipient(), &day(), &footer()).unwrap()
    }

    #[test]
    fn summary_says_what_was_done_in_both_parts() {
        let email = email();
        assert_eq!(email.to, "ana@example.com");
        assert_eq!(email.subject, "Your Sunday 22 November: 2 workouts, 1 h 35 min");
        for part in [&email.text, &email.html] {
            assert!(part.contains("1 h 35 min"), "{part}");
            assert!(part.contains("1,860 kcal"), "{part}");
            assert!(part.contains("12,345 kg"), "{part}");
            assert!(part.contains("4 days in a row"), "{part}");
            assert!(part.contains("Bench press: 82.5 kg"), "{part}");
        }
        assert!(email.text.contains("- Push & pull: 1 h 5 min, 540 kcal"));
    }

    #[test]
    fn user_text_is_escaped_in_html() {
        let email = email();
        // askama escapes with numeric entities: &#60; is <, &#62; >, &#38; &.
        assert!(email.html.contains("Ana &#60;admin&#62;"));
        assert!(email.html.contains("Push &#38; pull"));
        assert!(!email.html.contains("<admin>"));
    }

    #[test]
    fn the_footer_says_why_and_links_the_unsubscribe_page_in_both_parts_and_the_headers() {
        let email = email();
        assert_eq!(email.unsubscribe.as_deref(), Some("https://u.example/?token=a.b&c"));
        for part in [&email.text, &email.html] {
            assert!(part.contains("You get this because you turned on reports emails"), "{part}");
            assert!(part.contains("https://app.example/preferences"), "{part}");
        }
        assert!(email.text.contains("https://u.example/?token=a.b&c\n"), "{}", email.text);
        assert!(email.html.contains("href=\"https://u.example/?token=a.b&#38;c\""), "{}", email.html);
    }
}
