//! A real OpenFeature client against `vexil serve`: the OpenFeature Python SDK with its OFREP
//! provider, both from PyPI and unchanged, driven by `tests/ofrep/client.py`. The server is the
//! real binary; the flags are created through the admin API; the client evaluates them with a
//! client key and prints what the SDK reports, which is checked here case by case.
//!
//! The Python interpreter is named by `VEXIL_TEST_PYTHON` (it needs `openfeature-sdk` and
//! `openfeature-provider-ofrep`; CI installs them). Without it the test is skipped, unless
//! `VEXIL_REQUIRE_OFREP=1`, which makes a missing interpreter a failure.

use std::ffi::OsString;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::server_process::{Api, Server};

/// How long the Python client may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// How the test finds its Python.
struct PythonSetup {
    /// `VEXIL_TEST_PYTHON`: the interpreter to run the client with.
    python: Option<OsString>,
    /// `VEXIL_REQUIRE_OFREP=1`: skipping is a failure.
    required: bool,
}

/// Reads `VEXIL_TEST_PYTHON` and `VEXIL_REQUIRE_OFREP`.
// The workspace bans reading the environment so that the binaries take their configuration
// through clap, in one place. A test has no command line of its own: these two variables are how
// CI and developers opt in to a test that needs an interpreter outside the Rust toolchain, and
// this is the one place they are read.
#[allow(clippy::disallowed_methods)]
fn python_setup() -> PythonSetup {
    PythonSetup {
        python: std::env::var_os("VEXIL_TEST_PYTHON").filter(|p| !p.is_empty()),
        required: std::env::var("VEXIL_REQUIRE_OFREP").is_ok_and(|v| v.trim() == "1"),
    }
}

/// The flags the client evaluates, by key (section-1 JSON).
fn flags() -> Vec<(&'static str, Value)> {
    vec![
        ("ofrep_bool", json!({"serve": "on"})),
        (
            "ofrep_string",
            json!({"variants": {"blue": "#0055ff", "green": "#00aa55"}, "off": "blue", "serve": "green"}),
        ),
        (
            "ofrep_int",
            json!({"variants": {"small": 10, "large": 1000}, "off": "small", "serve": "large"}),
        ),
        (
            "ofrep_float",
            json!({"variants": {"low": 0.25, "high": 0.75}, "off": "low", "serve": "high"}),
        ),
        (
            "ofrep_object",
            json!({
                "variants": {
                    "compact": {"columns": 1, "theme": {"dark": false}},
                    "wide": {"columns": 3, "theme": {"dark": true}, "labels": ["a", "b"]},
                },
                "off": "compact",
                "serve": "wide",
            }),
        ),
        (
            "ofrep_targeting",
            json!({
                "rules": [{
                    "name": "enterprise",
                    "when": [
                        {"attribute": "plan", "op": "in", "values": ["enterprise"]},
                        {"attribute": "country", "op": "in", "values": ["DE", "FR"]},
                    ],
                    "serve": "on",
                }],
                "serve": "off",
            }),
        ),
        // The shared bucketing vectors put `new_checkout:user-1` in bucket 4178 and
        // `new_checkout:user-2` in bucket 84792: `on` and `off` of a 50% rollout.
        ("new_checkout", json!({"rollout": 50})),
        (
            "ofrep_disabled",
            json!({"variants": {"old": "v1", "new": "v2"}, "off": "old", "serve": "new"}),
        ),
        ("ofrep_base", json!({"serve": "off"})),
        (
            "ofrep_dependent",
            json!({"prerequisites": [{"flag": "ofrep_base"}], "serve": "on"}),
        ),
    ]
}

