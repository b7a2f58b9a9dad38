//! The sync API for SDKs that evaluate locally: `GET /sdk/v1/flags` and the server-sent-event
//! stream `GET /sdk/v1/stream`. The protocol is documented in `docs/sync-protocol.md`.
//!
//! Every commit that touches flags or segments is published to a [`Hub`]: a broadcast channel
//! (writers never wait for readers) and a bounded buffer of recent events for clients that
//! resume with `Last-Event-ID`. A stream client that falls more than the channel's capacity
//! behind is disconnected; it reconnects, resumes or resyncs, and never slows anyone else.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use vexil_store::Change;

use crate::auth::{Caller, hex};
use crate::error::ApiError;
use crate::state::{AppState, Live};

/// How many recent events are kept for `Last-Event-ID` resumption.
const RECENT: usize = 1024;
/// How far a stream client may fall behind before it is disconnected.
const CHANNEL: usize = 256;
/// How long a stream request waits for this instance to catch up with the database when the
/// client resumes after a revision the instance has not applied yet.
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

/// The fields of a flag that make up its targeting (replaced by an environment's override).
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

/// One published change.
#[derive(Debug)]
pub struct Event {
    /// The configuration revision after the change.
    pub revision: u64,
    kind: Kind,
    /// The serialized `data` of this event, per environment, made once for all clients.
    cache: Mutex<HashMap<String, Arc<str>>>,
}

#[derive(Debug)]
enum Kind {
    /// Flags and segments changed (`None`: deleted).
    Patch {
        flags: Vec<(String, Option<Value>)>,
        segments: Vec<(String, Option<Value>)>,
    },
    /// The configuration changed in ways not described by a patch: clients get the full state.
    Reset,
}

/// The publication point of changes.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
    recent: Mutex<Recent>,
    heartbeat: Duration,
    /// Set to `true` when the server shuts down: every stream ends.
    closing: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug)]
struct Recent {
    events: VecDeque<Arc<Event>>,
    /// Clients at this revision or later can resume from `events`: every published change
    /// after it is in the buffer.
    floor: u64,
}

