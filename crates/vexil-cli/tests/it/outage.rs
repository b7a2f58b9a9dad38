//! A database outage (PRODUCT.md section 7): evaluations and streams keep serving the last
//! loaded state, writes fail with 503, readiness reports it, and recovery is automatic.
//!
//! One instance (A) reaches PostgreSQL through a TCP proxy the test controls; another (B) reaches
//! it directly, as an instance in another zone would. The test cuts the proxy — every connection
//! closed, new ones refused — checks what A does meanwhile while B keeps taking writes, heals the
//! proxy, and checks that A recovers by itself: ready again, caught up with B's writes, taking
//! writes, and that no acknowledged write is missing anywhere.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use super::fleet::postgres::TestDatabase;
use super::fleet::{
    EventStream, Probe, WAIT, check_delays, create_server_key, number_flag, observers_of,
    propagate, put_number, sdk, set_number, start_instances, wait_for_key, watch_for,
};
use super::server_process::{Api, Server};

/// Where PostgreSQL listens.
const POSTGRES: &str = "127.0.0.1:5432";

/// How long the database stays cut off: longer than the instance's retries take to back off.
const OUTAGE: Duration = Duration::from_secs(4);

/// How long after healing an instance may take to be back in full: its listener reconnects
/// after a backoff of at most 5 s, and the safety-net poll runs every 5 s.
const RECOVERY: Duration = Duration::from_secs(12);

/// By when, after healing, the instance listens for notifications again: the longest backoff
/// of its listener, and a margin.
const LISTENER_BACK: Duration = Duration::from_secs(7);

/// The most connections the proxy accepts over its life (a bound on its accept loop).
const MAX_CONNECTIONS: usize = 10_000;

/// A TCP proxy to PostgreSQL that can cut every connection and refuse new ones, then heal.
struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
    accepting: AbortHandle,
}

#[derive(Default)]
struct ProxyState {
    cut: bool,
    /// The tasks forwarding the open connections.
    connections: Vec<AbortHandle>,
}

impl Proxy {
    /// A proxy on `127.0.0.1:0` forwarding to `upstream`.
    async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let shared = Arc::clone(&state);
        let upstream: SocketAddr = upstream.parse().unwrap();
        let accepting = tokio::spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let mut state = shared.lock().unwrap();
                if state.cut {
                    // Refused: closed at once, before a byte is exchanged.
                    drop(client);
                    continue;
                }
                state.connections.retain(|c| !c.is_finished());
                let forwarding = tokio::spawn(forward(client, upstream));
                state.connections.push(forwarding.abort_handle());
            }
        })
        .abort_handle();
        Proxy {
            addr,
            state,
            accepting,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and refuses new ones: what a network partition or a database
    /// going away looks like to the instance.
    fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.cut = true;
        for connection in state.connections.drain(..) {
            connection.abort();
        }
    }

    /// Lets connections through again.
    fn heal(&self) {
        self.state.lock().unwrap().cut = false;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

/// Copies bytes both ways until either side closes (or the task is aborted: both sockets are
/// then dropped, which closes them).
async fn forward(mut client: TcpStream, upstream: SocketAddr) {
    let Ok(Ok(mut server)) =
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream)).await
    else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// Polls `GET /readyz` until it answers `status`; how long that took, from `since`.
