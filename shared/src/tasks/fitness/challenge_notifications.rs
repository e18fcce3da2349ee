//! challenge-notifications: at 09:00 in each participant's own zone, the day before a challenge they joined
//! starts and the day before it ends, a notice by push, SMS or email as they chose. Planned by zone over the
//! participants due (`tasks::local_time` with the `Participants` audience); delivery key: (user, challenge and
//! edge), so a challenge whose dates move after its notices went out is not announced twice.

use askama::Template;
use async_trait::async_trait;
use chrono::{Duration, NaiveDate, NaiveTime};
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use crate::{
    channels::{Channels, PushText, Rendered},
    deliveries::Deliveries,
    ports::{ActivityStore, ChallengeEdge, ChallengeNotice, ChallengeNotices, Contact, DeliveryKey, Kind},
    render::{self, form, Footer},
    runtime::{CatchUp, Fanout, Overlap, Task, WorkReport},
    tasks::{
        local_time::{subject, Audience, Cadence, Chunk, LocalTime},
        messages::{self, Letterhead, Message},
    },
    time::Slot,
    Result,
};

pub const NAME: &str = "challenge-notifications";

/// The local time each participant is told at.
pub fn send_at() -> NaiveTime {
    NaiveTime::from_hms_opt(9, 0, 0).expect("09:00 is a time")
}

/// Longest title an SMS quotes whole: the rest of the text fits in one 160-character message beside it.
const SMS_TITLE: usize = 80;

pub struct ChallengeNotifications {
    pub store: Arc<dyn ActivityStore>,
    pub challenges: Arc<dyn ChallengeNotices>,
    pub channels: Channels,
    pub letterhead: Letterhead,
    /// Users per queued message.
    pub chunk_size: u32,
}

/// The users of the zones who joined a challenge starting or ending on the period (tomorrow there): a day with
/// no challenge's edge plans nobody.
pub struct Participants<'a>(pub &'a dyn ChallengeNotices);

#[async_trait]
impl Audience for Participants<'_> {
    async fn page(&self, zones: &[String], period: NaiveDate, after: i64, limit: u32) -> Result<Vec<i64>> {
        self.0.participants_due(zones, period, after, limit).await
    }
}

#[async_trait]
impl Task for ChallengeNotifications {
    fn name(&self) -> &'static str {
        NAME
    }

    fn granularity(&self) -> Duration {
        Duration::hours(1)
    }

    /// Each hourly slot has its own participants (those whose 09:00 it reached), and a notice planned late the
    /// same day still comes the day before the edge it announces.
    fn catch_up(&self) -> CatchUp {
        CatchUp::All
    }

    fn overlap(&self) -> Overlap {
        Overlap::Wait(std::time::Duration::from_secs(20))
    }

    fn local_time(&self) -> Option<(NaiveTime, Cadence)> {
        Some((send_at(), Cadence::DayAfter))
    }

    async fn plan(&self, slot: Slot, fanout: &mut Fanout<'_>) -> Result<()> {
        let local = LocalTime {
            task: NAME,
            at: send_at(),
            cadence: Cadence::DayAfter,
            users: self.store.as_ref(),
            // A notice a zone move skipped would come on the day it announces as "tomorrow": better none.
            moves: None,
            chunk_size: self.chunk_size,
        };
        local.plan(slot, self.granularity(), &Participants(self.challenges.as_ref()), fanout).await
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
        // Each backwards challenge is an error of the message once, however many of its participants it has.
        let mut backwards = BTreeSet::new();
        for (tomorrow, users) in by_day {
            for notice in self.challenges.notices(&users, tomorrow).await? {
                if notice.ends_on < notice.starts_on {
                    let reason = format!("challenge {} ends before it starts", notice.challenge_id);
                    report.skip(&reason, 1);
                    if backwards.insert(notice.challenge_id) {
                        report.errors.push(reason);
                    }
                    continue;
                }
                let footer = self.letterhead.footer(notice.user_id, Kind::Challenges, now);
                messages.push(Message {
                    user_id: notice.user_id,
                    key: key(&notice),
                    rendered: render(&self.letterhead.from, &contacts[&notice.user_id], &notice, &footer)?,
                });
            }
        }
        messages::send(&self.channels, Kind::Challenges, &contacts, messages, now, deliveries, &mut report).await?;
        Ok(report)
    }
}

/// One notice per user, challenge and edge, whatever dates the challenge has when it is sent.
fn key(notice: &ChallengeNotice) -> DeliveryKey {
    let edge = match notice.edge {
        ChallengeEdge::Starts => "starts",
        ChallengeEdge::Ends => "ends",
    };
    DeliveryKey { subject: subject(notice.user_id), period: format!("challenge:{}:{edge}", notice.challenge_id) }
}

