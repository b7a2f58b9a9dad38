//! Web UI sessions: an admin key exchanged for an HttpOnly, `SameSite=Strict` cookie.
//!
//! A session is stateless and signed, so every instance of a fleet accepts it without sharing
//! anything but the store: the cookie (`v1.KEY_ID.EXPIRES.NONCE.NAME.SIGNATURE`) names the admin
//! key it was made from, when it expires and the person's name (base64url), with an HMAC-SHA256
//! keyed by that key's stored secret hash. Revoking the
//! key ends its sessions everywhere at once; signing out ends the session on the instance that
//! handled it (the browser drops the cookie too, so only a copied cookie outlives it there).
//!
//! Writes made with a session must also carry `X-Vexil-CSRF`, a second HMAC of the cookie that
//! only the page's own script can read (from `GET /api/v1/session`), and must not come from
//! another site (`Origin`, `Sec-Fetch-Site`). `SameSite=Strict` already keeps the cookie off
//! cross-site requests; the token keeps that true for browsers and proxies that get it wrong.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use sha2::Sha256;
use vexil_store::{ApiKey, KeyKind};

use crate::error::ApiError;

/// The cookie's name.
pub const COOKIE: &str = "vexil_session";
/// The header a cookie-authenticated write must carry.
pub const CSRF_HEADER: &str = "x-vexil-csrf";
/// How long a session lasts.
pub const LIFETIME: SignedDuration = SignedDuration::from_hours(12);
/// The longest name a person may give at sign-in.
pub const MAX_NAME: usize = 100;

const VERSION: &str = "v1";

/// A verified session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The cookie's value.
    pub token: String,
    /// The admin key it was made from.
    pub key: Arc<ApiKey>,
    /// The person who signed in, when they said.
    pub name: Option<String>,
    /// When it ends.
    pub expires_at: Timestamp,
}

impl Session {
    /// Who the audit log shows: `alice via admin`, or the key's name alone.
    pub fn actor(&self) -> String {
        actor(self.name.as_deref(), &self.key.name)
    }

    /// The CSRF token of this session.
    pub fn csrf(&self) -> String {
        hex(&mac(&self.key.secret_hash, &["csrf", &self.token]))
    }

    /// `Set-Cookie` for this session.
    pub fn set_cookie(&self, secure: bool) -> HeaderValue {
        cookie_header(&self.token, LIFETIME.as_secs(), secure)
    }
}

/// `alice via admin`, or `admin` without a name.
pub fn actor(name: Option<&str>, key_name: &str) -> String {
    match name {
        Some(name) => format!("{name} via {key_name}"),
        None => key_name.to_owned(),
    }
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    cookie_header("", 0, secure)
}

fn cookie_header(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    // The value is hex, base64url and dots: always a valid header value.
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("vexil_session=; Path=/; Max-Age=0"))
}

/// Makes a session for an admin key.
pub fn create(key: Arc<ApiKey>, name: Option<String>, now: Timestamp) -> Result<Session, ApiError> {
    if key.kind != KeyKind::Admin {
        return Err(ApiError::Forbidden(format!(
            "only admin keys can sign in to the web UI; the key `{}` is a {} key",
            key.name, key.kind
        )));
    }
    // Whole seconds: what the cookie carries.
    let expires_at = now
        .checked_add(LIFETIME)
        .and_then(|t| Timestamp::from_second(t.as_second()))
        .map_err(|e| ApiError::Internal(format!("session expiry out of range: {e}")))?;
    let name_part = name.as_deref().map(b64url).unwrap_or_default();
    let expires = expires_at.as_second().to_string();
    // A nonce makes every sign-in a new session, even the same person's within one second
    // (signing out must not end the session made right after it).
    let nonce = crate::auth::random_hex(8)?;
    let signature = hex(&mac(
        &key.secret_hash,
        &[VERSION, &key.id, &expires, &nonce, &name_part],
    ));
    let token = [VERSION, &key.id, &expires, &nonce, &name_part, &signature].join(".");
    Ok(Session {
        token,
        key,
        name,
        expires_at,
    })
}

/// Checks a session cookie's value against the live keys. `None` for anything that is not a
/// current session: malformed, forged, expired, signed out, or its key revoked.
pub fn verify(
    token: &str,
    keys: impl Fn(&str) -> Option<Arc<ApiKey>>,
    signed_out: &SignedOut,
    now: Timestamp,
) -> Option<Session> {
    let mut parts = token.split('.');
    let (version, id, expires, nonce, name_part, signature) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if version != VERSION || parts.next().is_some() {
        return None;
    }
    let key = keys(id)?;
    if key.kind != KeyKind::Admin || key.revoked_at.is_some() {
        return None;
    }
    let signature = unhex(signature)?;
    signer(&key.secret_hash, &[version, id, expires, nonce, name_part])
        .verify_slice(&signature)
        .ok()?;
    let expires_at = Timestamp::from_second(expires.parse().ok()?).ok()?;
    if expires_at <= now || signed_out.contains(token) {
        return None;
    }
    let name = if name_part.is_empty() {
        None
    } else {
        Some(String::from_utf8(unb64url(name_part)?).ok()?)
    };
    Some(Session {
        token: token.to_owned(),
        key,
        name,
        expires_at,
    })
}

/// The session cookie of a request, if it sent one.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// Refuses a cookie-authenticated request that could have been forged by another site: a
/// write without the session's CSRF token, or any request a browser marks as cross-site.
pub fn check_request(parts: &Parts, session: &Session) -> Result<(), ApiError> {
    check_origin(&parts.headers)?;
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    check_csrf(&parts.headers, session)
}

