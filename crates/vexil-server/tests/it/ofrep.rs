//! OFREP (the OpenFeature Remote Evaluation Protocol): single and bulk evaluation.

use serde_json::{Value, json};

use crate::harness::Server;

/// One flag of each value type, and a boolean one with targeting.
async fn flags(s: &Server) {
    s.put_flag(
        "new_checkout",
        json!({
            "targets": {"on": ["vip", "1234"]},
            "rules": [{"name": "pro", "when": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "serve": "on"}],
        }),
    )
    .await;
    s.put_flag(
        "button_color",
        json!({"variants": {"blue": "#00f", "green": "#0f0"}, "off": "blue", "serve": "green"}),
    )
    .await;
    s.put_flag(
        "max_items",
        json!({"variants": {"few": 10, "many": 250.5}, "off": "few", "targets": {"many": ["vip"]}}),
    )
    .await;
    s.put_flag(
        "layout",
        json!({
            "variants": {"classic": {"columns": 1}, "grid": {"columns": 3, "gap": "1em"}},
            "off": "classic",
            "serve": "grid",
        }),
    )
    .await;
}

#[tokio::test]
async fn single_evaluation_of_every_type() {
    let s = Server::start().await;
    flags(&s).await;
    for (flag, ctx, expected) in [
        (
            "new_checkout",
            json!({"targetingKey": "vip"}),
            json!({"key": "new_checkout", "value": true, "reason": "TARGETING_MATCH", "variant": "on", "metadata": {}}),
        ),
        (
            "new_checkout",
            json!({"targetingKey": "u1", "plan": "pro"}),
            json!({"key": "new_checkout", "value": true, "reason": "TARGETING_MATCH", "variant": "on", "metadata": {}}),
        ),
        (
            "new_checkout",
            json!({"targetingKey": "u1", "plan": "free"}),
            json!({"key": "new_checkout", "value": false, "reason": "DEFAULT", "variant": "off", "metadata": {}}),
        ),
        (
            "button_color",
            json!({}),
            json!({"key": "button_color", "value": "#0f0", "reason": "STATIC", "variant": "green", "metadata": {}}),
        ),
        (
            "max_items",
            json!({"targetingKey": "vip"}),
            json!({"key": "max_items", "value": 250.5, "reason": "TARGETING_MATCH", "variant": "many", "metadata": {}}),
        ),
        (
            "max_items",
            json!({"targetingKey": "u1"}),
            json!({"key": "max_items", "value": 10, "reason": "DEFAULT", "variant": "few", "metadata": {}}),
        ),
        (
            "layout",
            json!({"targetingKey": "u1", "nested": {"a": [1, {"b": null}]}}),
            json!({"key": "layout", "value": {"columns": 3, "gap": "1em"}, "reason": "STATIC", "variant": "grid", "metadata": {}}),
        ),
    ] {
        let r = s.admin().ofrep(flag, ctx.clone()).await;
        r.assert_status(200);
        assert!(
            r.header("content-type")
                .is_some_and(|ct| ct.starts_with("application/json"))
        );
        assert_eq!(r.json(), expected, "{flag} with {ctx}");
    }
}

