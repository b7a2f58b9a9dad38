//! The compiled form of a flag document: everything resolved, parsed and indexed once, so that
//! evaluation only looks things up.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::semver::OwnedVersion;

pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// The environment a document without an `environments` list evaluates in.
pub const DEFAULT_ENVIRONMENT: &str = "default";

/// A validated, compiled flag document, ready to evaluate. Cheap to share behind an `Arc`;
/// immutable once built.
#[derive(Debug)]
pub struct Config {
    pub(crate) environments: Vec<Box<str>>,
    pub(crate) declares_environments: bool,
    pub(crate) flags: Vec<Flag>,
    pub(crate) index: FastMap<Box<str>, usize>,
    pub(crate) segments: Vec<Segment>,
    pub(crate) segment_index: FastMap<Box<str>, usize>,
}

/// The JSON type of a flag's variant values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// `true` / `false`.
    Boolean,
    /// Text.
    String,
    /// A JSON number.
    Number,
    /// A JSON object.
    Object,
}

impl ValueType {
    /// The lowercase name used in messages and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Boolean => "boolean",
            ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Object => "object",
        }
    }

    pub(crate) fn of(value: &Value) -> Option<ValueType> {
        match value {
            Value::Bool(_) => Some(ValueType::Boolean),
            Value::String(_) => Some(ValueType::String),
            Value::Number(_) => Some(ValueType::Number),
            Value::Object(_) => Some(ValueType::Object),
            Value::Null | Value::Array(_) => None,
        }
    }
}

/// What a flag is for; decides, among other things, whether it needs an expiry date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagKind {
    /// A temporary flag guarding a release (the default).
    #[default]
    Release,
    /// A temporary flag running an experiment.
    Experiment,
    /// A permanent operational switch (kill switch, circuit breaker).
    Ops,
    /// A permanent entitlement.
    Permission,
}

impl FlagKind {
    /// Whether flags of this kind are meant to live forever (and so need no `expires`).
    pub fn is_permanent(self) -> bool {
        matches!(self, FlagKind::Ops | FlagKind::Permission)
    }

    pub(crate) fn parse(s: &str) -> Option<FlagKind> {
        Some(match s {
            "release" => FlagKind::Release,
            "experiment" => FlagKind::Experiment,
            "ops" => FlagKind::Ops,
            "permission" => FlagKind::Permission,
            _ => return None,
        })
    }
}

/// A flag's metadata, the same in every environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlagMeta {
    /// What the flag does.
    pub description: Option<String>,
    /// What it is for.
    pub kind: FlagKind,
    /// The team or person responsible for it.
    pub owner: Option<String>,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// When it was created.
    pub created: Option<jiff::civil::Date>,
    /// When it should be gone; `vexil lint` fails once this date has passed.
    pub expires: Option<jiff::civil::Date>,
    /// The ticket tracking it.
    pub ticket: Option<String>,
    /// A link to more about it.
    pub link: Option<String>,
}

/// One compiled flag.
#[derive(Debug)]
pub struct Flag {
    pub(crate) key: Box<str>,
    pub(crate) meta: FlagMeta,
    /// Variants in declaration order (the order bucketing walks them in).
    pub(crate) variants: Vec<(Box<str>, Value)>,
    pub(crate) value_type: ValueType,
    pub(crate) off: usize,
    /// The targeting of each environment, by environment index. Environments without an
    /// override share the flag-level targeting.
    pub(crate) targeting: Vec<Arc<Targeting>>,
    /// Whether each environment, by index, has an override of its own: the scope an
    /// explanation names. Shared targeting cannot tell, as the only environment left on the
    /// flag level holds an `Arc` no other shares, just as an override does.
    pub(crate) overridden: Vec<bool>,
}

impl Flag {
    /// The flag's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The flag's metadata.
    pub fn meta(&self) -> &FlagMeta {
        &self.meta
    }

