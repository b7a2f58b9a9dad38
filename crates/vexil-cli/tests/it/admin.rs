//! The admin commands (`vexil flags …`, `vexil keys …`, `vexil export`, `vexil import`) end to
//! end against a real `vexil serve`: a flag created, disabled and enabled with the kill switch,
//! its rollout changed, its history read and an old version restored; the configuration
//! exported, imported dry and for real; a key created, used and revoked; and the server's errors
//! shown in its own words with the exit codes of PRODUCT.md section 3.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::Run;
use super::server_process::{ADMIN_KEY, Server};

/// Runs `vexil ARGS…` against `server` (through `VEXIL_SERVER` and `VEXIL_KEY`) in `dir`, with
/// `stdin` as standard input.
fn vexil_with(server: &str, key: &str, dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vexil"))
        .args(args)
        .current_dir(dir)
        .env("VEXIL_SERVER", server)
        .env("VEXIL_KEY", key)
        .env_remove("VEXIL_ENV")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the vexil binary runs");
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
    }
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    }
}

/// A server and a scratch directory for the files the commands read and write.
struct Fixture {
    server: Server,
    dir: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let data = tempfile::tempdir().unwrap();
        let server = Server::start(data.path());
        Fixture {
            server,
            dir: tempfile::tempdir().unwrap(),
            _data: data,
        }
    }

    /// `vexil ARGS…` with the admin key; must exit 0.
    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args, None);
        assert_eq!(run.code, 0, "{}", run.render());
        run
    }

    /// `vexil ARGS… --json` with the admin key; must exit 0; its JSON.
    fn json(&self, args: &[&str]) -> Value {
        let run = self.ok(&[args, &["--json"]].concat());
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", run.render()))
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        vexil_with(
            self.server.base_url(),
            ADMIN_KEY,
            self.dir.path(),
            args,
            stdin,
        )
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    /// The audit events of a flag, newest first, over HTTP.
    fn audit(&self, flag: &str) -> Vec<Value> {
        let api = self.server.admin();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let body = runtime.block_on(api.get(&format!("/api/v1/audit?flag={flag}")));
        body["events"].as_array().unwrap().clone()
    }
}

const DEFINITION: &str = "\
description: New checkout flow
kind: release
owner: payments-team
expires: 2026-09-30
rollout: 10
";

#[test]
fn a_flag_from_creation_to_revert() {
    let f = Fixture::new();
    insta::assert_snapshot!("list_empty", f.ok(&["flags", "list"]).render());

    // Create from a YAML file.
    f.write("new_checkout.yaml", DEFINITION);
    let run = f.ok(&["flags", "set", "new_checkout", "new_checkout.yaml"]);
    assert_eq!(run.stdout, "created flag `new_checkout` (version 1)\n");
    let flag = f.json(&["flags", "get", "new_checkout"]);
    assert_eq!(flag["version"], 1);
    assert_eq!(flag["definition"]["rollout"], 10);
    assert_eq!(flag["definition"]["expires"], "2026-09-30");

    // The kill switch, with a comment for the audit log.
    let run = f.ok(&[
        "flags",
        "disable",
        "new_checkout",
        "--env",
        "production",
        "--comment",
        "incident 42",
    ]);
    assert_eq!(
        run.stdout,
        "flag `new_checkout` disabled in production (version 2)\n"
    );
    let flag = f.json(&["flags", "get", "new_checkout"]);
    assert_eq!(
        flag["definition"]["environments"]["production"]["enabled"],
        false
    );
    let events = f.audit("new_checkout");
    assert_eq!(events[0]["action"], "flag.disable");
    assert_eq!(events[0]["comment"], "incident 42");
    insta::assert_snapshot!("list_disabled", f.ok(&["flags", "list"]).render());

    let run = f.ok(&["flags", "enable", "new_checkout", "--env", "production"]);
    assert_eq!(
        run.stdout,
        "flag `new_checkout` enabled in production (version 3)\n"
    );
    let flag = f.json(&["flags", "get", "new_checkout"]);
    assert!(flag["definition"].get("environments").is_none(), "{flag}");

    // A rollout change, as JSON on standard input, guarded by If-Match.
    let mut definition = flag["definition"].clone();
    definition["rollout"] = json!(50);
    let run = f.run(
        &["flags", "set", "new_checkout", "-", "--if-match", "3"],
        Some(&definition.to_string()),
    );
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(run.stdout, "updated flag `new_checkout` (version 4)\n");
    assert_eq!(
        f.json(&["flags", "get", "new_checkout"])["definition"]["rollout"],
        50
    );

    // A stale If-Match: refused, in the server's words; exit 1.
    let run = f.run(
        &[
            "flags",
            "set",
            "new_checkout",
            "new_checkout.yaml",
            "--if-match",
            "1",
        ],
        None,
    );
    assert_eq!(run.code, 1, "{}", run.render());
    insta::assert_snapshot!("stale_if_match", run.render());

    // History: every version, oldest first.
    let history = f.json(&["flags", "history", "new_checkout"]);
    let versions: Vec<u64> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    let table = f.ok(&["flags", "history", "new_checkout"]).stdout;
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("VERSION  UPDATED"), "{table}");
    assert_eq!(rows.len(), 5, "{table}");
    let changes: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.split("  admin  ").nth(1).unwrap_or(r))
        .collect();
    assert_eq!(
        changes,
        [
            "created",
            "environments.production: - → {\"enabled\":false}",
            "environments.production: {\"enabled\":false} → -",
            "rollout: 10 → 50",
        ],
        "{table}"
    );

    // Revert to version 1: a new version 5 equal to it.
    let run = f.ok(&["flags", "revert", "new_checkout", "1"]);
    assert_eq!(
        run.stdout,
        "reverted flag `new_checkout` to version 1; it is now version 5\n"
    );
    let v1 = &history["versions"][0]["definition"];
    let now = f.json(&["flags", "get", "new_checkout"]);
    assert_eq!(now["version"], 5);
    assert_eq!(&now["definition"], v1);

    let get = f.ok(&["flags", "get", "new_checkout"]).stdout;
    assert!(
        get.starts_with("new_checkout: version 5, updated "),
        "{get}"
    );
    assert!(
        get.contains("development enabled, staging enabled, production enabled"),
        "{get}"
    );

    // Delete.
    let run = f.ok(&["flags", "delete", "new_checkout"]);
    assert_eq!(run.stdout, "deleted flag `new_checkout`\n");
    let run = f.run(&["flags", "get", "new_checkout"], None);
    assert_eq!(run.code, 1, "{}", run.render());
    insta::assert_snapshot!("get_missing", run.render());
}

