//! The client: compiled definitions behind an atomic pointer, evaluated in-process.
//!
//! Every evaluation loads the current definitions from an [`ArcSwapOption`] (lock-free, never
//! blocks) and evaluates them with the engine at the current time. Whatever keeps the
//! definitions current (the sync task, the file watcher, a test) swaps new ones in whole.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde_json::Value;
use tokio::sync::watch;
use vexil_engine::jiff::Timestamp;
use vexil_engine::{Config, Context, Env, ErrorCode};

use crate::builder::ClientBuilder;
use crate::details::{Details, FlagType};
use crate::error::Error;

/// Where a client stands with its definitions. Read it with [`Client::status`]; wait for it
/// with [`Client::wait_ready`].
///
/// | Status | Definitions served | Typical cause |
/// |---|---|---|
/// | `NotReady` | none: every evaluation returns the caller's default with `PROVIDER_NOT_READY` | not synced yet, no bootstrap |
/// | `Bootstrapped` | the bootstrap's | not synced yet, bootstrap loaded |
/// | `Ready` | current ones | synced and connected; a valid file |
/// | `Stale` | the last known ones | server unreachable; the watched file is broken or gone |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// No definitions yet: evaluations return the caller's default with `PROVIDER_NOT_READY`.
    NotReady,
    /// Serving a bootstrap until the first sync with the server.
    Bootstrapped,
    /// Serving current definitions: synced with a reachable server, or a valid file.
    Ready,
    /// Serving the last known definitions because their source is failing: the server is
    /// unreachable (the client keeps reconnecting), or the watched file is broken or missing.
    Stale,
}

impl Status {
    /// The status in upper case, as OpenFeature names provider states (`NOT_READY`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotReady => "NOT_READY",
            Status::Bootstrapped => "BOOTSTRAPPED",
            Status::Ready => "READY",
            Status::Stale => "STALE",
        }
    }

    /// Whether the client has had definitions from its real source (the server or the file):
    /// `Ready` or `Stale`.
    pub fn has_synced(self) -> bool {
        matches!(self, Status::Ready | Status::Stale)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One compiled set of definitions and the environment to evaluate it in.
#[derive(Debug)]
pub(crate) struct Defs {
    pub(crate) config: Config,
    /// The environment; `None` for the document's first (`default` without environments).
    pub(crate) env: Option<Box<str>>,
    /// The document `config` was compiled from, as JSON (for [`crate::testing`]).
    pub(crate) document: Arc<Value>,
    /// The server's revision, or a counter of loads for files and tests.
    pub(crate) revision: u64,
}

impl Defs {
    pub(crate) fn env(&self) -> Env<'_> {
        self.env
            .as_deref()
            .and_then(|name| self.config.env(name))
            .unwrap_or_else(|| self.config.default_env())
    }
}

/// What the client and its updater (sync task, file watcher, test) share.
#[derive(Debug)]
pub(crate) struct Shared {
    defs: ArcSwapOption<Defs>,
    status: watch::Sender<Status>,
    revision: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new(initial: Option<Defs>, status: Status) -> Shared {
        let revision = initial.as_ref().map_or(0, |d| d.revision);
        Shared {
            defs: ArcSwapOption::new(initial.map(Arc::new)),
            status: watch::Sender::new(status),
            revision: watch::Sender::new(revision),
        }
    }

    /// Swaps new definitions in, then tells subscribers: the revision, then the status (so
    /// whoever wakes on either sees the new definitions and their revision).
    pub(crate) fn install(&self, defs: Defs, status: Status) {
        let revision = defs.revision;
        self.defs.store(Some(Arc::new(defs)));
        self.revision.send_modify(|r| *r = revision);
        self.set_status(status);
    }

    pub(crate) fn defs(&self) -> Option<Arc<Defs>> {
        self.defs.load_full()
    }

    pub(crate) fn status(&self) -> Status {
        *self.status.borrow()
    }

    pub(crate) fn set_status(&self, status: Status) {
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }
}

