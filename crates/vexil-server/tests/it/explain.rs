//! `POST /api/v1/flags/{key}/explain`: an evaluation and why, for the web UI's playground.

use serde_json::{Value, json};

use crate::harness::{Resp, Server};

/// A server with flags covering each step: targets and rules, a kill switch, a prerequisite, a
/// default rollout and a release date.
async fn server() -> Server {
    let s = Server::start().await;
    s.put_segment(
        "internal",
        json!({"when": [{"attribute": "email", "op": "ends_with", "values": ["@company.com"], "ignore_case": true}]}),
    )
    .await;
    s.put_flag(
        "new_dashboard",
        json!({
            "targets": {"on": ["user-123"]},
            "rules": [
                {"name": "staff", "when": [{"segment": "internal"}], "serve": "on"},
                {"name": "enterprise", "when": [
                    {"attribute": "plan", "op": "in", "values": ["enterprise", "pro"]},
                    {"attribute": "app_version", "op": "semver_gte", "values": ["2.3.0"]},
                ], "serve": "on"},
            ],
        }),
    )
    .await;
    s.put_flag("new_payments_api", json!(false)).await;
    s.put_flag(
        "new_checkout",
        json!({"prerequisites": [{"flag": "new_payments_api"}], "serve": "on"}),
    )
    .await;
    s.put_flag("ramp", json!({"rollout": 25})).await;
    s.put_flag(
        "launch",
        json!({"rules": [{"when": [{"attribute": "$now", "op": "after", "values": ["2026-12-01T09:00:00Z"]}], "serve": "on"}]}),
    )
    .await;
    s
}

async fn explain(s: &Server, flag: &str, env: Option<&str>, body: &Value) -> Resp {
    let path = match env {
        Some(env) => format!("/api/v1/flags/{flag}/explain?env={env}"),
        None => format!("/api/v1/flags/{flag}/explain"),
    };
    s.admin().post(&path).json(body).send().await
}

#[tokio::test]
async fn a_rule_and_its_conditions() {
    let s = server().await;
    let r = explain(
        &s,
        "new_dashboard",
        Some("production"),
        &json!({"context": {"targetingKey": "u1", "email": "a@example.org", "plan": "pro", "app_version": "2.4.1"}}),
    )
    .await;
    r.assert_status(200);
    assert_eq!(
        r.json(),
        json!({
            "flag": "new_dashboard",
            "environment": "production",
            "result": {"flag": "new_dashboard", "value": true, "variant": "on",
                "reason": "TARGETING_MATCH", "rule": {"index": 1, "name": "enterprise"}},
            "explanation": {
                "summary": "Rule 2 \"enterprise\" matched: plan in [enterprise, pro] held and app_version semver_gte 2.3.0 held; served \"on\".",
                "scope": "flag",
                "enabled": true,
                "prerequisites": [],
                "targets": {"matched": false, "variant": null, "key": "u1"},
                "rules": [
                    {"index": 0, "name": "staff", "matched": false,
                     "conditions": [{"index": 0, "text": "in segment internal", "held": false}],
                     "outcome": "serve on", "skipped": false, "note": null, "bucket": null, "variant": null},
                    {"index": 1, "name": "enterprise", "matched": true,
                     "conditions": [
                        {"index": 0, "text": "plan in [enterprise, pro]", "held": true},
                        {"index": 1, "text": "app_version semver_gte 2.3.0", "held": true},
                     ],
                     "outcome": "serve on", "skipped": false, "note": null, "bucket": null, "variant": "on"},
                ],
                "default": null,
            },
        }),
        "{r}"
    );

    // A context that matches nothing: every rule is tried, every condition shown.
    let r = explain(
        &s,
        "new_dashboard",
        Some("production"),
        &json!({"context": {"targetingKey": "u1", "plan": "free", "app_version": "2.4.1"}}),
    )
    .await;
    r.assert_status(200);
    let x = &r.json()["explanation"];
    assert_eq!(
        x["summary"],
        "No target or rule matched; served the default \"off\"."
    );
    assert_eq!(x["rules"][1]["conditions"][0]["held"], false, "{r}");
    assert_eq!(x["rules"][1]["conditions"][1]["held"], true, "{r}");
    assert_eq!(
        x["default"],
        json!({"text": "serve off", "bucket": null, "variant": "off", "note": null})
    );
}