#[test]
fn invalid_input_is_shown_as_the_server_phrased_it() {
    let f = Fixture::new();
    f.write(
        "bad.yaml",
        "kind: release\nrollout: {on: 60, off: 30}\nrules:\n  - when: [{attribute: plan, op: sounds_like, values: [pro]}]\n    serve: maybe\n",
    );
    let run = f.run(&["flags", "set", "bad_flag", "bad.yaml"], None);
    assert_eq!(run.code, 1, "{}", run.render());
    insta::assert_snapshot!("invalid_definition", run.render());

    // Not even YAML: the CLI says where, before any request.
    f.write("broken.yaml", "kind: [release\n");
    let run = f.run(&["flags", "set", "bad_flag", "broken.yaml"], None);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(
        run.stderr.starts_with("error: broken.yaml:"),
        "{}",
        run.render()
    );

    // Bad usage: exit 2.
    let run = f.run(&["flags", "get", "../etc"], None);
    assert_eq!(run.code, 2, "{}", run.render());
    let run = f.run(&["flags", "enable", "x"], None);
    assert_eq!(run.code, 2, "--env is required: {}", run.render());
    let run = f.run(&["flags", "set", "x", "no-such-file.yaml"], None);
    assert_eq!(run.code, 2, "{}", run.render());
}

