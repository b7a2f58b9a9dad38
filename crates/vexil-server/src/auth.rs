//! API keys: how a request proves who it is, and what each kind of key may do.
//!
//! A key is sent as `Authorization: Bearer SECRET` or, for OFREP clients, `X-API-Key: SECRET`.
//! The server keeps only SHA-256 hashes of secrets and looks them up in memory. The web UI
//! authenticates with a session cookie made from an admin key instead ([`crate::session`]).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use vexil_store::{ApiKey, KeyKind};

use crate::error::ApiError;
use crate::session;
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key used (shared with the server's table of keys).
    pub key: Arc<ApiKey>,
    /// Who the audit log shows: the key's name, or the person signed in to the web UI.
    actor: String,
}

impl Caller {
    /// A caller authenticated by a key.
    pub fn from_key(key: Arc<ApiKey>) -> Caller {
        Caller {
            actor: key.name.clone(),
            key,
        }
    }

    /// The actor recorded in the audit log.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Fails unless the key is an admin key.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.key.kind {
            KeyKind::Admin => Ok(()),
            kind => Err(ApiError::Forbidden(format!(
                "this route needs an admin key; the key `{}` is a {kind} key",
                self.key.name
            ))),
        }
    }

    /// Fails unless the key is an admin key or a server key.
    pub fn require_server(&self) -> Result<(), ApiError> {
        match self.key.kind {
            KeyKind::Admin | KeyKind::Server => Ok(()),
            KeyKind::Client => Err(ApiError::Forbidden(format!(
                "this route needs a server or admin key; the key `{}` is a client key",
                self.key.name
            ))),
        }
    }

    /// The environment an evaluation runs in: the key's own, or for admin keys the one asked
    /// for (`env`), else the server's default (the first).
    pub fn environment(&self, asked: Option<&str>, default: &str) -> Result<String, ApiError> {
        match (&self.key.environment, asked) {
            (Some(own), None) => Ok(own.clone()),
            (Some(own), Some(asked)) if asked == own => Ok(own.clone()),
            (Some(own), Some(asked)) => Err(ApiError::Forbidden(format!(
                "the key `{}` is scoped to environment `{own}`, not `{asked}`",
                self.key.name
            ))),
            (None, Some(asked)) => Ok(asked.to_owned()),
            (None, None) => Ok(default.to_owned()),
        }
    }
}

/// Lowercase hex SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> String {
    String::from_utf8_lossy(&hash_hex(secret)).into_owned()
}

/// [`hash_secret`] into a buffer on the stack: every request hashes its key.
fn hash_hex(secret: &str) -> [u8; 64] {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
        pair[0] = b"0123456789abcdef"[usize::from(b >> 4)];
        pair[1] = b"0123456789abcdef"[usize::from(b & 0xf)];
    }
    out
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, ApiError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no randomness available: {e}")))?;
    Ok(hex(&bytes))
}

/// Bytes as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new secret for a key of this kind: `vexil_<kind>_<40 hex digits>` (160 random bits).
pub fn new_secret(kind: KeyKind) -> Result<String, ApiError> {
    Ok(format!("vexil_{}_{}", kind.as_str(), random_hex(20)?))
}

fn secret_from(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(secret) = secret_from(parts).filter(|s| !s.is_empty()) else {
            // No key: a browser signed in to the web UI sends its session cookie instead.
            if let Some(token) = session::cookie(&parts.headers) {
                let Some(session) = state.session(token) else {
                    return Err(ApiError::Unauthorized(
                        "the session has ended (signed out, expired or its key revoked); sign in again".into(),
                    ));
                };
                state.sessions().check_request(parts, &session)?;
                return Ok(Caller {
                    actor: session.actor(),
                    key: session.key,
                });
            }
            return Err(ApiError::Unauthorized(
                "no API key: send `Authorization: Bearer KEY` (or `X-API-Key: KEY`)".into(),
            ));
        };
        let hash = hash_hex(secret);
        let hash = std::str::from_utf8(&hash).unwrap_or_default();
        match state.key_by_hash(hash) {
            Some(key) => Ok(Caller::from_key(key)),
            None => Err(ApiError::Unauthorized("unknown or revoked API key".into())),
        }
    }
}
