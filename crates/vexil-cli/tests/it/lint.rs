//! `vexil lint` over the fixture tree `tests/fixtures/lint/`: references in every supported
//! language, with decoys that must not count (a key inside a longer string, in a comment, in a
//! raw string or regex, a similar key such as `new_checkout_v2`, a `.gitignore`d file, vendored
//! directories and a binary file). Every output format is a snapshot; the SARIF output is also
//! validated against the SARIF 2.1.0 JSON schema. Every run uses `--today 2026-03-20`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::server_process::{ADMIN_KEY, Server};
use super::{Run, crate_dir};

const TODAY: &str = "2026-03-20";

/// The fixture tree.
fn tree() -> PathBuf {
    crate_dir().join("tests/fixtures/lint")
}

/// Writes the fixture's `.gitignore`d file. It is made here rather than committed, since Git
/// itself would not commit an ignored file; its references must never be found.
fn write_ignored_file() {
    let dir = tree().join("ignored");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("generated.py");
    let text = "client.get_boolean_value(\"unused_flag\", False)\nclient.get_boolean_value(\"ignored_unknown\", False)\n";
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}

/// Runs `vexil ARGS…` in `dir`, isolated from the caller's `VEXIL_*` variables.
fn vexil_in<S: AsRef<str>>(dir: &Path, args: &[S]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_vexil"))
        .args(&args)
        .current_dir(dir)
        .env_remove("VEXIL_SERVER")
        .env_remove("VEXIL_KEY")
        .env_remove("VEXIL_ENV")
        .output()
        .expect("the vexil binary runs");
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        args,
    }
}

/// `vexil lint --flags flags.yaml --today 2026-03-20 EXTRA…` in the fixture tree.
fn lint(extra: &[&str]) -> Run {
    lint_on(TODAY, extra)
}

/// `vexil lint --flags flags.yaml --today TODAY EXTRA…` in the fixture tree.
fn lint_on(today: &str, extra: &[&str]) -> Run {
    write_ignored_file();
    let mut args = vec!["lint", "--flags", "flags.yaml", "--today", today];
    args.extend_from_slice(extra);
    vexil_in(&tree(), &args)
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.render()))
}

#[test]
fn every_format_is_a_snapshot() {
    for format in ["text", "json", "sarif", "github"] {
        let run = lint(&["--format", format]);
        assert_eq!(run.code, 1, "errors were found:\n{}", run.render());
        insta::assert_snapshot!(format!("format_{format}"), run.render());
    }
}

#[test]
fn text_is_the_default_format() {
    assert_eq!(lint(&[]).stdout, lint(&["--format", "text"]).stdout);
}

#[test]
fn decoys_are_not_references() {
    let report = json_of(&lint(&["--format", "json"]));
    let refs = report["references"].as_array().unwrap();
    for r in refs {
        let file = r["file"].as_str().unwrap();
        assert!(
            file.starts_with("src/") || file.starts_with("config/"),
            "a reference outside the project's own code: {r}"
        );
        assert_ne!(r["flag"], "unused_flag", "a decoy counted: {r}");
    }
    let findings = report["findings"].as_array().unwrap();
    let unknown: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule"] == "unknown-flag")
        .map(|f| f["flag"].as_str().unwrap())
        .collect();
    // Unknown keys in vendored, ignored and binary files are never reported.
    assert_eq!(
        unknown,
        ["ghost_flag", "search-v2", "serch_v2", "checkout_timeout"]
    );
    let unreferenced: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule"] == "unreferenced-flag")
        .map(|f| f["flag"].as_str().unwrap())
        .collect();
    assert_eq!(unreferenced, ["unused_flag", "legacy_theme"]);
    assert_eq!(report["summary"]["binary_files_skipped"], 1);
    // Every language has at least one reference.
    for dir in [
        "src/rust/",
        "src/python/",
        "src/web/",
        "src/go/",
        "src/java/",
        "src/kotlin/",
        "src/ruby/",
        "src/csharp/",
        "config/app.yaml",
        "config/settings.json",
        "src/php/",
    ] {
        assert!(
            refs.iter()
                .any(|r| r["file"].as_str().unwrap().starts_with(dir)),
            "no reference found in {dir}"
        );
    }
}

/// The SARIF 2.1.0 JSON schema, descriptions removed (see its `$comment`).
const SARIF_SCHEMA: &str = include_str!("sarif-2.1.0.schema.json");

