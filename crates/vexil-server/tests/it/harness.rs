//! The test server: the real router on `127.0.0.1:0`, a real SQLite store in a fresh temporary
//! directory, and a real HTTP client.
//!
//! Requests are written as `server.admin().put("/api/v1/flags/x").json(&def).send().await`;
//! every answer is read whole into a [`Resp`], whose assertions print the body when they fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vexil_server::{AppState, Source};
use vexil_store::{DynStore, SqliteStore};

/// The secret of the admin key every test server starts with.
pub const ADMIN: &str = "test-admin-secret";

/// How long a test waits for something that should happen "soon" (a file reload). Generous:
/// the wait ends as soon as the condition holds, so only a failing test pays it in full.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running server.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The HTTP client every request goes through.
    pub client: Client,
    /// The server's state, shared with the running router.
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    watcher: Option<JoinHandle<()>>,
    /// Holds the store and the flag file; removed when the server is dropped.
    _dir: TempDir,
}

impl Server {
    /// A server on a new, bootstrapped SQLite store.
    pub async fn start() -> Server {
        Server::start_with(|_| Source::Store).await
    }

    /// A server in file mode: it serves the flag file `name` (written with `contents` into the
    /// server's temporary directory) read-only, and watches it.
    pub async fn start_file(name: &str, contents: &str) -> Server {
        let name = name.to_owned();
        let contents = contents.to_owned();
        Server::start_with(move |dir| {
            let path = dir.join(name);
            std::fs::write(&path, contents).expect("write the flag file");
            Source::File(path)
        })
        .await
    }

    async fn start_with(source: impl FnOnce(&Path) -> Source) -> Server {
        let dir = TempDir::new().expect("a temporary directory");
        let store: DynStore =
            Arc::new(SqliteStore::open(&dir.path().join("data")).expect("open the store"));
        let secret = vexil_server::bootstrap(&store, Some(ADMIN))
            .await
            .expect("bootstrap a new store");
        assert_eq!(
            secret.as_deref(),
            Some(ADMIN),
            "bootstrap uses the given admin secret"
        );
        let source = source(dir.path());
        let state = AppState::load(store, source.clone())
            .await
            .expect("load the state");
        let watcher = match &source {
            Source::File(path) => Some(tokio::spawn(vexil_server::file::watch(
                state.clone(),
                path.clone(),
            ))),
            Source::Store => None,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let addr = listener.local_addr().expect("the bound address");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(vexil_server::serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        let client = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        Server {
            base: format!("http://{addr}"),
            client,
            state,
            shutdown: Some(tx),
            task: Some(task),
            watcher,
            _dir: dir,
        }
    }

    /// The flag file of a file-mode server.
    pub fn file(&self) -> PathBuf {
        match self.state.source() {
            Source::File(path) => path.clone(),
            Source::Store => panic!("not a file-mode server"),
        }
    }

    /// Stops the server gracefully and checks that `serve` returned without an error.
    pub async fn stop(mut self) {
        // Idle keep-alive connections would hold the graceful shutdown open.
        self.client = Client::new();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("the server task");
        let result = tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the server stops after its shutdown signal")
            .expect("the server task does not panic");
        result.expect("serve returns Ok");
    }

    /// Requests with the bootstrap admin key.
    pub fn admin(&self) -> As<'_> {
        self.bearer(ADMIN)
    }

    /// Requests with `Authorization: Bearer KEY`.
    pub fn bearer(&self, key: &str) -> As<'_> {
        As {
            server: self,
            auth: Auth::Bearer(key.to_owned()),
        }
    }

