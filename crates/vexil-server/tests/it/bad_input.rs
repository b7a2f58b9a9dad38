//! Bad input (PRODUCT.md section 7): each request gets a clear 4xx in the error format, never a
//! 500, and nothing is written.

use serde_json::{Value, json};

use crate::harness::{Call, Server};

/// A server with a little configuration to break.
async fn server() -> Server {
    let s = Server::start().await;
    s.put_segment("internal", json!({"include": ["u1"]})).await;
    s.put_flag(
        "base",
        json!({"rules": [{"when": [{"segment": "internal"}], "serve": "on"}]}),
    )
    .await;
    s.put_flag(
        "dependent",
        json!({"prerequisites": [{"flag": "base"}], "serve": "on"}),
    )
    .await;
    s
}

/// Sends a request that must be refused with `status` and `code`, and checks that nothing
/// changed. Returns the answer.
async fn refused(
    s: &Server,
    what: &str,
    call: Call,
    status: u16,
    code: &str,
) -> crate::harness::Resp {
    let before = s.observe().await;
    let r = call.send().await;
    assert!(r.status.is_client_error(), "{what}: {r}");
    r.assert_error(status, code);
    s.assert_unchanged(&before, what).await;
    r
}

/// JSON nested `depth` levels deep: `{"x": {"x": … 1 …}}`.
fn nested(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = json!({ "x": v });
    }
    v
}

#[tokio::test]
async fn malformed_json() {
    let s = server().await;
    for (path, method) in [
        ("/api/v1/flags/base", reqwest::Method::PUT),
        ("/flags/base", reqwest::Method::PUT),
        ("/api/v1/segments/internal", reqwest::Method::PUT),
        ("/api/v1/flags/base/revert", reqwest::Method::POST),
        ("/api/v1/keys", reqwest::Method::POST),
        ("/api/v1/environments", reqwest::Method::POST),
        ("/api/v1/import", reqwest::Method::POST),
    ] {
        for text in [
            "{\"serve\": ",
            "{'serve': 'on'}",
            "{\"serve\": \"on\"} trailing",
            "\u{feff}{}",
        ] {
            let call = s.admin().call(method.clone(), path).json_text(text);
            let r = refused(
                &s,
                &format!("{method} {path} {text:?}"),
                call,
                400,
                "invalid_json",
            )
            .await;
            assert!(
                r.json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("line"),
                "{r}"
            );
        }
    }
}

#[tokio::test]
async fn wrong_types() {
    let s = server().await;
    for (body, path) in [
        (json!({"rules": "x"}), "rules"),
        (json!({"enabled": "yes"}), "enabled"),
        (json!({"serve": "on", "tags": "payments"}), "tags"),
        (json!({"serve": 1}), "serve"),
        (json!({"rollout": "ten"}), "rollout"),
        (json!({"targets": {"on": "u1"}}), "targets.on"),
        (
            json!({"rules": [{"when": {"attribute": "a"}, "serve": "on"}]}),
            "rules[0].when",
        ),
    ] {
        let what = format!("PUT {body}");
        let call = s.admin().put("/api/v1/flags/base").json(&body);
        let r = refused(&s, &what, call, 400, "validation_failed").await;
        assert!(
            r.detail_paths().iter().any(|p| p == path),
            "{what}: the details name `{path}`: {r}"
        );
    }
    // Not an object at all.
    for body in [json!("on"), json!(42), json!([]), json!(null)] {
        let call = s.admin().put("/api/v1/flags/base").json(&body);
        refused(&s, &format!("PUT {body}"), call, 400, "validation_failed").await;
    }
    // The simple API's shorthands.
    for body in [
        json!({"enabled": "yes"}),
        json!({"percentage": "10"}),
        json!({"percentage": -1}),
    ] {
        let call = s.admin().put("/flags/base").json(&body);
        refused(
            &s,
            &format!("PUT /flags {body}"),
            call,
            400,
            "validation_failed",
        )
        .await;
    }
    // Segments, keys, environments, revert.
    let call = s
        .admin()
        .put("/api/v1/segments/internal")
        .json(&json!({"include": "u1"}));
    refused(&s, "segment include", call, 400, "validation_failed").await;
    let call = s
        .admin()
        .put("/api/v1/segments/internal")
        .json(&json!(["u1"]));
    refused(&s, "segment array", call, 400, "validation_failed").await;
    let call = s
        .admin()
        .post("/api/v1/keys")
        .json(&json!({"name": 7, "kind": "admin"}));
    refused(&s, "key name", call, 400, "validation_failed").await;
    let call = s
        .admin()
        .post("/api/v1/environments")
        .json(&json!({"name": ["qa"]}));
    refused(&s, "environment name", call, 400, "validation_failed").await;
    let call = s
        .admin()
        .post("/api/v1/flags/base/revert")
        .json(&json!({"version": -1}));
    refused(&s, "revert version", call, 400, "validation_failed").await;
}

