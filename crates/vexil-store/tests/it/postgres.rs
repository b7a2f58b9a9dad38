//! The conformance suite against PostgreSQL, and what only PostgreSQL has: several instances
//! on one database, migrations racing at start, `LISTEN`, connections that break.
//!
//! Each test gets a database of its own, `vexil_test_…`, created through the server named by
//! `VEXIL_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped
//! when the test ends. Without a reachable server each test says why and passes, unless
//! `VEXIL_REQUIRE_POSTGRES=1`: then it fails (CI sets it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde_json::json;
use tokio_postgres::NoTls;
use vexil_store::{AuditQuery, DynStore, Expected, PostgresStore, Store, StoreError};

use crate::conformance::{Fixture, by, describe, put_flag};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long a test waits for PostgreSQL to answer before deciding it is not there.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the tests find PostgreSQL, and whether they must.
struct Settings {
    /// A server and a database to connect to for creating and dropping test databases.
    admin_url: String,
    /// Whether a missing server fails the tests rather than skipping them.
    required: bool,
}

// The tests' only configuration is the environment: there is no command line to parse it.
#[allow(clippy::disallowed_methods)]
fn settings() -> Settings {
    Settings {
        admin_url: std::env::var("VEXIL_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_URL.to_owned()),
        required: std::env::var("VEXIL_REQUIRE_POSTGRES").is_ok_and(|value| value == "1"),
    }
}

/// A database of its own for one test, dropped with the fixture.
struct PostgresFixture {
    admin_url: String,
    name: String,
    url: String,
}

#[async_trait]
impl Fixture for PostgresFixture {
    async fn open(&self) -> DynStore {
        Arc::new(self.connect().await)
    }
}

impl PostgresFixture {
    async fn connect(&self) -> PostgresStore {
        PostgresStore::connect(&self.url).await.unwrap()
    }

    /// A plain connection to the test's database, for looking behind the store's back.
    async fn raw(&self) -> tokio_postgres::Client {
        raw_connect(&self.url).await.unwrap()
    }
}

impl Drop for PostgresFixture {
    fn drop(&mut self) {
        // Drop cannot wait on the test's runtime, so a thread of its own does the work.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = raw_connect(&admin_url).await?;
                // FORCE: the stores' pooled connections and listeners may still be open.
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("could not drop the test database {}: {err}", self.name),
            Err(_) => eprintln!("dropping the test database {} panicked", self.name),
        }
    }
}

/// Connects without the store, driving the connection on the current runtime.
async fn raw_connect(
    url: &str,
) -> Result<tokio_postgres::Client, Box<dyn std::error::Error + Send + Sync>> {
    let (client, connection) =
        tokio::time::timeout(REACH_TIMEOUT, tokio_postgres::connect(url, NoTls))
            .await
            .map_err(|_| format!("no answer within {REACH_TIMEOUT:?}"))??;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; either is fine here.
        let _ = connection.await;
    });
    Ok(client)
}

/// A fresh database, or `None` (having said why) when there is no PostgreSQL to test against.
async fn fresh() -> Option<PostgresFixture> {
    let settings = settings();
    match create_database(&settings.admin_url).await {
        Ok(fixture) => Some(fixture),
        Err(why) if settings.required => panic!(
            "PostgreSQL is required (VEXIL_REQUIRE_POSTGRES=1) but {why}; start it, or point \
             VEXIL_TEST_POSTGRES_URL at one"
        ),
        Err(why) => {
            eprintln!(
                "skipped: {why}. Set VEXIL_TEST_POSTGRES_URL to a PostgreSQL server to run \
                 this test, or VEXIL_REQUIRE_POSTGRES=1 to fail instead of skipping"
            );
            None
        }
    }
}

