//! Explanations (`Env::explain`): the same result as `evaluate` for every input, steps that agree
//! with that result, and texts a person can read.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};
use vexil_engine::{Config, Context, Env, Evaluation, Explanation, Reason, Scope, jiff};

use crate::vectors::evaluation_cases;

fn now() -> jiff::Timestamp {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

/// Explains and evaluates, checks that both agree, and returns the explanation.
fn explain<'a>(env: &Env<'a>, flag: &str, ctx: &Context, now: jiff::Timestamp) -> Explanation<'a> {
    let x = env.explain(flag, ctx, now);
    let ev = env.evaluate(flag, ctx, now);
    assert_eq!(
        x.evaluation,
        ev,
        "{flag} in {} for {:?} at {now}",
        env.name(),
        ctx.attributes()
    );
    steps_agree(&x, &ev);
    x
}

/// The steps of an explanation lead to its result.
fn steps_agree(x: &Explanation<'_>, ev: &Evaluation<'_>) {
    let what = format!("{}: {x:#?}", x.summary);
    assert!(!x.summary.is_empty(), "{what}");
    assert!(x.summary.ends_with('.'), "{what}");
    if ev.error.is_some() {
        assert!(x.rules.is_empty() && x.default.is_none(), "{what}");
        return;
    }
    let variant = ev.variant.unwrap();
    assert!(
        x.summary.contains(&format!("\"{variant}\"")),
        "the summary names the variant served: {what}"
    );
    // Rules are listed in order, and every one before the last did not decide.
    for (i, rule) in x.rules.iter().enumerate() {
        assert_eq!(
            rule.matched,
            rule.conditions.iter().all(|c| c.held),
            "{what}"
        );
        if i + 1 < x.rules.len() || ev.rule.is_none() {
            assert!(!rule.matched || rule.skipped, "{what}");
            assert!(rule.variant.is_none(), "{what}");
        }
        for (j, c) in rule.conditions.iter().enumerate() {
            assert_eq!(c.index, j, "{what}");
            assert!(!c.text.is_empty(), "{what}");
        }
    }
    match ev.reason {
        Reason::Disabled => {
            assert!(!x.enabled, "{what}");
            assert!(x.prerequisites.is_empty() && x.rules.is_empty(), "{what}");
        }
        Reason::PrerequisiteFailed => {
            assert!(x.enabled, "{what}");
            assert!(x.prerequisites.iter().any(|p| !p.met), "{what}");
            assert!(x.targets.is_none() && x.rules.is_empty(), "{what}");
        }
        Reason::TargetingMatch | Reason::Split if ev.rule.is_some() => {
            let rule = ev.rule.unwrap();
            let last = x.rules.last().unwrap();
            assert_eq!(last.index, rule.index, "{what}");
            assert_eq!(last.name, rule.name, "{what}");
            assert!(last.matched && !last.skipped, "{what}");
            assert_eq!(last.variant, Some(variant), "{what}");
            assert_eq!(last.bucket.is_some(), ev.reason == Reason::Split, "{what}");
            assert!(x.default.is_none(), "{what}");
        }
        Reason::TargetingMatch => {
            let targets = x.targets.as_ref().unwrap();
            assert!(targets.matched, "{what}");
            assert_eq!(targets.variant, Some(variant), "{what}");
            assert!(x.rules.is_empty(), "{what}");
        }
        Reason::Split | Reason::Default | Reason::Static => {
            let default = x.default.as_ref().unwrap();
            assert_eq!(default.variant, variant, "{what}");
            assert_eq!(
                default.bucket.is_some(),
                ev.reason == Reason::Split,
                "{what}"
            );
            assert!(x.prerequisites.iter().all(|p| p.met), "{what}");
            assert!(x.targets.as_ref().is_none_or(|t| !t.matched), "{what}");
        }
        Reason::Error => unreachable!("errors carry an error"),
    }
}

// The vectors: every case, and every flag of every suite in every environment for every context
// the vectors use.

