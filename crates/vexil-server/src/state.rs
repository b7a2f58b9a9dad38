//! The server's state: the store, and the compiled configuration every evaluation reads.
//!
//! Evaluation never touches the database. The current configuration ([`Live`]) sits behind an
//! [`ArcSwap`]: readers load it without locking; a write computes the next configuration,
//! validates it by compiling it, commits it to the store, and swaps it in before answering, so a
//! write is visible to every evaluation on this instance when it returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use jiff::Timestamp;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use vexil_engine::{Config, Diagnostic, MAX_DEPTH, Node, NodeValue};
use vexil_store::{ApiKey, Change, Commit, Committed, DynStore, Record, Snapshot, StoreError};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::sync::Hub;

/// How many times a write is recomputed when another writer committed first.
const STALE_RETRIES: usize = 8;

/// The environments a new server starts with.
pub const INITIAL_ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

/// One consistent, compiled view of the configuration.
#[derive(Debug)]
pub struct Live {
    /// The records as stored.
    pub snapshot: Snapshot,
    /// Their compilation.
    pub config: Arc<Config>,
    /// Flag key → index into `snapshot.flags`.
    flag_index: HashMap<String, usize>,
    /// Segment name → index into `snapshot.segments`.
    segment_index: HashMap<String, usize>,
}

impl Live {
    /// Compiles a snapshot. Errors are the engine's diagnostics (the stored data is invalid,
    /// which only a file or a bug can cause).
    pub fn new(mut snapshot: Snapshot) -> Result<Live, ApiError> {
        let config = compile(&mut snapshot).map_err(|d| ApiError::from_diagnostics(&d, ""))?;
        Ok(Live::with_config(snapshot, Arc::new(config)))
    }

    fn with_config(snapshot: Snapshot, config: Arc<Config>) -> Live {
        let flag_index = snapshot
            .flags
            .iter()
            .enumerate()
            .map(|(i, r)| (r.key.clone(), i))
            .collect();
        let segment_index = snapshot
            .segments
            .iter()
            .enumerate()
            .map(|(i, r)| (r.key.clone(), i))
            .collect();
        Live {
            snapshot,
            config,
            flag_index,
            segment_index,
        }
    }

    /// The current record of a flag.
    pub fn flag(&self, key: &str) -> Option<&Record> {
        self.flag_index.get(key).map(|&i| &self.snapshot.flags[i])
    }

    /// The current record of a segment.
    pub fn segment(&self, name: &str) -> Option<&Record> {
        self.segment_index
            .get(name)
            .map(|&i| &self.snapshot.segments[i])
    }

    /// The configuration revision.
    pub fn revision(&self) -> u64 {
        self.snapshot.revision
    }

    /// The whole configuration as a section-1 document.
    pub fn document(&self) -> Value {
        document(&self.snapshot)
    }
}

/// A snapshot as a section-1 document: `{environments, segments, flags}`.
pub fn document(snapshot: &Snapshot) -> Value {
    let segments: Map<String, Value> = snapshot
        .segments
        .iter()
        .map(|r| (r.key.clone(), r.definition.clone()))
        .collect();
    let flags: Map<String, Value> = snapshot
        .flags
        .iter()
        .map(|r| (r.key.clone(), r.definition.clone()))
        .collect();
    document_of(&snapshot.environments, segments, flags)
}

/// `{environments, segments, flags}`, the maps moved in (`json!` would serialize them into a
/// copy).
fn document_of(
    environments: &[String],
    segments: Map<String, Value>,
    flags: Map<String, Value>,
) -> Value {
    let mut doc = Map::with_capacity(3);
    doc.insert(
        "environments".into(),
        Value::Array(environments.iter().cloned().map(Value::String).collect()),
    );
    doc.insert("segments".into(), Value::Object(segments));
    doc.insert("flags".into(), Value::Object(flags));
    Value::Object(doc)
}

