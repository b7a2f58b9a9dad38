//! The admin web UI end to end: a real headless Chromium, signed in to a real `vexil serve`, does
//! what a person does — signs in and out, creates a flag, switches it on in production through
//! the confirmation, edits its rollout, reads and reverts its history, trips over a validation
//! error and a concurrent edit, reads the audit log, asks the playground why — and each effect is
//! checked through the HTTP API, not only on the screen.
//!
//! The page is found through its `data-test` hooks (the contract between the UI and these tests,
//! listed in the UI's sources). Screenshots of the main screens go to
//! `<target dir>/ui-screenshots/`. How the browser is found, and when the tests skip, is in
//! [`super::ui_support`].

use fantoccini::key::Key;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::server_process::{ADMIN_KEY, Api};
use super::ui_support::Ui;

/// The person signed in, as the audit log should name them.
const PERSON: &str = "Ada Lovelace";

/// Starts a server and a browser, or returns from the test when there is no browser.
macro_rules! ui {
    ($test:literal) => {
        match Ui::start($test).await {
            Some(ui) => ui,
            None => return,
        }
    };
}

#[tokio::test]
async fn signing_in() {
    let ui = ui!("signing_in");

    ui.step("a wrong key");
    ui.screenshot("sign-in").await;
    ui.fill("[data-test=signin-key]", "vexil_admin_not_the_right_key")
        .await;
    ui.fill("[data-test=signin-name]", PERSON).await;
    ui.click("[data-test=signin-submit]").await;
    let error = ui.text_of("[data-test=signin-error]").await;
    ui.ensure(
        !error.trim().is_empty(),
        "a wrong key shows an empty sign-in error",
    )
    .await;
    ui.ensure(
        ui.client().get_named_cookie("vexil_session").await.is_err(),
        "a wrong key set a session cookie",
    )
    .await;
    ui.screenshot("sign-in-error").await;

    ui.step("the right key");
    ui.fill("[data-test=signin-key]", ADMIN_KEY).await;
    ui.click("[data-test=signin-submit]").await;
    ui.wait_text("[data-test=whoami]", PERSON).await;
    ui.wait_for("[data-test=new-flag]").await;
    ui.wait_gone("[data-test=signin-key]").await;

    ui.step("the session cookie");
    let cookie = match ui.client().get_named_cookie("vexil_session").await {
        Ok(cookie) => cookie,
        Err(e) => {
            ui.fail(format!("no vexil_session cookie after signing in: {e}"))
                .await
        }
    };
    ui.ensure(
        cookie.http_only() == Some(true),
        format!("the session cookie is not HttpOnly: {cookie}"),
    )
    .await;
    ui.ensure(
        cookie.same_site().is_some_and(|s| s.is_strict()),
        format!("the session cookie is not SameSite=Strict: {cookie}"),
    )
    .await;
    let script_cookies = ui.js("return document.cookie;", vec![]).await;
    ui.ensure(
        !script_cookies
            .as_str()
            .unwrap_or("")
            .contains("vexil_session"),
        format!("scripts can read the session cookie: document.cookie is {script_cookies}"),
    )
    .await;

    ui.step("the session survives a reload");
    ui.reload().await;
    ui.wait_text("[data-test=whoami]", PERSON).await;
}

#[tokio::test]
async fn signing_in_with_the_keyboard_only() {
    let ui = ui!("signing_in_with_the_keyboard_only");

    ui.step("Tab to the key field");
    let mut tabs = 0;
    loop {
        let focused = ui.focused().await;
        if focused.as_deref() == Some("signin-key") {
            break;
        }
        ui.ensure(
            tabs < 20,
            format!("20 presses of Tab did not reach the key field (focus is on {focused:?})"),
        )
        .await;
        ui.press(&Key::Tab).await;
        tabs += 1;
    }
    ui.press(ADMIN_KEY).await;

    ui.step("Tab to the name field");
    ui.press(&Key::Tab).await;
    let focused = ui.focused().await;
    ui.ensure(
        focused.as_deref() == Some("signin-name"),
        format!("Tab from the key field went to {focused:?}, not to the name field"),
    )
    .await;
    ui.press(PERSON).await;

    ui.step("Enter signs in");
    ui.press(&Key::Enter).await;
    ui.wait_text("[data-test=whoami]", PERSON).await;
    ui.wait_for("[data-test=new-flag]").await;
}

