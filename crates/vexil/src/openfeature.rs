//! An [OpenFeature](https://openfeature.dev) provider (crate [`open_feature`]), behind the cargo
//! feature `openfeature`: code written against OpenFeature's client API evaluates with vexil.
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use open_feature::{EvaluationContext, OpenFeature};
//! use vexil::openfeature::VexilProvider;
//!
//! let flags = vexil::Client::from_text("flags:\n  new_checkout: {rollout: 100}\n", None)?;
//! let mut api = OpenFeature::singleton_mut().await;
//! api.set_provider(VexilProvider::new(flags)).await;
//! let client = api.create_client();
//! drop(api);
//!
//! let ctx = EvaluationContext::default().with_targeting_key("user-1");
//! let on = client.get_bool_value("new_checkout", Some(&ctx), None).await.unwrap_or(false);
//! assert!(on);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
//! #     .block_on(run()).unwrap();
//! ```
//!
//! A [`VexilProvider`] wraps a local [`Client`] (file, server or test client: evaluation stays
//! in-process and never waits on the network) or a [`RemoteClient`] (per-call evaluation over
//! OFREP, with its cache and timeout).
//!
//! # What OpenFeature gets
//!
//! | vexil | OpenFeature |
//! |---|---|
//! | the flag's value | `value`: `bool`, `String`, `f64`; `i64` for a number flag whose value is integral (`2.5` read as an integer is `TYPE_MISMATCH`); [`StructValue`] for an object flag |
//! | the variant | `variant` |
//! | `STATIC`, `DEFAULT`, `TARGETING_MATCH`, `SPLIT`, `DISABLED` | the same [`EvaluationReason`] |
//! | `PREREQUISITE_FAILED` | `DEFAULT` (the flag fell back to its `off` variant), with the exact reason in the flag metadata `reason` — as the server's OFREP API reports it, so both paths agree |
//! | the rule that decided | flag metadata `ruleIndex` (from 0) and `ruleName` (when the rule has a name) |
//! | an error code | an [`EvaluationError`] with the same [`EvaluationErrorCode`] and vexil's message |
//!
//! Error codes: `FLAG_NOT_FOUND`, `TYPE_MISMATCH`, `INVALID_CONTEXT` (a `targetingKey`
//! attribute that is neither a string nor a number, or a context field this provider cannot
//! read), `PROVIDER_NOT_READY` (a client that has no definitions yet), and from a remote client
//! `PARSE_ERROR` (an answer that cannot be read) and `GENERAL` (a timeout, an unreachable
//! server). vexil never requires a targeting key — a rollout without one serves the flag's
//! `off` variant with `DEFAULT` — so `TARGETING_KEY_MISSING` does not occur. On any error
//! OpenFeature's client hands the caller its error (or, in `…_details`, an error reason), never a
//! vexil value.
//!
//! # The evaluation context
//!
//! The targeting key becomes the `targetingKey` attribute (it wins over a custom field of that
//! name). Custom fields keep their names: booleans, integers, floats and strings as such (a
//! non-finite float becomes `null`, which counts as missing), date-times as RFC 3339 strings in
//! UTC (what the `before`/`after` operators read). OpenFeature's structure field holds any
//! `Arc<dyn Any>`; this provider reads these types in it, nested to any depth up to 64 levels:
//! [`open_feature::Value`] (lists and structures), [`StructValue`], `Vec<open_feature::Value>`,
//! [`EvaluationContextFieldValue`], `HashMap<String, EvaluationContextFieldValue>`,
//! `Vec<EvaluationContextFieldValue>` (these two can hold date-times), `Vec<String>`,
//! [`serde_json::Value`] and `serde_json::Map<String, serde_json::Value>`. Any other type is
//! `INVALID_CONTEXT`, naming the field: dropping it silently would make rules on it fail to
//! match without a word.
//!
//! # Status and initialization
//!
//! [`FeatureProvider::status`] follows [`Client::status`]: `NotReady` → `NotReady`, `Ready` →
//! `Ready`, `Bootstrapped` and `Stale` → `STALE` (values are served, but may be out of date).
//! A remote client is always `Ready`. `initialize` (run by `set_provider`) waits for a local
//! client's first sync, at most [`VexilProvider::initialize_timeout`] (2 s by default; a file or
//! test client is ready at once). If the wait times out the provider is installed anyway: the
//! client serves its bootstrap or `PROVIDER_NOT_READY` until it syncs in the background.