/// Refuses a write without this session's CSRF token.
pub fn check_csrf(headers: &HeaderMap, session: &Session) -> Result<(), ApiError> {
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| unhex(v.to_str().ok()?))
        .ok_or_else(|| {
            csrf_failed("a write made with a session cookie needs the X-Vexil-CSRF header")
        })?;
    signer(&session.key.secret_hash, &["csrf", &session.token])
        .verify_slice(&sent)
        .map_err(|_| csrf_failed("the X-Vexil-CSRF token does not belong to this session"))
}

/// Refuses a request a browser marks as coming from another site.
pub fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(csrf_failed("the request came from another site"));
    }
    if let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if origin_host.as_bytes() != host.as_bytes() {
            return Err(csrf_failed(&format!(
                "the request's origin `{origin}` is not this server"
            )));
        }
    }
    Ok(())
}

fn csrf_failed(why: &str) -> ApiError {
    ApiError::Forbidden(format!("cross-site request refused: {why}"))
}

/// Sessions ended by signing out on this instance, until they would have expired anyway.
#[derive(Debug, Default)]
pub struct SignedOut {
    tokens: Mutex<HashMap<String, Timestamp>>,
}

impl SignedOut {
    /// Ends a session.
    pub fn insert(&self, session: &Session, now: Timestamp) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, expires| *expires > now);
        tokens.insert(session.token.clone(), session.expires_at);
    }

    fn contains(&self, token: &str) -> bool {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(token)
    }
}

/// An HMAC-SHA256 keyed by a key's stored secret hash over `parts`, each ended by a NUL so
/// that no two lists of parts sign the same bytes.
fn signer(secret_hash: &str, parts: &[&str]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret_hash.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    for part in parts {
        m.update(part.as_bytes());
        m.update(b"\0");
    }
    m
}

fn mac(secret_hash: &str, parts: &[&str]) -> Vec<u8> {
    signer(secret_hash, parts).finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url, so a name fits in a cookie whatever its characters.
fn b64url(s: &str) -> String {
    let mut out = String::with_capacity(s.len().div_ceil(3) * 4);
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn unb64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        if chunk.len() < 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = B64.iter().position(|b| b == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: KeyKind) -> Arc<ApiKey> {
        Arc::new(ApiKey {
            id: "k1".into(),
            name: "ops".into(),
            kind,
            environment: None,
            secret_hash: "ab".repeat(32),
            created_at: Timestamp::UNIX_EPOCH,
            revoked_at: None,
        })
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn base64url_round_trips() {
        for s in ["", "a", "ab", "abc", "abcd", "Zoë Ñúñez 日本", "x.y;z=1"] {
            let encoded = b64url(s);
            assert!(encoded.bytes().all(|b| B64.contains(&b)), "{encoded}");
            assert_eq!(unb64url(&encoded).as_deref(), Some(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn a_session_verifies_until_it_expires_or_is_signed_out() {
        let k = key(KeyKind::Admin);
        let s = create(k.clone(), Some("Zoë".into()), now()).unwrap_or_else(|e| panic!("{e}"));
        let lookup = |id: &str| (id == "k1").then(|| k.clone());
        let out = SignedOut::default();
        let v = verify(&s.token, lookup, &out, now()).unwrap_or_else(|| panic!("not verified"));
        assert_eq!(v.name.as_deref(), Some("Zoë"));
        assert_eq!(v.actor(), "Zoë via ops");
        assert!(
            verify(&s.token, lookup, &out, s.expires_at).is_none(),
            "expired"
        );
        out.insert(&s, now());
        assert!(
            verify(&s.token, lookup, &out, now()).is_none(),
            "signed out"
        );
    }

    #[test]
    fn tampering_or_another_key_fails() {
        let k = key(KeyKind::Admin);
        let s = create(k.clone(), Some("alice".into()), now()).unwrap_or_else(|e| panic!("{e}"));
        let out = SignedOut::default();
        let lookup = |_: &str| Some(k.clone());
        // Another name, a later expiry, a cut token.
        let forged = s.token.replace(&b64url("alice"), &b64url("mallory"));
        assert!(verify(&forged, lookup, &out, now()).is_none());
        let later = s.token.replace(
            &s.expires_at.as_second().to_string(),
            &(s.expires_at.as_second() + 3600).to_string(),
        );
        assert!(verify(&later, lookup, &out, now()).is_none());
        assert!(verify(&s.token[..s.token.len() - 2], lookup, &out, now()).is_none());
        // The same token against a key with another secret (rotated or a different server).
        let other = Arc::new(ApiKey {
            secret_hash: "cd".repeat(32),
            ..ApiKey::clone(&k)
        });
        assert!(verify(&s.token, |_| Some(other.clone()), &out, now()).is_none());
        // A revoked key.
        let revoked = Arc::new(ApiKey {
            revoked_at: Some(now()),
            ..ApiKey::clone(&k)
        });
        assert!(verify(&s.token, |_| Some(revoked.clone()), &out, now()).is_none());
    }

    #[test]
    fn signing_out_ends_only_that_session() {
        let k = key(KeyKind::Admin);
        let lookup = |_: &str| Some(k.clone());
        let out = SignedOut::default();
        let first = create(k.clone(), Some("a".into()), now()).unwrap_or_else(|e| panic!("{e}"));
        let second = create(k.clone(), Some("a".into()), now()).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            first.token, second.token,
            "same person, same second, two sessions"
        );
        out.insert(&first, now());
        assert!(verify(&first.token, lookup, &out, now()).is_none());
        assert!(verify(&second.token, lookup, &out, now()).is_some());
    }

    #[test]
    fn only_admin_keys_sign_in() {
        let e = create(key(KeyKind::Server), None, now()).err();
        assert!(matches!(e, Some(ApiError::Forbidden(m)) if m.contains("only admin keys")));
    }
}