/// Compiles a snapshot, as `Config::from_json(&document(snapshot))` would, without copying its
/// definitions: they are moved into the engine's node tree for the compilation and back after.
/// With 10,000 flags each copy is tens of megabytes, and the memory a load peaks at stays with
/// the process. On error the snapshot is left with some definitions `null`.
fn compile(snapshot: &mut Snapshot) -> Result<Config, Vec<Diagnostic>> {
    fn node(value: NodeValue) -> Node {
        Node { value, pos: None }
    }
    fn take(records: &mut [Record], part: &str) -> Result<Node, Vec<Diagnostic>> {
        let entries = records
            .iter_mut()
            .map(|r| {
                // A definition sits two levels down: `flags.KEY`.
                let definition =
                    into_node(std::mem::take(&mut r.definition), 2).ok_or_else(|| {
                        vec![Diagnostic {
                            path: format!("{part}.{}", r.key),
                            line: None,
                            column: None,
                            message: format!(
                                "the document nests more than {MAX_DEPTH} levels deep"
                            ),
                        }]
                    })?;
                Ok((r.key.clone(), None, definition))
            })
            .collect::<Result<Vec<_>, Vec<Diagnostic>>>()?;
        Ok(node(NodeValue::Map(entries)))
    }
    let environments = snapshot
        .environments
        .iter()
        .map(|e| node(NodeValue::String(e.clone())))
        .collect();
    let segments = take(&mut snapshot.segments, "segments")?;
    let flags = take(&mut snapshot.flags, "flags")?;
    let root = node(NodeValue::Map(vec![
        (
            "environments".into(),
            None,
            node(NodeValue::Seq(environments)),
        ),
        ("segments".into(), None, segments),
        ("flags".into(), None, flags),
    ]));
    let compiled = Config::from_node(&root).map_err(|e| e.diagnostics);
    if let NodeValue::Map(parts) = root.value {
        for (part, _, tree) in parts {
            let records = match part.as_str() {
                "segments" => &mut snapshot.segments,
                "flags" => &mut snapshot.flags,
                _ => continue,
            };
            if let NodeValue::Map(entries) = tree.value {
                // In the records' order: `take` made them so.
                for (record, (_, _, definition)) in records.iter_mut().zip(entries) {
                    record.definition = from_node(definition);
                }
            }
        }
    }
    compiled
}

/// JSON into a node tree, moving its strings; `None` when it nests deeper than the engine
/// allows ([`MAX_DEPTH`], counted from `depth`).
fn into_node(value: Value, depth: usize) -> Option<Node> {
    if depth > MAX_DEPTH {
        return None;
    }
    let value = match value {
        Value::Null => NodeValue::Null,
        Value::Bool(b) => NodeValue::Bool(b),
        Value::Number(n) => NodeValue::Number(n),
        Value::String(s) => NodeValue::String(s),
        Value::Array(items) => NodeValue::Seq(
            items
                .into_iter()
                .map(|i| into_node(i, depth + 1))
                .collect::<Option<_>>()?,
        ),
        Value::Object(map) => NodeValue::Map(
            map.into_iter()
                .map(|(k, v)| Some((k, None, into_node(v, depth + 1)?)))
                .collect::<Option<_>>()?,
        ),
    };
    Some(Node { value, pos: None })
}

/// A node tree back into JSON, moving its strings.
fn from_node(node: Node) -> Value {
    match node.value {
        NodeValue::Null => Value::Null,
        NodeValue::Bool(b) => Value::Bool(b),
        NodeValue::Number(n) => Value::Number(n),
        NodeValue::String(s) => Value::String(s),
        NodeValue::Seq(items) => Value::Array(items.into_iter().map(from_node).collect()),
        NodeValue::Map(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(k, _, v)| (k, from_node(v)))
                .collect(),
        ),
    }
}