use std::any::Any;
use std::collections::HashMap;
use std::time::Duration;

pub use open_feature;
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, FlagMetadata, StructValue,
};
use serde_json::{Map, Number, Value};
use vexil_engine::jiff::Timestamp;
use vexil_engine::{Context, ErrorCode, Reason, TARGETING_KEY};

use crate::details::{Details, FlagType, json_type_name};
use crate::{Client, RemoteClient, Status};

/// The provider's name in OpenFeature's metadata.
pub const PROVIDER_NAME: &str = "vexil";

/// How long `initialize` waits for a local client's first sync by default.
pub const DEFAULT_INITIALIZE_TIMEOUT: Duration = Duration::from_secs(2);

/// How deeply nested a context field may be.
const MAX_CONTEXT_DEPTH: usize = 64;

/// An OpenFeature provider evaluating with a vexil [`Client`] (in-process) or [`RemoteClient`]
/// (over OFREP). Install it with `OpenFeature::set_provider`; see the [module](self) for what
/// it maps and how.
#[derive(Debug)]
pub struct VexilProvider {
    source: Source,
    metadata: ProviderMetadata,
    initialize_timeout: Duration,
}

#[derive(Debug)]
enum Source {
    Local(Client),
    Remote(RemoteClient),
}

impl VexilProvider {
    /// A provider evaluating in-process with `client` (from a file, a server or a test).
    pub fn new(client: Client) -> VexilProvider {
        VexilProvider::with_source(Source::Local(client))
    }

    /// A provider asking the server for each evaluation, through `client`.
    pub fn remote(client: RemoteClient) -> VexilProvider {
        VexilProvider::with_source(Source::Remote(client))
    }

    fn with_source(source: Source) -> VexilProvider {
        VexilProvider {
            source,
            metadata: ProviderMetadata::new(PROVIDER_NAME),
            initialize_timeout: DEFAULT_INITIALIZE_TIMEOUT,
        }
    }

    /// How long `initialize` (run by `set_provider`) waits for a local client's first sync;
    /// [`Duration::ZERO`] does not wait. Default: [`DEFAULT_INITIALIZE_TIMEOUT`].
    pub fn initialize_timeout(mut self, timeout: Duration) -> VexilProvider {
        self.initialize_timeout = timeout;
        self
    }

    /// The local client, when the provider evaluates in-process.
    pub fn client(&self) -> Option<&Client> {
        match &self.source {
            Source::Local(c) => Some(c),
            Source::Remote(_) => None,
        }
    }

    /// Evaluates `key` as `T` for an OpenFeature context. `default` never reaches OpenFeature:
    /// an error goes out as an [`EvaluationError`].
    async fn details<T: FlagType>(
        &self,
        key: &str,
        ctx: &EvaluationContext,
        default: T,
    ) -> Result<Details<T>, EvaluationError> {
        let ctx = vexil_context(ctx)?;
        Ok(match &self.source {
            Source::Local(client) => client.details(key, &ctx, default),
            Source::Remote(client) => client.details(key, &ctx, default).await,
        })
    }
}

impl From<Client> for VexilProvider {
    fn from(client: Client) -> Self {
        VexilProvider::new(client)
    }
}

impl From<RemoteClient> for VexilProvider {
    fn from(client: RemoteClient) -> Self {
        VexilProvider::remote(client)
    }
}

