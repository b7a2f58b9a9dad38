//! Every route of the admin API and the simple API (PRODUCT.md section 2), one behaviour at a
//! time, with an admin key.

use serde_json::{Value, json};

use crate::harness::{ADMIN, Server};

/// Every path the router serves, as written in the OpenAPI document.
pub const ROUTE_PATHS: [&str; 21] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/flags/{key}",
    "/ofrep/v1/evaluate/flags/{key}",
    "/ofrep/v1/evaluate/flags",
    "/api/v1/flags",
    "/api/v1/flags/{key}",
    "/api/v1/flags/{key}/environments/{env}/enable",
    "/api/v1/flags/{key}/environments/{env}/disable",
    "/api/v1/flags/{key}/history",
    "/api/v1/flags/{key}/revert",
    "/api/v1/segments",
    "/api/v1/segments/{name}",
    "/api/v1/environments",
    "/api/v1/keys",
    "/api/v1/keys/{id}",
    "/api/v1/audit",
    "/api/v1/export",
    "/api/v1/import",
];

/// The definition of a flag as the admin API returns it.
async fn definition(s: &Server, key: &str) -> Value {
    let r = s.admin().get(&format!("/api/v1/flags/{key}")).send().await;
    r.assert_status(200);
    r.json()["definition"].clone()
}

/// How many of `users` get `on` for a flag, through the simple API.
async fn count_on(s: &Server, flag: &str, env: &str, users: usize) -> usize {
    let mut on = 0;
    for u in 0..users {
        let v = s.simple(flag, &format!("user_id=user-{u}&env={env}")).await;
        assert_eq!(v["reason"], json!("SPLIT"), "{v}");
        if v["enabled"] == json!(true) {
            on += 1;
        }
    }
    on
}

// ---- The simple API ----