/// Applies changes to a snapshot in memory. With `committed`, versions, times and the revision
/// are the store's; without, they are provisional (for validation).
pub fn apply(
    snapshot: &Snapshot,
    changes: &[Change],
    actor: &str,
    committed: Option<&Committed>,
) -> Snapshot {
    let mut next = snapshot.clone();
    let at = committed.map_or_else(Timestamp::now, |c| c.at);
    for (i, change) in changes.iter().enumerate() {
        let version = |records: &[Record], key: &str| {
            committed
                .and_then(|c| c.versions.get(i).copied())
                .unwrap_or_else(|| {
                    records
                        .iter()
                        .find(|r| r.key == key)
                        .map_or(1, |r| r.version + 1)
                })
        };
        match change {
            Change::PutFlag {
                key, definition, ..
            } => {
                let v = version(&next.flags, key);
                put(&mut next.flags, key, definition, v, at, actor);
            }
            Change::DeleteFlag { key, .. } => next.flags.retain(|r| r.key != *key),
            Change::PutSegment {
                name, definition, ..
            } => {
                let v = version(&next.segments, name);
                put(&mut next.segments, name, definition, v, at, actor);
            }
            Change::DeleteSegment { name, .. } => next.segments.retain(|r| r.key != *name),
            Change::AddEnvironment { name } => next.environments.push(name.clone()),
            Change::CreateKey(_) | Change::RevokeKey { .. } => {}
        }
    }
    next.revision = committed.map_or(snapshot.revision + 1, |c| c.revision);
    next
}

fn put(
    records: &mut Vec<Record>,
    key: &str,
    definition: &Value,
    version: u64,
    at: Timestamp,
    actor: &str,
) {
    let record = Record {
        key: key.to_owned(),
        version,
        definition: definition.clone(),
        updated_at: at,
        updated_by: actor.to_owned(),
    };
    match records.binary_search_by(|r| r.key.as_str().cmp(key)) {
        Ok(i) => records[i] = record,
        Err(i) => records.insert(i, record),
    }
}

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The store: read-write.
    Store,
    /// A flag file served read-only (`--flags FILE`).
    File(std::path::PathBuf),
}

/// What a write produces, computed from the current configuration.
pub struct Plan {
    /// The audit action (`flag.update`, …).
    pub action: String,
    /// The audit target (`flag:KEY`, …).
    pub target: String,
    /// The audit event's before state.
    pub before: Option<Value>,
    /// The audit event's after state.
    pub after: Option<Value>,
    /// The changes.
    pub changes: Vec<Change>,
    /// The path prefix of this write's own object in validation messages (`flags.KEY`), so
    /// problems are reported relative to the request body.
    pub strip: String,
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: DynStore,
    live: ArcSwap<Live>,
    /// Secret hash → key; shared, so that authenticating a request copies nothing.
    keys: ArcSwap<HashMap<String, Arc<ApiKey>>>,
    write_lock: Mutex<()>,
    source: Source,
    metrics: Metrics,
    hub: Hub,
    /// Web UI sessions: their signing secret and those signed out here.
    sessions: crate::session::Sessions,
    options: Options,
}

/// Tunables of a server, with production defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// How often SDK streams get a heartbeat (at most 15 s: clients treat silence as a dead
    /// connection).
    pub heartbeat: Duration,
    /// Serve the web UI's files from this directory instead of the copy built into the binary
    /// (for working on the UI: edits show on reload).
    pub ui_dir: Option<std::path::PathBuf>,
    /// The secret web UI sessions are signed with, shared by every instance of a fleet (at
    /// least 32 characters). `None`: a random one for this process, so sessions end when it
    /// stops and are not accepted by other instances.
    pub session_secret: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            heartbeat: Duration::from_secs(15),
            ui_dir: None,
            session_secret: None,
        }
    }
}

impl AppState {
    /// Loads the configuration and the keys from the store.
    pub async fn load(store: DynStore, source: Source) -> Result<AppState, ApiError> {
        AppState::load_with(store, source, Options::default()).await
    }