impl Hub {
    /// A hub for a configuration at `revision`, whose streams send a heartbeat every
    /// `heartbeat`.
    pub fn new(revision: u64, heartbeat: Duration) -> Hub {
        let (tx, _) = broadcast::channel(CHANNEL);
        Hub {
            tx,
            recent: Mutex::new(Recent {
                events: VecDeque::with_capacity(RECENT),
                floor: revision,
            }),
            heartbeat,
            closing: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Ends every stream (the server is shutting down; clients reconnect elsewhere or later).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    fn publish(&self, event: Event) {
        let event = Arc::new(event);
        if let Ok(mut recent) = self.recent.lock() {
            if matches!(event.kind, Kind::Reset) {
                // Nothing before a reset can be resumed across it.
                recent.events.clear();
                recent.floor = event.revision;
            } else {
                if recent.events.len() == RECENT
                    && let Some(evicted) = recent.events.pop_front()
                {
                    recent.floor = evicted.revision;
                }
                recent.events.push_back(event.clone());
            }
        }
        // No receivers is not an error: nobody is streaming.
        let _ = self.tx.send(event);
    }

    /// Publishes the flag and segment changes of a commit (other changes are not sent).
    pub fn publish_changes(&self, revision: u64, changes: &[Change]) {
        let mut flags = Vec::new();
        let mut segments = Vec::new();
        for c in changes {
            match c {
                Change::PutFlag {
                    key, definition, ..
                } => flags.push((key.clone(), Some(definition.clone()))),
                Change::DeleteFlag { key, .. } => flags.push((key.clone(), None)),
                Change::PutSegment {
                    name, definition, ..
                } => segments.push((name.clone(), Some(definition.clone()))),
                Change::DeleteSegment { name, .. } => segments.push((name.clone(), None)),
                Change::AddEnvironment { .. } | Change::CreateKey(_) | Change::RevokeKey { .. } => {
                }
            }
        }
        if flags.is_empty() && segments.is_empty() {
            return;
        }
        self.publish(Event {
            revision,
            kind: Kind::Patch { flags, segments },
            cache: Mutex::new(HashMap::new()),
        });
    }

    /// Tells every client to resync to the full state of `revision`.
    pub fn publish_reset(&self, revision: u64) {
        self.publish(Event {
            revision,
            kind: Kind::Reset,
            cache: Mutex::new(HashMap::new()),
        });
    }

    /// The recent events after `revision`, if the buffer still holds all of them.
    fn since(&self, revision: u64, current: u64) -> Option<Vec<Arc<Event>>> {
        if revision > current {
            return None;
        }
        let recent = self.recent.lock().ok()?;
        if revision < recent.floor {
            return None;
        }
        Some(
            recent
                .events
                .iter()
                .filter(|e| e.revision > revision && e.revision <= current)
                .cloned()
                .collect(),
        )
    }
}

/// A flag definition as it applies in one environment: the override resolved into the flag's
/// targeting, other environments' overrides removed.
pub fn project_flag(def: &Value, env: &str) -> Value {
    let mut map = match def {
        Value::Object(m) => m.clone(),
        Value::Bool(b) => {
            let mut m = Map::new();
            m.insert("serve".into(), json!(if *b { "on" } else { "off" }));
            m
        }
        other => return other.clone(),
    };
    let over = map.remove("environments").and_then(|e| match e {
        Value::Object(mut envs) => envs.remove(env),
        _ => None,
    });
    if let Some(over) = over {
        for f in TARGETING_FIELDS {
            map.remove(f);
        }
        match over {
            Value::Object(o) => map.extend(o),
            shorthand => {
                map.insert("serve".into(), shorthand);
            }
        }
    }
    Value::Object(map)
}

/// The full definitions of one environment: `{"revision", "environment", "flags", "segments"}`.
/// Without `revision` and `environment` it is a section-1 document with one environment.
pub fn environment_document(live: &Live, env: &str) -> Value {
    let flags: Map<String, Value> = live
        .snapshot
        .flags
        .iter()
        .map(|r| (r.key.clone(), project_flag(&r.definition, env)))
        .collect();
    let segments: Map<String, Value> = live
        .snapshot
        .segments
        .iter()
        .map(|r| (r.key.clone(), r.definition.clone()))
        .collect();
    json!({
        "revision": live.revision(),
        "environment": env,
        "flags": flags,
        "segments": segments,
    })
}

impl Event {
    /// The `data` of this event for `env`, serialized once.
    fn data(&self, live: &Live, env: &str) -> Arc<str> {
        if let Ok(cache) = self.cache.lock()
            && let Some(d) = cache.get(env)
        {
            return d.clone();
        }
        let value = match &self.kind {
            Kind::Patch { flags, segments } => {
                let flags: Map<String, Value> = flags
                    .iter()
                    .map(|(k, d)| {
                        (
                            k.clone(),
                            d.as_ref().map_or(Value::Null, |d| project_flag(d, env)),
                        )
                    })
                    .collect();
                let segments: Map<String, Value> = segments
                    .iter()
                    .map(|(k, d)| (k.clone(), d.clone().unwrap_or(Value::Null)))
                    .collect();
                json!({ "revision": self.revision, "flags": flags, "segments": segments })
            }
            Kind::Reset => environment_document(live, env),
        };
        let data: Arc<str> = value.to_string().into();
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(env.to_owned(), data.clone());
        }
        data
    }

    fn sse(&self, live: &Live, env: &str) -> SseEvent {
        let name = match self.kind {
            Kind::Patch { .. } => "patch",
            Kind::Reset => "put",
        };
        SseEvent::default()
            .event(name)
            .id(self.revision.to_string())
            .data(&*self.data(live, env))
    }
}

fn sdk_environment(
    state: &AppState,
    caller: &Caller,
    params: &HashMap<String, String>,
) -> Result<String, ApiError> {
    caller.require_server()?;
    let live = state.live();
    let default = live.config.default_env().name().to_owned();
    let env = caller.environment(params.get("env").map(String::as_str), &default)?;
    if live.config.env(&env).is_none() {
        return Err(ApiError::NotFound(format!("no environment `{env}`")));
    }
    Ok(env)
}

/// `GET /sdk/v1/flags`: the environment's complete definitions, with `ETag`/304.
#[utoipa::path(get, path = "/sdk/v1/flags", tag = "sdk",
    params(("env" = Option<String>, Query, description = "Environment (admin keys only)")),
    responses((status = 200, description = "The environment's definitions"), (status = 304, description = "Not modified")),
    security(("bearer" = [])))]