#[tokio::test]
async fn simple_get_builds_the_context_from_the_query() {
    let s = Server::start().await;
    s.put_flag(
        "checkout",
        json!({
            "targets": {"on": ["vip"]},
            "rules": [{
                "name": "enterprise",
                "when": [{"attribute": "plan", "op": "in", "values": ["enterprise"]}],
                "serve": "on",
            }],
            "environments": {"production": "off"},
        }),
    )
    .await;

    let v = s.simple("checkout", "user_id=vip").await;
    assert_eq!(
        v,
        json!({"flag": "checkout", "enabled": true, "variant": "on", "value": true, "reason": "TARGETING_MATCH"})
    );
    let v = s.simple("checkout", "user_id=u1&plan=enterprise").await;
    assert_eq!(v["enabled"], json!(true), "{v}");
    assert_eq!(v["reason"], json!("TARGETING_MATCH"), "{v}");
    let v = s.simple("checkout", "user_id=u1&plan=free").await;
    assert_eq!(
        v,
        json!({"flag": "checkout", "enabled": false, "variant": "off", "value": false, "reason": "DEFAULT"})
    );
    // `user_id` is the targeting key, not an attribute of that name.
    let v = s
        .simple("checkout", "targetingKey=vip&user_id=nobody")
        .await;
    assert_eq!(v["enabled"], json!(false), "{v}");

    // `env` picks the environment (admin keys); production serves `off` to everyone.
    let v = s.simple("checkout", "user_id=vip&env=production").await;
    assert_eq!(
        v,
        json!({"flag": "checkout", "enabled": false, "variant": "off", "value": false, "reason": "STATIC"})
    );
    let v = s.simple("checkout", "user_id=vip&env=staging").await;
    assert_eq!(v["enabled"], json!(true), "{v}");

    // An unknown flag: 404, and still the simple shape with `enabled: false`.
    let r = s.admin().get("/flags/missing?user_id=vip").send().await;
    r.assert_status(404);
    let v = r.json();
    assert_eq!(v["flag"], json!("missing"), "{v}");
    assert_eq!(v["enabled"], json!(false), "{v}");
    assert_eq!(v["reason"], json!("ERROR"), "{v}");

    // An unknown environment.
    s.admin()
        .get("/flags/checkout?env=moon")
        .send()
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn simple_get_of_a_string_flag_is_enabled_unless_off() {
    let s = Server::start().await;
    s.put_flag(
        "color",
        json!({
            "variants": {"grey": "#888", "blue": "#00f"},
            "off": "grey",
            "targets": {"blue": ["u1"]},
        }),
    )
    .await;
    let v = s.simple("color", "user_id=u1").await;
    assert_eq!(
        v,
        json!({"flag": "color", "enabled": true, "variant": "blue", "value": "#00f", "reason": "TARGETING_MATCH"})
    );
    let v = s.simple("color", "user_id=u2").await;
    assert_eq!(v["enabled"], json!(false), "{v}");
    assert_eq!(v["value"], json!("#888"), "{v}");
}

#[tokio::test]
async fn simple_put_shorthands_for_every_environment() {
    let s = Server::start().await;

    // {"enabled": true} creates a flag on for everyone.
    let r = s
        .admin()
        .put("/flags/beta")
        .json(&json!({"enabled": true}))
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.etag(), "\"1\"");
    assert_eq!(r.json()["definition"], json!({"serve": "on"}));
    for env in ["development", "staging", "production"] {
        let v = s.simple("beta", &format!("user_id=u1&env={env}")).await;
        assert_eq!(v["enabled"], json!(true), "{env}: {v}");
        assert_eq!(v["reason"], json!("STATIC"), "{env}: {v}");
    }

    // {"enabled": false} disables it everywhere.
    let r = s
        .admin()
        .put("/flags/beta")
        .json(&json!({"enabled": false}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["definition"]["enabled"], json!(false));
    for env in ["development", "staging", "production"] {
        let v = s.simple("beta", &format!("user_id=u1&env={env}")).await;
        assert_eq!(v["enabled"], json!(false), "{env}: {v}");
        assert_eq!(v["reason"], json!("DISABLED"), "{env}: {v}");
    }

    // {"percentage": 10}: a boolean rollout of 10% (and enabled again).
    let r = s
        .admin()
        .put("/flags/beta")
        .json(&json!({"percentage": 10}))
        .send()
        .await;
    r.assert_status(200);
    let def = r.json()["definition"].clone();
    assert_eq!(def["rollout"], json!(10), "{def}");
    assert!(def.get("enabled").is_none(), "{def}");
    let on = count_on(&s, "beta", "development", 400).await;
    assert!(
        (16..=64).contains(&on),
        "about 10% of 400 users get `on`, not {on}"
    );

    // A full definition replaces the flag.
    let full = json!({
        "description": "Beta features",
        "kind": "release",
        "owner": "web-team",
        "tags": ["web"],
        "targets": {"on": ["tester"]},
        "serve": "off",
    });
    let r = s.admin().put("/flags/beta").json(&full).send().await;
    r.assert_status(200);
    assert_eq!(r.json()["definition"], full);
    assert_eq!(definition(&s, "beta").await, full);
    assert_eq!(
        s.simple("beta", "user_id=tester").await["enabled"],
        json!(true)
    );
    assert_eq!(
        s.simple("beta", "user_id=other").await["enabled"],
        json!(false)
    );

    // A full definition creates a flag too.
    let r = s
        .admin()
        .put("/flags/fresh")
        .json(&json!({"serve": "on"}))
        .send()
        .await;
    r.assert_status(201);
}

#[tokio::test]
async fn simple_put_shorthands_with_env_change_that_environment_only() {
    let s = Server::start().await;
    s.put_flag(
        "search",
        json!({"targets": {"on": ["tester"]}, "serve": "off"}),
    )
    .await;
    let before_dev = s.simple("search", "user_id=tester&env=development").await;
    assert_eq!(before_dev["enabled"], json!(true));

    // Disabled in production only.
    s.admin()
        .put("/flags/search?env=production")
        .json(&json!({"enabled": false}))
        .send()
        .await
        .assert_status(200);
    let v = s.simple("search", "user_id=tester&env=production").await;
    assert_eq!(v["reason"], json!("DISABLED"), "{v}");
    assert_eq!(
        s.simple("search", "user_id=tester&env=development").await,
        before_dev
    );
    assert_eq!(
        s.simple("search", "user_id=tester&env=staging").await["reason"],
        json!("TARGETING_MATCH")
    );

    // On for everyone in staging only.
    s.admin()
        .put("/flags/search?env=staging")
        .json(&json!({"enabled": true}))
        .send()
        .await
        .assert_status(200);
    let v = s.simple("search", "user_id=anyone&env=staging").await;
    assert_eq!(
        (v["enabled"].clone(), v["reason"].clone()),
        (json!(true), json!("STATIC")),
        "{v}"
    );
    assert_eq!(
        s.simple("search", "user_id=anyone&env=development").await["enabled"],
        json!(false)
    );
    assert_eq!(
        s.simple("search", "user_id=anyone&env=production").await["reason"],
        json!("DISABLED")
    );

    // A 50% rollout in development only.
    s.admin()
        .put("/flags/search?env=development")
        .json(&json!({"percentage": 50}))
        .send()
        .await
        .assert_status(200);
    let def = definition(&s, "search").await;
    assert_eq!(
        def["environments"]["development"]["rollout"],
        json!(50),
        "{def}"
    );
    assert_eq!(
        def["serve"],
        json!("off"),
        "the flag level is untouched: {def}"
    );
    let on = count_on(&s, "search", "development", 200).await;
    assert!(
        (60..=140).contains(&on),
        "about half of 200 users, not {on}"
    );
    // The targets stay in the environment's targeting.
    assert_eq!(
        s.simple("search", "user_id=tester&env=development").await["reason"],
        json!("TARGETING_MATCH")
    );
    assert_eq!(
        s.simple("search", "user_id=anyone&env=staging").await["enabled"],
        json!(true)
    );
    assert_eq!(
        s.simple("search", "user_id=anyone&env=production").await["reason"],
        json!("DISABLED")
    );

    // Refusals.
    s.admin()
        .put("/flags/search?env=moon")
        .json(&json!({"enabled": true}))
        .send()
        .await
        .assert_error(404, "not_found");
    s.admin()
        .put("/flags/search?env=staging")
        .json(&json!({"serve": "on", "description": "full"}))
        .send()
        .await
        .assert_error(400, "validation_failed");
    s.admin()
        .put("/flags/search")
        .json(&json!({"percentage": 101}))
        .send()
        .await
        .assert_error(400, "validation_failed");
    s.put_flag(
        "color",
        json!({"variants": {"a": "x", "b": "y"}, "off": "a"}),
    )
    .await;
    s.admin()
        .put("/flags/color")
        .json(&json!({"enabled": true}))
        .send()
        .await
        .assert_error(400, "validation_failed");
}

// ---- Flags ----

#[tokio::test]
async fn flags_crud_with_versions_and_if_match() {
    let s = Server::start().await;
    let r = s.admin().get("/api/v1/flags").send().await;
    r.assert_status(200);
    assert_eq!(r.json()["flags"], json!([]));

    // Create: 201, version 1, ETag "1".
    let v1 = json!({"description": "one", "serve": "on"});
    let r = s
        .admin()
        .put("/api/v1/flags/dark_mode")
        .json(&v1)
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.etag(), "\"1\"");
    let body = r.json();
    assert_eq!(body["key"], json!("dark_mode"));
    assert_eq!(body["version"], json!(1));
    assert_eq!(body["updated_by"], json!("admin"));
    assert_eq!(body["definition"], v1);
    assert!(
        body["updated_at"]
            .as_str()
            .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()),
        "{body}"
    );
    let mut fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["definition", "key", "updated_at", "updated_by", "version"]
    );

    // Read: 200 with the same ETag.
    let r = s.admin().get("/api/v1/flags/dark_mode").send().await;
    r.assert_status(200);
    assert_eq!(r.etag(), "\"1\"");
    assert_eq!(r.json(), body);

    // Update with a current If-Match: 200, version 2.
    let v2 = json!({"description": "two", "serve": "off"});
    let r = s
        .admin()
        .put("/api/v1/flags/dark_mode")
        .header("if-match", "\"1\"")
        .json(&v2)
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.etag(), "\"2\"");
    assert_eq!(r.json()["version"], json!(2));

    // A stale If-Match: 412, nothing written.
    let before = s.observe().await;
    let r = s
        .admin()
        .put("/api/v1/flags/dark_mode")
        .header("if-match", "\"1\"")
        .json(&json!({"serve": "on"}))
        .send()
        .await;
    r.assert_error(412, "version_conflict");
    s.admin()
        .delete("/api/v1/flags/dark_mode")
        .header("if-match", "\"1\"")
        .send()
        .await
        .assert_error(412, "version_conflict");
    s.assert_unchanged(&before, "a stale If-Match").await;
    let r = s.admin().get("/api/v1/flags/dark_mode").send().await;
    assert_eq!(r.etag(), "\"2\"");
    assert_eq!(r.json()["definition"], v2);

    // Writing the current definition again changes nothing: no new version.
    let r = s
        .admin()
        .put("/api/v1/flags/dark_mode")
        .json(&v2)
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.etag(), "\"2\"");
    // If-Match forms: `*`, a weak tag; and a malformed one.
    s.admin()
        .put("/api/v1/flags/dark_mode")
        .header("if-match", "*")
        .json(&json!({"serve": "off", "description": "changed"}))
        .send()
        .await
        .assert_status(200);
    s.admin()
        .put("/api/v1/flags/dark_mode")
        .header("if-match", "W/\"3\"")
        .json(&v2)
        .send()
        .await
        .assert_status(200);
    s.admin()
        .put("/api/v1/flags/dark_mode")
        .header("if-match", "yesterday")
        .json(&v2)
        .send()
        .await
        .assert_error(400, "validation_failed");
    // If-Match on a flag that does not exist.
    s.admin()
        .put("/api/v1/flags/nonexistent")
        .header("if-match", "\"1\"")
        .json(&v2)
        .send()
        .await
        .assert_error(412, "version_conflict");

    // The list.
    s.put_flag("another", json!(true)).await;
    let r = s.admin().get("/api/v1/flags").send().await;
    r.assert_status(200);
    let list = r.json();
    let keys: Vec<&str> = list["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["another", "dark_mode"]);
    assert_eq!(list["flags"][1]["version"], json!(4));
    assert_eq!(list["flags"][0]["definition"], json!(true));
    assert_eq!(list["revision"].as_u64(), Some(s.revision().await));

    // Delete: 204 with no body, then 404.
    let r = s
        .admin()
        .delete("/api/v1/flags/dark_mode")
        .header("if-match", "\"4\"")
        .send()
        .await;
    r.assert_status(204);
    assert!(r.text.is_empty(), "{r}");
    s.admin()
        .get("/api/v1/flags/dark_mode")
        .send()
        .await
        .assert_error(404, "not_found");
    s.admin()
        .delete("/api/v1/flags/dark_mode")
        .send()
        .await
        .assert_error(404, "not_found");
    let v = s.admin().get("/flags/dark_mode").send().await;
    v.assert_status(404);
    assert_eq!(v.json()["enabled"], json!(false));

    // Created again: a creation (201), its version numbering continued.
    let r = s
        .admin()
        .put("/api/v1/flags/dark_mode")
        .json(&v1)
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.json()["version"], json!(6));
    assert_eq!(r.etag(), "\"6\"");
}

