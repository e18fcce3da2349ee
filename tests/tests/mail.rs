//! The mailers: SES on moto and the file outbox ship the same MIME, which a reader takes apart again into the
//! subject, the sender's name and the text and HTML parts, non-ASCII included.

use infra::{outbox::OutboxMailer, ses::SesMailer};
use integration_tests::moto::Moto;
use shared::ports::{Email, Mailer};

fn email() -> Email {
    Email {
        from: "Zoë from Fitness <coach@example.com>".into(),
        to: "Ana Díaz <ana@example.com>".into(),
        subject: "Dein Tag — 5 km ✓".into(),
        text: "Grüße, Ana!\n5 km gelaufen ✓".into(),
        html: "<p>Grüße, <b>Ana</b>!</p>".into(),
        unsubscribe: Some("https://unsubscribe.example/?token=abc.def".into()),
    }
}

// A small MIME reader: enough to show a mail client would find what was meant.

fn base64(encoded: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut bits, mut n, mut out) = (0u32, 0, vec![]);
    for c in encoded.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        bits = bits << 6 | ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

fn quoted_printable(encoded: &str) -> Vec<u8> {
    let mut out = vec![];
    let mut rest = encoded.replace("=\r\n", "").into_bytes().into_iter();
    while let Some(c) = rest.next() {
        if c == b'=' {
            let hex: String = [rest.next().unwrap(), rest.next().unwrap()].iter().map(|b| *b as char).collect();
            out.push(u8::from_str_radix(&hex, 16).expect("hex"));
        } else {
            out.push(c);
        }
    }
    out
}

/// A header's value, unfolded, with RFC 2047 encoded words (`=?utf-8?b?…?=`) decoded.
fn header(block: &str, name: &str) -> Option<String> {
    let unfolded = block.replace("\r\n ", " ");
    let value = unfolded.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")))?.to_owned();
    let words: Vec<String> = value
        .split(' ')
        .map(|word| match word.strip_prefix("=?utf-8?b?").and_then(|w| w.strip_suffix("?=")) {
            Some(encoded) => String::from_utf8(base64(encoded)).expect("UTF-8"),
            None => word.to_owned(),
        })
        .collect();
    Some(words.join(" "))
}

/// The parts of a multipart message: (content type, decoded body).
fn parts(raw: &str) -> Vec<(String, String)> {
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers and a body");
    let content_type = header(head, "Content-Type").expect("a Content-Type");
    assert!(content_type.starts_with("multipart/alternative;"), "{content_type}");
    let boundary = content_type.split("boundary=\"").nth(1).and_then(|b| b.split('"').next()).expect("a boundary");
    let end = format!("--{boundary}--");
    assert!(body.contains(&end), "the multipart is closed");
    body.split(&format!("--{boundary}"))
        .skip(1)
        .filter(|part| !part.starts_with("--"))
        .map(|part| {
            let (head, content) = part.trim_start_matches("\r\n").split_once("\r\n\r\n").expect("a part");
            let content = content.trim_end_matches("\r\n");
            let decoded = match header(head, "Content-Transfer-Encoding").as_deref() {
                Some("base64") => base64(content),
                Some("quoted-printable") => quoted_printable(content),
                _ => content.as_bytes().to_vec(),
            };
            (header(head, "Content-Type").expect("a part type"), String::from_utf8(decoded).expect("UTF-8"))
        })
        .collect()
}

/// What a reader of the message sees, checked against what was sent.
fn assert_reads_as(raw: &str, sent: &Email) {
    assert!(raw.is_ascii(), "every byte is encoded for transport");
    let head = raw.split_once("\r\n\r\n").unwrap().0;
    assert_eq!(header(head, "Subject").as_deref(), Some(sent.subject.as_str()));
    assert_eq!(header(head, "From").as_deref(), Some(sent.from.as_str()));
    assert_eq!(header(head, "To").as_deref(), Some(sent.to.as_str()));
    let unsubscribe = sent.unsubscribe.as_ref().map(|url| format!("<{url}>"));
    assert_eq!(header(head, "List-Unsubscribe"), unsubscribe);
    let one_click = sent.unsubscribe.as_ref().map(|_| "List-Unsubscribe=One-Click".to_owned());
    assert_eq!(header(head, "List-Unsubscribe-Post"), one_click);
    let parts = parts(raw);
    assert_eq!(
        parts,
        vec![
            ("text/plain; charset=utf-8".to_owned(), sent.text.replace('\n', "\r\n")),
            ("text/html; charset=utf-8".to_owned(), sent.html.clone()),
        ]
    );
}

#[test]
fn rendered_mime_round_trips_non_ascii_headers_and_bodies() {
    let sent = email();
    let raw = String::from_utf8(infra::mime::render(&sent).unwrap()).unwrap();
    assert_reads_as(&raw, &sent);
    let plain = Email { subject: "Plain ASCII".into(), from: "coach@example.com".into(), ..email() };
    let raw = String::from_utf8(infra::mime::render(&plain).unwrap()).unwrap();
    assert!(raw.contains("\r\nSubject: Plain ASCII\r\n"), "ASCII stays readable: {raw}");
    assert_reads_as(&raw, &plain);
}