#[tokio::test]
async fn unknown_fields_are_named() {
    let s = server().await;
    for (body, path) in [
        (json!({"serve": "on", "colour": "red"}), "colour"),
        (
            json!({"rules": [{"when": [{"segment": "internal"}], "serve": "on", "priority": 1}]}),
            "rules[0].priority",
        ),
        (
            json!({"rules": [{"when": [{"attribute": "plan", "op": "in", "values": ["a"], "negate": true}], "serve": "on"}]}),
            "rules[0].when[0].negate",
        ),
        (
            json!({"serve": "on", "environments": {"staging": {"serve": "on", "note": "x"}}}),
            "environments.staging.note",
        ),
    ] {
        let what = format!("PUT {body}");
        let call = s.admin().put("/api/v1/flags/base").json(&body);
        let r = refused(&s, &what, call, 400, "validation_failed").await;
        assert_eq!(r.detail_paths(), [path], "{what}: {r}");
    }
    let call = s
        .admin()
        .put("/api/v1/segments/internal")
        .json(&json!({"include": ["u1"], "members": ["u2"]}));
    let r = refused(&s, "segment", call, 400, "validation_failed").await;
    assert_eq!(r.detail_paths(), ["members"], "{r}");
    let call = s
        .admin()
        .post("/api/v1/flags/base/revert")
        .json(&json!({"version": 1, "force": true}));
    let r = refused(&s, "revert", call, 400, "validation_failed").await;
    assert!(r.text.contains("force"), "{r}");
}

#[tokio::test]
async fn every_problem_is_reported_at_once() {
    let s = server().await;
    let body = json!({
        "colour": "red",
        "rules": [{"when": [{"attribute": "email", "op": "matches", "values": ["("]}], "serve": "maybe"}],
    });
    let call = s.admin().put("/api/v1/flags/base").json(&body);
    let r = refused(&s, "three problems", call, 400, "validation_failed").await;
    let mut paths = r.detail_paths();
    paths.sort();
    assert_eq!(
        paths,
        ["colour", "rules[0].serve", "rules[0].when[0].values[0]"],
        "{r}"
    );
}

#[tokio::test]
async fn invalid_regular_expression() {
    let s = server().await;
    let body = json!({
        "rules": [{"when": [{"attribute": "email", "op": "matches", "values": ["(unclosed"]}], "serve": "on"}],
    });
    for path in [
        "/api/v1/flags/base",
        "/api/v1/flags/new_flag",
        "/flags/new_flag",
    ] {
        let call = s.admin().put(path).json(&body);
        let r = refused(&s, path, call, 400, "validation_failed").await;
        assert_eq!(
            r.detail_paths(),
            ["rules[0].when[0].values[0]"],
            "{path}: {r}"
        );
    }
    // In a segment, relative to the segment.
    let call = s.admin().put("/api/v1/segments/internal").json(&json!({
        "when": [{"attribute": "email", "op": "matches", "values": ["[z-a]"]}],
    }));
    let r = refused(&s, "segment", call, 400, "validation_failed").await;
    assert_eq!(r.detail_paths(), ["when[0].values[0]"], "{r}");
}