/// What a notice says, in each of its forms.
#[derive(Template)]
#[template(path = "fitness/challenge_notice.html")]
struct Notice<'a> {
    name: &'a str,
    /// "'Step it up' starts tomorrow"
    headline: String,
    /// The title as an SMS quotes it: cut if long.
    short_title: String,
    starts: bool,
    /// "Monday 23 November"
    starts_on: String,
    ends_on: String,
    footer: &'a Footer,
}

form!(Text, "fitness/challenge_notice.txt", Notice);
form!(Sms, "fitness/challenge_notice.sms.txt", Notice);
form!(PushBody, "fitness/challenge_notice.push.txt", Notice);

/// The notice to `to` about one edge of a challenge, as a push, an SMS and an email.
pub fn render(from: &str, to: &Contact, notice: &ChallengeNotice, footer: &Footer) -> Result<Rendered> {
    let starts = notice.edge == ChallengeEdge::Starts;
    let verb = if starts { "starts" } else { "ends" };
    let short_title = match notice.title.char_indices().nth(SMS_TITLE) {
        Some((cut, _)) => format!("{}...", notice.title[..cut].trim_end()),
        None => notice.title.clone(),
    };
    let context = Notice {
        name: &to.name,
        headline: format!("'{}' {verb} tomorrow", notice.title),
        short_title,
        starts,
        starts_on: notice.starts_on.format("%A %-d %B").to_string(),
        ends_on: notice.ends_on.format("%A %-d %B").to_string(),
        footer,
    };
    let email = render::email(from, &to.email, context.headline.clone(), &context, &Text(&context), footer)?;
    Ok(Rendered {
        email: Some(email),
        sms: Some(render::text(&Sms(&context), "the challenge notice's SMS")?),
        push: Some(PushText {
            title: context.headline.clone(),
            body: render::text(&PushBody(&context), "the challenge notice's push")?,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> Contact {
        Contact {
            user_id: 7,
            name: "Ana".into(),
            email: "ana@example.com".into(),
            phone: Some("+447700900123".into()),
            time_zone: "Europe/London".into(),
            email_opt_in: true,
            email_suppressed: false,
            devices: vec![],
            choices: vec![],
        }
    }

    fn notice(title: &str, edge: ChallengeEdge) -> ChallengeNotice {
        ChallengeNotice {
            user_id: 7,
            challenge_id: 12,
            title: title.into(),
            starts_on: "2026-11-23".parse().unwrap(),
            ends_on: "2026-11-29".parse().unwrap(),
            edge,
        }
    }

    fn rendered(title: &str, edge: ChallengeEdge) -> Rendered {
        let footer = Footer { kind: Kind::Challenges, unsubscribe: None, preferences: None };
        render("coach@example.com", &contact(), &notice(title, edge), &footer).unwrap()
    }

    #[test]
    fn the_start_and_the_end_are_announced_in_every_form() {
        let start = rendered("Step it up", ChallengeEdge::Starts);
        let (email, sms, push) = (start.email.unwrap(), start.sms.unwrap(), start.push.unwrap());
        assert_eq!(email.subject, "'Step it up' starts tomorrow");
        assert_eq!(push.title, "'Step it up' starts tomorrow");
        assert!(sms.starts_with("'Step it up' starts tomorrow"), "{sms}");
        assert!(email.text.contains("Monday 23 November") && email.text.contains("Sunday 29 November"));
        assert!(email.html.contains("You get this because you turned on challenges emails"), "{}", email.html);

        let end = rendered("Step it up", ChallengeEdge::Ends);
        let (email, sms, push) = (end.email.unwrap(), end.sms.unwrap(), end.push.unwrap());
        assert_eq!(email.subject, "'Step it up' ends tomorrow");
        for text in [&sms, &push.body, &email.text] {
            assert!(text.contains("last day to climb the board"), "{text}");
        }
    }

    #[test]
    fn the_sms_stays_one_message_whatever_the_title() {
        let long = "A very long challenge title that goes on and on about steps, stairs and squats for weeks";
        for title in ["Step it up", long] {
            for edge in [ChallengeEdge::Starts, ChallengeEdge::Ends] {
                let sms = rendered(title, edge).sms.unwrap();
                assert!(sms.chars().count() < 160, "{} chars: {sms}", sms.chars().count());
                assert!(!sms.contains("http") && !sms.contains("STOP"), "{sms}");
            }
        }
        assert!(rendered(long, ChallengeEdge::Starts).sms.unwrap().contains("...' starts tomorrow"), "cut");
        assert!(rendered(long, ChallengeEdge::Starts).email.unwrap().subject.contains("for weeks"), "email whole");
    }

    #[test]
    fn the_key_names_the_challenge_and_the_edge_not_its_dates() {
        let mut moved = notice("Step it up", ChallengeEdge::Starts);
        let before = key(&moved);
        moved.starts_on = "2026-11-30".parse().unwrap();
        assert_eq!(key(&moved), before);
        assert_eq!(before, DeliveryKey { subject: "user:7".into(), period: "challenge:12:starts".into() });
        assert_eq!(key(&notice("Step it up", ChallengeEdge::Ends)).period, "challenge:12:ends");
    }
}
