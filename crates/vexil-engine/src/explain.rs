//! Why an evaluation came out as it did: the steps of PRODUCT.md section 1.6 that were taken,
//! each with what it found, for the web UI's playground and for anyone reading a result at
//! 3 a.m.
//!
//! [`Env::explain`] walks a flag as [`Env::evaluate`] does, with the same evaluator, and records
//! each step: the environment override or the flag level, the kill switch, every prerequisite,
//! the targets, each rule tried with every top-level condition (all of them, for display, not
//! only up to the first that fails), and the default. Its result is always the one `evaluate`
//! gives; the integration tests check that over every evaluation vector and random contexts.
//!
//! Explaining allocates (texts, lists), so it is not for the hot path: `evaluate` stays as it is.

use std::fmt::Write as _;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use serde_json::Value;

use crate::bucket::BUCKETS;
use crate::eval::{Context, Env, EvalError, Evaluation, Evaluator, Reason, RuleRef, variant_at};
use crate::model::*;

/// How many values of a list a condition's text shows before "… and N more".
const LISTED: usize = 10;
/// How many characters of one value a condition's text shows.
const VALUE_CHARS: usize = 64;

/// Whose targeting decided: the flag's own, or the environment's override of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The flag-level targeting (the environment has no override).
    Flag,
    /// The environment's override, which replaces the flag-level targeting whole.
    Environment,
}

/// An evaluation and the steps that led to it. Serializes as the body of
/// `POST /api/v1/flags/{key}/explain`:
/// `{"flag", "environment", "result": {...}, "explanation": {"summary", "scope", ...}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation<'a> {
    /// The flag asked for.
    pub flag: String,
    /// The environment evaluated in.
    pub environment: &'a str,
    /// The result: the same as [`Env::evaluate`] gives for the same flag, context and time.
    pub evaluation: Evaluation<'a>,
    /// One sentence saying why.
    pub summary: String,
    /// Whether the environment's override or the flag level decided.
    pub scope: Scope,
    /// Whether the flag is enabled in the environment.
    pub enabled: bool,
    /// Every prerequisite, in order (empty when the flag is disabled: they are not checked).
    pub prerequisites: Vec<PrerequisiteStep<'a>>,
    /// The targets, when the flag has some and evaluation reached them.
    pub targets: Option<TargetsStep<'a>>,
    /// The rules tried, in order, up to and including the one that decided.
    pub rules: Vec<RuleStep<'a>>,
    /// The default, when evaluation reached it.
    pub default: Option<DefaultStep<'a>>,
}

/// One prerequisite flag and what it was served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrerequisiteStep<'a> {
    /// The prerequisite flag's key.
    pub flag: &'a str,
    /// The variants it must be served.
    pub required: Vec<&'a str>,
    /// The variant it was served (evaluated in the same environment, for the same context).
    pub served: Option<&'a str>,
    /// Whether `served` is one of `required`.
    pub met: bool,
}

/// The lookup of the targeting key in the flag's `targets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetsStep<'a> {
    /// Whether the targeting key is listed.
    pub matched: bool,
    /// The variant it is listed under.
    pub variant: Option<&'a str>,
    /// The targeting key looked up, in its string form; `None` when the context has none.
    pub key: Option<String>,
}

/// One rule that was tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleStep<'a> {
    /// The rule's position in `rules`, from 0.
    pub index: usize,
    /// The rule's name, when it has one.
    pub name: Option<&'a str>,
    /// Whether all its conditions held.
    pub matched: bool,
    /// Each top-level condition, evaluated whether or not an earlier one failed.
    pub conditions: Vec<ConditionStep>,
    /// What the rule serves: `serve on` or `rollout on 10%, off 90%`.
    pub outcome: String,
    /// Whether the rule matched but its rollout could not bucket the context (the bucketing
    /// attribute is missing), so evaluation went on to the next rule.
    pub skipped: bool,
    /// Why a matched rule was skipped.
    pub note: Option<String>,
    /// The bucket, in `[0, 100000)`, when this rule's rollout decided.
    pub bucket: Option<u32>,
    /// The variant served, when this rule decided.
    pub variant: Option<&'a str>,
}

