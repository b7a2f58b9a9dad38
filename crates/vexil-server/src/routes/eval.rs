//! Evaluation over HTTP: the simple API (`GET /flags/{key}`), OFREP, and the admin API's
//! explanation of one evaluation (`POST /api/v1/flags/{key}/explain`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use vexil_engine::{Context, ContextError, Env, ErrorCode, Evaluation, Reason, ValueType};

use crate::auth::Caller;
use crate::body::{BODY_LIMIT, JsonBody, MAX_CONTEXT_DEPTH, depth, read_bytes};
use crate::error::{ApiError, Detail};
use crate::metrics::Metrics;
use crate::state::{AppState, Live};

/// Resolves the environment of an evaluation for this caller.
fn env_for<'a>(live: &'a Live, caller: &Caller, asked: Option<&str>) -> Result<Env<'a>, ApiError> {
    let default = live.config.default_env().name();
    let name = caller.environment(asked, default)?;
    live.config
        .env(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no environment `{name}`")))
}

/// The `env` query parameter, the only one the OFREP routes read. The query is parsed (as
/// `Query<HashMap<String, String>>`, with its rejections) only when there is one, so the common
/// request, without a query, does no work for it.
pub struct EnvParam(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for EnvParam {
    type Rejection = QueryRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, QueryRejection> {
        if parts.uri.query().is_none() {
            return Ok(EnvParam(None));
        }
        let Query(mut params) = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)?;
        Ok(EnvParam(params.remove("env")))
    }
}

/// `GET /flags/{key}?user_id=…&ATTR=…[&env=…]`: query parameters form the context, `user_id`
/// is the targeting key.
#[utoipa::path(get, path = "/flags/{key}", tag = "simple",
    params(("key" = String, Path, description = "Flag key"),
        ("user_id" = Option<String>, Query, description = "The targeting key"),
        ("env" = Option<String>, Query, description = "Environment (admin keys only)")),
    responses((status = 200, description = "The evaluation"), (status = 404, description = "Unknown flag: `enabled` is false")),
    security(("bearer" = [])))]
pub async fn simple_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let live = state.live();
    let env = env_for(&live, &caller, params.get("env").map(String::as_str))?;
    let mut ctx = Context::new();
    for (k, v) in &params {
        if !matches!(k.as_str(), "env" | "user_id") {
            ctx.set(k.as_str(), v.as_str());
        }
    }
    // Set last, so `user_id` is the targeting key whatever order the parameters come in (a
    // `targetingKey` parameter counts only without it).
    if let Some(user_id) = params.get("user_id") {
        ctx.set(vexil_engine::TARGETING_KEY, user_id.as_str());
    }
    let ev = env.evaluate(&key, &ctx, jiff::Timestamp::now());
    state.metrics().evaluation(&key, ev.reason.as_str());
    let flag = live.config.flag(&key);
    let enabled = match (flag, ev.value) {
        (Some(f), Some(v)) if f.value_type() == ValueType::Boolean => v == &Value::Bool(true),
        (Some(f), Some(_)) => ev.reason != Reason::Disabled && ev.variant != Some(f.off_variant()),
        _ => false,
    };
    let body = json!({
        "flag": key,
        "enabled": enabled,
        "variant": ev.variant,
        "value": ev.value,
        "reason": ev.reason,
    });
    let status = if ev.error.map(|e| e.code()) == Some(ErrorCode::FlagNotFound) {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)).into_response())
}

/// The OFREP request body: `{"context": {...}}`.
///
/// The body is read straight into the context's attributes, without a `serde_json::Value` for
/// the whole body and with a map sized for a typical context up front: this is on the path of
/// every evaluation request, and it halves the cost of reading one. Invalid JSON is the API's
/// `invalid_json` error (like any JSON body); a body that is not an object is `PARSE_ERROR`, a
/// context that is not one or nests too deeply `INVALID_CONTEXT`; no body, no context and a
/// `null` one mean an empty context.
pub struct OfrepBody(pub Result<Context, (ErrorCode, String)>);

impl FromRequest<AppState> for OfrepBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, ApiError> {
        let bytes = read_bytes(req, BODY_LIMIT, false).await?;
        ofrep_context(&bytes).map(OfrepBody)
    }
}

