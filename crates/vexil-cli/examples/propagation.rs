//! The fleet propagation benchmark of PRODUCT.md section 6: a change made on instance A reaching
//! an SDK connected to instance B, both instances sharing one PostgreSQL database (target: ≤ 1 s).
//!
//! ```text
//! cargo run --release -p vexil-cli --example propagation -- [--changes 200] [--warmup 10]
//!     [--server-threads 2]
//! ```
//!
//! It needs PostgreSQL on 127.0.0.1:5432 (user `postgres`, trust authentication): it creates a
//! database `vexil_bench_…` of its own and drops it at the end.
//!
//! Two vexil servers run in this process, each on a tokio runtime of its own (`--server-threads`
//! workers) with a `PostgresStore` of its own — its own pool and its own `LISTEN` connection — and
//! wired as `vexil serve --database-url postgres://…` wires them: bootstrap, load, the fleet
//! follower fed by `LISTEN` with the 5 s safety-net poll, the HTTP server on `127.0.0.1:0`. They
//! share nothing but the database. A `vexil::Client` (the SDK), on a third runtime, syncs with B
//! over `/sdk/v1/stream` with a server key.
//!
//! Each change is a `PUT /api/v1/flags/bench` on A that serves a new number. Its time runs from
//! just before the request to the SDK's subscription firing with a revision whose definitions
//! serve that number. Changes are sequential: the next is written once the SDK has the last.
//! The report gives p50, p90, p99 and max over `--changes` changes, after `--warmup` unmeasured
//! ones, and the same for the write's own round trip on A. Every wait is bounded, and all
//! traffic goes to 127.0.0.1. The figures are recorded in `docs/benchmarks.md`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio_postgres::NoTls;
use vexil_server::{AppState, Source};
use vexil_store::{DynStore, PostgresStore};

/// The PostgreSQL server, without a database.
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

/// The first admin key of the benchmark's database.
const ADMIN_KEY: &str = "vexil_admin_bench_0123456789abcdef0123456789abcdef012345";

/// The flag the benchmark changes.
const FLAG: &str = "bench";

/// How long one change may take to reach the SDK before the benchmark gives up.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the SDK may take to sync, and B to learn of the key made on A.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

struct Options {
    changes: usize,
    warmup: usize,
    server_threads: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        changes: 200,
        warmup: 10,
        server_threads: 2,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> anyhow::Result<usize> {
            let text = args
                .next()
                .with_context(|| format!("{arg} needs a value"))?;
            text.parse()
                .with_context(|| format!("{arg} {text}: not a number"))
        };
        match arg.as_str() {
            "--changes" => options.changes = value()?.max(1),
            "--warmup" => options.warmup = value()?,
            "--server-threads" => options.server_threads = value()?.max(1),
            _ => bail!(
                "unknown argument `{arg}`; usage: propagation [--changes N] [--warmup N] \
                 [--server-threads N]"
            ),
        }
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let bench = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench")
        .enable_all()
        .build()
        .context("cannot start the benchmark's runtime")?;
    let name = database_name();
    bench.block_on(admin_statement(&format!(
        "CREATE DATABASE {name} TEMPLATE template0"
    )))?;
    let url = format!("{POSTGRES}/{name}");
    let result = run(&bench, &url, &options);
    // The database goes, whatever happened; the servers' sessions with it go too (FORCE).
    let dropped = bench.block_on(admin_statement(&format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )));
    result?;
    dropped
}

fn run(bench: &Runtime, url: &str, options: &Options) -> anyhow::Result<()> {
    let a = Instance::start("a", url, options.server_threads)?;
    let b = Instance::start("b", url, options.server_threads)?;
    let report = bench.block_on(measure(&a.base_url, &b.base_url, options));
    a.stop();
    b.stop();
    let report = report?;
    println!(
        "fleet propagation (PostgreSQL), write on A → SDK on B: {} changes after {} warm-up, \
         {} server threads per instance",
        options.changes, options.warmup, options.server_threads
    );
    println!("  propagation        {}", stats(report.propagation));
    println!("  write on A (ack)   {}", stats(report.acknowledged));
    Ok(())
}

struct Report {
    /// From just before the write request to the SDK's subscription firing with it.
    propagation: Vec<Duration>,
    /// The write's round trip on A.
    acknowledged: Vec<Duration>,
}

