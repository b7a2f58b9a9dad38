//! Server mode against the real server: changes arrive over the stream, the client survives
//! the server going away and coming back, serves its bootstrap until the first sync, resumes
//! with `Last-Event-ID`, and falls back to polling when the stream is blocked.

use std::time::Duration;

use serde_json::json;
use tempfile::TempDir;
use tokio::time::Instant;
use vexil::{Client, Context, ErrorCode, Status};

use crate::harness::{PATIENCE, Proxy, TestServer, eventually, free_addr, http, until};

/// A client of `base` with backoffs short enough for tests.
fn sdk(base: &str, key: &str) -> vexil::ClientBuilder {
    Client::builder()
        .server(base, key)
        .backoff(Duration::from_millis(10), Duration::from_millis(200))
        .stream_timeout(Duration::from_secs(5))
}

fn ctx() -> Context {
    Context::with_targeting_key("user-1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_reaches_a_connected_client_within_a_second() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(dir.path()).await;
    let key = server.key("server").await;
    server
        .put_flag("new_checkout", json!({"serve": "off"}))
        .await;

    let client = sdk(&server.base, &key).build().unwrap();
    client.wait_ready(PATIENCE).await.unwrap();
    assert_eq!(client.status(), Status::Ready);
    assert!(!client.is_enabled("new_checkout", &ctx()));
    let mut changes = client.subscribe();
    changes.borrow_and_update();

    server
        .put_flag("new_checkout", json!({"serve": "on"}))
        .await;
    let written = Instant::now();
    assert!(until(|| client.is_enabled("new_checkout", &ctx())).await);
    let took = written.elapsed();
    assert!(took < Duration::from_secs(1), "the change took {took:?}");
    // The subscription fired, with the server's revision.
    assert!(changes.has_changed().unwrap());
    assert_eq!(*changes.borrow_and_update(), server.revision(&key).await);

    let details = client.bool_details("new_checkout", &ctx(), false);
    assert_eq!(details.variant.as_deref(), Some("on"));
    assert_eq!(details.reason, vexil::Reason::Static);

    // Deletion arrives as well: the caller's default, FLAG_NOT_FOUND.
    let r = server
        .admin(reqwest::Method::DELETE, "/api/v1/flags/new_checkout")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert!(
        until(|| client
            .bool_details("new_checkout", &ctx(), true)
            .error_code()
            == Some(ErrorCode::FlagNotFound))
        .await
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_server_stops_the_client_serves_the_last_definitions_then_resyncs() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(dir.path()).await;
    let key = server.key("server").await;
    server
        .put_flag("search_enabled", json!({"serve": "on"}))
        .await;
    let client = sdk(&server.base, &key).build().unwrap();
    client.wait_ready(PATIENCE).await.unwrap();
    assert!(client.bool_value("search_enabled", &ctx(), false));

    // The server goes away: the last definitions are still served, and the status says so.
    let addr = server.addr;
    server.stop().await;
    assert!(
        until(|| client.status() == Status::Stale).await,
        "status {}",
        client.status()
    );
    assert!(client.bool_value("search_enabled", &ctx(), false));
    // wait_ready is about having synced once: a stale client has.
    client.wait_ready(Duration::from_millis(10)).await.unwrap();

    // Meanwhile the flag changes (through another instance on the same data).
    let other = TestServer::start(dir.path()).await;
    other
        .put_flag("search_enabled", json!({"serve": "off"}))
        .await;
    other.put_flag("added_meanwhile", json!(true)).await;
    other.stop().await;
    assert!(client.bool_value("search_enabled", &ctx(), false));

    // The server comes back on the same address: the client resyncs by itself.
    let server = TestServer::start_at(dir.path(), addr).await;
    assert!(until(|| !client.bool_value("search_enabled", &ctx(), true)).await);
    assert!(client.is_enabled("added_meanwhile", &ctx()));
    assert!(until(|| client.status() == Status::Ready).await);
    assert_eq!(client.revision(), server.revision(&key).await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_started_while_the_server_is_down_serves_its_bootstrap_then_syncs() {
    let dir = TempDir::new().unwrap();
    // Prepare the server's data (a key, a flag), then take the server down.
    let server = TestServer::start(dir.path()).await;
    let key = server.key("server").await;
    server
        .put_flag("new_checkout", json!({"serve": "on"}))
        .await;
    server.stop().await;

    let addr = free_addr().await;
    let bootstrap = dir.path().join("bootstrap.yaml");
    std::fs::write(
        &bootstrap,
        "flags:\n  new_checkout: false\n  only_in_bootstrap: true\n",
    )
    .unwrap();
    let client = sdk(&format!("http://{addr}"), &key)
        .bootstrap_file(&bootstrap)
        .build()
        .unwrap();
    assert_eq!(client.status(), Status::Bootstrapped);
    assert!(!client.is_enabled("new_checkout", &ctx()));
    assert!(client.is_enabled("only_in_bootstrap", &ctx()));
    assert!(client.wait_ready(Duration::from_millis(300)).await.is_err());
    assert_eq!(client.status(), Status::Bootstrapped);

    let server = TestServer::start_at(dir.path(), addr).await;
    client.wait_ready(PATIENCE).await.unwrap();
    assert_eq!(client.status(), Status::Ready);
    assert!(client.is_enabled("new_checkout", &ctx()));
    // The server's definitions replace the bootstrap entirely.
    assert_eq!(
        client
            .bool_details("only_in_bootstrap", &ctx(), false)
            .error_code(),
        Some(ErrorCode::FlagNotFound)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_bootstrap_a_client_serves_defaults_and_says_it_is_not_ready() {
    let addr = free_addr().await;
    let client = sdk(&format!("http://{addr}"), "some-key").build().unwrap();
    assert_eq!(client.status(), Status::NotReady);
    let d = client.bool_details("search_enabled", &ctx(), true);
    assert!(d.value);
    assert_eq!(d.error_code(), Some(ErrorCode::ProviderNotReady));
    assert!(!client.is_enabled("new_checkout", &ctx()));
    assert_eq!(client.string_value("color", &ctx(), "blue"), "blue");
    match client.wait_ready(Duration::from_millis(200)).await {
        Err(vexil::Error::NotReady { status, .. }) => assert_eq!(status, Status::NotReady),
        other => panic!("expected NotReady, got {other:?}"),
    }
    // Still not ready after many failed attempts: a failing server never makes it "stale".
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.status(), Status::NotReady);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_refused_key_stays_not_ready() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(dir.path()).await;
    let client_key = server.key("client").await;
    let client = sdk(&server.base, &client_key).build().unwrap();
    assert!(client.wait_ready(Duration::from_millis(500)).await.is_err());
    assert_eq!(client.status(), Status::NotReady);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_resumes_after_the_last_event_id() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(dir.path()).await;
    let key = server.key("server").await;
    server.put_flag("a", json!(true)).await;
    let r1 = server.revision(&key).await;
    server.put_flag("a", json!(false)).await;
    let r2 = server.revision(&key).await;

    // Resuming from r1: the one patch after it, no full state.
    let text = read_stream(&server.base, &key, Some(r1), Duration::from_millis(1500)).await;
    assert!(text.contains("event: patch"), "{text}");
    assert!(text.contains(&format!("id: {r2}")), "{text}");
    assert!(!text.contains("event: put"), "{text}");
    // Resuming from the current revision: nothing but heartbeats.
    let text = read_stream(&server.base, &key, Some(r2), Duration::from_millis(1500)).await;
    assert!(!text.contains("event:"), "{text}");
    assert!(
        text.contains(": heartbeat") || text.contains(":heartbeat"),
        "{text}"
    );
    // Without an id: the full state, with the current revision as its id.
    let text = read_stream(&server.base, &key, None, Duration::from_millis(500)).await;
    assert!(text.contains("event: put"), "{text}");
    assert!(text.contains(&format!("id: {r2}")), "{text}");
    server.stop().await;
}

/// Reads a raw stream for `for_how_long`.
async fn read_stream(base: &str, key: &str, last: Option<u64>, for_how_long: Duration) -> String {
    let mut request = http().get(format!("{base}/sdk/v1/stream")).bearer_auth(key);
    if let Some(last) = last {
        request = request.header("Last-Event-ID", last.to_string());
    }
    let mut response = request.send().await.unwrap();
    assert!(response.status().is_success());
    let mut text = String::new();
    let end = Instant::now() + for_how_long;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(end, response.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_resumes_with_last_event_id_and_gets_only_what_it_missed() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(dir.path()).await;
    let key = server.key("server").await;
    server.put_flag("a", json!(true)).await;
    let proxy = Proxy::start(server.addr).await;
    let client = sdk(&proxy.base, &key).build().unwrap();
    client.wait_ready(PATIENCE).await.unwrap();
    let seen = client.revision();

    // Cut the connection and keep the client out while the flag changes. Wait until it has
    // also tried its first fallback poll (after three failed stream attempts), so the next
    // poll is 30 s away and the change can only come back through the resumed stream.
    proxy.refuse(true);
    proxy.cut();
    assert!(until(|| client.status() == Status::Stale).await);
    assert!(until(|| proxy.refused() >= 5).await);
    server.put_flag("a", json!(false)).await;
    let missed = server.revision(&key).await;
    assert!(client.is_enabled("a", &ctx()));

    proxy.refuse(false);
    assert!(until(|| !client.is_enabled("a", &ctx())).await);
    assert_eq!(client.revision(), missed);
    assert_eq!(client.status(), Status::Ready);

    let streams = proxy.streams();
    let first = &streams[0];
    assert!(!first.request.to_ascii_lowercase().contains("last-event-id"));
    assert!(first.response.contains("event: put"));
    let last = streams.last().unwrap();
    assert!(
        last.request
            .to_ascii_lowercase()
            .contains(&format!("last-event-id: {seen}")),
        "{}",
        last.request
    );
    assert!(last.response.contains("event: patch"), "{}", last.response);
    assert!(!last.response.contains("event: put"), "{}", last.response);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_stream_is_blocked_the_client_polls() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(dir.path()).await;
    let key = server.key("server").await;
    server.put_flag("a", json!(true)).await;
    let proxy = Proxy::start(server.addr).await;
    proxy.block_stream(true);
    let client = sdk(&proxy.base, &key)
        .poll_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    // Never a stream, yet synced and current.
    client.wait_ready(PATIENCE).await.unwrap();
    assert!(client.is_enabled("a", &ctx()));
    server.put_flag("a", json!(false)).await;
    assert!(until(|| !client.is_enabled("a", &ctx())).await);
    assert!(proxy.streams().iter().all(|s| s.response.is_empty()));
    // The server is reachable by polling: the definitions are current, not stale.
    assert!(
        eventually(|| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            client.status() == Status::Ready
        })
        .await
    );
    // Polls that find nothing new are answered 304.
    assert!(
        until(|| proxy
            .exchanges()
            .iter()
            .any(|e| e.response.contains("HTTP/1.1 304")))
        .await
    );

    // The stream is back: the client uses it again (and stops polling).
    proxy.block_stream(false);
    assert!(
        until(|| proxy
            .streams()
            .iter()
            .any(|s| s.response.contains("text/event-stream")))
        .await
    );
    server.put_flag("a", json!(true)).await;
    assert!(until(|| client.is_enabled("a", &ctx())).await);
    server.stop().await;
}
