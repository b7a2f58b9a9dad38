//! A fleet: several `vexil serve` processes sharing one PostgreSQL database behave as one service
//! (PRODUCT.md sections 2 and 7).
//!
//! - A write on one instance is applied by every other — their evaluations (`GET /flags/{key}`,
//!   OFREP) and the SDKs connected to them — within one second. The tests measure when each
//!   observer first sees a write, print the figures, and fail above [`LIMIT`] (the promise plus
//!   slack for a loaded machine with few cores running tests in parallel).
//! - Concurrent writers with `If-Match` on different instances lose no update: every loser gets
//!   412, and the audit log has one event per success.
//! - An SDK stream moved from one instance to another resumes with `Last-Event-ID`: the new
//!   instance sends exactly the changes it missed, as patches, and never a full state — also when
//!   the client has heard of a change the new instance has not applied yet.
//! - Instances started at the same moment on an empty database all come up, with one bootstrap.
//!
//! Every test has a database of its own ([`postgres::TestDatabase`]); without PostgreSQL they
//! skip, unless `VEXIL_REQUIRE_POSTGRES=1`. The outage tests are in `outage.rs`.

pub mod postgres;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::server_process::{Api, Server};
use postgres::TestDatabase;

/// What the tests assert for a write on one instance to reach another: the promise is one
/// second; the slack absorbs a loaded machine (the figures printed show the real ones).
pub const LIMIT: Duration = Duration::from_secs(2);

/// How long a test waits for something that should happen before it fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// How often a wait polls.
const POLL: Duration = Duration::from_millis(5);

/// The targeting key of every evaluation.
const USER: &str = "user-1";

// ---------------------------------------------------------------------------------------------
// Helpers, shared with the outage tests.

/// Starts one `vexil serve` for each database URL, all at once, and waits until they listen.
pub async fn start_instances(urls: &[String]) -> Vec<Server> {
    let starting: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| tokio::task::spawn_blocking(move || Server::start_with_database(&url)))
        .collect();
    let mut servers = Vec::new();
    for start in starting {
        servers.push(start.await.expect("a server starts"));
    }
    servers
}

/// A number flag serving `value` to everyone (the tests write a new value each time, so the
/// value tells which write an observer sees).
pub fn number_flag(value: u64) -> Value {
    json!({"variants": {"value": value, "none": 0}, "off": "none", "serve": "value"})
}

/// `PUT /api/v1/flags/{key}` with [`number_flag`]; the reply.
pub async fn put_number(
    api: &Api,
    key: &str,
    value: u64,
    if_match: Option<u64>,
) -> super::server_process::Reply {
    api.send(
        Method::PUT,
        &format!("/api/v1/flags/{key}"),
        if_match,
        Some(&number_flag(value)),
    )
    .await
}

/// [`put_number`], which must succeed (200, or 201 for a new flag).
pub async fn set_number(api: &Api, key: &str, value: u64) {
    let reply = put_number(api, key, value, None).await;
    assert!(
        reply.status == StatusCode::OK || reply.status == StatusCode::CREATED,
        "PUT {key} = {value} on {}: {} {}",
        api.base_url(),
        reply.status,
        reply.body
    );
}