#[tokio::test]
async fn oversized_bodies() {
    let s = server().await;
    let big = format!(
        "{{\"description\": \"{}\", \"serve\": \"on\"}}",
        "x".repeat(10 * 1024 * 1024)
    );
    for path in [
        "/api/v1/flags/base",
        "/flags/base",
        "/ofrep/v1/evaluate/flags/base",
        "/api/v1/segments/internal",
    ] {
        let method = if path.starts_with("/ofrep") {
            reqwest::Method::POST
        } else {
            reqwest::Method::PUT
        };
        let call = s.admin().call(method, path).json_text(big.clone());
        refused(&s, path, call, 413, "payload_too_large").await;
    }
    // A context of many attributes, just under the limit, is fine.
    let mut ctx = serde_json::Map::new();
    for i in 0..20_000 {
        ctx.insert(format!("attr{i}"), json!(i));
    }
    ctx.insert("targetingKey".into(), json!("u1"));
    let r = s.admin().ofrep("base", Value::Object(ctx)).await;
    r.assert_status(200);
}

#[tokio::test]
async fn oversized_chunked_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = server().await;
    let before = s.observe().await;
    // No Content-Length: the limit applies while reading.
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /api/v1/flags/base HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        crate::harness::ADMIN
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < 10 * 1024 * 1024 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if stream.write_all(&frame).await.is_err() {
            break; // The server answered and closed.
        }
        sent += chunk.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    s.assert_unchanged(&before, "a chunked 10 MB body").await;
}

#[tokio::test]
async fn deeply_nested_input() {
    let s = server().await;
    // A 100-level context on OFREP: 400 INVALID_CONTEXT (OFREP's error shape).
    for ctx in [json!({"deep": nested(100)}), nested(100)] {
        let before = s.observe().await;
        let r = s.admin().ofrep("base", ctx).await;
        r.assert_status(400);
        assert_eq!(r.json()["errorCode"], json!("INVALID_CONTEXT"), "{r}");
        let r = s
            .admin()
            .post("/ofrep/v1/evaluate/flags")
            .json(&json!({"context": {"deep": nested(100)}}))
            .send()
            .await;
        r.assert_status(400);
        assert_eq!(r.json()["errorCode"], json!("INVALID_CONTEXT"), "{r}");
        s.assert_unchanged(&before, "a deep context").await;
    }
    // A context within the limit is fine.
    s.admin()
        .ofrep("base", json!({"deep": nested(20)}))
        .await
        .assert_status(200);

    // A 100-level value in a flag definition.
    let body = json!({"variants": {"a": nested(100), "b": {"x": 2}}, "off": "a", "serve": "b"});
    let call = s.admin().put("/api/v1/flags/deep").json(&body);
    refused(&s, "a deep flag definition", call, 400, "validation_failed").await;
    let call = s.admin().put("/flags/deep").json(&body);
    refused(
        &s,
        "a deep flag definition (simple API)",
        call,
        400,
        "validation_failed",
    )
    .await;
    let call = s
        .admin()
        .put("/api/v1/segments/deep")
        .json(&json!({"when": [{"attribute": "a", "op": "in", "values": [nested(100)]}]}));
    refused(&s, "a deep segment", call, 400, "validation_failed").await;
    let call = s
        .admin()
        .post("/api/v1/import")
        .json(&json!({"flags": {"deep": body}}));
    refused(&s, "a deep import", call, 400, "validation_failed").await;

    // Deeper than the JSON parser goes: still a clear 400.
    let text = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let call = s.admin().put("/api/v1/flags/deep").json_text(text.clone());
    refused(&s, "5000 levels", call, 400, "invalid_json").await;
    let before = s.observe().await;
    let r = s
        .admin()
        .post("/ofrep/v1/evaluate/flags/base")
        .json_text(format!("{{\"context\": {{\"a\": {text}}}}}"))
        .send()
        .await;
    assert_eq!(r.status.as_u16(), 400, "{r}");
    s.assert_unchanged(&before, "5000 levels on OFREP").await;
}