/// One top-level condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionStep {
    /// The condition's position in the rule's `when`, from 0.
    pub index: usize,
    /// The condition, readably: `plan in [enterprise, pro]`.
    pub text: String,
    /// Whether it held for the context.
    pub held: bool,
}

/// The default, served when no target or rule decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefaultStep<'a> {
    /// `serve off` or `rollout on 10%, off 90%`.
    pub text: String,
    /// The bucket, in `[0, 100000)`, when the default is a rollout that could bucket.
    pub bucket: Option<u32>,
    /// The variant served.
    pub variant: &'a str,
    /// Why a default rollout served the `off` variant instead.
    pub note: Option<String>,
}

impl<'a> Env<'a> {
    /// Evaluates a flag for a context at a time, as [`Env::evaluate`] does, and says why: see
    /// [`Explanation`]. The result is always the one `evaluate` gives.
    pub fn explain(&self, key: &str, ctx: &Context, now: jiff::Timestamp) -> Explanation<'a> {
        let mut x = Explanation {
            flag: key.to_owned(),
            environment: self.name(),
            evaluation: Evaluation::error(EvalError::FlagNotFound),
            summary: String::new(),
            scope: Scope::Flag,
            enabled: false,
            prerequisites: Vec::new(),
            targets: None,
            rules: Vec::new(),
            default: None,
        };
        let Some(&fi) = self.config.index.get(key) else {
            x.summary = format!(
                "No flag \"{key}\" exists in this configuration; the caller's default applies."
            );
            return x;
        };
        let flag = &self.config.flags[fi];
        let t = &flag.targeting[self.index];
        if flag.overridden.get(self.index).copied().unwrap_or(false) {
            x.scope = Scope::Environment;
        }
        x.enabled = t.enabled;
        let ev = match self.evaluator(ctx, now) {
            Ok(ev) => ev,
            Err(e) => {
                x.evaluation = Evaluation::error(e);
                let found = ctx
                    .get(crate::eval::TARGETING_KEY)
                    .map_or("missing", crate::eval::json_type_name);
                x.summary = format!(
                    "The context's targetingKey is {found}, not a string or a number; the evaluation fails with {} and the caller's default applies.",
                    e.code()
                );
                return x;
            }
        };
        let (variant, reason, rule) = Walk {
            env: self,
            ev: &ev,
            flag,
            t,
            x: &mut x,
        }
        .run();
        let (name, value) = &flag.variants[variant];
        x.evaluation = Evaluation {
            value: Some(value),
            variant: Some(name),
            reason,
            rule,
            error: None,
        };
        debug_assert_eq!(x.evaluation, self.evaluate(key, ctx, now));
        x
    }
}

/// One explanation being written.
struct Walk<'w, 'a, 'c> {
    env: &'w Env<'a>,
    ev: &'w Evaluator<'a, 'c>,
    flag: &'a Flag,
    t: &'a Targeting,
    x: &'w mut Explanation<'a>,
}

