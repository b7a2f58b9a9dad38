//! Evaluation (PRODUCT.md sections 1.3 to 1.6): a flag, an environment, a context and a time
//! in; a variant, a reason and the deciding rule out. It never fails, never panics, never does
//! I/O, and for the common paths never allocates: results borrow from the compiled [`Config`].

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::bucket;
use crate::model::*;
use crate::semver::Version;

/// The attributes an evaluation is made for: a JSON object whose `targetingKey` attribute names
/// the user, session or account being evaluated. `null` attributes count as missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    attributes: Map<String, Value>,
}

/// The name of the targeting-key attribute, as in OpenFeature.
pub const TARGETING_KEY: &str = "targetingKey";

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Context::default()
    }

    /// A context with only a targeting key.
    pub fn with_targeting_key(key: impl Into<String>) -> Self {
        let mut c = Context::new();
        c.set(TARGETING_KEY, key.into());
        c
    }

    /// Sets an attribute, replacing any previous value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Builder form of [`Context::set`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set(name, value);
        self
    }

    /// The attribute of that exact name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        find(&self.attributes, name).filter(|v| !v.is_null())
    }

    /// The attributes.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    pub(crate) fn lookup(&self, path: &AttrPath) -> Option<&Value> {
        if let Some(v) = self.get(&path.full) {
            return Some(v);
        }
        let (first, rest) = path.parts.split_first()?;
        let mut v = self.get(first)?;
        for part in rest {
            v = find(v.as_object()?, part)?;
        }
        (!v.is_null()).then_some(v)
    }
}

/// The most entries a map may have for [`find`] to scan it rather than hash the name.
const SCAN_LIMIT: usize = 8;

/// `map.get(name)`, faster for small maps: `serde_json::Map` hashes with SipHash, which costs
/// more than comparing `name` with a few keys (most of which differ in length, so the comparison
/// stops there). Contexts usually hold a handful of attributes.
fn find<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    if map.len() <= SCAN_LIMIT {
        map.iter().find_map(|(k, v)| (k == name).then_some(v))
    } else {
        map.get(name)
    }
}

impl From<Map<String, Value>> for Context {
    fn from(attributes: Map<String, Value>) -> Self {
        Context { attributes }
    }
}

impl TryFrom<Value> for Context {
    type Error = ContextError;

    fn try_from(value: Value) -> Result<Self, ContextError> {
        match value {
            Value::Object(attributes) => Ok(Context { attributes }),
            _ => Err(ContextError::NotAnObject),
        }
    }
}

/// Why a JSON value cannot be a context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The context was not a JSON object.
    #[error("the evaluation context must be a JSON object")]
    NotAnObject,
}

/// Why an evaluation served what it served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The flag serves one variant to everyone, with no targeting.
    Static,
    /// No target or rule matched; the default was served.
    Default,
    /// A target or a rule with `serve` matched.
    TargetingMatch,
    /// A rollout decided (a rule's or the default).
    Split,
    /// The flag is disabled in the environment; its `off` variant was served.
    Disabled,
    /// A prerequisite was not met; the `off` variant was served.
    PrerequisiteFailed,
    /// The flag could not be evaluated; the caller's default applies.
    Error,
}

impl Reason {
    /// The reason as it appears in APIs (`TARGETING_MATCH`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::Default => "DEFAULT",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Disabled => "DISABLED",
            Reason::PrerequisiteFailed => "PREREQUISITE_FAILED",
            Reason::Error => "ERROR",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OpenFeature error codes an evaluation can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// No flag has that key.
    FlagNotFound,
    /// The flag's values are not of the type asked for.
    TypeMismatch,
    /// The flag definitions could not be parsed.
    ParseError,
    /// The context cannot be used (for example a targeting key that is not a string).
    InvalidContext,
    /// The provider has no definitions yet.
    ProviderNotReady,
    /// Anything else.
    General,
}

impl ErrorCode {
    /// The code as it appears in APIs (`FLAG_NOT_FOUND`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::ProviderNotReady => "PROVIDER_NOT_READY",
            ErrorCode::General => "GENERAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong in an evaluation; formatting it gives the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EvalError {
    /// No flag has the key asked for.
    FlagNotFound,
    /// The flag holds values of another type than the one asked for.
    TypeMismatch {
        /// The type the caller asked for.
        expected: ValueType,
        /// The flag's type.
        found: ValueType,
    },
    /// The context's targeting key is neither a string nor a number.
    InvalidTargetingKey,
}