async fn wait_for_readiness(server: &Server, status: StatusCode, since: Instant) -> Duration {
    let api = server.admin();
    loop {
        let reply = api.send(Method::GET, "/readyz", None, None).await;
        if reply.status == status {
            if status == StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(reply.body["status"], "not ready", "{}", reply.body);
                let reason = reply.body["reason"].as_str().unwrap_or_default();
                assert!(!reason.is_empty(), "{}", reply.body);
                eprintln!("not ready: {reason}");
            }
            return since.elapsed();
        }
        assert!(
            since.elapsed() < RECOVERY + WAIT,
            "/readyz never answered {status}; last {} {}; the server's log:\n{}",
            reply.status,
            reply.body,
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks a write refused for the outage: 503 `unavailable`, saying the database is the cause.
fn check_refused(what: &str, status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert_eq!(body["error"]["code"], "unavailable", "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("database is unavailable") && message.contains("retry"),
        "{what}: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_keeps_evaluations_fails_writes_and_heals_by_itself() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let proxy = Proxy::start(POSTGRES).await;
    let servers = start_instances(&[database.url_via(proxy.addr()), database.url()]).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (admin_a, admin_b) = (a.admin(), b.admin());
    let key = create_server_key(&admin_b).await;
    wait_for_key(a, &key).await;
    wait_for_key(b, &key).await;
    let sdk_a = sdk(a, &key).await;
    let on_a = observers_of(a, "A", &sdk_a);
    let sdk_b = sdk(b, &key).await;
    let on_b = observers_of(b, "B", &sdk_b);

    // Every acknowledged write: flag → its values, in order.
    let mut acknowledged: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    set_number(&admin_a, "outage", 1).await;
    acknowledged.entry("outage").or_default().push(1);
    check_delays(
        "before the outage, A → B",
        &watch_for(&on_b, "outage", 1, Instant::now()).await,
    );

    // The cut.
    proxy.cut();
    let cut_at = Instant::now();
    let not_ready = wait_for_readiness(a, StatusCode::SERVICE_UNAVAILABLE, cut_at).await;
    eprintln!(
        "A reported not ready {} ms after the cut",
        not_ready.as_millis()
    );

    // Evaluations keep answering with the last loaded state, and the SDK stream stays up.
    for (name, probe) in &on_a {
        assert_eq!(probe.value("outage").await, Some(1), "{name}");
    }
    assert_eq!(sdk_a.status(), vexil::Status::Ready);

    // Writes fail with 503, and are not made.
    let reply = put_number(&admin_a, "refused", 1, None).await;
    check_refused("PUT /api/v1/flags/refused", reply.status, &reply.body);
    let reply = admin_a
        .send(
            Method::POST,
            "/api/v1/flags/outage/environments/production/disable",
            None,
            None,
        )
        .await;
    check_refused("the kill switch", reply.status, &reply.body);

    // The rest of the fleet carries on: B takes writes A cannot know of yet.
    set_number(&admin_b, "outage", 2).await;
    acknowledged.entry("outage").or_default().push(2);
    set_number(&admin_b, "during", 1).await;
    acknowledged.entry("during").or_default().push(1);
    assert_eq!(
        Probe::Evaluation(admin_a.clone()).value("outage").await,
        Some(1)
    );

    // An SDK stream that heard B's writes and moves to A meanwhile is not sent A's older state:
    // A cannot catch up, so the client keeps what it has and hears nothing yet.
    let mut from_b = EventStream::connect(b, &key, None).await;
    let heard = from_b.next(WAIT).await.expect("the full state");
    assert_eq!(heard.event, "put");
    assert_eq!(heard.data["flags"]["during"], number_flag(1));
    drop(from_b);
    let mut moved = EventStream::connect(a, &key, Some(heard.id)).await;
    let early = moved.next(Duration::from_millis(500)).await;
    assert!(early.is_none(), "{early:?}");

    // Still cut a while later: A keeps serving, and keeps refusing.
    tokio::time::sleep(OUTAGE.saturating_sub(cut_at.elapsed())).await;
    for (name, probe) in &on_a {
        assert_eq!(probe.value("outage").await, Some(1), "{name}");
    }
    let reply = put_number(&admin_a, "refused", 2, None).await;
    check_refused(
        "PUT /api/v1/flags/refused, later",
        reply.status,
        &reply.body,
    );

    // Healed: A recovers by itself — ready, caught up with B's writes, taking writes.
    proxy.heal();
    let healed_at = Instant::now();
    let ready = wait_for_readiness(a, StatusCode::OK, healed_at).await;
    let caught_up = watch_for(&on_a, "outage", 2, healed_at).await;
    let during = watch_for(&on_a, "during", 1, healed_at).await;
    // The moved stream gets what A caught up with, as a patch.
    let patch = moved.next(WAIT).await.expect("a patch once A caught up");
    assert_eq!(patch.event, "patch", "{patch:?}");
    assert!(patch.id >= heard.id, "{patch:?}");
    assert_eq!(patch.data["flags"]["outage"], number_flag(2), "{patch:?}");
    assert_eq!(patch.data["flags"]["during"], number_flag(1), "{patch:?}");
    for (name, delay) in caught_up.iter().chain(&during) {
        let delay =
            delay.unwrap_or_else(|| panic!("{name} never caught up; A's log:\n{}", a.log()));
        assert!(delay <= RECOVERY, "{name} caught up after {delay:?}");
    }
    eprintln!(
        "after healing: ready in {} ms, caught up in {} ms",
        ready.as_millis(),
        caught_up
            .iter()
            .chain(&during)
            .filter_map(|(_, d)| *d)
            .max()
            .unwrap_or_default()
            .as_millis()
    );
    let started = Instant::now();
    set_number(&admin_a, "after", 1).await;
    acknowledged.entry("after").or_default().push(1);
    check_delays(
        "after healing, A → B",
        &watch_for(&on_b, "after", 1, started).await,
    );

    // And A follows B's writes again: by the safety-net poll at first, then within the second
    // by notification, once its listener has reconnected (it retries with a backoff of up to
    // 5 s). Three writes in a row each seen within the limit rule out the 5 s poll alone.
    let started = Instant::now();
    set_number(&admin_b, "outage", 3).await;
    acknowledged.entry("outage").or_default().push(3);
    let seen = watch_for(&on_a, "outage", 3, started).await;
    for (name, delay) in &seen {
        let delay = delay.unwrap_or_else(|| panic!("{name} never saw B's write"));
        assert!(delay <= RECOVERY, "{name} saw B's write after {delay:?}");
    }
    eprintln!(
        "after healing, B → A: {}",
        seen.iter()
            .map(|(name, d)| format!("{name} {} ms", d.unwrap_or_default().as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    tokio::time::sleep(LISTENER_BACK.saturating_sub(healed_at.elapsed())).await;
    for value in 4..=6 {
        let seen = propagate(&admin_b, &on_a, "outage", value).await;
        acknowledged.entry("outage").or_default().push(value);
        check_delays(&format!("after healing, B → A, write {value}"), &seen);
    }

    // No acknowledged write is lost, on either instance, and the refused ones were not made.
    for api in [&admin_a, &admin_b] {
        check_acknowledged(api, &acknowledged).await;
        let reply = api
            .send(Method::GET, "/api/v1/flags/refused/history", None, None)
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    }
    // The refused kill switch was not made either: no environment override.
    let outage = admin_a.get("/api/v1/flags/outage").await;
    assert!(
        outage["definition"].get("environments").is_none(),
        "{outage}"
    );
}

/// Checks that every acknowledged write is there: each flag's history holds its values in
/// order (and nothing else), with one audit event per write.
async fn check_acknowledged(api: &Api, acknowledged: &BTreeMap<&str, Vec<u64>>) {
    for (key, values) in acknowledged {
        let history = api.get(&format!("/api/v1/flags/{key}/history")).await;
        let seen: Vec<u64> = history["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["definition"]["variants"]["value"].as_u64().unwrap())
            .collect();
        assert_eq!(&seen, values, "{key} on {}", api.base_url());
        let audit = api
            .get(&format!("/api/v1/audit?flag={key}&limit=1000"))
            .await;
        assert_eq!(
            audit["events"].as_array().unwrap().len(),
            values.len(),
            "{key} on {}: {audit}",
            api.base_url()
        );
    }
}