    /// Requests with `X-API-Key: KEY`.
    pub fn api_key(&self, key: &str) -> As<'_> {
        As {
            server: self,
            auth: Auth::ApiKey(key.to_owned()),
        }
    }

    /// Requests without a key.
    pub fn anonymous(&self) -> As<'_> {
        As {
            server: self,
            auth: Auth::None,
        }
    }

    /// `PUT /api/v1/flags/{key}` as admin; the flag must be accepted.
    pub async fn put_flag(&self, key: &str, definition: Value) -> Resp {
        let r = self
            .admin()
            .put(&format!("/api/v1/flags/{key}"))
            .json(&definition)
            .send()
            .await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::CREATED,
            "PUT flag {key}: {r}"
        );
        r
    }

    /// `PUT /api/v1/segments/{name}` as admin; the segment must be accepted.
    pub async fn put_segment(&self, name: &str, definition: Value) -> Resp {
        let r = self
            .admin()
            .put(&format!("/api/v1/segments/{name}"))
            .json(&definition)
            .send()
            .await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::CREATED,
            "PUT segment {name}: {r}"
        );
        r
    }

    /// Creates a key (`env` is `None` for admin keys) and returns its secret.
    pub async fn create_key(&self, kind: &str, env: Option<&str>) -> String {
        self.create_named_key(&format!("test-{kind}"), kind, env)
            .await
            .1
    }

    /// Creates a key and returns its id and its secret.
    pub async fn create_named_key(
        &self,
        name: &str,
        kind: &str,
        env: Option<&str>,
    ) -> (String, String) {
        let mut body = json!({ "name": name, "kind": kind });
        if let Some(env) = env {
            body["environment"] = json!(env);
        }
        let r = self.admin().post("/api/v1/keys").json(&body).send().await;
        r.assert_status(201);
        let v = r.json();
        let id = v["id"].as_str().expect("the key's id").to_owned();
        let secret = v["secret"].as_str().expect("the key's secret").to_owned();
        (id, secret)
    }

    /// The configuration revision, from `/readyz`.
    pub async fn revision(&self) -> u64 {
        let r = self.anonymous().get("/readyz").send().await;
        r.assert_status(200);
        r.json()["revision"]
            .as_u64()
            .expect("readyz names the revision")
    }

    /// Audit events (newest first) for a query string like `flag=x&limit=5`.
    pub async fn audit(&self, query: &str) -> Vec<Value> {
        let r = self
            .admin()
            .get(&format!("/api/v1/audit?{query}"))
            .send()
            .await;
        r.assert_status(200);
        r.json()["events"]
            .as_array()
            .expect("an events array")
            .clone()
    }

    /// The flag's evaluation through the simple API, as admin: `query` is `user_id=u&env=e…`.
    pub async fn simple(&self, flag: &str, query: &str) -> Value {
        let r = self
            .admin()
            .get(&format!("/flags/{flag}?{query}"))
            .send()
            .await;
        r.assert_status(200);
        r.json()
    }

    /// Everything a rejected request must leave alone: the revision, the audit log, the
    /// configuration and the keys.
    pub async fn observe(&self) -> Observed {
        let export = self.admin().get("/api/v1/export").send().await;
        export.assert_status(200);
        let keys = self.admin().get("/api/v1/keys").send().await;
        keys.assert_status(200);
        Observed {
            revision: self.revision().await,
            audit_len: self.audit("limit=1000").await.len(),
            config: export.json(),
            keys: keys.json(),
        }
    }

    /// Asserts that nothing was written since `before`.
    pub async fn assert_unchanged(&self, before: &Observed, what: &str) {
        let now = self.observe().await;
        assert_eq!(&now, before, "{what}: nothing may be written");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// See [`Server::observe`].
#[derive(Debug, PartialEq)]
pub struct Observed {
    revision: u64,
    audit_len: usize,
    config: Value,
    keys: Value,
}

#[derive(Clone)]
enum Auth {
    None,
    Bearer(String),
    ApiKey(String),
}

/// A caller: a server and how requests authenticate.
pub struct As<'a> {
    server: &'a Server,
    auth: Auth,
}

