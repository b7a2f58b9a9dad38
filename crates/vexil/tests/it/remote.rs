//! Remote evaluation (OFREP) against the real server, and against one that never answers.

use std::time::Duration;

use serde_json::json;
use tempfile::TempDir;
use tokio::time::Instant;
use vexil::{Context, ErrorCode, Reason, RemoteClient};

use crate::harness::{Hang, TestServer, free_addr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_evaluation_with_a_cache() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(dir.path()).await;
    let key = server.key("client").await;
    server
        .put_flag("new_checkout", json!({"targets": {"on": ["user-1"]}}))
        .await;
    server
        .put_flag(
            "button_color",
            json!({"variants": {"blue": "#0055ff", "green": "#00aa55"}, "off": "blue", "serve": "green"}),
        )
        .await;
    let flags = RemoteClient::builder(&server.base, &key)
        .cache_ttl(Duration::from_secs(600))
        .build()
        .unwrap();
    let user1 = Context::with_targeting_key("user-1");
    let user2 = Context::with_targeting_key("user-2");

    let d = flags.details("new_checkout", &user1, false).await;
    assert!(d.value);
    assert_eq!(d.variant.as_deref(), Some("on"));
    assert_eq!(d.reason, Reason::TargetingMatch);
    assert!(!flags.is_enabled("new_checkout", &user2).await);
    assert_eq!(
        flags.string_value("button_color", &user1, "#000").await,
        "#00aa55"
    );

    // Errors keep the server's codes; the caller's default is returned.
    let d = flags.details("no_such_flag", &user1, true).await;
    assert!(d.value);
    assert_eq!(d.error_code(), Some(ErrorCode::FlagNotFound));
    let d = flags.details("button_color", &user1, 1.5).await;
    assert_eq!(d.value, 1.5);
    assert_eq!(d.error_code(), Some(ErrorCode::TypeMismatch));

    // Cached per flag and context: a change is not seen until the answer expires.
    server
        .put_flag("new_checkout", json!({"serve": "off"}))
        .await;
    assert!(flags.is_enabled("new_checkout", &user1).await);
    flags.clear_cache();
    assert!(!flags.is_enabled("new_checkout", &user1).await);

    // Without a cache every call asks the server.
    let uncached = RemoteClient::builder(&server.base, &key)
        .cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    assert!(!uncached.is_enabled("new_checkout", &user1).await);
    server
        .put_flag("new_checkout", json!({"serve": "on"}))
        .await;
    assert!(uncached.is_enabled("new_checkout", &user1).await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_costs_the_timeout_and_yields_the_default() {
    let hang = Hang::start().await;
    let flags = RemoteClient::new(&hang.base, "key").unwrap();
    let ctx = Context::with_targeting_key("user-1");
    let started = Instant::now();
    let d = flags.details("search_enabled", &ctx, true).await;
    let took = started.elapsed();
    assert!(d.value, "fails open with the caller's default");
    assert_eq!(d.error_code(), Some(ErrorCode::General));
    assert_eq!(d.reason, Reason::Error);
    assert!(
        took >= Duration::from_millis(450),
        "returned after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "returned after {took:?}");
    assert!(!flags.is_enabled("new_checkout", &ctx).await);

    let short = RemoteClient::builder(&hang.base, "key")
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let started = Instant::now();
    assert_eq!(short.number_value("limit", &ctx, 7.0).await, 7.0);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_yields_the_default_at_once() {
    let addr = free_addr().await;
    let flags = RemoteClient::new(format!("http://{addr}"), "key").unwrap();
    let d = flags
        .details("search_enabled", &Context::new(), json!({"a": 1}))
        .await;
    assert_eq!(d.value, json!({"a": 1}));
    assert_eq!(d.error_code(), Some(ErrorCode::General));
}

#[test]
fn invalid_urls_are_refused_when_building() {
    for url in [
        "not a url",
        "ftp://example.com",
        "http://example.com/?env=x",
    ] {
        assert!(
            matches!(
                RemoteClient::new(url, "key"),
                Err(vexil::Error::InvalidUrl { .. })
            ),
            "{url}"
        );
    }
}