impl EvalError {
    /// The OpenFeature error code.
    pub fn code(self) -> ErrorCode {
        match self {
            EvalError::FlagNotFound => ErrorCode::FlagNotFound,
            EvalError::TypeMismatch { .. } => ErrorCode::TypeMismatch,
            EvalError::InvalidTargetingKey => ErrorCode::InvalidContext,
        }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::FlagNotFound => f.write_str("no flag with this key exists"),
            EvalError::TypeMismatch { expected, found } => write!(
                f,
                "the flag's values are of type {}, not {}",
                found.as_str(),
                expected.as_str()
            ),
            EvalError::InvalidTargetingKey => {
                f.write_str("the context's targetingKey must be a string or a number")
            }
        }
    }
}

/// The rule that decided an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleRef<'a> {
    /// The rule's position in the flag's (or environment's) `rules`, from 0.
    pub index: usize,
    /// The rule's name, when it has one.
    pub name: Option<&'a str>,
}

/// The outcome of evaluating a flag. Borrowed from the [`Config`]; allocation-free.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation<'a> {
    /// The value served; `None` on error (the caller's default applies).
    pub value: Option<&'a Value>,
    /// The variant served; `None` on error.
    pub variant: Option<&'a str>,
    /// Why.
    pub reason: Reason,
    /// The rule that decided, when one did.
    pub rule: Option<RuleRef<'a>>,
    /// What went wrong, when `reason` is [`Reason::Error`].
    pub error: Option<EvalError>,
}

impl Evaluation<'_> {
    pub(crate) fn error(error: EvalError) -> Self {
        Evaluation {
            value: None,
            variant: None,
            reason: Reason::Error,
            rule: None,
            error: Some(error),
        }
    }
}

/// A typed result: the value (or the caller's default) and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Details<'a, T> {
    /// The flag's value, or the caller's default when the flag could not be evaluated.
    pub value: T,
    /// The variant served; `None` on error.
    pub variant: Option<&'a str>,
    /// Why.
    pub reason: Reason,
    /// The rule that decided, when one did.
    pub rule: Option<RuleRef<'a>>,
    /// What went wrong, when the default was returned because of an error.
    pub error: Option<EvalError>,
}

/// A Rust type flag values can be read as.
pub trait FlagValue<'a>: Sized {
    /// The flag type it reads, or `None` when any type will do.
    const TYPE: Option<ValueType>;
    /// Reads the value; `None` when it is of another type.
    fn from_value(value: &'a Value) -> Option<Self>;
}

impl<'a> FlagValue<'a> for bool {
    const TYPE: Option<ValueType> = Some(ValueType::Boolean);
    fn from_value(value: &'a Value) -> Option<Self> {
        value.as_bool()
    }
}

impl<'a> FlagValue<'a> for &'a str {
    const TYPE: Option<ValueType> = Some(ValueType::String);
    fn from_value(value: &'a Value) -> Option<Self> {
        value.as_str()
    }
}

impl<'a> FlagValue<'a> for f64 {
    const TYPE: Option<ValueType> = Some(ValueType::Number);
    fn from_value(value: &'a Value) -> Option<Self> {
        value.as_f64()
    }
}

impl<'a> FlagValue<'a> for &'a Value {
    const TYPE: Option<ValueType> = None;
    fn from_value(value: &'a Value) -> Option<Self> {
        Some(value)
    }
}

impl Config {
    /// The environments, in declaration order (`default` when none are declared).
    pub fn environments(&self) -> impl ExactSizeIterator<Item = &str> {
        self.environments.iter().map(|e| &**e)
    }

    /// Whether the document lists its environments (if not, there is one: `default`).
    pub fn declares_environments(&self) -> bool {
        self.declares_environments
    }

