//! The rest of the admin API: segments, environments, keys, the audit log, export and import.

use std::collections::{BTreeSet, HashMap};

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use vexil_store::{ApiKey, AuditQuery, Change, Expected, KeyKind};

use super::flags::{check_expected, check_key, comment, if_match, record_json, record_response};
use crate::auth::{Caller, hash_secret, new_secret, random_hex};
use crate::body::{IMPORT_LIMIT, JsonBody, parse_json, read_body, typed};
use crate::error::ApiError;
use crate::state::{AppState, Live, Plan, Source};

// ---- Segments ----

/// `GET /api/v1/segments`.
#[utoipa::path(get, path = "/api/v1/segments", tag = "segments", responses((status = 200, description = "Every segment")), security(("bearer" = [])))]
pub async fn segments_list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let live = state.live();
    let segments: Vec<Value> = live.snapshot.segments.iter().map(segment_json).collect();
    Ok(Json(json!({ "segments": segments })).into_response())
}

fn segment_json(r: &vexil_store::Record) -> Value {
    let mut v = record_json(r);
    if let Some(o) = v.as_object_mut()
        && let Some(key) = o.remove("key")
    {
        o.insert("name".into(), key);
    }
    v
}

/// `GET /api/v1/segments/{name}`.
#[utoipa::path(get, path = "/api/v1/segments/{name}", tag = "segments", params(("name" = String, Path)),
    responses((status = 200, description = "The segment"), (status = 404, description = "No such segment")), security(("bearer" = [])))]
pub async fn segment_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let live = state.live();
    let r = live
        .segment(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no segment `{name}`")))?;
    let mut response = record_response(StatusCode::OK, r);
    *response.body_mut() = axum::body::Body::from(segment_json(r).to_string());
    Ok(response)
}

/// `PUT /api/v1/segments/{name}`: create or replace a segment (`If-Match` honoured).
#[utoipa::path(put, path = "/api/v1/segments/{name}", tag = "segments", params(("name" = String, Path)),
    request_body(content = Object, description = "The segment's section-1 JSON"),
    responses((status = 200, description = "Updated"), (status = 201, description = "Created"), (status = 412, description = "Stale If-Match")),
    security(("bearer" = [])))]
pub async fn segment_put(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    check_key(&name, "segment name")?;
    if !body.is_object() {
        return Err(ApiError::invalid(
            "",
            "a segment definition is a JSON object",
        ));
    }
    let expected = if_match(&headers)?;
    // Whether the segment did not exist (a re-created one continues its version numbering).
    let created = std::sync::atomic::AtomicBool::new(false);
    let (_, live) = state
        .write(caller.actor(), comment(&headers)?, |live: &Live| {
            let current = live.segment(&name);
            check_expected("segment", current, expected, &name)?;
            created.store(current.is_none(), std::sync::atomic::Ordering::Relaxed);
            Ok(Plan {
                action: if current.is_some() {
                    "segment.update"
                } else {
                    "segment.create"
                }
                .into(),
                target: format!("segment:{name}"),
                before: current.map(|r| r.definition.clone()),
                after: Some(body.clone()),
                changes: vec![Change::PutSegment {
                    name: name.clone(),
                    definition: body.clone(),
                    expected,
                }],
                strip: format!("segments.{name}"),
            })
        })
        .await?;
    let r = live
        .segment(&name)
        .ok_or_else(|| ApiError::Internal("segment missing after its write".into()))?;
    let status = if created.load(std::sync::atomic::Ordering::Relaxed) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = record_response(status, r);
    *response.body_mut() = axum::body::Body::from(segment_json(r).to_string());
    Ok(response)
}

