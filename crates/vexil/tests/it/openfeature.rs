//! The OpenFeature provider, through `open-feature`'s own client API: values, variants, reasons
//! and flag metadata for every type, every error code, context conversion and status.

use std::collections::HashMap;
use std::time::Duration;

use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue as Field, EvaluationErrorCode as Code,
    EvaluationReason, FlagMetadata, OpenFeature, StructValue, Value as OfValue,
};
use serde_json::json;
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vexil::openfeature::{VexilProvider, vexil_context};
use vexil::testing::TestClient;
use vexil::{Client, RemoteClient, Status};

use crate::harness::{Hang, TestServer};

/// The flags every local test evaluates: one of each type, each reason, a rule with a name.
fn flags() -> TestClient {
    TestClient::from_document(json!({
        "segments": {"staff": {"when": [
            {"attribute": "email", "op": "ends_with", "values": ["@company.com"]}]}},
        "flags": {
            "dark_mode": true,
            "new_checkout": {
                "rules": [
                    {"name": "staff", "when": [{"segment": "staff"}], "serve": "on"},
                    {"when": [{"attribute": "account.plan", "op": "in", "values": ["enterprise"]}],
                     "serve": "on"}
                ],
                "rollout": 50
            },
            "theme": {
                "variants": {"light": "#ffffff", "dark": "#000000"}, "off": "light",
                "targets": {"dark": ["user-1"]}, "serve": "light"
            },
            "limit": {"variants": {"low": 10, "high": 100}, "off": "low", "serve": "high"},
            "ratio": {"variants": {"half": 0.5, "one": 1}, "off": "one", "serve": "half"},
            "banner": {
                "variants": {
                    "plain": {"text": "Hello", "size": 3, "ratio": 0.5, "bold": false,
                              "tags": ["a", null, "b"], "style": {"color": "red", "gone": null}},
                    "none": {}
                },
                "off": "none", "serve": "plain"
            },
            "payments_api": {"enabled": false, "serve": "on"},
            "one_click": {
                "prerequisites": [{"flag": "payments_api", "variants": ["on"]}],
                "serve": "on"
            },
            "beta_access": {"rules": [{"when": [
                {"attribute": "roles", "op": "in", "values": ["beta"]},
                {"attribute": "signed_up", "op": "after", "values": ["2026-01-01T00:00:00Z"]},
                {"attribute": "age", "op": "gte", "values": [18]},
                {"attribute": "score", "op": "gt", "values": [0.5]},
                {"attribute": "verified", "op": "in", "values": [true]},
                {"attribute": "devices.ids", "op": "in", "values": ["d-2"]},
                {"attribute": "history.first_login", "op": "before",
                 "values": ["2026-02-01T00:00:00Z"]}
            ], "serve": "on"}], "serve": "off"}
        }
    }))
}

/// An OpenFeature client on a local API instance (not the process-wide singleton, so tests
/// running at once do not replace each other's provider).
async fn openfeature(provider: VexilProvider) -> open_feature::Client {
    let mut api = OpenFeature::default();
    api.set_provider(provider).await;
    api.create_client()
}

fn user(key: &str) -> EvaluationContext {
    EvaluationContext::default().with_targeting_key(key)
}

fn metadata(fields: &[(&str, open_feature::FlagMetadataValue)]) -> FlagMetadata {
    let mut m = FlagMetadata::default();
    for (k, v) in fields {
        m.add_value(*k, v.clone());
    }
    m
}

/// What a successful evaluation must say.
struct Expect<T> {
    value: T,
    variant: &'static str,
    reason: EvaluationReason,
    metadata: FlagMetadata,
}

fn expect<T>(value: T, variant: &'static str, reason: EvaluationReason) -> Expect<T> {
    Expect {
        value,
        variant,
        reason,
        metadata: FlagMetadata::default(),
    }
}

fn check<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: open_feature::EvaluationResult<open_feature::EvaluationDetails<T>>,
    want: Expect<T>,
) {
    let got = got.unwrap_or_else(|e| panic!("{what}: {e:?}"));
    assert_eq!(got.value, want.value, "{what}: value");
    assert_eq!(
        got.variant.as_deref(),
        Some(want.variant),
        "{what}: variant"
    );
    assert_eq!(got.reason, Some(want.reason), "{what}: reason");
    assert_eq!(got.flag_metadata, want.metadata, "{what}: metadata");
}