#[tokio::test]
async fn creating_a_flag_and_switching_it_on_in_production() {
    let ui = ui!("creating_a_flag_and_switching_it_on_in_production");
    let api = ui.api();
    // Two more flags, for the list's badges.
    put_flag(
        &api,
        "old_banner",
        json!({"serve": "on", "description": "The 2020 banner", "expires": "2020-01-31"}),
    )
    .await;
    put_flag(
        &api,
        "maintenance_mode",
        json!({"serve": "off", "kind": "ops", "description": "Read-only mode"}),
    )
    .await;
    ui.sign_in(PERSON).await;

    ui.step("create a flag");
    ui.click("[data-test=new-flag]").await;
    ui.wait_route("#/new").await;
    ui.fill("[data-test=new-key]", "new_checkout").await;
    ui.select("[data-test=new-type]", "boolean").await;
    ui.fill("[data-test=new-description]", "The one-page checkout")
        .await;
    ui.fill("[data-test=new-owner]", "payments").await;
    ui.fill("[data-test=new-tags]", "checkout, web").await;
    ui.screenshot("create-flag").await;
    ui.click("[data-test=new-submit]").await;
    ui.wait_route("#/flags/new_checkout").await;
    ui.wait_text("[data-test=flag-key]", "new_checkout").await;
    let record = api.get("/api/v1/flags/new_checkout").await;
    let definition = &record["definition"];
    ui.ensure(
        definition["description"] == "The one-page checkout"
            && definition["owner"] == "payments"
            && definition["tags"] == json!(["checkout", "web"]),
        format!("the created flag's metadata is not what was typed: {definition}"),
    )
    .await;
    // Created dark: off everywhere.
    ui.ensure(
        !evaluates_enabled(&api, "new_checkout", "production").await,
        format!("a new flag is on in production: {definition}"),
    )
    .await;

    ui.step("cancel switching production on");
    let toggle = "[data-test=toggle-production]";
    ui.wait_attr(toggle, "aria-checked", "false").await;
    ui.click(toggle).await;
    let question = ui.text_of("[data-test=confirm-text]").await;
    ui.ensure(
        question.to_lowercase().contains("production"),
        format!("the confirmation does not name production: {question:?}"),
    )
    .await;
    ui.screenshot("confirm-production").await;
    ui.click("[data-test=confirm-no]").await;
    ui.wait_gone("[data-test=confirm]").await;
    ui.wait_attr(toggle, "aria-checked", "false").await;
    let after_cancel = api.get("/api/v1/flags/new_checkout").await;
    ui.ensure(
        after_cancel["version"] == record["version"],
        format!("cancelling the confirmation wrote the flag: {after_cancel}"),
    )
    .await;
    ui.ensure(
        !evaluates_enabled(&api, "new_checkout", "production").await,
        "cancelling the confirmation switched production on",
    )
    .await;

    ui.step("confirm switching production on");
    ui.click(toggle).await;
    ui.click("[data-test=confirm-yes]").await;
    ui.wait_gone("[data-test=confirm]").await;
    ui.wait_attr(toggle, "aria-checked", "true").await;
    ui.eventually(
        "GET /flags/new_checkout?env=production to answer enabled: true",
        async || {
            let reply = api
                .get("/flags/new_checkout?env=production&user_id=someone")
                .await;
            match reply["enabled"] {
                Value::Bool(true) => Ok(()),
                _ => Err(reply.to_string()),
            }
        },
    )
    .await;
    ui.ensure(
        !evaluates_enabled(&api, "new_checkout", "staging").await,
        "switching production on switched staging on too",
    )
    .await;
    ui.screenshot("flag-page").await;

    ui.step("the flag list");
    ui.open("#/flags").await;
    let row = "[data-test=flag-row][data-flag=new_checkout]";
    ui.wait_for(row).await;
    let production = ui
        .text_of(&format!("{row} [data-test=state-production]"))
        .await;
    let staging = ui
        .text_of(&format!("{row} [data-test=state-staging]"))
        .await;
    ui.ensure(
        production.starts_with("On") && staging.starts_with("Off"),
        format!("the list shows production {production:?} and staging {staging:?}, not On and Off"),
    )
    .await;
    ui.wait_for("[data-test=flag-row][data-flag=old_banner] [data-test=badge-expired]")
        .await;
    ui.wait_for("[data-test=flag-row][data-flag=maintenance_mode] [data-test=badge-permanent]")
        .await;
    ui.screenshot("flag-list").await;

    ui.step("search the list");
    ui.fill("[data-test=flag-search]", "checkout").await;
    ui.wait_gone("[data-test=flag-row][data-flag=old_banner]")
        .await;
    ui.wait_for(row).await;
}

