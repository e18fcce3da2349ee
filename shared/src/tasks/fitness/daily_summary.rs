//! daily-summary: at 06:00 in each user's own time zone, an email about their previous local day — workouts,
//! total time, calories, volume lifted, personal records, streak. Planned by zone (`tasks::local_time`);
//! delivery key: (user, local day).

use async_trait::async_trait;
use chrono::{Duration, NaiveTime};
use serde_json::Value;
use std::{collections::HashMap, sync::Arc};

use crate::{
    deliveries::Deliveries,
    ports::{ActivityStore, DayActivity, DeliveryKey, Email, Mailer, Progress, Recipient},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    tasks::local_time::{subject, Cadence, Chunk, EveryUser, LocalTime},
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
    pub progress: Arc<dyn Progress>,
    pub mailer: Arc<dyn Mailer>,
    /// The sender address (verified in SES).
    pub from: String,
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

    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        let local = LocalTime {
            task: NAME,
            at: send_at(),
            cadence: Cadence::DayBefore,
            users: self.store.as_ref(),
            progress: Some(self.progress.as_ref()),
            chunk_size: self.chunk_size,
        };
        local.plan(slot, self.granularity(), &EveryUser(self.store.as_ref()), fanout).await
    }

    async fn work(&self, _slot: Slot, payload: Value, deliveries: &Deliveries<'_>) -> Result<WorkReport> {
        let chunk = Chunk::parse(NAME, payload)?;
        let mut report = WorkReport::default();
        let ids: Vec<i64> = chunk.users.iter().map(|u| u.id).collect();
        let recipients: HashMap<i64, Recipient> =
            self.store.recipients(&ids).await?.into_iter().map(|r| (r.user_id, r)).collect();

        let mut wanted = Vec::with_capacity(chunk.users.len());
        for due in &chunk.users {
            match recipients.get(&due.id) {
                None => report.skip("user deleted", 1),
                Some(r) if !r.email_opt_in => report.skip("opted out of email", 1),
                Some(_) => wanted.push((due.id, due.day)),
            }
        }
        let activity = self.store.day_activity(&wanted).await?;
        report.skip("no activity", (wanted.len() - activity.len()) as u64);

        let emails = activity
            .iter()
            .map(|day| {
                let key = DeliveryKey { subject: subject(day.user_id), period: day.day.to_string() };
                (key, render(&self.from, &recipients[&day.user_id], day))
            })
            .collect();
        let mailer = &self.mailer;
        report.add(deliveries.deliver(emails, |email| async move { mailer.send(&email).await.map(drop) }).await?);
        Ok(report)
    }
}

/// The summary email, as text and as HTML.
pub fn render(from: &str, to: &Recipient, day: &DayActivity) -> Email {
    let minutes: i64 = day.workouts.iter().map(|w| w.duration_minutes).sum();
    let calories: i64 = day.workouts.iter().map(|w| w.calories).sum();
    let date = day.day.format("%A %-d %B").to_string();
    let workouts = match day.workouts.len() {
        1 => "1 workout".to_owned(),
        n => format!("{n} workouts"),
    };
    let subject = format!("Your {date}: {workouts}, {}", duration(minutes));
    let streak = match day.streak_days {
        1 => "1 day".to_owned(),
        n => format!("{n} days in a row"),
    };
    let volume = format!("{} kg", thousands(day.volume_kg.round() as i64));

    let mut text = format!("Hi {},\n\nHere is your {date}.\n\n", to.name);
    for w in &day.workouts {
        text += &format!("- {}: {}, {} kcal\n", w.name, duration(w.duration_minutes), w.calories);
    }
    text += &format!(
        "\nTotal time: {}\nCalories: {} kcal\nVolume lifted: {volume}\nStreak: {streak}\n",
        duration(minutes),
        thousands(calories)
    );
    if !day.records.is_empty() {
        text += "\nPersonal records:\n";
        for r in &day.records {
            text += &format!("- {}: {} kg × {}\n", r.exercise, trim_weight(r.weight_kg), r.reps);
        }
    }
    text += "\nKeep it up!\n";

    let mut html = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\"><p>Hi {},</p><p>Here is your {date}.</p><ul>",
        escape(&to.name)
    );
    for w in &day.workouts {
        html += &format!(
            "<li><strong>{}</strong>: {}, {} kcal</li>",
            escape(&w.name),
            duration(w.duration_minutes),
            w.calories
        );
    }
    html += &format!(
        "</ul><table><tr><td>Total time</td><td>{}</td></tr><tr><td>Calories</td><td>{} kcal</td></tr>\
         <tr><td>Volume lifted</td><td>{volume}</td></tr><tr><td>Streak</td><td>{streak}</td></tr></table>",
        duration(minutes),
        thousands(calories)
    );
    if !day.records.is_empty() {
        html += "<h3>Personal records</h3><ul>";
        for r in &day.records {
            html += &format!("<li>{}: {} kg &times; {}</li>", escape(&r.exercise), trim_weight(r.weight_kg), r.reps);
        }
        html += "</ul>";
    }
    html += "<p>Keep it up!</p></body></html>";

    Email { from: from.to_owned(), to: to.email.clone(), subject, text, html }
}

fn duration(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

fn thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

fn trim_weight(kg: f64) -> String {
    let s = format!("{kg:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{RecordLine, WorkoutLine};

    fn recipient() -> Recipient {
        Recipient {
            user_id: 7,
            name: "Ana <admin>".into(),
            email: "ana@example.com".into(),
            time_zone: "Asia/Kolkata".into(),
            email_opt_in: true,
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

    #[test]
    fn summary_says_what_was_done_in_both_parts() {
        let email = render("jobs@example.com", &recipient(), &day());
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
        let email = render("jobs@example.com", &recipient(), &day());
        assert!(email.html.contains("Ana &lt;admin&gt;"));
        assert!(email.html.contains("Push &amp; pull"));
        assert!(!email.html.contains("<admin>"));
    }

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(duration(45), "45 min");
        assert_eq!(duration(120), "2 h");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(trim_weight(100.0), "100");
    }
}
