//! Web UI sessions: an admin key exchanged for an HttpOnly, `SameSite=Strict` cookie.
//!
//! A session is stateless and signed, so it needs no table: the cookie
//! (`v1.KEY_ID.EXPIRES.NONCE.NAME.SIGNATURE`) names the admin key it was made from, when it
//! expires and the person's name (base64url), signed with HMAC-SHA256 under the server's
//! session secret ([`Sessions`]). The secret is never stored in the database, so reading the
//! database (a backup, a replica) is not enough to forge a session. The signature also covers the
//! key's stored hash, so revoking or replacing the key ends its sessions at once. Instances of a
//! fleet share sessions when they share the secret (`--session-secret`); without one, each
//! process makes its own at start, and its sessions end when it stops. Signing out ends the
//! session on the instance that handled it (the browser drops the cookie too, so only a copied
//! cookie outlives it, on other instances, until it expires).
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

use crate::auth::hex;
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

/// The server's sessions: the secret they are signed with, and those signed out here.
pub struct Sessions {
    secret: Vec<u8>,
    signed_out: Mutex<HashMap<String, Timestamp>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// The shortest session secret accepted.
pub const MIN_SECRET: usize = 32;

impl Sessions {
    /// Sessions signed with `secret` (shared by the instances of a fleet), or with a random
    /// secret of this process when `None`.
    pub fn new(secret: Option<&str>) -> Result<Sessions, ApiError> {
        let secret = match secret {
            Some(s) if s.len() < MIN_SECRET => {
                return Err(ApiError::BadRequest(
                    "invalid_session_secret",
                    format!(
                        "the session secret is {} bytes long; use at least {MIN_SECRET} random characters",
                        s.len()
                    ),
                ));
            }
            Some(s) => s.as_bytes().to_vec(),
            None => {
                let mut bytes = vec![0u8; 32];
                getrandom::fill(&mut bytes)
                    .map_err(|e| ApiError::Internal(format!("no randomness available: {e}")))?;
                bytes
            }
        };
        Ok(Sessions {
            secret,
            signed_out: Mutex::default(),
        })
    }

    /// Makes a session for an admin key.
    pub fn create(
        &self,
        key: Arc<ApiKey>,
        name: Option<String>,
        now: Timestamp,
    ) -> Result<Session, ApiError> {
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
        let fields = [VERSION, &key.id, &expires, &nonce, &name_part];
        let signature = hex(&self.signer(&key, &fields).finalize().into_bytes());
        let token = [VERSION, &key.id, &expires, &nonce, &name_part, &signature].join(".");
        Ok(Session {
            token,
            key,
            name,
            expires_at,
        })
    }

    /// Checks a session cookie's value against the live keys. `None` for anything that is not
    /// a current session: malformed, forged, expired, signed out, or its key revoked.
    pub fn verify(
        &self,
        token: &str,
        keys: impl Fn(&str) -> Option<Arc<ApiKey>>,
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
        self.signer(&key, &[version, id, expires, nonce, name_part])
            .verify_slice(&signature)
            .ok()?;
        let expires_at = Timestamp::from_second(expires.parse().ok()?).ok()?;
        if expires_at <= now || self.is_signed_out(token) {
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

    /// The CSRF token of a session.
    pub fn csrf(&self, session: &Session) -> String {
        hex(&self
            .signer(&session.key, &["csrf", &session.token])
            .finalize()
            .into_bytes())
    }

    /// Refuses a cookie-authenticated request that could have been forged by another site: a
    /// write without the session's CSRF token, or any request a browser marks as cross-site.
    pub fn check_request(&self, parts: &Parts, session: &Session) -> Result<(), ApiError> {
        check_origin(&parts.headers)?;
        if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        self.check_csrf(&parts.headers, session)
    }

    /// Refuses a write without this session's CSRF token.
    pub fn check_csrf(&self, headers: &HeaderMap, session: &Session) -> Result<(), ApiError> {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| unhex(v.to_str().ok()?))
            .ok_or_else(|| {
                csrf_failed("a write made with a session cookie needs the X-Vexil-CSRF header")
            })?;
        self.signer(&session.key, &["csrf", &session.token])
            .verify_slice(&sent)
            .map_err(|_| csrf_failed("the X-Vexil-CSRF token does not belong to this session"))
    }

    /// Ends a session on this instance (kept until it would have expired anyway).
    pub fn sign_out(&self, session: &Session, now: Timestamp) {
        let mut tokens = self.signed_out.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, expires| *expires > now);
        tokens.insert(session.token.clone(), session.expires_at);
    }

    fn is_signed_out(&self, token: &str) -> bool {
        self.signed_out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(token)
    }

