//! File mode: loading, environments, errors, and watching a file for edits.

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;
use vexil::{Client, Context, ErrorCode, Status};

use crate::harness::until;

fn write(path: &Path, text: &str) {
    // Write then rename, as editors and deploys do, so the watcher never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

const ENVS: &str = "\
environments: [development, production]
flags:
  new_checkout:
    serve: off
    environments:
      development: on
";

#[test]
fn the_environment_is_the_argument_else_the_first() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flags.yaml");
    write(&path, ENVS);
    let ctx = Context::new();
    let prod = Client::from_file(&path, Some("production")).unwrap();
    assert!(!prod.is_enabled("new_checkout", &ctx));
    let dev = Client::from_file(&path, Some("development")).unwrap();
    assert!(dev.is_enabled("new_checkout", &ctx));
    assert_eq!(dev.status(), Status::Ready);
    match Client::from_file(&path, Some("staging")) {
        Err(vexil::Error::UnknownEnvironment {
            name, available, ..
        }) => {
            assert_eq!(name, "staging");
            assert_eq!(available, ["development", "production"]);
        }
        other => panic!("expected UnknownEnvironment, got {other:?}"),
    }
    // With no argument: VEXIL_ENV, else the first. The test cannot set the variable safely,
    // so it checks whichever applies.
    #[allow(clippy::disallowed_methods)]
    let from_env = std::env::var("VEXIL_ENV").ok();
    if from_env.is_none() {
        let first = Client::from_file(&path, None).unwrap();
        assert!(first.is_enabled("new_checkout", &ctx));
    }
}

#[test]
fn an_invalid_file_lists_every_problem() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flags.yaml");
    write(&path, "flags:\n  a: {serve: maybe}\n  b: {rollout: 150}\n");
    let err = Client::from_file(&path, None).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, vexil::Error::Invalid { .. }), "{message}");
    assert!(message.contains("flags.a"), "{message}");
    assert!(message.contains("flags.b"), "{message}");
    let missing = Client::from_file(dir.path().join("missing.yaml"), None).unwrap_err();
    assert!(matches!(missing, vexil::Error::Read { .. }), "{missing}");
}

#[test]
fn text_and_the_typed_accessors() {
    let client = Client::from_text(
        r##"
flags:
  color: {variants: {blue: "#0055ff", red: "#ff0000"}, off: blue, serve: red}
  limit: {variants: {low: 10, high: 100}, off: low, rules: [{when: [{attribute: plan, op: in, values: [pro]}], serve: high}]}
  layout: {variants: {a: {columns: 2}, b: {columns: 3}}, off: a, serve: b}
"##,
        Some("default"),
    )
    .unwrap();
    let pro = Context::with_targeting_key("u").with("plan", "pro");
    assert_eq!(client.string_value("color", &pro, "x"), "#ff0000");
    assert_eq!(client.number_value("limit", &pro, 0.0), 100.0);
    assert_eq!(client.number_value("limit", &Context::new(), 0.0), 10.0);
    assert_eq!(
        client.json_value("layout", &pro, serde_json::json!(null)),
        serde_json::json!({"columns": 3})
    );
    let d = client.number_details("limit", &pro, 0.0);
    assert_eq!(d.rule.as_ref().map(|r| r.index), Some(0));
    assert_eq!(d.reason, vexil::Reason::TargetingMatch);
    // The wrong type: the caller's default, TYPE_MISMATCH.
    let d = client.bool_details("color", &pro, true);
    assert!(d.value);
    assert_eq!(d.error_code(), Some(ErrorCode::TypeMismatch));
    // A targeting key that is not a string: INVALID_CONTEXT.
    let odd = Context::new().with("targetingKey", serde_json::json!([1]));
    assert_eq!(
        client.string_details("color", &odd, "x").error_code(),
        Some(ErrorCode::InvalidContext)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_file_follows_edits_and_keeps_the_last_valid_version() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flags.yaml");
    write(&path, "flags:\n  search_enabled: true\n");
    let client = Client::builder()
        .file(&path)
        .watch(true)
        .watch_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let ctx = Context::new();
    let mut changes = client.subscribe();
    assert_eq!(*changes.borrow_and_update(), 1);
    assert!(client.bool_value("search_enabled", &ctx, false));

    write(&path, "flags:\n  search_enabled: false\n");
    assert!(until(|| !client.bool_value("search_enabled", &ctx, true)).await);
    assert!(changes.has_changed().unwrap());
    assert_eq!(*changes.borrow_and_update(), 2);
    assert_eq!(client.status(), Status::Ready);

    // A broken edit: the last valid version stays, and the status says so.
    write(&path, "flags:\n  search_enabled: {serve: sometimes}\n");
    assert!(until(|| client.status() == Status::Stale).await);
    assert!(!client.bool_value("search_enabled", &ctx, true));
    assert!(!changes.has_changed().unwrap());

    // Fixed: served again.
    write(&path, "flags:\n  search_enabled: true\n  new_flag: true\n");
    assert!(until(|| client.is_enabled("new_flag", &ctx)).await);
    assert_eq!(client.status(), Status::Ready);
    assert!(client.bool_value("search_enabled", &ctx, false));

    // Gone: stale, last version served; back: ready.
    std::fs::remove_file(&path).unwrap();
    assert!(until(|| client.status() == Status::Stale).await);
    assert!(client.is_enabled("new_flag", &ctx));
    write(&path, "flags:\n  search_enabled: true\n  new_flag: true\n");
    assert!(until(|| client.status() == Status::Ready).await);
}
