//! The web UI's server side: its files, and sessions (cookie, CSRF, sign-out, revocation).
//! The pages themselves are tested in a browser by the CLI crate's `ui` tests.

use serde_json::{Value, json};

use crate::harness::{ADMIN, Resp, Server};

/// Signs in and returns the cookie (`vexil_session=…`) and the CSRF token.
async fn sign_in(server: &Server, key: &str, name: Option<&str>) -> (String, String) {
    let r = server
        .anonymous()
        .post("/api/v1/session")
        .json(&json!({ "key": key, "name": name }))
        .send()
        .await;
    r.assert_status(200);
    let cookie = set_cookie(&r);
    let pair = cookie.split(';').next().expect("a cookie").to_owned();
    (
        pair,
        r.json()["csrf"].as_str().expect("a csrf token").to_owned(),
    )
}

fn set_cookie(r: &Resp) -> String {
    r.header("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie: {r}"))
        .to_owned()
}

#[tokio::test]
async fn signing_in_sets_an_http_only_strict_cookie() {
    let server = Server::start().await;
    let r = server
        .anonymous()
        .post("/api/v1/session")
        .json(&json!({ "key": ADMIN, "name": "Zoë" }))
        .send()
        .await;
    r.assert_status(200);
    let cookie = set_cookie(&r);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP cannot carry a Secure cookie: {cookie}"
    );
    let body = r.json();
    assert_eq!(body["name"], "admin");
    assert_eq!(body["person"], "Zoë");
    assert_eq!(body["actor"], "Zoë via admin");
    assert_eq!(body["read_only"], false);
    assert!(!r.text.contains(ADMIN), "the key is never echoed: {r}");

    // Behind a TLS-terminating proxy the cookie is Secure.
    let r = server
        .anonymous()
        .post("/api/v1/session")
        .header("x-forwarded-proto", "https")
        .json(&json!({ "key": ADMIN }))
        .send()
        .await;
    assert!(set_cookie(&r).contains("; Secure"), "{r:?}", r = r.text);
    server.stop().await;
}