#[tokio::test]
async fn booleans_with_every_reason_and_the_deciding_rule() {
    let of = openfeature(VexilProvider::new(flags().client())).await;
    let staff = user("user-9").with_custom_field("email", "ada@company.com");
    let enterprise = user("user-9").with_custom_field(
        "account",
        Field::new_struct(HashMap::from([(
            "plan".to_owned(),
            Field::from("enterprise"),
        )])),
    );
    let rule0 = metadata(&[("ruleIndex", 0_i64.into()), ("ruleName", "staff".into())]);
    let rule1 = metadata(&[("ruleIndex", 1_i64.into())]);
    let prerequisite = metadata(&[("reason", "PREREQUISITE_FAILED".into())]);
    // Bucketing is deterministic: find one user in each half of the 50% rollout.
    let vexil_flags = flags().client();
    let bucketed = |on: bool| {
        (0..1000)
            .map(|i| format!("user-{i}"))
            .find(|k| {
                vexil_flags.is_enabled("new_checkout", &vexil::Context::with_targeting_key(k)) == on
            })
            .unwrap()
    };
    let (in_key, out_key) = (bucketed(true), bucketed(false));
    let cases = [
        (
            "static",
            "dark_mode",
            user("u"),
            expect(true, "on", EvaluationReason::Static),
        ),
        (
            "named rule",
            "new_checkout",
            staff,
            Expect {
                metadata: rule0,
                ..expect(true, "on", EvaluationReason::TargetingMatch)
            },
        ),
        (
            "unnamed rule, nested context",
            "new_checkout",
            enterprise,
            Expect {
                metadata: rule1,
                ..expect(true, "on", EvaluationReason::TargetingMatch)
            },
        ),
        (
            "split in",
            "new_checkout",
            user(&in_key),
            expect(true, "on", EvaluationReason::Split),
        ),
        (
            "split out",
            "new_checkout",
            user(&out_key),
            expect(false, "off", EvaluationReason::Split),
        ),
        // No targeting key: the rollout cannot bucket, the `off` variant is served.
        (
            "no targeting key",
            "new_checkout",
            EvaluationContext::default(),
            expect(false, "off", EvaluationReason::Default),
        ),
        (
            "disabled",
            "payments_api",
            user("u"),
            expect(false, "off", EvaluationReason::Disabled),
        ),
        (
            "prerequisite failed",
            "one_click",
            user("u"),
            Expect {
                metadata: prerequisite,
                ..expect(false, "off", EvaluationReason::Default)
            },
        ),
    ];
    for (what, flag, ctx, want) in cases {
        let value = of.get_bool_value(flag, Some(&ctx), None).await;
        assert_eq!(
            value.as_ref().ok(),
            Some(&want.value),
            "{what}: get_bool_value"
        );
        check(
            what,
            of.get_bool_details(flag, Some(&ctx), None).await,
            want,
        );
    }
}

#[tokio::test]
async fn strings_numbers_and_structures() {
    let of = openfeature(VexilProvider::new(flags().client())).await;
    let u1 = user("user-1");
    let u2 = user("user-2");
    check(
        "target",
        of.get_string_details("theme", Some(&u1), None).await,
        expect(
            "#000000".to_owned(),
            "dark",
            EvaluationReason::TargetingMatch,
        ),
    );
    check(
        "default",
        of.get_string_details("theme", Some(&u2), None).await,
        expect("#ffffff".to_owned(), "light", EvaluationReason::Default),
    );
    assert_eq!(
        of.get_string_value("theme", Some(&u1), None).await.unwrap(),
        "#000000"
    );

    check(
        "integral number as int",
        of.get_int_details("limit", Some(&u1), None).await,
        expect(100, "high", EvaluationReason::Static),
    );
    assert_eq!(of.get_int_value("limit", None, None).await.unwrap(), 100);
    check(
        "integral number as float",
        of.get_float_details("limit", Some(&u1), None).await,
        expect(100.0, "high", EvaluationReason::Static),
    );
    check(
        "float",
        of.get_float_details("ratio", Some(&u1), None).await,
        expect(0.5, "half", EvaluationReason::Static),
    );
    assert_eq!(of.get_float_value("ratio", None, None).await.unwrap(), 0.5);

    // JSON nulls have no OpenFeature counterpart: left out of objects and arrays.
    let banner = StructValue::default()
        .with_field("text", "Hello")
        .with_field("size", 3)
        .with_field("ratio", 0.5)
        .with_field("bold", false)
        .with_field("tags", vec!["a", "b"])
        .with_field("style", StructValue::default().with_field("color", "red"));
    check(
        "object",
        of.get_struct_details::<StructValue>("banner", Some(&u1), None)
            .await,
        expect(banner.clone(), "plain", EvaluationReason::Static),
    );
    assert_eq!(
        of.get_struct_value::<StructValue>("banner", None, None)
            .await
            .unwrap(),
        banner
    );
    let d = of
        .get_struct_details::<StructValue>("banner", Some(&u1), None)
        .await
        .unwrap();
    assert_eq!(d.value.fields["size"], OfValue::Int(3));
    assert_eq!(d.value.fields["ratio"], OfValue::Float(0.5));
}