/// `DELETE /api/v1/segments/{name}`. Refused while a flag uses the segment.
#[utoipa::path(delete, path = "/api/v1/segments/{name}", tag = "segments", params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 400, description = "Still used by a flag")), security(("bearer" = [])))]
pub async fn segment_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let expected = if_match(&headers)?;
    state
        .write(caller.actor(), comment(&headers)?, |live: &Live| {
            let current = live
                .segment(&name)
                .ok_or_else(|| ApiError::NotFound(format!("no segment `{name}`")))?;
            check_expected("segment", Some(current), expected, &name)?;
            // (A served file is read-only whatever uses the segment: `write` says so.)
            let users = match state.source() {
                Source::File(_) => Vec::new(),
                Source::Store => segment_users(live, &name),
            };
            if !users.is_empty() {
                return Err(ApiError::Conflict(
                    "segment_in_use",
                    format!(
                        "segment `{name}` is still used by {}; remove those conditions first",
                        users.join(", ")
                    ),
                ));
            }
            Ok(Plan {
                action: "segment.delete".into(),
                target: format!("segment:{name}"),
                before: Some(current.definition.clone()),
                after: None,
                changes: vec![Change::DeleteSegment {
                    name: name.clone(),
                    expected,
                }],
                strip: String::new(),
            })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The flags and segments with a `{segment: NAME}` condition (in a rule, an environment's
/// rule, or a segment's `when`, nested in `not`/`any`/`all` or not), as `flag `KEY``.
fn segment_users(live: &Live, name: &str) -> Vec<String> {
    fn condition(c: &Value, name: &str) -> bool {
        c.get("segment").and_then(Value::as_str) == Some(name)
            || c.get("not").is_some_and(|c| condition(c, name))
            || ["any", "all"].iter().any(|k| conditions(c.get(*k), name))
    }
    fn conditions(list: Option<&Value>, name: &str) -> bool {
        list.and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|c| condition(c, name)))
    }
    fn targeting(t: &Value, name: &str) -> bool {
        t.get("rules")
            .and_then(Value::as_array)
            .is_some_and(|rules| rules.iter().any(|r| conditions(r.get("when"), name)))
    }
    let flag_uses = |def: &Value| {
        targeting(def, name)
            || def
                .get("environments")
                .and_then(Value::as_object)
                .is_some_and(|envs| envs.values().any(|t| targeting(t, name)))
    };
    let flags = live
        .snapshot
        .flags
        .iter()
        .filter(|r| flag_uses(&r.definition))
        .map(|r| format!("flag `{}`", r.key));
    let segments = live
        .snapshot
        .segments
        .iter()
        .filter(|r| r.key != name && conditions(r.definition.get("when"), name))
        .map(|r| format!("segment `{}`", r.key));
    flags.chain(segments).collect()
}

// ---- Environments ----

/// `GET /api/v1/environments`.
#[utoipa::path(get, path = "/api/v1/environments", tag = "environments", responses((status = 200, description = "Every environment, in order")), security(("bearer" = [])))]
pub async fn environments_list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let live = state.live();
    let envs: Vec<Value> = live
        .snapshot
        .environments
        .iter()
        .map(|e| json!({ "name": e }))
        .collect();
    Ok(Json(json!({ "environments": envs })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEnvironment {
    name: String,
}

/// `POST /api/v1/environments {"name"}`.
#[utoipa::path(post, path = "/api/v1/environments", tag = "environments", request_body(content = Object, description = "`{\"name\": \"qa\"}`"),
    responses((status = 201, description = "Created"), (status = 409, description = "Exists")), security(("bearer" = [])))]
pub async fn environment_create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let NewEnvironment { name } = typed(body)?;
    check_key(&name, "environment name")?;
    state
        .write(caller.actor(), comment(&headers)?, |live: &Live| {
            if live.snapshot.environments.contains(&name) {
                return Err(ApiError::Conflict(
                    "already_exists",
                    format!("environment `{name}` already exists"),
                ));
            }
            Ok(Plan {
                action: "environment.create".into(),
                target: format!("environment:{name}"),
                before: None,
                after: Some(json!({ "name": name })),
                changes: vec![Change::AddEnvironment { name: name.clone() }],
                strip: String::new(),
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "name": name }))).into_response())
}

// ---- Keys ----

