//! The server benchmarks of PRODUCT.md section 6, in one process:
//!
//! - `--scenario http`: OFREP single evaluations over HTTP/1.1 keep-alive on loopback against
//!   the vexil server, then, with the same client, against a bare hyper server answering a fixed
//!   body of the same size; reports requests/s, p50/p99/max latency and the ratio vexil/bare
//!   (target ≥ 70%).
//! - `--scenario flags10k`: 10,000 flags written to a SQLite store, then loaded by a fresh
//!   process (this program again) that reports the load time, its resident memory and the time
//!   of one bulk evaluation of all of them (targets: load ≤ 1 s, memory ≤ 100 MB).
//!
//! ```text
//! cargo run --release -p vexil-server --example loadtest -- [--scenario http|flags10k|all]
//!     [--connections 32] [--duration 10] [--warmup 2] [--server-threads 1]
//!     [--client-threads 1] [--rounds 3] [--flags 10000]
//! ```
//!
//! Each server runs on a tokio runtime of its own (`--server-threads` workers), started when its
//! turn comes and shut down before the next one starts; the client runs on another runtime
//! (`--client-threads` workers). On a small machine client and server share the cores, so the
//! report also gives the CPU time each side spent per request (from `/proc/self/task/*/schedstat`,
//! by thread name), which does not depend on who got the cores. Every loop is bounded in count
//! and time, and all traffic goes to 127.0.0.1. The figures are recorded in `docs/benchmarks.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;

/// The same allocator as the `vexil` binary, so the in-process server is measured as it runs
/// in production (the bare hyper server gets it too).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use vexil_store::{ApiKey, Change, Commit, DynStore, Expected, KeyKind, SqliteStore};

type BoxResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The admin key the store is bootstrapped with.
const ADMIN_KEY: &str = "vexil_admin_00000000000000000000000000000000000000a1";
/// A server key for `production`: what the load is sent with.
const SERVER_KEY: &str = "vexil_server_0000000000000000000000000000000000000b2";
/// The flag evaluated by the HTTP scenario: targets, a segment rule, `in` + `semver_gte`, a
/// rollout rule and a default rollout.
const FLAG: &str = "release_00000";
/// How many flags the HTTP scenario's store holds (the evaluated one among them).
const HTTP_FLAGS: usize = 100;
/// How many different request bodies (targeting keys) the client cycles through.
const CONTEXTS: usize = 1000;
/// Flags per commit when filling a store.
const BATCH: usize = 500;
/// A bound on the requests of one connection, whatever the duration.
const MAX_REQUESTS_PER_CONNECTION: usize = 5_000_000;
/// A request slower than this counts as an error and ends its connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Http,
    Flags10k,
    All,
}

#[derive(Debug, Clone)]
struct Args {
    scenario: Scenario,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    server_threads: usize,
    client_threads: usize,
    rounds: usize,
    flags: usize,
    /// Internal: load the store in this directory and report (the second process of
    /// `flags10k`).
    child_load: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        scenario: Scenario::All,
        connections: 32,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        server_threads: 1,
        client_threads: 1,
        rounds: 3,
        flags: 10_000,
        child_load: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        let number = |v: String, min: u64, max: u64| -> Result<u64, String> {
            v.parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("{arg} takes a whole number from {min} to {max}, not `{v}`"))
        };
        match arg.as_str() {
            "--scenario" => {
                args.scenario = match value()?.as_str() {
                    "http" => Scenario::Http,
                    "flags10k" => Scenario::Flags10k,
                    "all" => Scenario::All,
                    other => {
                        return Err(format!("unknown scenario `{other}`: http, flags10k or all"));
                    }
                }
            }
            "--connections" => args.connections = number(value()?, 1, 1024)? as usize,
            "--duration" => args.duration = Duration::from_secs(number(value()?, 1, 300)?),
            "--warmup" => args.warmup = Duration::from_secs(number(value()?, 0, 60)?),
            "--server-threads" => args.server_threads = number(value()?, 1, 64)? as usize,
            "--client-threads" => args.client_threads = number(value()?, 1, 64)? as usize,
            "--rounds" => args.rounds = number(value()?, 1, 20)? as usize,
            "--flags" => args.flags = number(value()?, 1, 100_000)? as usize,
            "--child-load" => args.child_load = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!(
                    "usage: loadtest [--scenario http|flags10k|all] [--connections N] [--duration S] \
                     [--warmup S] [--server-threads N] [--client-threads N] [--rounds N] [--flags N]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`; see --help")),
        }
    }
    Ok(args)
}