    /// An HMAC-SHA256 under the server's secret over the key's stored hash and `parts`, each
    /// ended by a NUL so that no two lists of parts sign the same bytes.
    fn signer(&self, key: &ApiKey, parts: &[&str]) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail.
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        for part in std::iter::once(key.secret_hash.as_str()).chain(parts.iter().copied()) {
            m.update(part.as_bytes());
            m.update(b"\0");
        }
        m
    }
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

/// Refuses a request a browser marks as coming from another site.
pub fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(csrf_failed("the request came from another site"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    // The host the browser asked for: `Host`, or, behind a proxy that rewrites it, the
    // `X-Forwarded-Host` it sets. (A page on another site cannot send either header: both are
    // forbidden to scripts or need a CORS preflight this server never grants.)
    let mut hosts = [header::HOST.as_str(), "x-forwarded-host"]
        .into_iter()
        .filter_map(|name| headers.get(name));
    if hosts.any(|h| h.as_bytes() == origin_host.as_bytes()) {
        Ok(())
    } else {
        Err(csrf_failed(&format!(
            "the request's origin `{origin}` is not this server"
        )))
    }
}

fn csrf_failed(why: &str) -> ApiError {
    ApiError::CsrfFailed(format!("cross-site request refused: {why}"))
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

    fn sessions(secret: &str) -> Sessions {
        Sessions::new(Some(secret)).unwrap_or_else(|e| panic!("{e}"))
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

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
        let sessions = sessions(SECRET);
        let k = key(KeyKind::Admin);
        let s = sessions
            .create(k.clone(), Some("Zoë".into()), now())
            .unwrap_or_else(|e| panic!("{e}"));
        let lookup = |id: &str| (id == "k1").then(|| k.clone());
        let v = sessions
            .verify(&s.token, lookup, now())
            .unwrap_or_else(|| panic!("not verified"));
        assert_eq!(v.name.as_deref(), Some("Zoë"));
        assert_eq!(v.actor(), "Zoë via ops");
        assert!(
            sessions.verify(&s.token, lookup, s.expires_at).is_none(),
            "expired"
        );
        sessions.sign_out(&s, now());
        assert!(
            sessions.verify(&s.token, lookup, now()).is_none(),
            "signed out"
        );
    }

    #[test]
    fn tampering_another_key_or_another_secret_fails() {
        let sessions = sessions(SECRET);
        let k = key(KeyKind::Admin);
        let s = sessions
            .create(k.clone(), Some("alice".into()), now())
            .unwrap_or_else(|e| panic!("{e}"));
        let lookup = |_: &str| Some(k.clone());
        // Another name, a later expiry, a cut token.
        let forged = s.token.replace(&b64url("alice"), &b64url("mallory"));
        assert!(sessions.verify(&forged, lookup, now()).is_none());
        let later = s.token.replace(
            &s.expires_at.as_second().to_string(),
            &(s.expires_at.as_second() + 3600).to_string(),
        );
        assert!(sessions.verify(&later, lookup, now()).is_none());
        assert!(
            sessions
                .verify(&s.token[..s.token.len() - 2], lookup, now())
                .is_none()
        );
        // The key was replaced (another secret under the same id).
        let other = Arc::new(ApiKey {
            secret_hash: "cd".repeat(32),
            ..ApiKey::clone(&k)
        });
        assert!(
            sessions
                .verify(&s.token, |_| Some(other.clone()), now())
                .is_none()
        );
        // A revoked key.
        let revoked = Arc::new(ApiKey {
            revoked_at: Some(now()),
            ..ApiKey::clone(&k)
        });
        assert!(
            sessions
                .verify(&s.token, |_| Some(revoked.clone()), now())
                .is_none()
        );
        // Another server secret: what someone who read the database (key ids and hashes) but
        // not the secret would sign with.
        let elsewhere = Sessions::new(None).unwrap_or_else(|e| panic!("{e}"));
        assert!(elsewhere.verify(&s.token, lookup, now()).is_none());
        let theirs = elsewhere
            .create(k.clone(), Some("alice".into()), now())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(sessions.verify(&theirs.token, lookup, now()).is_none());
        // The same secret (a fleet): accepted.
        assert!(
            self::sessions(SECRET)
                .verify(&s.token, lookup, now())
                .is_some()
        );
    }

    #[test]
    fn signing_out_ends_only_that_session() {
        let sessions = sessions(SECRET);
        let k = key(KeyKind::Admin);
        let lookup = |_: &str| Some(k.clone());
        let first = sessions
            .create(k.clone(), Some("a".into()), now())
            .unwrap_or_else(|e| panic!("{e}"));
        let second = sessions
            .create(k.clone(), Some("a".into()), now())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            first.token, second.token,
            "same person, same second, two sessions"
        );
        sessions.sign_out(&first, now());
        assert!(sessions.verify(&first.token, lookup, now()).is_none());
        assert!(sessions.verify(&second.token, lookup, now()).is_some());
    }

    #[test]
    fn only_admin_keys_sign_in_and_short_secrets_are_refused() {
        let e = sessions(SECRET)
            .create(key(KeyKind::Server), None, now())
            .err();
        assert!(matches!(e, Some(ApiError::Forbidden(m)) if m.contains("only admin keys")));
        let e = Sessions::new(Some("short")).err();
        assert!(matches!(e, Some(ApiError::BadRequest(_, m)) if m.contains("at least 32")));
    }

    #[test]
    fn origins_are_checked_against_the_host_the_browser_used() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        let ok = [
            headers(&[]),
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
            ]),
            // Behind a proxy that rewrites Host but says which host the browser asked for.
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("x-forwarded-host", "flags.example.com"),
                ("origin", "https://flags.example.com"),
            ]),
            headers(&[("sec-fetch-site", "same-origin")]),
        ];
        for h in ok {
            assert!(check_origin(&h).is_ok(), "{h:?}");
        }
        let refused = [
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ]),
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("x-forwarded-host", "flags.example.com"),
                ("origin", "https://evil.example"),
            ]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]),
        ];
        for h in refused {
            assert!(check_origin(&h).is_err(), "{h:?}");
        }
    }
}
