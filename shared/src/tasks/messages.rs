//! The work side every task that messages people shares: each rendered message goes by the channel its
//! user's choices and reachability pick (`channels::route`), waits out the user's night if it is a push or an
//! SMS (`channels::quiet_until`), and is delivered at most once by its delivery key.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;

use crate::{
    channels::{quiet_until, route, Channels, Rendered, Route},
    deliveries::Deliveries,
    ports::{Channel, Contact, DeliveryKey, Kind},
    render::Footer,
    runtime::WorkReport,
    tasks::local_time::Chunk,
    unsubscribe::Signer,
    Error, Result,
};

/// Who emails come from and the links every email's footer carries.
#[derive(Debug, Clone)]
pub struct Letterhead {
    /// The sender of every email (verified in SES).
    pub from: String,
    /// Signs each user's one-click unsubscribe link; without it (a laptop with no key) emails have none.
    pub signer: Option<Signer>,
    /// The app's preferences page.
    pub preferences: Option<String>,
}

impl Letterhead {
    /// The footer of an email of `kind` to `user_id`, with their own unsubscribe link unless the kind is
    /// transactional.
    pub fn footer(&self, user_id: i64, kind: Kind, now: DateTime<Utc>) -> Footer {
        Footer {
            kind,
            unsubscribe: match self.signer.as_ref() {
                Some(signer) if !kind.is_transactional() => Some(signer.link(user_id, kind, now)),
                _ => None,
            },
            preferences: self.preferences.clone(),
        }
    }
}

/// The contacts of a chunk's users, by id, and the (user, period) pairs of those that still exist; the others
/// are counted in `report` as deleted.
pub async fn reachable(
    channels: &Channels,
    chunk: &Chunk,
    report: &mut WorkReport,
) -> Result<(HashMap<i64, Contact>, Vec<(i64, NaiveDate)>)> {
    let ids: Vec<i64> = chunk.users.iter().map(|u| u.id).collect();
    let contacts: HashMap<i64, Contact> =
        channels.contacts.contacts(&ids).await?.into_iter().map(|c| (c.user_id, c)).collect();
    let due: Vec<(i64, NaiveDate)> =
        chunk.users.iter().filter(|due| contacts.contains_key(&due.id)).map(|due| (due.id, due.day)).collect();
    report.skip("user deleted", (chunk.users.len() - due.len()) as u64);
    Ok((contacts, due))
}

/// One message to one user, rendered in every form the task offers.
pub struct Message {
    pub user_id: i64,
    pub key: DeliveryKey,
    pub rendered: Rendered,
}

/// The channels a rendering offers: those it has a form for.
fn offered(rendered: &Rendered) -> Vec<Channel> {
    let forms = [
        (Channel::Push, rendered.push.is_some()),
        (Channel::Sms, rendered.sms.is_some()),
        (Channel::Email, rendered.email.is_some()),
    ];
    forms.into_iter().filter(|(_, has)| *has).map(|(channel, _)| channel).collect()
}

/// Sends `messages` of `kind` to the users in `contacts` as of `now`, each by the one channel its user's choices
/// and reachability pick, adding what happened to `report`: a user with no contact (deleted) or no allowed
/// channel is a skip with its reason; a push or SMS in the user's night is held until their 08:00 (the message
/// comes back then); the rest are delivered once each.
pub async fn send(
    channels: &Channels,
    kind: Kind,
    contacts: &HashMap<i64, Contact>,
    messages: Vec<Message>,
    now: DateTime<Utc>,
    deliveries: &Deliveries<'_>,
    report: &mut WorkReport,
) -> Result<()> {
    let routed = messages.into_iter().map(|Message { user_id, key, rendered }| {
        let route = contacts.get(&user_id).map(|contact| route(contact, kind, &offered(&rendered)));
        (user_id, key, route, rendered)
    });
    deliver(channels, contacts, routed.collect(), now, deliveries, report).await
}

/// Sends each of `messages` on every channel it has a form for that its user allows for `kind` and can be
/// reached on (an order's confirmation by email and by SMS), each channel its own delivery: the message's key
/// with `/<channel>` after its period. Skips, quiet nights and delivery as `send`.
pub async fn send_each(
    channels: &Channels,
    kind: Kind,
    contacts: &HashMap<i64, Contact>,
    messages: Vec<Message>,
    now: DateTime<Utc>,
    deliveries: &Deliveries<'_>,
    report: &mut WorkReport,
) -> Result<()> {
    let mut routed = vec![];
    for Message { user_id, key, rendered } in messages {
        for channel in offered(&rendered) {
            let key =
                DeliveryKey { subject: key.subject.clone(), period: format!("{}/{}", key.period, channel.as_str()) };
            let route = contacts.get(&user_id).map(|contact| route(contact, kind, &[channel]));
            routed.push((user_id, key, route, rendered.clone()));
        }
    }
    deliver(channels, contacts, routed, now, deliveries, report).await
}

/// Delivers routed messages (the route None for a user deleted) once each by key, after the skips and holds.
async fn deliver(
    channels: &Channels,
    contacts: &HashMap<i64, Contact>,
    routed: Vec<(i64, DeliveryKey, Option<Route>, Rendered)>,
    now: DateTime<Utc>,
    deliveries: &Deliveries<'_>,
    report: &mut WorkReport,
) -> Result<()> {
    let mut items = Vec::with_capacity(routed.len());
    for (user_id, key, route, rendered) in routed {
        let (Some(contact), Some(route)) = (contacts.get(&user_id), route) else {
            report.skip("user deleted", 1);
            continue;
        };
        match &route {
            Route::None(reason) => {
                report.skip(reason, 1);
                continue;
            }
            Route::Send { channel: Channel::Push | Channel::Sms, .. } => match contact.time_zone.parse::<Tz>() {
                Ok(zone) => {
                    if let Some(until) = quiet_until(zone, now) {
                        report.hold(until);
                        continue;
                    }
                }
                Err(_) => {
                    report.skip("unknown time zone: no push or SMS without knowing the user's night", 1);
                    continue;
                }
            },
            Route::Send { channel: Channel::Email, .. } => {}
        }
        items.push((key, (route, contact, rendered)));
    }
    let tally = deliveries
        .deliver(items, |(route, contact, rendered)| async move {
            match channels.send(&route, contact, &rendered).await? {
                Some(_) => Ok(()),
                None => Err(Error::permanent("every device is gone and no other channel is allowed")),
            }
        })
        .await?;
    report.add(tally);
    Ok(())
}
