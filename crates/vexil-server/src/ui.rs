//! The admin web UI: static files (plain ES modules and CSS, no build step) built into the
//! binary by `build.rs`, served at `/` and `/ui/…` with a strict Content-Security-Policy. The
//! pages call the admin API with the session cookie ([`crate::session`]).

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::auth::hex;
use crate::error::ApiError;
use crate::state::AppState;

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// Everything the pages load comes from this server; nothing inline, nothing external.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Each embedded file's `ETag`, computed once.
static ETAGS: LazyLock<HashMap<&'static str, String>> = LazyLock::new(|| {
    EMBEDDED
        .iter()
        .map(|(name, bytes)| (*name, etag(bytes)))
        .collect()
});

fn etag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", hex(&digest[..12]))
}

/// `GET /`: the UI's page.
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    file(&state, "index.html", &headers).await
}

/// `GET /ui/{path}`: the UI's scripts, styles and images.
pub async fn asset(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    file(&state, &path, &headers).await
}

async fn file(state: &AppState, path: &str, headers: &HeaderMap) -> Response {
    let found = match &state.options().ui_dir {
        None => EMBEDDED
            .iter()
            .find(|(name, _)| *name == path)
            .map(|(name, bytes)| (std::borrow::Cow::Borrowed(*bytes), ETAGS[name].clone())),
        Some(dir) if is_safe(path) => match tokio::fs::read(dir.join(path)).await {
            Ok(bytes) => {
                let tag = etag(&bytes);
                Some((std::borrow::Cow::Owned(bytes), tag))
            }
            Err(_) => None,
        },
        Some(_) => None,
    };
    let Some((bytes, tag)) = found else {
        return ApiError::NotFound(format!("no web UI file `{path}`")).into_response();
    };
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        bytes.into_owned().into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    // Revalidate every time (a 304 is cheap): an upgraded server never serves a stale page.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A relative path without `..`, hidden files or odd characters (only for `--ui-dir`).
fn is_safe(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_scripts_are_built_in() {
        for name in [
            "index.html",
            "app.js",
            "api.js",
            "style.css",
            "vendor/preact-htm.js",
        ] {
            assert!(
                EMBEDDED.iter().any(|(n, _)| *n == name),
                "{name} is not embedded"
            );
        }
    }

    /// The vendored Preact + htm is htm 3.1.1's `preact/standalone.module.js` from npm, byte
    /// for byte: upgrading it is a deliberate change of this hash, never an accidental edit.
    #[test]
    fn the_vendored_preact_is_the_published_file() {
        let (_, bytes) = EMBEDDED
            .iter()
            .find(|(n, _)| *n == "vendor/preact-htm.js")
            .unwrap_or_else(|| panic!("vendor/preact-htm.js is not embedded"));
        assert_eq!(
            hex(&Sha256::digest(bytes)),
            "72284e8e9079c87817145df1110f74e8a2aa040b2fc384922e18dfcb46fc1fd7"
        );
    }

    #[test]
    fn only_plain_relative_paths_are_read_from_disk() {
        assert!(is_safe("app.js"));
        assert!(is_safe("vendor/preact-htm.js"));
        for bad in [
            "",
            "../x",
            "a/../b",
            "/etc/passwd",
            ".hidden",
            "a//b",
            "a\\b",
            "a%2e",
        ] {
            assert!(!is_safe(bad), "{bad}");
        }
    }
}
