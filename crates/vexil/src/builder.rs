//! [`ClientBuilder`]: where the definitions come from, and the knobs of keeping them current.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use crate::client::{Client, Shared, Status};
use crate::error::Error;
use crate::file;
use crate::sync::{self, SyncOptions};

/// How a client is built: a source ([`server`](ClientBuilder::server) or
/// [`file`](ClientBuilder::file)), options, then [`build`](ClientBuilder::build).
///
/// ```no_run
/// # async fn run() -> Result<(), vexil::Error> {
/// use std::time::Duration;
///
/// let client = vexil::Client::builder()
///     .server("https://flags.example.com", "vexil_server_…")
///     .bootstrap_file("flags-snapshot.json")
///     .build()?;
/// client.wait_ready(Duration::from_secs(2)).await.ok(); // serve the bootstrap meanwhile
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    source: Option<Source>,
    environment: Option<String>,
    bootstrap: Option<Bootstrap>,
    watch: bool,
    watch_interval: Duration,
    sync: SyncOptions,
}

#[derive(Debug, Clone)]
enum Source {
    Server { url: String, key: String },
    File(PathBuf),
}

#[derive(Debug, Clone)]
enum Bootstrap {
    File(PathBuf),
    Json(Value),
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// A builder with the defaults: no source yet, file polling every second when watching,
    /// and the sync defaults of [`ClientBuilder::server`].
    pub fn new() -> ClientBuilder {
        ClientBuilder {
            source: None,
            environment: None,
            bootstrap: None,
            watch: false,
            watch_interval: Duration::from_secs(1),
            sync: SyncOptions::default(),
        }
    }

    /// Syncs with a vexil server at `url` (`https://flags.example.com`) using a **server key**
    /// (its environment is the one evaluated), and evaluates locally.
    ///
    /// The client streams `GET /sdk/v1/stream`: the full definitions first, then every change
    /// as it is committed. When the connection drops it reconnects with `Last-Event-ID` (so it
    /// receives only what it missed) after an exponential backoff with full jitter (100 ms
    /// doubling up to 30 s); a connection silent for longer than
    /// [`stream_timeout`](ClientBuilder::stream_timeout) is treated as dead. After three
    /// failed attempts in a row it also polls `GET /sdk/v1/flags` (with `If-None-Match`) every
    /// [`poll_interval`](ClientBuilder::poll_interval) until the stream works again.
    ///
    /// [`build`](ClientBuilder::build) must then be called inside a tokio runtime with its IO
    /// and time drivers (`#[tokio::main]` has both): it spawns the background task, which
    /// stops when the last clone of the client is dropped.
    pub fn server(mut self, url: impl Into<String>, key: impl Into<String>) -> Self {
        self.source = Some(Source::Server {
            url: url.into(),
            key: key.into(),
        });
        self
    }

