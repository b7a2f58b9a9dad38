//! `vexil eval`: the shared evaluation vectors run through the binary, and the shape of its
//! output (snapshots) for rule matches, attributes, unknown flags and usage errors.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::{crate_dir, vexil};

/// A file in the system's temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "vexil-cli-it-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The suites of `vectors/evaluation.yaml` as JSON: `[{name, flags, cases: [{flag, environment,
/// now, context, expect: {value, variant, reason, error?}}]}]`.
fn evaluation_suites() -> Vec<Value> {
    let path = crate_dir().join("../../vectors/evaluation.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let root = vexil_engine::parse_text(&text).unwrap_or_else(|d| panic!("{d}"));
    match root.to_json() {
        Value::Array(suites) => suites,
        other => panic!("expected a list of suites, found {other}"),
    }
}

/// Every case of every suite: the suite's document is written to a file, the case evaluated by
/// `vexil eval FILE FLAG --env ENV --now NOW --context JSON`, and its JSON compared with `expect`.
#[test]
fn evaluation_vectors() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (i, suite) in evaluation_suites().iter().enumerate() {
        let name = suite["name"].as_str().unwrap();
        // JSON is YAML 1.2 too; writing JSON keeps the document exactly as the vectors give it.
        let doc = TempFile::new(
            &format!("suite-{i}.json"),
            &serde_json::to_string_pretty(&suite["flags"]).unwrap(),
        );
        let cases = suite["cases"].as_array().unwrap();
        assert!(!cases.is_empty(), "suite {name:?} has no cases");
        for case in cases {
            let flag = case["flag"].as_str().unwrap();
            let context = serde_json::to_string(&case["context"]).unwrap();
            let run = vexil(&[
                "eval",
                doc.path(),
                flag,
                "--env",
                case["environment"].as_str().unwrap(),
                "--now",
                case["now"].as_str().unwrap(),
                "--context",
                &context,
            ]);
            let what = format!("{name}: {flag} in {} for {context}", case["environment"]);
            let expect = &case["expect"];
            let error = expect.get("error").cloned().unwrap_or(Value::Null);
            let Ok(got) = serde_json::from_str::<Value>(&run.stdout) else {
                failures.push(format!("{what}: output is not JSON\n{}", run.render()));
                continue;
            };
            let expected_code = if error.is_null() { 0 } else { 1 };
            let mismatches: Vec<String> = [
                ("value", &got["value"], &expect["value"]),
                ("variant", &got["variant"], &expect["variant"]),
                ("reason", &got["reason"], &expect["reason"]),
                ("error_code", &got["error_code"], &error),
            ]
            .into_iter()
            .filter(|(_, got, want)| got != want)
            .map(|(field, got, want)| format!("{field}: got {got}, expected {want}"))
            .chain(
                (run.code != expected_code)
                    .then(|| format!("exit code {}, expected {expected_code}", run.code)),
            )
            .collect();
            if !mismatches.is_empty() {
                failures.push(format!("{what}: {}", mismatches.join("; ")));
            }
            if !error.is_null() && got["value"] != Value::Null {
                failures.push(format!("{what}: an error's value must be null"));
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 30, "only {checked} cases");
}

const EXAMPLE: &str = "tests/fixtures/valid/product-example.yaml";
const NOW: &str = "2026-06-01T00:00:00Z";

/// One snapshot a named run of `vexil eval`, with the exit code it must end with.
fn check(name: &str, code: i32, args: &[&str]) {
    let run = vexil(args);
    assert_eq!(run.code, code, "{name}:\n{}", run.render());
    if code != 2 {
        // Results (including evaluation errors) are one JSON object on stdout.
        let result: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{name}: stdout is not JSON ({e}):\n{}", run.render()));
        for field in ["flag", "value", "variant", "reason", "rule"] {
            assert!(
                result.get(field).is_some(),
                "{name}: no `{field}` in {result}"
            );
        }
        assert_eq!(
            result.get("error_code").is_some(),
            code == 1,
            "{name}: `error_code` is there exactly when the evaluation failed: {result}"
        );
    }
    insta::assert_snapshot!(name, run.render());
}

#[test]
fn a_named_rule_decides() {
    check(
        "rule_named",
        0,
        &[
            "eval",
            EXAMPLE,
            "new_checkout",
            "--env",
            "production",
            "--now",
            NOW,
            "--context",
            r#"{"targetingKey": "user-2", "email": "Ann@Company.com"}"#,
        ],
    );
}

#[test]
fn key_value_attributes_override_the_context() {
    // The second rule (unnamed) needs plan `enterprise` and app_version >= 2.3.0.
    check(
        "rule_unnamed_key_value",
        0,
        &[
            "eval",
            EXAMPLE,
            "new_checkout",
            "--env",
            "production",
            "--now",
            NOW,
            "--context",
            r#"{"targetingKey": "user-3", "plan": "free"}"#,
            "plan=enterprise",
            "app_version=2.4.0",
        ],
    );
}

#[test]
fn targets_rollouts_and_environments() {
    let base = ["eval", EXAMPLE];
    let runs: [(&str, &[&str]); 4] = [
        (
            "targets",
            &[
                "new_checkout",
                "--env",
                "production",
                "--now",
                NOW,
                "targetingKey=user-123",
            ],
        ),
        (
            "multivariate_rollout",
            &[
                "button_color",
                "--env",
                "production",
                "--now",
                NOW,
                "account_id=acme",
            ],
        ),
        (
            "environment_shorthand",
            &["new_checkout", "--env", "development", "--now", NOW],
        ),
        // Without --env, the first environment the document lists (development).
        ("default_environment", &["new_checkout", "--now", NOW]),
    ];
    for (name, args) in runs {
        let args: Vec<&str> = base.iter().chain(args).copied().collect();
        check(name, 0, &args);
    }
}

#[test]
fn an_unknown_flag_is_an_error_result() {
    check(
        "unknown_flag",
        1,
        &[
            "eval",
            EXAMPLE,
            "no_such_flag",
            "--env",
            "staging",
            "--now",
            NOW,
        ],
    );
}

#[test]
fn an_invalid_file_lists_its_problems() {
    let run = vexil(&[
        "eval",
        "tests/fixtures/invalid/many-problems.yaml",
        "new_checkout",
    ]);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(run.stdout.is_empty(), "{}", run.render());
    insta::assert_snapshot!("invalid_file", run.render());
}

#[test]
fn usage_errors_exit_2() {
    let runs: [(&str, &[&str]); 7] = [
        ("unknown_environment", &["--env", "prod"]),
        ("context_not_json", &["--context", "{targetingKey: user-1}"]),
        ("context_not_an_object", &["--context", r#"["user-1"]"#]),
        ("now_not_rfc3339", &["--now", "2026-06-01 noon"]),
        ("now_without_offset", &["--now", "2026-06-01T00:00:00"]),
        ("attribute_without_equals", &["plan"]),
        ("attribute_with_empty_key", &["=enterprise"]),
    ];
    for (name, extra) in runs {
        let args: Vec<&str> = ["eval", EXAMPLE, "new_checkout"]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        check(&format!("usage__{name}"), 2, &args);
    }
    check(
        "usage__missing_file",
        2,
        &["eval", "tests/fixtures/no-such-file.yaml", "new_checkout"],
    );
    check("usage__missing_flag_argument", 2, &["eval", EXAMPLE]);
}