#[tokio::test]
async fn changing_the_rollout_then_reverting_it_from_history() {
    let ui = ui!("changing_the_rollout_then_reverting_it_from_history");
    let api = ui.api();
    put_flag(
        &api,
        "search_ranking",
        json!({"description": "The new ranking", "rollout": 5}),
    )
    .await;
    ui.sign_in(PERSON).await;

    ui.step("the targeting editor shows the 5% rollout");
    ui.open("#/flags/search_ranking").await;
    ui.wait_text("[data-test=flag-version]", "v1").await;
    ui.select("[data-test=scope]", "*").await;
    let mode = ui.value_of("[data-test=default-mode]").await;
    let on = ui.value_of("[data-test=default-rollout-on]").await;
    ui.ensure(
        mode == "rollout" && on == "5",
        format!("the default shows mode {mode:?} with on {on:?}, not a 5% rollout"),
    )
    .await;
    ui.screenshot("targeting-editor").await;

    ui.step("change it to 25% and save");
    ui.fill("[data-test=default-rollout-on]", "25").await;
    ui.fill("[data-test=default-rollout-off]", "75").await;
    // Not ASCII: browsers send header values byte by byte, so the page must encode it.
    let comment = "a quarter of the users — Zoë's call, €0 cost";
    ui.fill("[data-test=comment]", comment).await;
    ui.click("[data-test=save]").await;
    ui.wait_text("[data-test=flag-version]", "v2").await;
    let record = api.get("/api/v1/flags/search_ranking").await;
    ui.ensure(
        rollout_on(&record["definition"]) == Some(25.0) && record["version"] == 2,
        format!("after saving, the flag is not a 25% rollout at version 2: {record}"),
    )
    .await;
    let event = &api.get("/api/v1/audit?flag=search_ranking&limit=1").await["events"][0];
    ui.ensure(
        event["comment"] == comment,
        format!("the audit event does not carry the comment {comment:?}: {event}"),
    )
    .await;

    ui.step("the change in history");
    ui.open("#/flags/search_ranking/history").await;
    let diff = "[data-test=version][data-version=\"2\"] [data-test=diff]";
    ui.wait_for(diff).await;
    let removed = ui.lines(&format!("{diff} .del")).await;
    let added = ui.lines(&format!("{diff} .add")).await;
    ui.ensure(
        removed.iter().any(|l| has_number(l, 5)) && added.iter().any(|l| has_number(l, 25)),
        format!("the diff of version 2 does not show 5 removed and 25 added: removed {removed:?}, added {added:?}"),
    )
    .await;
    ui.wait_gone("[data-test=version][data-version=\"2\"] [data-test=revert]")
        .await;
    ui.screenshot_at("history-diff", diff).await;

    ui.step("revert to version 1");
    ui.click("[data-test=version][data-version=\"1\"] [data-test=revert]")
        .await;
    ui.wait_for("[data-test=confirm]").await;
    ui.click("[data-test=confirm-yes]").await;
    ui.wait_for("[data-test=version][data-version=\"3\"]").await;
    let record = api.get("/api/v1/flags/search_ranking").await;
    ui.ensure(
        rollout_on(&record["definition"]) == Some(5.0) && record["version"] == 3,
        format!("after the revert, the flag is not back to 5% at version 3: {record}"),
    )
    .await;
}