fn main() -> BoxResult<()> {
    let args = parse_args().map_err(|e| format!("loadtest: {e}"))?;
    if let Some(dir) = &args.child_load {
        return child_load(dir, &args);
    }
    println!(
        "machine: {} CPUs available to this process",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if matches!(args.scenario, Scenario::Http | Scenario::All) {
        http_scenario(&args)?;
    }
    if matches!(args.scenario, Scenario::Flags10k | Scenario::All) {
        flags_scenario(&args)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Flags and stores

#[path = "../benches/common/flags.rs"]
mod flags;
use flags::flag;

/// A request body: a small context, with the targeting key `user-{i}`.
fn context_body(i: usize) -> Bytes {
    let body = json!({"context": {
        "targetingKey": format!("user-{i}"),
        "plan": if i % 3 == 0 { "enterprise" } else { "free" },
        "email": "someone@example.org",
        "app_version": "2.2.9",
        "country": "DE",
        "account_id": format!("acct-{}", i % 97),
    }});
    Bytes::from(serde_json::to_vec(&body).unwrap())
}

fn commit(base_revision: u64, action: &str, changes: Vec<Change>) -> Commit {
    Commit {
        base_revision,
        actor: "loadtest".into(),
        action: action.into(),
        target: "config".into(),
        comment: None,
        before: None,
        after: None,
        changes,
    }
}

/// Bootstraps a new store (admin key [`ADMIN_KEY`]), adds the server key [`SERVER_KEY`] for
/// `production`, the segment `internal` and `flags` flags, [`BATCH`] per commit.
async fn fill_store(store: &DynStore, flags: usize) -> BoxResult<()> {
    vexil_server::bootstrap(store, Some(ADMIN_KEY)).await?;
    let mut revision = store.snapshot().await?.revision;
    let key = ApiKey {
        id: "loadtest-server".into(),
        name: "loadtest".into(),
        kind: KeyKind::Server,
        environment: Some("production".into()),
        secret_hash: vexil_server::auth::hash_secret(SERVER_KEY),
        created_at: jiff::Timestamp::now(),
        revoked_at: None,
    };
    let segment = json!({
        "description": "Staff and contractors",
        "include": ["user-1"],
        "when": [{"attribute": "email", "op": "ends_with", "values": ["@company.com"], "ignore_case": true}]
    });
    let changes = vec![
        Change::CreateKey(key),
        Change::PutSegment {
            name: "internal".into(),
            definition: segment,
            expected: Expected::Absent,
        },
    ];
    revision = store
        .commit(commit(revision, "setup", changes))
        .await?
        .revision;
    let mut next = 0;
    while next < flags {
        let end = (next + BATCH).min(flags);
        let changes = (next..end)
            .map(|i| {
                let (key, definition) = flag(i);
                Change::PutFlag {
                    key,
                    definition,
                    expected: Expected::Absent,
                }
            })
            .collect();
        revision = store
            .commit(commit(revision, "import", changes))
            .await?
            .revision;
        next = end;
    }
    Ok(())
}

fn runtime(threads: usize, name: &str) -> BoxResult<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()?)
}

// ---------------------------------------------------------------------------------------------
// Measuring the process

/// CPU time (ns) spent so far by this process's live threads whose name starts with `prefix`.
fn cpu_ns(prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut total = 0;
    for task in tasks.flatten() {
        let path = task.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let Ok(schedstat) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        total += schedstat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// `(VmRSS, VmHWM)` of this process in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ---------------------------------------------------------------------------------------------
// The HTTP client

/// What a connection needs to send its requests.
struct Load {
    addr: SocketAddr,
    path: String,
    bodies: Vec<Bytes>,
    auth: HeaderValue,
}

impl Load {
    fn request(&self, i: usize) -> Request<Full<Bytes>> {
        Request::post(self.path.as_str())
            .header(HOST, "127.0.0.1")
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(self.bodies[i % self.bodies.len()].clone()))
            .unwrap()
    }
}

async fn connect(
    addr: SocketAddr,
) -> BoxResult<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends one request on a new connection: `(status, body)`.
async fn once(load: &Load, i: usize) -> BoxResult<(StatusCode, Bytes)> {
    let mut sender = connect(load.addr).await?;
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let response = sender.send_request(load.request(i)).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    })
    .await??;
    Ok(answer)
}