#[tokio::test]
async fn flag_keys_with_a_slash() {
    let s = server().await;
    let body = json!({"serve": "on"});
    let call = s.admin().put("/api/v1/flags/a%2Fb").json(&body);
    let r = refused(&s, "an encoded slash", call, 400, "validation_failed").await;
    assert!(r.text.contains("a/b"), "{r}");
    let call = s
        .admin()
        .put("/flags/a%2Fb")
        .json(&json!({"enabled": true}));
    refused(
        &s,
        "an encoded slash (simple API)",
        call,
        400,
        "validation_failed",
    )
    .await;
    let call = s
        .admin()
        .put("/api/v1/segments/a%2Fb")
        .json(&json!({"include": []}));
    refused(
        &s,
        "an encoded slash (segment)",
        call,
        400,
        "validation_failed",
    )
    .await;
    let call = s.admin().put("/api/v1/flags/a/b").json(&body);
    refused(&s, "a slash", call, 404, "not_found").await;
    let call = s.admin().put("/api/v1/flags/a/b/c/d/e").json(&body);
    refused(&s, "slashes", call, 404, "not_found").await;
    // Other invalid keys.
    for key in ["-leading", "sp%20ace", "%C3%A9t%C3%A9", &"k".repeat(129)] {
        let call = s.admin().put(&format!("/api/v1/flags/{key}")).json(&body);
        refused(&s, key, call, 400, "validation_failed").await;
    }
    // Reads of such keys: no such flag.
    s.admin()
        .get("/api/v1/flags/a%2Fb")
        .send()
        .await
        .assert_error(404, "not_found");
    s.admin()
        .get("/api/v1/flags/a/b")
        .send()
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn non_json_content_types() {
    let s = server().await;
    for (method, path) in [
        (reqwest::Method::PUT, "/api/v1/flags/base"),
        (reqwest::Method::PUT, "/flags/base"),
        (reqwest::Method::PUT, "/api/v1/segments/internal"),
        (reqwest::Method::POST, "/api/v1/keys"),
        (reqwest::Method::POST, "/api/v1/import"),
        (reqwest::Method::POST, "/ofrep/v1/evaluate/flags/base"),
        (reqwest::Method::POST, "/ofrep/v1/evaluate/flags"),
    ] {
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let call = s
                .admin()
                .call(method.clone(), path)
                .header("content-type", ct)
                .body("{\"serve\": \"on\"}");
            refused(
                &s,
                &format!("{method} {path} as {ct}"),
                call,
                415,
                "unsupported_media_type",
            )
            .await;
        }
    }
    // With a charset, JSON is JSON.
    let r = s
        .admin()
        .put("/api/v1/flags/base")
        .header("content-type", "application/json; charset=utf-8")
        .body("{\"serve\": \"on\"}")
        .send()
        .await;
    r.assert_status(200);
}

#[tokio::test]
async fn unknown_environment_in_a_flag() {
    let s = server().await;
    let call = s
        .admin()
        .put("/api/v1/flags/base")
        .json(&json!({"serve": "off", "environments": {"moon": "on", "staging": "on"}}));
    let r = refused(&s, "unknown environment", call, 400, "validation_failed").await;
    assert_eq!(r.detail_paths(), ["environments.moon"], "{r}");
}

