//! Keeping a server client's definitions current (the protocol is the server's sync API:
//! `GET /sdk/v1/stream` and `GET /sdk/v1/flags`).
//!
//! One background task per client. It keeps its own copy of the environment's document
//! (`{"flags", "segments"}`), applies each `put` (replace) and `patch` (merge; `null` deletes)
//! to it, compiles the result and swaps it in. The id of each event is the server's revision;
//! the last one is sent back as `Last-Event-ID` on reconnection, so only missed changes come.
//!
//! Failures: a connection that cannot be made, answers an error, or stays silent longer than
//! the stream timeout counts as a failure; the next attempt waits a random delay below a bound
//! that doubles with each failure in a row (full jitter), up to the maximum. After
//! [`FALLBACK_AFTER`] failures in a row the task also polls `GET /sdk/v1/flags` (with
//! `If-None-Match`) between stream attempts. A patch that does not compile keeps the current
//! definitions and forces a full resync (a reconnection without `Last-Event-ID`).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use reqwest::{StatusCode, Url};
use serde_json::{Map, Value};
use tokio::time::Instant;
use vexil_engine::Config;

use crate::client::{Defs, Shared, Status};
use crate::sse;

/// How many stream failures in a row start the polling fallback.
pub(crate) const FALLBACK_AFTER: u32 = 3;

/// A connection must last this long, having delivered something, for its end not to count as
/// a failure (so a proxy that answers and hangs up at once does not cause a reconnection storm).
const HEALTHY_CONNECTION: Duration = Duration::from_secs(10);

/// The largest event (or line) accepted on the stream: generous for 10,000 flags.
const MAX_EVENT: usize = 256 * 1024 * 1024;

/// The tunables of the sync task.
#[derive(Debug, Clone)]
pub(crate) struct SyncOptions {
    pub(crate) poll_interval: Duration,
    pub(crate) stream_timeout: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            poll_interval: Duration::from_secs(30),
            stream_timeout: Duration::from_secs(40),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Where and as whom the task syncs.
#[derive(Debug)]
pub(crate) struct Endpoints {
    pub(crate) stream: Url,
    pub(crate) flags: Url,
    pub(crate) key: String,
}

/// How a stream connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// It could not be made, was refused, or went silent: the server is not reachable.
    Failed,
    /// The server closed it (or the network dropped it); `healthy` when it had worked a while.
    Closed { healthy: bool },
    /// Our copy cannot be trusted (a patch did not compile): reconnect for a full `put`.
    Resync,
}

/// What to do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Continue,
    Resync,
}

/// The task's state.
struct Sync {
    shared: Arc<Shared>,
    http: reqwest::Client,
    endpoints: Endpoints,
    options: SyncOptions,
    /// Our copy of the server's document, `{"flags", "segments"}`; `None` until the first
    /// `put` (a bootstrap is never resumed from or patched).
    doc: Option<Arc<Value>>,
    /// The revision of `doc`: sent as `Last-Event-ID`.
    revision: Option<u64>,
    /// The `ETag` of the last `GET /sdk/v1/flags` answer.
    etag: Option<String>,
    /// Whether definitions from the server were ever installed.
    synced: bool,
    /// Whether the last poll of the fallback succeeded: the server is reachable even though
    /// its stream is not, so stream failures do not make the definitions stale.
    polling_ok: bool,
}

/// Runs until the client is dropped (which aborts it).
pub(crate) async fn run(
    shared: Arc<Shared>,
    http: reqwest::Client,
    endpoints: Endpoints,
    options: SyncOptions,
) {
    let mut sync = Sync {
        shared,
        http,
        endpoints,
        options,
        doc: None,
        revision: None,
        etag: None,
        synced: false,
        polling_ok: false,
    };
    let mut failures: u32 = 0;
    let mut next_poll: Option<Instant> = None;
    loop {
        match sync.stream_once().await {
            Ended::Failed => {
                failures = failures.saturating_add(1);
                if !sync.polling_ok {
                    sync.unreachable();
                }
            }
            Ended::Closed { healthy: true } => failures = 0,
            Ended::Closed { healthy: false } => failures = failures.saturating_add(1),
            Ended::Resync => {
                sync.forget();
                failures = failures.saturating_add(1);
            }
        }
        let retry_at = Instant::now() + backoff(failures, &sync.options);
        if failures >= FALLBACK_AFTER {
            loop {
                let poll_at = *next_poll.get_or_insert_with(Instant::now);
                if poll_at > retry_at {
                    break;
                }
                tokio::time::sleep_until(poll_at).await;
                sync.polling_ok = sync.poll().await;
                next_poll = Some(Instant::now() + sync.options.poll_interval);
            }
        } else {
            next_poll = None;
            sync.polling_ok = false;
        }
        tokio::time::sleep_until(retry_at).await;
    }
}