#[tokio::test]
async fn the_kill_switch() {
    let s = server().await;
    s.admin()
        .post("/api/v1/flags/new_dashboard/environments/production/disable")
        .send()
        .await
        .assert_status(200);
    let r = explain(
        &s,
        "new_dashboard",
        Some("production"),
        &json!({"context": {"targetingKey": "user-123"}}),
    )
    .await;
    r.assert_status(200);
    let body = r.json();
    assert_eq!(body["result"]["reason"], "DISABLED", "{r}");
    assert_eq!(body["result"]["variant"], "off", "{r}");
    assert_eq!(body["explanation"]["enabled"], false, "{r}");
    assert_eq!(
        body["explanation"]["summary"],
        "The flag is disabled in production; served its off variant \"off\"."
    );
    assert_eq!(body["explanation"]["rules"], json!([]), "{r}");

    // Other environments still evaluate their targeting.
    let r = explain(
        &s,
        "new_dashboard",
        Some("staging"),
        &json!({"context": {"targetingKey": "user-123"}}),
    )
    .await;
    assert_eq!(
        r.json()["explanation"]["summary"],
        "The targeting key \"user-123\" is listed in targets for \"on\"; served \"on\"."
    );
}

#[tokio::test]
async fn a_failed_prerequisite() {
    let s = server().await;
    let r = explain(&s, "new_checkout", Some("staging"), &json!({"context": {}})).await;
    r.assert_status(200);
    let body = r.json();
    assert_eq!(body["result"]["reason"], "PREREQUISITE_FAILED", "{r}");
    assert_eq!(
        body["explanation"]["prerequisites"],
        json!([{"flag": "new_payments_api", "required": ["on"], "served": "off", "met": false}])
    );
    assert_eq!(
        body["explanation"]["summary"],
        "Prerequisite new_payments_api was served \"off\", not one of [on]; served \"off\"."
    );
}

#[tokio::test]
async fn the_default_rollout_gives_the_bucket() {
    let s = server().await;
    for user in ["user-1", "user-2", "user-3", "user-4"] {
        // No `env`: an admin key evaluates in the first environment.
        let r = explain(
            &s,
            "ramp",
            None,
            &json!({"context": {"targetingKey": user}}),
        )
        .await;
        r.assert_status(200);
        let body = r.json();
        assert_eq!(body["environment"], "development", "{r}");
        let bucket = vexil_engine::bucket("ramp", user);
        let variant = if bucket < 25_000 { "on" } else { "off" };
        assert_eq!(body["result"]["reason"], "SPLIT", "{r}");
        assert_eq!(body["result"]["variant"], variant, "{r}");
        assert_eq!(
            body["explanation"]["default"],
            json!({"text": "rollout on 25%, off 75%", "bucket": bucket, "variant": variant, "note": null})
        );
        assert_eq!(
            body["explanation"]["summary"],
            format!("The default rollout put bucket {bucket} of 100000 in \"{variant}\".")
        );
    }

    // Without a targeting key there is nothing to bucket: the off variant.
    let r = explain(&s, "ramp", None, &json!({})).await;
    r.assert_status(200);
    let body = r.json();
    assert_eq!(body["result"]["reason"], "DEFAULT", "{r}");
    assert_eq!(
        body["explanation"]["summary"],
        "The default rollout could not bucket: the context has no targetingKey; served the off variant \"off\"."
    );

    // No body at all is an empty context too.
    let r = s.admin().post("/api/v1/flags/ramp/explain").send().await;
    r.assert_status(200);
    assert_eq!(r.json()["result"]["reason"], "DEFAULT", "{r}");
}