#[tokio::test]
async fn an_invalid_rule_shows_its_error_beside_the_field() {
    let ui = ui!("an_invalid_rule_shows_its_error_beside_the_field");
    let api = ui.api();
    let definition = json!({
        "rules": [
            {"name": "beta", "when": [{"attribute": "plan", "op": "in", "values": ["beta"]}], "serve": "on"},
            {"name": "staff", "when": [{"attribute": "email", "op": "ends_with", "values": ["@example.com"]}], "serve": "on"},
        ],
        "serve": "off",
    });
    put_flag(&api, "dark_mode", definition.clone()).await;
    ui.sign_in(PERSON).await;

    ui.step("make the second rule's condition an invalid regular expression");
    ui.open("#/flags/dark_mode").await;
    ui.select("[data-test=scope]", "*").await;
    let condition = "[data-test=rule][data-index=\"1\"] [data-test=condition][data-index=\"0\"]";
    ui.select(&format!("{condition} [data-test=cond-op]"), "matches")
        .await;
    ui.fill(&format!("{condition} [data-test=cond-values]"), "(")
        .await;
    ui.click("[data-test=save]").await;

    ui.step("the error is shown in that rule");
    let error = ui
        .wait_text(
            "[data-test=rule][data-index=\"1\"] [data-test=field-error]",
            "regular expression",
        )
        .await;
    ui.ensure(
        error.contains('('),
        format!("the error does not quote the expression: {error:?}"),
    )
    .await;
    let in_first_rule = ui
        .lines("[data-test=rule][data-index=\"0\"] [data-test=field-error]")
        .await;
    ui.ensure(
        in_first_rule.is_empty(),
        format!("the first rule shows errors too: {in_first_rule:?}"),
    )
    .await;
    ui.screenshot_at(
        "validation-error",
        "[data-test=rule][data-index=\"1\"] [data-test=field-error]",
    )
    .await;

    ui.step("nothing was written");
    let record = api.get("/api/v1/flags/dark_mode").await;
    ui.ensure(
        record["version"] == 1 && record["definition"] == definition,
        format!("the invalid edit changed the flag: {record}"),
    )
    .await;

    ui.step("removing the rule from the keyboard keeps the focus among the rules");
    ui.js(
        "document.querySelector('[data-test=rule][data-index=\"1\"] [data-test=remove-rule]').focus();
         return null;",
        vec![],
    )
    .await;
    ui.press("\u{E007}").await; // Enter
    ui.wait_gone("[data-test=rule][data-index=\"1\"]").await;
    ui.eventually("the focus stays among the rules", async || {
        let at = ui
            .js(
                "const a = document.activeElement;
                 if (!a || a === document.body) return 'the page itself';
                 return a.closest('[data-test=rule]') ? 'ok' : a.outerHTML.slice(0, 120);",
                vec![],
            )
            .await;
        if at == "ok" {
            Ok(())
        } else {
            Err(format!("the focus is on {at}"))
        }
    })
    .await;
}

#[tokio::test]
async fn the_playground_explains_a_result() {
    let ui = ui!("the_playground_explains_a_result");
    let api = ui.api();
    put_flag(
        &api,
        "enterprise_reports",
        json!({
            "rules": [{
                "name": "enterprise",
                "when": [{"attribute": "plan", "op": "in", "values": ["enterprise"]}],
                "serve": "on",
            }],
            "serve": "off",
        }),
    )
    .await;
    ui.sign_in(PERSON).await;

    ui.step("evaluate for an enterprise user");
    ui.open("#/playground?flag=enterprise_reports&env=production")
        .await;
    ui.select("[data-test=pg-flag]", "enterprise_reports").await;
    ui.select("[data-test=pg-env]", "production").await;
    ui.fill(
        "[data-test=pg-context]",
        r#"{"targetingKey": "u1", "plan": "enterprise"}"#,
    )
    .await;
    ui.click("[data-test=pg-run]").await;

    ui.step("the result and why");
    ui.wait_text(
        "[data-test=pg-result] [data-test=pg-reason]",
        "TARGETING_MATCH",
    )
    .await;
    let value = ui
        .text_of("[data-test=pg-result] [data-test=pg-value]")
        .await;
    let variant = ui
        .text_of("[data-test=pg-result] [data-test=pg-variant]")
        .await;
    ui.ensure(
        value.contains("true") && variant.contains("on"),
        format!("the playground shows value {value:?} and variant {variant:?}, not true and on"),
    )
    .await;
    let summary = ui
        .text_of("[data-test=pg-result] [data-test=pg-summary]")
        .await;
    let steps = ui
        .text_of("[data-test=pg-result] [data-test=pg-steps]")
        .await;
    ui.ensure(
        format!("{summary}\n{steps}").contains("enterprise"),
        format!("neither the summary nor the steps name the rule: {summary:?} / {steps:?}"),
    )
    .await;
    ui.ensure(
        condition_held(&steps, "plan in [enterprise]"),
        format!("the steps do not show the plan condition as held (✓): {steps:?}"),
    )
    .await;
    ui.screenshot_at("playground", "[data-test=pg-result]")
        .await;
}