impl<'a> Walk<'_, 'a, '_> {
    fn variant(&self, v: usize) -> &'a str {
        &self.flag.variants[v].0
    }

    /// The steps of `Evaluator::flag`, recorded: `(variant index, reason, deciding rule)`.
    fn run(&mut self) -> (usize, Reason, Option<RuleRef<'a>>) {
        let (flag, t, off) = (self.flag, self.t, self.flag.off);
        if !t.enabled {
            self.x.summary = format!(
                "The flag is disabled in {}; served its off variant \"{}\".",
                self.env.name(),
                self.variant(off)
            );
            return (off, Reason::Disabled, None);
        }

        // Every prerequisite is shown; the first one not met decides.
        let mut failed: Option<usize> = None;
        for (i, p) in t.prerequisites.iter().enumerate() {
            let pre = &self.env.config.flags[p.flag];
            let (served, _, _) = self.ev.flag(p.flag);
            let met = p.variants.contains(&served);
            if !met && failed.is_none() {
                failed = Some(i);
            }
            self.x.prerequisites.push(PrerequisiteStep {
                flag: &pre.key,
                required: p.variants.iter().map(|&v| &*pre.variants[v].0).collect(),
                served: Some(&pre.variants[served].0),
                met,
            });
        }
        if let Some(i) = failed {
            let step = &self.x.prerequisites[i];
            self.x.summary = format!(
                "Prerequisite {} was served \"{}\", not one of [{}]; served \"{}\".",
                step.flag,
                step.served.unwrap_or_default(),
                step.required.join(", "),
                self.variant(off)
            );
            return (off, Reason::PrerequisiteFailed, None);
        }

        if !t.targets.is_empty() {
            let found = self
                .ev
                .with_targeting_key(|k| (k.to_owned(), t.targets.get(k).copied()));
            let (key, hit) = match found {
                Some((k, hit)) => (Some(k), hit),
                None => (None, None),
            };
            self.x.targets = Some(TargetsStep {
                matched: hit.is_some(),
                variant: hit.map(|v| self.variant(v)),
                key: key.clone(),
            });
            if let Some(v) = hit {
                self.x.summary = format!(
                    "The targeting key \"{}\" is listed in targets for \"{}\"; served \"{}\".",
                    key.unwrap_or_default(),
                    self.variant(v),
                    self.variant(v)
                );
                return (v, Reason::TargetingMatch, None);
            }
        }

        for (i, rule) in t.rules.iter().enumerate() {
            let conditions: Vec<ConditionStep> = rule
                .when
                .iter()
                .enumerate()
                .map(|(index, c)| ConditionStep {
                    index,
                    text: self.condition_text(c),
                    held: self.ev.holds(c, &flag.key),
                })
                .collect();
            let matched = conditions.iter().all(|c| c.held);
            let mut step = RuleStep {
                index: i,
                name: rule.name.as_deref(),
                matched,
                conditions,
                outcome: self.serve_text(&rule.serve),
                skipped: false,
                note: None,
                bucket: None,
                variant: None,
            };
            if !matched {
                self.x.rules.push(step);
                continue;
            }
            let rule_ref = Some(RuleRef {
                index: i,
                name: rule.name.as_deref(),
            });
            let decided = match &rule.serve {
                Serve::Variant(v) => Some((*v, None)),
                Serve::Rollout(r) => match self.pick(r) {
                    Ok((bucket, v)) => Some((v, Some(bucket))),
                    Err(why) => {
                        step.skipped = true;
                        step.note = Some(why);
                        None
                    }
                },
            };
            let Some((v, bucket)) = decided else {
                self.x.rules.push(step);
                continue;
            };
            step.bucket = bucket;
            step.variant = Some(self.variant(v));
            self.x.summary = rule_summary(&step, self.variant(v));
            self.x.rules.push(step);
            let reason = if bucket.is_some() {
                Reason::Split
            } else {
                Reason::TargetingMatch
            };
            return (v, reason, rule_ref);
        }

        let lead = self.default_lead();
        match &t.default {
            Serve::Variant(v) => {
                let v = *v;
                self.x.default = Some(DefaultStep {
                    text: self.serve_text(&t.default),
                    bucket: None,
                    variant: self.variant(v),
                    note: None,
                });
                let name = self.variant(v);
                self.x.summary = match lead {
                    Some(lead) => format!("{lead}; served the default \"{name}\"."),
                    None => format!(
                        "The flag has no targeting in {}; served \"{name}\" to everyone.",
                        self.env.name()
                    ),
                };
                let reason = if t.is_static {
                    Reason::Static
                } else {
                    Reason::Default
                };
                (v, reason, None)
            }
            Serve::Rollout(r) => match self.pick(r) {
                Ok((bucket, v)) => {
                    self.x.default = Some(DefaultStep {
                        text: self.serve_text(&t.default),
                        bucket: Some(bucket),
                        variant: self.variant(v),
                        note: None,
                    });
                    let tail = format!(
                        "the default rollout put bucket {bucket} of {BUCKETS} in \"{}\".",
                        self.variant(v)
                    );
                    self.x.summary = match lead {
                        Some(lead) => format!("{lead}; {tail}"),
                        None => capitalized(&tail),
                    };
                    (v, Reason::Split, None)
                }
                Err(why) => {
                    let tail = format!(
                        "the default rollout could not bucket: {why}; served the off variant \"{}\".",
                        self.variant(off)
                    );
                    self.x.default = Some(DefaultStep {
                        text: self.serve_text(&t.default),
                        bucket: None,
                        variant: self.variant(off),
                        note: Some(why),
                    });
                    self.x.summary = match lead {
                        Some(lead) => format!("{lead}, and {tail}"),
                        None => capitalized(&tail),
                    };
                    (off, Reason::Default, None)
                }
            },
        }
    }

    /// What the summary says was tried before the default, if anything.
    fn default_lead(&self) -> Option<String> {
        let t = self.t;
        if let Some(skipped) = self.x.rules.iter().find(|r| r.skipped) {
            let what = if t.targets.is_empty() {
                "No rule"
            } else {
                "No target or rule"
            };
            return Some(format!(
                "{what} decided (rule {}{} matched, but its rollout could not bucket: {})",
                skipped.index + 1,
                quoted_name(skipped.name),
                skipped.note.as_deref().unwrap_or_default()
            ));
        }
        Some(
            match (t.targets.is_empty(), t.rules.is_empty()) {
                (false, false) => "No target or rule matched",
                (true, false) => "No rule matched",
                (false, true) => "No target matched",
                (true, true) if !t.prerequisites.is_empty() => "Its prerequisites were met",
                (true, true) => return None,
            }
            .to_owned(),
        )
    }

    /// The bucket and variant of a rollout, as `Evaluator::pick` finds them, or why there are
    /// none.
    fn pick(&self, r: &Rollout) -> Result<(u32, usize), String> {
        match self.ev.bucket(r) {
            Some(bucket) => match variant_at(r, bucket) {
                Some(v) => Ok((bucket, v)),
                None => Err(format!("no variant covers bucket {bucket}")),
            },
            None => Err(self.why_no_bucket(r)),
        }
    }

    fn why_no_bucket(&self, r: &Rollout) -> String {
        let Some(path) = &r.bucket_by else {
            return "the context has no targetingKey".to_owned();
        };
        match self.ev.ctx().lookup(path) {
            None => format!("the context has no {}", path.full),
            Some(v @ (Value::Object(_) | Value::Array(_))) => format!(
                "{} is {}, not a string, number or boolean",
                path.full,
                crate::eval::json_type_name(v)
            ),
            Some(_) => format!("{} cannot be bucketed", path.full),
        }
    }

    fn serve_text(&self, serve: &Serve) -> String {
        match serve {
            Serve::Variant(v) => format!("serve {}", self.variant(*v)),
            Serve::Rollout(r) => {
                let mut s = String::from("rollout ");
                let mut start = 0;
                for (i, &(end, v)) in r.ends.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    let _ = write!(s, "{} {}%", self.variant(v), percent(end - start));
                    start = end;
                }
                if let Some(path) = &r.bucket_by {
                    let _ = write!(s, " by {}", path.full);
                }
                s
            }
        }
    }

    fn condition_text(&self, c: &Condition) -> String {
        let mut out = String::new();
        condition_text(self.env.config, c, &mut out);
        out
    }
}