/// What the client must report for each of its cases: value, variant, reason, error code.
fn expected() -> Vec<(&'static str, Value)> {
    let ok = |value: Value, variant: &str, reason: &str| json!({"value": value, "variant": variant, "reason": reason, "error_code": null});
    let error = |value: Value, code: &str| json!({"value": value, "variant": null, "reason": "ERROR", "error_code": code});
    vec![
        ("boolean", ok(json!(true), "on", "STATIC")),
        ("string", ok(json!("#00aa55"), "green", "STATIC")),
        ("integer", ok(json!(1000), "large", "STATIC")),
        ("float", ok(json!(0.75), "high", "STATIC")),
        (
            "object",
            ok(
                json!({"columns": 3, "theme": {"dark": true}, "labels": ["a", "b"]}),
                "wide",
                "STATIC",
            ),
        ),
        ("targeting_match", ok(json!(true), "on", "TARGETING_MATCH")),
        ("targeting_miss", ok(json!(false), "off", "DEFAULT")),
        ("rollout_in", ok(json!(true), "on", "SPLIT")),
        ("rollout_out", ok(json!(false), "off", "SPLIT")),
        // The caller's default comes back.
        ("unknown", error(json!("fallback"), "FLAG_NOT_FOUND")),
        ("disabled", ok(json!("v1"), "old", "DISABLED")),
        // A failed prerequisite serves the `off` variant; OFREP names only OpenFeature's reasons,
        // and the server says DEFAULT (the caller's default, `true`, must not come back).
        ("prerequisite_failed", ok(json!(false), "off", "DEFAULT")),
        // A string flag asked for as a boolean: the SDK checks the type and keeps the default.
        ("type_mismatch", error(json!(true), "TYPE_MISMATCH")),
        ("no_context", ok(json!(true), "on", "STATIC")),
    ]
}

#[test]
fn openfeature_python_sdk_with_the_ofrep_provider() {
    let setup = python_setup();
    let Some(python) = setup.python else {
        assert!(
            !setup.required,
            "VEXIL_REQUIRE_OFREP=1 but VEXIL_TEST_PYTHON is not set: set it to a Python \
             interpreter with openfeature-sdk and openfeature-provider-ofrep installed (.ci/run \
             makes one in target/ofrep-venv)"
        );
        println!(
            "skipping the OpenFeature OFREP client test: VEXIL_TEST_PYTHON is not set (set it to a \
             Python interpreter with openfeature-sdk and openfeature-provider-ofrep installed, \
             and VEXIL_REQUIRE_OFREP=1 to make skipping an error)"
        );
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let secret = runtime.block_on(prepare(&server.admin()));

    let results = run_client(&python, server.base_url(), &secret, &server);
    let mut problems = Vec::new();
    let expected = expected();
    for (case, want) in &expected {
        let Some(got) = results.get(case) else {
            problems.push(format!("{case}: no result"));
            continue;
        };
        for field in ["value", "variant", "reason", "error_code"] {
            if got[field] != want[field] {
                problems.push(format!(
                    "{case}: {field} is {}, expected {} (the whole result: {got})",
                    got[field], want[field]
                ));
            }
        }
    }
    let known: Vec<&str> = expected.iter().map(|(case, _)| *case).collect();
    for case in results.as_object().unwrap().keys() {
        if !known.contains(&case.as_str()) {
            problems.push(format!("{case}: a result this test does not check"));
        }
    }
    assert!(
        problems.is_empty(),
        "the OpenFeature client disagrees:\n{}\nserver log:\n{}",
        problems.join("\n"),
        server.log()
    );
}

/// Creates the flags, switches `ofrep_disabled` off in `development`, and creates a client key
/// for `development`; returns its secret.
async fn prepare(admin: &Api) -> String {
    for (key, definition) in flags() {
        let reply = admin
            .send(
                Method::PUT,
                &format!("/api/v1/flags/{key}"),
                None,
                Some(&definition),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{key}: {}", reply.body);
    }
    let reply = admin
        .send(
            Method::POST,
            "/api/v1/flags/ofrep_disabled/environments/development/disable",
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let key = json!({"name": "openfeature python", "kind": "client", "environment": "development"});
    let reply = admin
        .send(Method::POST, "/api/v1/keys", None, Some(&key))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["secret"].as_str().unwrap().to_owned()
}

/// Runs `client.py BASE_URL KEY` with `python`, within [`CLIENT_TIMEOUT`], and parses the JSON
/// object it prints.
fn run_client(python: &OsString, base_url: &str, key: &str, server: &Server) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ofrep/client.py");
    let mut child = Command::new(python)
        .arg(&script)
        .arg(base_url)
        .arg(key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run VEXIL_TEST_PYTHON={}: {e}",
                python.to_string_lossy()
            )
        });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the OpenFeature client did not finish within {CLIENT_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    assert!(
        status.success(),
        "the OpenFeature client failed ({status}); is VEXIL_TEST_PYTHON={} an interpreter with \
         openfeature-sdk and openfeature-provider-ofrep?\nstdout:\n{stdout}\nstderr:\n{stderr}\n\
         server log:\n{}",
        python.to_string_lossy(),
        server.log()
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("the OpenFeature client printed no JSON object ({e}):\n{stdout}\nstderr:\n{stderr}")
    })
}
