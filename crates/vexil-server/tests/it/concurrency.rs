//! Concurrent writers and read-your-writes (PRODUCT.md sections 2 and 7).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{ADMIN, Server};

const WRITERS: usize = 24;
const PER_WRITER: usize = 5;

/// What one writer saw.
#[derive(Debug, Default)]
struct Tally {
    successes: usize,
    conflicts: usize,
    unexpected: Vec<String>,
}

/// GET → add one → PUT with If-Match, retrying on 412, until `PER_WRITER` writes succeeded.
async fn writer(client: reqwest::Client, base: String, id: usize) -> Tally {
    let url = format!("{base}/api/v1/flags/counter");
    let mut tally = Tally::default();
    let mut attempts = 0;
    while tally.successes < PER_WRITER {
        attempts += 1;
        if attempts > 10_000 {
            tally.unexpected.push("gave up after 10000 attempts".into());
            break;
        }
        let r = client
            .get(&url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("GET");
        if r.status() != StatusCode::OK {
            tally.unexpected.push(format!("GET {}", r.status()));
            break;
        }
        let etag = r.headers()["etag"].to_str().expect("an ETag").to_owned();
        let body: Value = r.json().await.expect("JSON");
        let mut def = body["definition"].clone();
        let count: usize = def["description"]
            .as_str()
            .expect("a description")
            .parse()
            .expect("a count");
        def["description"] = json!((count + 1).to_string());
        def["targets"]["on"]
            .as_array_mut()
            .expect("a target list")
            .push(json!(format!("w{id}-{}", tally.successes)));
        let r = client
            .put(&url)
            .bearer_auth(ADMIN)
            .header("if-match", &etag)
            .json(&def)
            .send()
            .await
            .expect("PUT");
        match r.status() {
            StatusCode::OK => tally.successes += 1,
            StatusCode::PRECONDITION_FAILED => {
                let body: Value = r.json().await.expect("JSON");
                if body["error"]["code"] == json!("version_conflict") {
                    tally.conflicts += 1;
                } else {
                    tally.unexpected.push(format!("412 {body}"));
                }
            }
            other => {
                let text = r.text().await.unwrap_or_default();
                tally.unexpected.push(format!("{other} {text}"));
            }
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_with_if_match_lose_no_update() {
    let s = Server::start().await;
    s.put_flag(
        "counter",
        json!({"description": "0", "targets": {"on": []}, "serve": "off"}),
    )
    .await;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|id| tokio::spawn(writer(s.client.clone(), s.base.clone(), id)))
        .collect();
    let mut successes = 0;
    let mut conflicts = 0;
    for task in tasks {
        let tally = task.await.expect("a writer does not panic");
        assert!(
            tally.unexpected.is_empty(),
            "only 200 or 412: {:?}",
            tally.unexpected
        );
        successes += tally.successes;
        conflicts += tally.conflicts;
    }
    let n = WRITERS * PER_WRITER;
    assert_eq!(successes, n);

    // The final definition reflects every increment.
    let r = s.admin().get("/api/v1/flags/counter").send().await;
    let body = r.json();
    assert_eq!(
        body["definition"]["description"],
        json!(n.to_string()),
        "no lost update"
    );
    let mut targets: Vec<String> = body["definition"]["targets"]["on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    targets.sort();
    let mut expected: Vec<String> = (0..WRITERS)
        .flat_map(|w| (0..PER_WRITER).map(move |i| format!("w{w}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(targets, expected, "every writer's additions are there");
    let version = body["version"].as_u64().unwrap();
    assert_eq!(version, n as u64 + 1);
    assert_eq!(r.etag(), format!("\"{version}\""));

    // One audit event per successful write (the creation and the n updates), each one step.
    let events = s.audit("flag=counter&limit=1000").await;
    assert_eq!(events.len() as u64, version, "one event per version");
    for (i, e) in events.iter().rev().enumerate() {
        assert_eq!(
            e["after"]["description"],
            json!(i.to_string()),
            "event {i}: {e}"
        );
        if i > 0 {
            assert_eq!(
                e["before"]["description"],
                json!((i - 1).to_string()),
                "event {i}: {e}"
            );
        }
    }
    let history = s
        .admin()
        .get("/api/v1/flags/counter/history")
        .send()
        .await
        .json();
    assert_eq!(
        history["versions"].as_array().unwrap().len() as u64,
        version
    );
    // With this many writers some lost races; each loser was told so with a 412 and retried.
    eprintln!("{n} writes, {conflicts} conflicts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_different_flags_all_succeed() {
    let s = Server::start().await;
    let before_rev = s.revision().await;
    let before_audit = s.audit("limit=1000").await.len();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let client = s.client.clone();
            let base = s.base.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..PER_WRITER {
                    let r = client
                        .put(format!("{base}/api/v1/flags/f{w}_{i}"))
                        .bearer_auth(ADMIN)
                        .json(&json!({"serve": "on", "description": format!("{w}/{i}")}))
                        .send()
                        .await
                        .expect("PUT");
                    statuses.push(r.status().as_u16());
                }
                statuses
            })
        })
        .collect();
    for task in tasks {
        let statuses = task.await.expect("a writer does not panic");
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    }
    let n = WRITERS * PER_WRITER;
    let list = s.admin().get("/api/v1/flags").send().await.json();
    assert_eq!(list["flags"].as_array().unwrap().len(), n);
    assert_eq!(
        s.revision().await,
        before_rev + n as u64,
        "one revision per write"
    );
    assert_eq!(
        s.audit("limit=1000").await.len(),
        before_audit + n,
        "one event per write"
    );
}

#[tokio::test]
async fn a_write_is_visible_before_it_returns() {
    let s = Server::start().await;
    for i in 0..40u64 {
        let on = i % 2 == 0;
        s.put_flag("live", json!({"serve": if on { "on" } else { "off" }}))
            .await;
        let v = s.simple("live", "user_id=u1").await;
        assert_eq!(
            v["enabled"],
            json!(on),
            "round {i}: the simple API sees the write: {v}"
        );
        let r = s.admin().ofrep("live", json!({"targetingKey": "u1"})).await;
        assert_eq!(
            r.json()["value"],
            json!(on),
            "round {i}: OFREP sees the write"
        );

        // Through the simple API's shorthands and the kill switch too.
        let r = s
            .admin()
            .put("/flags/live?env=production")
            .json(&json!({"enabled": !on}))
            .send()
            .await;
        r.assert_status(200);
        let v = s.simple("live", "user_id=u1&env=production").await;
        assert_eq!(v["enabled"], json!(!on), "round {i}: {v}");
        let action = if on { "disable" } else { "enable" };
        s.admin()
            .post(&format!("/api/v1/flags/live/environments/staging/{action}"))
            .send()
            .await
            .assert_status(200);
        let v = s.simple("live", "user_id=u1&env=staging").await;
        assert_eq!(v["reason"] == json!("DISABLED"), on, "round {i}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_see_a_write_undone() {
    let s = Server::start().await;
    let number = |n: u64| json!({"variants": {"n": n}, "off": "n", "serve": "n"});
    s.put_flag("seq", number(0)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let client = s.client.clone();
            let url = format!("{}/flags/seq", s.base);
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut last = 0;
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = client
                        .get(&url)
                        .bearer_auth(ADMIN)
                        .send()
                        .await
                        .expect("GET");
                    assert_eq!(r.status(), StatusCode::OK);
                    let v: Value = r.json().await.expect("JSON");
                    let n = v["value"].as_u64().expect("a number");
                    assert!(n >= last, "went back from {last} to {n}");
                    last = n;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for i in 1..=30 {
        s.put_flag("seq", number(i)).await;
        assert_eq!(s.simple("seq", "").await["value"], json!(i));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.expect("a reader does not panic");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_only_writes_never_replace_a_flag() {
    let s = Server::start().await;
    // Eight people create the same key at once: exactly one wins, the others get 412.
    let attempts = (0..8).map(|i| {
        let s = &s;
        async move {
            s.admin()
                .put("/api/v1/flags/race")
                .header("if-none-match", "*")
                .json(&json!({ "description": format!("writer {i}") }))
                .send()
                .await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let created: Vec<_> = results.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        results.iter().map(|r| r.to_string()).collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| r.status != 201) {
        let e = r.assert_error(412, "version_conflict");
        assert!(e.to_string().contains("already exists"), "{e}");
    }
    let winner = created[0].json()["definition"].clone();
    let now = s.admin().get("/api/v1/flags/race").send().await;
    assert_eq!(now.json()["definition"], winner);
    assert_eq!(now.json()["version"], 1);

    // Only `*` is understood, and not together with If-Match.
    let r = s
        .admin()
        .put("/api/v1/flags/other")
        .header("if-none-match", "\"3\"")
        .json(&json!(true))
        .send()
        .await;
    r.assert_error(400, "validation_failed");
    let r = s
        .admin()
        .put("/api/v1/flags/race")
        .header("if-none-match", "*")
        .header("if-match", "\"1\"")
        .json(&json!(true))
        .send()
        .await;
    r.assert_error(400, "validation_failed");
    s.stop().await;
}