/// Reads the context of an OFREP request body, as [`OfrepBody`] does: the outer `Err` is the
/// API's error (invalid JSON), the inner one OFREP's. Public so that the benchmark measures the
/// handler's own steps.
pub fn ofrep_context(bytes: &[u8]) -> Result<Result<Context, (ErrorCode, String)>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Ok(Context::new()));
    }
    let body: ofrep_body::Body =
        serde_json::from_slice(bytes).map_err(|e| crate::body::invalid_json(&e))?;
    Ok(match body {
        ofrep_body::Body::NotAnObject => Err((
            ErrorCode::ParseError,
            "the body must be a JSON object like {\"context\": {...}}".into(),
        )),
        ofrep_body::Body::Object(ofrep_body::ContextField::Absent) => Ok(Context::new()),
        ofrep_body::Body::Object(ofrep_body::ContextField::NotAnObject) => Err((
            ErrorCode::InvalidContext,
            ContextError::NotAnObject.to_string(),
        )),
        ofrep_body::Body::Object(ofrep_body::ContextField::Map(map)) => {
            // The depth of the context object itself, as `depth` counts it.
            let nesting = map.values().map(|v| 1 + depth(v)).max().unwrap_or(0);
            if nesting > MAX_CONTEXT_DEPTH {
                Err((
                    ErrorCode::InvalidContext,
                    format!("the context nests more than {MAX_CONTEXT_DEPTH} levels deep"),
                ))
            } else {
                Ok(Context::from(map))
            }
        }
    })
}

/// The shape of an OFREP request body, as far as evaluation cares: serde visitors that keep
/// the context's attributes and skip (while still checking the syntax of) everything else.
mod ofrep_body {
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    /// The top level.
    pub enum Body {
        Object(ContextField),
        NotAnObject,
    }

    /// The `context` member (the last one, if the body repeats it).
    pub enum ContextField {
        /// Missing or `null`.
        Absent,
        Map(Map<String, Value>),
        NotAnObject,
    }

    /// How many attributes the context map has room for before it grows.
    const TYPICAL_ATTRIBUTES: usize = 8;

    /// A visitor's methods for every value but an object or `null`: the value is read (an array
    /// to its end) and answered with `$answer`.
    macro_rules! not_an_object {
        ($answer:expr) => {
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok($answer)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok($answer)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok($answer)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok($answer)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok($answer)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok($answer)
            }
        };
    }

    struct BodyVisitor;

    impl<'de> Visitor<'de> for BodyVisitor {
        type Value = Body;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object like {\"context\": {...}}")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Body, E> {
            Ok(Body::Object(ContextField::Absent))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
            let mut context = ContextField::Absent;
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Context => context = map.next_value()?,
                    Key::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(Body::Object(context))
        }

        not_an_object!(Body::NotAnObject);
    }

    impl<'de> Deserialize<'de> for Body {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
            d.deserialize_any(BodyVisitor)
        }
    }

    struct ContextVisitor;

    impl<'de> Visitor<'de> for ContextVisitor {
        type Value = ContextField;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an evaluation context (a JSON object)")
        }

        fn visit_unit<E: de::Error>(self) -> Result<ContextField, E> {
            Ok(ContextField::Absent)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ContextField, A::Error> {
            let mut attributes = Map::with_capacity(TYPICAL_ATTRIBUTES);
            while let Some((name, value)) = map.next_entry::<String, Value>()? {
                attributes.insert(name, value);
            }
            Ok(ContextField::Map(attributes))
        }

        not_an_object!(ContextField::NotAnObject);
    }

    impl<'de> Deserialize<'de> for ContextField {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ContextField, D::Error> {
            d.deserialize_any(ContextVisitor)
        }
    }

    /// A member name of the body: `context` or any other, read without allocating.
    enum Key {
        Context,
        Other,
    }

    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
            struct KeyVisitor;
            impl Visitor<'_> for KeyVisitor {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a member name")
                }
                fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
                    Ok(if name == "context" {
                        Key::Context
                    } else {
                        Key::Other
                    })
                }
            }
            d.deserialize_identifier(KeyVisitor)
        }
    }
}

fn ofrep_error(
    status: StatusCode,
    key: Option<&str>,
    code: ErrorCode,
    details: String,
) -> Response {
    let mut body = Map::new();
    if let Some(key) = key {
        body.insert("key".into(), json!(key));
    }
    body.insert("errorCode".into(), json!(code.as_str()));
    body.insert("errorDetails".into(), json!(details));
    (status, Json(Value::Object(body))).into_response()
}

/// The reason as OFREP states it: one of OpenFeature's reasons. Some OpenFeature SDKs accept
/// nothing else (the Python OFREP provider fails the evaluation on an unknown reason and hands
/// the caller its default), so `PREREQUISITE_FAILED`, vexil's own, goes out as `DEFAULT`: the
/// flag fell back to its `off` variant.
/// OpenFeature has no `PREREQUISITE_FAILED` reason (providers reject unknown reasons), so OFREP
/// reports it as `DEFAULT` and keeps the exact reason in `metadata.reason`.
fn ofrep_reason(reason: Reason) -> Reason {
    match reason {
        Reason::PrerequisiteFailed => Reason::Default,
        other => other,
    }
}