async fn create_database(admin_url: &str) -> Result<PostgresFixture, String> {
    // The URL may hold a password: only the default one is shown.
    let shown = if admin_url == DEFAULT_URL {
        DEFAULT_URL
    } else {
        "VEXIL_TEST_POSTGRES_URL"
    };
    let admin = raw_connect(admin_url)
        .await
        .map_err(|err| format!("PostgreSQL is not reachable at {shown}: {}", chain(&*err)))?;
    let name = unique_name();
    // template0: nobody connects to it, so creating several databases at once cannot trip on
    // "source database is being accessed by other users".
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
        .await
        .map_err(|err| format!("cannot create a test database on {shown}: {}", chain(&err)))?;
    Ok(PostgresFixture {
        admin_url: admin_url.to_owned(),
        url: with_database(admin_url, &name),
        name,
    })
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

/// `vexil_test_<pid>_<time>_<n>`: unique across the tests of a run and across runs.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("vexil_test_{}_{nanos}_{n}", std::process::id())
}

/// The same server URL with another database.
fn with_database(url: &str, database: &str) -> String {
    let Some(rest) = url
        .strip_prefix("postgres://")
        .map(|rest| ("postgres://", rest))
        .or_else(|| {
            url.strip_prefix("postgresql://")
                .map(|r| ("postgresql://", r))
        })
    else {
        // The key=value form: a later key wins.
        return format!("{url} dbname={database}");
    };
    let (scheme, rest) = rest;
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query
        .split_once('/')
        .map_or(before_query, |(a, _)| a);
    match query {
        Some(query) => format!("{scheme}{authority}/{database}?{query}"),
        None => format!("{scheme}{authority}/{database}"),
    }
}

mod conformance {
    use super::fresh;

    conformance_tests!(fresh());
}

