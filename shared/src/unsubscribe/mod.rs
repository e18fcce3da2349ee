//! One-click unsubscribe links: a token signed with HMAC-SHA256 that names a user and a kind of message, and
//! expires. Its random nonce makes each link usable once (`ports::Unsubscribes` records the used ones).
//!
//! A token reads `<user>.<kind>.<expires, unix seconds>.<nonce>.<signature>`, the last two base64url without
//! padding: every character is safe in a URL as it is, and a person reading a log can tell what it is for.

pub mod http;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::ports::Kind;

/// How long a link works. A monthly report must still be unsubscribable weeks after it was sent, and people
/// dig old emails out: two months covers the longest gap between two messages of a kind, and more.
pub const LIFETIME: Duration = Duration::days(60);

/// Bytes of randomness in a nonce: enough that two links never share one.
const NONCE_BYTES: usize = 16;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub user_id: i64,
    pub kind: Kind,
    pub expires: DateTime<Utc>,
    /// base64url: what `ports::Unsubscribes` records once the token is used.
    pub nonce: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this unsubscribe link is incomplete or damaged: copy the whole link from the email")]
    Malformed,
    #[error("this unsubscribe link is not one we sent")]
    BadSignature,
    #[error(
        "this unsubscribe link has expired: use the link in a recent email, or change your preferences in the app"
    )]
    Expired,
}

fn mac(key: &[u8], signed: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(signed.as_bytes());
    mac
}

/// A token for `user`'s `kind` of messages, valid until `expires`, with a fresh nonce.
pub fn sign(key: &[u8], user_id: i64, kind: Kind, expires: DateTime<Utc>) -> String {
    let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; NONCE_BYTES]>());
    let signed = format!("{user_id}.{}.{}.{nonce}", kind.as_str(), expires.timestamp());
    let signature = URL_SAFE_NO_PAD.encode(mac(key, &signed).finalize().into_bytes());
    format!("{signed}.{signature}")
}

/// The token's claims if `key` signed it and it has not expired at `now`. The signature is compared in
/// constant time, and checked before the expiry, so a forged expiry reads as forged.
pub fn verify(key: &[u8], token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
    let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let parts: Vec<&str> = signed.split('.').collect();
    let [user_id, kind, expires, nonce] = parts[..] else { return Err(TokenError::Malformed) };
    let claims = Claims {
        user_id: user_id.parse().map_err(|_| TokenError::Malformed)?,
        kind: Kind::parse(kind).ok_or(TokenError::Malformed)?,
        expires: expires
            .parse()
            .ok()
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
            .ok_or(TokenError::Malformed)?,
        nonce: nonce.to_owned(),
    };
    let nonce = URL_SAFE_NO_PAD.decode(nonce).map_err(|_| TokenError::Malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Malformed)?;
    if nonce.len() != NONCE_BYTES {
        return Err(TokenError::Malformed);
    }
    mac(key, signed).verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;
    if now >= claims.expires {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Makes the unsubscribe links of the emails a task sends.
#[derive(Clone)]
pub struct Signer {
    pub key: Vec<u8>,
    /// The unsubscribe function's public URL: the token goes in its query string.
    pub base_url: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("key", &"***").field("base_url", &self.base_url).finish()
    }
}

impl Signer {
    /// The link that unsubscribes `user` from `kind` in one click, valid for `LIFETIME` from `now`.
    pub fn link(&self, user_id: i64, kind: Kind, now: DateTime<Utc>) -> String {
        let token = sign(&self.key, user_id, kind, now + LIFETIME);
        let separator = if self.base_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}token={token}", self.base_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a test key that is long enough!!";

    fn now() -> DateTime<Utc> {
        "2026-11-28T10:00:00Z".parse().unwrap()
    }

    fn token() -> String {
        sign(KEY, 42, Kind::Reports, now() + LIFETIME)
    }

    /// The token with its `index`th dot-separated part replaced.
    fn with_part(index: usize, value: &str) -> String {
        let mut parts: Vec<String> = token().split('.').map(str::to_owned).collect();
        parts[index] = value.to_owned();
        parts.join(".")
    }

    #[test]
    fn a_fresh_token_says_who_and_what() {
        let claims = verify(KEY, &token(), now()).unwrap();
        assert_eq!((claims.user_id, claims.kind, claims.expires), (42, Kind::Reports, now() + LIFETIME));
        assert_eq!(verify(KEY, &token(), now() + LIFETIME - Duration::seconds(1)).unwrap().user_id, 42);
    }

    #[test]
    fn each_token_has_its_own_nonce() {
        let (a, b) = (verify(KEY, &token(), now()).unwrap(), verify(KEY, &token(), now()).unwrap());
        assert_ne!(a.nonce, b.nonce);
    }

    #[test]
    fn a_damaged_token_is_malformed() {
        for bad in ["", "abc", "42.reports.1800000000.nonce", "x.reports.1.AAAAAAAAAAAAAAAAAAAAAA.sig"] {
            assert_eq!(verify(KEY, bad, now()), Err(TokenError::Malformed), "{bad:?}");
        }
        assert_eq!(verify(KEY, &with_part(1, "newsletters"), now()), Err(TokenError::Malformed));
        assert_eq!(verify(KEY, &with_part(4, "not base64!"), now()), Err(TokenError::Malformed));
        assert_eq!(verify(KEY, &token()[..token().len() - 1].replace('.', ""), now()), Err(TokenError::Malformed));
    }

    #[test]
    fn a_tampered_user_kind_or_expiry_breaks_the_signature() {
        assert_eq!(verify(KEY, &with_part(0, "43"), now()), Err(TokenError::BadSignature));
        assert_eq!(verify(KEY, &with_part(1, "challenges"), now()), Err(TokenError::BadSignature));
        let later = (now() + LIFETIME * 10).timestamp().to_string();
        assert_eq!(verify(KEY, &with_part(2, &later), now()), Err(TokenError::BadSignature));
        // An expired token made to look fresh is forged, not expired.
        let expired = sign(KEY, 42, Kind::Reports, now() - Duration::days(1));
        let mut parts: Vec<&str> = expired.split('.').collect();
        parts[2] = &later;
        assert_eq!(verify(KEY, &parts.join("."), now()), Err(TokenError::BadSignature));
    }

    #[test]
    fn another_key_breaks_the_signature() {
        assert_eq!(verify(b"another key", &token(), now()), Err(TokenError::BadSignature));
    }

    #[test]
    fn an_old_token_is_expired() {
        assert_eq!(verify(KEY, &token(), now() + LIFETIME), Err(TokenError::Expired));
        assert!(TokenError::Expired.to_string().contains("expired"));
    }

    #[test]
    fn a_link_carries_the_token_in_its_query() {
        let signer = Signer { key: KEY.to_vec(), base_url: "https://u.example/".into() };
        let link = signer.link(7, Kind::Challenges, now());
        let token = link.strip_prefix("https://u.example/?token=").expect(&link);
        assert_eq!(verify(KEY, token, now()).unwrap().kind, Kind::Challenges);
        let signer = Signer { base_url: "https://u.example/?lang=en".into(), ..signer };
        assert!(signer.link(7, Kind::Challenges, now()).starts_with("https://u.example/?lang=en&token="));
        assert!(!format!("{signer:?}").contains("long enough"));
    }
}
