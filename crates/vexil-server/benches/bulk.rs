//! Bulk evaluation of 100 flags, server side (PRODUCT.md section 6, target ≤ 50 µs): the work
//! of `POST /ofrep/v1/evaluate/flags` without the network, for a configuration of 100 realistic
//! flags (a segment rule, individual targets, `in`/`semver_gte`/`ends_with` rules, rollouts,
//! multi-variant experiments, per-environment overrides).
//!
//! `cargo bench -p vexil-server --bench bulk`; the figures are recorded in `docs/benchmarks.md`.
//!
//! - `bulk_100/body` is [`vexil_server::routes::eval::ofrep_bulk_body`], the function the handler
//!   calls: evaluate every flag, count each evaluation in the metrics, serialize the body, hash
//!   it into the `ETag`.
//! - `bulk_100/request` adds what the handler does before it: read the request body's context
//!   ([`vexil_server::routes::eval::ofrep_context`], also the handler's).
//! - `bulk_100/evaluate_only` is the engine's part alone (`Env::evaluate_all`), for comparison.
//! - `ofrep_context` is the reading of the request body alone, which single evaluations share.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use vexil_engine::{Config, Context};
use vexil_server::metrics::Metrics;
use vexil_server::routes::eval::{ofrep_bulk_body, ofrep_context};

/// The request body a client sends.
const REQUEST: &str = r#"{"context":{"targetingKey":"user-123","plan":"free","email":"someone@example.org","app_version":"2.2.9","country":"DE","account_id":"acct-42"}}"#;

#[path = "common/flags.rs"]
mod flags;
use flags::flag;

/// A section-1 document with `n` flags, the server's three environments and one segment.
fn document(n: usize) -> Value {
    let flags: Map<String, Value> = (0..n).map(flag).collect();
    json!({
        "environments": ["development", "staging", "production"],
        "segments": {
            "internal": {
                "description": "Staff and contractors",
                "include": ["user-1"],
                "when": [{"attribute": "email", "op": "ends_with", "values": ["@company.com"], "ignore_case": true}]
            }
        },
        "flags": flags,
    })
}

fn bulk(c: &mut Criterion) {
    let config = Config::from_json(&document(100)).expect("the benchmark's flags are valid");
    let env = config.env("production").unwrap();
    let metrics = Metrics::new();
    let now = "2026-06-01T00:00:00Z".parse().unwrap();
    let request: Value = serde_json::from_str(REQUEST).unwrap();
    let ctx = Context::try_from(request["context"].clone()).unwrap();

    let (body, _) = ofrep_bulk_body(&metrics, &env, &ctx, now).unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["flags"].as_array().unwrap().len(), 100);
    assert!(
        body.windows(9).all(|w| w != b"errorCode"),
        "no flag may fail"
    );
    println!("bulk answer for 100 flags: {} bytes", body.len());

    let mut group = c.benchmark_group("bulk_100");
    group.bench_function("evaluate_only", |b| {
        b.iter(|| {
            env.evaluate_all(black_box(&ctx), black_box(now))
                .for_each(|(_, ev)| {
                    black_box(ev);
                })
        })
    });
    group.bench_function("body", |b| {
        b.iter(|| ofrep_bulk_body(&metrics, &env, black_box(&ctx), black_box(now)).unwrap())
    });
    group.bench_function("request", |b| {
        b.iter(|| {
            let ctx = ofrep_context(black_box(REQUEST.as_bytes()))
                .unwrap()
                .unwrap();
            ofrep_bulk_body(&metrics, &env, &ctx, black_box(now)).unwrap()
        })
    });
    group.finish();

    // The request's share on its own: what every OFREP request, single or bulk, reads.
    c.bench_function("ofrep_context", |b| {
        b.iter(|| {
            ofrep_context(black_box(REQUEST.as_bytes()))
                .unwrap()
                .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = bulk
}
criterion_main!(benches);
