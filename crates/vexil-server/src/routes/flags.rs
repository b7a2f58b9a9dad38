//! Flags: the admin API (`/api/v1/flags…`), the kill switch, history and revert, and the simple
//! API's `PUT /flags/{key}` with its shorthands.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use vexil_engine::ValueType;
use vexil_store::{Change, Expected, Record};

use crate::auth::Caller;
use crate::body::{JsonBody, typed};
use crate::error::ApiError;
use crate::state::{AppState, Live, Plan};

/// The fields of a flag that make up its targeting (overridable per environment).
const TARGETING_FIELDS: [&str; 8] = [
    "enabled",
    "prerequisites",
    "targets",
    "rules",
    "serve",
    "rollout",
    "bucket_by",
    "salt",
];

/// `{"key", "version", "updated_at", "updated_by", "definition"}`.
pub fn record_json(r: &Record) -> Value {
    json!({
        "key": r.key,
        "version": r.version,
        "updated_at": r.updated_at,
        "updated_by": r.updated_by,
        "definition": r.definition,
    })
}

/// A record as a response, with `ETag: "VERSION"`.
pub fn record_response(status: StatusCode, r: &Record) -> Response {
    let mut response = (status, Json(record_json(r))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", r.version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// The `X-Vexil-Comment` header.
pub fn comment(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("x-vexil-comment") {
        None => Ok(None),
        Some(v) => {
            // Header bytes are taken as UTF-8, so comments need not be ASCII.
            let s = std::str::from_utf8(v.as_bytes()).map_err(|_| {
                ApiError::invalid("X-Vexil-Comment", "the comment must be UTF-8 text")
            })?;
            if s.len() > 2000 {
                return Err(ApiError::invalid(
                    "X-Vexil-Comment",
                    "the comment is longer than 2000 bytes",
                ));
            }
            Ok(Some(s.to_owned()))
        }
    }
}

/// `If-Match: "VERSION"` → the version a write expects; `If-None-Match: *` → the thing must not
/// exist yet (create only).
pub fn if_match(headers: &HeaderMap) -> Result<Expected, ApiError> {
    if let Some(v) = headers.get(header::IF_NONE_MATCH) {
        if headers.contains_key(header::IF_MATCH) {
            return Err(ApiError::invalid(
                "If-None-Match",
                "send either If-Match or If-None-Match, not both",
            ));
        }
        return if v.as_bytes().trim_ascii() == b"*" {
            Ok(Expected::Absent)
        } else {
            Err(ApiError::invalid(
                "If-None-Match",
                "a write understands only `If-None-Match: *` (create, never replace)",
            ))
        };
    }
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(Expected::Any);
    };
    let s = v.to_str().unwrap_or("").trim();
    if s == "*" {
        return Ok(Expected::Any);
    }
    let bare = s.trim_start_matches("W/").trim_matches('"');
    bare.parse::<u64>().map(Expected::Version).map_err(|_| {
        ApiError::invalid(
            "If-Match",
            format!("`{s}` is not a version ETag like \"3\""),
        )
    })
}

/// Checks a key from the path.
pub fn check_key(key: &str, what: &str) -> Result<(), ApiError> {
    if vexil_engine::is_valid_key(key) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            what,
            format!(
                "invalid {what} `{key}`: use 1 to 128 letters, digits, `_`, `.` or `-`, starting with a letter or digit"
            ),
        ))
    }
}

fn flag_definition(body: Value) -> Result<Value, ApiError> {
    match body {
        Value::Object(_) | Value::Bool(_) => Ok(body),
        Value::Null => Err(ApiError::invalid(
            "",
            "the body is empty; send the flag's definition",
        )),
        other => Err(ApiError::invalid(
            "",
            format!("a flag definition is a JSON object (or true/false), not {other}"),
        )),
    }
}

/// `GET /api/v1/flags`.
#[utoipa::path(get, path = "/api/v1/flags", tag = "flags", responses((status = 200, description = "Every flag")), security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let live = state.live();
    let flags: Vec<Value> = live.snapshot.flags.iter().map(record_json).collect();
    Ok(Json(json!({ "revision": live.revision(), "flags": flags })).into_response())
}