#[test]
fn explanations_agree_with_every_evaluation_vector() {
    let cases = evaluation_cases();
    let mut contexts: Vec<Context> = Vec::new();
    let mut checked = 0;
    for (suite, flags, case) in &cases {
        let config = Config::from_node(flags).unwrap_or_else(|e| panic!("{suite}: {e}"));
        let env = config.env(case["environment"].as_str().unwrap()).unwrap();
        let ctx = Context::try_from(case["context"].clone()).unwrap();
        let now = case["now"].as_str().unwrap().parse().unwrap();
        explain(&env, case["flag"].as_str().unwrap(), &ctx, now);
        contexts.push(ctx);
        checked += 1;
    }
    assert!(checked > 30);
    let mut suites: Vec<_> = cases.iter().map(|(s, f, _)| (s, f)).collect();
    suites.dedup_by_key(|(s, _)| *s);
    for (suite, flags) in suites {
        let config = Config::from_node(flags).unwrap_or_else(|e| panic!("{suite}: {e}"));
        for env_name in config.environments() {
            let env = config.env(env_name).unwrap();
            for flag in config.flags() {
                for ctx in &contexts {
                    for at in ["2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"] {
                        explain(&env, flag.key(), ctx, at.parse().unwrap());
                    }
                }
            }
        }
    }
}

/// Every attribute the vectors' contexts use, with every value they give it.
fn vector_attributes() -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (_, _, case) in evaluation_cases() {
        for (k, v) in case["context"].as_object().unwrap() {
            let values = out.entry(k.clone()).or_default();
            if !values.contains(v) {
                values.push(v.clone());
            }
        }
    }
    out
}

/// A random attribute value: one the vectors use (for this attribute or another), or anything.
fn attribute_value() -> impl Strategy<Value = Choice> {
    prop_oneof![
        6 => any::<Index>().prop_map(Choice::Same),
        2 => any::<Index>().prop_map(Choice::Other),
        1 => prop_oneof![
            "\\PC{0,12}".prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
            Just(json!(["admin", "dev"])),
            Just(json!({"country": "DE", "id": 7})),
        ]
        .prop_map(Choice::Any),
    ]
}

#[derive(Debug, Clone)]
enum Choice {
    /// A value the vectors give this attribute.
    Same(Index),
    /// A value the vectors give any attribute.
    Other(Index),
    /// Anything.
    Any(Value),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn explanations_agree_for_random_contexts_on_the_vectors(
        suite in any::<Index>(),
        attributes in prop::collection::vec((any::<Index>(), attribute_value()), 0..8),
        seconds in -100_000_000i64..100_000_000,
    ) {
        let cases = evaluation_cases();
        let pool = vector_attributes();
        let names: Vec<&String> = pool.keys().collect();
        let every: Vec<&Value> = pool.values().flatten().collect();
        let mut ctx = Map::new();
        for (name, choice) in attributes {
            let name = names[name.index(names.len())];
            let value = match choice {
                Choice::Same(i) => pool[name][i.index(pool[name].len())].clone(),
                Choice::Other(i) => every[i.index(every.len())].clone(),
                Choice::Any(v) => v,
            };
            ctx.insert(name.clone(), value);
        }
        let ctx = Context::from(ctx);
        let (name, flags, _) = &cases[suite.index(cases.len())];
        let config = Config::from_node(flags).unwrap_or_else(|e| panic!("{name}: {e}"));
        let at = jiff::Timestamp::from_second(now().as_second() + seconds).unwrap();
        for env_name in config.environments() {
            let env = config.env(env_name).unwrap();
            for flag in config.flags() {
                explain(&env, flag.key(), &ctx, at);
            }
        }
    }
}

// Random documents: every feature, combined at random, and random contexts.