    /// An environment to evaluate in, by name.
    pub fn env(&self, name: &str) -> Option<Env<'_>> {
        let index = self.environments.iter().position(|e| **e == *name)?;
        Some(Env {
            config: self,
            index,
        })
    }

    /// The first environment (`default` when none are declared).
    pub fn default_env(&self) -> Env<'_> {
        Env {
            config: self,
            index: 0,
        }
    }

    /// The flags, in document order.
    pub fn flags(&self) -> impl ExactSizeIterator<Item = &Flag> {
        self.flags.iter()
    }

    /// A flag by key.
    pub fn flag(&self, key: &str) -> Option<&Flag> {
        self.index.get(key).map(|&i| &self.flags[i])
    }

    /// The segment names, in document order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<(&str, usize)> =
            self.segment_index.iter().map(|(n, &i)| (&**n, i)).collect();
        names.sort_by_key(|&(_, i)| i);
        names.into_iter().map(|(n, _)| n)
    }
}

/// One environment of a [`Config`]: the handle evaluations go through.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    pub(crate) config: &'a Config,
    pub(crate) index: usize,
}

impl<'a> Env<'a> {
    /// The environment's name.
    pub fn name(&self) -> &'a str {
        &self.config.environments[self.index]
    }

    /// The configuration this environment belongs to.
    pub fn config(&self) -> &'a Config {
        self.config
    }

    /// Evaluates a flag for a context at a time.
    pub fn evaluate(&self, key: &str, ctx: &Context, now: jiff::Timestamp) -> Evaluation<'a> {
        let Some(&fi) = self.config.index.get(key) else {
            return Evaluation::error(EvalError::FlagNotFound);
        };
        self.evaluate_index(fi, ctx, now)
    }

    /// Evaluates every flag, in document order.
    pub fn evaluate_all<'c>(
        &'c self,
        ctx: &'c Context,
        now: jiff::Timestamp,
    ) -> impl Iterator<Item = (&'a Flag, Evaluation<'a>)> + 'c {
        self.config
            .flags
            .iter()
            .enumerate()
            .map(move |(fi, flag)| (flag, self.evaluate_index(fi, ctx, now)))
    }

    fn evaluate_index(&self, fi: usize, ctx: &Context, now: jiff::Timestamp) -> Evaluation<'a> {
        let tk = match ctx.get(TARGETING_KEY) {
            None => TargetingKey::Missing,
            Some(Value::String(s)) => TargetingKey::Str(s),
            Some(Value::Number(n)) => TargetingKey::Num(n),
            Some(_) => return Evaluation::error(EvalError::InvalidTargetingKey),
        };
        let ev = Evaluator {
            config: self.config,
            env: self.index,
            ctx,
            now,
            tk,
        };
        let (variant, reason, rule) = ev.flag(fi);
        let flag = &self.config.flags[fi];
        let (name, value) = &flag.variants[variant];
        Evaluation {
            value: Some(value),
            variant: Some(name),
            reason,
            rule,
            error: None,
        }
    }

    /// The evaluator [`Env::explain`] walks a flag with: the same one [`Env::evaluate`] builds,
    /// or the error that evaluation fails with before it starts.
    pub(crate) fn evaluator<'c>(
        &self,
        ctx: &'c Context,
        now: jiff::Timestamp,
    ) -> Result<Evaluator<'a, 'c>, EvalError> {
        let tk = match ctx.get(TARGETING_KEY) {
            None => TargetingKey::Missing,
            Some(Value::String(s)) => TargetingKey::Str(s),
            Some(Value::Number(n)) => TargetingKey::Num(n),
            Some(_) => return Err(EvalError::InvalidTargetingKey),
        };
        Ok(Evaluator {
            config: self.config,
            env: self.index,
            ctx,
            now,
            tk,
        })
    }

    /// Evaluates a flag and reads its value as `T`, falling back to `default` on any error
    /// (`FLAG_NOT_FOUND`, `TYPE_MISMATCH`, …).
    pub fn details<T: FlagValue<'a>>(
        &self,
        key: &str,
        ctx: &Context,
        now: jiff::Timestamp,
        default: T,
    ) -> Details<'a, T> {
        let fallback = |error| Details {
            value: default,
            variant: None,
            reason: Reason::Error,
            rule: None,
            error: Some(error),
        };
        let Some(&fi) = self.config.index.get(key) else {
            return fallback(EvalError::FlagNotFound);
        };
        let flag = &self.config.flags[fi];
        if let Some(expected) = T::TYPE
            && expected != flag.value_type
        {
            return fallback(EvalError::TypeMismatch {
                expected,
                found: flag.value_type,
            });
        }
        let ev = self.evaluate_index(fi, ctx, now);
        match (ev.error, ev.value.and_then(T::from_value)) {
            (None, Some(value)) => Details {
                value,
                variant: ev.variant,
                reason: ev.reason,
                rule: ev.rule,
                error: None,
            },
            (Some(e), _) => fallback(e),
            (None, None) => fallback(EvalError::TypeMismatch {
                expected: T::TYPE.unwrap_or(flag.value_type),
                found: flag.value_type,
            }),
        }
    }

    /// A boolean flag's value, or `default`.
    pub fn bool_value(
        &self,
        key: &str,
        ctx: &Context,
        now: jiff::Timestamp,
        default: bool,
    ) -> bool {
        self.details(key, ctx, now, default).value
    }

    /// A string flag's value, or `default`.
    pub fn string_value(
        &self,
        key: &str,
        ctx: &Context,
        now: jiff::Timestamp,
        default: &'a str,
    ) -> &'a str {
        self.details(key, ctx, now, default).value
    }

    /// A number flag's value, or `default`.
    pub fn number_value(
        &self,
        key: &str,
        ctx: &Context,
        now: jiff::Timestamp,
        default: f64,
    ) -> f64 {
        self.details(key, ctx, now, default).value
    }

    /// Any flag's value as JSON, or `default`.
    pub fn json_value(
        &self,
        key: &str,
        ctx: &Context,
        now: jiff::Timestamp,
        default: &'a Value,
    ) -> &'a Value {
        self.details(key, ctx, now, default).value
    }
}