impl As<'_> {
    /// A request with any method.
    pub fn call(&self, method: Method, path: &str) -> Call {
        let rb = self
            .server
            .client
            .request(method, format!("{}{path}", self.server.base));
        let rb = match &self.auth {
            Auth::None => rb,
            Auth::Bearer(key) => rb.bearer_auth(key),
            Auth::ApiKey(key) => rb.header("x-api-key", key),
        };
        Call { rb }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Call {
        self.call(Method::GET, path)
    }

    /// `PUT path`.
    pub fn put(&self, path: &str) -> Call {
        self.call(Method::PUT, path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> Call {
        self.call(Method::POST, path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Call {
        self.call(Method::DELETE, path)
    }

    /// `POST /ofrep/v1/evaluate/flags/{flag}` with `{"context": ctx}`.
    pub async fn ofrep(&self, flag: &str, ctx: Value) -> Resp {
        self.post(&format!("/ofrep/v1/evaluate/flags/{flag}"))
            .json(&json!({ "context": ctx }))
            .send()
            .await
    }
}

/// A request being built.
pub struct Call {
    rb: RequestBuilder,
}

impl Call {
    /// A JSON body.
    pub fn json(self, body: &Value) -> Call {
        Call {
            rb: self.rb.json(body),
        }
    }

    /// A raw body (no content type unless set with [`Call::header`]).
    pub fn body(self, body: impl Into<reqwest::Body>) -> Call {
        Call {
            rb: self.rb.body(body),
        }
    }

    /// A raw body with `Content-Type: application/json`.
    pub fn json_text(self, body: impl Into<reqwest::Body>) -> Call {
        self.header("content-type", "application/json").body(body)
    }

    /// A header.
    pub fn header(self, name: &str, value: &str) -> Call {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        let value = HeaderValue::from_str(value).expect("a header value");
        Call {
            rb: self.rb.header(name, value),
        }
    }

    /// Sends it and reads the whole answer.
    pub async fn send(self) -> Resp {
        let response = self.rb.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("the body is readable");
        Resp {
            status,
            headers,
            text,
        }
    }
}

/// A whole answer.
pub struct Resp {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub text: String,
}

impl std::fmt::Display for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.text)
    }
}

impl Resp {
    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {self}"))
    }

    /// Asserts the status.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Resp {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {self}");
        self
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `ETag` header.
    #[track_caller]
    pub fn etag(&self) -> String {
        self.header("etag")
            .unwrap_or_else(|| panic!("no ETag: {self}"))
            .to_owned()
    }

    /// Asserts an error in the API's format with this status and code, and returns the error
    /// object (`{"code", "message", "details"?}`).
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        self.assert_status(status);
        assert!(
            self.header("content-type")
                .is_some_and(|ct| ct.starts_with("application/json")),
            "errors are JSON: {self} ({:?})",
            self.headers
        );
        let body = self.json();
        let obj = body
            .as_object()
            .unwrap_or_else(|| panic!("an object: {self}"));
        assert_eq!(obj.len(), 1, "only `error` at the top level: {self}");
        let error = &body["error"];
        assert_eq!(error["code"], json!(code), "error code: {self}");
        let message = error["message"]
            .as_str()
            .unwrap_or_else(|| panic!("a message: {self}"));
        assert!(!message.is_empty(), "a message: {self}");
        for key in error.as_object().expect("an error object").keys() {
            assert!(
                matches!(key.as_str(), "code" | "message" | "details"),
                "unexpected field {key}: {self}"
            );
        }
        if let Some(details) = error.get("details") {
            for d in details
                .as_array()
                .unwrap_or_else(|| panic!("details is an array: {self}"))
            {
                assert!(d["path"].is_string(), "a detail has a path: {self}");
                assert!(d["message"].is_string(), "a detail has a message: {self}");
            }
        }
        error.clone()
    }

    /// The `details[].path`s of an error.
    pub fn detail_paths(&self) -> Vec<String> {
        self.json()["error"]["details"]
            .as_array()
            .map(|ds| {
                ds.iter()
                    .filter_map(|d| d["path"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Waits until `check` holds, polling, for at most [`PATIENCE`]. Returns whether it held.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