    /// [`AppState::load`] with options.
    pub async fn load_with(
        store: DynStore,
        source: Source,
        options: Options,
    ) -> Result<AppState, ApiError> {
        let live = match &source {
            Source::Store => Live::new(store.snapshot().await?)?,
            // Bad input, not an internal error: the message (the file's problems) is what the
            // operator needs to see, and `Internal` hides it behind "internal error".
            Source::File(path) => crate::file::load(path)
                .map_err(|e| ApiError::BadRequest("invalid_flag_file", format!("{e:#}")))?,
        };
        let hub = Hub::new(live.revision(), options.heartbeat);
        let state = AppState {
            inner: Arc::new(Inner {
                store,
                hub,
                live: ArcSwap::from_pointee(live),
                keys: ArcSwap::from_pointee(HashMap::new()),
                write_lock: Mutex::new(()),
                source,
                metrics: Metrics::new(),
                sessions: crate::session::Sessions::new(options.session_secret.as_deref())?,
                options,
            }),
        };
        state.reload_keys().await?;
        Ok(state)
    }

    /// The store.
    pub fn store(&self) -> &DynStore {
        &self.inner.store
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The current configuration.
    pub fn live(&self) -> Arc<Live> {
        self.inner.live.load_full()
    }

    /// Replaces the configuration wholesale (file reloads); SDK streams resync.
    pub fn set_live(&self, live: Live) {
        let revision = live.revision();
        self.inner.live.store(Arc::new(live));
        self.inner.hub.publish_reset(revision);
    }

    /// Where changes are published for SDK streams.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Where the configuration comes from.
    pub fn source(&self) -> &Source {
        &self.inner.source
    }

    /// The live key with this secret hash.
    pub fn key_by_hash(&self, hash: &str) -> Option<Arc<ApiKey>> {
        self.inner
            .keys
            .load()
            .get(hash)
            .filter(|k| k.revoked_at.is_none())
            .cloned()
    }

    /// The live web UI session with this cookie value.
    pub fn session(&self, token: &str) -> Option<crate::session::Session> {
        let keys = self.inner.keys.load();
        self.inner.sessions.verify(
            token,
            |id| keys.values().find(|k| k.id == id).cloned(),
            jiff::Timestamp::now(),
        )
    }

    /// Web UI sessions.
    pub fn sessions(&self) -> &crate::session::Sessions {
        &self.inner.sessions
    }

    /// The options the server runs with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Every key known to this server (revoked ones included), as of the last key write.
    /// Inside a [`AppState::write`] plan this is serialized with other key writes.
    pub fn keys(&self) -> Vec<ApiKey> {
        self.inner
            .keys
            .load()
            .values()
            .map(|k| ApiKey::clone(k))
            .collect()
    }

    /// Re-reads the keys from the store.
    pub async fn reload_keys(&self) -> Result<(), ApiError> {
        let keys = self.inner.store.keys().await?;
        let map = keys
            .into_iter()
            .map(|k| (k.secret_hash.clone(), Arc::new(k)))
            .collect();
        self.inner.keys.store(Arc::new(map));
        Ok(())
    }

    /// Performs a write: computes it from the current configuration with `plan`, validates the
    /// result by compiling it, commits it, and makes it live before returning. Recomputes when
    /// another writer committed first.
    pub async fn write(
        &self,
        actor: &str,
        comment: Option<String>,
        plan: impl Fn(&Live) -> Result<Plan, ApiError>,
    ) -> Result<(Committed, Arc<Live>), ApiError> {
        let _guard = self.inner.write_lock.lock().await;
        for _ in 0..STALE_RETRIES {
            let live = self.live();
            let plan = plan(&live)?;
            // A served file is read-only; keys still live in the store, so they can be managed.
            if let Source::File(path) = &self.inner.source
                && (plan.changes.is_empty()
                    || plan
                        .changes
                        .iter()
                        .any(|c| !matches!(c, Change::CreateKey(_) | Change::RevokeKey { .. })))
            {
                return Err(ApiError::Conflict(
                    "read_only",
                    format!(
                        "this server serves the flag file {} read-only; edit the file instead",
                        path.display()
                    ),
                ));
            }
            if matches!(self.inner.source, Source::File(_)) {
                // Key changes in file mode: the store has its own revision, the served
                // configuration is untouched.
                let commit = Commit {
                    base_revision: self.inner.store.revision().await?,
                    actor: actor.to_owned(),
                    action: plan.action,
                    target: plan.target,
                    comment: comment.clone(),
                    before: plan.before,
                    after: plan.after,
                    changes: plan.changes,
                };
                match self.inner.store.commit(commit).await {
                    Ok(committed) => {
                        self.reload_keys().await?;
                        return Ok((committed, live));
                    }
                    Err(StoreError::Stale { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            if plan.changes.is_empty() {
                // Nothing to change (an identical import, enabling an enabled flag): no new
                // revision, version or audit event.
                let unchanged = Committed {
                    revision: live.revision(),
                    at: jiff::Timestamp::now(),
                    versions: Vec::new(),
                };
                return Ok((unchanged, live));
            }
            let touches_config = plan
                .changes
                .iter()
                .any(|c| !matches!(c, Change::CreateKey(_) | Change::RevokeKey { .. }));
            let provisional = apply(&live.snapshot, &plan.changes, actor, None);
            let config = if touches_config {
                let doc = document(&provisional);
                Arc::new(
                    Config::from_json(&doc)
                        .map_err(|e| ApiError::from_diagnostics(&e.diagnostics, &plan.strip))?,
                )
            } else {
                live.config.clone()
            };
            let commit = Commit {
                base_revision: live.revision(),
                actor: actor.to_owned(),
                action: plan.action,
                target: plan.target,
                comment: comment.clone(),
                before: plan.before,
                after: plan.after,
                changes: plan.changes,
            };
            let changes = commit.changes.clone();
            match self.inner.store.commit(commit).await {
                Ok(committed) => {
                    let snapshot = apply(&live.snapshot, &changes, actor, Some(&committed));
                    let next = Arc::new(Live::with_config(snapshot, config));
                    self.inner.live.store(next.clone());
                    self.inner.hub.publish_changes(committed.revision, &changes);
                    if !touches_config {
                        self.reload_keys().await?;
                    }
                    return Ok((committed, next));
                }
                Err(StoreError::Stale { .. }) => {
                    // Another process wrote first: catch up, then recompute.
                    let snapshot = self.inner.store.snapshot().await?;
                    self.apply_snapshot(snapshot).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Unavailable(
            "the configuration is changing too quickly to apply this write; retry".into(),
        ))
    }

    /// Applies what other instances committed since this instance's revision (see
    /// [`crate::fleet`]). Returns whether anything changed.
    pub async fn catch_up(&self) -> Result<bool, ApiError> {
        if matches!(self.inner.source, Source::File(_)) {
            return Ok(false);
        }
        let _guard = self.inner.write_lock.lock().await;
        let stored = self.inner.store.revision().await?;
        if stored <= self.live().revision() {
            return Ok(false);
        }
        let snapshot = self.inner.store.snapshot().await?;
        self.apply_snapshot(snapshot).await
    }

    /// Swaps in a newer snapshot read from the store (the caller holds the write lock), and
    /// publishes its differences to the SDK streams as one patch.
    async fn apply_snapshot(&self, snapshot: Snapshot) -> Result<bool, ApiError> {
        let live = self.live();
        if snapshot.revision <= live.revision() {
            return Ok(false);
        }
        let changes = crate::fleet::diff(&live.snapshot, &snapshot);
        let next = Live::new(snapshot)?;
        let revision = next.revision();
        self.inner.live.store(Arc::new(next));
        self.reload_keys().await?;
        self.inner.hub.publish_changes(revision, &changes);
        Ok(true)
    }

    /// Checks the store within a deadline (for `/readyz`).
    pub async fn ready(&self) -> Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(2), self.inner.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the database did not answer within 2 s".into()),
        }
    }
}