#[tokio::test]
async fn bad_sign_ins_are_refused_with_a_reason() {
    let server = Server::start().await;
    let client_key = server.create_key("client", Some("production")).await;
    let cases: [(Value, u16, &str); 6] = [
        (json!({ "key": "nope" }), 401, "unknown or revoked"),
        (json!({ "key": client_key }), 403, "only admin keys"),
        (json!({ "key": "  " }), 400, "enter an admin key"),
        (json!({ "key": ADMIN, "role": "x" }), 400, "role"),
        (
            json!({ "key": ADMIN, "name": "x".repeat(101) }),
            400,
            "longer than 100",
        ),
        (
            json!({ "key": ADMIN, "name": "a\u{7}b" }),
            400,
            "control characters",
        ),
    ];
    for (body, status, says) in cases {
        let r = server
            .anonymous()
            .post("/api/v1/session")
            .json(&body)
            .send()
            .await;
        assert_eq!(r.status.as_u16(), status, "{body}: {r}");
        assert!(r.text.contains(says), "{body}: {r} should say {says}");
        assert!(r.header("set-cookie").is_none(), "{body}: {r}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_session_reads_freely_but_writes_only_with_its_csrf_token() {
    let server = Server::start().await;
    let (cookie, csrf) = sign_in(&server, ADMIN, Some("alice")).await;
    let as_browser = server.anonymous();

    let r = as_browser
        .get("/api/v1/flags")
        .header("cookie", &cookie)
        .send()
        .await;
    r.assert_status(200);
    let r = as_browser
        .get("/api/v1/session")
        .header("cookie", &cookie)
        .send()
        .await;
    assert_eq!(r.json()["csrf"], csrf.as_str());

    let before = server.observe().await;
    let put = |extra: Option<(&'static str, String)>| {
        let mut call = as_browser
            .put("/api/v1/flags/from_ui")
            .header("cookie", &cookie)
            .json(&json!(true));
        if let Some((name, value)) = extra {
            call = call.header(name, &value);
        }
        call
    };
    put(None).send().await.assert_error(403, "csrf_failed");
    put(Some(("x-vexil-csrf", "00".repeat(32))))
        .send()
        .await
        .assert_error(403, "csrf_failed");
    // A token of another session of the same key does not fit either.
    let (_, other_csrf) = sign_in(&server, ADMIN, Some("bob")).await;
    put(Some(("x-vexil-csrf", other_csrf)))
        .send()
        .await
        .assert_error(403, "csrf_failed");
    server.assert_unchanged(&before, "refused writes").await;

    // Another site's page cannot even read.
    let r = as_browser
        .get("/api/v1/flags")
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await;
    r.assert_error(403, "csrf_failed");
    let r = put(Some(("x-vexil-csrf", csrf.clone())))
        .header("origin", "http://evil.example")
        .send()
        .await;
    assert!(r.text.contains("evil.example"), "{r}");
    server.assert_unchanged(&before, "cross-site writes").await;

    put(Some(("x-vexil-csrf", csrf.clone())))
        .send()
        .await
        .assert_status(201);
    let events = server.audit("flag=from_ui").await;
    assert_eq!(events[0]["actor"], "alice via admin", "{events:?}");
    server.stop().await;
}

#[tokio::test]
async fn signing_out_or_revoking_the_key_ends_the_session() {
    let server = Server::start().await;
    let (cookie, csrf) = sign_in(&server, ADMIN, None).await;
    let browser = server.anonymous();
    // Signing out is a write: it needs the token.
    browser
        .delete("/api/v1/session")
        .header("cookie", &cookie)
        .send()
        .await
        .assert_error(403, "csrf_failed");
    let r = browser
        .delete("/api/v1/session")
        .header("cookie", &cookie)
        .header("x-vexil-csrf", &csrf)
        .send()
        .await;
    r.assert_status(204);
    assert!(set_cookie(&r).contains("Max-Age=0"), "{r}");
    let r = browser
        .get("/api/v1/flags")
        .header("cookie", &cookie)
        .send()
        .await;
    let e = r.assert_error(401, "unauthorized");
    assert!(e.to_string().contains("sign in again"), "{e}");
    browser
        .get("/api/v1/session")
        .header("cookie", &cookie)
        .send()
        .await
        .assert_error(401, "unauthorized");

    // A second admin key's sessions end when it is revoked.
    let second = server
        .admin()
        .post("/api/v1/keys")
        .json(&json!({ "name": "night-shift", "kind": "admin" }))
        .send()
        .await;
    second.assert_status(201);
    let (id, secret) = (
        second.json()["id"].as_str().expect("an id").to_owned(),
        second.json()["secret"]
            .as_str()
            .expect("a secret")
            .to_owned(),
    );
    let (cookie, _) = sign_in(&server, &secret, None).await;
    browser
        .get("/api/v1/flags")
        .header("cookie", &cookie)
        .send()
        .await
        .assert_status(200);
    server
        .admin()
        .delete(&format!("/api/v1/keys/{id}"))
        .send()
        .await
        .assert_status(204);
    browser
        .get("/api/v1/flags")
        .header("cookie", &cookie)
        .send()
        .await
        .assert_error(401, "unauthorized");

    // A forged or garbled cookie is no session.
    for bad in [
        "vexil_session=v1.x.1.y.z",
        "vexil_session=garbage",
        "vexil_session=",
    ] {
        let r = browser
            .get("/api/v1/flags")
            .header("cookie", bad)
            .send()
            .await;
        assert_eq!(r.status, 401, "{bad}: {r}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let server = Server::start().await;
    let r = server.anonymous().get("/").send().await;
    r.assert_status(200);
    assert!(r.text.contains("<script type=\"module\""), "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));

    let r = server.anonymous().get("/ui/app.js").send().await;
    r.assert_status(200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let etag = r.header("etag").expect("an ETag").to_owned();
    let r = server
        .anonymous()
        .get("/ui/app.js")
        .header("if-none-match", &etag)
        .send()
        .await;
    r.assert_status(304);

    for missing in ["/ui/nope.js", "/ui/../Cargo.toml", "/ui/%2e%2e/Cargo.toml"] {
        let r = server.anonymous().get(missing).send().await;
        assert_eq!(r.status, 404, "{missing}: {r}");
    }
    server.stop().await;
}