/// The five typed resolutions, by name, so error tables can name them.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Float,
    String,
    Struct,
}

/// The error of resolving `flag` as `kind`, checked to be the same through `get_*_value` and
/// `get_*_details`.
async fn error_of(
    of: &open_feature::Client,
    kind: Kind,
    flag: &str,
    ctx: &EvaluationContext,
) -> open_feature::EvaluationError {
    let c = Some(ctx);
    let (value, details) = match kind {
        Kind::Bool => (
            of.get_bool_value(flag, c, None).await.map(|_| ()),
            of.get_bool_details(flag, c, None).await.map(|_| ()),
        ),
        Kind::Int => (
            of.get_int_value(flag, c, None).await.map(|_| ()),
            of.get_int_details(flag, c, None).await.map(|_| ()),
        ),
        Kind::Float => (
            of.get_float_value(flag, c, None).await.map(|_| ()),
            of.get_float_details(flag, c, None).await.map(|_| ()),
        ),
        Kind::String => (
            of.get_string_value(flag, c, None).await.map(|_| ()),
            of.get_string_details(flag, c, None).await.map(|_| ()),
        ),
        Kind::Struct => (
            of.get_struct_value::<StructValue>(flag, c, None)
                .await
                .map(|_| ()),
            of.get_struct_details::<StructValue>(flag, c, None)
                .await
                .map(|_| ()),
        ),
    };
    let e = details.expect_err(&format!("{kind:?} `{flag}` should fail"));
    assert_eq!(
        value.unwrap_err(),
        e,
        "{kind:?} `{flag}`: value and details agree"
    );
    e
}

#[tokio::test]
async fn every_local_error_maps_to_its_code() {
    let of = openfeature(VexilProvider::new(flags().client())).await;
    let u = user("u");
    let bad_key = EvaluationContext::default().with_custom_field("targetingKey", true);
    let opaque = user("u").with_custom_field("session", Field::new_struct(42_u8));
    // A flag of the kind's own type, so the context is what fails.
    let all = [
        (Kind::Bool, "dark_mode"),
        (Kind::Int, "limit"),
        (Kind::Float, "ratio"),
        (Kind::String, "theme"),
        (Kind::Struct, "banner"),
    ];
    let mut cases = Vec::new();
    for (kind, flag) in all {
        cases.push((kind, "missing", u.clone(), Code::FlagNotFound, "no flag"));
        cases.push((
            kind,
            flag,
            bad_key.clone(),
            Code::InvalidContext,
            "targetingKey",
        ));
        cases.push((kind, flag, opaque.clone(), Code::InvalidContext, "session"));
    }
    cases.extend([
        (Kind::Bool, "theme", u.clone(), Code::TypeMismatch, "string"),
        (
            Kind::Int,
            "dark_mode",
            u.clone(),
            Code::TypeMismatch,
            "boolean",
        ),
        (
            Kind::Int,
            "ratio",
            u.clone(),
            Code::TypeMismatch,
            "not an integer",
        ),
        (
            Kind::Float,
            "theme",
            u.clone(),
            Code::TypeMismatch,
            "string",
        ),
        (
            Kind::String,
            "limit",
            u.clone(),
            Code::TypeMismatch,
            "number",
        ),
        (
            Kind::Struct,
            "limit",
            u.clone(),
            Code::TypeMismatch,
            "number",
        ),
        (
            Kind::Struct,
            "dark_mode",
            u.clone(),
            Code::TypeMismatch,
            "boolean",
        ),
    ]);
    for (kind, flag, ctx, code, mentions) in cases {
        let e = error_of(&of, kind, flag, &ctx).await;
        assert_eq!(e.code, code, "{kind:?} `{flag}`: {e:?}");
        let message = e.message.unwrap_or_default();
        assert!(message.contains(mentions), "{kind:?} `{flag}`: {message}");
    }
}

