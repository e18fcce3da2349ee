//! Messages to people beyond email: SMS and mobile push (SNS in AWS, JSON lines in the outbox locally), the
//! devices push goes to, and each user's choices of channel per kind of message.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// What a message is about: users choose channels per kind, and unsubscribe per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Daily summaries, weekly and monthly reports: email only.
    Reports,
    /// Nudges to train again.
    Reminders,
    /// Notices about the challenges a user joined.
    Challenges,
    /// The shop's notices about a customer's orders and subscriptions (confirmations, shipping, payments,
    /// renewals): transactional, so email always goes and carries no unsubscribe link; SMS goes to a customer's
    /// phone unless they turned it off.
    Orders,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Reports, Kind::Reminders, Kind::Challenges, Kind::Orders];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Reports => "reports",
            Kind::Reminders => "reminders",
            Kind::Challenges => "challenges",
            Kind::Orders => "orders",
        }
    }

    /// Messages a customer gets for what they bought, not by choice: no opt-in, no unsubscribe.
    pub fn is_transactional(self) -> bool {
        self == Kind::Orders
    }

    /// Why the user gets an email of this kind, for its footer.
    pub fn why(self) -> String {
        match self {
            Kind::Orders => "You get this because you have an order or a subscription with us.".to_owned(),
            other => format!("You get this because you turned on {} emails.", other.as_str()),
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Push,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Push];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// A device push can reach: its SNS platform endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub endpoint_arn: String,
    /// apns, fcm…
    pub platform: String,
}

/// A user as every message to them needs them: where they can be reached and what they allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub user_id: i64,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub time_zone: String,
    /// The app's account-wide email switch (`users.email_opt_in`).
    pub email_opt_in: bool,
    /// The address is on the mail suppression list (`ports::Suppressions`): SES said it bounces for good, or
    /// its owner complained. No email goes to it; the other channels still do.
    pub email_suppressed: bool,
    /// Enabled devices only.
    pub devices: Vec<Device>,
    /// The user's explicit choices; a (kind, channel) absent here takes its default (`crate::channels`).
    pub choices: Vec<Choice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub kind: Kind,
    pub channel: Channel,
    pub allowed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    /// E.164, e.g. +447700900123
    pub to: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub endpoint_arn: String,
    pub title: String,
    pub body: String,
}

/// How a push ended that did not fail as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// Accepted; the provider's message id.
    Sent(String),
    /// The endpoint is disabled or no longer exists (the app was uninstalled, the token expired): it must be
    /// disabled and never tried again. Not an error: the user's other devices, or email, still get the message.
    Gone(String),
}

/// SMS and push. Throttling is `Error::Retryable`, like email's.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one transactional SMS and returns the provider's message id.
    async fn sms(&self, sms: &Sms) -> Result<String>;
    async fn push(&self, push: &Push) -> Result<Pushed>;
}

/// Users' contact details, devices and channel choices.
#[async_trait]
pub trait Contacts: Send + Sync {
    /// The contacts of those of `user_ids` that exist, in no particular order.
    async fn contacts(&self, user_ids: &[i64]) -> Result<Vec<Contact>>;
    /// Marks the device disabled: no message goes to it again until the app registers it anew.
    async fn disable_device(&self, endpoint_arn: &str) -> Result<()>;
    /// Records a user's choice for one kind of message on one channel (the unsubscribe link, the app's settings).
    async fn choose(&self, user_id: i64, choice: Choice) -> Result<()>;
    /// Registers (or re-enables) a device, as the app does when a user signs in on a phone.
    async fn add_device(&self, user_id: i64, device: &Device) -> Result<()>;
}