/// `Rule 2 "enterprise" matched: plan in [enterprise] held and app_version semver_gte 2.3.0
/// held; served "on".`
fn rule_summary(step: &RuleStep<'_>, variant: &str) -> String {
    let mut s = format!("Rule {}{} ", step.index + 1, quoted_name(step.name));
    if step.conditions.is_empty() {
        s.push_str("has no conditions, so it matched");
    } else {
        s.push_str("matched: ");
        let n = step.conditions.len();
        for (i, c) in step.conditions.iter().enumerate() {
            if i > 0 {
                s.push_str(if i + 1 == n { " and " } else { ", " });
            }
            s.push_str(&c.text);
            s.push_str(" held");
        }
    }
    match step.bucket {
        Some(bucket) => {
            let _ = write!(
                s,
                "; its rollout put bucket {bucket} of {BUCKETS} in \"{variant}\"."
            );
        }
        None => {
            let _ = write!(s, "; served \"{variant}\".");
        }
    }
    s
}

fn quoted_name(name: Option<&str>) -> String {
    name.map(|n| format!(" \"{n}\"")).unwrap_or_default()
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Thousandths of a percent as a percentage: `10`, `12.5`, `0.001`.
fn percent(thousandths: u32) -> String {
    crate::load::format_thousandths(u64::from(thousandths))
}

/// Writes a condition readably: `email ends_with "@company.com" (ignore case)`,
/// `in segment internal`, `not (…)`, `any of (…; …)`.
fn condition_text(config: &Config, c: &Condition, out: &mut String) {
    match c {
        Condition::Attribute(attr, op) => {
            out.push_str(match attr {
                Attribute::Now => "$now",
                Attribute::FlagKey => "$flag",
                Attribute::Path(path) => &path.full,
            });
            op_text(op, out);
        }
        Condition::Segment(s) => {
            let name = config
                .segment_index
                .iter()
                .find(|&(_, &i)| i == *s)
                .map_or("?", |(name, _)| &**name);
            out.push_str("in segment ");
            out.push_str(name);
        }
        Condition::Not(inner) => {
            out.push_str("not (");
            condition_text(config, inner, out);
            out.push(')');
        }
        Condition::Any(cs) | Condition::All(cs) => {
            out.push_str(if matches!(c, Condition::Any(_)) {
                "any of ("
            } else {
                "all of ("
            });
            for (i, c) in cs.iter().enumerate() {
                if i > 0 {
                    out.push_str("; ");
                }
                condition_text(config, c, out);
            }
            out.push(')');
        }
    }
}

/// Writes ` OP VALUES[ (ignore case)]` for an attribute condition.
fn op_text(op: &Op, out: &mut String) {
    let cmp_name = |cmp: CmpOp| match cmp {
        CmpOp::Lt => "lt",
        CmpOp::Lte => "lte",
        CmpOp::Gt => "gt",
        CmpOp::Gte => "gte",
        CmpOp::Eq => "eq",
    };
    let ignore_case = match op {
        Op::In { set, ignore_case } | Op::NotIn { set, ignore_case } => {
            out.push_str(if matches!(op, Op::In { .. }) {
                " in "
            } else {
                " not_in "
            });
            let mut items: Vec<&str> = match set {
                StrSet::Small(items) => items.iter().map(|i| &**i).collect(),
                // A hashed set has no order left: sort, so the text is stable.
                StrSet::Large(set) => set.iter().map(|i| &**i).collect(),
            };
            if matches!(set, StrSet::Large(_)) {
                items.sort_unstable();
            }
            list(items.into_iter().map(bare), out);
            *ignore_case
        }
        Op::Str {
            op,
            values,
            ignore_case,
        } => {
            out.push_str(match op {
                StrOp::Contains => " contains ",
                StrOp::StartsWith => " starts_with ",
                StrOp::EndsWith => " ends_with ",
            });
            one_or_any(values.iter().map(|v| quoted(v)), out);
            *ignore_case
        }
        Op::Matches {
            regexes,
            ignore_case,
        } => {
            out.push_str(" matches ");
            one_or_any(regexes.iter().map(|r| quoted(r.as_str())), out);
            *ignore_case
        }
        Op::Number(cmp, values) => {
            out.push(' ');
            out.push_str(cmp_name(*cmp));
            out.push(' ');
            one_or_any(values.iter().map(|n| number(*n)), out);
            false
        }
        Op::Semver(cmp, values) => {
            out.push_str(" semver_");
            out.push_str(cmp_name(*cmp));
            out.push(' ');
            one_or_any(values.iter().map(|v| v.to_string()), out);
            false
        }
        Op::Time { before, values } => {
            out.push_str(if *before { " before " } else { " after " });
            one_or_any(values.iter().map(|t| t.to_string()), out);
            false
        }
        Op::Exists => {
            out.push_str(" exists");
            false
        }
        Op::NotExists => {
            out.push_str(" not_exists");
            false
        }
    };
    if ignore_case {
        out.push_str(" (ignore case)");
    }
}

/// One value as it is, or `any of [a, b]` for several.
fn one_or_any(values: impl ExactSizeIterator<Item = String>, out: &mut String) {
    if values.len() == 1 {
        out.extend(values);
    } else {
        out.push_str("any of ");
        list(values, out);
    }
}

/// `[a, b, c]`, or `[a, …, j, … and 90 more]` for a long list.
fn list(values: impl ExactSizeIterator<Item = String>, out: &mut String) {
    let n = values.len();
    out.push('[');
    for (i, v) in values.take(LISTED).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&v);
    }
    if n > LISTED {
        let _ = write!(out, ", … and {} more", n - LISTED);
    }
    out.push(']');
}