#[tokio::test]
async fn a_stale_edit_is_refused() {
    let ui = ui!("a_stale_edit_is_refused");
    let api = ui.api();
    put_flag(&api, "image_cdn", json!({"rollout": 5})).await;
    ui.sign_in(PERSON).await;

    ui.step("edit the rollout in the page");
    ui.open("#/flags/image_cdn").await;
    ui.select("[data-test=scope]", "*").await;
    ui.wait_value("[data-test=default-rollout-on]", "5").await;
    ui.fill("[data-test=default-rollout-on]", "30").await;
    ui.fill("[data-test=default-rollout-off]", "70").await;
    // The unsaved change is marked on the tab that holds it, and only there.
    ui.wait_for("[data-test=tab-targeting] .dot").await;
    let marked = ui.lines("[data-test=tab-settings] .dot").await;
    ui.ensure(
        marked.is_empty(),
        "the Settings tab is marked as changed after a targeting edit",
    )
    .await;

    ui.step("someone else changes the flag meanwhile");
    let other = api
        .send(
            Method::PUT,
            "/api/v1/flags/image_cdn",
            Some(1),
            Some(&json!({"rollout": 50})),
        )
        .await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "the other write: {}",
        other.body
    );

    ui.step("saving is refused");
    ui.click("[data-test=save]").await;
    let banner = ui.text_of("[data-test=conflict]").await;
    ui.ensure(
        !banner.trim().is_empty(),
        "the conflict banner has no message",
    )
    .await;
    ui.wait_for("[data-test=conflict-reload]").await;
    ui.screenshot_at("conflict", "[data-test=conflict]").await;
    let record = api.get("/api/v1/flags/image_cdn").await;
    ui.ensure(
        record["version"] == 2 && rollout_on(&record["definition"]) == Some(50.0),
        format!("the other writer's change was not kept: {record}"),
    )
    .await;
    let kept = ui.value_of("[data-test=default-rollout-on]").await;
    ui.ensure(
        kept == "30",
        format!("the page dropped the user's edit (on is {kept:?}, was typed as 30)"),
    )
    .await;

    ui.step("reload the latest version");
    ui.click("[data-test=conflict-reload]").await;
    ui.wait_gone("[data-test=conflict]").await;
    ui.wait_text("[data-test=flag-version]", "v2").await;
    ui.wait_value("[data-test=default-rollout-on]", "50").await;
}

#[tokio::test]
async fn the_audit_log_names_the_person_signed_in() {
    let ui = ui!("the_audit_log_names_the_person_signed_in");
    let api = ui.api();
    let person = "Grace Hopper";
    ui.sign_in(person).await;

    ui.step("write through the page");
    ui.open("#/new").await;
    ui.fill("[data-test=new-key]", "audit_me").await;
    ui.click("[data-test=new-submit]").await;
    ui.wait_text("[data-test=flag-key]", "audit_me").await;
    // Not production: no confirmation.
    ui.click("[data-test=toggle-development]").await;
    ui.wait_attr("[data-test=toggle-development]", "aria-checked", "true")
        .await;
    ui.wait_text("[data-test=flag-version]", "v2").await;

    ui.step("the audit API names the person");
    let events = api.get("/api/v1/audit?flag=audit_me").await;
    let events = events["events"].as_array().cloned().unwrap_or_default();
    ui.ensure(
        events.len() == 2
            && events
                .iter()
                .all(|e| e["actor"].as_str().unwrap_or("").contains(person)),
        format!(
            "the audit log does not name {person} as the actor of the page's two writes: {events:?}"
        ),
    )
    .await;

    ui.step("the audit page lists the writes with the person's name");
    ui.open("#/audit").await;
    ui.wait_text("[data-test=audit-row]", "audit_me").await;
    let rows = ui.lines("[data-test=audit-row]").await;
    let ours: Vec<&String> = rows.iter().filter(|r| r.contains("audit_me")).collect();
    ui.ensure(
        ours.len() == 2 && ours.iter().all(|r| r.contains(person)),
        format!("the audit page does not show two writes of audit_me by {person}: {rows:?}"),
    )
    .await;
    ui.screenshot("audit-log").await;
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let ui = ui!("signing_out_ends_the_session");
    ui.sign_in(PERSON).await;

    ui.step("sign out");
    ui.click("[data-test=signout]").await;
    ui.wait_for("[data-test=signin-key]").await;
    ui.wait_gone("[data-test=whoami]").await;

    ui.step("the page's API calls are refused");
    let status = ui
        .js_async(
            "const done = arguments[arguments.length - 1];
             fetch('/api/v1/flags', { credentials: 'same-origin' })
                 .then((r) => done(r.status), (e) => done(String(e)));",
            vec![],
        )
        .await;
    ui.ensure(
        status == json!(401),
        format!("after signing out, GET /api/v1/flags from the page answered {status}, not 401"),
    )
    .await;

    ui.step("a reload still shows the sign-in page");
    ui.reload().await;
    ui.wait_for("[data-test=signin-key]").await;
}

