//! Stream fan-out (PRODUCT.md section 6): N concurrent `GET /sdk/v1/stream` clients on one
//! server, one change through the admin API, and the time until each client has read it.
//!
//! ```text
//! cargo build --release -p vexil-cli
//! ulimit -n 20000    # each process holds one socket per client, plus a few
//! cargo run --release -p vexil-server --example fanout -- [--clients 10000] [--changes 5]
//!     [--server-bin target/release/vexil] [--connect-concurrency 256] [--client-threads 1]
//! ```
//!
//! The server is the real `vexil serve` binary, started by this program as a separate process
//! (a temporary SQLite store, the first admin key from `VEXIL_ADMIN_KEY`, a server key for
//! `production` made through the admin API), so the memory reported — `VmRSS` and `VmHWM` from
//! `/proc/PID/status` — is the server's alone, not the clients'. It also keeps each process
//! under the open-files limit: the clients' sockets are in this process, the server's in its own.
//!
//! The clients are raw HTTP/1.1 connections on a tokio runtime of this process
//! (`--client-threads` workers): each writes the `GET` with its `Authorization` header, reads
//! until the end of the first `put` event, then waits. Connections are opened at most
//! `--connect-concurrency` at a time (each until its `put` has arrived), so the server's listen
//! backlog never overflows. Then, `--changes` times, one after the other: the time is taken just
//! before the admin `PUT` of the flag is sent, and each client records when it has read the
//! `patch` event; the report gives p50, p99 and max over all clients, measured from just before
//! the write was sent (so it includes the write's own commit) and from its acknowledgement
//! (which can be negative: the server publishes a change before it answers the write). Every
//! loop is bounded in count and time, and all traffic goes to 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};

type BoxResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The admin key the server is started with.
const ADMIN_KEY: &str = "vexil_admin_00000000000000000000000000000000000000f1";
/// The flag every change rewrites.
const FLAG: &str = "fanout_flag";
/// How long all clients may take to connect and receive their `put`.
const CONNECT_DEADLINE: Duration = Duration::from_secs(300);
/// How long all clients may take to receive one change.
const CHANGE_DEADLINE: Duration = Duration::from_secs(60);
/// A client whose connection or `put` takes longer than this fails.
const CLIENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// The most bytes a client buffers while looking for an event's end.
const MAX_BUFFER: usize = 1 << 20;

#[derive(Debug, Clone)]
struct Args {
    clients: usize,
    changes: usize,
    server_bin: PathBuf,
    connect_concurrency: usize,
    client_threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = Args {
        clients: 10_000,
        changes: 5,
        server_bin: workspace.join("target/release/vexil"),
        connect_concurrency: 256,
        client_threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        let number = |v: String, min: usize, max: usize| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("{arg} takes a whole number from {min} to {max}, not `{v}`"))
        };
        match arg.as_str() {
            "--clients" => args.clients = number(value()?, 1, 30_000)?,
            "--changes" => args.changes = number(value()?, 1, 100)?,
            "--server-bin" => args.server_bin = PathBuf::from(value()?),
            "--connect-concurrency" => args.connect_concurrency = number(value()?, 1, 4096)?,
            "--client-threads" => args.client_threads = number(value()?, 1, 64)?,
            "-h" | "--help" => {
                println!(
                    "usage: fanout [--clients N] [--changes N] [--server-bin PATH] \
                     [--connect-concurrency N] [--client-threads N]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`; see --help")),
        }
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------------
// Processes and their memory