/// `GET /api/v1/flags/{key}`.
#[utoipa::path(get, path = "/api/v1/flags/{key}", tag = "flags", params(("key" = String, Path)),
    responses((status = 200, description = "The flag, with ETag"), (status = 404, description = "No such flag")), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let live = state.live();
    let r = live
        .flag(&key)
        .ok_or_else(|| ApiError::NotFound(format!("no flag `{key}`")))?;
    Ok(record_response(StatusCode::OK, r))
}

/// `PUT /api/v1/flags/{key}`: create or replace a flag; `If-Match` guards against lost updates.
#[utoipa::path(put, path = "/api/v1/flags/{key}", tag = "flags", params(("key" = String, Path)),
    request_body(content = Object, description = "The flag's section-1 JSON"),
    responses((status = 200, description = "Updated"), (status = 201, description = "Created"),
        (status = 400, description = "Invalid definition"), (status = 412, description = "Stale If-Match")),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    check_key(&key, "flag key")?;
    let definition = flag_definition(body)?;
    let expected = if_match(&headers)?;
    put_definition(
        &state,
        &caller,
        &key,
        expected,
        comment(&headers)?,
        move |_| Ok(definition.clone()),
    )
    .await
}

/// Writes a new definition computed from the current one (`None` when the flag is new).
async fn put_definition(
    state: &AppState,
    caller: &Caller,
    key: &str,
    expected: Expected,
    comment: Option<String>,
    compute: impl Fn(Option<&Value>) -> Result<Value, ApiError>,
) -> Result<Response, ApiError> {
    put_with_action(state, caller, key, expected, comment, None, compute).await
}

async fn put_with_action(
    state: &AppState,
    caller: &Caller,
    key: &str,
    expected: Expected,
    comment: Option<String>,
    action: Option<&str>,
    compute: impl Fn(Option<&Value>) -> Result<Value, ApiError>,
) -> Result<Response, ApiError> {
    // Whether the flag did not exist when the write was planned (a re-created flag continues
    // its version numbering, so the version alone does not tell).
    let created = std::sync::atomic::AtomicBool::new(false);
    let (_, live) = state
        .write(caller.actor(), comment, |live: &Live| {
            let current = live.flag(key);
            check_expected("flag", current, expected, key)?;
            created.store(current.is_none(), std::sync::atomic::Ordering::Relaxed);
            let definition = compute(current.map(|r| &r.definition))?;
            let action = action.map_or_else(
                || {
                    if current.is_some() {
                        "flag.update"
                    } else {
                        "flag.create"
                    }
                    .to_owned()
                },
                str::to_owned,
            );
            Ok(Plan {
                action,
                target: format!("flag:{key}"),
                before: current.map(|r| r.definition.clone()),
                after: Some(definition.clone()),
                // Writing what is already there changes nothing: no version, no audit event.
                changes: if current.is_some_and(|r| r.definition == definition) {
                    Vec::new()
                } else {
                    vec![Change::PutFlag {
                        key: key.to_owned(),
                        definition,
                        expected,
                    }]
                },
                strip: format!("flags.{key}"),
            })
        })
        .await?;
    let r = live
        .flag(key)
        .ok_or_else(|| ApiError::Internal(format!("flag {key} missing after its write")))?;
    let status = if created.load(std::sync::atomic::Ordering::Relaxed) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(record_response(status, r))
}

/// Checks `If-Match` against the in-memory state first, so a stale write fails before it is
/// validated (the store checks again inside its transaction).
pub fn check_expected(
    what: &str,
    current: Option<&Record>,
    expected: Expected,
    key: &str,
) -> Result<(), ApiError> {
    match (expected, current) {
        (Expected::Version(v), Some(r)) if r.version != v => {
            Err(ApiError::PreconditionFailed(format!(
                "{what} `{key}` is at version {}, not {v}: someone changed it meanwhile; fetch it again and retry",
                r.version
            )))
        }
        (Expected::Version(v), None) => Err(ApiError::PreconditionFailed(format!(
            "{what} `{key}` does not exist (If-Match named version {v})"
        ))),
        (Expected::Absent, Some(r)) => Err(ApiError::PreconditionFailed(format!(
            "{what} `{key}` already exists (version {}, changed by {}); pick another name",
            r.version, r.updated_by
        ))),
        _ => Ok(()),
    }
}

