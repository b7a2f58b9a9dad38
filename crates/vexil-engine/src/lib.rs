//! The vexil engine: the flag document and its evaluation.
//!
//! A document (PRODUCT.md section 1) is read from YAML 1.2 or JSON text, or from a JSON value,
//! validated with every problem reported at once ([`LoadError`]), and compiled into a [`Config`]:
//! strings lowered where `ignore_case` asks, regular expressions compiled, large `in` lists
//! hashed, versions and times parsed, prerequisites checked for cycles. Evaluation then only
//! looks things up:
//!
//! ```
//! use vexil_engine::{Config, Context, Reason};
//!
//! let config = Config::from_text("flags:\n  new_checkout:\n    rollout: 50\n")?;
//! let env = config.default_env();
//! let now = "2026-06-01T00:00:00Z".parse()?;
//! let result = env.evaluate("new_checkout", &Context::with_targeting_key("user-1"), now);
//! assert_eq!(result.reason, Reason::Split);
//! assert!(env.bool_value("new_checkout", &Context::with_targeting_key("user-1"), now, false));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Env::explain`] gives the same result together with the steps that led to it (which rule,
//! which conditions held), for people asking why.
//!
//! The engine is sans-IO: no files, no network, no clock. The time is an argument of every
//! evaluation, so results are reproducible and testable.

mod bucket;
mod diag;
mod eval;
mod explain;
mod load;
mod model;
mod node;
mod semver;

pub use bucket::{BUCKETS, bucket, hash};
pub use diag::{Diagnostic, LoadError, Pos};
pub use eval::{
    Context, ContextError, Details, Env, ErrorCode, EvalError, Evaluation, FlagValue, Reason,
    RuleRef, TARGETING_KEY, json_type_name,
};
pub use explain::{
    ConditionStep, DefaultStep, Explanation, PrerequisiteStep, RuleStep, Scope, TargetsStep,
};
pub use load::{MAX_CHAIN, is_valid_key};
pub use model::{Config, DEFAULT_ENVIRONMENT, Flag, FlagKind, FlagMeta, ValueType};
pub use node::{MAX_DEPTH, Node, NodeValue, parse_text};

pub use jiff;
pub use serde_json;

/// The JSON Schema of the flag document, for editors (`vexil schema`).
pub const JSON_SCHEMA: &str = include_str!("schema.json");