#[tokio::test]
async fn single_evaluation_errors() {
    let s = Server::start().await;
    flags(&s).await;

    // An unknown flag: 404 FLAG_NOT_FOUND in OFREP's error shape.
    let r = s
        .admin()
        .ofrep("missing", json!({"targetingKey": "u1"}))
        .await;
    r.assert_status(404);
    let body = r.json();
    assert_eq!(body["key"], json!("missing"), "{body}");
    assert_eq!(body["errorCode"], json!("FLAG_NOT_FOUND"), "{body}");
    assert!(
        body["errorDetails"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");

    // A context that is not an object: 400 INVALID_CONTEXT.
    for ctx in [json!("vip"), json!(42), json!([1, 2]), json!(true)] {
        let r = s.admin().ofrep("new_checkout", ctx.clone()).await;
        r.assert_status(400);
        let body = r.json();
        assert_eq!(body["errorCode"], json!("INVALID_CONTEXT"), "{ctx}: {body}");
        assert_eq!(body["key"], json!("new_checkout"), "{body}");
        assert!(body["errorDetails"].is_string(), "{body}");
    }
    // A targeting key that is neither a string nor a number.
    for ctx in [
        json!({"targetingKey": {"id": 1}}),
        json!({"targetingKey": ["vip"]}),
    ] {
        let r = s.admin().ofrep("new_checkout", ctx.clone()).await;
        r.assert_status(400);
        assert_eq!(
            r.json()["errorCode"],
            json!("INVALID_CONTEXT"),
            "{ctx}: {r}"
        );
    }
    // A number is compared by its string form.
    let r = s
        .admin()
        .ofrep("new_checkout", json!({"targetingKey": 1234}))
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["value"], json!(true), "{r}");

    // A body that is not an object.
    let r = s
        .admin()
        .post("/ofrep/v1/evaluate/flags/new_checkout")
        .json(&json!([{"context": {}}]))
        .send()
        .await;
    r.assert_status(400);
    assert_eq!(r.json()["errorCode"], json!("PARSE_ERROR"), "{r}");

    // No body, an empty context, a null context: evaluated with an empty context.
    for call in [
        s.admin().post("/ofrep/v1/evaluate/flags/new_checkout"),
        s.admin()
            .post("/ofrep/v1/evaluate/flags/new_checkout")
            .json(&json!({})),
        s.admin()
            .post("/ofrep/v1/evaluate/flags/new_checkout")
            .json(&json!({"context": null})),
    ] {
        let r = call.send().await;
        r.assert_status(200);
        assert_eq!(r.json()["value"], json!(false), "{r}");
    }
}

#[tokio::test]
async fn both_ways_of_sending_a_key_work() {
    let s = Server::start().await;
    flags(&s).await;
    let client = s.create_key("client", Some("production")).await;
    let server = s.create_key("server", Some("production")).await;
    for key in [crate::harness::ADMIN, client.as_str(), server.as_str()] {
        for r in [
            s.bearer(key)
                .ofrep("new_checkout", json!({"targetingKey": "vip"}))
                .await,
            s.api_key(key)
                .ofrep("new_checkout", json!({"targetingKey": "vip"}))
                .await,
        ] {
            r.assert_status(200);
            assert_eq!(r.json()["value"], json!(true), "{r}");
        }
        let r = s
            .api_key(key)
            .post("/ofrep/v1/evaluate/flags")
            .json(&json!({"context": {}}))
            .send()
            .await;
        r.assert_status(200);
    }
    // `Authorization` is case-insensitive in its scheme.
    let r = s
        .anonymous()
        .post("/ofrep/v1/evaluate/flags/new_checkout")
        .header("authorization", &format!("bearer {client}"))
        .json(&json!({}))
        .send()
        .await;
    r.assert_status(200);
    // Neither: 401.
    s.anonymous()
        .ofrep("new_checkout", json!({}))
        .await
        .assert_error(401, "unauthorized");
    s.api_key("vexil_client_nope")
        .ofrep("new_checkout", json!({}))
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn evaluation_uses_the_key_environment() {
    let s = Server::start().await;
    s.put_flag(
        "region",
        json!({
            "variants": {"dev": "d", "stage": "s", "prod": "p"},
            "off": "dev",
            "serve": "dev",
            "environments": {"staging": "stage", "production": "prod"},
        }),
    )
    .await;
    let prod = s.create_key("client", Some("production")).await;
    let stage = s.create_key("server", Some("staging")).await;
    let value = |r: crate::harness::Resp| {
        r.assert_status(200);
        r.json()["value"].clone()
    };
    assert_eq!(
        value(s.bearer(&prod).ofrep("region", json!({})).await),
        json!("p")
    );
    assert_eq!(
        value(s.bearer(&stage).ofrep("region", json!({})).await),
        json!("s")
    );
    // Admin keys: the default environment (the first), or the one asked for.
    assert_eq!(
        value(s.admin().ofrep("region", json!({})).await),
        json!("d")
    );
    let r = s
        .admin()
        .post("/ofrep/v1/evaluate/flags/region?env=production")
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(value(r), json!("p"));
    // The simple API agrees.
    assert_eq!(
        value(s.bearer(&prod).get("/flags/region").send().await),
        json!("p")
    );
    assert_eq!(
        value(
            s.bearer(&stage)
                .get("/flags/region?env=staging")
                .send()
                .await
        ),
        json!("s")
    );
}

#[tokio::test]
async fn bulk_evaluation_with_etag() {
    let s = Server::start().await;
    flags(&s).await;
    let bulk = |ctx: Value, etag: Option<String>| {
        let s = &s;
        async move {
            let mut call = s
                .admin()
                .post("/ofrep/v1/evaluate/flags")
                .json(&json!({"context": ctx}));
            if let Some(etag) = etag {
                call = call.header("if-none-match", &etag);
            }
            call.send().await
        }
    };

    let r = bulk(json!({"targetingKey": "vip"}), None).await;
    r.assert_status(200);
    let etag = r.etag();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "a strong ETag: {etag}"
    );
    let body = r.json();
    let flags = body["flags"].as_array().expect("a flags array");
    let mut by_key: Vec<(String, Value)> = flags
        .iter()
        .map(|f| (f["key"].as_str().unwrap().to_owned(), f.clone()))
        .collect();
    by_key.sort_by(|a, b| a.0.cmp(&b.0));
    let keys: Vec<&str> = by_key.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["button_color", "layout", "max_items", "new_checkout"]
    );
    assert_eq!(
        by_key[3].1,
        json!({"key": "new_checkout", "value": true, "reason": "TARGETING_MATCH", "variant": "on", "metadata": {}})
    );
    assert_eq!(by_key[2].1["value"], json!(250.5));
    assert_eq!(by_key[1].1["value"], json!({"columns": 3, "gap": "1em"}));

    // The same request again: the same ETag; with If-None-Match, 304 and no body.
    let again = bulk(json!({"targetingKey": "vip"}), None).await;
    assert_eq!(again.etag(), etag);
    let r = bulk(json!({"targetingKey": "vip"}), Some(etag.clone())).await;
    r.assert_status(304);
    assert!(r.text.is_empty(), "304 has no body: {r}");
    assert_eq!(r.etag(), etag);
    // A list of tags containing it, too.
    let r = bulk(
        json!({"targetingKey": "vip"}),
        Some(format!("\"other\", {etag}")),
    )
    .await;
    r.assert_status(304);
    // Another tag, or another context: 200.
    bulk(json!({"targetingKey": "vip"}), Some("\"stale\"".into()))
        .await
        .assert_status(200);
    let other = bulk(json!({"targetingKey": "u1"}), Some(etag.clone())).await;
    other.assert_status(200);
    assert_ne!(other.etag(), etag);

    // A change of the flags changes the ETag.
    s.put_flag(
        "button_color",
        json!({"variants": {"blue": "#00f", "green": "#0f0"}, "off": "blue", "serve": "blue"}),
    )
    .await;
    let r = bulk(json!({"targetingKey": "vip"}), Some(etag.clone())).await;
    r.assert_status(200);
    let changed = r.etag();
    assert_ne!(changed, etag);
    s.put_flag("added", json!(true)).await;
    let r = bulk(json!({"targetingKey": "vip"}), Some(changed.clone())).await;
    r.assert_status(200);
    assert_ne!(r.etag(), changed);
    assert_eq!(r.json()["flags"].as_array().unwrap().len(), 5);

    // An invalid context.
    let r = bulk(json!("vip"), None).await;
    r.assert_status(400);
    assert_eq!(r.json()["errorCode"], json!("INVALID_CONTEXT"), "{r}");
}