#[derive(Clone, Copy)]
pub(crate) enum TargetingKey<'c> {
    Missing,
    Str(&'c str),
    Num(&'c serde_json::Number),
}

pub(crate) struct Evaluator<'a, 'c> {
    config: &'a Config,
    env: usize,
    ctx: &'c Context,
    now: jiff::Timestamp,
    tk: TargetingKey<'c>,
}

impl<'c> Evaluator<'_, 'c> {
    /// The context being evaluated.
    pub(crate) fn ctx(&self) -> &'c Context {
        self.ctx
    }
}

impl<'a> Evaluator<'a, '_> {
    /// Evaluates flag `fi`: `(variant index, reason, deciding rule)`. Recursion (through
    /// prerequisites) is bounded by the chain limit enforced at load time.
    pub(crate) fn flag(&self, fi: usize) -> (usize, Reason, Option<RuleRef<'a>>) {
        let flag = &self.config.flags[fi];
        let t = &flag.targeting[self.env];
        if !t.enabled {
            return (flag.off, Reason::Disabled, None);
        }
        for p in &t.prerequisites {
            let (v, _, _) = self.flag(p.flag);
            if !p.variants.contains(&v) {
                return (flag.off, Reason::PrerequisiteFailed, None);
            }
        }
        if !t.targets.is_empty()
            && let Some(v) = self
                .with_targeting_key(|k| t.targets.get(k).copied())
                .flatten()
        {
            return (v, Reason::TargetingMatch, None);
        }
        for (i, rule) in t.rules.iter().enumerate() {
            if !rule.when.iter().all(|c| self.holds(c, &flag.key)) {
                continue;
            }
            let rule_ref = Some(RuleRef {
                index: i,
                name: rule.name.as_deref(),
            });
            match &rule.serve {
                Serve::Variant(v) => return (*v, Reason::TargetingMatch, rule_ref),
                Serve::Rollout(r) => {
                    if let Some(v) = self.pick(r) {
                        return (v, Reason::Split, rule_ref);
                    }
                }
            }
        }
        match &t.default {
            Serve::Variant(v) => {
                let reason = if t.is_static {
                    Reason::Static
                } else {
                    Reason::Default
                };
                (*v, reason, None)
            }
            Serve::Rollout(r) => match self.pick(r) {
                Some(v) => (v, Reason::Split, None),
                None => (flag.off, Reason::Default, None),
            },
        }
    }

    pub(crate) fn with_targeting_key<R>(&self, f: impl FnOnce(&str) -> R) -> Option<R> {
        match self.tk {
            TargetingKey::Missing => None,
            TargetingKey::Str(s) => Some(f(s)),
            TargetingKey::Num(n) => with_number_str(n, f),
        }
    }

    /// The variant a rollout serves, or `None` when the bucketing attribute is missing.
    #[inline]
    fn pick(&self, r: &Rollout) -> Option<usize> {
        variant_at(r, self.bucket(r)?)
    }

    /// The bucket, in `[0, 100000)`, a rollout puts the context in, or `None` when the
    /// bucketing attribute is missing (or not a string, number or boolean).
    #[inline]
    pub(crate) fn bucket(&self, r: &Rollout) -> Option<u32> {
        Some(match &r.bucket_by {
            None => self.with_targeting_key(|k| bucket::bucket_salted(&r.salted, k))?,
            Some(path) => match self.ctx.lookup(path)? {
                Value::String(s) => bucket::bucket_salted(&r.salted, s),
                Value::Number(n) => with_number_str(n, |s| bucket::bucket_salted(&r.salted, s))?,
                Value::Bool(b) => {
                    bucket::bucket_salted(&r.salted, if *b { "true" } else { "false" })
                }
                _ => return None,
            },
        })
    }

    pub(crate) fn holds(&self, c: &Condition, flag_key: &str) -> bool {
        match c {
            Condition::Attribute(attr, op) => self.attribute(attr, op, flag_key),
            Condition::Segment(s) => self.segment(&self.config.segments[*s], flag_key),
            Condition::Not(inner) => !self.holds(inner, flag_key),
            Condition::Any(cs) => cs.iter().any(|c| self.holds(c, flag_key)),
            Condition::All(cs) => cs.iter().all(|c| self.holds(c, flag_key)),
        }
    }

    fn segment(&self, s: &Segment, flag_key: &str) -> bool {
        if !s.include.is_empty() && self.with_targeting_key(|k| s.include.contains(k)) == Some(true)
        {
            return true;
        }
        if !s.exclude.is_empty() && self.with_targeting_key(|k| s.exclude.contains(k)) == Some(true)
        {
            return false;
        }
        !s.when.is_empty() && s.when.iter().all(|c| self.holds(c, flag_key))
    }

    fn attribute(&self, attr: &Attribute, op: &Op, flag_key: &str) -> bool {
        match attr {
            Attribute::Now => match op {
                Op::Exists => true,
                Op::NotExists => false,
                Op::Time { before, values } => time_holds(self.now, *before, values),
                _ => false,
            },
            Attribute::FlagKey => op_holds(op, &Value::Null, Some(flag_key)),
            Attribute::Path(path) => match self.ctx.lookup(path) {
                None => matches!(op, Op::NotExists),
                Some(v) => op_holds(op, v, None),
            },
        }
    }
}

