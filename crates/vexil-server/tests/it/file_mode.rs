//! File mode (`vexil serve --flags FILE`): the server serves a flag file read-only and reloads
//! it when it changes; a broken edit keeps the last good version serving.

use std::path::Path;

use serde_json::json;

use crate::harness::{Server, eventually};

const FLAGS: &str = "\
environments: [development, production]
segments:
  staff:
    include: [alice]
flags:
  dark_mode: true
  banner:
    variants: {hello: 'Hello', bye: 'Bye'}
    off: hello
    serve: hello
    environments:
      production: bye
  staff_tools:
    rules:
      - when: [{segment: staff}]
        serve: on
";

/// Replaces the file the way editors do: write a temporary file, then rename it over.
fn edit(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).expect("write the new version");
    std::fs::rename(&tmp, path).expect("replace the flag file");
}

#[tokio::test]
async fn serves_the_file() {
    let s = Server::start_file("flags.yaml", FLAGS).await;
    assert_eq!(s.simple("dark_mode", "").await["enabled"], json!(true));
    let v = s.simple("banner", "").await;
    assert_eq!(
        (v["value"].clone(), v["reason"].clone()),
        (json!("Hello"), json!("STATIC")),
        "{v}"
    );
    assert_eq!(
        s.simple("banner", "env=production").await["value"],
        json!("Bye")
    );
    assert_eq!(
        s.simple("staff_tools", "user_id=alice").await["enabled"],
        json!(true)
    );
    assert_eq!(
        s.simple("staff_tools", "user_id=bob").await["enabled"],
        json!(false)
    );
    let r = s
        .admin()
        .ofrep("banner", json!({"targetingKey": "u1"}))
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["variant"], json!("hello"));
    let r = s
        .admin()
        .post("/ofrep/v1/evaluate/flags?env=production")
        .json(&json!({"context": {}}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["flags"].as_array().unwrap().len(), 3);

    // The admin API reads it.
    let list = s.admin().get("/api/v1/flags").send().await.json();
    let keys: Vec<&str> = list["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["banner", "dark_mode", "staff_tools"]);
    let r = s.admin().get("/api/v1/flags/dark_mode").send().await;
    r.assert_status(200);
    assert_eq!(r.json()["definition"], json!(true));
    let envs = s.admin().get("/api/v1/environments").send().await.json();
    assert_eq!(
        envs,
        json!({"environments": [{"name": "development"}, {"name": "production"}]})
    );
    let export = s.admin().get("/api/v1/export").send().await.json();
    assert_eq!(export["segments"]["staff"], json!({"include": ["alice"]}));
    s.stop().await;
}

#[tokio::test]
async fn a_file_without_environments_has_one_named_default() {
    let s = Server::start_file(
        "flags.json",
        r#"{"flags": {"on_flag": true, "off_flag": false}}"#,
    )
    .await;
    assert_eq!(s.simple("on_flag", "").await["enabled"], json!(true));
    assert_eq!(s.simple("off_flag", "").await["enabled"], json!(false));
    assert_eq!(
        s.simple("on_flag", "env=default").await["enabled"],
        json!(true)
    );
    s.admin()
        .get("/flags/on_flag?env=production")
        .send()
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn admin_writes_are_read_only() {
    let s = Server::start_file("flags.yaml", FLAGS).await;
    // The web UI learns it at sign-in, and says so instead of offering edits that would fail.
    let session = s
        .anonymous()
        .post("/api/v1/session")
        .json(&json!({ "key": crate::harness::ADMIN }))
        .send()
        .await;
    session.assert_status(200);
    assert_eq!(session.json()["read_only"], json!(true), "{session}");
    let before = s.observe().await;
    let export = s.admin().get("/api/v1/export").send().await.json();
    for call in [
        s.admin().put("/api/v1/flags/dark_mode").json(&json!(false)),
        s.admin()
            .put("/api/v1/flags/brand_new")
            .json(&json!({"serve": "on"})),
        s.admin().delete("/api/v1/flags/dark_mode"),
        s.admin()
            .put("/flags/dark_mode")
            .json(&json!({"enabled": false})),
        s.admin()
            .put("/flags/dark_mode?env=production")
            .json(&json!({"percentage": 5})),
        s.admin()
            .post("/api/v1/flags/dark_mode/environments/production/disable"),
        s.admin()
            .post("/api/v1/flags/dark_mode/environments/production/enable"),
        s.admin()
            .put("/api/v1/segments/staff")
            .json(&json!({"include": []})),
        s.admin().delete("/api/v1/segments/staff"),
        s.admin()
            .post("/api/v1/environments")
            .json(&json!({"name": "qa"})),
        s.admin().post("/api/v1/import").json(&export),
    ] {
        let r = call.send().await;
        let error = r.assert_error(409, "read_only");
        assert!(
            error["message"].as_str().unwrap().contains("flags.yaml"),
            "{r}"
        );
    }
    s.assert_unchanged(&before, "read-only writes").await;
    assert_eq!(
        s.simple("dark_mode", "env=production").await["enabled"],
        json!(true)
    );
}

#[tokio::test]
async fn keys_are_managed_in_file_mode() {
    // The flags come from the file; keys live in the store, so they can still be created.
    let s = Server::start_file("flags.yaml", FLAGS).await;
    let r = s
        .admin()
        .post("/api/v1/keys")
        .json(&json!({"name": "app", "kind": "client", "environment": "production"}))
        .send()
        .await;
    r.assert_status(201);
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    s.bearer(&secret)
        .get("/flags/dark_mode")
        .send()
        .await
        .assert_status(200);
}

#[tokio::test]
async fn edits_are_picked_up_and_broken_edits_ignored() {
    let s = Server::start_file("flags.yaml", FLAGS).await;
    let path = s.file();
    let rev0 = s.revision().await;

    // A good edit is served once the watcher notices it.
    edit(
        &path,
        &FLAGS
            .replace("serve: hello", "serve: bye")
            .replace("dark_mode: true", "dark_mode: false"),
    );
    let picked_up =
        eventually(|| async { s.simple("banner", "").await["value"] == json!("Bye") }).await;
    assert!(picked_up, "the edit was not picked up");
    assert_eq!(
        s.simple("dark_mode", "").await["enabled"],
        json!(false),
        "the whole file at once"
    );
    let rev1 = s.revision().await;
    assert!(rev1 > rev0, "a reload is a new revision ({rev0} → {rev1})");

    // Broken edits: invalid YAML, then a valid document with an invalid flag, then no file.
    // The last good version keeps serving through all of them.
    for broken in [
        "flags: [unclosed\n",
        &FLAGS.replace("serve: hello", "serve: nonexistent_variant"),
        "flags:\n  dark_mode: true\n  dark_mode: false\n",
    ] {
        edit(&path, broken);
        // Give the watcher a few polls to (not) act on it; a slow machine makes this check
        // weaker, never wrong.
        for _ in 0..4 {
            tokio::time::sleep(vexil_server::file::POLL_INTERVAL).await;
            assert_eq!(
                s.simple("banner", "").await["value"],
                json!("Bye"),
                "after {broken:?}"
            );
            assert_eq!(
                s.simple("dark_mode", "").await["enabled"],
                json!(false),
                "after {broken:?}"
            );
        }
        assert_eq!(s.revision().await, rev1, "a broken edit is not a revision");
    }
    std::fs::remove_file(&path).expect("remove the file");
    tokio::time::sleep(vexil_server::file::POLL_INTERVAL * 2).await;
    assert_eq!(
        s.simple("banner", "").await["value"],
        json!("Bye"),
        "with the file gone"
    );

    // The watcher is still alive: the next good version is served.
    edit(
        &path,
        &FLAGS.replace("dark_mode: true", "dark_mode: true\n  added_later: true"),
    );
    let picked_up = eventually(|| async {
        let r = s.admin().get("/flags/added_later").send().await;
        r.status.as_u16() == 200 && r.json()["enabled"] == json!(true)
    })
    .await;
    assert!(picked_up, "the fixed file was not picked up");
    assert_eq!(s.simple("banner", "").await["value"], json!("Hello"));
    assert_eq!(s.simple("dark_mode", "").await["enabled"], json!(true));
}

#[tokio::test]
async fn in_place_edits_of_the_same_size_are_picked_up() {
    let s = Server::start_file("flags.yaml", "flags:\n  a: true\n  b: false\n").await;
    let path = s.file();
    assert_eq!(s.simple("a", "").await["enabled"], json!(true));
    // The same length, written in place, possibly within one tick of the modification time.
    std::fs::write(&path, "flags:\n  a: false\n  b: true\n").expect("write");
    let picked_up =
        eventually(|| async { s.simple("a", "").await["enabled"] == json!(false) }).await;
    assert!(picked_up, "the in-place edit was not picked up");
    assert_eq!(s.simple("b", "").await["enabled"], json!(true));
}

#[tokio::test]
async fn a_broken_file_does_not_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("flags.yaml");
    std::fs::write(&path, "flags:\n  x: {serve: nowhere}\n").unwrap();
    let store: vexil_store::DynStore =
        std::sync::Arc::new(vexil_store::SqliteStore::open(&dir.path().join("data")).unwrap());
    let err = match vexil_server::AppState::load(store, vexil_server::Source::File(path)).await {
        Ok(_) => panic!("a broken flag file loads"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("flags.yaml") && err.contains("nowhere"),
        "the error names the file and the problem: {err}"
    );
}
