//! The JSON Schema of the flag document (`vexil schema`): a valid draft 2020-12 schema that
//! accepts the vectors' documents, the product's example and documents using every field, and
//! rejects the usual mistakes the loader rejects.

use std::error::Error;
use std::path::PathBuf;

use serde_json::Value;
use vexil_engine::{Config, JSON_SCHEMA, parse_text};

type TestResult = Result<(), Box<dyn Error>>;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> Value {
    serde_json::from_str(JSON_SCHEMA).expect("schema.json is JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&schema()).expect("the schema compiles")
}

/// Reads YAML 1.2 (or JSON) text the way the engine does.
fn yaml(text: &str) -> Result<Value, Box<dyn Error>> {
    Ok(parse_text(text).map_err(|d| d.to_string())?.to_json())
}

/// Every validation error of `doc`, one per line, for assertion messages.
fn problems(validator: &jsonschema::Validator, doc: &Value) -> String {
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn schema_is_valid_draft_2020_12() {
    let schema = schema();
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("not a valid draft 2020-12 schema: {e}");
    }
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(schema["$id"].as_str().unwrap().starts_with("https://"));
    assert!(schema["title"].is_string());
    assert!(schema["description"].is_string());
    validator();
}

/// Editors show `description` as hover help: every property must have one, on itself or on the
/// definition it refers to.
#[test]
fn every_property_is_described() {
    fn walk(
        node: &Value,
        defs: &serde_json::Map<String, Value>,
        path: &str,
        out: &mut Vec<String>,
    ) {
        match node {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    for (name, prop) in props {
                        let described = prop.get("description").is_some()
                            || prop
                                .get("$ref")
                                .and_then(Value::as_str)
                                .and_then(|r| r.strip_prefix("#/$defs/"))
                                .and_then(|d| defs.get(d))
                                .is_some_and(|d| d.get("description").is_some());
                        if !described {
                            out.push(format!("{path}/properties/{name}"));
                        }
                    }
                }
                // `if`, `then`, `else`, `not` and `allOf` only add constraints to properties
                // described where they are declared.
                for (k, v) in map {
                    if !matches!(k.as_str(), "if" | "then" | "else" | "not" | "allOf") {
                        walk(v, defs, &format!("{path}/{k}"), out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, defs, &format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let schema = schema();
    let defs = schema["$defs"].as_object().unwrap();
    for (name, def) in defs {
        assert!(
            def.get("description").is_some(),
            "$defs/{name} has no description"
        );
    }
    let mut missing = Vec::new();
    walk(&schema, defs, "#", &mut missing);
    assert!(
        missing.is_empty(),
        "properties without a description: {missing:#?}"
    );
}

#[test]
fn evaluation_vectors_are_valid() -> TestResult {
    let validator = validator();
    let text = std::fs::read_to_string(manifest_dir().join("../../vectors/evaluation.yaml"))?;
    let suites = yaml(&text)?;
    let suites = suites
        .as_array()
        .ok_or("evaluation.yaml is a list of suites")?;
    assert!(!suites.is_empty());
    for suite in suites {
        let doc = &suite["flags"];
        assert!(
            doc.is_object(),
            "suite {} has no flags document",
            suite["name"]
        );
        assert!(
            validator.is_valid(doc),
            "suite {}:\n{}",
            suite["name"],
            problems(&validator, doc)
        );
    }
    Ok(())
}

#[test]
fn product_example_is_valid() -> TestResult {
    let validator = validator();
    let text = std::fs::read_to_string(manifest_dir().join("tests/fixtures/example.yaml"))?;
    let doc = yaml(&text)?;
    assert!(validator.is_valid(&doc), "{}", problems(&validator, &doc));
    Ok(())
}

/// Documents using every field and shorthand: the loader and the schema both accept them.
#[test]
fn loadable_documents_are_valid() -> TestResult {
    let validator = validator();
    let docs = [
        "flags: {a: true, b: false, c: {}}\n",
        r##"
environments: [dev, prod]
segments:
  staff: {include: [1, u-2], exclude: [u-9], when: [{attribute: email, op: ends_with, value: "@x.com", ignore_case: true}]}
  nested: {description: Staff in DE, when: [{segment: staff}, {attribute: country, op: in, values: [DE]}]}
flags:
  base: true
  f:
    description: d
    kind: permission
    owner: o
    tags: [t]
    created: 2026-01-15
    expires: 2026-04-01
    ticket: T-1
    link: https://example.com/T-1
    enabled: true
    prerequisites: [{flag: base}, {flag: base, variants: [on, off]}]
    targets: {on: [u1, 42], off: [u2]}
    rules:
      - name: r1
        when:
          - {not: {attribute: plan, op: not_in, values: [free]}}
          - {any: [{attribute: a.b, op: exists}, {all: []}]}
        serve: true
      - when: [{attribute: $now, op: after, values: [2026-12-01T09:00:00Z, "2026-12-01 10:00:00.5+01:00", 2026-12-01, 1780000000]}]
        rollout: 12.5
        bucket_by: account.id
        salt: s
      - when: [{attribute: v, op: semver_gte, values: [v2.3.0-beta.1+build.5, 1.2, 3]}]
        rollout: {on: 33.333, off: 66.667}
      - when: [{attribute: n, op: lte, values: [" 10 ", -1.5e3, 7]}, {attribute: r, op: matches, value: "^a.*z$"}]
        serve: off
      - when: [{attribute: $flag, op: starts_with, values: [f]}, {attribute: x, op: not_exists, values: []}]
        serve: on
    serve: on
    bucket_by: user.id
    environments:
      dev: true
      prod: {enabled: false, rollout: 5, salt: other}
  color:
    variants: {red: "#f00", blue: "#00f"}
    off: red
    rollout: {red: 50, blue: 50}
    environments: {dev: blue, prod: {serve: red, rules: []}}
  limits:
    variants: {small: {max: 1}, large: {max: 100}}
    off: small
  ratio:
    variants: {low: 0.1, high: 0.9}
    off: low
  custom_bool:
    variants: {yes: true, no: false}
    off: no
    serve: true
"##,
        r#"{"flags": {"json": {"variants": {"on": true, "off": false}, "serve": "on"}}}"#,
    ];
    for text in docs {
        if let Err(e) = Config::from_text(text) {
            panic!("the loader rejects {text}: {:#?}", e.diagnostics);
        }
        let doc = yaml(text)?;
        assert!(
            validator.is_valid(&doc),
            "{text}\n{}",
            problems(&validator, &doc)
        );
    }
    Ok(())
}

/// The common mistakes: the loader and the schema both reject them.
#[test]
fn invalid_documents_are_rejected() -> TestResult {
    let validator = validator();
    let docs = [
        ("unknown top-level field", "flag: {a: true}\n"),
        ("missing flags", "segments: {}\n"),
        ("unknown flag field", "flags: {a: {descripton: typo}}\n"),
        ("bad flag key", "flags: {-a: true}\n"),
        (
            "flag key too long",
            &format!("flags: {{{}: true}}\n", "a".repeat(129)),
        ),
        ("bad segment name", "segments: {'a b': {}}\nflags: {}\n"),
        ("bad environment name", "environments: [_dev]\nflags: {}\n"),
        ("wrong kind", "flags: {a: {kind: temporary}}\n"),
        ("bad date", "flags: {a: {expires: 2026-4-1}}\n"),
        ("not a date", "flags: {a: {created: yesterday}}\n"),
        (
            "unknown op",
            "flags: {a: {rules: [{when: [{attribute: x, op: equals, values: [1]}], serve: on}]}}\n",
        ),
        (
            "unknown field in a condition",
            "flags: {a: {rules: [{when: [{attribute: x, op: in, values: [1], negate: true}], serve: on}]}}\n",
        ),
        (
            "two forms in one condition",
            "segments: {s: {}}\nflags: {a: {rules: [{when: [{segment: s, not: {segment: s}}], serve: on}]}}\n",
        ),
        (
            "values and value",
            "flags: {a: {rules: [{when: [{attribute: x, op: in, values: [1], value: 2}], serve: on}]}}\n",
        ),
        (
            "no values",
            "flags: {a: {rules: [{when: [{attribute: x, op: in}], serve: on}]}}\n",
        ),
        (
            "values on exists",
            "flags: {a: {rules: [{when: [{attribute: x, op: exists, values: [1]}], serve: on}]}}\n",
        ),
        (
            "ignore_case on a number operator",
            "flags: {a: {rules: [{when: [{attribute: x, op: gt, values: [1], ignore_case: true}], serve: on}]}}\n",
        ),
        (
            "$now with a text operator",
            "flags: {a: {rules: [{when: [{attribute: $now, op: in, values: [x]}], serve: on}]}}\n",
        ),
        (
            "unknown built-in attribute",
            "flags: {a: {rules: [{when: [{attribute: $today, op: exists}], serve: on}]}}\n",
        ),
        (
            "not a number for gt",
            "flags: {a: {rules: [{when: [{attribute: x, op: gt, values: [many]}], serve: on}]}}\n",
        ),
        (
            "a time without an offset",
            "flags: {a: {rules: [{when: [{attribute: x, op: before, values: ['2026-01-01T10:00:00']}], serve: on}]}}\n",
        ),
        (
            "not a version",
            "flags: {a: {rules: [{when: [{attribute: x, op: semver_gt, values: [2.x]}], serve: on}]}}\n",
        ),
        ("rule without when", "flags: {a: {rules: [{serve: on}]}}\n"),
        (
            "rule with serve and rollout",
            "flags: {a: {rules: [{when: [], serve: on, rollout: 5}]}}\n",
        ),
        (
            "rule with neither serve nor rollout",
            "flags: {a: {rules: [{when: []}]}}\n",
        ),
        ("serve and rollout", "flags: {a: {serve: on, rollout: 5}}\n"),
        ("percentage above 100", "flags: {a: {rollout: 150}}\n"),
        ("a flag that is a string", "flags: {a: on}\n"),
        (
            "mixed variant types",
            "flags: {a: {variants: {x: 1, y: one}, off: x}}\n",
        ),
        (
            "a list as a variant value",
            "flags: {a: {variants: {x: [1]}, off: x}}\n",
        ),
        (
            "off missing on a string flag",
            "flags: {a: {variants: {x: one, y: two}}}\n",
        ),
        ("empty variants", "flags: {a: {variants: {}, off: x}}\n"),
        (
            "metadata in an environment override",
            "environments: [dev]\nflags: {a: {environments: {dev: {owner: me}}}}\n",
        ),
        (
            "unknown field in a prerequisite",
            "flags: {b: true, a: {prerequisites: [{flag: b, variant: on}]}}\n",
        ),
        (
            "unknown field in a segment",
            "segments: {s: {includes: [u1]}}\nflags: {}\n",
        ),
        (
            "a target listed twice",
            "flags: {a: {targets: {on: [u1, u1]}}}\n",
        ),
        ("empty environments", "environments: []\nflags: {}\n"),
    ];
    for (what, text) in docs {
        assert!(
            Config::from_text(text).is_err(),
            "{what}: the loader accepts {text}"
        );
        let doc = yaml(text)?;
        assert!(
            !validator.is_valid(&doc),
            "{what}: the schema accepts {text}"
        );
    }
    Ok(())
}