/// A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`, …), as MiB.
fn status_mib(pid: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The soft limit on open files of this process (inherited by the server), from
/// `/proc/self/limits`.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The server process, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Server {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn memory(&self) -> (f64, f64) {
        let pid = self.pid();
        (status_mib(&pid, "VmRSS"), status_mib(&pid, "VmHWM"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(args: &Args) -> BoxResult<Server> {
    if !args.server_bin.is_file() {
        return Err(format!(
            "no server binary at {}: build it with `cargo build --release -p vexil-cli`, or pass \
             --server-bin PATH",
            args.server_bin.display()
        )
        .into());
    }
    let dir = tempfile::TempDir::new()?;
    // A free port: bind, read it, release it for the server.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let child = Command::new(&args.server_bin)
        .arg("serve")
        .arg("--bind")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--log")
        .arg("warn")
        .env("VEXIL_ADMIN_KEY", ADMIN_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.server_bin.display()))?;
    Ok(Server {
        child,
        addr,
        _dir: dir,
    })
}

// ---------------------------------------------------------------------------------------------
// Admin calls

async fn admin(
    http: &reqwest::Client,
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> BoxResult<Value> {
    let r = http
        .request(method, format!("http://{}{path}", server.addr))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        return Err(format!("{path}: {status} {text}").into());
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Waits for `/healthz` (at most 10 s), then makes the flag and a server key; returns the key.
async fn prepare(http: &reqwest::Client, server: &Server) -> BoxResult<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let up = http
            .get(format!("http://{}/healthz", server.addr))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            break;
        }
        if Instant::now() > deadline {
            return Err("the server did not come up within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    admin(
        http,
        server,
        reqwest::Method::PUT,
        &format!("/api/v1/flags/{FLAG}"),
        json!({"description": "fan-out benchmark", "serve": "off"}),
    )
    .await?;
    let key = admin(
        http,
        server,
        reqwest::Method::POST,
        "/api/v1/keys",
        json!({"name": "fanout", "kind": "server", "environment": "production"}),
    )
    .await?;
    key["secret"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the key answer has no secret".into())
}

// ---------------------------------------------------------------------------------------------
// Stream clients

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads into `buf` until `done(buf)` gives an end offset; takes `buf` up to it.
async fn read_until(
    socket: &mut TcpStream,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> Option<usize>,
) -> Result<Vec<u8>, String> {
    let mut chunk = [0u8; 4096];
    // Bounded: every round reads at least one byte, and the buffer is capped.
    loop {
        if let Some(end) = done(buf) {
            return Ok(buf.drain(..end).collect());
        }
        if buf.len() > MAX_BUFFER {
            return Err("no event end within 1 MiB".into());
        }
        let n = socket.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the stream".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One stream client: connects, reads the response head and the `put`, reports ready, then
/// reports the arrival of each of `changes` patches.
async fn stream_client(
    id: usize,
    addr: SocketAddr,
    request: Arc<[u8]>,
    changes: usize,
    connect: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    arrivals: mpsc::UnboundedSender<(usize, Instant)>,
) {
    let permit = connect.acquire_owned().await;
    let setup = async {
        let mut socket = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        socket.set_nodelay(true).map_err(|e| e.to_string())?;
        socket
            .write_all(&request)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::with_capacity(1024);
        let head = read_until(&mut socket, &mut buf, |b| {
            find(b, b"\r\n\r\n").map(|end| end + 4)
        })
        .await?;
        if !head.starts_with(b"HTTP/1.1 200") {
            let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
            return Err(format!("answered {}", String::from_utf8_lossy(line)));
        }
        Ok::<_, String>((socket, buf))
    };
    let (mut socket, mut buf) = match tokio::time::timeout(CLIENT_CONNECT_TIMEOUT, setup).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let _ = ready.send(Err(format!("client {id}: {e}")));
            return;
        }
        Err(_) => {
            let _ = ready.send(Err(format!("client {id}: no answer within 60 s")));
            return;
        }
    };
    let put = read_until(&mut socket, &mut buf, |b| {
        let at = find(b, b"event: put")?;
        find(&b[at..], b"\n\n").map(|end| at + end + 2)
    });
    match tokio::time::timeout(CLIENT_CONNECT_TIMEOUT, put).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            let _ = ready.send(Err(format!("client {id}: before the put: {e}")));
            return;
        }
        Err(_) => {
            let _ = ready.send(Err(format!("client {id}: no put within 60 s")));
            return;
        }
    }
    drop(permit);
    let _ = ready.send(Ok(()));
    for _ in 0..changes {
        let patch = read_until(&mut socket, &mut buf, |b| {
            let at = find(b, b"event: patch")?;
            find(&b[at..], b"\n\n").map(|end| at + end + 2)
        });
        // Bounded by the main task, which gives up on a change after CHANGE_DEADLINE and then
        // drops the runtime (and this task).
        if patch.await.is_err() {
            return;
        }
        if arrivals.send((id, Instant::now())).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Report

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    format!(
        "min {:8.1}  p50 {:8.1}  p99 {:8.1}  max {:8.1} ms",
        ms.first().copied().unwrap_or(f64::NAN),
        percentile(&ms, 50.0),
        percentile(&ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN)
    )
}

fn main() -> BoxResult<()> {
    let args = parse_args().map_err(|e| format!("fanout: {e}"))?;
    let need = args.clients + 512;
    match open_files_limit() {
        Some(limit) if limit >= need => {}
        found => {
            return Err(format!(
                "fanout: {} clients need an open-files limit of at least {need} in this process \
                 and in the server (found {found:?}): run `ulimit -n {need}` first",
                args.clients
            )
            .into());
        }
    }
    println!(
        "machine: {} CPUs available; {} clients on a client runtime of {} thread(s); the server \
         is `vexil serve` in a process of its own (default runtime)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.clients,
        args.client_threads,
    );
    let server = start_server(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .thread_name("client")
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(&args, &server));
    // Drop the clients (and their sockets) before the server.
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(server);
    result
}

async fn run(args: &Args, server: &Server) -> BoxResult<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let key = prepare(&http, server).await?;
    // Let the server settle (its first fleet poll) before the idle figure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, hwm) = server.memory();
    println!("server memory, idle (no streams):        VmRSS {rss:7.1} MiB  VmHWM {hwm:7.1} MiB");

    let request: Arc<[u8]> = format!(
        "GET /sdk/v1/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n\
         Accept: text/event-stream\r\n\r\n",
        server.addr
    )
    .into_bytes()
    .into();
    let connect = Arc::new(Semaphore::new(args.connect_concurrency));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (arrival_tx, mut arrival_rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    for id in 0..args.clients {
        tokio::spawn(stream_client(
            id,
            server.addr,
            request.clone(),
            args.changes,
            connect.clone(),
            ready_tx.clone(),
            arrival_tx.clone(),
        ));
    }
    drop(ready_tx);
    drop(arrival_tx);
    let mut connected = 0;
    let deadline = tokio::time::Instant::now() + CONNECT_DEADLINE;
    while connected < args.clients {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => connected += 1,
            Ok(Some(Err(e))) => return Err(format!("a client failed to connect: {e}").into()),
            Ok(None) => return Err("every client task ended".into()),
            Err(_) => {
                return Err(format!(
                    "only {connected} of {} clients connected within {CONNECT_DEADLINE:?}",
                    args.clients
                )
                .into());
            }
        }
    }
    println!(
        "{} streams open, each with its put, in {:.1} s",
        args.clients,
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_open, hwm_open) = server.memory();
    println!(
        "server memory, {} streams open:        VmRSS {rss_open:7.1} MiB  VmHWM {hwm_open:7.1} MiB  \
         ({:.1} KiB a stream over idle)",
        args.clients,
        (rss_open - rss) * 1024.0 / args.clients as f64
    );
    let client_rss = status_mib("self", "VmRSS");
    println!(
        "client process (all {} client sockets): VmRSS {client_rss:7.1} MiB",
        args.clients
    );

    let mut all_send = Vec::new();
    let mut all_ack = Vec::new();
    for change in 0..args.changes {
        let serve = if change % 2 == 0 { "on" } else { "off" };
        let t_send = Instant::now();
        admin(
            &http,
            server,
            reqwest::Method::PUT,
            &format!("/api/v1/flags/{FLAG}"),
            json!({"description": "fan-out benchmark", "serve": serve}),
        )
        .await?;
        let t_ack = Instant::now();
        let mut send_ms = Vec::with_capacity(args.clients);
        let mut ack_ms = Vec::with_capacity(args.clients);
        let deadline = tokio::time::Instant::now() + CHANGE_DEADLINE;
        while send_ms.len() < args.clients {
            match tokio::time::timeout_at(deadline, arrival_rx.recv()).await {
                Ok(Some((_, at))) => {
                    send_ms.push(at.duration_since(t_send).as_secs_f64() * 1e3);
                    let from_ack = if at >= t_ack {
                        at.duration_since(t_ack).as_secs_f64()
                    } else {
                        -t_ack.duration_since(at).as_secs_f64()
                    };
                    ack_ms.push(from_ack * 1e3);
                }
                Ok(None) => return Err("every client task ended".into()),
                Err(_) => {
                    return Err(format!(
                        "change {}: only {} of {} clients had it after {CHANGE_DEADLINE:?}",
                        change + 1,
                        send_ms.len(),
                        args.clients
                    )
                    .into());
                }
            }
        }
        println!(
            "change {}: write acknowledged in {:6.1} ms; all {} clients had the patch",
            change + 1,
            t_ack.duration_since(t_send).as_secs_f64() * 1e3,
            args.clients
        );
        println!(
            "  from just before the write:  {}",
            summary(send_ms.clone())
        );
        println!("  from its acknowledgement:    {}", summary(ack_ms.clone()));
        all_send.extend(send_ms);
        all_ack.extend(ack_ms);
        // Let the wave settle before the next change.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (rss_end, hwm_end) = server.memory();
    println!(
        "server memory, after the changes:        VmRSS {rss_end:7.1} MiB  VmHWM {hwm_end:7.1} MiB"
    );
    println!(
        "all {} changes × {} clients, from just before the write: {}",
        args.changes,
        args.clients,
        summary(all_send)
    );
    println!(
        "all {} changes × {} clients, from the acknowledgement:   {}",
        args.changes,
        args.clients,
        summary(all_ack)
    );
    Ok(())
}