/// A value cut to [`VALUE_CHARS`] characters.
fn cut(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(VALUE_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]).into(),
        None => s.into(),
    }
}

/// A list item: bare when that cannot be misread, quoted otherwise.
fn bare(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | ':' | '/' | '+'));
    if plain {
        cut(s).into_owned()
    } else {
        quoted(s)
    }
}

/// `"text"`, with quotes and control characters escaped (backslashes are kept as written, so
/// that a regular expression reads as it was written).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in cut(s).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number as written for people: `18`, `1.5`, `1e300`.
fn number(n: f64) -> String {
    let a = n.abs();
    if a != 0.0 && !(1e-6..1e15).contains(&a) {
        format!("{n:e}")
    } else {
        format!("{n}")
    }
}

/// The `result` member of the endpoint's body.
#[derive(Serialize)]
struct ResultJson<'e, 'a> {
    flag: &'e str,
    value: Option<&'a Value>,
    variant: Option<&'a str>,
    reason: Reason,
    rule: Option<RuleRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

/// The `explanation` member of the endpoint's body.
#[derive(Serialize)]
struct StepsJson<'e, 'a> {
    summary: &'e str,
    scope: Scope,
    enabled: bool,
    prerequisites: &'e [PrerequisiteStep<'a>],
    targets: &'e Option<TargetsStep<'a>>,
    rules: &'e [RuleStep<'a>],
    default: &'e Option<DefaultStep<'a>>,
}