/// Conditions of every form and operator, on the attributes `random_context` sets.
const CONDITIONS: &[&str] = &[
    r#"{"attribute": "plan", "op": "in", "values": ["pro", "enterprise"]}"#,
    r#"{"attribute": "plan", "op": "not_in", "values": ["free"], "ignore_case": true}"#,
    r#"{"attribute": "email", "op": "ends_with", "values": ["@company.com"], "ignore_case": true}"#,
    r#"{"attribute": "email", "op": "contains", "values": ["ann", "bob"]}"#,
    r#"{"attribute": "email", "op": "starts_with", "value": "a"}"#,
    r#"{"attribute": "email", "op": "matches", "values": ["^[a-c].*@"]}"#,
    r#"{"attribute": "age", "op": "gte", "values": [18]}"#,
    r#"{"attribute": "age", "op": "lt", "values": [13, "21"]}"#,
    r#"{"attribute": "app_version", "op": "semver_gte", "values": ["2.3.0"]}"#,
    r#"{"attribute": "app_version", "op": "semver_lt", "values": ["2.3.0-beta.2"]}"#,
    r#"{"attribute": "$now", "op": "after", "values": ["2026-12-01T09:00:00Z"]}"#,
    r#"{"attribute": "$now", "op": "before", "values": ["2026-03-01"]}"#,
    r#"{"attribute": "signup", "op": "before", "values": [1767225600]}"#,
    r#"{"attribute": "$flag", "op": "starts_with", "values": ["f"]}"#,
    r#"{"attribute": "user.profile.id", "op": "in", "values": [7, 8]}"#,
    r#"{"attribute": "groups", "op": "in", "values": ["admin"]}"#,
    r#"{"attribute": "account_id", "op": "exists"}"#,
    r#"{"attribute": "legacy", "op": "not_exists"}"#,
    r#"{"segment": "internal"}"#,
    r#"{"segment": "beta"}"#,
    r#"{"not": {"attribute": "country", "op": "in", "values": ["DE", "FR"]}}"#,
    r#"{"any": [{"attribute": "country", "op": "in", "values": ["DE"]}, {"segment": "beta"}]}"#,
    r#"{"all": [{"attribute": "plan", "op": "in", "values": ["pro"]}, {"attribute": "age", "op": "gt", "values": [30]}]}"#,
    r#"{"any": []}"#,
    r#"{"all": []}"#,
];

fn condition() -> impl Strategy<Value = Value> {
    prop::sample::select(CONDITIONS).prop_map(|c| serde_json::from_str(c).unwrap())
}

/// A boolean flag's targeting: every field, each present or not.
fn targeting(earlier: usize) -> impl Strategy<Value = Map<String, Value>> {
    let rollout = prop_oneof![
        (0u32..=100).prop_map(|p| json!(p)),
        (0u32..=100_000).prop_map(|t| {
            let on = f64::from(t) / 1000.0;
            json!({"on": on, "off": (100_000 - t) as f64 / 1000.0})
        }),
    ];
    let bucket_by = prop_oneof![
        3 => Just(None),
        1 => Just(Some("account_id")),
        1 => Just(Some("user.profile.id")),
    ];
    let rule = (
        prop::option::of("[a-z]{1,8}"),
        prop::collection::vec(condition(), 0..4),
        prop_oneof![
            prop::sample::select(&["on", "off"][..]).prop_map(|v| ("serve", json!(v))),
            rollout.clone().prop_map(|r| ("rollout", r)),
        ],
        bucket_by.clone(),
    )
        .prop_map(|(name, when, (how, what), bucket_by)| {
            let mut r = json!({"when": when, how: what});
            if let Some(n) = name {
                r["name"] = json!(n);
            }
            if let Some(b) = bucket_by {
                r["bucket_by"] = json!(b);
            }
            r
        });
    (
        prop::option::of(any::<bool>()),
        prop::collection::vec(
            (
                0..earlier.max(1),
                prop::sample::subsequence(&["on", "off"][..], 1..=2),
            ),
            0..if earlier == 0 { 1 } else { 3 },
        ),
        prop::option::of(prop::sample::subsequence(
            &["user-1", "user-2", "42"][..],
            1..=2,
        )),
        prop::collection::vec(rule, 0..4),
        prop_oneof![
            Just(None),
            prop::sample::select(&["on", "off"][..]).prop_map(|v| Some(("serve", json!(v)))),
            rollout.prop_map(|r| Some(("rollout", r))),
        ],
        bucket_by,
        prop::option::of("[a-z]{1,6}"),
    )
        .prop_map(
            move |(enabled, prerequisites, targets, rules, default, bucket_by, salt)| {
                let mut t = Map::new();
                if let Some(e) = enabled {
                    t.insert("enabled".into(), json!(e));
                }
                if earlier > 0 && !prerequisites.is_empty() {
                    let ps: Vec<Value> = prerequisites
                        .into_iter()
                        .map(|(f, vs)| json!({"flag": format!("f{f}"), "variants": vs}))
                        .collect();
                    t.insert("prerequisites".into(), json!(ps));
                }
                if let Some(keys) = targets {
                    t.insert("targets".into(), json!({"on": keys}));
                }
                if !rules.is_empty() {
                    t.insert("rules".into(), json!(rules));
                }
                if let Some((how, what)) = default {
                    t.insert(how.into(), what);
                }
                if let Some(b) = bucket_by {
                    t.insert("bucket_by".into(), json!(b));
                }
                if let Some(s) = salt {
                    t.insert("salt".into(), json!(s));
                }
                t
            },
        )
}