#[tokio::test]
async fn kill_switch_per_environment() {
    let s = Server::start().await;
    let original = json!({
        "targets": {"on": ["vip"]},
        "rules": [{"when": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "serve": "on"}],
        "rollout": 0,
    });
    s.put_flag("payments", original.clone()).await;
    let ask = |env: &'static str, query: &'static str| {
        let s = &s;
        async move { s.simple("payments", &format!("{query}&env={env}")).await }
    };
    let vip_prod = ask("production", "user_id=vip").await;
    assert_eq!(vip_prod["reason"], json!("TARGETING_MATCH"));

    // Off in production.
    let r = s
        .admin()
        .post("/api/v1/flags/payments/environments/production/disable")
        .header("x-vexil-comment", "incident 42")
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.etag(), "\"2\"");
    for query in ["user_id=vip", "user_id=u1&plan=pro", "user_id=u1"] {
        let v = ask("production", query).await;
        assert_eq!(v["reason"], json!("DISABLED"), "{query}: {v}");
        assert_eq!(v["enabled"], json!(false), "{query}: {v}");
    }
    // Other environments untouched.
    for env in ["development", "staging"] {
        assert_eq!(
            ask(env, "user_id=vip").await["reason"],
            json!("TARGETING_MATCH"),
            "{env}"
        );
        assert_eq!(
            ask(env, "user_id=u1&plan=pro").await["enabled"],
            json!(true),
            "{env}"
        );
        assert_eq!(
            ask(env, "user_id=u1").await["enabled"],
            json!(false),
            "{env}"
        );
    }
    let events = s.audit("flag=payments&limit=1").await;
    assert_eq!(events[0]["action"], json!("flag.disable"));
    assert_eq!(events[0]["comment"], json!("incident 42"));

    // Disabling again keeps it disabled.
    s.admin()
        .post("/api/v1/flags/payments/environments/production/disable")
        .send()
        .await
        .assert_status(200);
    assert_eq!(
        ask("production", "user_id=vip").await["reason"],
        json!("DISABLED")
    );

    // On again: the targeting it had is back, and the definition is what it was.
    let r = s
        .admin()
        .post("/api/v1/flags/payments/environments/production/enable")
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(
        s.audit("flag=payments&limit=1").await[0]["action"],
        json!("flag.enable")
    );
    assert_eq!(ask("production", "user_id=vip").await, vip_prod);
    assert_eq!(
        ask("production", "user_id=u1&plan=pro").await["reason"],
        json!("TARGETING_MATCH")
    );
    assert_eq!(
        ask("production", "user_id=u1").await["enabled"],
        json!(false)
    );
    assert_eq!(definition(&s, "payments").await, original);

    // A later change of the flag's targeting reaches production too.
    let mut changed = original.clone();
    changed["targets"] = json!({"on": ["vip", "newcomer"]});
    s.put_flag("payments", changed).await;
    assert_eq!(
        ask("production", "user_id=newcomer").await["enabled"],
        json!(true)
    );

    // Off in production, the flag level changed meanwhile, on again: production follows the
    // flag level as it is now, not a copy of what it was when it was switched off.
    let post = |path: String| {
        let s = &s;
        async move { s.admin().post(&path).send().await.assert_status(200).json() }
    };
    post("/api/v1/flags/payments/environments/production/disable".into()).await;
    assert_eq!(
        definition(&s, "payments").await["environments"],
        json!({"production": {"enabled": false}}),
        "switching off writes only the switch"
    );
    // (The UI's editor changes the flag level and keeps the overrides.)
    s.put_flag(
        "payments",
        json!({"serve": "on", "environments": {"production": {"enabled": false}}}),
    )
    .await;
    assert_eq!(
        ask("production", "user_id=u1").await["reason"],
        json!("DISABLED")
    );
    post("/api/v1/flags/payments/environments/production/enable".into()).await;
    assert_eq!(definition(&s, "payments").await, json!({"serve": "on"}));
    assert_eq!(
        ask("production", "user_id=u1").await["enabled"],
        json!(true)
    );

    // Off at the flag level: switching one environment on gives it the flag level's
    // targeting there; off again and on again round-trips.
    s.put_flag("dark", json!({"enabled": false, "serve": "on"}))
        .await;
    post("/api/v1/flags/dark/environments/production/enable".into()).await;
    let on_in_prod =
        json!({"enabled": false, "serve": "on", "environments": {"production": {"serve": "on"}}});
    assert_eq!(definition(&s, "dark").await, on_in_prod);
    assert_eq!(
        s.simple("dark", "user_id=u&env=production").await["enabled"],
        json!(true)
    );
    assert_eq!(
        s.simple("dark", "user_id=u&env=staging").await["enabled"],
        json!(false)
    );
    post("/api/v1/flags/dark/environments/production/disable".into()).await;
    assert_eq!(
        s.simple("dark", "user_id=u&env=production").await["enabled"],
        json!(false)
    );
    post("/api/v1/flags/dark/environments/production/enable".into()).await;
    assert_eq!(definition(&s, "dark").await, on_in_prod);

    // A flag with its own override for the environment keeps it through the switch.
    let with_override = json!({
        "serve": "off",
        "environments": {"staging": {"targets": {"on": ["qa-1"]}}},
    });
    s.put_flag("search", with_override.clone()).await;
    for action in ["disable", "enable"] {
        s.admin()
            .post(&format!(
                "/api/v1/flags/search/environments/staging/{action}"
            ))
            .send()
            .await
            .assert_status(200);
    }
    assert_eq!(definition(&s, "search").await, with_override);
    assert_eq!(
        s.simple("search", "user_id=qa-1&env=staging").await["enabled"],
        json!(true)
    );

    // Unknown flag or environment.
    s.admin()
        .post("/api/v1/flags/nope/environments/production/disable")
        .send()
        .await
        .assert_error(404, "not_found");
    s.admin()
        .post("/api/v1/flags/payments/environments/moon/disable")
        .send()
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn history_lists_every_version_and_revert_writes_a_new_one() {
    let s = Server::start().await;
    let v1 = json!({"description": "first", "serve": "on"});
    let v2 = json!({"description": "second", "serve": "off"});
    s.put_flag("banner", v1.clone()).await;
    s.put_flag("banner", v2.clone()).await;
    s.admin()
        .post("/api/v1/flags/banner/environments/production/disable")
        .send()
        .await
        .assert_status(200);
    let v3 = definition(&s, "banner").await;

    let r = s.admin().get("/api/v1/flags/banner/history").send().await;
    r.assert_status(200);
    let h = r.json();
    assert_eq!(h["key"], json!("banner"));
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3, "{h}");
    for (i, (v, def)) in versions.iter().zip([&v1, &v2, &v3]).enumerate() {
        assert_eq!(v["version"], json!(i + 1), "{h}");
        assert_eq!(&v["definition"], def, "{h}");
        assert_eq!(v["deleted"], json!(false), "{h}");
        assert_eq!(v["updated_by"], json!("admin"), "{h}");
        assert!(v["revision"].is_u64() && v["updated_at"].is_string(), "{h}");
    }

    // Revert to version 1: version 4 equals version 1.
    let r = s
        .admin()
        .post("/api/v1/flags/banner/revert")
        .header("x-vexil-comment", "back to the start")
        .json(&json!({"version": 1}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.etag(), "\"4\"");
    assert_eq!(r.json()["definition"], v1);
    assert_eq!(definition(&s, "banner").await, v1);
    let event = &s.audit("flag=banner&limit=1").await[0];
    assert_eq!(event["action"], json!("flag.revert"));
    assert_eq!(event["before"], v3);
    assert_eq!(event["after"], v1);
    assert_eq!(event["comment"], json!("back to the start"));
    assert_eq!(
        s.simple("banner", "env=production").await["reason"],
        json!("STATIC")
    );

    // Deleted: the deletion is a version of its own.
    s.admin()
        .delete("/api/v1/flags/banner")
        .send()
        .await
        .assert_status(204);
    let h = s
        .admin()
        .get("/api/v1/flags/banner/history")
        .send()
        .await
        .json();
    let last = h["versions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["version"], json!(5), "{h}");
    assert_eq!(last["deleted"], json!(true), "{h}");
    assert_eq!(last["definition"], Value::Null, "{h}");

    // Reverting to the deletion is refused, and writes nothing.
    let before = s.observe().await;
    s.admin()
        .post("/api/v1/flags/banner/revert")
        .json(&json!({"version": 5}))
        .send()
        .await
        .assert_error(400, "validation_failed");
    s.admin()
        .post("/api/v1/flags/banner/revert")
        .json(&json!({"version": 99}))
        .send()
        .await
        .assert_error(404, "not_found");
    s.admin()
        .post("/api/v1/flags/banner/revert")
        .json(&json!({"version": "two"}))
        .send()
        .await
        .assert_error(400, "validation_failed");
    s.assert_unchanged(&before, "refused reverts").await;

    // Reverting a deleted flag to an old version brings it back. `If-Match` names the
    // deletion, so a second restore based on the same view is refused.
    let restore = |version: u64| {
        s.admin()
            .post("/api/v1/flags/banner/revert")
            .header("if-match", "\"5\"")
            .json(&json!({ "version": version }))
            .send()
    };
    let r = restore(2).await;
    r.assert_status(201);
    assert_eq!(r.json()["version"], json!(6));
    assert_eq!(definition(&s, "banner").await, v2);
    restore(1).await.assert_error(412, "version_conflict");
    assert_eq!(definition(&s, "banner").await, v2);

    // A flag that never existed has no history.
    s.admin()
        .get("/api/v1/flags/never/history")
        .send()
        .await
        .assert_error(404, "not_found");
}

// ---- Segments ----

#[tokio::test]
async fn segments_crud_and_a_used_segment_cannot_be_deleted() {
    let s = Server::start().await;
    let r = s.admin().get("/api/v1/segments").send().await;
    r.assert_status(200);
    assert_eq!(r.json(), json!({"segments": []}));

    let internal = json!({
        "description": "Staff",
        "include": ["contractor-1"],
        "when": [{"attribute": "email", "op": "ends_with", "values": ["@company.com"], "ignore_case": true}],
    });
    let r = s
        .admin()
        .put("/api/v1/segments/internal")
        .json(&internal)
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.etag(), "\"1\"");
    let body = r.json();
    assert_eq!(body["name"], json!("internal"));
    assert_eq!(body["version"], json!(1));
    assert_eq!(body["definition"], internal);
    assert!(body.get("key").is_none(), "{body}");

    let r = s.admin().get("/api/v1/segments/internal").send().await;
    r.assert_status(200);
    assert_eq!(r.etag(), "\"1\"");
    assert_eq!(r.json(), body);
    s.admin()
        .get("/api/v1/segments/nope")
        .send()
        .await
        .assert_error(404, "not_found");

    // Update with If-Match; a stale one is refused.
    let mut updated = internal.clone();
    updated["include"] = json!(["contractor-1", "contractor-2"]);
    let r = s
        .admin()
        .put("/api/v1/segments/internal")
        .header("if-match", "\"1\"")
        .json(&updated)
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.etag(), "\"2\"");
    s.admin()
        .put("/api/v1/segments/internal")
        .header("if-match", "\"1\"")
        .json(&internal)
        .send()
        .await
        .assert_error(412, "version_conflict");

    // A flag using it.
    s.put_flag(
        "staff_tools",
        json!({"rules": [{"name": "staff", "when": [{"segment": "internal"}], "serve": "on"}]}),
    )
    .await;
    assert_eq!(
        s.simple("staff_tools", "user_id=a&email=Ann@Company.com")
            .await["enabled"],
        json!(true)
    );
    assert_eq!(
        s.simple("staff_tools", "user_id=contractor-2").await["enabled"],
        json!(true)
    );
    assert_eq!(
        s.simple("staff_tools", "user_id=b&email=b@gmail.com").await["enabled"],
        json!(false)
    );

    let r = s.admin().get("/api/v1/segments").send().await;
    let list = r.json();
    assert_eq!(list["segments"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["segments"][0]["name"], json!("internal"));

    // Deleting it while flags use it (one deep in an environment's override, whose variant
    // values merely look like a condition): 409 naming exactly the users, nothing written.
    s.put_flag(
        "prod_only",
        json!({
            "variants": {"a": {"segment": "internal"}, "b": {"segment": "other"}},
            "off": "b",
            "environments": {"production": {"rules": [
                {"when": [{"any": [{"not": {"segment": "internal"}}]}], "serve": "a"}
            ]}}
        }),
    )
    .await;
    s.put_flag(
        "lookalike",
        json!({"variants": {"a": {"segment": "internal"}, "b": {}}, "off": "b"}),
    )
    .await;
    let before = s.observe().await;
    let r = s.admin().delete("/api/v1/segments/internal").send().await;
    r.assert_error(409, "segment_in_use");
    assert!(
        r.text.contains(
            "used by flag `prod_only`, flag `staff_tools`; remove those conditions first"
        ),
        "the message names the flags: {r}"
    );
    s.assert_unchanged(&before, "deleting a used segment").await;

    // A flag naming an unknown segment is refused.
    let r = s
        .admin()
        .put("/api/v1/flags/ghost")
        .json(&json!({"rules": [{"when": [{"segment": "nobody"}], "serve": "on"}]}))
        .send()
        .await;
    r.assert_error(400, "validation_failed");
    assert_eq!(r.detail_paths(), ["rules[0].when[0].segment"], "{r}");

    // Once unused, it can go.
    for flag in ["staff_tools", "prod_only"] {
        s.admin()
            .delete(&format!("/api/v1/flags/{flag}"))
            .send()
            .await
            .assert_status(204);
    }
    s.admin()
        .delete("/api/v1/segments/internal")
        .header("if-match", "\"1\"")
        .send()
        .await
        .assert_error(412, "version_conflict");
    let r = s.admin().delete("/api/v1/segments/internal").send().await;
    r.assert_status(204);
    assert!(r.text.is_empty());
    s.admin()
        .get("/api/v1/segments/internal")
        .send()
        .await
        .assert_error(404, "not_found");
    s.admin()
        .delete("/api/v1/segments/internal")
        .send()
        .await
        .assert_error(404, "not_found");

    // Created again: a creation (201), its version numbering continued.
    let r = s
        .admin()
        .put("/api/v1/segments/internal")
        .json(&internal)
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.json()["version"], json!(4));
}