async fn measure(a: &str, b: &str, options: &Options) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .timeout(CHANGE_TIMEOUT)
        .build()
        .context("cannot build an HTTP client")?;
    let created = send(
        &http,
        reqwest::Method::POST,
        &format!("{a}/api/v1/keys"),
        ADMIN_KEY,
        &json!({"name": "bench", "kind": "server", "environment": "production"}),
    )
    .await?;
    let server_key = created["secret"]
        .as_str()
        .context("no secret in the key's answer")?
        .to_owned();
    put(&http, a, 0).await?;

    // B learns of the key, made on A, through the database.
    let started = Instant::now();
    loop {
        let reply = http
            .get(format!("{b}/sdk/v1/flags"))
            .bearer_auth(&server_key)
            .send()
            .await?;
        if reply.status().is_success() {
            break;
        }
        if started.elapsed() > SETUP_TIMEOUT {
            bail!(
                "B did not learn of the server key made on A: {}",
                reply.status()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let client = vexil::Client::builder()
        .server(b, server_key.as_str())
        .build()
        .context("cannot build the SDK client")?;
    client
        .wait_ready(SETUP_TIMEOUT)
        .await
        .context("the SDK did not sync with B")?;
    let mut changes = client.subscribe();
    let ctx = vexil::Context::with_targeting_key("user-1");

    let mut report = Report {
        propagation: Vec::with_capacity(options.changes),
        acknowledged: Vec::with_capacity(options.changes),
    };
    for i in 1..=options.warmup + options.changes {
        let value = u64::try_from(i)?;
        changes.borrow_and_update();
        // The waiter runs while the write is in flight, so it notes the moment the subscription
        // fires even when that is before the write's answer arrives.
        let waiter = {
            let client = client.clone();
            let mut changes = changes.clone();
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + CHANGE_TIMEOUT;
                loop {
                    tokio::time::timeout_at(deadline, changes.changed())
                        .await
                        .map_err(|_| anyhow!("change {value} did not reach the SDK in time"))?
                        .map_err(|_| anyhow!("the SDK client stopped"))?;
                    let at = Instant::now();
                    let revision = *changes.borrow_and_update();
                    if client.number_value(FLAG, &ctx, -1.0) == value as f64 {
                        return anyhow::Ok((at, revision));
                    }
                }
            })
        };
        let started = Instant::now();
        put(&http, a, value).await?;
        let acknowledged = started.elapsed();
        let (seen, _revision) = waiter.await.context("the waiter panicked")??;
        if i > options.warmup {
            report.propagation.push(seen.duration_since(started));
            report.acknowledged.push(acknowledged);
        }
    }
    Ok(report)
}

/// `PUT /api/v1/flags/bench` on `base`, serving `value`.
async fn put(http: &reqwest::Client, base: &str, value: u64) -> anyhow::Result<()> {
    let definition =
        json!({"variants": {"value": value, "none": 0}, "off": "none", "serve": "value"});
    send(
        http,
        reqwest::Method::PUT,
        &format!("{base}/api/v1/flags/{FLAG}"),
        ADMIN_KEY,
        &definition,
    )
    .await
    .map(drop)
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let reply = http
        .request(method.clone(), url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = reply.status();
    let body: Value = reply
        .json()
        .await
        .with_context(|| format!("{method} {url}: reading the answer"))?;
    if !status.is_success() {
        bail!("{method} {url}: {status} {body}");
    }
    Ok(body)
}

/// One server, on a runtime of its own.
struct Instance {
    runtime: Runtime,
    base_url: String,
    shutdown: oneshot::Sender<()>,
}

impl Instance {
    /// Starts a server on `database_url` as `vexil serve --database-url` does.
    fn start(name: &str, database_url: &str, threads: usize) -> anyhow::Result<Instance> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(format!("server-{name}"))
            .enable_all()
            .build()
            .context("cannot start a server's runtime")?;
        let (shutdown, stop) = oneshot::channel::<()>();
        let addr = runtime.block_on(async {
            let store = PostgresStore::connect(database_url)
                .await
                .with_context(|| format!("cannot connect to {database_url}"))?;
            let nudges = store.listen();
            let store: DynStore = Arc::new(store);
            vexil_server::bootstrap(&store, Some(ADMIN_KEY))
                .await
                .map_err(|e| anyhow!("bootstrap: {e}"))?;
            let state = AppState::load(store, Source::Store)
                .await
                .map_err(|e| anyhow!("loading the configuration: {e}"))?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tokio::spawn(vexil_server::fleet::follow(
                state.clone(),
                Some(nudges),
                Duration::from_secs(5),
            ));
            tokio::spawn(vexil_server::serve(listener, state, async move {
                let _ = stop.await;
            }));
            anyhow::Ok(addr)
        })?;
        Ok(Instance {
            runtime,
            base_url: format!("http://{addr}"),
            shutdown,
        })
    }

    fn stop(self) {
        let _ = self.shutdown.send(());
        self.runtime.shutdown_timeout(Duration::from_secs(2));
    }
}

/// Runs one statement on the server's `postgres` database.
async fn admin_statement(sql: &str) -> anyhow::Result<()> {
    let (client, connection) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_postgres::connect(&format!("{POSTGRES}/postgres"), NoTls),
    )
    .await
    .map_err(|_| anyhow!("PostgreSQL on 127.0.0.1:5432 did not answer within 5 s"))?
    .context("cannot connect to PostgreSQL on 127.0.0.1:5432 as postgres")?;
    let driver = tokio::spawn(connection);
    let result = client
        .batch_execute(sql)
        .await
        .with_context(|| format!("`{sql}` failed"));
    drop(client);
    let _ = driver.await;
    result
}

/// `vexil_bench_<pid>_<nanoseconds>`.
fn database_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("vexil_bench_{}_{nanos}", std::process::id())
}

/// `p50 … p90 … p99 … max … (n …)`, nearest rank, in milliseconds.
fn stats(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    let n = samples.len();
    if n == 0 {
        return "no samples".into();
    }
    let rank = |q: f64| samples[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / n as f64;
    format!(
        "p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms   mean {:.1} ms   (n {n})",
        ms(rank(0.50)),
        ms(rank(0.90)),
        ms(rank(0.99)),
        ms(samples[n - 1]),
        mean
    )
}