/// The delay before the next stream attempt: uniform in `[0, bound]`, where the bound starts
/// at the initial backoff and doubles with each failure in a row, up to the maximum.
pub(crate) fn backoff(failures: u32, options: &SyncOptions) -> Duration {
    let bound = options
        .backoff_initial
        .saturating_mul(1u32 << failures.min(20))
        .min(options.backoff_max);
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(random() % nanos.saturating_add(1))
}

/// A random number for the jitter: the operating system's, else the clock's nanoseconds
/// scrambled with xorshift (the jitter only has to differ between clients).
fn random() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let mut x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
            | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    })
}

impl Sync {
    /// The server cannot be reached: what is served is now the last known state.
    fn unreachable(&self) {
        if self.synced {
            self.shared.set_status(Status::Stale);
        }
    }

    /// Forgets the copy's revision, so the next connection gets a full `put`.
    fn forget(&mut self) {
        self.revision = None;
        self.etag = None;
    }

    /// One stream connection, from request to end.
    async fn stream_once(&mut self) -> Ended {
        let timeout = self.options.stream_timeout;
        let mut request = self
            .http
            .get(self.endpoints.stream.clone())
            .bearer_auth(&self.endpoints.key)
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        if let (Some(revision), Some(_)) = (self.revision, &self.doc) {
            request = request.header("Last-Event-ID", revision.to_string());
        }
        let mut response = match tokio::time::timeout(timeout, request.send()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot connect to the flag stream");
                return Ended::Failed;
            }
            Err(_) => {
                tracing::debug!(?timeout, "the flag stream did not answer in time");
                return Ended::Failed;
            }
        };
        if !response.status().is_success() {
            log_refusal("the flag stream", response.status());
            return Ended::Failed;
        }
        if self.synced {
            // Connected and resuming: the server sends what we missed right away.
            self.shared.set_status(Status::Ready);
        }
        let started = Instant::now();
        let mut heard = false;
        let mut parser = sse::Parser::new(MAX_EVENT);
        let mut events = Vec::new();
        loop {
            let chunk = match tokio::time::timeout(timeout, response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "the flag stream broke");
                    break;
                }
                Err(_) => {
                    tracing::warn!(?timeout, "the flag stream went silent; reconnecting");
                    return Ended::Failed;
                }
            };
            heard = true;
            if parser.feed(&chunk, &mut events).is_err() {
                tracing::warn!(
                    limit = MAX_EVENT,
                    "an event on the flag stream is too large; resyncing"
                );
                return Ended::Resync;
            }
            for event in events.drain(..) {
                if self.event(&event) == Next::Resync {
                    return Ended::Resync;
                }
            }
        }
        Ended::Closed {
            healthy: heard && started.elapsed() >= HEALTHY_CONNECTION,
        }
    }

    fn event(&mut self, event: &sse::Event) -> Next {
        let id = event
            .id
            .as_deref()
            .and_then(|id| id.trim().parse::<u64>().ok());
        match event.event.as_str() {
            "put" => {
                let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
                    tracing::error!("the server sent a `put` that is not JSON; resyncing");
                    return Next::Resync;
                };
                let revision = id.or_else(|| data.get("revision").and_then(Value::as_u64));
                self.replace(&data, revision);
                Next::Continue
            }
            "patch" => {
                let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
                    tracing::error!("the server sent a `patch` that is not JSON; resyncing");
                    return Next::Resync;
                };
                let revision = id.or_else(|| data.get("revision").and_then(Value::as_u64));
                self.patch(&data, revision)
            }
            // Unknown events are for newer clients.
            _ => Next::Continue,
        }
    }

    /// Replaces the copy with a full state (`put` or a polled answer).
    fn replace(&mut self, data: &Value, revision: Option<u64>) {
        let doc = document(data);
        self.revision = revision;
        if self.synced && self.doc.as_deref() == Some(&doc) {
            // Nothing changed for this environment (a resync, a poll, another environment's
            // change): no recompilation, no notification.
            self.shared.set_status(Status::Ready);
            self.doc = Some(Arc::new(doc));
            return;
        }
        let doc = Arc::new(doc);
        self.install(doc.clone(), revision, "full state");
        // Kept even when it did not compile: it is the server's state, which patches apply to.
        self.doc = Some(doc);
    }

    /// Applies a `patch` to the copy.
    fn patch(&mut self, data: &Value, revision: Option<u64>) -> Next {
        let Some(doc) = &self.doc else {
            tracing::warn!("the server sent a `patch` before any `put`; resyncing");
            return Next::Resync;
        };
        if let (Some(new), Some(have)) = (revision, self.revision)
            && new <= have
        {
            return Next::Continue;
        }
        let mut next = Value::clone(doc);
        for section in ["flags", "segments"] {
            let Some(changes) = data.get(section).and_then(Value::as_object) else {
                continue;
            };
            let Some(entries) = next.get_mut(section).and_then(Value::as_object_mut) else {
                continue;
            };
            for (key, definition) in changes {
                if definition.is_null() {
                    entries.remove(key);
                } else {
                    entries.insert(key.clone(), definition.clone());
                }
            }
        }
        if *doc.as_ref() == next {
            // A change that does not show in this environment.
            self.revision = revision;
            return Next::Continue;
        }
        let next = Arc::new(next);
        if !self.install(next.clone(), revision, "patch") {
            // Our copy and the server's disagree somewhere: start over from a full state.
            return Next::Resync;
        }
        self.doc = Some(next);
        self.revision = revision;
        Next::Continue
    }

    /// Compiles a document and swaps it in; `false` (keeping the current definitions) when
    /// it does not compile.
    fn install(&mut self, doc: Arc<Value>, revision: Option<u64>, what: &str) -> bool {
        match Config::from_json(&doc) {
            Ok(config) => {
                self.shared.install(
                    Defs {
                        config,
                        env: None,
                        document: doc,
                        revision: revision.unwrap_or(0),
                    },
                    Status::Ready,
                );
                self.synced = true;
                true
            }
            Err(e) => {
                let problems: Vec<String> = e.diagnostics.iter().map(ToString::to_string).collect();
                tracing::error!(
                    what,
                    ?problems,
                    "definitions from the server do not compile; keeping the current ones"
                );
                false
            }
        }
    }

    /// One `GET /sdk/v1/flags`, with `If-None-Match`; whether the server answered.
    async fn poll(&mut self) -> bool {
        let mut request = self
            .http
            .get(self.endpoints.flags.clone())
            .bearer_auth(&self.endpoints.key)
            .timeout(self.options.stream_timeout);
        if let (Some(etag), Some(_)) = (&self.etag, &self.doc) {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "cannot poll the flags");
                self.unreachable();
                return false;
            }
        };
        match response.status() {
            StatusCode::NOT_MODIFIED if self.synced => {
                self.shared.set_status(Status::Ready);
                true
            }
            status if status.is_success() => {
                let etag = response
                    .headers()
                    .get(ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match response.json::<Value>().await {
                    Ok(data) => {
                        let revision = data.get("revision").and_then(Value::as_u64);
                        self.replace(&data, revision);
                        self.etag = etag;
                        true
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the polled flags are not JSON");
                        self.unreachable();
                        false
                    }
                }
            }
            status => {
                log_refusal("polling the flags", status);
                self.unreachable();
                false
            }
        }
    }
}