#[tokio::test]
async fn now_can_be_chosen() {
    let s = server().await;
    for (now, variant, held) in [
        ("2026-11-30T12:00:00Z", "off", false),
        ("2026-12-01T09:00:01Z", "on", true),
        ("2026-12-01T10:00:01+01:00", "on", true),
    ] {
        let r = explain(
            &s,
            "launch",
            Some("production"),
            &json!({"context": {"targetingKey": "u1"}, "now": now}),
        )
        .await;
        r.assert_status(200);
        let body = r.json();
        assert_eq!(body["result"]["variant"], variant, "{now}: {r}");
        assert_eq!(
            body["explanation"]["rules"][0]["conditions"][0],
            json!({"index": 0, "text": "$now after 2026-12-01T09:00:00Z", "held": held}),
            "{now}"
        );
    }
}

#[tokio::test]
async fn a_bad_targeting_key_is_an_explained_error() {
    let s = server().await;
    let r = explain(
        &s,
        "ramp",
        Some("production"),
        &json!({"context": {"targetingKey": {"id": 1}}}),
    )
    .await;
    r.assert_status(200);
    let body = r.json();
    assert_eq!(body["result"]["reason"], "ERROR", "{r}");
    assert_eq!(body["result"]["error_code"], "INVALID_CONTEXT", "{r}");
    assert!(body["result"]["error_message"].is_string(), "{r}");
    assert_eq!(
        body["explanation"]["summary"],
        "The context's targetingKey is an object, not a string or a number; the evaluation fails with INVALID_CONTEXT and the caller's default applies."
    );
}

#[tokio::test]
async fn unknown_flags_and_environments_are_404() {
    let s = server().await;
    let r = explain(&s, "nope", Some("production"), &json!({})).await;
    let error = r.assert_error(404, "not_found");
    assert_eq!(error["message"], "no flag `nope`");
    let r = explain(&s, "ramp", Some("moon"), &json!({})).await;
    let error = r.assert_error(404, "not_found");
    assert_eq!(error["message"], "no environment `moon`");
}

#[tokio::test]
async fn only_admin_keys_may_explain() {
    let s = server().await;
    let server_key = s.create_key("server", Some("production")).await;
    let client_key = s.create_key("client", Some("production")).await;
    for key in [&server_key, &client_key] {
        let r = s
            .bearer(key)
            .post("/api/v1/flags/ramp/explain?env=production")
            .json(&json!({"context": {}}))
            .send()
            .await;
        r.assert_error(403, "forbidden");
    }
    let r = s
        .anonymous()
        .post("/api/v1/flags/ramp/explain")
        .json(&json!({}))
        .send()
        .await;
    r.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn bad_bodies_are_400() {
    let s = server().await;
    for (body, paths, message) in [
        (
            json!({"contxt": {}}),
            vec!["contxt"],
            "unknown field `contxt`; the body takes `context` and `now`",
        ),
        (
            json!({"context": "user-1"}),
            vec!["context"],
            "the evaluation context must be a JSON object, not a string",
        ),
        (
            json!({"now": "tomorrow"}),
            vec!["now"],
            "`tomorrow` is not an RFC 3339 timestamp like 2026-06-01T09:00:00Z",
        ),
        (
            json!({"now": 1767225600}),
            vec!["now"],
            "`now` is an RFC 3339 timestamp string like 2026-06-01T09:00:00Z, not a number",
        ),
        (
            json!([1, 2]),
            vec![""],
            "the body must be a JSON object like {\"context\": {...}, \"now\": \"2026-06-01T09:00:00Z\"}, not a list",
        ),
        (
            json!({"context": [], "now": "x", "extra": 1}),
            vec!["context", "extra", "now"],
            "the request has 3 problems",
        ),
    ] {
        let r = explain(&s, "ramp", Some("production"), &body).await;
        let error = r.assert_error(400, "validation_failed");
        let mut got = r.detail_paths();
        got.sort();
        assert_eq!(got, paths, "{body}: {r}");
        assert_eq!(error["message"], message, "{body}: {r}");
    }

    let mut deep = json!("leaf");
    for _ in 0..40 {
        deep = json!({ "a": deep });
    }
    let r = explain(&s, "ramp", None, &json!({"context": deep})).await;
    r.assert_error(400, "validation_failed");
    assert_eq!(r.detail_paths(), ["context"], "{r}");

    let r = s
        .admin()
        .post("/api/v1/flags/ramp/explain")
        .json_text("{\"context\": ")
        .send()
        .await;
    r.assert_error(400, "invalid_json");
}