#[open_feature::async_trait]
impl FeatureProvider for VexilProvider {
    async fn initialize(&mut self, _context: &EvaluationContext) {
        if let Source::Local(client) = &self.source
            && !client.status().has_synced()
            && !self.initialize_timeout.is_zero()
        {
            // A timeout is not fatal: the client keeps syncing in the background, and its
            // status (hence the provider's) says what it serves meanwhile.
            if let Err(e) = client.wait_ready(self.initialize_timeout).await {
                tracing::warn!(error = %e, "vexil OpenFeature provider: not synced yet");
            }
        }
    }

    fn status(&self) -> ProviderStatus {
        match &self.source {
            Source::Local(client) => match client.status() {
                Status::NotReady => ProviderStatus::NotReady,
                Status::Ready => ProviderStatus::Ready,
                Status::Bootstrapped | Status::Stale => ProviderStatus::STALE,
            },
            Source::Remote(_) => ProviderStatus::Ready,
        }
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        let d = self.details(flag_key, evaluation_context, false).await?;
        resolution(d, Ok)
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        let d = self.details(flag_key, evaluation_context, 0.0_f64).await?;
        resolution(d, |v| {
            integral(v).ok_or_else(|| {
                format!(
                    "flag `{flag_key}` has the value {v}, which is not an integer: read it as a float"
                )
            })
        })
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        let d = self.details(flag_key, evaluation_context, 0.0_f64).await?;
        resolution(d, Ok)
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        let d = self
            .details(flag_key, evaluation_context, String::new())
            .await?;
        resolution(d, Ok)
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        let d = self
            .details(flag_key, evaluation_context, Value::Null)
            .await?;
        resolution(d, |v| match v {
            Value::Object(map) => Ok(struct_value(map)),
            other => Err(format!(
                "flag `{flag_key}` has a {} value: only object flags resolve as structures",
                json_type_name(&other)
            )),
        })
    }
}

/// `v` as an `i64`, when it is an integer in range.
fn integral(v: f64) -> Option<i64> {
    // 2^63 as f64 exactly: every integral f64 in [-2^63, 2^63) converts without loss.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    #[allow(clippy::cast_possible_truncation)]
    (v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v)).then_some(v as i64)
}

/// Maps vexil's result to OpenFeature's: the error, or the value read by `read` (whose error
/// is a `TYPE_MISMATCH` message) with its variant, reason and metadata.
fn resolution<T, U>(
    d: Details<T>,
    read: impl FnOnce(T) -> Result<U, String>,
) -> EvaluationResult<ResolutionDetails<U>> {
    if let Some(e) = d.error {
        return Err(EvaluationError {
            code: error_code(e.code),
            message: Some(e.message),
        });
    }
    let value = read(d.value).map_err(|message| EvaluationError {
        code: EvaluationErrorCode::TypeMismatch,
        message: Some(message),
    })?;
    let mut metadata = FlagMetadata::default();
    let reason = match d.reason {
        Reason::Static => EvaluationReason::Static,
        Reason::Default => EvaluationReason::Default,
        Reason::TargetingMatch => EvaluationReason::TargetingMatch,
        Reason::Split => EvaluationReason::Split,
        Reason::Disabled => EvaluationReason::Disabled,
        Reason::PrerequisiteFailed => {
            metadata.add_value("reason", Reason::PrerequisiteFailed.as_str());
            EvaluationReason::Default
        }
        Reason::Error => EvaluationReason::Error,
    };
    if let Some(rule) = d.rule {
        metadata.add_value("ruleIndex", i64::try_from(rule.index).unwrap_or(i64::MAX));
        if let Some(name) = rule.name {
            metadata.add_value("ruleName", name);
        }
    }
    Ok(ResolutionDetails {
        value,
        variant: d.variant,
        reason: Some(reason),
        flag_metadata: (!metadata.values.is_empty()).then_some(metadata),
    })
}