/// `DELETE /api/v1/flags/{key}`.
#[utoipa::path(delete, path = "/api/v1/flags/{key}", tag = "flags", params(("key" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such flag"), (status = 412, description = "Stale If-Match")),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let expected = if_match(&headers)?;
    state
        .write(caller.actor(), comment(&headers)?, |live: &Live| {
            let current = live
                .flag(&key)
                .ok_or_else(|| ApiError::NotFound(format!("no flag `{key}`")))?;
            check_expected("flag", Some(current), expected, &key)?;
            Ok(Plan {
                action: "flag.delete".into(),
                target: format!("flag:{key}"),
                before: Some(current.definition.clone()),
                after: None,
                changes: vec![Change::DeleteFlag {
                    key: key.clone(),
                    expected,
                }],
                strip: String::new(),
            })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/flags/{key}/environments/{env}/enable`: the kill switch, back on.
#[utoipa::path(post, path = "/api/v1/flags/{key}/environments/{env}/enable", tag = "flags",
    params(("key" = String, Path), ("env" = String, Path)), responses((status = 200, description = "Enabled")), security(("bearer" = [])))]
pub async fn enable(
    state: State<AppState>,
    caller: Caller,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    switch(state, caller, path, headers, true).await
}

/// `POST /api/v1/flags/{key}/environments/{env}/disable`: the kill switch. The flag serves its
/// `off` variant in that environment; its targeting is kept for when it is enabled again.
#[utoipa::path(post, path = "/api/v1/flags/{key}/environments/{env}/disable", tag = "flags",
    params(("key" = String, Path), ("env" = String, Path)), responses((status = 200, description = "Disabled")), security(("bearer" = [])))]
pub async fn disable(
    state: State<AppState>,
    caller: Caller,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    switch(state, caller, path, headers, false).await
}

async fn switch(
    State(state): State<AppState>,
    caller: Caller,
    Path((key, env)): Path<(String, String)>,
    headers: HeaderMap,
    enabled: bool,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let live = state.live();
    if live.flag(&key).is_none() {
        return Err(ApiError::NotFound(format!("no flag `{key}`")));
    }
    if !live.snapshot.environments.contains(&env) {
        return Err(ApiError::NotFound(format!("no environment `{env}`")));
    }
    let action = if enabled {
        "flag.enable"
    } else {
        "flag.disable"
    };
    put_with_action(
        &state,
        &caller,
        &key,
        if_match(&headers)?,
        comment(&headers)?,
        Some(action),
        |current| {
            let mut def = normalize(current.cloned().unwrap_or(Value::Null));
            set_enabled(&mut def, Some(&env), enabled);
            Ok(Value::Object(def))
        },
    )
    .await
}

/// A flag definition as an object (the `true`/`false` shorthands expanded).
fn normalize(def: Value) -> Map<String, Value> {
    match def {
        Value::Object(map) => map,
        Value::Bool(b) => {
            let mut map = Map::new();
            map.insert("serve".into(), json!(if b { "on" } else { "off" }));
            map
        }
        _ => Map::new(),
    }
}

fn flag_level_targeting(def: &Map<String, Value>) -> Map<String, Value> {
    TARGETING_FIELDS
        .iter()
        .filter_map(|f| def.get(*f).map(|v| ((*f).to_owned(), v.clone())))
        .collect()
}

/// The override of `env` as an object (a variant-name or boolean shorthand expanded; an absent
/// override copied from the flag level, which it then replaces).
fn env_override(def: &Map<String, Value>, env: &str) -> Map<String, Value> {
    match def.get("environments").and_then(|e| e.get(env)) {
        Some(Value::Object(o)) => o.clone(),
        Some(Value::String(variant)) => {
            let mut o = Map::new();
            o.insert("serve".into(), json!(variant));
            o
        }
        Some(Value::Bool(b)) => {
            let mut o = Map::new();
            o.insert("serve".into(), json!(b));
            o
        }
        _ => flag_level_targeting(def),
    }
}

fn set_override(def: &mut Map<String, Value>, env: &str, value: Value) {
    let envs = def
        .entry("environments")
        .or_insert_with(|| Value::Object(Map::new()));
    if !envs.is_object() {
        *envs = Value::Object(Map::new());
    }
    if let Some(map) = envs.as_object_mut() {
        map.insert(env.to_owned(), value);
    }
}

fn remove_override(def: &mut Map<String, Value>, env: &str) {
    if let Some(envs) = def.get_mut("environments").and_then(Value::as_object_mut) {
        envs.remove(env);
        if envs.is_empty() {
            def.remove("environments");
        }
    }
}

/// Switches `env` on with the flag level's targeting, when the flag level itself is off.
fn on_with_flag_level_targeting(def: &mut Map<String, Value>, env: &str) {
    let mut o = flag_level_targeting(def);
    o.remove("enabled");
    set_override(def, env, Value::Object(o));
}

/// Turns a flag on or off in one environment (or, with `None`, at the flag level and in every
/// override), keeping its targeting.
fn set_enabled(def: &mut Map<String, Value>, env: Option<&str>, enabled: bool) {
    let apply = |t: &mut Map<String, Value>| {
        if enabled {
            t.remove("enabled");
        } else {
            t.insert("enabled".into(), json!(false));
        }
    };
    match env {
        Some(env) => {
            // What an environment switched off without an override of its own gets: only the
            // switch. Its targeting does not matter while it is off, and switching it on again
            // removes it, so the environment follows the flag level as before, including any
            // change made to the flag level meanwhile.
            let marker = json!({ "enabled": false });
            let current = def.get("environments").and_then(|e| e.get(env)).cloned();
            let flag_level_on = def.get("enabled") != Some(&json!(false));
            match (current, enabled) {
                (None, false) => set_override(def, env, marker),
                (None, true) if flag_level_on => {} // Already on there.
                (Some(o), true) if o == marker => {
                    remove_override(def, env);
                    if !flag_level_on {
                        on_with_flag_level_targeting(def, env);
                    }
                }
                // On here while the flag level is off: the flag level's targeting, switched on.
                (None, true) => on_with_flag_level_targeting(def, env),
                (Some(_), _) => {
                    let mut o = env_override(def, env);
                    apply(&mut o);
                    if enabled && flag_level_on && o == flag_level_targeting(def) {
                        // A copy of the flag level (as earlier versions of the kill switch
                        // made): drop it, so later changes at the flag level reach it again.
                        remove_override(def, env);
                    } else {
                        set_override(def, env, Value::Object(o));
                    }
                }
            }
        }
        None => {
            apply(def);
            let envs: Vec<String> = def
                .get("environments")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for env in envs {
                let mut o = env_override(def, &env);
                apply(&mut o);
                set_override(def, &env, Value::Object(o));
            }
        }
    }
}

/// `GET /api/v1/flags/{key}/history`.
#[utoipa::path(get, path = "/api/v1/flags/{key}/history", tag = "flags", params(("key" = String, Path)),
    responses((status = 200, description = "Every version, oldest first")), security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let versions = state.store().flag_history(&key).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no flag `{key}` has ever existed"
        )));
    }
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "definition": v.definition,
                "deleted": v.definition.is_none(),
                "updated_at": v.updated_at,
                "updated_by": v.updated_by,
                "revision": v.revision,
            })
        })
        .collect();
    Ok(Json(json!({ "key": key, "versions": versions })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevertBody {
    version: u64,
}

/// `POST /api/v1/flags/{key}/revert {"version": N}`: writes a new version equal to version N.
#[utoipa::path(post, path = "/api/v1/flags/{key}/revert", tag = "flags", params(("key" = String, Path)),
    request_body(content = Object, description = "`{\"version\": N}`"),
    responses((status = 200, description = "The new version"), (status = 404, description = "No such version")), security(("bearer" = [])))]