#[tokio::test]
async fn the_page_talks_only_to_its_own_server() {
    let ui = ui!("the_page_talks_only_to_its_own_server");
    let api = ui.api();
    put_flag(&api, "quiet", json!({"rollout": 10})).await;

    ui.step("the page is sent with a Content-Security-Policy");
    let response = reqwest::get(format!("{}/", ui.base_url()))
        .await
        .expect("GET /");
    let csp = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    ui.ensure(
        response.status() == StatusCode::OK && csp_allows_only_self(&csp),
        format!(
            "GET / answered {} with Content-Security-Policy {csp:?}, not a policy that allows only \
             the server itself ('self', 'none', data:)",
            response.status()
        ),
    )
    .await;

    ui.step("every page loads only from the server");
    ui.sign_in(PERSON).await;
    let pages = [
        ("#/flags", "[data-test=flag-row]"),
        ("#/flags/quiet", "[data-test=flag-key]"),
        ("#/flags/quiet/settings", "[data-test=save-settings]"),
        ("#/flags/quiet/history", "[data-test=version]"),
        ("#/audit", "[data-test=audit-row]"),
        ("#/playground", "[data-test=pg-run]"),
        ("#/environments", "[data-test=env-row]"),
        ("#/new", "[data-test=new-key]"),
    ];
    for (route, shown) in pages {
        ui.step(&format!("open {route}"));
        ui.open(route).await;
        ui.wait_for(shown).await;
    }
    ui.step("the resources the page loaded");
    let loaded = ui
        .js(
            "return performance.getEntriesByType('resource').map((e) => e.name);",
            vec![],
        )
        .await;
    let own = format!("{}/", ui.base_url());
    let loaded: Vec<&str> = loaded
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let foreign: Vec<&&str> = loaded.iter().filter(|url| !url.starts_with(&own)).collect();
    ui.ensure(
        !loaded.is_empty() && foreign.is_empty(),
        format!("the page loaded from other hosts than {own}: {foreign:?} (all: {loaded:?})"),
    )
    .await;
}

#[tokio::test]
async fn a_phone_sized_window_does_not_scroll_sideways() {
    let ui = ui!("a_phone_sized_window_does_not_scroll_sideways");
    let api = ui.api();
    put_flag(
        &api,
        "a_flag_with_a_rather_long_key_for_a_small_screen",
        json!({"description": "A long key and a long description, to see how both wrap on a phone.", "tags": ["mobile", "layout"], "rollout": 25}),
    )
    .await;
    put_flag(
        &api,
        "checkout_copy",
        json!({
            "variants": {"short": "Buy", "long": "Buy now, pay in thirty days"},
            "off": "short",
            "rules": [{
                "name": "returning customers in Europe",
                "when": [
                    {"attribute": "country", "op": "in", "values": ["DE", "FR", "NL", "BE", "AT", "CH"]},
                    {"attribute": "orders", "op": "gte", "values": [3]},
                ],
                "serve": "long",
            }],
            "serve": "short",
        }),
    )
    .await;
    ui.set_window_size(375, 800).await;
    ui.sign_in(PERSON).await;

    ui.step("the flag list at 375 px");
    ui.open("#/flags").await;
    ui.wait_for("[data-test=flag-row][data-flag=checkout_copy]")
        .await;
    ui.check_no_sideways_scroll().await;
    ui.screenshot("phone-flag-list").await;

    ui.step("the flag page at 375 px");
    ui.open("#/flags/checkout_copy").await;
    ui.wait_for("[data-test=rule][data-index=\"0\"]").await;
    ui.check_no_sideways_scroll().await;
    ui.screenshot("phone-flag-page").await;
}

#[tokio::test]
async fn a_long_flag_list_is_drawn_a_page_at_a_time() {
    let ui = ui!("a_long_flag_list_is_drawn_a_page_at_a_time");
    let api = ui.api();
    let flags: serde_json::Map<String, Value> = (0..250)
        .map(|i| (format!("flag_{i:03}"), json!({"rollout": i % 100})))
        .collect();
    let reply = api
        .send(
            Method::POST,
            "/api/v1/import",
            None,
            Some(
                &json!({"environments": ["development", "staging", "production"], "flags": flags}),
            ),
        )
        .await;
    assert!(
        reply.status.is_success(),
        "import: {} {}",
        reply.status,
        reply.body
    );
    ui.sign_in(PERSON).await;

    ui.step("the first 200 rows, then the rest on request");
    ui.open("#/flags").await;
    ui.wait_for("[data-test=flag-row][data-flag=flag_199]")
        .await;
    let rows = ui.lines("[data-test=flag-row]").await.len();
    ui.ensure(rows == 200, format!("{rows} rows drawn at first, not 200"))
        .await;
    ui.click("[data-test=show-more]").await;
    ui.wait_for("[data-test=flag-row][data-flag=flag_249]")
        .await;
    ui.wait_gone("[data-test=show-more]").await;

    ui.step("a search looks through every flag, not only the rows drawn");
    ui.reload().await;
    ui.fill("[data-test=flag-search]", "flag_24").await;
    ui.wait_for("[data-test=flag-row][data-flag=flag_249]")
        .await;
    let rows = ui.lines("[data-test=flag-row]").await.len();
    ui.ensure(rows == 10, format!("`flag_24` shows {rows} rows, not 10"))
        .await;
}