#[tokio::test]
async fn the_context_keeps_nested_structures_lists_and_datetimes() {
    let signed_up = OffsetDateTime::from_unix_timestamp(1_772_366_400).unwrap(); // 2026-03-01T12:00:00Z
    let first_login = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(); // 2026-01-01T00:00:00Z
    let devices = OfValue::Struct(
        StructValue::default().with_field("ids", vec![OfValue::from("d-1"), OfValue::from("d-2")]),
    );
    let history = HashMap::from([
        ("first_login".to_owned(), Field::DateTime(first_login)),
        ("logins".to_owned(), Field::Int(7)),
    ]);
    let ctx = EvaluationContext::default()
        .with_targeting_key("user-1")
        .with_custom_field(
            "roles",
            Field::new_struct(vec!["staff".to_owned(), "beta".to_owned()]),
        )
        .with_custom_field("signed_up", signed_up)
        .with_custom_field("age", 30)
        .with_custom_field("score", 0.75)
        .with_custom_field("verified", true)
        .with_custom_field("devices", Field::new_struct(devices))
        .with_custom_field("history", Field::new_struct(history))
        .with_custom_field(
            "visits",
            Field::new_struct(vec![Field::DateTime(first_login), Field::Bool(false)]),
        )
        .with_custom_field("extra", Field::new_struct(json!({"a": [1, null]})))
        .with_custom_field("nan", f64::NAN);
    let vexil = vexil_context(&ctx).unwrap();
    assert_eq!(
        serde_json::Value::Object(vexil.attributes().clone()),
        json!({
            "targetingKey": "user-1",
            "roles": ["staff", "beta"],
            "signed_up": "2026-03-01T12:00:00Z",
            "age": 30,
            "score": 0.75,
            "verified": true,
            "devices": {"ids": ["d-1", "d-2"]},
            "history": {"first_login": "2026-01-01T00:00:00Z", "logins": 7},
            "visits": ["2026-01-01T00:00:00Z", false],
            "extra": {"a": [1, null]},
            "nan": null,
        })
    );

    // And the rules read them: every condition of `beta_access` holds.
    let of = openfeature(VexilProvider::new(flags().client())).await;
    check(
        "all attribute kinds",
        of.get_bool_details("beta_access", Some(&ctx), None).await,
        Expect {
            metadata: metadata(&[("ruleIndex", 0_i64.into())]),
            ..expect(true, "on", EvaluationReason::TargetingMatch)
        },
    );
    let early = ctx.clone().with_custom_field(
        "signed_up",
        OffsetDateTime::from_unix_timestamp(1_735_689_600).unwrap(), // 2025-01-01
    );
    assert!(
        !of.get_bool_value("beta_access", Some(&early), None)
            .await
            .unwrap()
    );

    // The targeting key wins over a custom field of that name; the field is used without it.
    let both = user("user-1").with_custom_field("targetingKey", "user-2");
    assert_eq!(
        of.get_string_value("theme", Some(&both), None)
            .await
            .unwrap(),
        "#000000"
    );
    let field = EvaluationContext::default().with_custom_field("targetingKey", "user-1");
    assert_eq!(
        of.get_string_value("theme", Some(&field), None)
            .await
            .unwrap(),
        "#000000"
    );

    // The client's and the global context are merged by OpenFeature before the provider sees
    // them.
    let mut api = OpenFeature::default();
    api.set_evaluation_context(user("user-1")).await;
    api.set_provider(VexilProvider::new(flags().client())).await;
    let global = api.create_client();
    assert_eq!(
        global.get_string_value("theme", None, None).await.unwrap(),
        "#000000"
    );
}

#[tokio::test]
async fn metadata_status_and_changes_from_a_test_client() {
    let flags = flags();
    let provider = VexilProvider::new(flags.client());
    assert_eq!(provider.metadata().name, "vexil");
    assert_eq!(provider.status(), ProviderStatus::Ready);
    let mut api = OpenFeature::default();
    api.set_provider(provider).await;
    assert_eq!(api.provider_metadata().await.name, "vexil");
    let of = api.create_client();
    assert!(of.get_bool_value("dark_mode", None, None).await.unwrap());
    // A change to the test client reaches OpenFeature at once.
    flags.set_bool("dark_mode", false);
    let d = of.get_bool_details("dark_mode", None, None).await.unwrap();
    assert_eq!((d.value, d.variant.as_deref()), (false, Some("off")));
}