// ---- Environments ----

#[tokio::test]
async fn environments_list_and_create() {
    let s = Server::start().await;
    let r = s.admin().get("/api/v1/environments").send().await;
    r.assert_status(200);
    assert_eq!(
        r.json(),
        json!({"environments": [{"name": "development"}, {"name": "staging"}, {"name": "production"}]})
    );

    let r = s
        .admin()
        .post("/api/v1/environments")
        .json(&json!({"name": "qa"}))
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.json(), json!({"name": "qa"}));
    let names: Vec<Value> =
        s.admin().get("/api/v1/environments").send().await.json()["environments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].clone())
            .collect();
    assert_eq!(
        names,
        [
            json!("development"),
            json!("staging"),
            json!("production"),
            json!("qa")
        ]
    );
    assert_eq!(
        s.audit("limit=1").await[0]["action"],
        json!("environment.create")
    );

    let before = s.observe().await;
    s.admin()
        .post("/api/v1/environments")
        .json(&json!({"name": "qa"}))
        .send()
        .await
        .assert_error(409, "already_exists");
    s.admin()
        .post("/api/v1/environments")
        .json(&json!({"name": "production"}))
        .send()
        .await
        .assert_error(409, "already_exists");
    s.admin()
        .post("/api/v1/environments")
        .json(&json!({"name": "q a"}))
        .send()
        .await
        .assert_error(400, "validation_failed");
    s.admin()
        .post("/api/v1/environments")
        .json(&json!({"name": "qa2", "color": "red"}))
        .send()
        .await
        .assert_error(400, "validation_failed");
    s.assert_unchanged(&before, "refused environments").await;

    // The new environment is usable at once.
    s.put_flag("f", json!({"serve": "off", "environments": {"qa": "on"}}))
        .await;
    assert_eq!(s.simple("f", "env=qa").await["enabled"], json!(true));
    let qa_key = s.create_key("client", Some("qa")).await;
    let r = s.bearer(&qa_key).get("/flags/f").send().await;
    r.assert_status(200);
    assert_eq!(r.json()["enabled"], json!(true));
}

