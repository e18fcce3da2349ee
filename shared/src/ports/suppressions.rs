//! The mail suppression list: addresses SES reported as bouncing for good or whose owner complained. No task
//! mails them again: the contacts adapters read the list beside each contact (`Contact::email_suppressed`),
//! and `channels::route` never routes a message to a suppressed address.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Result;

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SuppressionReason {
    /// A permanent bounce: the mailbox does not exist or refuses our mail for good.
    Bounce,
    /// The recipient marked our email as spam.
    Complaint,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bounce => "bounce",
            Self::Complaint => "complaint",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Bounce, Self::Complaint].into_iter().find(|r| r.as_str() == text)
    }
}

/// One feedback of SES's on one address: what `Suppressions::suppress` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// Normalised (`normalise`).
    pub address: String,
    pub reason: SuppressionReason,
    /// SES's `feedbackId`: the same for every delivery of one notification, so a redelivery is recognised.
    pub feedback_id: String,
    /// The bounce's `bounceSubType` (General, NoEmail, Suppressed…) or the complaint's feedback type (abuse…).
    pub subtype: Option<String>,
    /// When SES received the feedback.
    pub at: DateTime<Utc>,
}

/// A row of the suppression list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuppressedAddress {
    pub address: String,
    /// Of the latest feedback.
    pub reason: SuppressionReason,
    pub feedback_id: String,
    pub subtype: Option<String>,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// How many distinct feedbacks (by feedback id) named the address.
    pub count: i64,
}

/// The one form an address is kept and compared in: trimmed, the bare address of a `Name <address>` form,
/// ASCII lower-case (as SQLite's `lower()`, which the contacts adapters compare users' addresses with).
pub fn normalise(address: &str) -> String {
    let address = address.trim();
    let bare = match (address.rfind('<'), address.rfind('>')) {
        (Some(open), Some(close)) if open < close => &address[open + 1..close],
        _ => address,
    };
    bare.trim().to_ascii_lowercase()
}

#[async_trait]
pub trait Suppressions: Send + Sync {
    /// Records each feedback in one transaction: a new address is inserted; a known one takes the feedback's
    /// reason, id and subtype, widens its first and last time, and counts one more, unless it is the feedback
    /// already recorded (same feedback id: SNS delivered it again), which changes nothing.
    async fn suppress(&self, feedback: &[Suppression]) -> Result<()>;
    /// Every suppressed address, in address order.
    async fn suppressions(&self) -> Result<Vec<SuppressedAddress>>;
    /// Lifts the suppression of the address (normalised here); whether it was suppressed.
    async fn lift(&self, address: &str) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_compared_bare_trimmed_and_lower_case() {
        assert_eq!(normalise(" Jane@Example.COM "), "jane@example.com");
        assert_eq!(normalise("\"Jane Doe\" <Jane@Example.com>"), "jane@example.com");
        assert_eq!(normalise("jane@example.com"), "jane@example.com");
        assert_eq!(SuppressionReason::parse("complaint"), Some(SuppressionReason::Complaint));
        assert_eq!(SuppressionReason::parse("Bounce"), None);
    }
}
