//! inactivity-reminders: at 18:00 in each user's own zone, a nudge to those who have not trained for some days
//! (or never logged a workout), by push, SMS or email as they chose. Planned by zone (`tasks::local_time`);
//! delivery key: (user, first day of the stretch without a workout), so one reminder per stretch: another
//! comes only once they have trained and stopped again.

use askama::Template;
use async_trait::async_trait;
use chrono::{Duration, NaiveDate, NaiveTime};
use serde_json::Value;
use std::{collections::BTreeMap, sync::Arc};

use crate::{
    channels::{Channels, PushText, Rendered},
    deliveries::Deliveries,
    ports::{self, ActivityStore, Contact, DeliveryKey, Email, Inactive, Kind},
    render::{self, form, Footer},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    tasks::{
        local_time::{subject, Cadence, Chunk, EveryUser, LocalTime},
        messages::{self, Letterhead, Message},
    },
    time::Slot,
    Result,
};

pub const NAME: &str = "inactivity-reminders";

/// Days without a workout before a reminder, unless configured (`INACTIVITY_DAYS`).
pub const DEFAULT_DAYS: u32 = 3;

/// The local time each user gets their reminder at: early evening, when there is still time to train.
pub fn send_at() -> NaiveTime {
    NaiveTime::from_hms_opt(18, 0, 0).expect("18:00 is a time")
}

pub struct InactivityReminders {
    pub store: Arc<dyn ActivityStore>,
    pub inactive: Arc<dyn ports::InactivityReminders>,
    pub channels: Channels,
    pub letterhead: Letterhead,
    /// Days without a workout that make a user inactive.
    pub days: u32,
    /// Users per queued message.
    pub chunk_size: u32,
}

#[async_trait]
impl Task for InactivityReminders {
    fn name(&self) -> &'static str {
        NAME
    }

    fn granularity(&self) -> Duration {
        Duration::hours(1)
    }

    /// Each hourly slot has its own users (those whose 18:00 it reached), and a reminder planned late is still
    /// useful the same evening; should it come after 21:00, quiet hours hold a push or SMS until the morning.
    fn catch_up(&self) -> CatchUp {
        CatchUp::All
    }

    fn overlap(&self) -> Overlap {
        Overlap::Wait(std::time::Duration::from_secs(20))
    }

    fn local_time(&self) -> Option<(NaiveTime, Cadence)> {
        Some((send_at(), Cadence::SameDay))
    }

    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        let local = LocalTime {
            task: NAME,
            at: send_at(),
            cadence: Cadence::SameDay,
            users: self.store.as_ref(),
            // A day a zone move skipped needs no reminder of its own: the stretch is still there the next
            // evening, and its key is the stretch's first day, not the day planned.
            moves: None,
            chunk_size: self.chunk_size,
        };
        local.plan(slot, self.granularity(), &EveryUser(self.store.as_ref()), fanout).await
    }

    async fn work(&self, _slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let chunk = Chunk::parse(NAME, payload)?;
        let mut report = WorkReport::default();
        let (contacts, due) = messages::reachable(&self.channels, &chunk, &mut report).await?;
        let mut by_day: BTreeMap<NaiveDate, Vec<i64>> = BTreeMap::new();
        for (user, day) in due {
            by_day.entry(day).or_default().push(user);
        }

        let now = deliveries.clock.now();
        let mut messages = vec![];
        for (today, users) in by_day {
            let inactive = self.inactive.inactive(&users, today, self.days).await?;
            report.skip("active recently or signed up recently", (users.len() - inactive.len()) as u64);
            for user in inactive {
                let footer = self.letterhead.footer(user.user_id, Kind::Reminders, now);
                messages.push(Message {
                    user_id: user.user_id,
                    key: DeliveryKey { subject: subject(user.user_id), period: user.stretch_start.to_string() },
                    rendered: render(&self.letterhead.from, &contacts[&user.user_id], &user, today, &footer)?,
                });
            }
        }
        messages::send(&self.channels, Kind::Reminders, &contacts, messages, now, deliveries, &mut report).await?;
        Ok(report)
    }
}

/// What a reminder says, in each of its forms.
#[derive(Template)]
#[template(path = "fitness/inactivity_reminder.html")]
struct Reminder<'a> {
    name: &'a str,
    /// "It's been 5 days since your last workout", or an invitation to log a first one.
    headline: String,
    /// Set when they have trained before.
    last_workout: Option<String>,
    footer: &'a Footer,
}