// ---- Keys ----

#[tokio::test]
async fn keys_show_secrets_once_and_revocation_is_immediate() {
    let s = Server::start().await;
    s.put_flag("f", json!(true)).await;

    let r = s
        .admin()
        .post("/api/v1/keys")
        .json(&json!({"name": "web", "kind": "client", "environment": "staging"}))
        .send()
        .await;
    r.assert_status(201);
    let created = r.json();
    let mut fields: Vec<&String> = created.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["created_at", "environment", "id", "kind", "name", "secret"],
        "{created}"
    );
    assert_eq!(created["kind"], json!("client"));
    assert_eq!(created["environment"], json!("staging"));
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("vexil_client_"), "{secret}");
    let hash = vexil_server::auth::hash_secret(&secret);

    // The list: never a secret or a hash.
    let r = s.admin().get("/api/v1/keys").send().await;
    r.assert_status(200);
    let list = r.json();
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{list}");
    for k in keys {
        assert!(
            k.get("secret").is_none() && k.get("secret_hash").is_none(),
            "{k}"
        );
    }
    for hidden in [
        secret.as_str(),
        hash.as_str(),
        ADMIN,
        &vexil_server::auth::hash_secret(ADMIN),
    ] {
        assert!(
            !r.text.contains(hidden),
            "the list shows a secret or a hash: {r}"
        );
    }
    // Nor does the audit log.
    let audit = s.admin().get("/api/v1/audit").send().await;
    assert!(
        !audit.text.contains(&secret) && !audit.text.contains(&hash),
        "{audit}"
    );
    let web = keys.iter().find(|k| k["id"] == json!(id)).unwrap();
    assert_eq!(web["name"], json!("web"));

    // The key works, until it is revoked: then 401 at once.
    s.bearer(&secret)
        .get("/flags/f")
        .send()
        .await
        .assert_status(200);
    let r = s.admin().delete(&format!("/api/v1/keys/{id}")).send().await;
    r.assert_status(204);
    let r = s.bearer(&secret).get("/flags/f").send().await;
    r.assert_error(401, "unauthorized");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")),
        "{:?}",
        r.headers
    );
    s.api_key(&secret)
        .ofrep("f", json!({}))
        .await
        .assert_error(401, "unauthorized");
    s.admin()
        .delete(&format!("/api/v1/keys/{id}"))
        .send()
        .await
        .assert_error(404, "not_found");
    let list = s.admin().get("/api/v1/keys").send().await.json();
    assert_eq!(
        list["keys"].as_array().unwrap().len(),
        1,
        "revoked keys are not listed: {list}"
    );
    let event = &s.audit("limit=1").await[0];
    assert_eq!(event["action"], json!("key.revoke"));
    assert_eq!(event["target"], json!(format!("key:{id}")));

    // The last admin key cannot be revoked.
    let bootstrap_id = list["keys"][0]["id"].as_str().unwrap().to_owned();
    let before = s.observe().await;
    s.admin()
        .delete(&format!("/api/v1/keys/{bootstrap_id}"))
        .send()
        .await
        .assert_error(409, "last_admin_key");
    s.assert_unchanged(&before, "revoking the last admin key")
        .await;

    // With a second admin key, the first can go; then the second is the last.
    let (second_id, second) = s.create_named_key("ops", "admin", None).await;
    assert!(second.starts_with("vexil_admin_"), "{second}");
    s.bearer(&second)
        .delete(&format!("/api/v1/keys/{bootstrap_id}"))
        .send()
        .await
        .assert_status(204);
    s.admin()
        .get("/api/v1/flags")
        .send()
        .await
        .assert_error(401, "unauthorized");
    s.bearer(&second)
        .delete(&format!("/api/v1/keys/{second_id}"))
        .send()
        .await
        .assert_error(409, "last_admin_key");
    s.bearer(&second)
        .get("/api/v1/flags")
        .send()
        .await
        .assert_status(200);
}