#[tokio::test]
async fn environments_segments_archiving_and_the_audit_filter() {
    let ui = ui!("environments_segments_archiving_and_the_audit_filter");
    let api = ui.api();
    put_flag(&api, "old_banner", json!({"serve": "on"})).await;
    ui.sign_in(PERSON).await;

    ui.step("create an environment");
    ui.open("#/environments").await;
    ui.fill("[data-test=env-name]", "qa").await;
    ui.click("[data-test=env-create]").await;
    ui.wait_for("[data-test=env-row][data-env=qa]").await;
    let envs = api.get("/api/v1/environments").await;
    ui.ensure(
        envs["environments"]
            .as_array()
            .is_some_and(|l| l.iter().any(|e| e["name"] == "qa")),
        format!("the new environment is not on the server: {envs}"),
    )
    .await;

    ui.step("create a segment with two keys");
    ui.open("#/segments").await;
    ui.fill("[data-test=segment-new-name]", "beta_testers")
        .await;
    ui.click("[data-test=segment-new]").await;
    ui.wait_route("#/segments/beta_testers").await;
    ui.fill("[data-test=segment-description]", "Our beta testers")
        .await;
    ui.fill("[data-test=segment-include]", "u1\nu2").await;
    // A regular expression is one value, even with a comma in it.
    let pattern = "^[a-z]{2,5}@example[.]com$";
    ui.click("[data-test=add-condition]").await;
    let row = "[data-test=condition]";
    ui.fill(&format!("{row} [data-test=cond-attribute]"), "email")
        .await;
    ui.select(&format!("{row} [data-test=cond-op]"), "matches")
        .await;
    ui.fill(&format!("{row} [data-test=cond-values]"), pattern)
        .await;
    ui.click("[data-test=save]").await;
    ui.eventually("the segment is saved", async || {
        let r = api
            .send(Method::GET, "/api/v1/segments/beta_testers", None, None)
            .await;
        let d = &r.body["definition"];
        let when = json!([{"attribute": "email", "op": "matches", "values": [pattern]}]);
        if r.status == StatusCode::OK
            && d["include"] == json!(["u1", "u2"])
            && d["description"] == "Our beta testers"
            && d["when"] == when
        {
            Ok(())
        } else {
            Err(format!("{} {}", r.status, r.body))
        }
    })
    .await;

    ui.step("archive a flag, then restore it from its history");
    ui.open("#/flags/old_banner/settings").await;
    ui.click("[data-test=archive]").await;
    ui.wait_for("[data-test=confirm]").await;
    ui.click("[data-test=confirm-yes]").await;
    ui.eventually("the flag is gone", async || {
        let r = api
            .send(Method::GET, "/api/v1/flags/old_banner", None, None)
            .await;
        (r.status == StatusCode::NOT_FOUND)
            .then_some(())
            .ok_or(format!("{} {}", r.status, r.body))
    })
    .await;
    ui.open("#/flags/old_banner/history").await;
    ui.click("[data-test=version][data-version=\"1\"] [data-test=revert]")
        .await;
    ui.wait_for("[data-test=confirm]").await;
    ui.click("[data-test=confirm-yes]").await;
    ui.eventually("the flag is back", async || {
        let r = api
            .send(Method::GET, "/api/v1/flags/old_banner", None, None)
            .await;
        (r.status == StatusCode::OK && r.body["definition"] == json!({"serve": "on"}))
            .then_some(())
            .ok_or(format!("{} {}", r.status, r.body))
    })
    .await;

    ui.step("the audit log, filtered to that flag");
    ui.open("#/audit?flag=old_banner").await;
    ui.wait_text("[data-test=audit-row]", "flag.revert").await;
    let rows = ui.lines("[data-test=audit-row]").await;
    ui.ensure(
        rows.len() == 3
            && rows.iter().all(|r| r.contains("old_banner"))
            && rows.iter().any(|r| r.contains("flag.delete")),
        format!("the filtered audit log is not the flag's create, delete and revert: {rows:?}"),
    )
    .await;
}

