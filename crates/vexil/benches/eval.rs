//! The SDK's evaluation cost next to the engine's: the two flags of the engine's bench
//! (`crates/vexil-engine/benches/eval.rs`), evaluated in the same run by the engine directly (a
//! compiled config, a fixed time) and through [`vexil::Client::bool_value`] (text mode), whose
//! extra work is the load of the current definitions from their `ArcSwap` and a clock read.
//! The clock read alone is measured too.
//!
//! `cargo bench -p vexil --bench eval`; the figures are recorded in `docs/benchmarks.md`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vexil::{Client, Context, Reason};
use vexil_engine::Config;
use vexil_engine::jiff::Timestamp;

/// The engine bench's document: a boolean flag without targeting, and one with three rules (a
/// 100-value `in`, `ends_with`, `semver_gte`) and a rollout.
fn document() -> String {
    let mut plans = String::new();
    for i in 0..100 {
        write!(plans, "plan-{i}, ").unwrap();
    }
    format!(
        r#"
flags:
  dark_mode: true
  new_checkout:
    rules:
      - when: [{{attribute: plan, op: in, values: [{plans}]}}]
        serve: on
      - when: [{{attribute: email, op: ends_with, values: ["@company.com"]}}]
        serve: on
      - when: [{{attribute: app_version, op: semver_gte, values: ["2.3.0"]}}]
        serve: on
    rollout: 50
"#
    )
}

fn eval(c: &mut Criterion) {
    let text = document();
    let config = Config::from_text(&text).unwrap();
    let env = config.default_env();
    let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
    let client = Client::from_text(&text, None).unwrap();

    let plain = Context::with_targeting_key("user-123");
    // Matches none of the rules, so all three are tried and the rollout decides.
    let rich = Context::with_targeting_key("user-123")
        .with("plan", "free")
        .with("email", "someone@example.org")
        .with("app_version", "2.2.9");
    assert_eq!(
        client.bool_details("dark_mode", &plain, false).reason,
        Reason::Static
    );
    let d = client.bool_details("new_checkout", &rich, false);
    assert_eq!((d.reason, d.rule), (Reason::Split, None));
    assert_eq!(
        d.value,
        env.bool_value("new_checkout", &rich, now, false),
        "the SDK and the engine agree"
    );

    c.bench_function("clock_read_timestamp_now", |b| b.iter(Timestamp::now));

    c.bench_function("engine/bool_flag_without_targeting", |b| {
        b.iter(|| {
            env.bool_value(
                black_box("dark_mode"),
                black_box(&plain),
                black_box(now),
                false,
            )
        })
    });
    c.bench_function("sdk/bool_flag_without_targeting", |b| {
        b.iter(|| client.bool_value(black_box("dark_mode"), black_box(&plain), false))
    });

    c.bench_function("engine/three_rules_and_rollout", |b| {
        b.iter(|| {
            env.bool_value(
                black_box("new_checkout"),
                black_box(&rich),
                black_box(now),
                false,
            )
        })
    });
    c.bench_function("sdk/three_rules_and_rollout", |b| {
        b.iter(|| client.bool_value(black_box("new_checkout"), black_box(&rich), false))
    });
    // The owned result with variant, reason and rule (what an OpenFeature provider maps).
    c.bench_function("sdk/three_rules_and_rollout_details", |b| {
        b.iter(|| client.bool_details(black_box("new_checkout"), black_box(&rich), false))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = eval
}
criterion_main!(benches);