fn log_refusal(what: &str, status: StatusCode) {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => tracing::error!(
            %status,
            "{what}: the server refused the key; the SDK needs a server key of its environment"
        ),
        _ => tracing::warn!(%status, "{what}: the server answered with an error"),
    }
}

/// The `{"flags", "segments"}` document of a full state.
fn document(data: &Value) -> Value {
    let section = |name: &str| {
        data.get(name)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(Map::new)
    };
    let mut doc = Map::new();
    doc.insert("flags".into(), Value::Object(section("flags")));
    doc.insert("segments".into(), Value::Object(section("segments")));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vexil_engine::Context;

    fn sync() -> Sync {
        Sync {
            shared: Arc::new(Shared::new(None, Status::NotReady)),
            http: reqwest::Client::new(),
            endpoints: Endpoints {
                stream: Url::parse("http://127.0.0.1:1/sdk/v1/stream").unwrap(),
                flags: Url::parse("http://127.0.0.1:1/sdk/v1/flags").unwrap(),
                key: "k".into(),
            },
            options: SyncOptions::default(),
            doc: None,
            revision: None,
            etag: None,
            synced: false,
            polling_ok: false,
        }
    }

    fn event(kind: &str, id: u64, data: Value) -> sse::Event {
        sse::Event {
            event: kind.into(),
            data: data.to_string(),
            id: Some(id.to_string()),
        }
    }

    fn value(s: &Sync, flag: &str) -> Option<bool> {
        let defs = s.shared.defs()?;
        let now = "2026-06-01T00:00:00Z".parse().unwrap();
        let d = defs.env().details(flag, &Context::new(), now, false);
        d.error.is_none().then_some(d.value)
    }

    #[test]
    fn put_then_patches() {
        let mut s = sync();
        let put = json!({"revision": 3, "environment": "production",
            "flags": {"a": true, "b": {"serve": "off"}}, "segments": {}});
        assert_eq!(s.event(&event("put", 3, put)), Next::Continue);
        assert_eq!(s.shared.status(), Status::Ready);
        assert_eq!((value(&s, "a"), value(&s, "b")), (Some(true), Some(false)));
        assert_eq!(s.revision, Some(3));

        let patch =
            json!({"revision": 5, "flags": {"a": null, "b": {"serve": "on"}}, "segments": {}});
        assert_eq!(s.event(&event("patch", 5, patch)), Next::Continue);
        assert_eq!((value(&s, "a"), value(&s, "b")), (None, Some(true)));
        assert_eq!(s.revision, Some(5));
        assert_eq!(s.shared.defs().unwrap().revision, 5);

        // Replayed or old patches are ignored.
        let old = json!({"revision": 4, "flags": {"b": {"serve": "off"}}});
        assert_eq!(s.event(&event("patch", 4, old)), Next::Continue);
        assert_eq!(value(&s, "b"), Some(true));
    }

    #[test]
    fn a_patch_that_does_not_compile_keeps_the_old_config_and_resyncs() {
        let mut s = sync();
        let put = json!({"flags": {"a": true}, "segments": {}});
        s.event(&event("put", 1, put));
        // A rule on a segment the copy does not have: our copy has diverged.
        let patch = json!({"flags": {"a": {"rules": [{"when": [{"segment": "ghost"}], "serve": "off"}], "serve": "on"}}});
        assert_eq!(s.event(&event("patch", 2, patch)), Next::Resync);
        assert_eq!(value(&s, "a"), Some(true));
        assert_eq!(s.shared.defs().unwrap().revision, 1);
        s.forget();
        assert_eq!(s.revision, None);
    }

    #[test]
    fn a_patch_before_any_put_resyncs() {
        let mut s = sync();
        let patch = json!({"flags": {"a": true}});
        assert_eq!(s.event(&event("patch", 2, patch)), Next::Resync);
        assert!(s.shared.defs().is_none());
    }

    #[test]
    fn an_unchanged_put_does_not_notify() {
        let mut s = sync();
        let put = json!({"flags": {"a": true}, "segments": {}});
        s.event(&event("put", 1, put.clone()));
        let rx = s.shared_revision_rx();
        s.event(&event("put", 9, put));
        assert!(!rx.has_changed().unwrap());
        assert_eq!(s.revision, Some(9));
    }

    impl Sync {
        fn shared_revision_rx(&self) -> tokio::sync::watch::Receiver<u64> {
            crate::Client::with_shared(self.shared.clone(), None).subscribe()
        }
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        let o = SyncOptions::default();
        for failures in 0..40 {
            let bound = o
                .backoff_initial
                .saturating_mul(1 << failures.min(20))
                .min(o.backoff_max);
            for _ in 0..20 {
                assert!(backoff(failures, &o) <= bound);
            }
        }
        // Full jitter spreads the delays: not all the same.
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff(10, &o)).collect();
        assert!(delays.len() > 1);
    }
}
