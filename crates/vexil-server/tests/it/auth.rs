//! The authorization matrix: every route of PRODUCT.md section 2 (but `/sdk/v1/*` and `/`)
//! × every kind of caller.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN, Server};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    UnknownKey,
    Client,
    ServerKey,
    Admin,
}

const EVERYONE: [Who; 5] = [
    Who::Nobody,
    Who::UnknownKey,
    Who::Client,
    Who::ServerKey,
    Who::Admin,
];

/// Which callers a route lets in.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// No key needed.
    Public,
    /// Any valid key (evaluation).
    AnyKey,
    /// Admin keys only.
    AdminOnly,
}

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    access: Access,
    /// The status an admin gets (the route does its work).
    admin_status: u16,
}

fn case(
    method: Method,
    path: &str,
    body: Option<Value>,
    access: Access,
    admin_status: u16,
) -> Case {
    Case {
        method,
        path: path.to_owned(),
        body,
        access,
        admin_status,
    }
}

/// The environment the client and server keys are scoped to.
const ENV_A: &str = "staging";
/// Another environment.
const ENV_B: &str = "production";

#[tokio::test]
async fn every_route_for_every_caller() {
    let s = Server::start().await;
    s.put_flag(
        "f",
        json!({"targets": {"on": ["vip"]}, "environments": {"staging": "on"}}),
    )
    .await;
    s.put_flag("doomed", json!(true)).await;
    s.put_segment("seg", json!({"include": ["u1"]})).await;
    s.put_segment("doomed_seg", json!({"include": ["u2"]}))
        .await;
    let client = s.create_key("client", Some(ENV_A)).await;
    let server = s.create_key("server", Some(ENV_A)).await;
    let (spare_id, _) = s.create_named_key("spare", "server", Some(ENV_B)).await;
    let export = s.admin().get("/api/v1/export").send().await.json();

    use Access::*;
    let cases = [
        case(Method::GET, "/healthz", None, Public, 200),
        case(Method::GET, "/readyz", None, Public, 200),
        case(Method::GET, "/metrics", None, Public, 200),
        case(Method::GET, "/openapi.json", None, Public, 200),
        case(Method::GET, "/flags/f?user_id=u1", None, AnyKey, 200),
        case(
            Method::POST,
            "/ofrep/v1/evaluate/flags/f",
            Some(json!({"context": {"targetingKey": "u1"}})),
            AnyKey,
            200,
        ),
        case(
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            Some(json!({"context": {}})),
            AnyKey,
            200,
        ),
        case(
            Method::PUT,
            "/flags/f",
            Some(json!({"enabled": true})),
            AdminOnly,
            200,
        ),
        case(
            Method::PUT,
            "/flags/f?env=staging",
            Some(json!({"percentage": 20})),
            AdminOnly,
            200,
        ),
        case(Method::GET, "/api/v1/flags", None, AdminOnly, 200),
        case(Method::GET, "/api/v1/flags/f", None, AdminOnly, 200),
        case(
            Method::PUT,
            "/api/v1/flags/g",
            Some(json!({"serve": "on"})),
            AdminOnly,
            201,
        ),
        case(Method::DELETE, "/api/v1/flags/doomed", None, AdminOnly, 204),
        case(
            Method::POST,
            "/api/v1/flags/f/environments/production/disable",
            None,
            AdminOnly,
            200,
        ),
        case(
            Method::POST,
            "/api/v1/flags/f/environments/production/enable",
            None,
            AdminOnly,
            200,
        ),
        case(Method::GET, "/api/v1/flags/f/history", None, AdminOnly, 200),
        case(
            Method::POST,
            "/api/v1/flags/f/revert",
            Some(json!({"version": 1})),
            AdminOnly,
            200,
        ),
        case(
            Method::POST,
            "/api/v1/flags/f/explain",
            Some(json!({"context": {"targetingKey": "u"}})),
            AdminOnly,
            200,
        ),
        case(Method::GET, "/api/v1/segments", None, AdminOnly, 200),
        case(Method::GET, "/api/v1/segments/seg", None, AdminOnly, 200),
        case(
            Method::PUT,
            "/api/v1/segments/seg2",
            Some(json!({"include": ["u3"]})),
            AdminOnly,
            201,
        ),
        case(
            Method::DELETE,
            "/api/v1/segments/doomed_seg",
            None,
            AdminOnly,
            204,
        ),
        case(Method::GET, "/api/v1/environments", None, AdminOnly, 200),
        case(
            Method::POST,
            "/api/v1/environments",
            Some(json!({"name": "qa"})),
            AdminOnly,
            201,
        ),
        case(Method::GET, "/api/v1/keys", None, AdminOnly, 200),
        case(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"name": "new", "kind": "client", "environment": ENV_A})),
            AdminOnly,
            201,
        ),
        case(
            Method::DELETE,
            &format!("/api/v1/keys/{spare_id}"),
            None,
            AdminOnly,
            204,
        ),
        case(Method::GET, "/api/v1/audit", None, AdminOnly, 200),
        case(Method::GET, "/api/v1/export", None, AdminOnly, 200),
        case(
            Method::POST,
            "/api/v1/import?dry_run=true",
            Some(export.clone()),
            AdminOnly,
            200,
        ),
        case(Method::POST, "/api/v1/import", Some(export), AdminOnly, 200),
    ];
    // Every routed path is in the table.
    for path in crate::routes::ROUTE_PATHS {
        let covered = cases.iter().any(|c| template_matches(path, &c.path));
        assert!(covered, "the matrix lacks {path}");
    }

    let mut failures = Vec::new();
    for c in &cases {
        // Callers that are refused come first, so the admin's write happens last and the
        // refusals can be checked to write nothing.
        let before = s.revision().await;
        for who in EVERYONE {
            let caller = match who {
                Who::Nobody => s.anonymous(),
                Who::UnknownKey => s.bearer("vexil_admin_0000000000000000000000000000000000000000"),
                Who::Client => s.bearer(&client),
                Who::ServerKey => s.bearer(&server),
                Who::Admin => s.bearer(ADMIN),
            };
            let mut call = caller.call(c.method.clone(), &c.path);
            if let Some(body) = &c.body {
                call = call.json(body);
            }
            let r = call.send().await;
            let (expected, code) = match (c.access, who) {
                (Access::Public, _) => (200, None),
                (_, Who::Nobody | Who::UnknownKey) => (401, Some("unauthorized")),
                (Access::AnyKey, _) => (200, None),
                (Access::AdminOnly, Who::Client | Who::ServerKey) => (403, Some("forbidden")),
                (Access::AdminOnly, Who::Admin) => (c.admin_status, None),
            };
            if r.status.as_u16() != expected {
                failures.push(format!(
                    "{} {} as {who:?}: expected {expected}, got {r}",
                    c.method, c.path
                ));
                continue;
            }
            if let Some(code) = code {
                r.assert_error(expected, code);
                if expected == 401 {
                    assert!(
                        r.header("www-authenticate").is_some(),
                        "{} {}: 401 names the scheme",
                        c.method,
                        c.path
                    );
                }
            }
            if who != Who::Admin {
                assert_eq!(
                    s.revision().await,
                    before,
                    "{} {} as {who:?} wrote something",
                    c.method,
                    c.path
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization failures:\n{}",
        failures.join("\n")
    );
}

/// Whether a concrete path (with a query) is an instance of a route template.
fn template_matches(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

#[tokio::test]
async fn scoped_keys_evaluate_only_their_own_environment() {
    let s = Server::start().await;
    s.put_flag(
        "f",
        json!({"serve": "off", "environments": {"staging": "on"}}),
    )
    .await;
    let client = s.create_key("client", Some(ENV_A)).await;
    let server = s.create_key("server", Some(ENV_A)).await;

    for (name, key) in [("client", &client), ("server", &server)] {
        for env in [None, Some(ENV_A), Some(ENV_B), Some("moon")] {
            let q = env.map_or(String::new(), |e| format!("?env={e}"));
            let calls = [
                s.bearer(key).get(&format!("/flags/f{q}")),
                s.bearer(key)
                    .post(&format!("/ofrep/v1/evaluate/flags/f{q}"))
                    .json(&json!({"context": {}})),
                s.bearer(key)
                    .post(&format!("/ofrep/v1/evaluate/flags{q}"))
                    .json(&json!({"context": {}})),
            ];
            for (i, call) in calls.into_iter().enumerate() {
                let r = call.send().await;
                match env {
                    None | Some(ENV_A) => {
                        r.assert_status(200);
                        let v = r.json();
                        let value = if i == 2 {
                            v["flags"][0]["value"].clone()
                        } else {
                            v["value"].clone()
                        };
                        assert_eq!(
                            value,
                            json!(true),
                            "{name} key, env {env:?}: served its own environment: {v}"
                        );
                    }
                    Some(_) => {
                        r.assert_error(403, "forbidden");
                    }
                }
            }
        }
    }

    // Admin keys choose.
    for (env, value) in [(None, false), (Some(ENV_A), true), (Some(ENV_B), false)] {
        let q = env.map_or(String::new(), |e| format!("?env={e}"));
        let r = s.admin().get(&format!("/flags/f{q}")).send().await;
        r.assert_status(200);
        assert_eq!(r.json()["value"], json!(value), "{env:?}");
    }
}

#[tokio::test]
async fn malformed_credentials_are_unauthorized() {
    let s = Server::start().await;
    s.put_flag("f", json!(true)).await;
    for (header, value) in [
        ("authorization", "Bearer"),
        ("authorization", "Bearer "),
        ("authorization", &format!("Basic {ADMIN}")),
        ("authorization", ADMIN),
        ("x-api-key", ""),
        ("x-api-key", "nope"),
    ] {
        let r = s
            .anonymous()
            .get("/api/v1/flags")
            .header(header, value)
            .send()
            .await;
        r.assert_error(401, "unauthorized");
    }
}