fn key_json(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "kind": k.kind,
        "environment": k.environment,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    })
}

/// `GET /api/v1/keys`: every live key (never secrets or hashes).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", responses((status = 200, description = "Every live key")), security(("bearer" = [])))]
pub async fn keys_list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let keys = state.store().keys().await?;
    let keys: Vec<Value> = keys
        .iter()
        .filter(|k| k.revoked_at.is_none())
        .map(key_json)
        .collect();
    Ok(Json(json!({ "keys": keys })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    kind: String,
    #[serde(default)]
    environment: Option<String>,
}

/// Creates a key and returns it with its secret, which is shown only here.
pub async fn create_key(
    state: &AppState,
    actor: &str,
    comment: Option<String>,
    name: &str,
    kind: KeyKind,
    environment: Option<String>,
    secret: Option<String>,
) -> Result<(ApiKey, String), ApiError> {
    let secret = match secret {
        Some(s) => s,
        None => new_secret(kind)?,
    };
    let key = ApiKey {
        id: random_hex(8)?,
        name: name.to_owned(),
        kind,
        environment,
        secret_hash: hash_secret(&secret),
        created_at: jiff::Timestamp::now(),
        revoked_at: None,
    };
    let created = key.clone();
    state
        .write(actor, comment, |_: &Live| {
            Ok(Plan {
                action: "key.create".into(),
                target: format!("key:{}", created.id),
                before: None,
                after: Some(key_json(&created)),
                changes: vec![Change::CreateKey(created.clone())],
                strip: String::new(),
            })
        })
        .await?;
    Ok((key, secret))
}

/// `POST /api/v1/keys {"name", "kind", "environment"}` → 201 with the secret, shown once.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body(content = Object, description = "`{\"name\", \"kind\": \"admin\"|\"server\"|\"client\", \"environment\"}`"),
    responses((status = 201, description = "The key, with its secret (shown once)")), security(("bearer" = [])))]