/// One flag's OFREP evaluation as it goes out. It is serialized straight from the evaluation,
/// without building a `serde_json::Value` first: this is on the path of every evaluation
/// request, and the intermediate value cost a dozen allocations per flag.
#[derive(Serialize)]
#[serde(untagged)]
enum OfrepResult<'a> {
    Success {
        key: &'a str,
        value: Option<&'a Value>,
        reason: Reason,
        variant: Option<&'a str>,
        metadata: OfrepMetadata,
    },
    Failure {
        key: &'a str,
        #[serde(rename = "errorCode")]
        error_code: &'static str,
        #[serde(rename = "errorDetails")]
        error_details: String,
    },
}

/// An evaluation's `metadata`: empty, or vexil's exact reason when OFREP's differs.
#[derive(Serialize)]
struct OfrepMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Reason>,
}

fn ofrep_result<'a>(key: &'a str, ev: &Evaluation<'a>) -> OfrepResult<'a> {
    match ev.error {
        None => {
            let reason = ofrep_reason(ev.reason);
            OfrepResult::Success {
                key,
                value: ev.value,
                reason,
                variant: ev.variant,
                metadata: OfrepMetadata {
                    reason: (reason != ev.reason).then_some(ev.reason),
                },
            }
        }
        Some(e) => OfrepResult::Failure {
            key,
            error_code: e.code().as_str(),
            error_details: e.to_string(),
        },
    }
}

/// OFREP single flag evaluation.
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags/{key}", tag = "ofrep",
    params(("key" = String, Path, description = "Flag key")),
    request_body(content = Object, description = "`{\"context\": {...}}`"),
    responses((status = 200, description = "The evaluation"), (status = 400, description = "Invalid context"),
        (status = 404, description = "FLAG_NOT_FOUND")),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn ofrep_single(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    EnvParam(asked): EnvParam,
    OfrepBody(ctx): OfrepBody,
) -> Result<Response, ApiError> {
    let live = state.live();
    let env = env_for(&live, &caller, asked.as_deref())?;
    let ctx = match ctx {
        Ok(ctx) => ctx,
        Err((code, details)) => {
            return Ok(ofrep_error(
                StatusCode::BAD_REQUEST,
                Some(&key),
                code,
                details,
            ));
        }
    };
    let ev = env.evaluate(&key, &ctx, jiff::Timestamp::now());
    state.metrics().evaluation(&key, ev.reason.as_str());
    Ok(match ev.error {
        None => Json(ofrep_result(&key, &ev)).into_response(),
        Some(e) => {
            let status = match e.code() {
                ErrorCode::FlagNotFound => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            ofrep_error(status, Some(&key), e.code(), e.to_string())
        }
    })
}

/// OFREP bulk evaluation: every flag of the environment, with an `ETag`; `If-None-Match` with
/// the current tag answers 304.
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags", tag = "ofrep",
    request_body(content = Object, description = "`{\"context\": {...}}`"),
    responses((status = 200, description = "Every flag's evaluation"), (status = 304, description = "Not modified"),
        (status = 400, description = "Invalid context")),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn ofrep_bulk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    EnvParam(asked): EnvParam,
    OfrepBody(ctx): OfrepBody,
) -> Result<Response, ApiError> {
    let live = state.live();
    let env = env_for(&live, &caller, asked.as_deref())?;
    let ctx = match ctx {
        Ok(ctx) => ctx,
        Err((code, details)) => {
            return Ok(ofrep_error(StatusCode::BAD_REQUEST, None, code, details));
        }
    };
    let (body, etag) = ofrep_bulk_body(state.metrics(), &env, &ctx, jiff::Timestamp::now())?;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?;
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    Ok((
        StatusCode::OK,
        [
            (header::ETAG, etag_value),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        body,
    )
        .into_response())
}

/// The server-side work of an OFREP bulk answer, without HTTP: evaluates every flag of `env`
/// for `ctx` at `now` (counting each evaluation in `metrics`), serializes the response body and
/// computes its `ETag`. [`ofrep_bulk`] answers with it; it is public so that the benchmark of
/// PRODUCT.md section 6 ("bulk evaluation of 100 flags, server side") measures exactly this.
pub fn ofrep_bulk_body(
    metrics: &Metrics,
    env: &Env<'_>,
    ctx: &Context,
    now: jiff::Timestamp,
) -> Result<(Vec<u8>, String), ApiError> {
    #[derive(Serialize)]
    struct Bulk<'a> {
        flags: Vec<OfrepResult<'a>>,
    }
    let flags: Vec<OfrepResult<'_>> = env
        .evaluate_all(ctx, now)
        .map(|(flag, ev)| {
            metrics.evaluation(flag.key(), ev.reason.as_str());
            ofrep_result(flag.key(), &ev)
        })
        .collect();
    // About 100 bytes a flag: one allocation for most answers.
    let mut body = Vec::with_capacity(16 + 112 * flags.len());
    serde_json::to_writer(&mut body, &Bulk { flags })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    // The first 128 bits of the body's SHA-256, in hex.
    let digest = Sha256::digest(&body);
    let mut etag = String::with_capacity(34);
    etag.push('"');
    for b in &digest[..16] {
        etag.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        etag.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    etag.push('"');
    Ok((body, etag))
}

/// `POST /api/v1/flags/{key}/explain?env=ENV {"context": {...}, "now": "RFC 3339"}`: evaluates a
/// flag as OFREP would and says why, step by step (the web UI's playground). `now` defaults to
/// the server's clock, so a `$now` condition can be tried at any moment.
#[utoipa::path(post, path = "/api/v1/flags/{key}/explain", tag = "flags",
    params(("key" = String, Path, description = "Flag key"),
        ("env" = Option<String>, Query, description = "Environment (default: the first)")),
    request_body(content = Object, description = "`{\"context\": {...}, \"now\": \"2026-06-01T09:00:00Z\"}`; both optional"),
    responses((status = 200, description = "`{\"flag\", \"environment\", \"result\", \"explanation\"}`: the evaluation and the steps that led to it"),
        (status = 400, description = "Invalid body"), (status = 404, description = "No such flag or environment")),
    security(("bearer" = [])))]
