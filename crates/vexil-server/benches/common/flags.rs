//! The realistic flags the server benchmarks use, shared by `benches/bulk.rs` and
//! `examples/loadtest.rs` (included with `#[path]`; not a benchmark of its own).

use serde_json::{Value, json};

/// The definition of flag number `i`: five shapes in turn.
pub fn flag(i: usize) -> (String, Value) {
    match i % 5 {
        0 => (
            format!("release_{i:05}"),
            json!({
                "description": "New checkout flow",
                "kind": "release",
                "owner": "payments-team",
                "tags": ["payments", "web"],
                "created": "2026-01-15",
                "expires": "2027-01-01",
                "ticket": format!("PAY-{i}"),
                "targets": {"on": ["user-1", "user-2", "user-3"]},
                "rules": [
                    {"name": "staff", "when": [{"segment": "internal"}], "serve": "on"},
                    {"when": [
                        {"attribute": "plan", "op": "in", "values": ["enterprise", "business"]},
                        {"attribute": "app_version", "op": "semver_gte", "values": ["2.3.0"]}
                    ], "serve": "on"},
                    {"when": [{"attribute": "country", "op": "in", "values": ["DE", "FR", "NL"]}],
                     "rollout": {"on": 10, "off": 90}}
                ],
                "rollout": 25,
                "environments": {
                    "development": "on",
                    "staging": {"serve": "on", "rules": []}
                }
            }),
        ),
        1 => (
            format!("experiment_{i:05}"),
            json!({
                "description": "Button colour experiment",
                "kind": "experiment",
                "owner": "growth-team",
                "expires": "2027-01-01",
                "variants": {"control": "#0055ff", "green": "#00aa55", "orange": "#ff8800"},
                "off": "control",
                "rollout": {"control": 34, "green": 33, "orange": 33},
                "bucket_by": "account_id"
            }),
        ),
        2 => (format!("dark_mode_{i:05}"), json!(true)),
        3 => (
            format!("limit_{i:05}"),
            json!({
                "description": "Upload size limit in MB",
                "kind": "permission",
                "variants": {"low": 10, "mid": 50, "high": 100},
                "off": "low",
                "rules": [
                    {"when": [{"attribute": "email", "op": "ends_with", "values": ["@company.com"], "ignore_case": true}],
                     "serve": "high"},
                    {"when": [{"attribute": "plan", "op": "in", "values": ["pro", "business", "enterprise"]}],
                     "serve": "mid"}
                ],
                "serve": "low"
            }),
        ),
        _ => (
            format!("kill_switch_{i:05}"),
            json!({
                "description": "Turns the recommendations service off",
                "kind": "ops",
                "owner": "sre",
                "serve": "on",
                "environments": {"production": {"enabled": false}}
            }),
        ),
    }
}