#[tokio::test]
async fn editing_metadata_and_variants() {
    let ui = ui!("editing_metadata_and_variants");
    let api = ui.api();
    put_flag(
        &api,
        "checkout_copy",
        json!({
            "description": "Checkout button text",
            "variants": {"short": "Buy", "long": "Buy now"},
            "off": "short",
            "rules": [{"when": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "serve": "long"}],
            "serve": "short",
        }),
    )
    .await;
    ui.sign_in(PERSON).await;

    ui.step("change the description, rename a variant and change its value");
    ui.open("#/flags/checkout_copy/settings").await;
    ui.fill("[data-test=set-description]", "The checkout button's text")
        .await;
    let second = "[data-test=variant][data-index=\"1\"]";
    ui.fill(&format!("{second} [data-test=variant-name]"), "friendly")
        .await;
    ui.press("\u{E007}").await; // Enter: the rename takes effect
    ui.fill(
        &format!("{second} [data-test=variant-value]"),
        "\"Buy today\"",
    )
    .await;
    ui.click("[data-test=save-settings]").await;
    ui.wait_text("[data-test=flag-version]", "v2").await;

    ui.step("the server has the new metadata and variant, and the rule follows the rename");
    let def = &api.get("/api/v1/flags/checkout_copy").await["definition"];
    ui.ensure(
        def["description"] == "The checkout button's text"
            && def["variants"] == json!({"short": "Buy", "friendly": "Buy today"})
            && def["rules"][0]["serve"] == "friendly"
            && def["serve"] == "short",
        format!("the saved definition is not the edited one: {def}"),
    )
    .await;
}

/// Creates or replaces the flag `key` through the API.
async fn put_flag(api: &Api, key: &str, definition: Value) {
    let reply = api
        .send(
            Method::PUT,
            &format!("/api/v1/flags/{key}"),
            None,
            Some(&definition),
        )
        .await;
    assert!(
        reply.status.is_success(),
        "PUT /api/v1/flags/{key} answered {}: {}",
        reply.status,
        reply.body
    );
}

/// Whether `GET /flags/{key}?env=ENV` (the simple API, as an application asks) says enabled.
async fn evaluates_enabled(api: &Api, key: &str, env: &str) -> bool {
    let reply = api
        .get(&format!("/flags/{key}?env={env}&user_id=someone"))
        .await;
    reply["enabled"] == true
}

/// The percentage a boolean flag's default rollout gives `on`: `rollout: N` or `rollout: {on: N,
/// …}`.
fn rollout_on(definition: &Value) -> Option<f64> {
    match &definition["rollout"] {
        Value::Number(n) => n.as_f64(),
        Value::Object(weights) => weights.get("on").and_then(Value::as_f64),
        _ => None,
    }
}

/// Whether the Content-Security-Policy `policy` limits every fetch to the page's own server: it
/// has a `default-src`, and no directive names any source but `'self'`, `'none'` and `data:`
/// (no hosts, no schemes like `https:`, no `*`, no `'unsafe-inline'`).
fn csp_allows_only_self(policy: &str) -> bool {
    let directives: Vec<Vec<&str>> = policy
        .split(';')
        .map(|d| d.split_whitespace().collect::<Vec<_>>())
        .filter(|d| !d.is_empty())
        .collect();
    let has_default = directives.iter().any(|d| d[0] == "default-src");
    let only_self = directives
        .iter()
        .flat_map(|d| &d[1..])
        .all(|source| matches!(*source, "'self'" | "'none'" | "data:"));
    has_default && only_self
}

/// Whether the playground's step list `steps` marks the condition `condition` as held: a ✓ (and
/// no ✗ or "not held") on its line or on the two before it, where the mark and its spoken text
/// go when they are elements of their own.
fn condition_held(steps: &str, condition: &str) -> bool {
    let lines: Vec<&str> = steps.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        line.contains(condition) && {
            let mark = lines[i.saturating_sub(2)..=i].join(" ");
            mark.contains('✓') && !mark.contains('✗') && !mark.contains("not held")
        }
    })
}

/// Whether `text` contains `n` as a whole number (so `25` does not count as `5`).
fn has_number(text: &str, n: u64) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|digits| digits.parse() == Ok(n))
}