fn flag(earlier: usize) -> BoxedStrategy<Value> {
    let environment = prop_oneof![
        Just(json!("on")),
        Just(json!(false)),
        targeting(earlier).prop_map(Value::Object),
    ];
    prop_oneof![
        1 => any::<bool>().prop_map(Value::from).boxed(),
        6 => (
            targeting(earlier),
            prop::collection::btree_map(
                prop::sample::select(&["development", "staging", "production"][..]),
                environment,
                0..3,
            ),
        )
            .prop_map(|(mut t, overrides)| {
                if !overrides.is_empty() {
                    t.insert("environments".into(), json!(overrides));
                }
                Value::Object(t)
            })
            .boxed(),
    ]
    .boxed()
}

fn document() -> impl Strategy<Value = Value> {
    (flag(0), flag(1), flag(2), flag(3)).prop_map(|(a, b, c, d)| {
        json!({
            "environments": ["development", "staging", "production"],
            "segments": {
                "internal": {
                    "include": ["user-1"],
                    "exclude": ["user-2"],
                    "when": [{"attribute": "email", "op": "ends_with", "values": ["@company.com"]}],
                },
                "beta": {"when": [{"segment": "internal"}, {"attribute": "plan", "op": "in", "values": ["pro"]}]},
            },
            "flags": {"f0": a, "f1": b, "f2": c, "f3": d},
        })
    })
}