/// OpenFeature's code for a vexil error code.
fn error_code(code: ErrorCode) -> EvaluationErrorCode {
    match code {
        ErrorCode::FlagNotFound => EvaluationErrorCode::FlagNotFound,
        ErrorCode::TypeMismatch => EvaluationErrorCode::TypeMismatch,
        ErrorCode::ParseError => EvaluationErrorCode::ParseError,
        ErrorCode::InvalidContext => EvaluationErrorCode::InvalidContext,
        ErrorCode::ProviderNotReady => EvaluationErrorCode::ProviderNotReady,
        // `General` carries the code as OpenFeature prints it.
        other => EvaluationErrorCode::General(other.as_str().to_owned()),
    }
}

/// A JSON object flag value as an OpenFeature structure. `null`s have no OpenFeature
/// counterpart: they are left out (of objects and of arrays).
fn struct_value(map: Map<String, Value>) -> StructValue {
    StructValue {
        fields: map
            .into_iter()
            .filter_map(|(k, v)| of_value(v).map(|v| (k, v)))
            .collect(),
    }
}

fn of_value(v: Value) -> Option<open_feature::Value> {
    use open_feature::Value as Of;
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => Of::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Of::Int(i),
            None => Of::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Of::String(s),
        Value::Array(items) => Of::Array(items.into_iter().filter_map(of_value).collect()),
        Value::Object(map) => Of::Struct(struct_value(map)),
    })
}

/// The vexil [`Context`] for an OpenFeature evaluation context (see the [module](self) for the
/// types read); `INVALID_CONTEXT` for a field it cannot read.
pub fn vexil_context(ctx: &EvaluationContext) -> Result<Context, EvaluationError> {
    let mut attributes = Map::new();
    for (name, field) in &ctx.custom_fields {
        attributes.insert(name.clone(), field_json(field, name, 0)?);
    }
    if let Some(key) = &ctx.targeting_key {
        attributes.insert(TARGETING_KEY.to_owned(), Value::String(key.clone()));
    }
    Ok(Context::from(attributes))
}

fn invalid(path: &str, why: &str) -> EvaluationError {
    EvaluationError {
        code: EvaluationErrorCode::InvalidContext,
        message: Some(format!("evaluation context field `{path}`: {why}")),
    }
}

