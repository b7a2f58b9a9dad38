//! The test server, a recording TCP proxy, and waiting helpers.
//!
//! The server runs the real router over a real SQLite store, on a tokio runtime of its own in a
//! thread of its own: stopping it drops that runtime, which ends every task at once and closes
//! every socket, open SDK streams included — as when the process dies. (A graceful shutdown
//! would wait for the streams, which never end by themselves.) It can be started again on the
//! same address and data directory.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;
use vexil_server::{AppState, Options, Source};
use vexil_store::{DynStore, SqliteStore};

/// The admin secret every test server is bootstrapped with.
pub const ADMIN: &str = "admin-secret";

/// How long a test waits for something that should happen soon. Generous: waits end as soon
/// as their condition holds, so only a failing test pays it in full.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running server.
pub struct TestServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// `http://ADDR`.
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// A server on a new port, over the store in `data` (created and bootstrapped if new).
    pub async fn start(data: &Path) -> TestServer {
        TestServer::start_at(data, "127.0.0.1:0".parse().unwrap()).await
    }

    /// A server on `addr` (retrying while the port is still held by a stopped one).
    pub async fn start_at(data: &Path, addr: SocketAddr) -> TestServer {
        let (ready_tx, ready_rx) = oneshot::channel::<SocketAddr>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let dir = data.to_owned();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let store: DynStore = Arc::new(SqliteStore::open(&dir).unwrap());
                vexil_server::bootstrap(&store, Some(ADMIN)).await.unwrap();
                let state = AppState::load_with(
                    store,
                    Source::Store,
                    Options {
                        heartbeat: Duration::from_secs(1),
                        ..Options::default()
                    },
                )
                .await
                .unwrap();
                let listener = bind(addr).await;
                let _ = ready_tx.send(listener.local_addr().unwrap());
                tokio::select! {
                    result = vexil_server::serve(listener, state, std::future::pending()) => result.unwrap(),
                    _ = stop_rx => {}
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(5));
        });
        let addr = ready_rx.await.expect("the test server starts");
        TestServer {
            addr,
            base: format!("http://{addr}"),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stops the server: every connection is cut, the port and the store are released.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .unwrap()
                .expect("the server thread does not panic");
        }
    }

    /// An admin request builder.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        http()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
    }

    /// `PUT /api/v1/flags/{key}` as admin; must succeed.
    pub async fn put_flag(&self, key: &str, definition: Value) {
        let r = self
            .admin(reqwest::Method::PUT, &format!("/api/v1/flags/{key}"))
            .json(&definition)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::CREATED,
            "PUT flag {key}: {status} {body}"
        );
    }

    /// Creates a key of `kind` for `production` and returns its secret.
    pub async fn key(&self, kind: &str) -> String {
        let r = self
            .admin(reqwest::Method::POST, "/api/v1/keys")
            .json(&json!({"name": format!("sdk-test-{kind}"), "kind": kind, "environment": "production"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        v["secret"].as_str().unwrap().to_owned()
    }

    /// The server's configuration revision (from `GET /sdk/v1/flags`).
    pub async fn revision(&self, key: &str) -> u64 {
        let v: Value = http()
            .get(format!("{}/sdk/v1/flags", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["revision"].as_u64().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn bind(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot bind {addr}: {e}"),
        }
    }
}

/// An HTTP client for the tests' own requests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

/// A port nothing listens on (bound, then released).
pub async fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Polls `check` every 10 ms until it holds or [`PATIENCE`] passes; whether it held.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`eventually`] for a synchronous condition.
pub async fn until(mut check: impl FnMut() -> bool) -> bool {
    eventually(|| std::future::ready(check())).await
}

/// One proxied connection: what the client sent and what it received.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// The bytes from the client, as text.
    pub request: String,
    /// The bytes to the client, as text.
    pub response: String,
}

#[derive(Default)]
struct ProxyState {
    exchanges: Vec<Arc<Mutex<Exchange>>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

/// A TCP proxy in front of a server that records every exchange and can cut connections,
/// refuse new ones, or refuse only the stream (`GET /sdk/v1/stream`) while passing the rest.
pub struct Proxy {
    /// `http://ADDR` of the proxy.
    pub base: String,
    state: Arc<Mutex<ProxyState>>,
    refuse: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    block_stream: Arc<AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `upstream` on a new port.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let refuse = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let block_stream = Arc::new(AtomicBool::new(false));
        let accept = tokio::spawn({
            let state = state.clone();
            let refuse = refuse.clone();
            let refused = refused.clone();
            let block_stream = block_stream.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if refuse.load(Ordering::SeqCst) {
                        refused.fetch_add(1, Ordering::SeqCst);
                        drop(client);
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        continue;
                    };
                    let exchange = Arc::new(Mutex::new(Exchange::default()));
                    let task =
                        tokio::spawn(pipe(client, server, exchange.clone(), block_stream.clone()));
                    let mut s = state.lock().unwrap();
                    s.exchanges.push(exchange);
                    s.tasks.push(task.abort_handle());
                }
            }
        });
        Proxy {
            base: format!("http://{addr}"),
            state,
            refuse,
            refused,
            block_stream,
            accept,
        }
    }

    /// Cuts every open connection.
    pub fn cut(&self) {
        for task in self.state.lock().unwrap().tasks.drain(..) {
            task.abort();
        }
    }

    /// Refuses (accepts and closes at once) new connections while `on`.
    pub fn refuse(&self, on: bool) {
        self.refuse.store(on, Ordering::SeqCst);
    }

    /// How many connections were refused so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Closes connections that ask for the stream while `on`; other requests pass.
    pub fn block_stream(&self, on: bool) {
        self.block_stream.store(on, Ordering::SeqCst);
    }

    /// Every exchange so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state
            .lock()
            .unwrap()
            .exchanges
            .iter()
            .map(|e| e.lock().unwrap().clone())
            .collect()
    }

    /// The exchanges that asked for the stream.
    pub fn streams(&self) -> Vec<Exchange> {
        self.exchanges()
            .into_iter()
            .filter(|e| e.request.contains("GET /sdk/v1/stream"))
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    exchange: Arc<Mutex<Exchange>>,
    block_stream: Arc<AtomicBool>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = {
        let exchange = exchange.clone();
        async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if block_stream.load(Ordering::SeqCst) && text.contains("/sdk/v1/stream") {
                    return;
                }
                exchange.lock().unwrap().request.push_str(&text);
                if server_write.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let downstream = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            exchange
                .lock()
                .unwrap()
                .response
                .push_str(&String::from_utf8_lossy(&buf[..n]));
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Either side ending ends the connection (HTTP clients here never half-close).
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// A listener that accepts connections and never answers (a hung server). Connections are
/// held until it is dropped.
pub struct Hang {
    /// `http://ADDR`.
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Hang {
    /// Starts one on a new port.
    pub async fn start() -> Hang {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Hang {
            base: format!("http://{addr}"),
            task,
        }
    }
}

impl Drop for Hang {
    fn drop(&mut self) {
        self.task.abort();
    }
}
