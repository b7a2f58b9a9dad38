//! Request bodies: size limits, media types and JSON parsing, all failing with the API's
//! error format instead of axum's plain-text rejections.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::state::AppState;

/// The largest body most routes take.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// The largest body `POST /api/v1/import` takes.
pub const IMPORT_LIMIT: usize = 32 * 1024 * 1024;
/// How deeply an evaluation context may nest.
pub const MAX_CONTEXT_DEPTH: usize = 32;

/// A JSON body of at most [`BODY_LIMIT`] bytes. An empty body reads as `null`.
#[derive(Debug)]
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, ApiError> {
        let bytes = read_bytes(req, BODY_LIMIT, false).await?;
        Ok(JsonBody(parse_json(&bytes)?))
    }
}

/// Reads a body up to `limit` bytes, checking its media type (`application/json`, or YAML when
/// `yaml_ok`).
pub async fn read_body(req: Request, limit: usize, yaml_ok: bool) -> Result<Vec<u8>, ApiError> {
    read_bytes(req, limit, yaml_ok).await.map(|b| b.to_vec())
}

/// [`read_body`] without copying the body out of its buffer (every evaluation request reads
/// one).
pub(crate) async fn read_bytes(
    req: Request,
    limit: usize,
    yaml_ok: bool,
) -> Result<axum::body::Bytes, ApiError> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        // A header value that is a `str` is visible ASCII, so comparing without case needs no
        // lowercase copy.
        let ct = ct.to_str().unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        let is = |media_type: &str| essence.eq_ignore_ascii_case(media_type);
        let json = is("application/json")
            || essence
                .len()
                .checked_sub(5)
                .and_then(|start| essence.get(start..))
                .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"));
        let yaml = is("application/yaml") || is("application/x-yaml") || is("text/yaml");
        if !(json || (yaml_ok && yaml)) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be application/json{}, not `{}`",
                if yaml_ok { " or application/yaml" } else { "" },
                essence.to_ascii_lowercase()
            )));
        }
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(limit))
}

/// Parses JSON; an empty body is `null`.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| invalid_json(&e))
}

/// The error for a body that is not valid JSON.
pub(crate) fn invalid_json(e: &serde_json::Error) -> ApiError {
    ApiError::BadRequest(
        "invalid_json",
        format!(
            "the body is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ),
    )
}

/// Reads a JSON value into a request type, reporting unknown fields and wrong types as
/// validation failures.
pub fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::invalid("", e.to_string()))
}

/// How deeply a JSON value nests (a scalar is 0), computed without recursion.
pub fn depth(value: &Value) -> usize {
    // Most evaluation contexts are flat: answer those without allocating a stack.
    let scalar = |v: &Value| !matches!(v, Value::Array(_) | Value::Object(_));
    match value {
        Value::Array(items) if items.iter().all(scalar) => return usize::from(!items.is_empty()),
        Value::Object(map) if map.values().all(scalar) => return usize::from(!map.is_empty()),
        Value::Array(_) | Value::Object(_) => {}
        _ => return 0,
    }
    let mut max = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    max
}
