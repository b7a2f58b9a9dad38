//! Every case of the shared evaluation vectors (`vectors/evaluation.yaml`), through a file
//! client: each suite's document is written to a file and loaded with the case's environment,
//! and each case is evaluated with `details_at` at the case's `now` (so cases that depend on
//! `$now` run too, none is skipped).

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;
use tempfile::TempDir;
use vexil::{Client, Context};

fn suites() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors/evaluation.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    match vexil_engine::parse_text(&text).unwrap().to_json() {
        Value::Array(suites) => suites,
        other => panic!("expected a list of suites, found {other}"),
    }
}

#[test]
fn evaluation_vectors() {
    let dir = TempDir::new().unwrap();
    let mut checked = 0;
    for (i, suite) in suites().iter().enumerate() {
        let name = suite["name"].as_str().unwrap();
        // JSON is YAML 1.2 too: the document exactly as the vectors give it.
        let path = dir.path().join(format!("suite-{i}.json"));
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&suite["flags"]).unwrap(),
        )
        .unwrap();
        let mut clients: HashMap<String, Client> = HashMap::new();
        for case in suite["cases"].as_array().unwrap() {
            let env = case["environment"].as_str().unwrap();
            let client = clients.entry(env.to_owned()).or_insert_with(|| {
                Client::from_file(&path, Some(env)).unwrap_or_else(|e| panic!("{name}: {e}"))
            });
            let flag = case["flag"].as_str().unwrap();
            let ctx = Context::try_from(case["context"].clone()).unwrap();
            let now = case["now"].as_str().unwrap().parse().unwrap();
            let d = client.details_at(flag, &ctx, Value::Null, now);
            let expect = &case["expect"];
            let what = format!("{name}: {flag} in {env} for {}", case["context"]);
            assert_eq!(d.value, expect["value"], "value, {what}");
            assert_eq!(
                d.variant.map_or(Value::Null, Value::String),
                expect["variant"],
                "variant, {what}"
            );
            assert_eq!(
                d.reason.as_str(),
                expect["reason"].as_str().unwrap(),
                "reason, {what}"
            );
            assert_eq!(
                d.error.map(|e| e.code.as_str()),
                expect.get("error").and_then(Value::as_str),
                "error, {what}"
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} cases");
}