#[test]
fn sarif_is_valid_sarif_2_1_0() {
    let log = json_of(&lint(&["--format", "sarif"]));
    let schema: Value = serde_json::from_str(SARIF_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "invalid SARIF:\n{}", errors.join("\n"));
    // The schema does reject what is not SARIF.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(!validator.is_valid(&broken));
    let mut broken = log.clone();
    broken["runs"][0]["tool"]["driver"]
        .as_object_mut()
        .unwrap()
        .remove("name");
    assert!(!validator.is_valid(&broken));

    // And what code-scanning dashboards rely on, checked one by one.
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif"));
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "vexil lint");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(result["ruleId"], rules[index]["id"]);
        assert!(matches!(
            result["level"].as_str(),
            Some("error" | "warning")
        ));
        assert!(!result["message"]["text"].as_str().unwrap().is_empty());
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        assert!(
            !uri.starts_with('/') && !uri.contains(':'),
            "the URI is relative: {uri}"
        );
        assert!(tree().join(uri).is_file(), "{uri} exists in the tree");
        assert!(location["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(location["region"]["startColumn"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn github_annotations_are_workflow_commands() {
    let run = lint(&["--format", "github"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let (summary, commands) = lines.split_last().unwrap();
    assert!(summary.starts_with("vexil lint: "));
    for line in commands {
        assert!(
            line.starts_with("::error file=") || line.starts_with("::warning file="),
            "{line}"
        );
        let (props, message) = line.split_once("::").unwrap().1.split_once("::").unwrap();
        assert!(
            props.contains(",line=") && props.contains(",col="),
            "{line}"
        );
        assert!(!message.is_empty());
    }
}

#[test]
fn only_warnings_exit_0() {
    let run = lint(&["src/go", "src/java"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(run.stdout.contains("warning"), "{}", run.render());
    assert!(!run.stdout.contains("error "), "{}", run.render());
}

#[test]
fn the_date_and_the_window_are_injectable() {
    let report = |today: &str, extra: &[&str]| {
        let run = lint_on(today, &[&["--format", "json"], extra].concat());
        let report = json_of(&run);
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f["rule"].as_str().unwrap(),
                    f["flag"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    let base = report(TODAY, &[]);
    assert!(base.contains(&"expiring-flag search_v2".to_owned()));
    // A window of 3 days no longer reaches search_v2 (expiring on 2026-03-27).
    let narrow = report(TODAY, &["--expiring-within", "3"]);
    assert!(!narrow.iter().any(|f| f.starts_with("expiring-flag")));
    // A week later, search_v2 has expired and its references are errors.
    let later = report("2026-03-28", &[]);
    assert!(
        later.contains(&"expired-flag search_v2".to_owned()),
        "{later:?}"
    );
    // Before old_banner's expiry date, its references are fine.
    let earlier = report("2026-02-01", &[]);
    assert!(
        !earlier.iter().any(|f| f.starts_with("expired-flag")),
        "{earlier:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for (name, today, args) in [
        ("missing_path", TODAY, vec!["no/such/dir"]),
        ("bad_date", "20.03.2026", vec![]),
        ("bad_format", TODAY, vec!["--format", "xml"]),
        ("missing_config", TODAY, vec!["--config", "no-such.yaml"]),
    ] {
        let run = lint_on(today, &args);
        assert_eq!(run.code, 2, "{}", run.render());
        insta::assert_snapshot!(format!("usage__{name}"), run.render());
    }
    // No flags given and no flags.yaml in the directory.
    let run = vexil_in(&tree().join("src"), &["lint", "--today", TODAY]);
    assert_eq!(run.code, 2, "{}", run.render());
    insta::assert_snapshot!("usage__no_flags", run.render());
}

#[test]
fn an_invalid_flag_file_exits_1() {
    let run = vexil_in(
        crate_dir(),
        &[
            "lint",
            "--flags",
            "tests/fixtures/invalid/unknown-variant-serve.yaml",
            "--today",
            TODAY,
            "tests/fixtures/lint/src/go",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.render());
    insta::assert_snapshot!("invalid_flag_file", run.render());
}

#[test]
fn an_unreachable_server_exits_2() {
    // Port 9 (discard) on loopback: nothing listens there in a test environment.
    let run = vexil_in(
        &tree(),
        &[
            "lint",
            "--server",
            "http://127.0.0.1:9",
            "--key",
            "k",
            "--today",
            TODAY,
        ],
    );
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr
            .contains("cannot reach the server at http://127.0.0.1:9"),
        "{}",
        run.render()
    );
}

/// Flags from a server: the whole configuration with an admin key, the key's environment with
/// a server key; the findings are those of the file, less the flag file's positions.
#[test]
fn flags_from_a_server() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let url = server.base_url().to_owned();
    write_ignored_file();

    let import = vexil_in(
        &tree(),
        &["import", "flags.yaml", "--server", &url, "--key", ADMIN_KEY],
    );
    assert_eq!(import.code, 0, "{}", import.render());

    // The flag file is not searched when the flags come from a server, so the searched paths
    // leave it out.
    let from_file = json_of(&lint(&["--format", "json", "src", "config"]));
    let strip = |mut report: Value| {
        for f in report["findings"].as_array_mut().unwrap() {
            if f["file"] == "flags.yaml" {
                for field in ["file", "line", "column"] {
                    f[field] = Value::Null;
                }
            }
        }
        let mut findings = report["findings"].as_array().unwrap().clone();
        findings.sort_by_key(|f| f.to_string());
        (findings, report["references"].clone())
    };
    let args = |key: &str| {
        vec![
            "lint".to_owned(),
            "--server".into(),
            url.clone(),
            "--key".into(),
            key.to_owned(),
            "--today".into(),
            TODAY.into(),
            "src".into(),
            "config".into(),
            "--format".into(),
            "json".into(),
        ]
    };

    let run = vexil_in(&tree(), &args(ADMIN_KEY));
    assert_eq!(run.code, 1, "{}", run.render());
    let from_admin = json_of(&run);
    assert_eq!(from_admin["flags_from"], format!("{url}/api/v1/export"));
    assert_eq!(strip(from_admin.clone()), strip(from_file.clone()));

    // A server key: the SDK's view of its environment, which has the same flags.
    let created = vexil_in(
        &tree(),
        &[
            "keys",
            "create",
            "lint-ci",
            "--kind",
            "server",
            "--env",
            "production",
            "--json",
            "--server",
            &url,
            "--key",
            ADMIN_KEY,
        ],
    );
    assert_eq!(created.code, 0, "{}", created.render());
    let secret = json_of(&created)["secret"].as_str().unwrap().to_owned();
    let run = vexil_in(&tree(), &args(&secret));
    assert_eq!(run.code, 1, "{}", run.render());
    let from_sdk = json_of(&run);
    assert_eq!(from_sdk["flags_from"], format!("{url}/sdk/v1/flags"));
    assert_eq!(strip(from_sdk), strip(from_file));

    // A text report names the server where the flag file's positions would be.
    let mut text_args = args(ADMIN_KEY);
    text_args.truncate(9);
    let run = vexil_in(&tree(), &text_args);
    assert!(
        run.stdout
            .contains(&format!("flags from {url}/api/v1/export\n  -  warning")),
        "{}",
        run.render()
    );

    // A key the server does not know: exit 2 with the server's words.
    let run = vexil_in(&tree(), &args("not-a-key"));
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(run.stderr.contains("401"), "{}", run.render());
}

#[test]
fn a_config_file_excludes_paths_and_sets_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lint.yaml");
    std::fs::write(
        &config,
        "exclude: [\"src/rust/**\", \"*.kt\"]\nexpiring_within: 3\naccessors: [feature]\n",
    )
    .unwrap();
    let run = lint(&["--format", "json", "--config", config.to_str().unwrap()]);
    let report = json_of(&run);
    let files: Vec<&str> = report["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert!(
        !files
            .iter()
            .any(|f| f.starts_with("src/rust/") || f.ends_with(".kt")),
        "{files:?}"
    );
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(!rules.contains(&"expiring-flag"), "{rules:?}");
    // This configuration replaces the tree's own: no PHP pattern, no `isOn` accessor.
    assert!(!files.iter().any(|f| f.ends_with(".php")), "{files:?}");

    // An invalid configuration is bad usage.
    std::fs::write(&config, "patterns:\n  - regex: 'no group'\n").unwrap();
    let run = lint(&["--config", config.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr.contains("has no capture group"),
        "{}",
        run.render()
    );
    std::fs::write(&config, "patern: []\n").unwrap();
    let run = lint(&["--config", config.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr.contains("unknown field `patern`"),
        "{}",
        run.render()
    );
}