#[tokio::test]
async fn keys_refuse_bad_requests() {
    let s = Server::start().await;
    let before = s.observe().await;
    for body in [
        json!({"name": "k", "kind": "root"}),
        json!({"name": "k", "kind": "server"}),
        json!({"name": "k", "kind": "client", "environment": "moon"}),
        json!({"name": "k", "kind": "admin", "environment": "staging"}),
        json!({"name": "", "kind": "admin"}),
        json!({"name": "k", "kind": "admin", "secret": "mine"}),
        json!({"kind": "admin"}),
    ] {
        s.admin()
            .post("/api/v1/keys")
            .json(&body)
            .send()
            .await
            .assert_error(400, "validation_failed");
    }
    s.admin()
        .delete("/api/v1/keys/0123456789abcdef")
        .send()
        .await
        .assert_error(404, "not_found");
    s.assert_unchanged(&before, "refused keys").await;
}

// ---- Audit ----

#[tokio::test]
async fn audit_log_filters_and_contents() {
    let s = Server::start().await;
    let (_, ops) = s.create_named_key("ops-bot", "admin", None).await;
    let a1 = json!({"serve": "on"});
    let a2 = json!({"serve": "off"});
    s.admin()
        .put("/api/v1/flags/alpha")
        .header("x-vexil-comment", "launch alpha")
        .json(&a1)
        .send()
        .await
        .assert_status(201);
    s.put_flag("beta", json!(true)).await;
    s.bearer(&ops)
        .put("/api/v1/flags/alpha")
        .json(&a2)
        .send()
        .await
        .assert_status(200);
    s.admin()
        .delete("/api/v1/flags/beta")
        .send()
        .await
        .assert_status(204);
    s.admin()
        .post("/api/v1/flags/alpha/environments/staging/disable")
        .send()
        .await
        .assert_status(200);

    // Everything, newest first.
    let all = s.audit("").await;
    assert!(all.len() >= 6, "bootstrap, key, 4 flag writes: {all:?}");
    for pair in all.windows(2) {
        assert!(
            pair[0]["id"].as_u64() > pair[1]["id"].as_u64(),
            "newest first: {all:?}"
        );
        assert!(
            pair[0]["revision"].as_u64() > pair[1]["revision"].as_u64(),
            "newest first: {all:?}"
        );
        let t0: jiff::Timestamp = pair[0]["at"].as_str().unwrap().parse().unwrap();
        let t1: jiff::Timestamp = pair[1]["at"].as_str().unwrap().parse().unwrap();
        assert!(t0 >= t1, "newest first: {all:?}");
    }
    assert_eq!(all[0]["revision"].as_u64(), Some(s.revision().await));
    assert_eq!(all.last().unwrap()["action"], json!("bootstrap"));
    let targets: Vec<&str> = all[..4]
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        ["flag:alpha", "flag:beta", "flag:alpha", "flag:beta"]
    );
    let actions: Vec<&str> = all[..4]
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["flag.disable", "flag.delete", "flag.update", "flag.create"]
    );

    // One flag's events: who, what, before, after, comment.
    let alpha = s.audit("flag=alpha").await;
    assert_eq!(alpha.len(), 3, "{alpha:?}");
    let create = &alpha[2];
    assert_eq!(create["action"], json!("flag.create"));
    assert_eq!(create["actor"], json!("admin"));
    assert_eq!(create["before"], Value::Null);
    assert_eq!(create["after"], a1);
    assert_eq!(create["comment"], json!("launch alpha"));
    let update = &alpha[1];
    assert_eq!(update["action"], json!("flag.update"));
    assert_eq!(update["actor"], json!("ops-bot"));
    assert_eq!(update["before"], a1);
    assert_eq!(update["after"], a2);
    assert_eq!(update["comment"], Value::Null);
    let beta = s.audit("flag=beta").await;
    assert_eq!(beta[0]["action"], json!("flag.delete"));
    assert_eq!(beta[0]["before"], json!(true));
    assert_eq!(beta[0]["after"], Value::Null);

    // limit: the newest N.
    let two = s.audit("limit=2").await;
    assert_eq!(two, all[..2].to_vec());
    assert_eq!(s.audit("flag=alpha&limit=1").await, alpha[..1].to_vec());

    // since: events at or after a time.
    let since = alpha[1]["at"].as_str().unwrap().to_owned();
    let since_t: jiff::Timestamp = since.parse().unwrap();
    let recent = s.audit(&format!("since={since}")).await;
    assert!(
        recent.iter().any(|e| e["id"] == alpha[1]["id"]),
        "{recent:?}"
    );
    assert!(recent.iter().any(|e| e["id"] == all[0]["id"]), "{recent:?}");
    for e in &recent {
        let at: jiff::Timestamp = e["at"].as_str().unwrap().parse().unwrap();
        assert!(at >= since_t, "{e}");
    }
    let newer = all
        .iter()
        .filter(|e| e["id"].as_u64() >= alpha[1]["id"].as_u64())
        .count();
    assert!(recent.len() >= newer, "{recent:?}");
    let future = s.audit("since=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty(), "{future:?}");

    // Bad queries.
    for q in [
        "limit=0",
        "limit=1001",
        "limit=many",
        "since=yesterday",
        "user=admin",
    ] {
        s.admin()
            .get(&format!("/api/v1/audit?{q}"))
            .send()
            .await
            .assert_error(400, "validation_failed");
    }
}

// ---- Export and import ----

