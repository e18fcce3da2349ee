//! Personal data out of error texts: what a provider says back may name an address, a phone number or a
//! device's push endpoint, and error texts reach logs, `deliveries.last_error`, `job_runs.errors` and the
//! dead-letter queue.

/// The text with anything shaped like an email address replaced by `<address>` and anything shaped like an
/// international phone number (a `+` and 7 to 15 digits, spaces, dashes or parentheses between them) by
/// `<phone>`. It errs towards replacing: a false positive costs a less helpful log line, a miss leaks a person.
/// A display name before an address (`Ana Díaz <ana@example.com>`) is not recognised and stays. An SNS
/// platform endpoint's ARN (`arn:aws:sns:…:endpoint/…`), which names one person's device, becomes `<endpoint>`.
pub fn personal_data(text: &str) -> String {
    phones(&addresses(&endpoints(text)))
}

/// Endpoint ARNs first: their ids could otherwise pass for something else.
fn endpoints(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("arn:") {
        let len =
            rest[start..].find(|c: char| c.is_whitespace() || ",;<>()[]\"'".contains(c)).unwrap_or(rest.len() - start);
        let arn = rest[start..start + len].trim_end_matches('.');
        out.push_str(&rest[..start]);
        if arn.split(':').nth(5).is_some_and(|resource| resource.starts_with("endpoint/")) {
            out.push_str("<endpoint>");
        } else {
            out.push_str(arn);
        }
        rest = &rest[start + arn.len()..];
    }
    out.push_str(rest);
    out
}

/// Characters of an address's local part, unquoted (RFC 5322's atext and dots), or of a non-ASCII one (bytes
/// of multi-byte UTF-8 characters are all ≥ 0x80, so a scan that stops only at ASCII stays on char boundaries).
fn in_local_part(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b) || b >= 0x80
}

fn in_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b >= 0x80
}

fn addresses(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // text[..copied] is already in `out`, as it was or replaced.
    let mut copied = 0;
    for at in positions(bytes, b'@') {
        if at < copied {
            continue;
        }
        // The local part: back over its characters, or to the opening quote of a quoted one (`"a b"@x`).
        let mut start = at;
        if at > 0 && bytes[at - 1] == b'"' {
            if let Some(open) = bytes[copied..at - 1].iter().rposition(|b| *b == b'"') {
                start = copied + open;
            }
        } else {
            while start > copied && in_local_part(bytes[start - 1]) {
                start -= 1;
            }
        }
        let mut end = at + 1;
        while end < bytes.len() && in_domain(bytes[end]) {
            end += 1;
        }
        // A sentence's full stop or a dash after the address is not part of it.
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if start == at || end == at + 1 {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str("<address>");
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

fn phones(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for plus in positions(bytes, b'+') {
        if plus < copied {
            continue;
        }
        let (mut end, mut digits, mut last_digit_end) = (plus + 1, 0, plus + 1);
        while end < bytes.len() && (bytes[end].is_ascii_digit() || b" -()".contains(&bytes[end])) {
            if bytes[end].is_ascii_digit() {
                digits += 1;
                last_digit_end = end + 1;
            }
            end += 1;
        }
        // A number must start right after the `+` (or after an opening parenthesis), and what follows its
        // last digit (a space, a closing parenthesis of the sentence) is not part of it.
        let starts_well = bytes.get(plus + 1).is_some_and(|b| b.is_ascii_digit() || *b == b'(');
        if !starts_well || !(7..=15).contains(&digits) {
            continue;
        }
        // Digits glued to letters (`+1234567abc`) are an identifier, not a phone number.
        if bytes.get(last_digit_end).is_some_and(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        out.push_str(&text[copied..plus]);
        out.push_str("<phone>");
        copied = last_digit_end;
    }
    out.push_str(&text[copied..]);
    out
}

fn positions(bytes: &[u8], needle: u8) -> impl Iterator<Item = usize> + '_ {
    bytes.iter().enumerate().filter(move |(_, b)| **b == needle).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::personal_data;

    #[test]
    fn addresses_are_replaced_and_the_rest_of_the_text_stays() {
        assert_eq!(
            personal_data(
                "Email address is not verified. The following identities failed the check in region US-EAST-1: \
                 coach@example.com, Ana <ana.diaz+news@mail.example.co.uk>."
            ),
            "Email address is not verified. The following identities failed the check in region US-EAST-1: \
             <address>, Ana <<address>>."
        );
        assert_eq!(personal_data("from zoë@例え.jp;to \"ana díaz\"@example.com"), "from <address>;to <address>");
        assert_eq!(
            personal_data("Did not have authority to send from email a@b"),
            "Did not have authority to send from email <address>"
        );
    }

    #[test]
    fn phone_numbers_are_replaced() {
        assert_eq!(personal_data("SMS to +4915112345678 failed"), "SMS to <phone> failed");
        assert_eq!(personal_data("to +1 (555) 010-9999."), "to <phone>.");
        assert_eq!(personal_data("(+44 20 7946 0958)"), "(<phone>)");
        assert_eq!(personal_data("+15551234567@example.com"), "<address>", "an address first, whatever it holds");
    }

    #[test]
    fn push_endpoints_are_replaced() {
        assert_eq!(
            personal_data(
                "Invalid parameter: TargetArn Reason: arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/fitness/\
                 7c1e7d2a-0b8e. Endpoint (arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1) gone"
            ),
            "Invalid parameter: TargetArn Reason: <endpoint>. Endpoint (<endpoint>) gone"
        );
    }

    #[test]
    fn what_is_not_shaped_like_either_stays() {
        for text in [
            "Throttling: Maximum sending rate exceeded.",
            "entry 3 AWS.SimpleQueueService.BatchEntryIdsNotDistinct: ids 1+2",
            "retry after +30 s",
            "version +1234567890123456",
            "token +1234567abc",
            "an @ on its own, a trailing one@ and @leading",
            "arn:aws:ses:us-east-1:123456789012:identity/example.com",
            "topic arn:aws:sns:us-east-1:123456789012:reminders.",
            "arn: none",
        ] {
            assert_eq!(personal_data(text), text);
        }
    }
}