/// The variant of a rollout that covers `bucket`.
#[inline]
pub(crate) fn variant_at(r: &Rollout, bucket: u32) -> Option<usize> {
    r.ends
        .iter()
        .find(|&&(end, _)| bucket < end)
        .map(|&(_, v)| v)
}

/// The kind of a JSON value, for messages: `a string`, `an object`, `null`.
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Applies `op` to a present attribute. `text` overrides `value` for built-in string attributes.
fn op_holds(op: &Op, value: &Value, text: Option<&str>) -> bool {
    match op {
        Op::Exists => true,
        Op::NotExists => false,
        Op::NotIn { set, ignore_case } => {
            !any_scalar(value, text, |s| str_in(set, *ignore_case, s))
        }
        _ => any_scalar(value, text, |s| scalar_holds(op, s)),
    }
}

#[derive(Clone, Copy)]
enum Scalar<'v> {
    Str(&'v str),
    Num(&'v serde_json::Number),
    Bool(bool),
}

/// Whether `f` holds for the value or, for an array, for any of its scalar elements.
fn any_scalar(value: &Value, text: Option<&str>, mut f: impl FnMut(Scalar<'_>) -> bool) -> bool {
    if let Some(t) = text {
        return f(Scalar::Str(t));
    }
    let mut one = |v: &Value| match v {
        Value::String(s) => f(Scalar::Str(s)),
        Value::Number(n) => f(Scalar::Num(n)),
        Value::Bool(b) => f(Scalar::Bool(*b)),
        Value::Null | Value::Array(_) | Value::Object(_) => false,
    };
    match value {
        Value::Array(items) => items.iter().any(&mut one),
        v => one(v),
    }
}

fn with_scalar_str<R>(s: Scalar<'_>, f: impl FnOnce(&str) -> R) -> Option<R> {
    match s {
        Scalar::Str(s) => Some(f(s)),
        Scalar::Num(n) => with_number_str(n, f),
        Scalar::Bool(b) => Some(f(if b { "true" } else { "false" })),
    }
}

fn str_in(set: &StrSet, ignore_case: bool, s: Scalar<'_>) -> bool {
    with_scalar_str(s, |s| {
        if ignore_case {
            let mut buf = [0u8; 128];
            set.contains(&lower(s, &mut buf))
        } else {
            set.contains(s)
        }
    })
    .unwrap_or(false)
}

fn scalar_holds(op: &Op, s: Scalar<'_>) -> bool {
    match op {
        Op::In { set, ignore_case } => str_in(set, *ignore_case, s),
        Op::Str {
            op,
            values,
            ignore_case,
        } => with_scalar_str(s, |s| {
            let mut buf = [0u8; 128];
            let s: Cow<'_, str> = if *ignore_case {
                lower(s, &mut buf)
            } else {
                Cow::Borrowed(s)
            };
            values.iter().any(|v| match op {
                StrOp::Contains => s.contains(&**v),
                StrOp::StartsWith => s.starts_with(&**v),
                StrOp::EndsWith => s.ends_with(&**v),
            })
        })
        .unwrap_or(false),
        Op::Matches { regexes, .. } => {
            with_scalar_str(s, |s| regexes.iter().any(|r| r.is_match(s))).unwrap_or(false)
        }
        Op::Number(cmp, values) => {
            let x = match s {
                Scalar::Num(n) => n.as_f64(),
                Scalar::Str(t) => t.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                Scalar::Bool(_) => None,
            };
            x.is_some_and(|x| {
                values
                    .iter()
                    .any(|v| x.partial_cmp(v).is_some_and(|o| cmp.test(o)))
            })
        }
        Op::Semver(cmp, values) => with_scalar_str(s, |t| {
            Version::parse(t)
                .is_some_and(|x| values.iter().any(|v| cmp.test(x.cmp(&v.as_version()))))
        })
        .unwrap_or(false),
        Op::Time { before, values } => {
            let t = match s {
                Scalar::Str(t) => crate::load::parse_time(t),
                Scalar::Num(n) => n.as_f64().and_then(crate::load::time_from_seconds),
                Scalar::Bool(_) => None,
            };
            t.is_some_and(|t| time_holds(t, *before, values))
        }
        Op::NotIn { .. } | Op::Exists | Op::NotExists => false,
    }
}

fn time_holds(t: jiff::Timestamp, before: bool, values: &[jiff::Timestamp]) -> bool {
    values.iter().any(|v| if before { t < *v } else { t > *v })
}

/// Lowercases `s` into `buf` when it is short ASCII (no allocation), else into a new string.
fn lower<'b>(s: &'b str, buf: &'b mut [u8; 128]) -> Cow<'b, str> {
    if s.is_ascii() {
        if !s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Cow::Borrowed(s);
        }
        if s.len() <= buf.len() {
            let out = &mut buf[..s.len()];
            out.copy_from_slice(s.as_bytes());
            out.make_ascii_lowercase();
            if let Ok(s) = std::str::from_utf8(out) {
                return Cow::Borrowed(s);
            }
        }
    }
    Cow::Owned(s.to_lowercase())
}

/// A number's string form (`123`, `1.5`), formatted on the stack.
fn with_number_str<R>(n: &serde_json::Number, f: impl FnOnce(&str) -> R) -> Option<R> {
    let mut buf = StackStr {
        buf: [0; 48],
        len: 0,
    };
    write!(buf, "{n}").ok()?;
    Some(f(std::str::from_utf8(&buf.buf[..buf.len]).ok()?))
}

struct StackStr {
    buf: [u8; 48],
    len: usize,
}

impl fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
