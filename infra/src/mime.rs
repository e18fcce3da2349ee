//! An email as the MIME bytes both mailers ship: SES sends them as they are, the outbox files them as `.eml`.

use lettre::message::{
    header::{Header, HeaderName, HeaderValue},
    Mailbox, Message, MultiPart,
};
use shared::ports::Email;

use crate::Error;

/// `multipart/alternative` with the text part first and the HTML part last (mail clients show the last part
/// they understand), both UTF-8; non-ASCII headers are encoded by lettre.
pub fn render(email: &Email) -> Result<Vec<u8>, Error> {
    let from: Mailbox =
        email.from.parse().map_err(|e| Error::Email(format!("invalid sender address {:?}: {e}", email.from)))?;
    // The recipient's address is personal data: errors go to logs and job_runs, so it is not repeated there.
    let to: Mailbox = email.to.parse().map_err(|e| Error::Email(format!("invalid recipient address: {e}")))?;
    // Our own id under the sender's domain, so a filed message reads like a sent one (SES sets its own).
    let id = format!("<{}@{}>", uuid::Uuid::new_v4().simple(), from.email.domain());
    let mut builder = Message::builder().from(from).to(to).subject(email.subject.as_str()).message_id(Some(id));
    if let Some(url) = &email.unsubscribe {
        // RFC 8058: mail clients show an unsubscribe button that POSTs `List-Unsubscribe=One-Click` to the URL.
        builder = builder.header(ListUnsubscribe(format!("<{url}>"))).header(ListUnsubscribePost);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))
        .map_err(|e| Error::Email(format!("cannot build the message: {e}")))?;
    Ok(message.formatted())
}

/// `List-Unsubscribe: <url>` (RFC 2369).
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): the link unsubscribes in one POST.
#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email {
            from: "Fitness <news@example.com>".into(),
            to: "ana@example.com".into(),
            subject: "Your day".into(),
            text: "3 workouts".into(),
            html: "<p>3 workouts</p>".into(),
            unsubscribe: None,
        }
    }

    #[test]
    fn renders_text_then_html_as_alternatives() {
        let raw = String::from_utf8(render(&email()).unwrap()).unwrap();
        assert!(raw.contains("Subject: Your day\r\n"), "{raw}");
        assert!(raw.contains("Content-Type: multipart/alternative;"), "{raw}");
        let text = raw.find("Content-Type: text/plain; charset=utf-8").expect("a text part");
        let html = raw.find("Content-Type: text/html; charset=utf-8").expect("an HTML part");
        assert!(text < html);
        assert!(raw.contains("<p>3 workouts</p>"));
        assert!(raw.contains("@example.com>\r\n"), "a Message-ID under the sender's domain: {raw}");
        assert!(!raw.contains("List-Unsubscribe"), "no link, no header: {raw}");
    }

    #[test]
    fn an_unsubscribe_link_is_a_one_click_header() {
        let url = "https://u.example/?token=abc.def";
        let raw = String::from_utf8(render(&Email { unsubscribe: Some(url.into()), ..email() }).unwrap()).unwrap();
        assert!(raw.contains("\r\nList-Unsubscribe: <https://u.example/?token=abc.def>\r\n"), "{raw}");
        assert!(raw.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"), "{raw}");
    }

    #[test]
    fn an_invalid_address_is_a_permanent_error_that_keeps_the_recipient_out_of_logs() {
        let e = render(&Email { to: "not an address".into(), ..email() }).unwrap_err();
        assert!(matches!(&e, Error::Email(m) if m.contains("recipient") && !m.contains("not an address")), "{e}");
        assert!(!shared::Error::from(e).is_retryable());
        let e = render(&Email { from: "nobody".into(), ..email() }).unwrap_err();
        assert!(e.to_string().contains("invalid sender address \"nobody\""), "{e}");
    }
}