    /// The type of the flag's values.
    pub fn value_type(&self) -> ValueType {
        self.value_type
    }

    /// The variants, in declaration order.
    pub fn variants(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.variants.iter().map(|(name, value)| (&**name, value))
    }

    /// The variant served when the flag is off.
    pub fn off_variant(&self) -> &str {
        &self.variants[self.off].0
    }
}

/// The targeting of one flag in one environment.
#[derive(Debug)]
pub(crate) struct Targeting {
    pub enabled: bool,
    pub prerequisites: Vec<Prerequisite>,
    /// Targeting key → variant index.
    pub targets: FastMap<Box<str>, usize>,
    pub rules: Vec<Rule>,
    pub default: Serve,
    /// No targets, rules or prerequisites, and one variant served: reason `STATIC`.
    pub is_static: bool,
}

#[derive(Debug)]
pub(crate) struct Prerequisite {
    pub flag: usize,
    pub variants: Vec<usize>,
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub name: Option<Box<str>>,
    pub when: Vec<Condition>,
    pub serve: Serve,
}

#[derive(Debug)]
pub(crate) enum Serve {
    Variant(usize),
    Rollout(Rollout),
}

#[derive(Debug)]
pub(crate) struct Rollout {
    /// `(cumulative end bucket, variant index)` for each variant with a non-zero weight, in
    /// declaration order.
    pub ends: Vec<(u32, usize)>,
    /// The attribute to bucket by; `None` for the targeting key.
    pub bucket_by: Option<AttrPath>,
    /// The hash state after `salt + ":"`.
    pub salted: crate::bucket::Murmur3,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub include: FastSet<Box<str>>,
    pub exclude: FastSet<Box<str>>,
    pub when: Vec<Condition>,
}

#[derive(Debug)]
pub(crate) enum Condition {
    Attribute(Attribute, Op),
    Segment(usize),
    Not(Box<Condition>),
    Any(Vec<Condition>),
    All(Vec<Condition>),
}

#[derive(Debug)]
pub(crate) enum Attribute {
    /// `$now`: the evaluation time.
    Now,
    /// `$flag`: the key of the flag being evaluated.
    FlagKey,
    /// A context attribute, possibly a dotted path.
    Path(AttrPath),
}

/// A context attribute name, with its dotted parts split once.
#[derive(Debug)]
pub(crate) struct AttrPath {
    pub full: Box<str>,
    /// Empty when the name has no dot.
    pub parts: Vec<Box<str>>,
}

#[derive(Debug)]
pub(crate) enum StrSet {
    Small(Vec<Box<str>>),
    Large(FastSet<Box<str>>),
}

impl StrSet {
    pub fn new(items: Vec<Box<str>>) -> Self {
        if items.len() <= 8 {
            StrSet::Small(items)
        } else {
            StrSet::Large(items.into_iter().collect())
        }
    }

    pub fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::Small(items) => items.iter().any(|i| **i == *s),
            StrSet::Large(set) => set.contains(s),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrOp {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Lt,
    Lte,
    Gt,
    Gte,
    Eq,
}

impl CmpOp {
    pub fn test(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Lt => ord == Less,
            CmpOp::Lte => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Gte => ord != Less,
            CmpOp::Eq => ord == Equal,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Op {
    In {
        set: StrSet,
        ignore_case: bool,
    },
    NotIn {
        set: StrSet,
        ignore_case: bool,
    },
    Str {
        op: StrOp,
        values: Vec<Box<str>>,
        ignore_case: bool,
    },
    Matches {
        regexes: Vec<regex::Regex>,
        /// Compiled into the expressions already; kept to show the condition as written.
        ignore_case: bool,
    },
    Number(CmpOp, Vec<f64>),
    Semver(CmpOp, Vec<OwnedVersion>),
    /// `true` for `before`, `false` for `after`.
    Time {
        before: bool,
        values: Vec<jiff::Timestamp>,
    },
    Exists,
    NotExists,
}