pub async fn key_create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let NewKey {
        name,
        kind,
        environment,
    } = typed(body)?;
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::invalid(
            "name",
            "a key needs a name of 1 to 200 characters",
        ));
    }
    let kind = KeyKind::parse(&kind).ok_or_else(|| {
        ApiError::invalid(
            "kind",
            format!("unknown key kind `{kind}`; expected admin, server or client"),
        )
    })?;
    let live = state.live();
    let environment = match (kind, environment) {
        (KeyKind::Admin, None) => None,
        (KeyKind::Admin, Some(_)) => {
            return Err(ApiError::invalid(
                "environment",
                "admin keys reach every environment; leave `environment` out",
            ));
        }
        (_, None) => {
            return Err(ApiError::invalid(
                "environment",
                format!("a {kind} key is scoped to one environment; name it in `environment`"),
            ));
        }
        (_, Some(env)) => {
            if !live.snapshot.environments.contains(&env) {
                return Err(ApiError::invalid(
                    "environment",
                    format!("no environment `{env}`"),
                ));
            }
            Some(env)
        }
    };
    let (key, secret) = create_key(
        &state,
        caller.actor(),
        comment(&headers)?,
        &name,
        kind,
        environment,
        None,
    )
    .await?;
    let mut body = key_json(&key);
    if let Some(o) = body.as_object_mut() {
        o.insert("secret".into(), json!(secret));
        o.remove("revoked_at");
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /api/v1/keys/{id}`: revokes a key at once. The last admin key cannot be revoked.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such key"), (status = 409, description = "The last admin key")),
    security(("bearer" = [])))]
pub async fn key_revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    // The checks run inside the write, under its lock, so two revocations cannot both pass
    // the last-admin check.
    let writer = state.clone();
    state
        .write(caller.actor(), comment(&headers)?, |_: &Live| {
            let keys = writer.keys();
            let live_keys: Vec<&ApiKey> = keys.iter().filter(|k| k.revoked_at.is_none()).collect();
            let Some(key) = live_keys.iter().find(|k| k.id == id) else {
                return Err(ApiError::NotFound(format!("no live key with id `{id}`")));
            };
            let admins = live_keys
                .iter()
                .filter(|k| k.kind == KeyKind::Admin)
                .count();
            if key.kind == KeyKind::Admin && admins == 1 {
                return Err(ApiError::Conflict(
                    "last_admin_key",
                    "this is the last admin key; create another before revoking it".into(),
                ));
            }
            Ok(Plan {
                action: "key.revoke".into(),
                target: format!("key:{id}"),
                before: Some(key_json(key)),
                after: None,
                changes: vec![Change::RevokeKey { id: id.clone() }],
                strip: String::new(),
            })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Audit ----

/// `GET /api/v1/audit?flag=&since=&limit=`: newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(("flag" = Option<String>, Query, description = "Only this flag's events"),
        ("since" = Option<String>, Query, description = "RFC 3339; only events at or after"),
        ("limit" = Option<usize>, Query, description = "At most this many (default 100, at most 1000)")),
    responses((status = 200, description = "Audit events, newest first")), security(("bearer" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    for k in params.keys() {
        if !matches!(k.as_str(), "flag" | "since" | "limit") {
            return Err(ApiError::invalid(
                k.clone(),
                format!("unknown query parameter `{k}`; expected flag, since or limit"),
            ));
        }
    }
    let since = match params.get("since") {
        None => None,
        Some(s) => Some(s.parse::<jiff::Timestamp>().map_err(|_| {
            ApiError::invalid(
                "since",
                format!("`{s}` is not an RFC 3339 timestamp like 2026-01-01T00:00:00Z"),
            )
        })?),
    };
    let limit = match params.get("limit") {
        None => 100,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "`limit` is a number from 1 to 1000"))?,
    };
    let events = state
        .store()
        .audit(&AuditQuery {
            flag: params.get("flag").cloned(),
            since,
            limit,
        })
        .await?;
    Ok(Json(json!({ "events": events })).into_response())
}

// ---- Export and import ----

/// `GET /api/v1/export`: the whole configuration as a section-1 document.
#[utoipa::path(get, path = "/api/v1/export", tag = "config", responses((status = 200, description = "The section-1 document")), security(("bearer" = [])))]
pub async fn export(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_admin()?;
    Ok(Json(state.live().document()).into_response())
}

/// `POST /api/v1/import[?dry_run=true]`: replaces the configuration with a section-1 document
/// (JSON, or YAML with a YAML content type), all or nothing, and reports the diff. Flags and
/// segments absent from the document are deleted; environments it names are added (none are
/// removed).
#[utoipa::path(post, path = "/api/v1/import", tag = "config",
    params(("dry_run" = Option<bool>, Query, description = "Validate and report the diff without writing")),
    request_body(content = Object, description = "A section-1 document"),
    responses((status = 200, description = "The diff (and the new revision unless dry_run)"), (status = 400, description = "Invalid document")),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let dry_run = match params.get("dry_run").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "dry_run",
                format!("`dry_run` is true or false, not `{other}`"),
            ));
        }
    };
    let headers = req.headers().clone();
    let is_yaml = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("yaml"));
    let bytes = read_body(req, IMPORT_LIMIT, true).await?;
    let doc = if is_yaml {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::BadRequest("invalid_yaml", "the body is not UTF-8".into()))?;
        vexil_engine::parse_text(text)
            .map_err(|d| ApiError::from_diagnostics(&[d], ""))?
            .to_json()
    } else {
        parse_json(&bytes)?
    };
    // Validate the document on its own first, for messages about what was sent.
    vexil_engine::Config::from_json(&doc)
        .map_err(|e| ApiError::from_diagnostics(&e.diagnostics, ""))?;
    let Value::Object(mut doc) = doc else {
        return Err(ApiError::invalid("", "the document must be a mapping"));
    };
    let envs: Vec<String> = match doc.remove("environments") {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let segments = match doc.remove("segments") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let flags = match doc.remove("flags") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let plan = |live: &Live| -> Result<(Plan, Value), ApiError> {
        let mut changes = Vec::new();
        let added_envs: Vec<&String> = envs
            .iter()
            .filter(|e| !live.snapshot.environments.contains(e))
            .collect();
        for e in &added_envs {
            changes.push(Change::AddEnvironment { name: (*e).clone() });
        }
        let seg_diff = diff(
            live.snapshot
                .segments
                .iter()
                .map(|r| (&r.key, &r.definition)),
            &segments,
        );
        let flag_diff = diff(
            live.snapshot.flags.iter().map(|r| (&r.key, &r.definition)),
            &flags,
        );
        // Flags are removed before segments (a removed flag may use a removed segment), and
        // segments are written before flags (a new flag may use a new segment).
        for k in &flag_diff.removed {
            changes.push(Change::DeleteFlag {
                key: k.clone(),
                expected: Expected::Any,
            });
        }
        for k in &seg_diff.removed {
            changes.push(Change::DeleteSegment {
                name: k.clone(),
                expected: Expected::Any,
            });
        }
        for k in seg_diff.added.iter().chain(&seg_diff.changed) {
            changes.push(Change::PutSegment {
                name: k.clone(),
                definition: segments[k].clone(),
                expected: Expected::Any,
            });
        }
        for k in flag_diff.added.iter().chain(&flag_diff.changed) {
            changes.push(Change::PutFlag {
                key: k.clone(),
                definition: flags[k].clone(),
                expected: Expected::Any,
            });
        }
        let report = json!({
            "environments": { "added": added_envs },
            "segments": seg_diff.to_json(),
            "flags": flag_diff.to_json(),
        });
        Ok((
            Plan {
                action: "import".into(),
                target: "config".into(),
                before: Some(live.document()),
                after: None,
                changes,
                strip: String::new(),
            },
            report,
        ))
    };
    if dry_run {
        let live = state.live();
        let (p, report) = plan(&live)?;
        let provisional = crate::state::apply(&live.snapshot, &p.changes, caller.actor(), None);
        vexil_engine::Config::from_json(&crate::state::document(&provisional))
            .map_err(|e| ApiError::from_diagnostics(&e.diagnostics, ""))?;
        return Ok(Json(json!({ "dry_run": true, "diff": report })).into_response());
    }
    let report = std::sync::Mutex::new(Value::Null);
    let (committed, live) = state
        .write(caller.actor(), comment(&headers)?, |live: &Live| {
            let (mut p, r) = plan(live)?;
            let provisional = crate::state::apply(&live.snapshot, &p.changes, caller.actor(), None);
            p.after = Some(crate::state::document(&provisional));
            if let Ok(mut slot) = report.lock() {
                *slot = r;
            }
            Ok(p)
        })
        .await?;
    let report = report.into_inner().unwrap_or(Value::Null);
    Ok(Json(json!({
        "dry_run": false,
        "revision": committed.revision.max(live.revision()),
        "diff": report,
    }))
    .into_response())
}

struct Diff {
    added: Vec<String>,
    changed: Vec<String>,
    removed: Vec<String>,
    unchanged: usize,
}

impl Diff {
    fn to_json(&self) -> Value {
        json!({
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
        })
    }
}

fn diff<'a>(
    current: impl Iterator<Item = (&'a String, &'a Value)>,
    next: &Map<String, Value>,
) -> Diff {
    let current: HashMap<&String, &Value> = current.collect();
    let mut d = Diff {
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
        unchanged: 0,
    };
    for (k, v) in next {
        match current.get(k) {
            None => d.added.push(k.clone()),
            Some(old) if *old != v => d.changed.push(k.clone()),
            Some(_) => d.unchanged += 1,
        }
    }
    let next_keys: BTreeSet<&String> = next.keys().collect();
    let mut removed: Vec<String> = current
        .keys()
        .filter(|k| !next_keys.contains(*k))
        .map(|k| (*k).clone())
        .collect();
    removed.sort();
    d.removed = removed;
    d
}
