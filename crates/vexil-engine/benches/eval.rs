//! In-process evaluation, the two engine rows of PRODUCT.md section 6, with a plain
//! `HashMap<String, bool>` lookup measured in the same run as the floor.
//!
//! `cargo bench -p vexil-engine --bench eval`; the figures are recorded in `docs/benchmarks.md`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vexil_engine::{Config, Context, Reason};

/// A boolean flag without targeting, and one with three rules (a 100-value `in`, `ends_with`,
/// `semver_gte`) and a rollout.
fn config() -> Config {
    let mut plans = String::new();
    for i in 0..100 {
        write!(plans, "plan-{i}, ").unwrap();
    }
    let text = format!(
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
    );
    Config::from_text(&text).unwrap()
}

fn eval(c: &mut Criterion) {
    let config = config();
    let env = config.default_env();
    let now = "2026-06-01T00:00:00Z".parse().unwrap();

    let mut floor: HashMap<String, bool> = HashMap::new();
    floor.insert("dark_mode".to_owned(), true);
    floor.insert("new_checkout".to_owned(), false);
    c.bench_function("hashmap_string_bool_lookup", |b| {
        b.iter(|| *floor.get(black_box("dark_mode")).unwrap_or(&false))
    });

    let ctx = Context::with_targeting_key("user-123");
    assert_eq!(env.evaluate("dark_mode", &ctx, now).reason, Reason::Static);
    c.bench_function("bool_flag_without_targeting", |b| {
        b.iter(|| {
            env.bool_value(
                black_box("dark_mode"),
                black_box(&ctx),
                black_box(now),
                false,
            )
        })
    });

    // Matches none of the rules, so all three are tried and the rollout decides.
    let ctx = Context::with_targeting_key("user-123")
        .with("plan", "free")
        .with("email", "someone@example.org")
        .with("app_version", "2.2.9");
    let ev = env.evaluate("new_checkout", &ctx, now);
    assert_eq!((ev.reason, ev.rule), (Reason::Split, None));
    c.bench_function("three_rules_and_rollout", |b| {
        b.iter(|| {
            env.bool_value(
                black_box("new_checkout"),
                black_box(&ctx),
                black_box(now),
                false,
            )
        })
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