#[tokio::test]
async fn bulk_evaluation_of_an_empty_configuration() {
    let s = Server::start().await;
    let r = s
        .admin()
        .post("/ofrep/v1/evaluate/flags")
        .json(&json!({"context": {"targetingKey": "u1"}}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.json(), json!({"flags": []}));
}

#[tokio::test]
async fn a_failed_prerequisite_is_an_openfeature_reason() {
    let s = Server::start().await;
    s.put_flag("parent", json!(false)).await;
    s.put_flag(
        "child",
        json!({"prerequisites": [{"flag": "parent"}], "serve": "on"}),
    )
    .await;
    // OpenFeature has no PREREQUISITE_FAILED: OFREP says DEFAULT and keeps vexil's reason in
    // the metadata; the simple API says it as it is.
    let r = s
        .admin()
        .ofrep("child", json!({"targetingKey": "u1"}))
        .await;
    r.assert_status(200);
    assert_eq!(
        r.json(),
        json!({"key": "child", "value": false, "reason": "DEFAULT", "variant": "off", "metadata": {"reason": "PREREQUISITE_FAILED"}})
    );
    let v = s.simple("child", "user_id=u1").await;
    assert_eq!(v["reason"], json!("PREREQUISITE_FAILED"), "{v}");
    s.put_flag("parent", json!(true)).await;
    let r = s
        .admin()
        .ofrep("child", json!({"targetingKey": "u1"}))
        .await;
    assert_eq!(r.json()["value"], json!(true), "{r}");
}