pub async fn revert(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let RevertBody { version } = typed(body)?;
    let versions = state.store().flag_history(&key).await?;
    let mut expected = if_match(&headers)?;
    // An archived (deleted) flag has no current version to name in `If-Match`; its deletion's
    // version stands in, so two people restoring it at once cannot both succeed.
    if let (Expected::Version(v), Some(last)) = (expected, versions.last()) {
        if last.version == v && last.definition.is_none() {
            expected = Expected::Absent;
        }
    }
    let target = versions
        .into_iter()
        .find(|v| v.version == version)
        .ok_or_else(|| ApiError::NotFound(format!("flag `{key}` has no version {version}")))?;
    let Some(definition) = target.definition else {
        return Err(ApiError::invalid(
            "version",
            format!("version {version} of `{key}` is its deletion; revert to a version before it"),
        ));
    };
    put_with_action(
        &state,
        &caller,
        &key,
        expected,
        comment(&headers)?,
        Some("flag.revert"),
        move |_| Ok(definition.clone()),
    )
    .await
}

/// `PUT /flags/{key}[?env=ENV]`: the simple API. Takes the flag's section-1 JSON, or the
/// shorthands `{"enabled": true}` (on for everyone), `{"enabled": false}` (disabled, targeting
/// kept) and `{"percentage": N}` (a boolean rollout); with `env` a shorthand changes that
/// environment only.
#[utoipa::path(put, path = "/flags/{key}", tag = "simple", params(("key" = String, Path), ("env" = Option<String>, Query)),
    request_body(content = Object, description = "`{\"enabled\": bool}`, `{\"percentage\": N}` or a flag definition"),
    responses((status = 200, description = "Updated"), (status = 201, description = "Created")), security(("bearer" = [])))]
