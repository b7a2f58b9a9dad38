//! Properties of loading and evaluation (PRODUCT.md sections 1.5 to 1.7): bucketing is
//! deterministic, monotonic and evenly spread, flags bucket independently, and no document and
//! no context can make the engine panic.

use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Value, json};
use vexil_engine::{Config, Context, EvalError, Evaluation, Reason, jiff};

fn now() -> jiff::Timestamp {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

/// A percentage given in thousandths, written with three decimals (`12.345`).
fn percent(thousandths: u32) -> String {
    format!("{}.{:03}", thousandths / 1000, thousandths % 1000)
}

/// `n` weights in thousandths of a percent, summing to 100%.
fn weights(n: usize) -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(0u32..=100_000, n - 1).prop_map(|mut cuts| {
        cuts.push(0);
        cuts.push(100_000);
        cuts.sort_unstable();
        cuts.windows(2).map(|w| w[1] - w[0]).collect()
    })
}

/// Targeting keys: any text, numbers-as-text, and the shapes real keys have.
fn targeting_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        "user-[0-9]{1,6}",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        any::<u64>().prop_map(|n| n.to_string()),
    ]
}

/// Evaluates every flag of `config` in every environment.
fn evaluate_everything<'a>(config: &'a Config, ctx: &Context) -> Vec<Evaluation<'a>> {
    let mut out = Vec::new();
    for env_name in config.environments() {
        let env = config.env(env_name).unwrap();
        for (flag, ev) in env.evaluate_all(ctx, now()) {
            assert_eq!(ev, env.evaluate(flag.key(), ctx, now()));
            out.push(ev);
        }
    }
    out
}

// (a) The same config and context always give the same result, also after loading the config
// again, from text or from JSON.

fn rollout_document() -> impl Strategy<Value = Value> {
    (
        0u32..=100_000,
        weights(3),
        weights(4),
        "[a-z][a-z0-9_]{0,8}",
    )
        .prop_map(|(on, three, four, salt)| {
            let p = |t: u32| json!(f64::from(t) / 1000.0);
            json!({
                "flags": {
                    "boolean": {"rollout": p(on)},
                    "three": {
                        "variants": {"red": "#f00", "green": "#0f0", "blue": "#00f"},
                        "off": "red",
                        "rollout": {"red": p(three[0]), "green": p(three[1]), "blue": p(three[2])},
                    },
                    "four": {
                        "variants": {"a": 1, "b": 2, "c": 3, "d": 4},
                        "off": "a",
                        "rules": [{
                            "when": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                            "rollout": {"a": p(four[0]), "b": p(four[1]), "c": p(four[2]), "d": p(four[3])},
                            "bucket_by": "account.id",
                            "salt": salt,
                        }],
                        "rollout": {"a": p(four[3]), "b": p(four[2]), "c": p(four[1]), "d": p(four[0])},
                    },
                }
            })
        })
}

fn rollout_context() -> impl Strategy<Value = Context> {
    (
        targeting_key(),
        prop::option::of(prop_oneof![Just("pro"), Just("free")]),
        prop::option::of(prop_oneof![
            "\\PC{0,20}".prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
        ]),
    )
        .prop_map(|(key, plan, account)| {
            let mut ctx = Context::with_targeting_key(key);
            if let Some(plan) = plan {
                ctx.set("plan", plan);
            }
            if let Some(id) = account {
                ctx.set("account", json!({"id": id}));
            }
            ctx
        })
}

