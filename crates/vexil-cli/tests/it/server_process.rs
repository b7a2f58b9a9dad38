//! `vexil serve` as a real process: started on `127.0.0.1:0` over a data directory (or, for a
//! fleet, a database URL), its address learned from the line it prints once it listens, and
//! killed when the handle is dropped. With [`Api`], a small admin-API client on top of reqwest,
//! for the tests that talk HTTP to it.

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The secret of the first admin key of every server these tests start (`VEXIL_ADMIN_KEY`).
pub const ADMIN_KEY: &str = "vexil_admin_test_0123456789abcdef0123456789abcdef01234567";

/// How long a server may take to print that it is listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The line `vexil serve` prints on stdout once its listener is bound.
const LISTENING: &str = "vexil: listening on ";

/// A running `vexil serve` process. Dropping it kills the process (SIGKILL on Unix).
pub struct Server {
    child: Child,
    base_url: String,
    /// What the process wrote to stderr so far (its log), for failure messages.
    stderr: Arc<Mutex<String>>,
    /// What it printed on stdout before it listened (the first admin key message, if any).
    startup: String,
}

impl Server {
    /// Starts `vexil serve --bind 127.0.0.1:0 --data-dir DATA_DIR` with [`ADMIN_KEY`] as
    /// `VEXIL_ADMIN_KEY`, and waits until it listens.
    pub fn start(data_dir: &Path) -> Server {
        Server::spawn(&[OsStr::new("--data-dir"), data_dir.as_os_str()])
    }

    /// Starts `vexil serve --bind 127.0.0.1:0 --database-url URL` (an instance of a fleet
    /// sharing one PostgreSQL database) with [`ADMIN_KEY`] as `VEXIL_ADMIN_KEY`, and waits until
    /// it listens. The server waits up to a minute for its database, so a database that is not
    /// there shows as a start that times out, with the server's log in the message.
    pub fn start_with_database(database_url: &str) -> Server {
        Server::spawn(&[OsStr::new("--database-url"), OsStr::new(database_url)])
    }

    /// Starts `vexil serve --bind 127.0.0.1:0 STORE_ARGS…` and waits until it listens.
    fn spawn(store_args: &[&OsStr]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vexil"));
        command
            .arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .args(store_args)
            .env("VEXIL_ADMIN_KEY", ADMIN_KEY)
            .env("VEXIL_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The caller's own configuration must not leak into the server under test.
        for name in [
            "VEXIL_BIND",
            "VEXIL_DATA_DIR",
            "VEXIL_DATABASE_URL",
            "VEXIL_FLAGS",
        ] {
            command.env_remove(name);
        }
        let mut child = command.spawn().expect("the vexil binary starts");

        // Both pipes are read to their end by threads of their own, so the server never blocks
        // on a full pipe however much it logs.
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut log = sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        let pipe = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = String::new();
            let mut before = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if let Some(url) = line.trim_end().strip_prefix(LISTENING) {
                            let _ = tx.send((url.to_owned(), before));
                            break;
                        }
                        before.push_str(&line);
                    }
                }
            }
            // Whatever else it prints is read and dropped.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });

        let mut server = Server {
            child,
            base_url: String::new(),
            stderr,
            startup: String::new(),
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok((url, startup)) => {
                server.base_url = url;
                server.startup = startup;
            }
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                // Give the stderr reader a moment to collect the last lines of a failed start.
                thread::sleep(Duration::from_millis(200));
                panic!(
                    "vexil serve did not report that it listens (exit status: {status:?}); its log:\n{}",
                    server.log()
                );
            }
        }
        server
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// An admin client of this server.
    pub fn admin(&self) -> Api {
        Api::new(&self.base_url, ADMIN_KEY)
    }

    /// What the server printed on stdout before it listened: the message about the first admin
    /// key when this process created it, else nothing.
    pub fn startup_output(&self) -> &str {
        &self.startup
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Kills the process at once (SIGKILL on Unix: no shutdown code runs) and reaps it.
    pub fn kill(mut self) {
        self.kill_and_wait();
    }

    fn kill_and_wait(&mut self) {
        // Fails only when the process has already exited, which is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_and_wait();
    }
}

/// A client of the HTTP API with one key, sending and receiving JSON.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base_url: String,
    key: String,
}

/// A response: its status, its `ETag` (if any) and its JSON body (`null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub body: Value,
}

impl Api {
    /// A client for `base_url` sending `Authorization: Bearer KEY`.
    pub fn new(base_url: &str, key: &str) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a reqwest client");
        Api {
            http,
            base_url: base_url.to_owned(),
            key: key.to_owned(),
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `METHOD PATH` with an optional `If-Match: "VERSION"` and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        if_match: Option<u64>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .bearer_auth(&self.key);
        if let Some(version) = if_match {
            request = request.header(reqwest::header::IF_MATCH, format!("\"{version}\""));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"));
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{method} {path}: the body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply { status, etag, body }
    }

    /// `GET PATH`, which must answer 200; its body.
    pub async fn get(&self, path: &str) -> Value {
        let reply = self.send(Method::GET, path, None, None).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.body);
        reply.body
    }
}