pub async fn flags(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let env = sdk_environment(&state, &caller, &params)?;
    let live = state.live();
    let doc = environment_document(&live, &env);
    // The tag covers what the client evaluates with, not the revision: commits that do not
    // change this environment's definitions (keys, other environments) still answer 304.
    let tag_source = json!({ "flags": doc["flags"], "segments": doc["segments"] }).to_string();
    let etag = format!("\"{}\"", &hex(&Sha256::digest(tag_source.as_bytes()))[..32]);
    let body = doc.to_string();
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    Ok((
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

/// `GET /sdk/v1/stream`: server-sent events. `put` (full state) on connect, then a `patch` per
/// change, each with the configuration revision as its `id`; resumes after `Last-Event-ID`
/// (header, or `last_event_id` query parameter) when the server still has the changes.
#[utoipa::path(get, path = "/sdk/v1/stream", tag = "sdk",
    params(("env" = Option<String>, Query, description = "Environment (admin keys only)"),
        ("last_event_id" = Option<u64>, Query, description = "Resume after this revision (or the Last-Event-ID header)")),
    responses((status = 200, description = "text/event-stream")),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let env = sdk_environment(&state, &caller, &params)?;
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| params.get("last_event_id").cloned())
        .and_then(|s| s.trim().parse::<u64>().ok());
    // Subscribe before reading the state, so no change can fall between the two.
    let hub = state.hub();
    let rx = hub.tx.subscribe();
    let mut live = state.live();
    // A client resuming after a revision this instance has not applied heard of it from another
    // instance of the fleet, a moment ago: catch up with the database first rather than send it
    // an older state. When the database cannot be reached, the client keeps what it has and
    // gets the changes once this instance catches up.
    let mut behind = false;
    if let Some(id) = last_id
        && id > live.revision()
        && matches!(state.source(), crate::Source::Store)
    {
        match tokio::time::timeout(CATCH_UP_WAIT, state.catch_up()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot catch up for a resuming stream");
                behind = true;
            }
            Err(_) => behind = true,
        }
        live = state.live();
    }
    let current = live.revision();
    let mut initial: Vec<SseEvent> = Vec::new();
    match last_id.and_then(|id| hub.since(id, current)) {
        Some(events) => {
            for e in events {
                initial.push(e.sse(&live, &env));
            }
        }
        None if behind && last_id.is_some_and(|id| id > current) => {}
        None => initial.push(
            SseEvent::default()
                .event("put")
                .id(current.to_string())
                .data(environment_document(&live, &env).to_string()),
        ),
    }
    let heartbeat = hub.heartbeat;
    let live_state = state.clone();
    let closing = hub.closing.subscribe();
    let following = stream::unfold(
        (rx, current, live_state, env, closing),
        |(mut rx, mut sent, state, env, mut closing)| async move {
            loop {
                if *closing.borrow() {
                    return None;
                }
                let received = tokio::select! {
                    r = rx.recv() => r,
                    _ = closing.changed() => return None,
                };
                match received {
                    Ok(event) => {
                        if event.revision <= sent {
                            continue;
                        }
                        sent = event.revision;
                        let live = state.live();
                        let sse = event.sse(&live, &env);
                        return Some((Ok::<_, Infallible>(sse), (rx, sent, state, env, closing)));
                    }
                    // Too far behind, or the server is stopping: end the stream; the client
                    // reconnects and resumes or resyncs.
                    Err(broadcast::error::RecvError::Lagged(_))
                    | Err(broadcast::error::RecvError::Closed) => {
                        return None;
                    }
                }
            }
        },
    );
    let events = stream::iter(initial.into_iter().map(Ok::<_, Infallible>)).chain(following);
    Ok(sse_response(events, heartbeat))
}

fn sse_response(
    events: impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
    heartbeat: Duration,
) -> Response {
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response();
    // Proxies must not buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_resolves_the_override() {
        let def = json!({"description": "d", "rollout": 5, "rules": [], "environments": {
            "development": "on", "staging": {"serve": "off"}}});
        assert_eq!(
            project_flag(&def, "development"),
            json!({"description": "d", "serve": "on"})
        );
        assert_eq!(
            project_flag(&def, "staging"),
            json!({"description": "d", "serve": "off"})
        );
        assert_eq!(
            project_flag(&def, "production"),
            json!({"description": "d", "rollout": 5, "rules": []})
        );
        assert_eq!(project_flag(&json!(true), "x"), json!({"serve": "on"}));
    }
}