/// A flag client: evaluates flags in-process, for a context, with the caller's default.
///
/// Cheap to clone (an `Arc`), `Send` and `Sync`: build one at startup and share it. Evaluation
/// reads the current compiled definitions without locking and never waits on the network,
/// never blocks and never panics. Build it from a file ([`Client::from_file`]), a server
/// ([`Client::builder`]), or in tests ([`crate::testing::TestClient`]).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// The sync task, stopped when the last clone of the client is dropped.
    task: Option<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("status", &self.status())
            .field("revision", &self.revision())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder: [`server`](ClientBuilder::server) or [`file`](ClientBuilder::file), then
    /// options, then [`build`](ClientBuilder::build).
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client for a flag file (YAML 1.2 or JSON), evaluating in environment `env` — else the
    /// `VEXIL_ENV` variable, else the file's first environment. No server, no background task;
    /// the file is read once (use [`ClientBuilder::watch`] to follow edits).
    ///
    /// Fails when the file cannot be read, is not a valid flag document (every problem is
    /// listed), or has no such environment.
    pub fn from_file(
        path: impl AsRef<std::path::Path>,
        env: Option<&str>,
    ) -> Result<Client, Error> {
        let mut builder = ClientBuilder::new().file(path.as_ref());
        if let Some(env) = env {
            builder = builder.environment(env);
        }
        builder.build()
    }

    /// A client for a flag document given as text (YAML 1.2 or JSON; for example
    /// `include_str!("flags.yaml")`), in environment `env` — else `VEXIL_ENV`, else the
    /// document's first environment.
    pub fn from_text(text: &str, env: Option<&str>) -> Result<Client, Error> {
        let env = crate::file::asked_environment(env);
        let defs = crate::file::load_text(text, env.as_deref(), "the flag document", 1)?;
        Ok(Client::with_shared(
            Arc::new(Shared::new(Some(defs), Status::Ready)),
            None,
        ))
    }

    pub(crate) fn with_shared(
        shared: Arc<Shared>,
        task: Option<tokio::task::AbortHandle>,
    ) -> Client {
        Client {
            inner: Arc::new(Inner { shared, task }),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// Whether a boolean flag is on; `false` when it cannot be evaluated (fail closed).
    ///
    /// For a new feature: when in doubt, the old code path runs.
    pub fn is_enabled(&self, key: &str, ctx: &Context) -> bool {
        self.bool_value(key, ctx, false)
    }

    /// A boolean flag's value, or `default` when it cannot be evaluated (unknown flag, wrong
    /// type, no definitions yet). `true` makes a kill switch fail open.
    pub fn bool_value(&self, key: &str, ctx: &Context, default: bool) -> bool {
        match &*self.inner.shared.defs.load() {
            Some(defs) => defs.env().bool_value(key, ctx, Timestamp::now(), default),
            None => default,
        }
    }

    /// A string flag's value, or `default` when it cannot be evaluated.
    pub fn string_value(&self, key: &str, ctx: &Context, default: &str) -> String {
        match &*self.inner.shared.defs.load() {
            Some(defs) => defs
                .env()
                .string_value(key, ctx, Timestamp::now(), default)
                .to_owned(),
            None => default.to_owned(),
        }
    }

    /// A number flag's value, or `default` when it cannot be evaluated.
    pub fn number_value(&self, key: &str, ctx: &Context, default: f64) -> f64 {
        match &*self.inner.shared.defs.load() {
            Some(defs) => defs.env().number_value(key, ctx, Timestamp::now(), default),
            None => default,
        }
    }

    /// Any flag's value as JSON (typically an object flag), or `default` when it cannot be
    /// evaluated.
    pub fn json_value(&self, key: &str, ctx: &Context, default: Value) -> Value {
        self.details(key, ctx, default).value
    }

    /// Evaluates a flag as `T` (`bool`, `String`, `f64` or [`serde_json::Value`]) and says
    /// why: variant, reason, deciding rule, and on error the code and message (the value is
    /// then `default`).
    pub fn details<T: FlagType>(&self, key: &str, ctx: &Context, default: T) -> Details<T> {
        self.details_at(key, ctx, default, Timestamp::now())
    }

    /// [`Client::details`] at a given time (the `$now` attribute and time-based conditions),
    /// for tests and previews.
    pub fn details_at<T: FlagType>(
        &self,
        key: &str,
        ctx: &Context,
        default: T,
        now: Timestamp,
    ) -> Details<T> {
        match &*self.inner.shared.defs.load() {
            Some(defs) => T::evaluate(defs.env(), key, ctx, now, default),
            None => Details::failed(
                key,
                default,
                ErrorCode::ProviderNotReady,
                "the client has no flag definitions yet (not synced with the server, no bootstrap)",
            ),
        }
    }

    /// [`Client::details`] for a boolean flag.
    pub fn bool_details(&self, key: &str, ctx: &Context, default: bool) -> Details<bool> {
        self.details(key, ctx, default)
    }

    /// [`Client::details`] for a string flag.
    pub fn string_details(&self, key: &str, ctx: &Context, default: &str) -> Details<String> {
        self.details(key, ctx, default.to_owned())
    }

    /// [`Client::details`] for a number flag.
    pub fn number_details(&self, key: &str, ctx: &Context, default: f64) -> Details<f64> {
        self.details(key, ctx, default)
    }

    /// [`Client::details`] for any flag, as JSON.
    pub fn json_details(&self, key: &str, ctx: &Context, default: Value) -> Details<Value> {
        self.details(key, ctx, default)
    }

    /// Where the client stands with its definitions (see [`Status`]).
    pub fn status(&self) -> Status {
        self.inner.shared.status()
    }

    /// Waits until the client has definitions from its source ([`Status::Ready`], or
    /// [`Status::Stale`] if it synced and then lost the server), at most `timeout`.
    ///
    /// A bootstrap does not count: it is what the client serves while it waits. On timeout the
    /// client keeps trying in the background; the error carries the status at that moment.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        let mut rx = self.inner.shared.status.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|s| s.has_synced())).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::NotReady {
                status: self.status(),
                waited: timeout,
            }),
        }
    }

    /// The revision of the definitions being served: the server's configuration revision;
    /// for files and test clients, a counter of loads. `0` before any definitions.
    pub fn revision(&self) -> u64 {
        *self.inner.shared.revision.borrow()
    }

    /// A subscription to changes: the receiver is notified, with the new [`Client::revision`],
    /// every time new definitions are swapped in (and only then: a heartbeat, a reconnection
    /// that finds nothing new or a change to another environment does not notify).
    ///
    /// ```
    /// # async fn run(client: vexil::Client) {
    /// let mut changes = client.subscribe();
    /// while changes.changed().await.is_ok() {
    ///     let revision = *changes.borrow_and_update();
    ///     println!("flags changed: revision {revision}");
    /// }
    /// # }
    /// ```
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.shared.revision.subscribe()
    }

    /// A subscription to [`Client::status`] changes.
    pub fn subscribe_status(&self) -> watch::Receiver<Status> {
        self.inner.shared.status.subscribe()
    }
}
