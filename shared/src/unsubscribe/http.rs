//! The unsubscribe page behind the link in every email: a GET shows a confirmation with a form, since mail
//! scanners follow links and must not unsubscribe anyone; a POST (the form, or a mail client's RFC 8058
//! one-click `List-Unsubscribe=One-Click`) checks the token and unsubscribes, once.

use askama::Template;
use aws_lambda_events::{
    http::{header::CONTENT_TYPE, HeaderValue},
    lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};

use super::{verify, TokenError};
use crate::ports::{Unsubscribed, Unsubscribes};

/// An answer: its status and its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub html: String,
}

#[derive(Template)]
#[template(path = "unsubscribe/page.html")]
struct Page<'a> {
    title: &'a str,
    message: &'a str,
    /// The token a confirmation page's form posts back.
    confirm: Option<&'a str>,
}

fn page(status: u16, title: &str, message: &str, confirm: Option<&str>) -> Response {
    let html = Page { title, message, confirm }.render().expect("the page has no fallible filter");
    Response { status, html }
}

/// A form or query field's value. Tokens are URL safe as they are, so values are taken without decoding: an
/// encoded token reads as malformed.
fn field<'a>(form: &'a str, name: &str) -> Option<&'a str> {
    form.split('&').find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
}

/// The answer to `method` with that query string and body at `now`. Nothing changes but on a POST with a
/// valid, unused token.
pub async fn respond(
    store: &dyn Unsubscribes,
    key: &[u8],
    method: &str,
    query: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Response {
    let post = match method {
        "GET" => false,
        "POST" => true,
        _ => return page(405, "Not allowed", "Open the unsubscribe link from your email.", None),
    };
    let token = field(query, "token").or_else(|| field(body, "token")).unwrap_or_default();
    let claims = match verify(key, token, now) {
        Ok(claims) => claims,
        Err(e) => {
            let status = match e {
                TokenError::Malformed => 400,
                TokenError::BadSignature => 403,
                TokenError::Expired => 410,
            };
            return page(status, "This link does not work", &e.to_string(), None);
        }
    };
    let kind = claims.kind.as_str();
    if !post {
        let question = format!("You will get no more {kind} emails. You can turn them on again in the app.");
        return page(200, &format!("Unsubscribe from {kind} emails?"), &question, Some(token));
    }
    match store.unsubscribe(&claims.nonce, claims.user_id, claims.kind, now).await {
        Ok(Unsubscribed::Done) => page(
            200,
            "You are unsubscribed",
            &format!("You will get no more {kind} emails. You can turn them on again in the app."),
            None,
        ),
        Ok(Unsubscribed::AlreadyUsed) => {
            page(409, "Already done", "This link was used already: it works once. Nothing changed.", None)
        }
        Ok(Unsubscribed::NoSuchUser) => page(404, "No such account", "The account this link was for is gone.", None),
        Err(e) => {
            tracing::error!(error = %e, "recording an unsubscribe");
            page(503, "Please try again", "We could not save this just now. Nothing changed; try again soon.", None)
        }
    }
}

/// A Lambda function URL request answered by `respond`.
pub async fn handle(
    store: &dyn Unsubscribes,
    key: &[u8],
    request: LambdaFunctionUrlRequest,
    now: DateTime<Utc>,
) -> LambdaFunctionUrlResponse {
    let method = request.request_context.http.method.unwrap_or_default();
    let body = request.body.unwrap_or_default();
    // Function URLs hand over a body base64 encoded unless its content type is text.
    let body = match request.is_base64_encoded {
        true => STANDARD.decode(&body).ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default(),
        false => body,
    };
    let answer =
        respond(store, key, &method, request.raw_query_string.as_deref().unwrap_or_default(), &body, now).await;
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = answer.status.into();
    response.headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response.body = Some(answer.html);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ports::Kind, unsubscribe::sign, Result};
    use async_trait::async_trait;
    use std::sync::Mutex;

    const KEY: &[u8] = b"key";

    /// Records calls; answers `Done` once per nonce.
    #[derive(Default)]
    struct Calls(Mutex<Vec<(String, i64, Kind)>>);

    #[async_trait]
    impl Unsubscribes for Calls {
        async fn unsubscribe(&self, nonce: &str, user_id: i64, kind: Kind, _: DateTime<Utc>) -> Result<Unsubscribed> {
            let mut calls = self.0.lock().unwrap();
            let used = calls.iter().any(|(n, ..)| n == nonce);
            calls.push((nonce.to_owned(), user_id, kind));
            Ok(if used { Unsubscribed::AlreadyUsed } else { Unsubscribed::Done })
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-28T10:00:00Z".parse().unwrap()
    }

    #[tokio::test]
    async fn a_get_asks_and_changes_nothing() {
        let store = Calls::default();
        let token = sign(KEY, 3, Kind::Reminders, now() + chrono::Duration::days(1));
        let answer = respond(&store, KEY, "GET", &format!("token={token}"), "", now()).await;
        assert_eq!(answer.status, 200);
        assert!(answer.html.contains("Unsubscribe from reminders emails?"), "{}", answer.html);
        assert!(answer.html.contains(&format!("value=\"{token}\"")), "{}", answer.html);
        assert!(answer.html.contains("<form method=\"post\">"));
        assert!(store.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_one_click_post_unsubscribes_once() {
        let store = Calls::default();
        let token = sign(KEY, 3, Kind::Reminders, now() + chrono::Duration::days(1));
        let query = format!("token={token}");
        let first = respond(&store, KEY, "POST", &query, "List-Unsubscribe=One-Click", now()).await;
        assert_eq!(first.status, 200, "{}", first.html);
        let again = respond(&store, KEY, "POST", "", &format!("token={token}&List-Unsubscribe=One-Click"), now()).await;
        assert_eq!(again.status, 409, "{}", again.html);
        assert_eq!(store.0.lock().unwrap()[0].1, 3);
        assert_eq!(store.0.lock().unwrap()[0].2, Kind::Reminders);
    }

    #[tokio::test]
    async fn a_bad_token_is_refused_before_the_store_is_asked() {
        let store = Calls::default();
        let expired = sign(KEY, 3, Kind::Reports, now());
        let forged = sign(b"other", 3, Kind::Reports, now() + chrono::Duration::days(1));
        for (query, status) in
            [("", 400), ("token=<b>", 400), (&*format!("token={forged}"), 403), (&*format!("token={expired}"), 410)]
        {
            let answer = respond(&store, KEY, "POST", query, "", now()).await;
            assert_eq!(answer.status, status, "{query}: {}", answer.html);
            assert!(!answer.html.contains("<b>"), "escaped");
        }
        assert_eq!(respond(&store, KEY, "DELETE", "", "", now()).await.status, 405);
        assert!(store.0.lock().unwrap().is_empty());
    }
}