form!(Text, "fitness/inactivity_reminder.txt", Reminder);
form!(Sms, "fitness/inactivity_reminder.sms.txt", Reminder);
form!(PushBody, "fitness/inactivity_reminder.push.txt", Reminder);

/// The reminder to `to`, inactive as of their local `today`, as a push, an SMS and an email.
pub fn render(from: &str, to: &Contact, user: &Inactive, today: NaiveDate, footer: &Footer) -> Result<Rendered> {
    let headline = match user.last_workout {
        Some(last) => match (today - last).num_days() {
            1 => "It's been 1 day since your last workout".to_owned(),
            days => format!("It's been {days} days since your last workout"),
        },
        None => "You haven't logged a workout yet".to_owned(),
    };
    let reminder = Reminder {
        name: &to.name,
        headline,
        last_workout: user.last_workout.map(|day| day.format("%A %-d %B").to_string()),
        footer,
    };
    let email: Email = render::email(from, &to.email, reminder.headline.clone(), &reminder, &Text(&reminder), footer)?;
    Ok(Rendered {
        email: Some(email),
        sms: Some(render::text(&Sms(&reminder), "the reminder's SMS")?),
        push: Some(PushText {
            title: reminder.headline.clone(),
            body: render::text(&PushBody(&reminder), "the reminder's push")?,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> Contact {
        Contact {
            user_id: 7,
            name: "Ana <admin>".into(),
            email: "ana@example.com".into(),
            phone: Some("+447700900123".into()),
            time_zone: "Europe/London".into(),
            email_opt_in: true,
            email_suppressed: false,
            devices: vec![],
            choices: vec![],
        }
    }

    fn footer() -> Footer {
        Footer { kind: Kind::Reminders, unsubscribe: Some("https://u.example/?token=a.b".into()), preferences: None }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn rendered(last_workout: Option<&str>) -> Rendered {
        let user = Inactive { user_id: 7, last_workout: last_workout.map(d), stretch_start: d("2026-11-18") };
        render("coach@example.com", &contact(), &user, d("2026-11-22"), &footer()).unwrap()
    }

    #[test]
    fn a_lapsed_user_is_told_how_long_it_has_been_in_every_form() {
        let rendered = rendered(Some("2026-11-17"));
        let (email, sms, push) = (rendered.email.unwrap(), rendered.sms.unwrap(), rendered.push.unwrap());
        assert_eq!(email.subject, "It's been 5 days since your last workout");
        assert_eq!(push.title, "It's been 5 days since your last workout");
        assert!(sms.starts_with("It's been 5 days since your last workout"), "{sms}");
        for part in [&email.text, &email.html] {
            assert!(part.contains("Tuesday 17 November"), "{part}");
            assert!(part.contains("You get this because you turned on reminders emails"), "{part}");
        }
        assert!(!push.body.is_empty() && !push.body.contains('\n'), "{:?}", push.body);
    }

    #[test]
    fn a_user_who_never_trained_is_invited_to_log_a_first_workout() {
        let rendered = rendered(None);
        let (email, sms, push) = (rendered.email.unwrap(), rendered.sms.unwrap(), rendered.push.unwrap());
        for text in [&email.subject, &email.text, &sms, &push.title] {
            assert!(!text.contains("since your last"), "{text}");
        }
        assert!(sms.contains("first one"), "{sms}");
        assert!(email.text.contains("first workout"), "{}", email.text);
    }

    #[test]
    fn the_sms_is_one_short_message_without_a_link_or_a_stop_line() {
        for last in [Some("2026-11-17"), Some("2026-11-21"), None] {
            let sms = rendered(last).sms.unwrap();
            assert!(sms.chars().count() < 160, "{} chars: {sms}", sms.chars().count());
            assert!(!sms.contains("http") && !sms.contains("STOP"), "{sms}");
            assert!(!sms.contains("Ana"), "the SMS stays short: no name: {sms}");
        }
        assert!(rendered(Some("2026-11-21")).sms.unwrap().starts_with("It's been 1 day since"));
    }

    #[test]
    fn the_name_is_escaped_in_html() {
        let email = rendered(None).email.unwrap();
        assert!(email.html.contains("Ana &#60;admin&#62;") && !email.html.contains("<admin>"), "{}", email.html);
        assert!(email.text.contains("Hi Ana <admin>,"), "{}", email.text);
    }
}