proptest! {
    #[test]
    fn a_users_variant_never_changes(doc in rollout_document(), ctx in rollout_context()) {
        let config = Config::from_json(&doc).unwrap();
        let first = evaluate_everything(&config, &ctx);
        prop_assert_eq!(&first, &evaluate_everything(&config, &ctx));
        let again = Config::from_json(&doc).unwrap();
        prop_assert_eq!(&first, &evaluate_everything(&again, &ctx));
        let from_text = Config::from_text(&serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        prop_assert_eq!(&first, &evaluate_everything(&from_text, &ctx));
        for ev in &first {
            prop_assert!(ev.error.is_none());
            prop_assert!(matches!(ev.reason, Reason::Split | Reason::Default));
        }
    }
}

// (b) Raising a boolean rollout keeps everyone who was in.

proptest! {
    #[test]
    fn raising_a_rollout_keeps_everyone_in(
        a in 0u32..=100_000,
        b in 0u32..=100_000,
        flag in "[A-Za-z0-9][A-Za-z0-9_.-]{0,20}",
        keys in prop::collection::vec(targeting_key(), 1..50),
    ) {
        let (low, high) = (a.min(b), a.max(b));
        let load = |t: u32| {
            Config::from_text(&format!("flags:\n  {flag}:\n    rollout: {}\n", percent(t))).unwrap()
        };
        let (low_config, high_config) = (load(low), load(high));
        for key in &keys {
            let ctx = Context::with_targeting_key(key.as_str());
            let was_in = low_config.default_env().bool_value(&flag, &ctx, now(), false);
            let is_in = high_config.default_env().bool_value(&flag, &ctx, now(), false);
            prop_assert!(!was_in || is_in, "{key} left {flag} going from {} to {}", percent(low), percent(high));
        }
        // The edges: nobody at 0%, everybody at 100%.
        let ctx = Context::with_targeting_key(keys[0].as_str());
        if low == 0 {
            prop_assert!(!low_config.default_env().bool_value(&flag, &ctx, now(), true));
        }
        if high == 100_000 {
            prop_assert!(high_config.default_env().bool_value(&flag, &ctx, now(), false));
        }
    }
}

// (c) Over many users, each variant's share is its weight.

#[test]
fn shares_follow_the_weights() {
    // Random weights, but from a fixed seed: the check is statistical, and a test that fails one
    // run in a thousand is worse than none.
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let names = ["a", "b", "c", "d"];
    for round in 0..6 {
        let n = 3 + round % 2;
        let w = weights(n).new_tree(&mut runner).unwrap().current();
        let flag = format!("experiment-{round}");
        let mut variants = Map::new();
        let mut rollout = Map::new();
        for (name, &t) in names.iter().zip(&w) {
            variants.insert((*name).to_owned(), json!(name));
            rollout.insert((*name).to_owned(), json!(f64::from(t) / 1000.0));
        }
        let doc = json!({"flags": {&flag: {"variants": variants, "off": "a", "rollout": rollout}}});
        let config = Config::from_json(&doc).unwrap();
        let env = config.default_env();
        let mut counts = [0u32; 4];
        const USERS: u32 = 100_000;
        for i in 0..USERS {
            let ctx = Context::with_targeting_key(format!("user-{i}"));
            let variant = env.evaluate(&flag, &ctx, now()).variant.unwrap();
            counts[names.iter().position(|n| *n == variant).unwrap()] += 1;
        }
        for ((name, &t), &count) in names.iter().zip(&w).zip(&counts) {
            let share = f64::from(count) * 100.0 / f64::from(USERS);
            let weight = f64::from(t) / 1000.0;
            assert!(
                (share - weight).abs() <= 0.5,
                "{flag}: variant {name} has weight {weight} but {share}% of users ({w:?})"
            );
        }
    }
}

// (d) Different flags bucket independently.

#[test]
fn two_flags_at_half_overlap_on_a_quarter() {
    const USERS: u32 = 100_000;
    for (f, g) in [
        ("new_checkout", "dark_mode"),
        ("flag-1", "flag-2"),
        ("a", "b"),
        ("search.v2", "search.v3"),
    ] {
        let config = Config::from_text(&format!(
            "flags:\n  {f}: {{rollout: 50}}\n  {g}: {{rollout: 50}}\n"
        ))
        .unwrap();
        let env = config.default_env();
        let mut both = 0u32;
        for i in 0..USERS {
            let ctx = Context::with_targeting_key(format!("user-{i}"));
            if env.bool_value(f, &ctx, now(), false) && env.bool_value(g, &ctx, now(), false) {
                both += 1;
            }
        }
        let share = f64::from(both) * 100.0 / f64::from(USERS);
        assert!(
            (share - 25.0).abs() <= 1.0,
            "{f} and {g} are both on for {share}% of users, not 25%"
        );
    }
}

// (e) No document makes loading panic: it is either loaded or rejected with diagnostics.

/// Words a flag document is made of, so that random documents get past the first checks.
const WORDS: &[&str] = &[
    "flags",
    "segments",
    "environments",
    "rules",
    "when",
    "op",
    "values",
    "value",
    "rollout",
    "variants",
    "serve",
    "off",
    "on",
    "enabled",
    "prerequisites",
    "flag",
    "targets",
    "bucket_by",
    "salt",
    "attribute",
    "segment",
    "not",
    "any",
    "all",
    "ignore_case",
    "include",
    "exclude",
    "description",
    "kind",
    "owner",
    "tags",
    "created",
    "expires",
    "ticket",
    "link",
    "name",
    "development",
    "production",
    "default",
    "a",
    "b",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "lt",
    "gte",
    "semver_eq",
    "semver_gte",
    "before",
    "after",
    "exists",
    "not_exists",
    "$now",
    "$flag",
    "$other",
    "targetingKey",
    "user.profile.id",
    "release",
    "ops",
    "2026-01-15",
    "2026-12-01T09:00:00Z",
    "2.3.0",
    "1.2.3-beta.1+build",
    "^[a-z]+$",
    "(unclosed",
    "a{1000}{1000}",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(WORDS).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
        1 => any::<String>(),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // non-finite numbers become null
        (0u32..=100_000).prop_map(|t| json!(f64::from(t) / 1000.0)),
        (-5i64..=105).prop_map(Value::from),
        word().prop_map(Value::from),
    ]
}