/// A configuration using every part of the document.
async fn populate(s: &Server) {
    s.admin()
        .post("/api/v1/environments")
        .json(&json!({"name": "qa"}))
        .send()
        .await
        .assert_status(201);
    s.put_segment("internal", json!({"include": ["u1"], "when": [{"attribute": "email", "op": "ends_with", "values": ["@co.com"]}]})).await;
    s.put_segment("beta_testers", json!({"include": ["u2", "u3"]}))
        .await;
    s.put_flag("dark_mode", json!(true)).await;
    s.put_flag("new_checkout", json!({
        "description": "New checkout",
        "kind": "release",
        "owner": "payments",
        "tags": ["payments"],
        "created": "2026-01-15",
        "expires": "2099-04-01",
        "prerequisites": [{"flag": "dark_mode"}],
        "targets": {"on": ["u9"]},
        "rules": [
            {"name": "staff", "when": [{"segment": "internal"}], "serve": "on"},
            {"when": [{"attribute": "country", "op": "in", "values": ["DE", "FR"]}], "rollout": {"on": 10, "off": 90}},
        ],
        "rollout": 5,
        "environments": {"development": "on", "qa": {"serve": "on", "rules": []}},
    })).await;
    s.put_flag(
        "button_color",
        json!({
            "kind": "experiment",
            "variants": {"control": "#0055ff", "green": "#00aa55"},
            "off": "control",
            "rollout": {"control": 50, "green": 50},
            "bucket_by": "account_id",
        }),
    )
    .await;
}