// ---------------------------------------------------------------------------------------------
// A fleet: several stores on one database.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_writing_at_once_lose_no_update() {
    const WRITERS: usize = 8;
    const INCREMENTS: u64 = 6;
    let Some(fixture) = fresh().await else { return };
    let stores = [fixture.connect().await, fixture.connect().await];
    stores[0]
        .commit(by(
            "setup",
            0,
            vec![put_flag("counter", &json!({"count": 0}), Expected::Absent)],
        ))
        .await
        .unwrap();

    // Each writer adds one to the counter INCREMENTS times, through its own instance,
    // re-reading and retrying whenever another writer got in first.
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = stores[writer % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            let mut lost = 0;
            while done < INCREMENTS {
                let seen = store.snapshot().await.unwrap();
                let flag = &seen.flags[0];
                let count = flag.definition["count"].as_u64().unwrap();
                let change = put_flag(
                    "counter",
                    &json!({"count": count + 1}),
                    Expected::Version(flag.version),
                );
                let actor = format!("writer-{writer}");
                match store.commit(by(&actor, seen.revision, vec![change])).await {
                    Ok(_) => done += 1,
                    Err(StoreError::Stale { .. } | StoreError::Conflict { .. }) => lost += 1,
                    Err(other) => panic!("writer {writer} got {other:?}"),
                }
            }
            lost
        }));
    }
    let mut lost = 0;
    for task in tasks {
        lost += task.await.unwrap();
    }
    let total = INCREMENTS * u64::try_from(WRITERS).unwrap();

    // Both instances agree, and the counter counted every successful commit.
    let snapshot = stores[0].snapshot().await.unwrap();
    assert_eq!(snapshot, stores[1].snapshot().await.unwrap());
    assert_eq!(snapshot.flags[0].definition, json!({"count": total}));
    assert_eq!(snapshot.flags[0].version, total + 1);
    assert_eq!(snapshot.revision, total + 1);
    // One audit event per success, none for the losers.
    let query = AuditQuery {
        limit: 1000,
        ..AuditQuery::default()
    };
    let events = stores[1].audit(&query).await.unwrap();
    assert_eq!(u64::try_from(events.len()).unwrap(), total + 1);
    let mut revisions: Vec<u64> = events.iter().map(|e| e.revision).collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=total + 1).collect::<Vec<_>>());
    let history = stores[0].flag_history("counter").await.unwrap();
    for (i, version) in history.iter().enumerate() {
        let i = u64::try_from(i).unwrap();
        assert_eq!(version.definition, Some(json!({"count": i})));
    }
    eprintln!("{total} increments, {lost} lost races retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listen_hears_commits_from_another_instance() {
    let Some(fixture) = fresh().await else { return };
    let listener = fixture.connect().await;
    let writer = fixture.connect().await;
    let mut revisions = listener.listen();
    assert_eq!(*revisions.borrow(), 0);

    writer.commit(by("bob", 0, vec![])).await.unwrap();
    wait_for(&mut revisions, 1, Duration::from_secs(10)).await;

    // Now that it listens, each commit arrives well within the fleet's one second.
    for revision in 2..=6 {
        let started = Instant::now();
        writer
            .commit(by("bob", revision - 1, vec![]))
            .await
            .unwrap();
        wait_for(&mut revisions, revision, Duration::from_secs(1)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    // A failed commit notifies nobody: the transaction's notification goes with it.
    let stale = writer.commit(by("bob", 0, vec![])).await;
    assert_eq!(describe(stale), "Stale(6)");
    let heard = tokio::time::timeout(Duration::from_millis(500), revisions.changed()).await;
    assert!(heard.is_err(), "heard {:?}", *revisions.borrow());

    // A burst: the receiver may skip revisions, but ends on the last.
    for revision in 7..=30 {
        writer
            .commit(by("bob", revision - 1, vec![]))
            .await
            .unwrap();
    }
    wait_for(&mut revisions, 30, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_are_replaced_and_listening_resumes() {
    let Some(fixture) = fresh().await else { return };
    let store = fixture.connect().await;
    let mut revisions = store.listen();
    store.commit(by("alice", 0, vec![])).await.unwrap();
    wait_for(&mut revisions, 1, Duration::from_secs(10)).await;

    // What a database restart or a failover does to every connection.
    let admin = raw_connect(&fixture.admin_url).await.unwrap();
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&fixture.name],
        )
        .await
        .unwrap();
    assert!(killed.len() >= 2, "the pool's and the listener's");

    // The store recovers by itself; meanwhile it says "unavailable", never anything else.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.commit(by("alice", 1, vec![])).await {
            Ok(committed) => {
                assert_eq!(committed.revision, 2);
                break;
            }
            Err(StoreError::Unavailable(err)) if Instant::now() < deadline => {
                eprintln!("while recovering: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    store.ping().await.unwrap();
    wait_for(&mut revisions, 2, Duration::from_secs(10)).await;
    store.commit(by("alice", 2, vec![])).await.unwrap();
    wait_for(&mut revisions, 3, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_at_once_migrate_once() {
    let Some(fixture) = fresh().await else { return };
    let url = Arc::new(fixture.url.clone());
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = Arc::clone(&url);
        tasks.push(tokio::spawn(
            async move { PostgresStore::connect(&url).await },
        ));
    }
    let mut stores = Vec::new();
    for task in tasks {
        stores.push(task.await.unwrap().unwrap());
    }
    let raw = fixture.raw().await;
    let versions: Vec<i32> = raw
        .query("SELECT version FROM vexil_migrations ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [1]);
    for (i, store) in stores.iter().enumerate() {
        let revision = u64::try_from(i).unwrap();
        store.commit(by("alice", revision, vec![])).await.unwrap();
    }
    assert_eq!(stores[0].revision().await.unwrap(), 4);
}

// ---------------------------------------------------------------------------------------------
// Faults.

#[tokio::test]
async fn a_database_from_a_newer_vexil_is_refused() {
    let Some(fixture) = fresh().await else { return };
    drop(fixture.connect().await);
    fixture
        .raw()
        .await
        .batch_execute("INSERT INTO vexil_migrations (version) VALUES (999)")
        .await
        .unwrap();
    let err = PostgresStore::connect(&fixture.url).await.unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("schema version 999"), "{message}");
    assert!(message.contains("newer vexil"), "{message}");
}

#[tokio::test]
async fn tables_of_the_same_names_are_not_taken_over() {
    let Some(fixture) = fresh().await else { return };
    fixture
        .raw()
        .await
        .batch_execute("CREATE TABLE flags (name text)")
        .await
        .unwrap();
    let err = PostgresStore::connect(&fixture.url).await.unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
    assert!(err.to_string().contains("flags"), "{err}");
    // And nothing of the migration stayed.
    let raw = fixture.raw().await;
    let tables: i64 = raw
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 1);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Nothing listens on port 1; no PostgreSQL is needed for this one.
    let started = Instant::now();
    let err = PostgresStore::connect("postgres://vexil:hunter2@127.0.0.1:1/vexil")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let message = err.to_string();
    eprintln!("{message}");
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_unavailable() {
    // Accepts connections and says nothing, like a host whose database hung.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let started = Instant::now();
    let err = PostgresStore::connect(&format!("postgres://vexil@127.0.0.1:{port}/vexil"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    held.abort();
}

#[tokio::test]
async fn a_missing_database_is_unavailable() {
    let Some(fixture) = fresh().await else { return };
    let url = with_database(&fixture.url, "vexil_test_does_not_exist");
    let err = PostgresStore::connect(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_revision_lock_makes_writes_unavailable_not_broken() {
    let Some(fixture) = fresh().await else { return };
    let store = fixture.connect().await;
    // Another client holding the revision row longer than the statement timeout.
    let mut other = fixture.raw().await;
    let tx = other.transaction().await.unwrap();
    tx.batch_execute("SELECT revision FROM meta WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();

    let started = Instant::now();
    let committed = store.commit(by("alice", 0, vec![])).await;
    assert!(
        matches!(committed, Err(StoreError::Unavailable(_))),
        "{committed:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(9));
    // Reads and pings carry on meanwhile.
    assert_eq!(store.snapshot().await.unwrap().revision, 0);
    store.ping().await.unwrap();

    // And it recovers by itself once the lock is gone.
    tx.rollback().await.unwrap();
    assert_eq!(
        store.commit(by("alice", 0, vec![])).await.unwrap().revision,
        1
    );
    assert_eq!(store.audit(&AuditQuery::default()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_read_only_database_fails_the_ping() {
    let Some(fixture) = fresh().await else { return };
    let store = fixture.connect().await;
    store.ping().await.unwrap();
    // As after a failover to a standby: connections made from now on are read-only.
    fixture
        .raw()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on",
            fixture.name
        ))
        .await
        .unwrap();
    let store = fixture.connect().await;
    let pinged = store.ping().await;
    assert!(
        matches!(pinged, Err(StoreError::Unavailable(_))),
        "{pinged:?}"
    );
    let committed = store.commit(by("alice", 0, vec![])).await;
    assert!(
        matches!(committed, Err(StoreError::Unavailable(_))),
        "{committed:?}"
    );
    assert_eq!(store.snapshot().await.unwrap().revision, 0);
}

#[test]
fn test_databases_are_named_on_the_admin_url() {
    for (url, expected) in [
        (
            "postgres://postgres@127.0.0.1:5432/postgres",
            "postgres://postgres@127.0.0.1:5432/t",
        ),
        ("postgres://u:p@h", "postgres://u:p@h/t"),
        (
            "postgresql://u@h:1/db?options=-c%20x%3Dy",
            "postgresql://u@h:1/t?options=-c%20x%3Dy",
        ),
        ("host=h user=u", "host=h user=u dbname=t"),
    ] {
        assert_eq!(with_database(url, "t"), expected);
    }
}

/// Waits until the receiver holds at least `revision`.
async fn wait_for(
    revisions: &mut tokio::sync::watch::Receiver<u64>,
    revision: u64,
    within: Duration,
) {
    let waited = tokio::time::timeout(within, revisions.wait_for(|seen| *seen >= revision))
        .await
        .map(|heard| heard.is_ok());
    match waited {
        Ok(true) => {}
        Ok(false) => panic!("the listener stopped"),
        Err(_) => panic!(
            "revision {revision} not heard within {within:?}; last heard {}",
            *revisions.borrow()
        ),
    }
}
