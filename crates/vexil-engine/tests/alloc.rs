//! Evaluation allocates nothing on its common paths (PRODUCT.md section 6): a boolean flag
//! without targeting, and a flag whose rules (a 100-value `in`, `ends_with`, `semver_gte`) are
//! all tried before its rollout decides.
//!
//! A global allocator counts every allocation made by the current thread. It is its own test
//! binary because a global allocator replaces the allocator of the whole binary; counting per
//! thread keeps the tests of this binary, which run in parallel, from disturbing one another.

// Implementing `GlobalAlloc` is unsafe by definition; the counting allocator below only forwards
// to the system allocator and bumps a thread-local counter.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;

use vexil_engine::{Config, Context, Reason, jiff};

struct Counting;

thread_local! {
    /// Allocations (including reallocations) made by this thread. `const`-initialised and without
    /// a destructor, so reading it never allocates or registers anything.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with` rather than `with`: the allocator may be called while the thread is torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// contract of `GlobalAlloc` is upheld by `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_now() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Runs `f` once to warm up (lazily built caches, such as a regular expression's, may allocate
/// the first time), then 100 times more, and returns how many allocations those 100 made.
fn allocations_of(mut f: impl FnMut()) -> u64 {
    f();
    let before = allocations_now();
    for _ in 0..100 {
        f();
    }
    allocations_now() - before
}

fn now() -> jiff::Timestamp {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

/// The document the benchmarks use too: a boolean flag without targeting, and one with three
/// rules and a rollout.
fn config() -> Config {
    let mut plans = String::new();
    for i in 0..100 {
        write!(plans, "plan-{i}, ").unwrap();
    }
    let text = format!(
        r#"
segments:
  staff:
    when:
      - {{attribute: email, op: ends_with, values: ["@Company.com"], ignore_case: true}}
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
  staff_only:
    rules:
      - name: staff
        when: [{{segment: staff}}]
        serve: on
      - when: [{{attribute: country, op: in, values: [DE, fr, It], ignore_case: true}}]
        serve: on
      - when: [{{attribute: email, op: matches, values: ["^[a-z]+@example\\.org$"], ignore_case: true}}]
        serve: on
  by_account:
    variants: {{a: 1, b: 2, c: 3}}
    off: a
    rollout: {{a: 20.5, b: 39.5, c: 40}}
    bucket_by: account.id
"#
    );
    Config::from_text(&text).unwrap()
}

#[test]
fn boolean_flag_without_targeting_allocates_nothing() {
    let config = config();
    let env = config.default_env();
    let ctx = Context::with_targeting_key("user-123");
    let now = now();
    assert!(env.bool_value("dark_mode", &ctx, now, false));
    let n = allocations_of(|| {
        std::hint::black_box(env.bool_value("dark_mode", &ctx, now, false));
        std::hint::black_box(env.evaluate("dark_mode", &ctx, now));
    });
    assert_eq!(n, 0, "allocations in 100 evaluations");
}

#[test]
fn rules_and_rollout_allocate_nothing() {
    let config = config();
    let env = config.default_env();
    let now = now();
    // Matches none of the rules: all three are tried and the rollout decides.
    let ctx = Context::with_targeting_key("user-123")
        .with("plan", "free")
        .with("email", "someone@example.org")
        .with("app_version", "2.2.9");
    let ev = env.evaluate("new_checkout", &ctx, now);
    assert_eq!((ev.reason, ev.rule), (Reason::Split, None));
    let n = allocations_of(|| {
        std::hint::black_box(env.bool_value("new_checkout", &ctx, now, false));
    });
    assert_eq!(n, 0, "allocations in 100 evaluations");

    // Each rule matching in turn.
    for (attr, value, index) in [
        ("plan", "plan-42", 0),
        ("email", "jane@company.com", 1),
        ("app_version", "2.3.0-rc.1+build.5", usize::MAX),
        ("app_version", "v2.10", 2),
    ] {
        let ctx = ctx.clone().with(attr, value);
        let ev = env.evaluate("new_checkout", &ctx, now);
        assert_eq!(
            ev.rule.map_or(usize::MAX, |r| r.index),
            index,
            "{attr}={value}"
        );
        let n = allocations_of(|| {
            std::hint::black_box(env.evaluate("new_checkout", &ctx, now));
        });
        assert_eq!(n, 0, "allocations with {attr}={value}");
    }
}

#[test]
fn numeric_keys_and_bucket_by_allocate_nothing() {
    let config = config();
    let env = config.default_env();
    let now = now();
    let ctx = Context::new()
        .with("targetingKey", 12345)
        .with("account", serde_json::json!({"id": 987.25}));
    let ev = env.evaluate("by_account", &ctx, now);
    assert_eq!(ev.reason, Reason::Split);
    let n = allocations_of(|| {
        std::hint::black_box(env.evaluate("new_checkout", &ctx, now));
        std::hint::black_box(env.evaluate("by_account", &ctx, now));
    });
    assert_eq!(n, 0, "allocations in 100 evaluations");
}

#[test]
fn ignore_case_match_on_ascii_allocates_nothing() {
    let config = config();
    let env = config.default_env();
    let now = now();
    for (attr, value, index) in [
        // A segment whose `ends_with` ignores case.
        ("email", "Jane.Doe@COMPANY.com", 0),
        // `in` ignoring case, against values lowered when loading.
        ("country", "Fr", 1),
        ("country", "iT", 1),
        // A case-insensitive regular expression.
        ("email", "Someone@Example.ORG", 2),
    ] {
        let ctx = Context::with_targeting_key("user-123").with(attr, value);
        let ev = env.evaluate("staff_only", &ctx, now);
        assert_eq!(ev.reason, Reason::TargetingMatch, "{attr}={value}");
        assert_eq!(ev.rule.map(|r| r.index), Some(index), "{attr}={value}");
        let n = allocations_of(|| {
            std::hint::black_box(env.evaluate("staff_only", &ctx, now));
        });
        assert_eq!(n, 0, "allocations with {attr}={value}");
    }
}

/// The counter does count: without this, a broken allocator hook would make every test above
/// pass.
#[test]
fn the_counter_counts() {
    let n = allocations_of(|| {
        std::hint::black_box(String::from("allocated"));
    });
    assert_eq!(n, 100);
}