/// Arbitrary JSON with flag-like keys.
fn junk_json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(8, 200, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Either `good` or, now and then, anything at all.
fn mostly(good: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![8 => good, 1 => junk_json()].boxed()
}

/// The variants of a generated flag: their names, and the `variants` field declaring them
/// (`None` for a boolean flag's implicit `on`/`off`).
#[derive(Debug, Clone, Copy)]
struct Shape {
    names: &'static [&'static str],
    variants: Option<&'static str>,
    off: Option<&'static str>,
}

const SHAPES: &[Shape] = &[
    Shape {
        names: &["on", "off"],
        variants: None,
        off: None,
    },
    Shape {
        names: &["on", "off"],
        variants: Some(r#"{"on": true, "off": false}"#),
        off: Some("off"),
    },
    Shape {
        names: &["a", "b", "c"],
        variants: Some(r#"{"a": "A", "b": "B", "c": "C"}"#),
        off: Some("a"),
    },
    Shape {
        names: &["a", "b", "c"],
        variants: Some(r#"{"a": 1, "b": 2.5, "c": -3}"#),
        off: Some("c"),
    },
    Shape {
        names: &["a", "b"],
        variants: Some(r#"{"a": {"x": 1}, "b": {}}"#),
        off: Some("b"),
    },
    // Mistakes: mixed types, a null value, no variants, no `off`.
    Shape {
        names: &["a", "b"],
        variants: Some(r#"{"a": "A", "b": 2}"#),
        off: Some("a"),
    },
    Shape {
        names: &["a", "b"],
        variants: Some(r#"{"a": null, "b": true}"#),
        off: Some("a"),
    },
    Shape {
        names: &["a"],
        variants: Some("{}"),
        off: Some("a"),
    },
    Shape {
        names: &["a", "b"],
        variants: Some(r#"{"a": "A", "b": "B"}"#),
        off: None,
    },
];

/// One of the shape's variant names, or now and then anything.
fn variant_name(shape: Shape) -> impl Strategy<Value = String> {
    prop_oneof![
        12 => prop::sample::select(shape.names).prop_map(str::to_owned),
        1 => word(),
    ]
}

/// Values that suit each operator, so that most generated conditions load.
fn op_values(op: &'static str) -> BoxedStrategy<Vec<Value>> {
    let pool: &'static [&'static str] = match op {
        "matches" => &[
            r#""^[a-z]+$""#,
            r#"".*""#,
            r#""(unclosed""#,
            r#""a{1000}{1000}""#,
            r#""(?i)ü""#,
        ],
        "lt" | "lte" | "gt" | "gte" => &["18", "-1.5", r#""21""#, "1e300", r#""x""#],
        "semver_eq" | "semver_lt" | "semver_lte" | "semver_gt" | "semver_gte" => &[
            r#""2.3.0""#,
            r#""1.2""#,
            r#""v1.0.0-rc.1+b""#,
            "2",
            r#""x.y""#,
        ],
        "before" | "after" => &[
            r#""2026-12-01T09:00:00Z""#,
            r#""2026-01-01""#,
            "1700000000",
            r#""2026-13-01""#,
        ],
        "exists" | "not_exists" => {
            return prop_oneof![9 => Just(Vec::new()), 1 => prop::collection::vec(scalar(), 1..2)]
                .boxed();
        }
        _ => &[
            r#""DE""#,
            r#""pro""#,
            r#""@company.com""#,
            r#""user-1""#,
            "42",
            "true",
            "null",
        ],
    };
    prop_oneof![
        9 => prop::collection::vec(
            prop::sample::select(pool).prop_map(|v| serde_json::from_str::<Value>(v).unwrap()),
            1..4,
        ),
        1 => prop::collection::vec(scalar(), 0..3),
    ]
    .boxed()
}

fn condition() -> impl Strategy<Value = Value> {
    const OPS: &[&str] = &[
        "in",
        "not_in",
        "contains",
        "starts_with",
        "ends_with",
        "matches",
        "lt",
        "lte",
        "gt",
        "gte",
        "semver_eq",
        "semver_lt",
        "semver_lte",
        "semver_gt",
        "semver_gte",
        "before",
        "after",
        "exists",
        "not_exists",
    ];
    let op = prop_oneof![30 => prop::sample::select(OPS), 1 => Just("between")];
    let attribute = prop_oneof![
        12 => prop::sample::select(&["targetingKey", "plan", "country", "user.profile.id", "$flag", "$now"][..]),
        1 => prop::sample::select(&["$other", "", "a..b", "."][..]),
    ];
    let leaf = (attribute, op)
        .prop_flat_map(|(attribute, op)| {
            let text = matches!(
                op,
                "in" | "not_in" | "contains" | "starts_with" | "ends_with" | "matches"
            );
            (
                Just(attribute),
                Just(op),
                op_values(op),
                prop_oneof![
                    6 => Just(None),
                    if text { 4 } else { 1 } => any::<bool>().prop_map(Some),
                ],
                prop_oneof![6 => Just(false), 1 => Just(true)],
            )
        })
        .prop_map(|(attribute, op, values, ignore_case, one)| {
            let mut c = json!({"attribute": attribute, "op": op});
            if one && values.len() == 1 {
                c["value"] = values[0].clone();
            } else if !values.is_empty() || !op.ends_with("exists") {
                c["values"] = Value::Array(values);
            }
            if let Some(i) = ignore_case {
                c["ignore_case"] = Value::Bool(i);
            }
            c
        });
    let leaf = prop_oneof![
        6 => leaf,
        1 => prop_oneof![
            6 => prop::sample::select(&["internal", "beta"][..]),
            1 => Just("nope"),
        ].prop_map(|s| json!({"segment": s})),
    ];
    mostly(leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| json!({"not": c})),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|cs| json!({"any": cs})),
            prop::collection::vec(inner, 0..4).prop_map(|cs| json!({"all": cs})),
        ]
    }))
}

fn rollout(shape: Shape) -> BoxedStrategy<Value> {
    let p = |t: u32| json!(f64::from(t) / 1000.0);
    let split = weights(shape.names.len()).prop_map(move |w| {
        Value::Object(
            shape
                .names
                .iter()
                .zip(w)
                .map(|(n, t)| ((*n).to_owned(), p(t)))
                .collect(),
        )
    });
    mostly(prop_oneof![
        2 => (0u32..=100_000).prop_map(p),
        4 => split,
        1 => prop::collection::vec((variant_name(shape), scalar()), 0..4)
            .prop_map(|e| Value::Object(e.into_iter().collect())),
    ])
}

/// Targeting keys as documents list them, with a mistake now and then.
fn listed_keys() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(&["user-1", "user-2", "42", "user-9"][..]).prop_map(Value::from),
            1 => Just(json!(7)),
            1 => scalar(),
        ],
        0..4,
    )
    .prop_map(Value::from)
}