fn random_context() -> impl Strategy<Value = Context> {
    let value = |pool: &'static [&'static str]| {
        prop::option::of(
            prop::sample::select(pool).prop_map(|v| serde_json::from_str::<Value>(v).unwrap()),
        )
    };
    (
        value(&[
            r#""user-1""#,
            r#""user-2""#,
            r#""user-3""#,
            "42",
            r#""42""#,
            "true",
            "[1]",
        ]),
        value(&[r#""pro""#, r#""FREE""#, r#""enterprise""#, "7"]),
        value(&[
            r#""ann@company.com""#,
            r#""Bob@COMPANY.com""#,
            r#""carl@x.org""#,
            "[]",
        ]),
        value(&["17", "18", r#""21""#, "30.5", r#""old""#]),
        value(&[r#""2.3.0""#, r#""2.3.0-beta.1""#, r#""2.10""#, r#""x""#]),
        value(&[r#""acme""#, "12", "false", r#"{"id": 1}"#, "null"]),
        value(&[
            r#"{"profile": {"id": 7}}"#,
            r#"{"profile": {"id": "8"}}"#,
            r#"{"profile": 1}"#,
        ]),
        value(&[r#"["admin", "dev"]"#, r#""admin""#, "[]"]),
        value(&[r#""DE""#, r#""US""#]),
        value(&[r#""2025-01-01""#, "1800000000", r#""later""#]),
        value(&["1"]),
    )
        .prop_map(
            |(tk, plan, email, age, version, account, user, groups, country, signup, legacy)| {
                let mut ctx = Map::new();
                for (name, v) in [
                    ("targetingKey", tk),
                    ("plan", plan),
                    ("email", email),
                    ("age", age),
                    ("app_version", version),
                    ("account_id", account),
                    ("user", user),
                    ("groups", groups),
                    ("country", country),
                    ("signup", signup),
                    ("legacy", legacy),
                ] {
                    if let Some(v) = v {
                        ctx.insert(name.into(), v);
                    }
                }
                Context::from(ctx)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn explanations_agree_for_random_documents_and_contexts(
        doc in document(),
        contexts in prop::collection::vec(random_context(), 1..6),
        seconds in -50_000_000i64..50_000_000,
    ) {
        let config = Config::from_json(&doc).unwrap_or_else(|e| panic!("{e}\n{doc:#}"));
        let at = jiff::Timestamp::from_second(now().as_second() + seconds).unwrap();
        for env_name in config.environments() {
            let env = config.env(env_name).unwrap();
            for ctx in &contexts {
                for flag in config.flags() {
                    explain(&env, flag.key(), ctx, at);
                }
            }
        }
    }
}

// What explanations say.

const DOCUMENT: &str = r##"
environments: [development, staging, production]
segments:
  internal:
    include: [contractor-7]
    when:
      - {attribute: email, op: ends_with, values: ["@company.com"], ignore_case: true}
flags:
  payments:
    environments:
      staging: on
      production: {enabled: false, serve: on}
  checkout:
    targets: {on: [user-123]}
    rules:
      - name: staff
        when: [{segment: internal}]
        serve: on
      - name: enterprise
        when:
          - {attribute: plan, op: in, values: [enterprise]}
          - {attribute: app_version, op: semver_gte, values: ["2.3.0"]}
        serve: on
      - name: eu
        when: [{attribute: country, op: in, values: [DE, FR]}]
        rollout: {on: 10, off: 90}
    rollout: 50
    environments:
      development: on
      staging: {enabled: false}
  gated:
    prerequisites: [{flag: payments}]
    serve: on
  experiment:
    variants: {control: "#0055ff", green: "#00aa55", orange: "#ff8800"}
    off: control
    rollout: {control: 34, green: 33, orange: 33}
    bucket_by: account_id
  by_account:
    rules:
      - name: half
        when: [{attribute: plan, op: in, values: [pro]}]
        rollout: 50
        bucket_by: account_id
    serve: off
  launch:
    rules:
      - when:
          - {attribute: $now, op: after, values: ["2026-12-01T09:00:00Z"]}
          - {not: {attribute: country, op: in, values: [DE, FR]}}
          - any:
              - {segment: internal}
              - {attribute: email, op: matches, values: ["^(ann|bob)@"], ignore_case: true}
          - {attribute: age, op: gte, values: [18, 21.5]}
          - {attribute: customer, op: in, values: [c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11, c12, c13]}
          - {attribute: legacy_id, op: not_exists}
          - {attribute: $flag, op: in, values: [launch]}
          - {attribute: app_version, op: semver_lt, values: ["3", "2.0.0-rc.1"]}
          - {attribute: note, op: contains, values: ["a, b", "say \"hi\""]}
        serve: on
"##;

fn config() -> Config {
    Config::from_text(DOCUMENT).unwrap()
}

fn ctx(v: Value) -> Context {
    Context::try_from(v).unwrap()
}

#[test]
fn a_rule_names_its_conditions_and_each_one_is_evaluated() {
    let config = config();
    let env = config.env("production").unwrap();
    let x = explain(
        &env,
        "checkout",
        &ctx(
            json!({"targetingKey": "u1", "plan": "enterprise", "app_version": "2.4.0", "email": "a@b.com"}),
        ),
        now(),
    );
    assert_eq!(
        x.summary,
        "Rule 2 \"enterprise\" matched: plan in [enterprise] held and app_version semver_gte 2.3.0 held; served \"on\"."
    );
    assert_eq!(x.scope, Scope::Flag);
    assert!(x.enabled);
    let targets = x.targets.as_ref().unwrap();
    assert!(!targets.matched);
    assert_eq!(targets.key.as_deref(), Some("u1"));
    assert_eq!(x.rules.len(), 2, "only the rules tried");
    assert_eq!(x.rules[0].conditions[0].text, "in segment internal");
    assert!(!x.rules[0].conditions[0].held);
    assert!(!x.rules[0].matched);
    assert_eq!(x.rules[1].outcome, "serve on");
    assert_eq!(x.rules[1].variant, Some("on"));
    assert!(x.default.is_none());

    // An early condition that fails does not hide the later ones.
    let x = explain(
        &env,
        "checkout",
        &ctx(json!({"targetingKey": "u1", "plan": "free", "app_version": "2.4.0"})),
        now(),
    );
    let enterprise = &x.rules[1];
    assert!(!enterprise.matched);
    let held: Vec<bool> = enterprise.conditions.iter().map(|c| c.held).collect();
    assert_eq!(held, [false, true]);
    assert_eq!(x.rules.len(), 3, "every rule was tried");
    assert_eq!(x.rules[2].outcome, "rollout on 10%, off 90%");
    let default = x.default.as_ref().unwrap();
    assert_eq!(default.text, "rollout on 50%, off 50%");
    let bucket = vexil_engine::bucket("checkout", "u1");
    assert_eq!(default.bucket, Some(bucket));
    let variant = if bucket < 50_000 { "on" } else { "off" };
    assert_eq!(
        x.summary,
        format!(
            "No target or rule matched; the default rollout put bucket {bucket} of 100000 in \"{variant}\"."
        )
    );
}

#[test]
fn a_rule_rollout_gives_its_bucket() {
    let config = config();
    let env = config.env("production").unwrap();
    let x = explain(
        &env,
        "checkout",
        &ctx(json!({"targetingKey": "u7", "country": "DE"})),
        now(),
    );
    let bucket = vexil_engine::bucket("checkout", "u7");
    let variant = if bucket < 10_000 { "on" } else { "off" };
    assert_eq!(
        x.summary,
        format!(
            "Rule 3 \"eu\" matched: country in [DE, FR] held; its rollout put bucket {bucket} of 100000 in \"{variant}\"."
        )
    );
    assert_eq!(x.rules[2].bucket, Some(bucket));
    assert_eq!(x.evaluation.reason, Reason::Split);
}

#[test]
fn targets_disabled_overrides_and_prerequisites() {
    let config = config();
    let production = config.env("production").unwrap();
    let x = explain(
        &production,
        "checkout",
        &ctx(json!({"targetingKey": "user-123"})),
        now(),
    );
    assert_eq!(
        x.summary,
        "The targeting key \"user-123\" is listed in targets for \"on\"; served \"on\"."
    );
    assert!(x.rules.is_empty());

    let staging = config.env("staging").unwrap();
    let x = explain(
        &staging,
        "checkout",
        &ctx(json!({"targetingKey": "u1"})),
        now(),
    );
    assert_eq!(
        x.summary,
        "The flag is disabled in staging; served its off variant \"off\"."
    );
    assert_eq!(x.scope, Scope::Environment);
    assert!(!x.enabled);
    assert!(x.targets.is_none() && x.rules.is_empty() && x.default.is_none());

    let development = config.env("development").unwrap();
    let x = explain(&development, "checkout", &Context::new(), now());
    assert_eq!(x.scope, Scope::Environment);
    assert_eq!(x.evaluation.reason, Reason::Static);
    assert_eq!(
        x.summary,
        "The flag has no targeting in development; served \"on\" to everyone."
    );
    assert_eq!(x.default.as_ref().unwrap().text, "serve on");

    let x = explain(&production, "gated", &Context::new(), now());
    assert_eq!(x.scope, Scope::Flag);
    assert_eq!(
        x.summary,
        "Prerequisite payments was served \"off\", not one of [on]; served \"off\"."
    );
    let p = &x.prerequisites[0];
    assert_eq!(
        (p.flag, p.required.as_slice(), p.served, p.met),
        ("payments", &["on"][..], Some("off"), false)
    );
    assert!(x.default.is_none());

    let x = explain(&staging, "gated", &Context::new(), now());
    assert!(x.prerequisites[0].met);
    assert_eq!(
        x.summary,
        "Its prerequisites were met; served the default \"on\"."
    );
}

#[test]
fn a_rollout_without_its_bucketing_attribute_is_skipped() {
    let config = config();
    let env = config.env("production").unwrap();
    let x = explain(
        &env,
        "by_account",
        &ctx(json!({"targetingKey": "u1", "plan": "pro"})),
        now(),
    );
    let rule = &x.rules[0];
    assert!(rule.matched && rule.skipped);
    assert_eq!(rule.note.as_deref(), Some("the context has no account_id"));
    assert_eq!(rule.outcome, "rollout on 50%, off 50% by account_id");
    assert_eq!(
        x.summary,
        "No rule decided (rule 1 \"half\" matched, but its rollout could not bucket: the context has no account_id); served the default \"off\"."
    );

    let x = explain(&env, "experiment", &Context::new(), now());
    assert_eq!(
        x.summary,
        "The default rollout could not bucket: the context has no account_id; served the off variant \"control\"."
    );
    let default = x.default.as_ref().unwrap();
    assert_eq!((default.bucket, default.variant), (None, "control"));
    assert_eq!(x.evaluation.reason, Reason::Default);

    let x = explain(
        &env,
        "experiment",
        &ctx(json!({"account_id": {"id": 1}})),
        now(),
    );
    assert_eq!(
        x.default.as_ref().unwrap().note.as_deref(),
        Some("account_id is an object, not a string, number or boolean")
    );

    let x = explain(
        &env,
        "experiment",
        &ctx(json!({"account_id": "acme"})),
        now(),
    );
    let bucket = vexil_engine::bucket("experiment", "acme");
    let variant = x.evaluation.variant.unwrap();
    assert_eq!(
        x.summary,
        format!("The default rollout put bucket {bucket} of 100000 in \"{variant}\".")
    );
    assert_eq!(
        x.default.as_ref().unwrap().text,
        "rollout control 34%, green 33%, orange 33% by account_id"
    );
}

#[test]
fn condition_texts_read_as_written() {
    let config = config();
    let env = config.env("production").unwrap();
    let x = explain(
        &env,
        "launch",
        &ctx(
            json!({"targetingKey": "u1", "country": "US", "email": "ANN@x.org", "age": "19",
            "customer": "c13", "app_version": "2.9.1", "note": "a, b and more"}),
        ),
        "2026-12-24T00:00:00Z".parse().unwrap(),
    );
    let texts: Vec<(&str, bool)> = x.rules[0]
        .conditions
        .iter()
        .map(|c| (c.text.as_str(), c.held))
        .collect();
    assert_eq!(
        texts,
        [
            ("$now after 2026-12-01T09:00:00Z", true),
            ("not (country in [DE, FR])", true),
            (
                "any of (in segment internal; email matches \"^(ann|bob)@\" (ignore case))",
                true
            ),
            ("age gte any of [18, 21.5]", true),
            (
                "customer in [c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, … and 3 more]",
                true
            ),
            ("legacy_id not_exists", true),
            ("$flag in [launch]", true),
            ("app_version semver_lt any of [3.0.0, 2.0.0-rc.1]", true),
            ("note contains any of [\"a, b\", \"say \\\"hi\\\"\"]", true),
        ]
    );
    assert_eq!(x.evaluation.reason, Reason::TargetingMatch);

    // The same rule before its date: every condition is still shown and evaluated.
    let x = explain(
        &env,
        "launch",
        &ctx(json!({"targetingKey": "u1", "country": "DE", "legacy_id": 3})),
        now(),
    );
    let held: Vec<bool> = x.rules[0].conditions.iter().map(|c| c.held).collect();
    assert_eq!(
        held,
        [false, false, false, false, false, false, true, false, false]
    );
    assert_eq!(x.summary, "No rule matched; served the default \"off\".");
}

#[test]
fn errors_are_explained_too() {
    let config = config();
    let env = config.env("production").unwrap();
    let x = explain(&env, "nope", &Context::new(), now());
    assert_eq!(
        x.summary,
        "No flag \"nope\" exists in this configuration; the caller's default applies."
    );
    let x = explain(&env, "checkout", &ctx(json!({"targetingKey": true})), now());
    assert_eq!(
        x.summary,
        "The context's targetingKey is a boolean, not a string or a number; the evaluation fails with INVALID_CONTEXT and the caller's default applies."
    );
    let body = serde_json::to_value(&x).unwrap();
    assert_eq!(
        body["result"],
        json!({"flag": "checkout", "value": null, "variant": null, "reason": "ERROR", "rule": null,
            "error_code": "INVALID_CONTEXT",
            "error_message": "the context's targetingKey must be a string or a number"})
    );
}

#[test]
fn the_json_shape_is_the_endpoints() {
    let config = config();
    let env = config.env("production").unwrap();
    let x = explain(
        &env,
        "checkout",
        &ctx(json!({"targetingKey": "u1", "plan": "enterprise", "app_version": "2.4.0"})),
        now(),
    );
    assert_eq!(
        serde_json::to_value(&x).unwrap(),
        json!({
            "flag": "checkout",
            "environment": "production",
            "result": {
                "flag": "checkout", "value": true, "variant": "on", "reason": "TARGETING_MATCH",
                "rule": {"index": 1, "name": "enterprise"},
            },
            "explanation": {
                "summary": "Rule 2 \"enterprise\" matched: plan in [enterprise] held and app_version semver_gte 2.3.0 held; served \"on\".",
                "scope": "flag",
                "enabled": true,
                "prerequisites": [],
                "targets": {"matched": false, "variant": null, "key": "u1"},
                "rules": [
                    {"index": 0, "name": "staff", "matched": false,
                     "conditions": [{"index": 0, "text": "in segment internal", "held": false}],
                     "outcome": "serve on", "skipped": false, "note": null, "bucket": null, "variant": null},
                    {"index": 1, "name": "enterprise", "matched": true,
                     "conditions": [
                        {"index": 0, "text": "plan in [enterprise]", "held": true},
                        {"index": 1, "text": "app_version semver_gte 2.3.0", "held": true},
                     ],
                     "outcome": "serve on", "skipped": false, "note": null, "bucket": null, "variant": "on"},
                ],
                "default": null,
            },
        })
    );
}
