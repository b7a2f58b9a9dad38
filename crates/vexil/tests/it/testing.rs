//! The test support, and the examples tested on both paths with `for_each_variant`.

use serde_json::json;
use vexil::testing::{TestClient, for_each_variant};
use vexil::{Client, Context, ErrorCode, Status};

use crate::{checkout, kill_switch};

fn examples_file() -> String {
    format!("{}/examples/flags.yaml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn clients_are_cheap_to_clone_and_shared_across_threads() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Client>();
    shareable::<vexil::RemoteClient>();
    fn sendable<T: Send + Sync>() {}
    sendable::<TestClient>();

    let flags = TestClient::new();
    flags.set_bool("a", true);
    let client = flags.client();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || client.is_enabled("a", &Context::new()))
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap());
    }
}

#[test]
fn the_checkout_example_on_both_paths() {
    let client = Client::from_file(examples_file(), Some("production")).unwrap();
    let ctx = Context::with_targeting_key("user-42");
    let mut seen = Vec::new();
    for_each_variant(&client, "new_checkout", |variant, client| {
        let expected = match variant {
            "on" => "new checkout",
            _ => "old checkout",
        };
        assert_eq!(checkout::checkout(client, &ctx), expected);
        seen.push(variant.to_owned());
    });
    assert_eq!(seen, ["on", "off"]);
    // And as the file has it: targeted users get the new one.
    assert_eq!(
        checkout::checkout(&client, &Context::with_targeting_key("user-123")),
        "new checkout"
    );
    // Fail closed: no flag, the old checkout.
    assert_eq!(
        checkout::checkout(&TestClient::new().client(), &ctx),
        "old checkout"
    );
}

#[test]
fn the_kill_switch_example_on_both_paths_and_failing_open() {
    let client = Client::from_file(examples_file(), Some("production")).unwrap();
    let ctx = Context::with_targeting_key("user-42");
    for_each_variant(&client, "search_enabled", |variant, client| {
        let answer = kill_switch::search(client, &ctx, "shoes");
        match variant {
            "on" => assert_eq!(answer, "results for \"shoes\""),
            _ => assert_eq!(answer, "search is temporarily unavailable"),
        }
    });
    // Fail open: no flag (or no definitions at all), search stays on.
    let empty = TestClient::new().client();
    assert_eq!(
        kill_switch::search(&empty, &ctx, "shoes"),
        "results for \"shoes\""
    );
}

#[test]
fn test_clients_are_set_directly_and_notify() {
    let flags = TestClient::new();
    let client = flags.client();
    let ctx = Context::with_targeting_key("u1");
    assert_eq!(client.status(), Status::Ready);
    assert_eq!(
        client.bool_details("dark_mode", &ctx, false).error_code(),
        Some(ErrorCode::FlagNotFound)
    );
    let mut changes = client.subscribe();
    flags.set_bool("dark_mode", true);
    assert!(changes.has_changed().unwrap());
    assert!(client.is_enabled("dark_mode", &ctx));
    changes.borrow_and_update();

    flags
        .set_flag(
            "plan_limit",
            json!({"variants": {"low": 10, "high": 100}, "off": "low", "serve": "low"}),
        )
        .set_variant("plan_limit", "high")
        .set_variant("theme", "solarized")
        .set_variant("beta", "on");
    assert_eq!(client.number_value("plan_limit", &ctx, 0.0), 100.0);
    assert_eq!(client.string_value("theme", &ctx, "light"), "solarized");
    assert!(client.is_enabled("beta", &ctx));
    assert!(changes.has_changed().unwrap());

    flags
        .set_segment("staff", json!({"include": ["u1"]}))
        .set_flag(
            "admin_panel",
            json!({"rules": [{"when": [{"segment": "staff"}], "serve": "on"}]}),
        );
    assert!(client.is_enabled("admin_panel", &ctx));
    assert!(!client.is_enabled("admin_panel", &Context::with_targeting_key("u2")));

    flags.remove_flag("dark_mode");
    assert!(!client.is_enabled("dark_mode", &ctx));
}

#[test]
fn an_invalid_test_flag_panics_with_the_problem() {
    let flags = TestClient::new();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        flags.set_flag("x", json!({"serve": "maybe"}));
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("flags.x"), "{message}");
    // The client still serves what it had.
    assert_eq!(flags.client().revision(), 1);
}

#[test]
fn for_each_variant_covers_every_variant_and_reports_the_failing_one() {
    let doc = json!({"flags": {"color": {
        "variants": {"blue": "#00f", "green": "#0f0", "red": "#f00"}, "off": "blue",
        "rollout": {"blue": 50, "green": 25, "red": 25}}}});
    let mut seen = Vec::new();
    for_each_variant(&doc, "color", |variant, client| {
        seen.push((
            variant.to_owned(),
            client.string_value("color", &Context::new(), ""),
        ));
    });
    assert_eq!(
        seen,
        [
            ("blue".into(), "#00f".into()),
            ("green".into(), "#0f0".into()),
            ("red".into(), "#f00".into())
        ]
    );
    let failed = std::panic::catch_unwind(|| {
        for_each_variant(&doc, "color", |variant, _| assert_ne!(variant, "green"));
    });
    assert!(failed.is_err());
}