/// The targeting fields, shared by flags and environment overrides.
fn targeting_fields(shape: Shape) -> impl Strategy<Value = Vec<(String, Value)>> {
    let rule = (
        prop::option::of(word()),
        prop::collection::vec(condition(), 0..3),
        prop_oneof![
            variant_name(shape).prop_map(|v| ("serve", Value::from(v))),
            rollout(shape).prop_map(|r| ("rollout", r)),
        ],
        prop_oneof![
            4 => Just(None),
            1 => prop::sample::select(&["account_id", "user.profile.id", "$now"][..]).prop_map(Some),
        ],
    )
        .prop_map(|(name, when, (how, what), bucket_by)| {
            let mut r = json!({"when": when, how: what});
            if let Some(n) = name {
                r["name"] = Value::from(n);
            }
            if let Some(b) = bucket_by {
                r["bucket_by"] = Value::from(b);
            }
            r
        });
    let prerequisite = (
        prop::sample::select(&["base", "other", "f", "missing"][..]),
        prop::option::of(prop::collection::vec(
            prop::sample::select(&["on", "off", "a", "b", "zz"][..]),
            0..3,
        )),
    )
        .prop_map(|(f, vs)| match vs {
            Some(vs) => json!({"flag": f, "variants": vs}),
            None => json!({"flag": f}),
        });
    let field = prop_oneof![
        1 => mostly(any::<bool>().prop_map(Value::from)).prop_map(|v| ("enabled".to_owned(), v)),
        1 => mostly(prop::collection::vec(prerequisite, 0..3).prop_map(Value::from))
            .prop_map(|v| ("prerequisites".to_owned(), v)),
        2 => mostly(
            prop::collection::vec((variant_name(shape), listed_keys()), 0..3)
                .prop_map(|e| Value::Object(e.into_iter().collect()))
        )
        .prop_map(|v| ("targets".to_owned(), v)),
        4 => mostly(prop::collection::vec(mostly(rule), 0..4).prop_map(Value::from))
            .prop_map(|v| ("rules".to_owned(), v)),
        2 => mostly(variant_name(shape).prop_map(Value::from)).prop_map(|v| ("serve".to_owned(), v)),
        2 => rollout(shape).prop_map(|v| ("rollout".to_owned(), v)),
        1 => mostly(prop::sample::select(&["account_id", "user.profile.id", "$flag"][..]).prop_map(Value::from))
            .prop_map(|v| ("bucket_by".to_owned(), v)),
        1 => mostly(word().prop_map(Value::from)).prop_map(|v| ("salt".to_owned(), v)),
        1 => (word(), junk_json()),
    ];
    prop::collection::vec(field, 0..5)
}

