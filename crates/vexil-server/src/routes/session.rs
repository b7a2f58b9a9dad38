//! `/api/v1/session`: signing in to the web UI with an admin key, and out again.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::hash_secret;
use crate::body::{JsonBody, typed};
use crate::error::ApiError;
use crate::session::{self, Session};
use crate::state::{AppState, Source};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    key: String,
    #[serde(default)]
    name: Option<String>,
}

/// `{"name", "person", "actor", "csrf", "expires_at", "read_only"}`; `read_only` when the server
/// serves a flag file (`--flags`), whose flags cannot be changed over the API.
fn describe(state: &AppState, s: &Session) -> serde_json::Value {
    json!({
        "name": s.key.name,
        "person": s.name,
        "actor": s.actor(),
        "csrf": state.sessions().csrf(s),
        "expires_at": s.expires_at,
        "read_only": matches!(state.source(), Source::File(_)),
    })
}

/// Whether the browser reached us over HTTPS (directly or through a proxy that says so): the
/// cookie is then marked `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn current(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    session::cookie(headers).and_then(|token| state.session(token))
}

/// `GET /api/v1/session`: who is signed in, and the CSRF token the page sends with writes.
#[utoipa::path(get, path = "/api/v1/session", tag = "web UI",
    responses((status = 200, description = "The session: `{name, person, actor, csrf, expires_at}`"),
        (status = 401, description = "Not signed in")))]
pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let session =
        current(&state, &headers).ok_or_else(|| ApiError::Unauthorized("not signed in".into()))?;
    Ok(Json(describe(&state, &session)).into_response())
}

/// `POST /api/v1/session {"key", "name"?}`: signs in with an admin key; the session is an
/// HttpOnly, `SameSite=Strict` cookie. `name` is the person, shown in the audit log.
#[utoipa::path(post, path = "/api/v1/session", tag = "web UI",
    request_body(content = Object, description = "`{\"key\": \"ADMIN SECRET\", \"name\": \"who you are (optional)\"}`"),
    responses((status = 200, description = "Signed in; sets the session cookie"),
        (status = 401, description = "Unknown or revoked key"), (status = 403, description = "Not an admin key")))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    session::check_origin(&headers)?;
    let SignIn { key, name } = typed(body)?;
    let name = match name.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) if n.chars().count() > session::MAX_NAME => {
            return Err(ApiError::invalid(
                "name",
                format!("the name is longer than {} characters", session::MAX_NAME),
            ));
        }
        Some(n) if n.chars().any(char::is_control) => {
            return Err(ApiError::invalid(
                "name",
                "the name cannot contain control characters",
            ));
        }
        Some(n) => Some(n.to_owned()),
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(ApiError::invalid("key", "enter an admin key"));
    }
    let key = state
        .key_by_hash(&hash_secret(key))
        .ok_or_else(|| ApiError::Unauthorized("unknown or revoked API key".into()))?;
    let session = state.sessions().create(key, name, jiff::Timestamp::now())?;
    tracing::info!(actor = %session.actor(), "signed in to the web UI");
    let mut response = Json(describe(&state, &session)).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session.set_cookie(over_https(&headers)));
    Ok(response)
}

/// `DELETE /api/v1/session`: signs out.
#[utoipa::path(delete, path = "/api/v1/session", tag = "web UI",
    responses((status = 204, description = "Signed out; the cookie is cleared")))]
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    session::check_origin(&headers)?;
    if let Some(session) = current(&state, &headers) {
        // Signing out needs the CSRF token like any write, or another site could sign a
        // person out. Without a live session there is nothing to protect.
        let sessions = state.sessions();
        sessions.check_csrf(&headers, &session)?;
        sessions.sign_out(&session, jiff::Timestamp::now());
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::clear_cookie(over_https(&headers)),
    );
    Ok(response)
}
