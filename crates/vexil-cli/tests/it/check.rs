//! `vexil check`: every invalid fixture is rejected with exit code 1 and every problem listed,
//! each at its line and column; valid fixtures pass; usage errors exit 2.
//!
//! The invalid fixtures (`tests/fixtures/invalid/`) are one file per kind of problem of
//! PRODUCT.md section 1, named for the problem. Their snapshots show, below the output, each
//! reported position marked in the source, so a wrong line or column is plain to see in review.

use std::fmt::Write as _;
use std::path::Path;

use super::{crate_dir, vexil};

const INVALID: &str = "tests/fixtures/invalid";
const VALID: &str = "tests/fixtures/valid";

/// The fixture files of `dir` (relative to the crate), sorted by name.
fn fixtures(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(crate_dir().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".json"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures in {dir}");
    names
}

/// The snapshot name of a fixture: its file name without the extension.
fn stem(name: &str) -> &str {
    Path::new(name).file_stem().unwrap().to_str().unwrap()
}

/// The line, column and rest of a report `FILE:LINE:COLUMN: PATH: MESSAGE` about `file`.
fn position<'r>(file: &str, report: &'r str) -> Option<(usize, usize, &'r str)> {
    let rest = report.strip_prefix(file)?.strip_prefix(':')?;
    let mut parts = rest.splitn(3, ':');
    let line = parts.next()?.parse().ok()?;
    let column = parts.next()?.parse().ok()?;
    Some((line, column, parts.next()?.trim_start()))
}

/// Marks in the source of `file` every position the run's output reports, labelled with the
/// report's path (or the start of its message when it has no path).
fn mark_positions(file: &str, source: &str, stdout: &str) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = String::new();
    for (line, column, what) in stdout.lines().filter_map(|r| position(file, r)) {
        let label = what.split(": ").next().unwrap_or_default();
        let text = lines.get(line - 1).copied().unwrap_or_default();
        let gutter = " ".repeat(line.to_string().len());
        let indent = " ".repeat(column - 1);
        writeln!(out, "{line} | {text}\n{gutter} | {indent}^ {label}").unwrap();
    }
    out
}

#[test]
fn invalid_fixtures_list_every_problem_at_its_position() {
    let names = fixtures(INVALID);
    for name in &names {
        let file = format!("{INVALID}/{name}");
        let run = vexil(&["check", &file]);
        assert_eq!(run.code, 1, "{file} must be rejected:\n{}", run.render());
        let lines: Vec<&str> = run.stdout.lines().collect();
        let Some((summary, problems)) = lines.split_last() else {
            panic!("{file}: no output:\n{}", run.render());
        };
        assert!(
            summary.starts_with(&format!("{file}: ")) && summary.contains(" problem"),
            "{file}: the last line sums up: {summary}"
        );
        assert!(!problems.is_empty(), "{file}: no problem listed");
        for problem in problems {
            assert!(
                position(&file, problem).is_some(),
                "{file}: a problem without its file, line and column: {problem}"
            );
        }
        let source = std::fs::read_to_string(crate_dir().join(&file)).unwrap();
        let snapshot = format!(
            "{}--- positions\n{}",
            run.render(),
            mark_positions(&file, &source, &run.stdout)
        );
        insta::assert_snapshot!(format!("invalid__{}", stem(name)), snapshot);
    }
    // A renamed or removed fixture must not leave its snapshot behind.
    let snapshots = crate_dir().join("tests/it/snapshots");
    for entry in std::fs::read_dir(snapshots).unwrap() {
        let snap = entry.unwrap().file_name().into_string().unwrap();
        if let Some(fixture) = snap
            .strip_prefix("it__check__invalid__")
            .and_then(|s| s.strip_suffix(".snap"))
        {
            assert!(
                names.iter().any(|n| stem(n) == fixture),
                "snapshot {snap} has no fixture in {INVALID}"
            );
        }
    }
}

#[test]
fn valid_fixtures_pass() {
    for name in fixtures(VALID) {
        let run = vexil(&["check", &format!("{VALID}/{name}")]);
        assert_eq!(run.code, 0, "{}", run.render());
        insta::assert_snapshot!(format!("valid__{}", stem(&name)), run.render());
    }
}

#[test]
fn several_files_are_all_checked() {
    let run = vexil(&[
        "check",
        "tests/fixtures/valid/flags.json",
        "tests/fixtures/invalid/unknown-segment.yaml",
        "tests/fixtures/valid/product-example.yaml",
        "tests/fixtures/invalid/serve-and-rollout.yaml",
    ]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.render());
}

#[test]
fn json_format() {
    let run = vexil(&[
        "check",
        "--format",
        "json",
        "tests/fixtures/valid/flags.json",
        "tests/fixtures/invalid/many-problems.yaml",
    ]);
    assert_eq!(run.code, 1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report[0]["valid"], true);
    assert_eq!(report[1]["valid"], false);
    for problem in report[1]["problems"].as_array().unwrap() {
        assert!(
            problem["line"].is_u64() && problem["column"].is_u64(),
            "{problem}"
        );
    }
    insta::assert_snapshot!(run.render());
}

#[test]
fn usage_errors_exit_2() {
    for (name, args) in [
        (
            "missing_file",
            &["check", "tests/fixtures/no-such-file.yaml"][..],
        ),
        ("no_files", &["check"][..]),
        (
            "unknown_format",
            &[
                "check",
                "--format",
                "xml",
                "tests/fixtures/valid/flags.json",
            ][..],
        ),
    ] {
        let run = vexil(args);
        assert_eq!(run.code, 2, "{}", run.render());
        assert!(run.stdout.is_empty(), "{}", run.render());
        insta::assert_snapshot!(format!("usage__{name}"), run.render());
    }
    // Not a snapshot: clap's list of similar subcommands grows with the CLI.
    let run = vexil(&["chek", "flags.yaml"]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr.contains("unrecognized subcommand 'chek'"),
        "{}",
        run.render()
    );
}
