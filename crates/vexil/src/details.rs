//! Evaluation results: the value a caller gets, and why.
//!
//! [`Details`] is owned (it outlives the definitions it was computed from, which a background
//! sync may replace at any moment) and carries everything an OpenFeature provider maps: the
//! value, the variant, the [`Reason`], the deciding rule, and on error an [`ErrorCode`] with a
//! message.

use std::fmt;

use serde_json::Value;
use vexil_engine::jiff::Timestamp;
use vexil_engine::{Context, Env, ErrorCode, Reason, ValueType};

/// The outcome of evaluating a flag for a context: the value (or the caller's default) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Details<T> {
    /// The flag evaluated.
    pub flag_key: String,
    /// The flag's value, or the caller's default when the flag could not be evaluated.
    pub value: T,
    /// The variant served; `None` on error.
    pub variant: Option<String>,
    /// Why this value: [`Reason::Error`] when the caller's default was returned.
    pub reason: Reason,
    /// The rule that decided, when one did (local evaluation only: OFREP does not report it).
    pub rule: Option<Rule>,
    /// What went wrong, when the caller's default was returned.
    pub error: Option<FlagError>,
}

impl<T> Details<T> {
    /// The error code, when the caller's default was returned.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|e| e.code)
    }

    /// Whether the caller's default was returned because the flag could not be evaluated.
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }

    /// A result that is the caller's default, because of `code`.
    pub(crate) fn failed(
        key: &str,
        default: T,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Self {
        Details {
            flag_key: key.to_owned(),
            value: default,
            variant: None,
            reason: Reason::Error,
            rule: None,
            error: Some(FlagError {
                code,
                message: message.into(),
            }),
        }
    }
}

/// The targeting rule that decided an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule's position in the flag's `rules` (in the evaluated environment), from 0.
    pub index: usize,
    /// The rule's name, when it has one.
    pub name: Option<String>,
}

/// Why a flag could not be evaluated: an OpenFeature error code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    /// The OpenFeature error code (`FLAG_NOT_FOUND`, `TYPE_MISMATCH`, `PROVIDER_NOT_READY`, …).
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for FlagError {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for bool {}
    impl Sealed for String {}
    impl Sealed for f64 {}
    impl Sealed for serde_json::Value {}
}

/// A Rust type a flag can be read as: `bool`, `String`, `f64` (numbers), or
/// [`serde_json::Value`] (any flag, typically objects).
///
/// Sealed: these four are the flag types of the document (PRODUCT.md section 1.1).
pub trait FlagType: Sized + sealed::Sealed {
    /// The flag type this reads, or `None` when any type will do ([`serde_json::Value`]).
    const TYPE: Option<ValueType>;

    /// Evaluates `key` in `env` and reads it as this type, or returns `default` on any error.
    #[doc(hidden)]
    fn evaluate(
        env: Env<'_>,
        key: &str,
        ctx: &Context,
        now: Timestamp,
        default: Self,
    ) -> Details<Self>;

    /// Reads a JSON value (from a remote evaluation) as this type.
    #[doc(hidden)]
    fn from_json(value: &Value) -> Option<Self>;
}

/// A JSON `null` to hand the engine as a placeholder default for [`serde_json::Value`] reads;
/// the caller's own default replaces it on error.
static NULL: Value = Value::Null;

/// Converts the engine's borrowed result into an owned one, with the caller's default on error.
fn owned<'a, E, T>(
    key: &str,
    d: vexil_engine::Details<'a, E>,
    default: T,
    read: impl FnOnce(E) -> T,
) -> Details<T> {
    match d.error {
        Some(e) => Details::failed(key, default, e.code(), e.to_string()),
        None => Details {
            flag_key: key.to_owned(),
            value: read(d.value),
            variant: d.variant.map(str::to_owned),
            reason: d.reason,
            rule: d.rule.map(|r| Rule {
                index: r.index,
                name: r.name.map(str::to_owned),
            }),
            error: None,
        },
    }
}

impl FlagType for bool {
    const TYPE: Option<ValueType> = Some(ValueType::Boolean);

    fn evaluate(
        env: Env<'_>,
        key: &str,
        ctx: &Context,
        now: Timestamp,
        default: Self,
    ) -> Details<Self> {
        owned(key, env.details(key, ctx, now, default), default, |v| v)
    }

    fn from_json(value: &Value) -> Option<Self> {
        value.as_bool()
    }
}

impl FlagType for String {
    const TYPE: Option<ValueType> = Some(ValueType::String);

    fn evaluate(
        env: Env<'_>,
        key: &str,
        ctx: &Context,
        now: Timestamp,
        default: Self,
    ) -> Details<Self> {
        owned(key, env.details(key, ctx, now, ""), default, str::to_owned)
    }

    fn from_json(value: &Value) -> Option<Self> {
        value.as_str().map(str::to_owned)
    }
}

impl FlagType for f64 {
    const TYPE: Option<ValueType> = Some(ValueType::Number);

    fn evaluate(
        env: Env<'_>,
        key: &str,
        ctx: &Context,
        now: Timestamp,
        default: Self,
    ) -> Details<Self> {
        owned(key, env.details(key, ctx, now, default), default, |v| v)
    }

    fn from_json(value: &Value) -> Option<Self> {
        value.as_f64()
    }
}

impl FlagType for Value {
    const TYPE: Option<ValueType> = None;

    fn evaluate(
        env: Env<'_>,
        key: &str,
        ctx: &Context,
        now: Timestamp,
        default: Self,
    ) -> Details<Self> {
        owned(
            key,
            env.details(key, ctx, now, &NULL),
            default,
            Value::clone,
        )
    }

    fn from_json(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
}

/// The JSON type name of a value, for type-mismatch messages.
pub(crate) fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