fn flag() -> impl Strategy<Value = Value> {
    let body = prop::sample::select(SHAPES).prop_flat_map(|shape| {
        let override_ = prop_oneof![
            variant_name(shape).prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            targeting_fields(shape).prop_map(|f| Value::Object(f.into_iter().collect())),
            junk_json(),
        ];
        let environments = prop::collection::vec(
            (
                prop::sample::select(&["development", "production", "staging", "default"][..]),
                override_,
            ),
            0..3,
        )
        .prop_map(|e| Value::Object(e.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
        let meta = prop::collection::vec(
            (
                prop::sample::select(
                    &[
                        "description",
                        "kind",
                        "owner",
                        "tags",
                        "created",
                        "expires",
                        "ticket",
                        "link",
                    ][..],
                ),
                prop_oneof![
                    Just(json!("text")),
                    Just(json!("ops")),
                    Just(json!("2026-01-15")),
                    Just(json!(["tag"])),
                    scalar(),
                ],
            ),
            0..3,
        );
        (
            Just(shape),
            prop_oneof![9 => Just(shape.off.map(str::to_owned)), 1 => prop::option::of(word())],
            targeting_fields(shape),
            prop_oneof![3 => Just(None), 1 => environments.prop_map(Some)],
            meta,
        )
    });
    let body = body.prop_map(|(shape, off, fields, environments, meta)| {
        let mut f = Map::new();
        if let Some(v) = shape.variants {
            f.insert("variants".into(), serde_json::from_str(v).unwrap());
        }
        if let Some(off) = off {
            f.insert("off".into(), Value::from(off));
        }
        f.extend(fields);
        if let Some(e) = environments {
            f.insert("environments".into(), e);
        }
        f.extend(meta.into_iter().map(|(k, v)| (k.to_owned(), v)));
        Value::Object(f)
    });
    prop_oneof![
        1 => any::<bool>().prop_map(Value::from),
        12 => body,
        1 => junk_json(),
    ]
}

fn segment() -> impl Strategy<Value = Value> {
    mostly(
        (
            prop::option::of(listed_keys()),
            prop::option::of(listed_keys()),
            prop::option::of(prop::collection::vec(condition(), 0..3)),
        )
            .prop_map(|(include, exclude, when)| {
                let mut s = Map::new();
                if let Some(i) = include {
                    s.insert("include".into(), i);
                }
                if let Some(e) = exclude {
                    s.insert("exclude".into(), e);
                }
                if let Some(w) = when {
                    s.insert("when".into(), w.into());
                }
                Value::Object(s)
            }),
    )
}

/// Documents shaped like flag documents, with mistakes now and then: many of them load.
fn document() -> impl Strategy<Value = Value> {
    let flag_key = prop_oneof![
        12 => prop::sample::select(&["base", "other", "f", "new_checkout", "a.b-c_d"][..]).prop_map(str::to_owned),
        1 => word(),
    ];
    let environments = prop_oneof![
        12 => prop::sample::subsequence(&["development", "production", "staging"][..], 1..=3)
            .prop_map(Value::from),
        1 => Just(json!([])),
        1 => Just(json!(["development", "development"])),
        1 => Just(json!(["Bad Name"])),
        1 => junk_json(),
    ];
    (
        prop::option::of(environments),
        prop::option::of(prop::collection::vec(
            (prop::sample::select(&["internal", "beta"][..]), segment()),
            0..3,
        )),
        prop::collection::vec((flag_key, flag()), 0..5),
        prop_oneof![12 => Just(None), 1 => (word(), junk_json()).prop_map(Some)],
    )
        .prop_map(|(environments, segments, flags, extra)| {
            let mut doc = Map::new();
            if let Some(e) = environments {
                doc.insert("environments".into(), e);
            }
            if let Some(s) = segments {
                doc.insert(
                    "segments".into(),
                    Value::Object(s.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
                );
            }
            doc.insert("flags".into(), Value::Object(flags.into_iter().collect()));
            if let Some((k, v)) = extra {
                doc.insert(k, v);
            }
            Value::Object(doc)
        })
}

/// Text that looks a little like YAML: flag words, indentation, flow and block syntax, anchors,
/// tags, directives and arbitrary characters.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(|w| format!("{w}: ")),
        4 => prop::sample::select(WORDS).prop_map(str::to_owned),
        4 => prop::sample::select(
            &[
                "\n", "\n  ", "\n    ", "\n      ", "\n- ", "- ", ": ", ":", "{", "}", "[", "]",
                ", ", "&a ", "*a", "&b ", "*b", "!!str ", "!!int ", "!!binary ", "!custom ", "? ",
                "|\n  ", ">-\n  ", "---\n", "...\n", "# note\n", "'", "\"", "\\", "%YAML 1.2\n",
                "%TAG ! tag:x,2026:\n", "\t", "~", "null", "true", "on", "yes", "1e400", "-0",
                "0x1F", "0o17", ".inf", ".nan", "1_000", "2026-01-15", "99999999999999999999999",
                "\u{feff}", "\r\n", "<<: *a\n",
            ][..],
        )
        .prop_map(str::to_owned),
        1 => "\\PC{0,8}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(token, 0..120).prop_map(|t| t.concat())
}

/// Loads `text` and, when it loads, evaluates everything in it; when it does not, checks that it
/// says why.
fn check_text(text: &str) -> Result<(), TestCaseError> {
    match Config::from_text(text) {
        Ok(config) => exercise(&config),
        Err(e) => explained(&e),
    }
}

fn check_json(doc: &Value) -> Result<(), TestCaseError> {
    match Config::from_json(doc) {
        Ok(config) => exercise(&config),
        Err(e) => explained(&e),
    }
}

fn explained(e: &vexil_engine::LoadError) -> Result<(), TestCaseError> {
    prop_assert!(!e.diagnostics.is_empty());
    for d in &e.diagnostics {
        prop_assert!(!d.message.is_empty(), "{d:?}");
        prop_assert!(!d.to_string().is_empty());
    }
    prop_assert!(!e.to_string().is_empty());
    Ok(())
}

/// Evaluates every flag of a loaded document for a few contexts: no panic, a variant of the
/// flag's own, and the same answer twice.
fn exercise(config: &Config) -> Result<(), TestCaseError> {
    let contexts = [
        Context::new(),
        Context::with_targeting_key("user-1"),
        Context::new()
            .with("targetingKey", 42)
            .with("plan", "pro")
            .with("account_id", "acme")
            .with("user", json!({"profile": {"id": 7}})),
    ];
    for ctx in &contexts {
        let first = evaluate_everything(config, ctx);
        prop_assert_eq!(&first, &evaluate_everything(config, ctx));
        for env_name in config.environments() {
            let env = config.env(env_name).unwrap();
            for (flag, ev) in env.evaluate_all(ctx, now()) {
                prop_assert!(ev.error.is_none(), "{:?}", ev);
                let variant = ev.variant.unwrap();
                let value = flag.variants().find(|(n, _)| *n == variant).map(|(_, v)| v);
                prop_assert_eq!(value, ev.value, "{} in {}", flag.key(), env_name);
                let key = flag.key();
                let _ = env.bool_value(key, ctx, now(), false);
                let _ = env.string_value(key, ctx, now(), "");
                let _ = env.number_value(key, ctx, now(), 0.0);
                let _ = env.json_value(key, ctx, now(), &Value::Null);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics(doc in junk_json()) {
        check_json(&doc)?;
        check_text(&doc.to_string())?;
    }

    #[test]
    fn flag_shaped_documents_never_panic(doc in document()) {
        check_json(&doc)?;
        let text = serde_json::to_string_pretty(&doc).unwrap();
        check_text(&text)?;
        // A document that loads from JSON loads, and evaluates the same, from its text.
        if let Ok(config) = Config::from_json(&doc) {
            let again = Config::from_text(&text);
            prop_assert!(again.is_ok(), "{text}\n{:?}", again.err());
            let again = again.unwrap();
            for ctx in [Context::new(), Context::with_targeting_key("user-1")] {
                prop_assert_eq!(evaluate_everything(&config, &ctx), evaluate_everything(&again, &ctx));
            }
        }
    }

    #[test]
    fn yamlish_text_never_panics(text in yamlish()) {
        check_text(&text)?;
    }

    #[test]
    fn edited_documents_never_panic(
        edits in prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0usize..12,
                prop_oneof![Just(String::new()), word(), "\\PC{0,4}", Just("\n  ".to_owned())],
            ),
            1..3,
        ),
    ) {
        // Cut, insert and replace at random places in a document that uses every feature.
        let mut text: Vec<char> = EVERYTHING.chars().collect();
        for (at, len, insert) in edits {
            let start = at.index(text.len() + 1);
            let end = (start + len).min(text.len());
            text.splice(start..end, insert.chars());
        }
        check_text(&text.into_iter().collect::<String>())?;
    }
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    for text in [
        "[".repeat(100_000),
        "{a: ".repeat(100_000),
        format!("flags: {}1{}", "[".repeat(10_000), "]".repeat(10_000)),
        "- ".repeat(10_000),
        (0..2_000).fold(String::new(), |mut s, i| {
            let _ = writeln!(s, "{}k:", " ".repeat(i));
            s
        }),
    ] {
        let e = Config::from_text(&text).unwrap_err();
        assert!(!e.diagnostics.is_empty());
    }
    let mut deep = json!(true);
    for i in 0..1_000 {
        deep = if i % 2 == 0 {
            json!([deep])
        } else {
            json!({"flags": deep})
        };
    }
    let e = Config::from_json(&json!({"flags": {"f": deep}})).unwrap_err();
    assert!(!e.diagnostics.is_empty());
}

// (f) No context makes evaluation panic, against a document that uses every operator.

/// Every operator, every kind of condition, segments, prerequisites, targets, rollouts with
/// `bucket_by`, environments, and values of every type.
const EVERYTHING: &str = r#"
environments: [development, production]
segments:
  internal:
    include: [user-1, 42]
    exclude: [user-9]
    when:
      - {attribute: email, op: ends_with, values: ["@company.com"], ignore_case: true}
  beta:
    when:
      - any:
          - {segment: internal}
          - {attribute: groups, op: contains, values: [beta]}
flags:
  base:
    rollout: 50
  everything:
    variants: {a: "A", b: "B", c: "C", d: "D"}
    off: a
    prerequisites: [{flag: base, variants: [on, off]}]
    targets: {b: [user-2, 7]}
    rules:
      - name: in
        when: [{attribute: country, op: in, values: [DE, FR, 1, true]}]
        serve: b
      - when:
          - {attribute: country, op: not_in, values: [us, gb], ignore_case: true}
          - {attribute: plan, op: exists}
        serve: c
      - when: [{attribute: name, op: contains, values: [bob, "ü"], ignore_case: true}]
        serve: d
      - when: [{attribute: name, op: starts_with, values: [Al]}]
        rollout: {a: 10, b: 20, c: 30.5, d: 39.5}
        bucket_by: user.profile.id
      - when: [{attribute: email, op: ends_with, value: ".org"}]
        rollout: {a: 25, b: 25, c: 25, d: 25}
        bucket_by: company
        salt: s1
      - when: [{attribute: email, op: matches, values: ["^[a-z]+@", "ÄÖÜ$"], ignore_case: true}]
        serve: b
      - when: [{attribute: age, op: lt, values: [18]}]
        serve: c
      - when: [{attribute: age, op: lte, values: ["21", 0.5]}]
        serve: c
      - when: [{attribute: score, op: gt, values: [100]}]
        serve: d
      - when: [{attribute: score, op: gte, values: [-1.5e300]}]
        serve: d
      - when: [{attribute: app_version, op: semver_eq, values: ["1.0.0"]}]
        serve: a
      - when: [{attribute: app_version, op: semver_lt, values: ["1.0.0-alpha.1"]}]
        serve: b
      - when: [{attribute: app_version, op: semver_lte, values: ["1.2"]}]
        serve: c
      - when: [{attribute: app_version, op: semver_gt, values: ["v2.0.0+build.7"]}]
        serve: d
      - when: [{attribute: app_version, op: semver_gte, values: [2, "1.9.9-rc.10"]}]
        serve: a
      - when: [{attribute: created_at, op: before, values: ["2026-01-01T00:00:00Z", 1700000000]}]
        serve: b
      - when: [{attribute: created_at, op: after, values: ["2026-01-01"]}]
        serve: c
      - when: [{attribute: $now, op: after, values: ["2026-12-01T09:00:00Z"]}]
        serve: d
      - when: [{attribute: $now, op: before, values: [0]}]
        serve: a
      - when:
          - {attribute: $flag, op: in, values: [everything]}
          - {attribute: deleted, op: not_exists}
          - {not: {segment: beta}}
        rollout: {a: 0, b: 100}
        bucket_by: account_id
      - when:
          - all:
              - {segment: internal}
              - {not: {attribute: user.profile.tier, op: in, values: [gold, Platinum], ignore_case: true}}
        serve: b
    rollout: {a: 40, b: 30, c: 20, d: 10}
    bucket_by: account_id
    environments:
      production:
        rules:
          - when: [{attribute: $flag, op: starts_with, values: [every]}]
            serve: c
        rollout: {a: 50, b: 50}
  numbers:
    variants: {one: 1, two: 2.5}
    off: one
    rules: [{when: [{attribute: x, op: exists}], serve: two}]
    environments: {development: two}
  objects:
    variants: {x: {a: 1}, y: {b: [1, 2]}}
    off: x
    environments: {development: y}
  disabled:
    enabled: false
  needs:
    prerequisites: [{flag: everything, variants: [b, c]}, {flag: disabled}]
    serve: on
  on_for_some:
    targets: {on: [user-3]}
    rules: [{when: [{segment: beta}], rollout: 33.333}]
    environments:
      production: true
  static: true
"#;

/// Attribute names the document above uses, and some it does not.
const ATTRIBUTES: &[&str] = &[
    "targetingKey",
    "country",
    "plan",
    "name",
    "email",
    "age",
    "score",
    "app_version",
    "created_at",
    "deleted",
    "groups",
    "user",
    "user.profile.id",
    "user.profile.tier",
    "account_id",
    "company",
    "x",
    "$now",
    "$flag",
    "",
];

/// Strings that have tripped up string handling somewhere.
const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "DE",
    "us",
    "gold",
    "Al",
    "bob@company.COM",
    "x@y.org",
    "ÄÖÜ",
    "İstanbul",
    "ß",
    "ﬃ",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "\u{1F600}",
    "a\u{301}",
    "1.0.0",
    "2.3.0-rc.1+build.5",
    "v2",
    "1.2.3.4",
    "18446744073709551616.0.0",
    "1.-1.0",
    "2026-01-01",
    "2026-02-30",
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59Z",
    "-009999-01-01T00:00:00Z",
    "1e400",
    "-1e400",
    "NaN",
    "inf",
    " 12 ",
    "0x10",
    "1_000",
    "123",
    "-0",
];

fn huge_string() -> impl Strategy<Value = String> {
    (
        any::<char>(),
        50_000usize..=100_000,
        prop::sample::select(&["", "@company.com", "ÄÖÜ", ".0.0", "Z"][..]),
    )
        .prop_map(|(c, bytes, suffix)| {
            let mut s = c.to_string().repeat(bytes / c.len_utf8());
            s.push_str(suffix);
            s
        })
}

fn context_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(ODD_STRINGS).prop_map(Value::from),
        2 => "\\PC{0,20}".prop_map(Value::from),
        1 => any::<String>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        1 => (-1e13f64..1e13).prop_map(Value::from),
    ]
}