#[test]
fn export_and_import() {
    let f = Fixture::new();
    f.write(
        "a.yaml",
        "owner: team-a\nexpires: 2026-12-01\nrollout: 30\n",
    );
    f.ok(&["flags", "set", "alpha", "a.yaml"]);
    // A shorthand flag, from standard input.
    let run = f.run(&["flags", "set", "beta", "-"], Some("true"));
    assert_eq!(run.code, 0, "{}", run.render());

    let exported = f.ok(&["export"]).stdout;
    let doc: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(doc["flags"]["alpha"]["rollout"], 30);
    assert_eq!(doc["flags"]["beta"], true);
    f.ok(&["export", "--output", "backup.json"]);
    let backup: Value =
        serde_json::from_str(&std::fs::read_to_string(f.dir.path().join("backup.json")).unwrap())
            .unwrap();
    assert_eq!(backup, doc);

    // The next configuration: alpha changed, beta removed, gamma added, an environment added.
    f.write(
        "next.yaml",
        "environments: [development, staging, production, qa]\nflags:\n  alpha: {owner: team-a, expires: 2026-12-01, rollout: 60}\n  gamma: false\n",
    );
    let dry = f.ok(&["import", "--dry-run", "next.yaml"]);
    insta::assert_snapshot!("import_dry_run", dry.render());
    // Nothing was written.
    let after_dry: Value = serde_json::from_str(&f.ok(&["export"]).stdout).unwrap();
    assert_eq!(after_dry, doc);

    let real = f.ok(&["import", "next.yaml"]);
    assert!(
        real.stdout
            .contains("flags: 1 added (gamma), 1 changed (alpha), 1 removed (beta)"),
        "{}",
        real.render()
    );
    assert!(
        real.stdout.contains("environments added: qa"),
        "{}",
        real.render()
    );
    let list = f.json(&["flags", "list"]);
    let keys: Vec<&str> = list["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["alpha", "gamma"]);
    insta::assert_snapshot!("list_after_import", f.ok(&["flags", "list"]).render());

    // The backup, as JSON on standard input, brings the first state back.
    let run = f.run(&["import", "-"], Some(&exported));
    assert_eq!(run.code, 0, "{}", run.render());
    let restored: Value = serde_json::from_str(&f.ok(&["export"]).stdout).unwrap();
    assert_eq!(restored["flags"], doc["flags"]);

    // An invalid document changes nothing and exits 1.
    f.write("invalid.yaml", "flags:\n  alpha: {rollout: 150}\n");
    let run = f.run(&["import", "--dry-run", "invalid.yaml"], None);
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(run.stderr.starts_with("error: "), "{}", run.render());
}

#[test]
fn a_key_created_used_and_revoked() {
    let f = Fixture::new();
    f.write("flag.yaml", "kind: ops\nowner: sre\nserve: on\n");
    f.ok(&["flags", "set", "kill_payments", "flag.yaml"]);

    let created = f.json(&[
        "keys",
        "create",
        "ci-lint",
        "--kind",
        "server",
        "--env",
        "production",
    ]);
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(created["kind"], "server");
    assert_eq!(created["environment"], "production");

    let human = f.ok(&["keys", "create", "ops-admin", "--kind", "admin"]);
    assert!(
        human
            .stdout
            .starts_with("created admin key `ops-admin` (id "),
        "{}",
        human.render()
    );
    assert!(
        human.stdout.contains("secret, shown this once only:\n"),
        "{}",
        human.render()
    );

    let list = f.ok(&["keys", "list"]).stdout;
    assert!(list.starts_with("ID  "), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.contains("ci-lint") && l.contains("production")),
        "{list}"
    );

    // The new key at work: a server key may read its environment's flags (lint does)...
    let src = f.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("app.py"),
        "client.get_boolean_value(\"kill_payments\", True)\n",
    )
    .unwrap();
    let lint = vexil_with(
        f.server.base_url(),
        &secret,
        f.dir.path(),
        &["lint", "--today", "2026-03-20", "src"],
        None,
    );
    assert_eq!(lint.code, 0, "{}", lint.render());
    assert!(
        lint.stdout.contains("1 reference to 1 of 1 flag"),
        "{}",
        lint.render()
    );
    // ...but is no admin key.
    let denied = vexil_with(
        f.server.base_url(),
        &secret,
        f.dir.path(),
        &["flags", "list"],
        None,
    );
    assert_eq!(denied.code, 2, "{}", denied.render());
    assert!(
        denied.stderr.contains("(403 Forbidden, forbidden)"),
        "{}",
        denied.render()
    );

    let run = f.ok(&["keys", "revoke", &id]);
    assert_eq!(run.stdout, format!("revoked key {id}\n"));
    let revoked = vexil_with(
        f.server.base_url(),
        &secret,
        f.dir.path(),
        &["lint", "--today", "2026-03-20", "src"],
        None,
    );
    assert_eq!(revoked.code, 2, "{}", revoked.render());
    assert!(revoked.stderr.contains("401"), "{}", revoked.render());
}

#[test]
fn no_server_or_an_unreachable_one_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_vexil"))
        .args(["flags", "list"])
        .current_dir(dir.path())
        .env_remove("VEXIL_SERVER")
        .env_remove("VEXIL_KEY")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        "error: no server: pass --server URL or set VEXIL_SERVER\n"
    );

    let run = vexil_with(
        "http://127.0.0.1:9",
        "k",
        dir.path(),
        &["keys", "list"],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr
            .starts_with("error: cannot reach the server at http://127.0.0.1:9: "),
        "{}",
        run.render()
    );
    let run = vexil_with("ftp://example", "k", dir.path(), &["export"], None);
    assert_eq!(run.code, 2, "{}", run.render());
}

#[test]
fn every_command_has_help() {
    for args in [
        &["flags", "--help"][..],
        &["flags", "list", "--help"],
        &["flags", "get", "--help"],
        &["flags", "set", "--help"],
        &["flags", "delete", "--help"],
        &["flags", "enable", "--help"],
        &["flags", "disable", "--help"],
        &["flags", "history", "--help"],
        &["flags", "revert", "--help"],
        &["keys", "create", "--help"],
        &["keys", "list", "--help"],
        &["keys", "revoke", "--help"],
        &["export", "--help"],
        &["import", "--help"],
        &["lint", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_vexil"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "vexil {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