    /// Reads the definitions from a flag file (YAML 1.2 or JSON) instead of a server.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.source = Some(Source::File(path.into()));
        self
    }

    /// The environment to evaluate in.
    ///
    /// For a file or a bootstrap document that lists environments: when not given, the
    /// `VEXIL_ENV` variable, else the document's first. For a server: the key's environment is
    /// used; an admin key (for tools, not applications) syncs this one (`?env=`).
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment = Some(name.into());
        self
    }

    /// Definitions to serve until the first sync with the server: a flag document (YAML or
    /// JSON), or a saved `GET /sdk/v1/flags` answer. Read when the client is built.
    ///
    /// Fail-safe: a bootstrap that cannot be read or is not valid is logged (`tracing`) and
    /// ignored, so the program still starts; the client then reports [`Status::NotReady`]
    /// rather than [`Status::Bootstrapped`].
    pub fn bootstrap_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.bootstrap = Some(Bootstrap::File(path.into()));
        self
    }

    /// [`bootstrap_file`](ClientBuilder::bootstrap_file) with the document as JSON.
    pub fn bootstrap_json(mut self, document: Value) -> Self {
        self.bootstrap = Some(Bootstrap::Json(document));
        self
    }

    /// For a file: keep polling it and swap in each valid new version (a broken edit keeps the
    /// last valid one, and the status becomes [`Status::Stale`] until the file is fixed).
    /// Polling runs on a small thread of its own, so no async runtime is needed.
    pub fn watch(mut self, watch: bool) -> Self {
        self.watch = watch;
        self
    }

    /// How often a watched file is checked (size and modification time, and its content every
    /// few checks). Default: 1 s.
    pub fn watch_interval(mut self, interval: Duration) -> Self {
        self.watch_interval = interval;
        self
    }

    /// How often the client polls `GET /sdk/v1/flags` while the stream keeps failing.
    /// Default: 30 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.sync.poll_interval = interval;
        self
    }

    /// How long a stream may stay silent (no event, no heartbeat) before it is treated as
    /// dead and reconnected; also the limit for the server to answer a request. Default: 40 s,
    /// a little more than twice the server's 15 s heartbeat.
    pub fn stream_timeout(mut self, timeout: Duration) -> Self {
        self.sync.stream_timeout = timeout;
        self
    }

    /// The reconnection backoff: the first delay's bound and the largest. Each failed attempt
    /// doubles the bound; the delay is drawn uniformly below it (full jitter). Default: 100 ms
    /// and 30 s.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.sync.backoff_initial = initial;
        self.sync.backoff_max = max.max(initial);
        self
    }

    /// Builds the client.
    ///
    /// For a file: fails when it cannot be read, is not valid, or lacks the environment. For a
    /// server: fails on an invalid URL or outside a tokio runtime; never waits for the network
    /// (see [`Client::wait_ready`]).
    pub fn build(self) -> Result<Client, Error> {
        match self.source.clone() {
            None => Err(Error::NoSource),
            Some(Source::File(path)) => self.build_file(path),
            Some(Source::Server { url, key }) => self.build_server(&url, key),
        }
    }

    fn build_file(self, path: PathBuf) -> Result<Client, Error> {
        let env = file::asked_environment(self.environment.as_deref());
        let text = file::read(&path)?;
        let defs = file::load_text(&text, env.as_deref(), &path.display().to_string(), 1)?;
        let shared = Arc::new(Shared::new(Some(defs), Status::Ready));
        if self.watch {
            file::watch(
                Arc::downgrade(&shared),
                path,
                env,
                self.watch_interval,
                text,
            )?;
        }
        Ok(Client::with_shared(shared, None))
    }

    fn build_server(self, url: &str, key: String) -> Result<Client, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let stream_url = endpoint(url, "sdk/v1/stream", self.environment.as_deref())?;
        let flags_url = endpoint(url, "sdk/v1/flags", self.environment.as_deref())?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("vexil-rust/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.sync.stream_timeout.min(Duration::from_secs(10)))
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .build()
            .map_err(Error::Http)?;
        let bootstrap = self.bootstrap.as_ref().and_then(|b| {
            let env = file::asked_environment(self.environment.as_deref());
            let loaded = match b {
                Bootstrap::File(path) => file::read_bootstrap(path).and_then(|doc| {
                    file::load_bootstrap(&doc, env.as_deref(), &path.display().to_string())
                }),
                Bootstrap::Json(doc) => file::load_bootstrap(doc, env.as_deref(), "the bootstrap"),
            };
            loaded
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "ignoring the bootstrap; serving defaults until the first sync");
                })
                .ok()
        });
        let status = if bootstrap.is_some() {
            Status::Bootstrapped
        } else {
            Status::NotReady
        };
        let shared = Arc::new(Shared::new(bootstrap, status));
        let task = runtime.spawn(sync::run(
            shared.clone(),
            http,
            sync::Endpoints {
                stream: stream_url,
                flags: flags_url,
                key,
            },
            self.sync,
        ));
        Ok(Client::with_shared(shared, Some(task.abort_handle())))
    }
}

/// `base` + `/` + `path`, with `?env=` when asked.
pub(crate) fn endpoint(base: &str, path: &str, env: Option<&str>) -> Result<Url, Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: base.to_owned(),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(&format!("{}/{path}", base.trim_end_matches('/')))
        .map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "give the server's base URL, without a query or fragment",
        ));
    }
    if let Some(env) = env {
        url.query_pairs_mut().append_pair("env", env);
    }
    Ok(url)
}