fn context_value() -> impl Strategy<Value = Value> {
    let tree = context_scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(&["profile", "id", "tier", "x"][..]),
                    inner
                ),
                0..4
            )
            .prop_map(|e| Value::Object(e.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    });
    // Nested up to about a hundred levels, along the paths the document looks up.
    let deep = (
        context_scalar(),
        prop::collection::vec(
            prop_oneof![
                Just(None),
                prop::sample::select(&["profile", "id", "tier", "user"][..]).prop_map(Some),
            ],
            0..=100,
        ),
    )
        .prop_map(|(leaf, levels)| {
            levels.into_iter().fold(leaf, |v, level| match level {
                None => json!([v]),
                Some(key) => json!({ key: v }),
            })
        });
    prop_oneof![
        6 => tree,
        2 => deep,
        1 => huge_string().prop_map(Value::from),
        1 => prop::collection::vec(context_scalar(), 0..1_000).prop_map(Value::Array),
    ]
}

fn context() -> impl Strategy<Value = Map<String, Value>> {
    let name = prop_oneof![
        8 => prop::sample::select(ATTRIBUTES).prop_map(str::to_owned),
        1 => "\\PC{0,10}",
    ];
    prop::collection::vec((name, context_value()), 0..12).prop_map(|e| e.into_iter().collect())
}