fn field_json(
    field: &EvaluationContextFieldValue,
    path: &str,
    depth: usize,
) -> Result<Value, EvaluationError> {
    use EvaluationContextFieldValue as F;
    Ok(match field {
        F::Bool(b) => Value::Bool(*b),
        F::Int(i) => Value::from(*i),
        F::Float(f) => float(*f),
        F::String(s) => Value::String(s.clone()),
        F::DateTime(t) => match Timestamp::from_nanosecond(t.unix_timestamp_nanos()) {
            Ok(ts) => Value::String(ts.to_string()),
            Err(_) => return Err(invalid(path, "the date-time is out of range")),
        },
        F::Struct(any) => any_json(any.as_ref(), path, depth + 1)?,
    })
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Reads the value inside OpenFeature's structure field, by type.
fn any_json(
    any: &(dyn Any + Send + Sync),
    path: &str,
    depth: usize,
) -> Result<Value, EvaluationError> {
    if depth > MAX_CONTEXT_DEPTH {
        return Err(invalid(
            path,
            &format!("nested more than {MAX_CONTEXT_DEPTH} levels deep"),
        ));
    }
    if let Some(v) = any.downcast_ref::<open_feature::Value>() {
        return of_json(v, path, depth);
    }
    if let Some(s) = any.downcast_ref::<StructValue>() {
        return of_struct_json(s, path, depth);
    }
    if let Some(items) = any.downcast_ref::<Vec<open_feature::Value>>() {
        return items
            .iter()
            .enumerate()
            .map(|(i, v)| of_json(v, &format!("{path}[{i}]"), depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(f) = any.downcast_ref::<EvaluationContextFieldValue>() {
        return field_json(f, path, depth);
    }
    if let Some(map) = any.downcast_ref::<HashMap<String, EvaluationContextFieldValue>>() {
        return map
            .iter()
            .map(|(k, f)| Ok((k.clone(), field_json(f, &format!("{path}.{k}"), depth + 1)?)))
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object);
    }
    if let Some(items) = any.downcast_ref::<Vec<EvaluationContextFieldValue>>() {
        return items
            .iter()
            .enumerate()
            .map(|(i, f)| field_json(f, &format!("{path}[{i}]"), depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(items) = any.downcast_ref::<Vec<String>>() {
        return Ok(Value::Array(
            items.iter().cloned().map(Value::String).collect(),
        ));
    }
    if let Some(v) = any.downcast_ref::<Value>() {
        return Ok(v.clone());
    }
    if let Some(map) = any.downcast_ref::<Map<String, Value>>() {
        return Ok(Value::Object(map.clone()));
    }
    Err(invalid(
        path,
        "a structure of a type the vexil provider cannot read; use open_feature::Value, \
         StructValue, HashMap<String, EvaluationContextFieldValue>, a Vec of those, \
         Vec<String> or serde_json::Value",
    ))
}

fn of_json(v: &open_feature::Value, path: &str, depth: usize) -> Result<Value, EvaluationError> {
    use open_feature::Value as Of;
    if depth > MAX_CONTEXT_DEPTH {
        return Err(invalid(
            path,
            &format!("nested more than {MAX_CONTEXT_DEPTH} levels deep"),
        ));
    }
    Ok(match v {
        Of::Bool(b) => Value::Bool(*b),
        Of::Int(i) => Value::from(*i),
        Of::Float(f) => float(*f),
        Of::String(s) => Value::String(s.clone()),
        Of::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| of_json(v, &format!("{path}[{i}]"), depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Of::Struct(s) => of_struct_json(s, path, depth)?,
    })
}

fn of_struct_json(s: &StructValue, path: &str, depth: usize) -> Result<Value, EvaluationError> {
    s.fields
        .iter()
        .map(|(k, v)| Ok((k.clone(), of_json(v, &format!("{path}.{k}"), depth + 1)?)))
        .collect::<Result<Map<_, _>, _>>()
        .map(Value::Object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_maps_to_openfeature() {
        let cases = [
            (ErrorCode::FlagNotFound, EvaluationErrorCode::FlagNotFound),
            (ErrorCode::TypeMismatch, EvaluationErrorCode::TypeMismatch),
            (ErrorCode::ParseError, EvaluationErrorCode::ParseError),
            (
                ErrorCode::InvalidContext,
                EvaluationErrorCode::InvalidContext,
            ),
            (
                ErrorCode::ProviderNotReady,
                EvaluationErrorCode::ProviderNotReady,
            ),
            (
                ErrorCode::General,
                EvaluationErrorCode::General("GENERAL".into()),
            ),
        ];
        for (vexil, openfeature) in cases {
            assert_eq!(error_code(vexil), openfeature);
            // OpenFeature prints the same code as vexil.
            assert_eq!(error_code(vexil).to_string(), vexil.as_str());
        }
    }

    #[test]
    fn integers_are_integral_floats_in_range() {
        assert_eq!(integral(42.0), Some(42));
        assert_eq!(integral(-0.0), Some(0));
        assert_eq!(integral(-9_223_372_036_854_775_808.0), Some(i64::MIN));
        assert_eq!(integral(9_223_372_036_854_775_808.0), None);
        assert_eq!(integral(2.5), None);
        assert_eq!(integral(f64::NAN), None);
        assert_eq!(integral(f64::INFINITY), None);
    }

    #[test]
    fn deep_context_structures_are_refused_not_overflowed() {
        let mut v = open_feature::Value::Bool(true);
        for _ in 0..(MAX_CONTEXT_DEPTH + 10) {
            v = open_feature::Value::Array(vec![v]);
        }
        let ctx = EvaluationContext::default()
            .with_custom_field("deep", EvaluationContextFieldValue::new_struct(v));
        let e = vexil_context(&ctx).unwrap_err();
        assert_eq!(e.code, EvaluationErrorCode::InvalidContext);
    }
}
