//! The shared vectors (`vectors/` at the repository root) are the spec in data.

use std::path::PathBuf;

use serde_json::Value;
use vexil_engine::{Config, Context, Node, NodeValue, parse_text};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors")
}

#[test]
fn bucketing_vectors() {
    let text = std::fs::read_to_string(vectors_dir().join("bucketing.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    let mut checked = 0;
    for case in cases {
        let salt = case["salt"].as_str().unwrap();
        let value = case["value"].as_str().unwrap();
        assert_eq!(
            u64::from(vexil_engine::hash(salt, value)),
            case["hash"].as_u64().unwrap(),
            "hash of {salt}:{value}"
        );
        let bucket = vexil_engine::bucket(salt, value);
        assert_eq!(
            u64::from(bucket),
            case["bucket"].as_u64().unwrap(),
            "bucket of {salt}:{value}"
        );
        for rollout in case["rollouts"].as_array().unwrap() {
            // Build a flag with these weights in this declaration order and evaluate it, so the
            // vector exercises the engine's own walk, not a copy of it.
            let weights = rollout["weights"].as_array().unwrap();
            let mut variants = serde_json::Map::new();
            let mut percents = serde_json::Map::new();
            for w in weights {
                let name = w[0].as_str().unwrap();
                variants.insert(name.to_owned(), Value::String(name.to_owned()));
                percents.insert(name.to_owned(), w[1].clone());
            }
            let first = weights[0][0].as_str().unwrap();
            let doc = serde_json::json!({"flags": {"f": {
                "variants": variants, "off": first, "rollout": percents, "salt": salt,
            }}});
            let config = Config::from_json(&doc).unwrap();
            let now = "2026-06-01T00:00:00Z".parse().unwrap();
            let ev = config
                .default_env()
                .evaluate("f", &Context::with_targeting_key(value), now);
            assert_eq!(
                ev.variant.unwrap(),
                rollout["variant"].as_str().unwrap(),
                "{salt}:{value} with {weights:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

fn field<'a>(node: &'a Node, name: &str) -> &'a Node {
    match &node.value {
        NodeValue::Map(entries) => &entries.iter().find(|(k, _, _)| k == name).unwrap().2,
        _ => panic!("not a mapping"),
    }
}

/// Every case of `evaluation.yaml`, as `(suite, flag document, case)`.
pub fn evaluation_cases() -> Vec<(String, Node, Value)> {
    let text = std::fs::read_to_string(vectors_dir().join("evaluation.yaml")).unwrap();
    let root = parse_text(&text).unwrap();
    let NodeValue::Seq(suites) = &root.value else {
        panic!("expected a list of suites")
    };
    let mut out = Vec::new();
    for suite in suites {
        let name = field(suite, "name").to_json().as_str().unwrap().to_owned();
        let flags = field(suite, "flags").clone();
        for case in field(suite, "cases").to_json().as_array().unwrap() {
            out.push((name.clone(), flags.clone(), case.clone()));
        }
    }
    out
}

#[test]
fn evaluation_vectors() {
    let cases = evaluation_cases();
    assert!(cases.len() > 30, "only {} cases", cases.len());
    for (suite, flags, case) in cases {
        let config =
            Config::from_node(&flags).unwrap_or_else(|e| panic!("{suite}: {:?}", e.diagnostics));
        let env = config.env(case["environment"].as_str().unwrap()).unwrap();
        let ctx = Context::try_from(case["context"].clone()).unwrap();
        let now = case["now"].as_str().unwrap().parse().unwrap();
        let flag = case["flag"].as_str().unwrap();
        let ev = env.evaluate(flag, &ctx, now);
        let expect = &case["expect"];
        let what = format!("{suite}: {flag} for {}", case["context"]);
        assert_eq!(
            ev.value.cloned().unwrap_or(Value::Null),
            expect["value"],
            "value, {what}"
        );
        assert_eq!(
            ev.variant
                .map(|v| Value::String(v.into()))
                .unwrap_or(Value::Null),
            expect["variant"],
            "variant, {what}"
        );
        assert_eq!(
            ev.reason.as_str(),
            expect["reason"].as_str().unwrap(),
            "reason, {what}"
        );
        assert_eq!(
            ev.error.map(|e| e.code().as_str()),
            expect.get("error").and_then(Value::as_str),
            "error, {what}"
        );
    }
}