fn any_time() -> impl Strategy<Value = jiff::Timestamp> {
    prop_oneof![
        (jiff::Timestamp::MIN.as_second()..=jiff::Timestamp::MAX.as_second())
            .prop_map(|s| jiff::Timestamp::from_second(s).unwrap()),
        (1_600_000_000i64..1_900_000_000).prop_map(|s| jiff::Timestamp::from_second(s).unwrap()),
        Just(jiff::Timestamp::MIN),
        Just(jiff::Timestamp::MAX),
    ]
}

#[test]
fn the_everything_document_loads() {
    let config = Config::from_text(EVERYTHING).unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    assert_eq!(config.flags().len(), 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_contexts_never_panic(attributes in context(), now in any_time()) {
        let config = Config::from_text(EVERYTHING).unwrap();
        let bad_key = matches!(
            attributes.get("targetingKey"),
            Some(Value::Bool(_) | Value::Array(_) | Value::Object(_))
        );
        let ctx = Context::from(attributes);
        for env_name in config.environments() {
            let env = config.env(env_name).unwrap();
            for flag in config.flags() {
                let key = flag.key();
                let ev = env.evaluate(key, &ctx, now);
                if bad_key {
                    prop_assert_eq!(ev.error, Some(EvalError::InvalidTargetingKey));
                    prop_assert_eq!(ev.reason, Reason::Error);
                    prop_assert!(ev.value.is_none());
                } else {
                    prop_assert!(ev.error.is_none(), "{:?}", ev);
                    let variant = ev.variant.unwrap();
                    prop_assert!(flag.variants().any(|(n, v)| n == variant && Some(v) == ev.value));
                }
                prop_assert_eq!(ev, env.evaluate(key, &ctx, now));
                let _ = env.bool_value(key, &ctx, now, false);
                let _ = env.string_value(key, &ctx, now, "");
                let _ = env.number_value(key, &ctx, now, 0.0);
                let _ = env.json_value(key, &ctx, now, &Value::Null);
            }
            prop_assert_eq!(env.evaluate_all(&ctx, now).count(), config.flags().len());
        }
    }
}