#[tokio::test]
async fn a_file_client_behind_openfeature() {
    let path = format!("{}/examples/flags.yaml", env!("CARGO_MANIFEST_DIR"));
    let client = Client::from_file(path, Some("production")).unwrap();
    let of = openfeature(VexilProvider::from(client)).await;
    let d = of
        .get_bool_details("new_checkout", Some(&user("user-123")), None)
        .await
        .unwrap();
    assert!(d.value);
    assert_eq!(d.reason, Some(EvaluationReason::TargetingMatch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_and_bootstrapped_clients() {
    let hang = Hang::start().await;
    // No definitions: PROVIDER_NOT_READY for every type; initialize waited its timeout.
    let client = Client::builder()
        .server(&hang.base, "vexil_server_test")
        .build()
        .unwrap();
    let provider = VexilProvider::new(client).initialize_timeout(Duration::from_millis(200));
    assert_eq!(provider.status(), ProviderStatus::NotReady);
    let started = std::time::Instant::now();
    let of = openfeature(provider).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    for kind in [
        Kind::Bool,
        Kind::Int,
        Kind::Float,
        Kind::String,
        Kind::Struct,
    ] {
        let e = error_of(&of, kind, "dark_mode", &user("u")).await;
        assert_eq!(e.code, Code::ProviderNotReady, "{kind:?}");
    }

    // A bootstrap is served, as STALE: it may be out of date.
    let client = Client::builder()
        .server(&hang.base, "vexil_server_test")
        .bootstrap_json(json!({"flags": {"dark_mode": true}}))
        .build()
        .unwrap();
    assert_eq!(client.status(), Status::Bootstrapped);
    let provider = VexilProvider::new(client).initialize_timeout(Duration::ZERO);
    assert_eq!(provider.status(), ProviderStatus::STALE);
    let of = openfeature(provider).await;
    assert!(of.get_bool_value("dark_mode", None, None).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_client_waits_for_its_first_sync_in_initialize() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(dir.path()).await;
    server.put_flag("dark_mode", json!(true)).await;
    let key = server.key("server").await;
    let client = Client::builder()
        .server(&server.base, &key)
        .build()
        .unwrap();
    let provider = VexilProvider::new(client).initialize_timeout(Duration::from_secs(20));
    let of = openfeature(provider).await;
    // No wait needed after set_provider: initialize waited for the sync.
    let d = of.get_bool_details("dark_mode", None, None).await.unwrap();
    assert_eq!((d.value, d.reason), (true, Some(EvaluationReason::Static)));
}

/// A server that answers every request `200 OK` with `body`.
async fn answering(body: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        // Bounded: a test makes a handful of requests.
        for _ in 0..64 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0; 16 * 1024];
            let _ = socket.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_client_behind_openfeature_with_its_own_errors() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(dir.path()).await;
    server
        .put_flag("new_checkout", json!({"targets": {"on": ["user-1"]}}))
        .await;
    server
        .put_flag(
            "limit",
            json!({"variants": {"low": 10, "high": 2.5}, "off": "low", "serve": "high"}),
        )
        .await;
    let key = server.key("client").await;
    let remote = RemoteClient::new(&server.base, &key).unwrap();
    let provider = VexilProvider::remote(remote);
    assert_eq!(provider.status(), ProviderStatus::Ready);
    let of = openfeature(provider).await;
    check(
        "remote target",
        of.get_bool_details("new_checkout", Some(&user("user-1")), None)
            .await,
        expect(true, "on", EvaluationReason::TargetingMatch),
    );
    assert_eq!(of.get_float_value("limit", None, None).await.unwrap(), 2.5);
    let u = user("u");
    assert_eq!(
        error_of(&of, Kind::Int, "limit", &u).await.code,
        Code::TypeMismatch
    );
    assert_eq!(
        error_of(&of, Kind::Bool, "missing", &u).await.code,
        Code::FlagNotFound
    );
    assert_eq!(
        error_of(&of, Kind::String, "limit", &u).await.code,
        Code::TypeMismatch
    );

    // An answer without a value: PARSE_ERROR.
    let (base, task) = answering("{}").await;
    let of = openfeature(VexilProvider::remote(
        RemoteClient::new(&base, "k").unwrap(),
    ))
    .await;
    for kind in [
        Kind::Bool,
        Kind::Int,
        Kind::Float,
        Kind::String,
        Kind::Struct,
    ] {
        let e = error_of(&of, kind, "any_flag", &u).await;
        assert_eq!(e.code, Code::ParseError, "{kind:?}");
    }
    task.abort();

    // A server that never answers: GENERAL after the timeout.
    let hang = Hang::start().await;
    let remote = RemoteClient::builder(&hang.base, "k")
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let of = openfeature(VexilProvider::remote(remote)).await;
    let e = error_of(&of, Kind::Bool, "any_flag", &u).await;
    assert_eq!(e.code, Code::General("GENERAL".into()));
    let message = e.message.unwrap_or_default();
    assert!(message.contains("flag server"), "{message}");
}