/// Creates a server key for `production` and returns its secret.
pub async fn create_server_key(admin: &Api) -> String {
    let reply = admin
        .send(
            Method::POST,
            "/api/v1/keys",
            None,
            Some(&json!({"name": "sdk", "kind": "server", "environment": "production"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["secret"].as_str().unwrap().to_owned()
}

/// Waits until `server` accepts `key` (a key made on another instance is learned from the
/// database).
pub async fn wait_for_key(server: &Server, key: &str) {
    let api = Api::new(server.base_url(), key);
    let started = Instant::now();
    loop {
        let reply = api.send(Method::GET, "/sdk/v1/flags", None, None).await;
        if reply.status == StatusCode::OK {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "{} does not accept the new key after {WAIT:?}: {} {}",
            server.base_url(),
            reply.status,
            reply.body
        );
        tokio::time::sleep(POLL).await;
    }
}

/// An SDK client kept current by `server`, synced.
pub async fn sdk(server: &Server, key: &str) -> vexil::Client {
    let client = vexil::Client::builder()
        .server(server.base_url(), key)
        .build()
        .unwrap();
    client.wait_ready(WAIT).await.unwrap_or_else(|e| {
        panic!(
            "the SDK on {} did not sync: {e}; the server's log:\n{}",
            server.base_url(),
            server.log()
        )
    });
    client
}

/// Something that evaluates a flag for [`USER`].
#[derive(Clone)]
pub enum Probe {
    /// `GET /flags/{key}` on an instance (with the admin key: environment `development`).
    Evaluation(Api),
    /// `POST /ofrep/v1/evaluate/flags/{key}` on an instance.
    Ofrep(Api),
    /// An SDK kept current by an instance (with a server key: environment `production`).
    Sdk(vexil::Client),
}

impl Probe {
    /// The value a number flag has for [`USER`]; `None` when it cannot be evaluated.
    pub async fn value(&self, key: &str) -> Option<u64> {
        match self {
            Probe::Evaluation(api) => {
                let path = format!("/flags/{key}?user_id={USER}");
                let reply = api.send(Method::GET, &path, None, None).await;
                if reply.status == StatusCode::OK {
                    reply.body["value"].as_u64()
                } else {
                    None
                }
            }
            Probe::Ofrep(api) => {
                let path = format!("/ofrep/v1/evaluate/flags/{key}");
                let body = json!({"context": {"targetingKey": USER}});
                let reply = api.send(Method::POST, &path, None, Some(&body)).await;
                if reply.status == StatusCode::OK {
                    reply.body["value"].as_u64()
                } else {
                    None
                }
            }
            Probe::Sdk(client) => {
                let ctx = vexil::Context::with_targeting_key(USER);
                let value = client.number_value(key, &ctx, -1.0);
                // The flags hold whole numbers well below 2^53.
                (value >= 0.0).then_some(value as u64)
            }
        }
    }
}

/// The three observers on one instance: its evaluation API, its OFREP API, an SDK on it.
pub fn observers_of(server: &Server, name: &str, sdk: &vexil::Client) -> Vec<(String, Probe)> {
    vec![
        (
            format!("{name} GET /flags"),
            Probe::Evaluation(server.admin()),
        ),
        (format!("{name} OFREP"), Probe::Ofrep(server.admin())),
        (format!("{name} SDK"), Probe::Sdk(sdk.clone())),
    ]
}

/// Waits until every observer sees `value` for `key`, measuring from `started`; each
/// observer's delay, `None` for those that did not see it within [`WAIT`].
pub async fn watch_for(
    observers: &[(String, Probe)],
    key: &str,
    value: u64,
    started: Instant,
) -> Vec<(String, Option<Duration>)> {
    let mut tasks = Vec::new();
    for (name, probe) in observers {
        let (name, probe, key) = (name.clone(), probe.clone(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < WAIT {
                if probe.value(&key).await == Some(value) {
                    return (name, Some(started.elapsed()));
                }
                tokio::time::sleep(POLL).await;
            }
            (name, None)
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen
}

/// Writes `value` to `key` through `writer` and measures when each observer sees it, from just
/// before the write request. Checks that the writer's own instance has it when the write
/// returns.
pub async fn propagate(
    writer: &Api,
    observers: &[(String, Probe)],
    key: &str,
    value: u64,
) -> Vec<(String, Option<Duration>)> {
    let started = Instant::now();
    let watching = {
        let observers = observers.to_vec();
        let key = key.to_owned();
        tokio::spawn(async move { watch_for(&observers, &key, value, started).await })
    };
    set_number(writer, key, value).await;
    assert_eq!(
        Probe::Evaluation(writer.clone()).value(key).await,
        Some(value),
        "a write is visible on its own instance when it returns"
    );
    watching.await.unwrap()
}

/// Fails unless every observer saw the write within [`LIMIT`]; prints the figures.
pub fn check_delays(what: &str, seen: &[(String, Option<Duration>)]) -> Vec<Duration> {
    let figures: Vec<String> = seen
        .iter()
        .map(|(name, delay)| match delay {
            Some(d) => format!("{name} {} ms", d.as_millis()),
            None => format!("{name} never"),
        })
        .collect();
    eprintln!("{what}: {}", figures.join(", "));
    let mut delays = Vec::new();
    for (name, delay) in seen {
        let delay = delay.unwrap_or_else(|| panic!("{what}: {name} never saw it ({WAIT:?})"));
        assert!(
            delay <= LIMIT,
            "{what}: {name} saw it after {delay:?}, over {LIMIT:?}"
        );
        delays.push(delay);
    }
    delays
}

/// p50 and max of some delays, for the printed summary.
fn summary(mut delays: Vec<Duration>) -> String {
    delays.sort_unstable();
    let Some(max) = delays.last() else {
        return "no delays".into();
    };
    format!(
        "{} observations, p50 {} ms, max {} ms",
        delays.len(),
        delays[delays.len() / 2].as_millis(),
        max.as_millis()
    )
}

// ---------------------------------------------------------------------------------------------
// A raw SSE client: the events of `/sdk/v1/stream` as they come, ids included.

/// One server-sent event.
#[derive(Debug)]
pub struct Event {
    /// `put` or `patch`.
    pub event: String,
    /// The configuration revision after it.
    pub id: u64,
    pub data: Value,
}

/// A connection to `/sdk/v1/stream`.
pub struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl EventStream {
    /// Connects to `server`'s stream with `key`, resuming after `last_event_id` if given.
    pub async fn connect(server: &Server, key: &str, last_event_id: Option<u64>) -> EventStream {
        let mut request = reqwest::Client::new()
            .get(format!("{}/sdk/v1/stream", server.base_url()))
            .bearer_auth(key)
            .header(ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = tokio::time::timeout(WAIT, request.send())
            .await
            .expect("the stream answers")
            .expect("the stream connects");
        assert_eq!(response.status(), StatusCode::OK);
        EventStream {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next event, skipping heartbeats; `None` when none comes within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_event(&String::from_utf8(block).unwrap()) {
                    return Some(event);
                }
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(chunk))) => self.buffer.extend_from_slice(&chunk),
                Ok(Ok(None)) => panic!("the stream ended"),
                Ok(Err(e)) => panic!("the stream broke: {e}"),
            }
        }
    }
}

/// One event block; `None` for a comment (a heartbeat).
fn parse_event(block: &str) -> Option<Event> {
    let (mut event, mut id, mut data) = (None, None, Vec::new());
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "id" => id = Some(value.parse::<u64>().expect("ids are revisions")),
            "data" => data.push(value),
            _ => {}
        }
    }
    let event = event?;
    Some(Event {
        event,
        id: id.expect("every event has an id"),
        data: serde_json::from_str(&data.join("\n")).expect("the data is JSON"),
    })
}

// ---------------------------------------------------------------------------------------------
// Propagation.

/// Each instance in turn writes; the others' evaluations and SDKs see it.
async fn writes_reach_every_other_instance(instances: usize, rounds: u64) {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let servers = start_instances(&vec![database.url(); instances]).await;
    let admins: Vec<Api> = servers.iter().map(Server::admin).collect();
    let key = create_server_key(&admins[0]).await;
    let mut sdks = Vec::new();
    for server in &servers {
        wait_for_key(server, &key).await;
        sdks.push(sdk(server, &key).await);
    }

    let mut delays = Vec::new();
    for round in 0..rounds {
        let writer = usize::try_from(round).unwrap() % instances;
        let observers: Vec<(String, Probe)> = (0..instances)
            .filter(|&i| i != writer)
            .flat_map(|i| observers_of(&servers[i], &format!("#{i}"), &sdks[i]))
            .collect();
        let seen = propagate(&admins[writer], &observers, "fleet_flag", round + 1).await;
        delays.extend(check_delays(
            &format!("{instances} instances, write {round} on #{writer}"),
            &seen,
        ));
    }
    eprintln!(
        "{instances} instances, write → other instances: {}",
        summary(delays)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_of_two_instances_reaches_the_other_within_a_second() {
    writes_reach_every_other_instance(2, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_of_three_instances_reaches_the_others_within_a_second() {
    writes_reach_every_other_instance(3, 6).await;
}

// ---------------------------------------------------------------------------------------------
// Concurrent writers.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_different_instances_lose_no_update() {
    const WRITERS: usize = 6;
    const INCREMENTS: usize = 4;
    const MAX_ATTEMPTS: usize = 200;
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let servers = start_instances(&vec![database.url(); 2]).await;
    set_number(&servers[0].admin(), "counter", 0).await;
    check_delays(
        "the counter's creation, #0 → #1",
        &watch_for(
            &[("#1".into(), Probe::Evaluation(servers[1].admin()))],
            "counter",
            0,
            Instant::now(),
        )
        .await,
    );

    // Each writer adds one to the counter INCREMENTS times through its own instance: it reads
    // the flag there, writes the next value with `If-Match` on the version it read, and on 412
    // reads again.
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let api = servers[writer % 2].admin();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let (mut wins, mut losses) = (Vec::new(), 0);
            for _ in 0..MAX_ATTEMPTS {
                if wins.len() == INCREMENTS || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                let flag = api.get("/api/v1/flags/counter").await;
                let version = flag["version"].as_u64().unwrap();
                let count = flag["definition"]["variants"]["value"].as_u64().unwrap();
                let reply = put_number(&api, "counter", count + 1, Some(version)).await;
                match reply.status {
                    StatusCode::OK => {
                        assert_eq!(reply.body["version"], version + 1);
                        wins.push((version + 1, count + 1));
                    }
                    StatusCode::PRECONDITION_FAILED => {
                        assert_eq!(reply.body["error"]["code"], "version_conflict");
                        losses += 1;
                    }
                    other => panic!("writer {writer}: {other} {}", reply.body),
                }
            }
            assert_eq!(wins.len(), INCREMENTS, "writer {writer} did not finish");
            (wins, losses)
        }));
    }
    let mut wins = Vec::new();
    let mut losses = 0;
    for task in tasks {
        let (won, lost) = task.await.unwrap();
        wins.extend(won);
        losses += lost;
    }
    let total = u64::try_from(WRITERS * INCREMENTS).unwrap();
    eprintln!("{total} increments through 2 instances; {losses} writes lost a race and got 412");

    // Every success made its own version, each one more than the one before.
    wins.sort_unstable();
    let expected: Vec<(u64, u64)> = (1..=total).map(|n| (n + 1, n)).collect();
    assert_eq!(wins, expected);

    // Both instances end with the last one.
    for server in &servers {
        let seen = watch_for(
            &[("counter".into(), Probe::Evaluation(server.admin()))],
            "counter",
            total,
            Instant::now(),
        )
        .await;
        check_delays(&format!("the final count on {}", server.base_url()), &seen);
        let flag = server.admin().get("/api/v1/flags/counter").await;
        assert_eq!(flag["version"], total + 1);
    }

    // One audit event per success (and the creation), and the history has every count.
    let audit = servers[1]
        .admin()
        .get("/api/v1/audit?flag=counter&limit=1000")
        .await;
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), WRITERS * INCREMENTS + 1);
    let updates = events
        .iter()
        .filter(|e| e["action"] == "flag.update")
        .count();
    assert_eq!(updates, WRITERS * INCREMENTS);
    let history = servers[0]
        .admin()
        .get("/api/v1/flags/counter/history")
        .await;
    let counts: Vec<u64> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["definition"]["variants"]["value"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, (0..=total).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------------
// Moving a stream.

/// The revision of the configuration on `server` (after a write there: the write's).
async fn revision(server: &Server) -> u64 {
    server.admin().get("/api/v1/flags").await["revision"]
        .as_u64()
        .unwrap()
}

/// Reads patches until one has `until` as its id; checks each is a patch after `after` (ids
/// increasing) and returns what they change together.
async fn patches_until(stream: &mut EventStream, after: u64, until: u64) -> Map<String, Value> {
    let mut last = after;
    let mut flags = Map::new();
    while last < until {
        let event = stream
            .next(WAIT)
            .await
            .unwrap_or_else(|| panic!("no event after {last}; waiting for {until}"));
        assert_eq!(event.event, "patch", "{event:?}");
        assert!(event.id > last, "{event:?} after {last}");
        assert!(event.id <= until, "{event:?}: past {until}");
        assert_eq!(event.data["segments"], json!({}), "{event:?}");
        for (key, definition) in event.data["flags"].as_object().unwrap() {
            flags.insert(key.clone(), definition.clone());
        }
        last = event.id;
    }
    flags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_moved_to_another_instance_resumes_without_a_gap() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let servers = start_instances(&vec![database.url(); 2]).await;
    let (a, b) = (&servers[0], &servers[1]);
    let key = create_server_key(&a.admin()).await;
    wait_for_key(a, &key).await;
    wait_for_key(b, &key).await;
    set_number(&a.admin(), "moved", 1).await;

    // Connected to A: the full state, then a change as a patch.
    let mut from_a = EventStream::connect(a, &key, None).await;
    let put = from_a.next(WAIT).await.expect("the full state");
    assert_eq!(put.event, "put");
    assert_eq!(put.data["flags"]["moved"], number_flag(1));
    set_number(&a.admin(), "moved", 2).await;
    let last = revision(a).await;
    let changes = patches_until(&mut from_a, put.id, last).await;
    assert_eq!(Value::Object(changes), json!({"moved": number_flag(2)}));
    drop(from_a);

    // Disconnected, it misses a change on A, a change on B and a key (no patch for it).
    set_number(&a.admin(), "moved", 3).await;
    create_server_key(&a.admin()).await;
    set_number(&b.admin(), "other", 1).await;
    let missed = revision(b).await;

    // Resumed on B: exactly what it missed, as patches, and no full state.
    let mut from_b = EventStream::connect(b, &key, Some(last)).await;
    let changes = patches_until(&mut from_b, last, missed).await;
    assert_eq!(
        Value::Object(changes),
        json!({"moved": number_flag(3), "other": number_flag(1)})
    );
    let extra = from_b.next(Duration::from_millis(500)).await;
    assert!(extra.is_none(), "nothing more: {extra:?}");
    drop(from_b);

    // The stream may also move to an instance that has not applied the last change the client
    // heard of (the instance it leaves died right after sending it). The new instance sends no
    // older state, and then the next change.
    let mut last = missed;
    for round in 0..10 {
        let mut from_a = EventStream::connect(a, &key, Some(last)).await;
        set_number(&a.admin(), "moved", 10 + round).await;
        let heard = revision(a).await;
        patches_until(&mut from_a, last, heard).await;
        drop(from_a);
        let mut from_b = EventStream::connect(b, &key, Some(heard)).await;
        set_number(&b.admin(), "other", 10 + round).await;
        last = revision(b).await;
        let changes = patches_until(&mut from_b, heard, last).await;
        assert_eq!(
            Value::Object(changes),
            json!({"other": number_flag(10 + round)}),
            "round {round}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Starting together.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_on_an_empty_database_bootstrap_once() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let servers = start_instances(&vec![database.url(); 3]).await;

    // Every instance is up and ready, and takes the one admin key.
    for server in &servers {
        let ready = server.admin().get("/readyz").await;
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["revision"], 1, "{}", server.log());
    }
    // One of them bootstrapped the database, and said so; the others found it done.
    let announced: Vec<&str> = servers
        .iter()
        .map(Server::startup_output)
        .filter(|out| out.contains("created the first admin key"))
        .collect();
    assert_eq!(announced.len(), 1, "{announced:?}");
    let admin = servers[2].admin();
    let audit = admin.get("/api/v1/audit").await;
    let bootstraps: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "bootstrap")
        .collect();
    assert_eq!(bootstraps.len(), 1, "{audit}");
    let keys = admin.get("/api/v1/keys").await;
    let kinds: BTreeMap<String, usize> =
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .fold(BTreeMap::new(), |mut kinds, key| {
                *kinds
                    .entry(key["kind"].as_str().unwrap().to_owned())
                    .or_default() += 1;
                kinds
            });
    assert_eq!(kinds, BTreeMap::from([("admin".to_owned(), 1)]), "{keys}");
    let environments = admin.get("/api/v1/environments").await;
    assert_eq!(
        environments["environments"],
        json!([{"name": "development"}, {"name": "staging"}, {"name": "production"}])
    );
}