pub async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    EnvParam(asked): EnvParam,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let (ctx, now) = explain_request(body)?;
    let live = state.live();
    let env = env_for(&live, &caller, asked.as_deref())?;
    if live.config.flag(&key).is_none() {
        return Err(ApiError::NotFound(format!("no flag `{key}`")));
    }
    let explanation = env.explain(&key, &ctx, now.unwrap_or_else(jiff::Timestamp::now));
    Ok(Json(&explanation).into_response())
}

/// Reads an explain body: the context (with OFREP's limits) and the time, every problem reported
/// at once. No body, or `null` members, mean an empty context and the server's clock.
fn explain_request(body: Value) -> Result<(Context, Option<jiff::Timestamp>), ApiError> {
    let fields = match body {
        Value::Null => Map::new(),
        Value::Object(fields) => fields,
        other => {
            return Err(ApiError::invalid(
                "",
                format!(
                    "the body must be a JSON object like {{\"context\": {{...}}, \"now\": \"2026-06-01T09:00:00Z\"}}, not {}",
                    vexil_engine::json_type_name(&other)
                ),
            ));
        }
    };
    let mut ctx = Context::new();
    let mut now = None;
    let mut details = Vec::new();
    let mut problem = |path: &str, message: String| {
        details.push(Detail {
            path: path.to_owned(),
            message,
        });
    };
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("context" | "now", Value::Null) => {}
            ("context", Value::Object(attributes)) => {
                // The depth of the context object itself, as OFREP counts it.
                let nesting = attributes.values().map(|v| 1 + depth(v)).max().unwrap_or(0);
                if nesting > MAX_CONTEXT_DEPTH {
                    problem(
                        "context",
                        format!("the context nests more than {MAX_CONTEXT_DEPTH} levels deep"),
                    );
                } else {
                    ctx = Context::from(attributes);
                }
            }
            ("context", other) => problem(
                "context",
                format!(
                    "{}, not {}",
                    ContextError::NotAnObject,
                    vexil_engine::json_type_name(&other)
                ),
            ),
            ("now", Value::String(text)) => match text.parse::<jiff::Timestamp>() {
                Ok(t) => now = Some(t),
                Err(_) => problem(
                    "now",
                    format!("`{text}` is not an RFC 3339 timestamp like 2026-06-01T09:00:00Z"),
                ),
            },
            ("now", other) => problem(
                "now",
                format!(
                    "`now` is an RFC 3339 timestamp string like 2026-06-01T09:00:00Z, not {}",
                    vexil_engine::json_type_name(&other)
                ),
            ),
            (other, _) => problem(
                other,
                format!("unknown field `{other}`; the body takes `context` and `now`"),
            ),
        }
    }
    match details.len() {
        0 => Ok((ctx, now)),
        1 => {
            let Detail { path, message } = details.remove(0);
            Err(ApiError::invalid(path, message))
        }
        n => Err(ApiError::Validation {
            message: format!("the request has {n} problems"),
            details,
        }),
    }
}