impl Serialize for Explanation<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ev = &self.evaluation;
        let mut s = serializer.serialize_struct("Explanation", 4)?;
        s.serialize_field("flag", &self.flag)?;
        s.serialize_field("environment", self.environment)?;
        s.serialize_field(
            "result",
            &ResultJson {
                flag: &self.flag,
                value: ev.value,
                variant: ev.variant,
                reason: ev.reason,
                rule: ev.rule,
                error_code: ev.error.map(|e| e.code().as_str()),
                error_message: ev.error.map(|e| e.to_string()),
            },
        )?;
        s.serialize_field(
            "explanation",
            &StepsJson {
                summary: &self.summary,
                scope: self.scope,
                enabled: self.enabled,
                prerequisites: &self.prerequisites,
                targets: &self.targets,
                rules: &self.rules,
                default: &self.default,
            },
        )?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_and_numbers_read_as_written() {
        assert_eq!(percent(10_000), "10");
        assert_eq!(percent(12_500), "12.5");
        assert_eq!(percent(1), "0.001");
        assert_eq!(percent(100_000), "100");
        assert_eq!(number(18.0), "18");
        assert_eq!(number(-1.5), "-1.5");
        assert_eq!(number(1e300), "1e300");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn values_are_quoted_and_cut_when_needed() {
        assert_eq!(bare("enterprise"), "enterprise");
        assert_eq!(bare("user@x.com"), "user@x.com");
        assert_eq!(bare("a, b"), "\"a, b\"");
        assert_eq!(bare(""), "\"\"");
        assert_eq!(quoted("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(quoted("^\\d+$"), "\"^\\d+$\"");
        let long = "x".repeat(100);
        assert_eq!(bare(&long), format!("{}…", "x".repeat(VALUE_CHARS)));
        assert_eq!(capitalized("the default"), "The default");
    }
}
