//! A PostgreSQL database of its own for each fleet test: `vexil_fleet_…`, created through the
//! `postgres` database of the server on 127.0.0.1:5432 (user `postgres`, trust authentication,
//! as in CI) and dropped when the test ends, whatever the servers still hold open.
//!
//! Without a reachable PostgreSQL a test prints why and passes, unless
//! `VEXIL_REQUIRE_POSTGRES=1`: then it fails (CI sets it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio_postgres::NoTls;

/// Where the tests find PostgreSQL, and the database they connect to for creating others.
const SERVER: &str = "127.0.0.1:5432";
const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long a test waits for PostgreSQL to answer before deciding it is not there.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// A database for one test, dropped with the value.
pub struct TestDatabase {
    name: String,
}

impl TestDatabase {
    /// A fresh, empty database; `None` (having printed why) when there is no PostgreSQL to test
    /// against and it is not required.
    pub async fn create() -> Option<TestDatabase> {
        match TestDatabase::try_create().await {
            Ok(database) => Some(database),
            Err(why) if required() => panic!(
                "PostgreSQL is required (VEXIL_REQUIRE_POSTGRES=1) but {why}; start it on \
                 {SERVER} with trust authentication for the user postgres"
            ),
            Err(why) => {
                eprintln!(
                    "skipped: {why}. Start PostgreSQL on {SERVER} (user postgres, trust \
                     authentication) to run this test, or set VEXIL_REQUIRE_POSTGRES=1 to fail \
                     instead of skipping"
                );
                None
            }
        }
    }

    async fn try_create() -> Result<TestDatabase, String> {
        let admin = connect(ADMIN_URL)
            .await
            .map_err(|e| format!("PostgreSQL is not reachable at {SERVER}: {e}"))?;
        let name = unique_name();
        // template0: nobody connects to it, so databases can be created at once by tests
        // running in parallel.
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
            .await
            .map_err(|e| format!("cannot create a test database on {SERVER}: {}", chain(&e)))?;
        Ok(TestDatabase { name })
    }

    /// The URL `vexil serve --database-url` is given.
    pub fn url(&self) -> String {
        format!("postgres://postgres@{SERVER}/{}", self.name)
    }

    /// The URL of the same database reached through `addr` (a proxy in front of PostgreSQL).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        format!("postgres://postgres@{addr}/{}", self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop cannot wait on the test's runtime (it may be the one being shut down), so a thread
        // with a runtime of its own does the work.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = connect(ADMIN_URL).await?;
                // FORCE: servers killed a moment ago may still have sessions open.
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| chain(&e))
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping the test database {} panicked", self.name),
        }
    }
}

/// Whether a missing PostgreSQL fails the test rather than skipping it.
// The workspace bans reading the environment so that the binaries take their configuration
// through clap, in one place. A test has no command line of its own: `VEXIL_REQUIRE_POSTGRES` is
// how CI makes these tests required, and this is the one place it is read.
#[allow(clippy::disallowed_methods)]
fn required() -> bool {
    std::env::var("VEXIL_REQUIRE_POSTGRES").is_ok_and(|v| v.trim() == "1")
}

/// Connects with a deadline, driving the connection on the current runtime.
async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) =
        tokio::time::timeout(REACH_TIMEOUT, tokio_postgres::connect(url, NoTls))
            .await
            .map_err(|_| format!("no answer within {REACH_TIMEOUT:?}"))?
            .map_err(|e| chain(&e))?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; either is fine here.
        let _ = connection.await;
    });
    Ok(client)
}

/// An error and its causes, on one line.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// `vexil_fleet_<pid>_<nanoseconds>_<n>`: unique across the tests of a run and across runs.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("vexil_fleet_{}_{nanos}_{n}", std::process::id())
}