#[tokio::test]
async fn export_import_round_trip() {
    let a = Server::start().await;
    populate(&a).await;
    let r = a.admin().get("/api/v1/export").send().await;
    r.assert_status(200);
    let doc = r.json();
    assert_eq!(
        doc["environments"],
        json!(["development", "staging", "production", "qa"])
    );
    assert_eq!(doc["flags"]["dark_mode"], json!(true));
    assert_eq!(
        doc["segments"]["beta_testers"],
        json!({"include": ["u2", "u3"]})
    );
    assert_eq!(doc["flags"].as_object().unwrap().len(), 3);

    // Into a new server: a dry run first, which writes nothing.
    let b = Server::start().await;
    let before = b.observe().await;
    let r = b
        .admin()
        .post("/api/v1/import?dry_run=true")
        .json(&doc)
        .send()
        .await;
    r.assert_status(200);
    let report = r.json();
    assert_eq!(report["dry_run"], json!(true), "{report}");
    let diff = &report["diff"];
    assert_eq!(diff["environments"]["added"], json!(["qa"]), "{report}");
    let mut added = diff["flags"]["added"].as_array().unwrap().clone();
    added.sort_by_key(|v| v.as_str().unwrap().to_owned());
    assert_eq!(
        added,
        [
            json!("button_color"),
            json!("dark_mode"),
            json!("new_checkout")
        ],
        "{report}"
    );
    assert_eq!(diff["flags"]["removed"], json!([]), "{report}");
    assert_eq!(
        diff["segments"]["added"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    b.assert_unchanged(&before, "a dry run").await;

    // Then for real.
    let r = b
        .admin()
        .post("/api/v1/import")
        .header("x-vexil-comment", "migrate")
        .json(&doc)
        .send()
        .await;
    r.assert_status(200);
    let report = r.json();
    assert_eq!(report["dry_run"], json!(false), "{report}");
    assert_eq!(
        report["diff"], *diff,
        "the dry run reported what the import did"
    );
    assert_eq!(report["revision"].as_u64(), Some(b.revision().await));
    let exported = b.admin().get("/api/v1/export").send().await.json();
    assert_eq!(exported, doc, "export → import → export is the identity");
    let event = &b.audit("limit=1").await[0];
    assert_eq!(event["action"], json!("import"));
    assert_eq!(event["comment"], json!("migrate"));
    // The imported flags evaluate the same on both servers.
    for (flag, q) in [
        ("new_checkout", "user_id=u1&email=x@co.com"),
        ("new_checkout", "user_id=u5&env=development"),
        ("button_color", "account_id=acme"),
    ] {
        assert_eq!(
            a.simple(flag, q).await,
            b.simple(flag, q).await,
            "{flag} {q}"
        );
    }

    // Importing the same document again changes nothing in the configuration.
    let r = b
        .admin()
        .post("/api/v1/import?dry_run=true")
        .json(&doc)
        .send()
        .await;
    let report = r.json();
    assert_eq!(report["diff"]["flags"]["unchanged"], json!(3), "{report}");
    assert_eq!(report["diff"]["flags"]["added"], json!([]), "{report}");
    assert_eq!(report["diff"]["flags"]["changed"], json!([]), "{report}");

    // A document that adds, changes and removes: flags absent from it are removed.
    let mut next = doc.clone();
    next["flags"]
        .as_object_mut()
        .unwrap()
        .remove("button_color");
    next["flags"]["dark_mode"] = json!(false);
    next["flags"]["brand_new"] = json!({"serve": "on"});
    next["segments"]
        .as_object_mut()
        .unwrap()
        .remove("beta_testers");
    let r = b.admin().post("/api/v1/import").json(&next).send().await;
    r.assert_status(200);
    let diff = r.json()["diff"].clone();
    assert_eq!(diff["flags"]["added"], json!(["brand_new"]), "{diff}");
    assert_eq!(diff["flags"]["changed"], json!(["dark_mode"]), "{diff}");
    assert_eq!(diff["flags"]["removed"], json!(["button_color"]), "{diff}");
    assert_eq!(diff["flags"]["unchanged"], json!(1), "{diff}");
    assert_eq!(
        diff["segments"]["removed"],
        json!(["beta_testers"]),
        "{diff}"
    );
    b.admin()
        .get("/api/v1/flags/button_color")
        .send()
        .await
        .assert_error(404, "not_found");
    assert_eq!(b.simple("dark_mode", "").await["enabled"], json!(false));
    assert_eq!(b.simple("brand_new", "").await["enabled"], json!(true));
}

#[tokio::test]
async fn import_is_all_or_nothing() {
    let s = Server::start().await;
    populate(&s).await;
    let doc = s.admin().get("/api/v1/export").send().await.json();
    let before = s.observe().await;

    // One bad flag among good changes: 400 naming it, and nothing of the rest is applied.
    let mut bad = doc.clone();
    bad["flags"]["dark_mode"] = json!(false);
    bad["flags"]["added_one"] = json!({"serve": "on"});
    bad["flags"]["broken"] = json!({"serve": "maybe"});
    for query in ["", "?dry_run=true"] {
        let r = s
            .admin()
            .post(&format!("/api/v1/import{query}"))
            .json(&bad)
            .send()
            .await;
        r.assert_error(400, "validation_failed");
        assert_eq!(r.detail_paths(), ["flags.broken.serve"], "{r}");
    }
    // Removing a segment a kept flag uses.
    let mut bad = doc.clone();
    bad["segments"].as_object_mut().unwrap().remove("internal");
    let r = s.admin().post("/api/v1/import").json(&bad).send().await;
    r.assert_error(400, "validation_failed");
    assert!(
        r.detail_paths()
            .iter()
            .any(|p| p.starts_with("flags.new_checkout")),
        "{r}"
    );
    // Not a document at all.
    s.admin()
        .post("/api/v1/import")
        .json(&json!(["flags"]))
        .send()
        .await
        .assert_error(400, "validation_failed");
    s.admin()
        .post("/api/v1/import")
        .json_text("{\"flags\": ")
        .send()
        .await
        .assert_error(400, "invalid_json");
    s.admin()
        .post("/api/v1/import?dry_run=perhaps")
        .json(&doc)
        .send()
        .await
        .assert_error(400, "validation_failed");
    s.assert_unchanged(&before, "refused imports").await;
    assert_eq!(s.simple("dark_mode", "").await["enabled"], json!(true));
}

#[tokio::test]
async fn import_takes_yaml() {
    let s = Server::start().await;
    let yaml = "flags:\n  dark_mode: true\n  greeting:\n    variants: {formal: 'Good day', casual: 'on'}\n    off: formal\n    serve: casual\n";
    let r = s
        .admin()
        .post("/api/v1/import")
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await;
    r.assert_status(200);
    // YAML 1.2: `on` is a string.
    let v = s.simple("greeting", "").await;
    assert_eq!(v["value"], json!("on"), "{v}");
    assert_eq!(s.simple("dark_mode", "").await["enabled"], json!(true));
    let r = s
        .admin()
        .post("/api/v1/import")
        .header("content-type", "application/yaml")
        .body("flags: [unclosed")
        .send()
        .await;
    assert_eq!(r.status.as_u16(), 400, "{r}");
}

// ---- Operations ----

#[tokio::test]
async fn health_and_readiness() {
    let s = Server::start().await;
    let r = s.anonymous().get("/healthz").send().await;
    r.assert_status(200);
    assert_eq!(r.json(), json!({"status": "ok"}));
    let r = s.anonymous().get("/readyz").send().await;
    r.assert_status(200);
    let v = r.json();
    assert_eq!(v["status"], json!("ready"));
    let rev = v["revision"].as_u64().unwrap();
    s.put_flag("f", json!(true)).await;
    assert_eq!(s.revision().await, rev + 1, "each write is one revision");

    // Unknown routes: 404 in the error format.
    s.anonymous()
        .get("/nowhere")
        .send()
        .await
        .assert_error(404, "not_found");
    s.admin()
        .get("/api/v1/nowhere")
        .send()
        .await
        .assert_error(404, "not_found");
    s.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_latency_and_evaluations() {
    let s = Server::start().await;
    s.put_flag("metered", json!(true)).await;
    s.simple("metered", "user_id=u1").await;
    s.admin()
        .ofrep("metered", json!({"targetingKey": "u1"}))
        .await
        .assert_status(200);
    s.admin()
        .get("/api/v1/flags/absent")
        .send()
        .await
        .assert_status(404);
    s.anonymous()
        .get("/healthz")
        .send()
        .await
        .assert_status(200);

    // Unknown flags named by callers share one label.
    for key in ["nope-1", "nope-2"] {
        s.admin()
            .get(&format!("/flags/{key}"))
            .send()
            .await
            .assert_status(404);
    }

    let r = s.anonymous().get("/metrics").send().await;
    r.assert_status(200);
    assert!(!r.text.contains("nope-1"), "{}", r.text);
    assert!(
        r.text
            .contains(r#"vexil_evaluations_total{flag="(error)",reason="ERROR"} 2"#),
        "{}",
        r.text
    );
    assert!(
        r.header("content-type")
            .is_some_and(|ct| ct.contains("text")),
        "{:?}",
        r.headers
    );
    let text = &r.text;
    for needle in [
        "# TYPE vexil_http_requests counter",
        r#"vexil_http_requests_total{method="GET",route="/healthz",status="200"} 1"#,
        r#"vexil_http_requests_total{method="PUT",route="/api/v1/flags/{key}",status="201"} 1"#,
        r#"vexil_http_requests_total{method="GET",route="/api/v1/flags/{key}",status="404"} 1"#,
        r#"vexil_http_requests_total{method="GET",route="/flags/{key}",status="200"} 1"#,
        "# TYPE vexil_http_request_duration_seconds histogram",
        r#"vexil_http_request_duration_seconds_bucket{le="+Inf",route="/healthz"} 1"#,
        r#"vexil_http_request_duration_seconds_count{route="/healthz"} 1"#,
        r#"vexil_http_request_duration_seconds_sum{route="/healthz"}"#,
        r#"vexil_evaluations_total{flag="metered",reason="STATIC"} 2"#,
    ] {
        assert!(text.contains(needle), "metrics lack `{needle}`:\n{text}");
    }
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let s = Server::start().await;
    let r = s.anonymous().get("/openapi.json").send().await;
    r.assert_status(200);
    assert!(
        r.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json"))
    );
    let doc = r.json();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for path in ROUTE_PATHS {
        assert!(
            paths.contains_key(path),
            "the OpenAPI document lacks {path}"
        );
    }
    // Any other documented path is routed too (the fallback answers "no such route").
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let Ok(method) = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let concrete: Vec<String> = path
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') {
                        "x".to_owned()
                    } else {
                        seg.to_owned()
                    }
                })
                .collect();
            let url = format!("{}{}", s.base, concrete.join("/"));
            // Only the head of the answer: some routes stream.
            let r = s
                .client
                .request(method.clone(), &url)
                .bearer_auth(crate::harness::ADMIN)
                .send()
                .await
                .unwrap();
            assert_ne!(
                r.status().as_u16(),
                405,
                "{method} {path} is documented but not routed"
            );
            if r.status().as_u16() == 404 {
                let body: Value = r.json().await.unwrap();
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    !message.starts_with("no such route"),
                    "{method} {path} is documented but not routed"
                );
            }
        }
    }
    // Methods as routed.
    let methods = |p: &str| -> Vec<String> {
        let mut m: Vec<String> = paths[p]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.as_str() != "parameters")
            .cloned()
            .collect();
        m.sort();
        m
    };
    assert_eq!(methods("/api/v1/flags/{key}"), ["delete", "get", "put"]);
    assert_eq!(methods("/flags/{key}"), ["get", "put"]);
    assert_eq!(methods("/api/v1/keys"), ["get", "post"]);
}

#[tokio::test]
async fn graceful_shutdown_ends_open_sdk_streams() {
    let s = Server::start().await;
    let key = s.create_key("server", Some("production")).await;
    // A client of its own, so the stream's connection is not in the harness's pool.
    let stream = reqwest::Client::new()
        .get(format!("{}/sdk/v1/stream", s.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut body = stream.bytes_stream();
    // The first event (the full state) arrives; then shut down while the stream is open.
    use futures_util::StreamExt;
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: put"));
    // `stop` fails when `serve` has not returned in time.
    s.stop().await;
    // The stream ends instead of hanging.
    let rest = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(rest.is_ok(), "the stream ended when the server stopped");
}