pub async fn simple_put(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    check_key(&key, "flag key")?;
    let env = params.get("env").cloned();
    let live = state.live();
    if let Some(env) = &env
        && !live.snapshot.environments.contains(env)
    {
        return Err(ApiError::NotFound(format!("no environment `{env}`")));
    }
    let shorthand = match &body {
        Value::Object(m)
            if m.len() == 1 && (m.contains_key("enabled") || m.contains_key("percentage")) =>
        {
            Some(m.clone())
        }
        _ => None,
    };
    let expected = if_match(&headers)?;
    let comment = comment(&headers)?;
    let Some(short) = shorthand else {
        if env.is_some() {
            return Err(ApiError::invalid(
                "env",
                "`env` goes with the shorthands {\"enabled\": …} and {\"percentage\": …}; to override one environment in a full definition, use its `environments` field",
            ));
        }
        let definition = flag_definition(body)?;
        return put_definition(&state, &caller, &key, expected, comment, move |_| {
            Ok(definition.clone())
        })
        .await;
    };
    if let Some(flag) = live.config.flag(&key)
        && flag.value_type() != ValueType::Boolean
        && short.get("enabled") != Some(&json!(false))
    {
        return Err(ApiError::invalid(
            "",
            format!(
                "`{key}` is a {} flag; the shorthands {{\"enabled\": true}} and {{\"percentage\": N}} are for boolean flags",
                flag.value_type().as_str()
            ),
        ));
    }
    let env = env.as_deref();
    put_definition(&state, &caller, &key, expected, comment, |current| {
        let mut def = normalize(current.cloned().unwrap_or(Value::Null));
        if let Some(enabled) = short.get("enabled") {
            match enabled {
                Value::Bool(true) => on_for_everyone(&mut def, env),
                Value::Bool(false) => set_enabled(&mut def, env, false),
                _ => return Err(ApiError::invalid("enabled", "`enabled` is true or false")),
            }
        } else if let Some(p) = short.get("percentage") {
            let Some(p) = p.as_f64().filter(|p| (0.0..=100.0).contains(p)) else {
                return Err(ApiError::invalid(
                    "percentage",
                    "`percentage` is a number from 0 to 100",
                ));
            };
            set_percentage(&mut def, env, p);
        }
        Ok(Value::Object(def))
    })
    .await
}

/// `{"enabled": true}`: everyone gets `on` (in `env`, or everywhere).
fn on_for_everyone(def: &mut Map<String, Value>, env: Option<&str>) {
    match env {
        Some(env) => set_override(def, env, json!("on")),
        None => {
            for f in TARGETING_FIELDS {
                def.remove(f);
            }
            def.remove("environments");
            def.insert("serve".into(), json!("on"));
        }
    }
}

/// `{"percentage": N}`: the default becomes a boolean rollout of N% (rules and targets stay).
fn set_percentage(def: &mut Map<String, Value>, env: Option<&str>, p: f64) {
    let apply = |t: &mut Map<String, Value>| {
        t.remove("serve");
        t.remove("enabled");
        // Whole percentages are written as integers, as a person would write them.
        let value = if p.fract() == 0.0 {
            json!(p as u64)
        } else {
            json!(p)
        };
        t.insert("rollout".into(), value);
    };
    match env {
        Some(env) => {
            let mut o = env_override(def, env);
            apply(&mut o);
            set_override(def, env, Value::Object(o));
        }
        None => apply(def),
    }
}