#[tokio::test]
async fn ses_sends_the_raw_mime_with_both_parts() {
    let moto = Moto::start().await;
    let ses = moto.ses().await;
    ses.verify_email_identity().email_address("coach@example.com").send().await.unwrap();
    let id = SesMailer::new(ses).send(&email()).await.unwrap();
    assert!(!id.is_empty());
    let raw = moto.raw_emails().await;
    assert_eq!(raw.len(), 1);
    assert_reads_as(&raw[0], &email());
}

#[tokio::test]
async fn an_unverified_sender_is_the_senders_failure_and_its_text_names_no_address() {
    let moto = Moto::start().await;
    let e = SesMailer::new(moto.ses().await).send(&email()).await.unwrap_err();
    // No email can leave from that address: the runtime stops the invocation's sends and retries them later.
    assert!(matches!(&e, shared::Error::Sender(_)), "{e:?}");
    assert!(e.is_retryable(), "{e}");
    let text = e.to_string();
    assert!(text.starts_with("ses: MessageRejected: "), "{text}");
    assert!(text.contains("<address>") && !text.contains('@'), "{text}");
    assert!(moto.raw_emails().await.is_empty());
}

#[tokio::test]
async fn the_send_rate_is_the_accounts_quota() {
    let moto = Moto::start().await;
    // moto answers a fixed quota: 200 a day, one a second.
    assert_eq!(SesMailer::new(moto.ses().await).max_send_rate().await.unwrap(), 1.0);
}

#[tokio::test]
async fn the_send_rate_of_an_unreachable_ses_is_a_retryable_failure() {
    use aws_sdk_ses::config::{BehaviorVersion, Credentials, Region};
    // Nothing listens on port 1: the connection is refused.
    let config = aws_sdk_ses::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url("http://127.0.0.1:1")
        .build();
    let e = SesMailer::new(aws_sdk_ses::Client::from_conf(config)).max_send_rate().await.unwrap_err();
    assert!(matches!(&e, shared::Error::Retryable(_)), "{e:?}");
}

#[tokio::test]
async fn an_invalid_address_fails_before_ses_is_asked() {
    let moto = Moto::start().await;
    let e = SesMailer::new(moto.ses().await).send(&Email { to: "ana at example".into(), ..email() }).await.unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    // Errors reach logs and job_runs: they say which address was wrong, not what it was.
    assert!(e.to_string().contains("invalid recipient address") && !e.to_string().contains("ana at example"), "{e}");
}

#[tokio::test]
async fn the_outbox_files_a_readable_eml_per_email() {
    let dir = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()));
    let outbox = OutboxMailer::new(dir.join("nested")).unwrap();
    let first = outbox.send(&email()).await.unwrap();
    let second = outbox.send(&email()).await.unwrap();
    assert_ne!(first, second);
    assert!(first.ends_with(".eml") && first.contains("-ana@example.com-"), "{first}");
    let mut names: Vec<String> =
        std::fs::read_dir(dir.join("nested")).unwrap().map(|f| f.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let mut expected = vec![first.clone(), second];
    expected.sort();
    assert_eq!(names, expected, "no temporary file left behind");
    let raw = std::fs::read_to_string(dir.join("nested").join(&first)).unwrap();
    assert_reads_as(&raw, &email());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_configuration_set_goes_with_every_send() {
    // moto accepts ConfigurationSetName on SendRawEmail but neither checks nor keeps it: the send is shown to
    // work with the set created there, and the parameter is read off the wire by a stand-in for SES.
    let moto = Moto::start().await;
    let ses = moto.ses().await;
    ses.verify_email_identity().email_address("coach@example.com").send().await.unwrap();
    let set = aws_sdk_ses::types::ConfigurationSet::builder().name("jobs-feedback").build().unwrap();
    ses.create_configuration_set().configuration_set(set).send().await.unwrap();
    let mailer = SesMailer::new(ses).with_configuration_set(Some("jobs-feedback".into()));
    assert!(!mailer.send(&email()).await.unwrap().is_empty());
    assert_eq!(moto.raw_emails().await.len(), 1);

    let stand_in = integration_tests::http_stand_in::StandIn::start().await;
    let answer = "<SendRawEmailResponse xmlns=\"http://ses.amazonaws.com/doc/2010-12-01/\"><SendRawEmailResult>\
                  <MessageId>0100-stand-in</MessageId></SendRawEmailResult><ResponseMetadata><RequestId>r</RequestId>\
                  </ResponseMetadata></SendRawEmailResponse>";
    for _ in 0..2 {
        stand_in.reply(integration_tests::http_stand_in::Reply::new(200, answer).header("Content-Type", "text/xml"));
    }
    let config = aws_sdk_ses::config::Builder::from(&moto.sdk_config().await).endpoint_url(&stand_in.url).build();
    let client = aws_sdk_ses::Client::from_conf(config);
    let with = SesMailer::new(client.clone()).with_configuration_set(Some("jobs-feedback".into()));
    assert_eq!(with.send(&email()).await.unwrap(), "0100-stand-in");
    SesMailer::new(client).send(&email()).await.unwrap();
    let seen = stand_in.seen();
    assert!(seen[0].body.contains("Action=SendRawEmail"), "{}", seen[0].body);
    assert!(seen[0].body.contains("ConfigurationSetName=jobs-feedback"), "{}", seen[0].body);
    assert!(!seen[1].body.contains("ConfigurationSetName"), "none unless configured: {}", seen[1].body);
}