#[tokio::test]
async fn prerequisite_cycles_are_refused() {
    let s = server().await;
    // dependent → base; base → dependent closes the cycle.
    let call = s
        .admin()
        .put("/api/v1/flags/base")
        .json(&json!({"prerequisites": [{"flag": "dependent"}], "serve": "on"}));
    let r = refused(&s, "a cycle", call, 400, "validation_failed").await;
    assert!(r.text.contains("cycle"), "{r}");
    // A flag that is its own prerequisite.
    let call = s
        .admin()
        .put("/api/v1/flags/selfish")
        .json(&json!({"prerequisites": [{"flag": "selfish"}], "serve": "on"}));
    refused(&s, "a self-cycle", call, 400, "validation_failed").await;
    // A prerequisite that does not exist.
    let call = s
        .admin()
        .put("/api/v1/flags/orphan")
        .json(&json!({"prerequisites": [{"flag": "nobody"}], "serve": "on"}));
    let r = refused(
        &s,
        "an unknown prerequisite",
        call,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(r.detail_paths(), ["prerequisites[0].flag"], "{r}");
}

#[tokio::test]
async fn a_prerequisite_cannot_be_deleted() {
    let s = server().await;
    let call = s.admin().delete("/api/v1/flags/base");
    let r = refused(
        &s,
        "deleting a prerequisite",
        call,
        400,
        "validation_failed",
    )
    .await;
    assert!(
        r.detail_paths()
            .iter()
            .any(|p| p.starts_with("flags.dependent")),
        "the details name the dependent flag: {r}"
    );
    // Nor can its type change under the dependent flag; the problem is reported where it is,
    // in the other flag.
    s.put_flag(
        "based",
        json!({"prerequisites": [{"flag": "base"}], "serve": "on"}),
    )
    .await;
    let call = s
        .admin()
        .put("/api/v1/flags/base")
        .json(&json!({"variants": {"x": "1", "y": "2"}, "off": "x"}));
    let r = refused(
        &s,
        "retyping a prerequisite",
        call,
        400,
        "validation_failed",
    )
    .await;
    let paths = r.detail_paths();
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with("flags.dependent") || p.starts_with("flags.based")),
        "problems in other flags keep their full paths: {r}"
    );
    // Once the dependent flags are gone, it can go.
    s.admin()
        .delete("/api/v1/flags/dependent")
        .send()
        .await
        .assert_status(204);
    s.admin()
        .delete("/api/v1/flags/based")
        .send()
        .await
        .assert_status(204);
    s.admin()
        .delete("/api/v1/flags/base")
        .send()
        .await
        .assert_status(204);
}

#[tokio::test]
async fn bad_headers_and_queries() {
    let s = server().await;
    let call = s
        .admin()
        .put("/api/v1/flags/base")
        .header("if-match", "\"one\"")
        .json(&json!({"serve": "on"}));
    let r = refused(&s, "a bad If-Match", call, 400, "validation_failed").await;
    assert_eq!(r.detail_paths(), ["If-Match"], "{r}");
    let call = s
        .admin()
        .put("/api/v1/flags/base")
        .header("x-vexil-comment", &"c".repeat(3000))
        .json(&json!({"serve": "on"}));
    let r = refused(&s, "a long comment", call, 400, "validation_failed").await;
    assert_eq!(r.detail_paths(), ["X-Vexil-Comment"], "{r}");
}

#[tokio::test]
async fn wrong_methods() {
    use reqwest::Method;
    let s = server().await;
    for (method, path) in [
        (Method::PATCH, "/api/v1/flags/base"),
        (Method::DELETE, "/api/v1/flags"),
        (Method::POST, "/api/v1/flags/base"),
        (Method::GET, "/ofrep/v1/evaluate/flags/base"),
        (Method::POST, "/flags/base"),
        (Method::PUT, "/api/v1/flags/base/history"),
    ] {
        let before = s.observe().await;
        let r = s
            .admin()
            .call(method.clone(), path)
            .json(&json!({"serve": "off"}))
            .send()
            .await;
        // 400 today (the product's list of statuses has no 405); either is a clear refusal.
        assert!(
            matches!(r.status.as_u16(), 400 | 405),
            "{method} {path}: {r}"
        );
        let code = r.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        r.assert_error(r.status.as_u16(), &code);
        s.assert_unchanged(&before, &format!("{method} {path}"))
            .await;
    }
}