/// What the connections of one run saw inside the measured window.
struct Run {
    /// Latencies of the requests that started and finished inside the window, in ns.
    latencies: Vec<u64>,
    /// Failed requests (any status but 200, transport errors, timeouts) inside the window.
    errors: u64,
    /// The window.
    window: Duration,
    /// CPU time of the server's threads during the window, ns.
    server_cpu: u64,
    /// CPU time of the client's threads during the window, ns.
    client_cpu: u64,
    /// CPU time of the other processes on the machine during the window, ns.
    others_cpu: u64,
}

/// One keep-alive connection sending requests back to back until `end`.
async fn connection(
    load: Arc<Load>,
    first: usize,
    stride: usize,
    measure: Instant,
    end: Instant,
) -> (Vec<u64>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut sender = match connect(load.addr).await {
        Ok(s) => s,
        Err(_) => return (latencies, 1),
    };
    let mut i = first;
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let request = load.request(i);
        i += stride;
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        })
        .await;
        let done = Instant::now();
        let counted = started >= measure && done <= end;
        match outcome {
            Ok(Ok(StatusCode::OK)) => {
                if counted {
                    latencies.push(u64::try_from((done - started).as_nanos()).unwrap_or(u64::MAX));
                }
            }
            Ok(Ok(_)) => errors += u64::from(counted),
            Ok(Err(_)) | Err(_) => {
                // The connection is unusable after a transport error or a timeout.
                errors += 1;
                break;
            }
        }
    }
    (latencies, errors)
}

/// CPU time (ns) the whole machine has spent busy, from `/proc/stat` (USER_HZ is 100 on
/// Linux).
fn machine_busy_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next().and_then(|l| l.strip_prefix("cpu ")) else {
        return 0;
    };
    let fields: Vec<u64> = cpu
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …: busy is all but idle and iowait.
    let busy: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    busy * 10_000_000
}

/// CPU time (ns) of this whole process, all threads, from `/proc/self/stat` (USER_HZ 100).
fn process_ns() -> u64 {
    // utime and stime, the 14th and 15th fields, counted after the `)` that ends the 2nd.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks * 10_000_000
}

/// Drives `connections` connections for `warmup + duration`, measuring the last `duration`.
async fn drive(load: Arc<Load>, args: &Args, server_threads: &'static str) -> Run {
    let start = Instant::now();
    let measure = start + args.warmup;
    let end = measure + args.duration;
    let mut tasks = JoinSet::new();
    for c in 0..args.connections {
        tasks.spawn(connection(load.clone(), c, args.connections, measure, end));
    }
    let sample = || {
        (
            cpu_ns(server_threads),
            cpu_ns("lt-client"),
            machine_busy_ns(),
            process_ns(),
        )
    };
    tokio::time::sleep_until(measure.into()).await;
    let (server0, client0, machine0, process0) = sample();
    tokio::time::sleep_until(end.into()).await;
    let (server1, client1, machine1, process1) = sample();
    let mut run = Run {
        latencies: Vec::new(),
        errors: 0,
        window: args.duration,
        server_cpu: server1.saturating_sub(server0),
        client_cpu: client1.saturating_sub(client0),
        others_cpu: (machine1.saturating_sub(machine0))
            .saturating_sub(process1.saturating_sub(process0)),
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((latencies, errors)) => {
                run.latencies.extend(latencies);
                run.errors += errors;
            }
            Err(_) => run.errors += 1,
        }
    }
    run
}

/// The summary of a run.
struct Summary {
    rps: f64,
    p50: f64,
    p99: f64,
    max: f64,
    requests: usize,
    errors: u64,
    server_cpu_us: f64,
    client_cpu_us: f64,
    /// Cores the other processes of the machine kept busy, on average.
    others_cores: f64,
}

fn summarize(mut run: Run) -> Summary {
    run.latencies.sort_unstable();
    let n = run.latencies.len();
    let at = |q: f64| -> f64 {
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        run.latencies[rank - 1] as f64 / 1000.0
    };
    let per_request = |ns: u64| {
        if n == 0 {
            f64::NAN
        } else {
            ns as f64 / n as f64 / 1000.0
        }
    };
    Summary {
        rps: n as f64 / run.window.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
        requests: n,
        errors: run.errors,
        server_cpu_us: per_request(run.server_cpu),
        client_cpu_us: per_request(run.client_cpu),
        others_cores: run.others_cpu as f64 / run.window.as_nanos() as f64,
    }
}

fn report(name: &str, s: &Summary) {
    println!(
        "{name:<6} {:>8.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  max {:>7.0} µs  | {} requests, {} \
         errors | CPU/request: server {:.1} µs, client {:.1} µs | other processes: {:.2} cores",
        s.rps,
        s.p50,
        s.p99,
        s.max,
        s.requests,
        s.errors,
        s.server_cpu_us,
        s.client_cpu_us,
        s.others_cores
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario: OFREP single evaluation over HTTP, vexil against bare hyper

fn http_scenario(args: &Args) -> BoxResult<()> {
    println!(
        "\n== OFREP single evaluation over HTTP/1.1 keep-alive: {} connections, {} s measured \
         after {} s warm-up, {} round(s) of vexil then bare; server runtime {} worker \
         thread(s), client runtime {} ==",
        args.connections,
        args.duration.as_secs(),
        args.warmup.as_secs(),
        args.rounds,
        args.server_threads,
        args.client_threads
    );
    let client = runtime(args.client_threads, "lt-client")?;
    let bodies: Vec<Bytes> = (0..CONTEXTS).map(context_body).collect();
    let auth = HeaderValue::from_str(&format!("Bearer {SERVER_KEY}"))?;
    let path = format!("/ofrep/v1/evaluate/flags/{FLAG}");

    // The vexil state, loaded once from its store; each round serves it on a new runtime.
    let dir = tempfile::tempdir()?;
    let setup = runtime(1, "lt-setup")?;
    let store: DynStore = Arc::new(SqliteStore::open(dir.path())?);
    let state = setup.block_on(async {
        fill_store(&store, HTTP_FLAGS).await?;
        BoxResult::Ok(vexil_server::AppState::load(store, vexil_server::Source::Store).await?)
    })?;
    setup.shutdown_timeout(Duration::from_secs(5));

    let mut sample = None;
    let mut ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    let (mut vexil_total, mut bare_total) = (0usize, 0usize);
    for round in 1..=args.rounds {
        // The vexil server, on a runtime of its own.
        let server = runtime(args.server_threads, "lt-vexil")?;
        let listener = server.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let load = Arc::new(Load {
            addr: listener.local_addr()?,
            path: path.clone(),
            bodies: bodies.clone(),
            auth: auth.clone(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = server.spawn(vexil_server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        let (status, answer) = client.block_on(once(&load, 0))?;
        if status != StatusCode::OK {
            return Err(format!(
                "vexil answered {status}: {}",
                String::from_utf8_lossy(&answer)
            )
            .into());
        }
        if sample.is_none() {
            println!(
                "vexil's answer ({} bytes), also the bare server's fixed body: {}",
                answer.len(),
                String::from_utf8_lossy(&answer)
            );
        }
        let body = sample.get_or_insert(answer).clone();
        let vexil = summarize(client.block_on(drive(load, args, "lt-vexil")));
        let _ = stop.send(());
        server
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), serving).await })???;
        server.shutdown_timeout(Duration::from_secs(5));

        // The bare hyper server, answering vexil's answer as a fixed body.
        let server = runtime(args.server_threads, "lt-bare")?;
        let listener = server.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let load = Arc::new(Load {
            addr: listener.local_addr()?,
            path: path.clone(),
            bodies: bodies.clone(),
            auth: auth.clone(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = server.spawn(bare_server(listener, body.clone(), stopped));
        let (status, bare_answer) = client.block_on(once(&load, 0))?;
        if status != StatusCode::OK || bare_answer != body {
            return Err("the bare server does not answer the fixed body".into());
        }
        let bare = summarize(client.block_on(drive(load, args, "lt-bare")));
        let _ = stop.send(());
        server
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), serving).await })??;
        server.shutdown_timeout(Duration::from_secs(5));

        println!("round {round}:");
        report("vexil", &vexil);
        report("bare", &bare);
        let ratio = vexil.rps / bare.rps;
        println!(
            "       ratio vexil/bare: {:.1}% of the throughput; server CPU per request \
             vexil/bare: {:.2}x",
            100.0 * ratio,
            vexil.server_cpu_us / bare.server_cpu_us
        );
        if vexil.errors + bare.errors > 0 {
            return Err("some requests failed".into());
        }
        ratios.push(ratio);
        cpu_ratios.push(vexil.server_cpu_us / bare.server_cpu_us);
        vexil_total += vexil.requests;
        bare_total += bare.requests;
    }
    client.shutdown_timeout(Duration::from_secs(5));
    println!(
        "over {} round(s): throughput vexil/bare {:.1}% (all requests), median of the rounds \
         {:.1}%, lowest {:.1}% (target ≥ 70%); server CPU per request vexil/bare, median: {:.2}x",
        args.rounds,
        100.0 * vexil_total as f64 / bare_total as f64,
        100.0 * median(ratios.clone()),
        100.0 * ratios.iter().copied().fold(f64::INFINITY, f64::min),
        median(cpu_ratios)
    );
    Ok(())
}

/// A bare hyper HTTP/1.1 server (keep-alive) answering every request with `body`, until `stop`.
async fn bare_server(listener: TcpListener, body: Bytes, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let body = body.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let body = body.clone();
                        async move {
                            // Read the request body, as any real handler would.
                            let _ = request.into_body().collect().await;
                            let mut response = Response::new(Full::new(body));
                            response
                                .headers_mut()
                                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
    // The client has closed its connections by now; wait for them, bounded.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Scenario: 10,000 flags

fn flags_scenario(args: &Args) -> BoxResult<()> {
    println!(
        "\n== {} flags: load time, resident memory, one bulk evaluation ==",
        args.flags
    );
    let dir = tempfile::tempdir()?;
    {
        let rt = runtime(args.server_threads, "lt-vexil")?;
        let started = Instant::now();
        let store: DynStore = Arc::new(SqliteStore::open(dir.path())?);
        rt.block_on(fill_store(&store, args.flags))?;
        println!(
            "wrote {} flags in {} commits of up to {BATCH}: {:.2} s",
            args.flags,
            args.flags.div_ceil(BATCH),
            started.elapsed().as_secs_f64()
        );
        let db = dir.path().join(SqliteStore::FILE_NAME);
        println!(
            "database file: {:.1} MiB",
            std::fs::metadata(&db).map_or(f64::NAN, |m| m.len() as f64 / 1048576.0)
        );
    }
    // A fresh process loads it, so its memory is that of a server that has only loaded them.
    let status = Command::new(std::env::current_exe()?)
        .arg("--child-load")
        .arg(dir.path())
        .args(["--flags", &args.flags.to_string()])
        .args(["--server-threads", &args.server_threads.to_string()])
        .status()?;
    if !status.success() {
        return Err(format!("the loading process failed: {status}").into());
    }
    Ok(())
}

/// The second process of `flags10k`: opens the store in `dir`, loads it, reports.
fn child_load(dir: &Path, args: &Args) -> BoxResult<()> {
    let (rss, _) = memory_mib();
    println!("[fresh process] resident memory at start: {rss:.1} MiB");
    let server = runtime(args.server_threads, "lt-vexil")?;
    let started = Instant::now();
    let store: DynStore = Arc::new(SqliteStore::open(dir)?);
    let opened = started.elapsed();
    let started = Instant::now();
    let state = server.block_on(vexil_server::AppState::load(
        store,
        vexil_server::Source::Store,
    ))?;
    let loaded = started.elapsed();
    let (rss, hwm) = memory_mib();
    let live = state.live();
    let count = live.config.flags().len();
    if count != args.flags {
        return Err(format!("loaded {count} flags, expected {}", args.flags).into());
    }
    println!(
        "[fresh process] SqliteStore::open: {:.1} ms; AppState::load ({count} flags: read + \
         compile): {:.1} ms",
        opened.as_secs_f64() * 1e3,
        loaded.as_secs_f64() * 1e3
    );
    println!("[fresh process] after load: VmRSS {rss:.1} MiB, peak VmHWM {hwm:.1} MiB");

    // The server-side work of one bulk evaluation of every flag, without HTTP.
    let env = live
        .config
        .env("production")
        .ok_or("no production environment")?;
    let ctx_value: Value = serde_json::from_slice(&context_body(123))?;
    let ctx = vexil_engine::Context::try_from(ctx_value["context"].clone())?;
    let mut server_side = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (body, _) = vexil_server::routes::eval::ofrep_bulk_body(
            state.metrics(),
            &env,
            &ctx,
            jiff::Timestamp::now(),
        )?;
        server_side.push((started.elapsed(), body.len()));
    }
    drop(live);

    // The same over HTTP: one request at a time on a new connection each.
    let listener = server.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let load = Load {
        addr: listener.local_addr()?,
        path: "/ofrep/v1/evaluate/flags".into(),
        bodies: vec![context_body(123)],
        auth: HeaderValue::from_str(&format!("Bearer {SERVER_KEY}"))?,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = server.spawn(vexil_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut over_http = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (status, body) = client.block_on(once(&load, 0))?;
        let took = started.elapsed();
        if status != StatusCode::OK {
            return Err(format!("bulk evaluation answered {status}").into());
        }
        let answer: Value = serde_json::from_slice(&body)?;
        let n = answer["flags"].as_array().map_or(0, Vec::len);
        if n != count {
            return Err(format!("bulk evaluation answered {n} flags, expected {count}").into());
        }
        over_http.push((took, body.len()));
    }
    let _ = stop.send(());
    server
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), serving).await })???;
    let (rss_after, hwm_after) = memory_mib();
    let ms = |v: &[(Duration, usize)]| {
        v.iter()
            .map(|(d, _)| format!("{:.1}", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "[fresh process] bulk evaluation of {count} flags, server side (evaluate + serialize + \
         ETag), 5 times: {} ms ({} bytes)",
        ms(&server_side),
        server_side[0].1
    );
    println!(
        "[fresh process] bulk evaluation of {count} flags over HTTP (POST \
         /ofrep/v1/evaluate/flags, new connection, whole answer read), 5 times: {} ms ({} bytes)",
        ms(&over_http),
        over_http[0].1
    );
    println!(
        "[fresh process] after the bulk evaluations: VmRSS {rss_after:.1} MiB, peak VmHWM \
         {hwm_after:.1} MiB"
    );
    server.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}
