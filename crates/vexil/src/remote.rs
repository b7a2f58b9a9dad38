//! Remote evaluation: each flag evaluated by the server over OFREP
//! (`POST /ofrep/v1/evaluate/flags/{key}`), for thin callers that should not hold the rules.
//!
//! Answers are cached per (flag, context) for a short time, the cache is bounded, and every
//! call has a deadline: a slow or unreachable server costs the caller at most the timeout and
//! yields the caller's default with an error code.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use vexil_engine::{Context, ErrorCode, Reason};

use crate::builder::endpoint;
use crate::details::{Details, FlagType, json_type_name};
use crate::error::Error;

/// The default deadline of one remote evaluation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
/// The default time an answer is reused for the same flag and context.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);
/// The default number of (flag, context) answers kept.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// A client that asks the server for every evaluation (OFREP), with a TTL cache and a
/// deadline. Cheap to clone; its accessors are async.
///
/// Use it where holding the definitions is not wanted (a thin service, a client key); prefer
/// [`Client`](crate::Client) (local evaluation) elsewhere: it never waits on the network.
///
/// ```no_run
/// # async fn run() -> Result<(), vexil::Error> {
/// use vexil::{Context, RemoteClient};
///
/// let flags = RemoteClient::new("https://flags.example.com", "vexil_client_…")?;
/// let ctx = Context::with_targeting_key("user-42");
/// if flags.is_enabled("new_checkout", &ctx).await {
///     // the new checkout
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RemoteClient {
    inner: Arc<RemoteInner>,
}

struct RemoteInner {
    http: reqwest::Client,
    base: Url,
    key: String,
    timeout: Duration,
    ttl: Duration,
    capacity: usize,
    cache: Mutex<HashMap<(String, String), Cached>>,
}

struct Cached {
    at: Instant,
    answer: Arc<Answer>,
}

/// The server's answer for one flag and context.
#[derive(Debug)]
enum Answer {
    Value {
        value: Value,
        variant: Option<String>,
        reason: Reason,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

impl fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteClient")
            .field("base", &self.inner.base.as_str())
            .field("timeout", &self.inner.timeout)
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

/// How a [`RemoteClient`] is built.
#[derive(Debug, Clone)]
#[must_use]
pub struct RemoteClientBuilder {
    url: String,
    key: String,
    environment: Option<String>,
    timeout: Duration,
    ttl: Duration,
    capacity: usize,
}

impl RemoteClientBuilder {
    /// The deadline of one evaluation, connection included. Default: 500 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long an answer is reused for the same flag and context. Default: 5 s, so a change
    /// (a kill switch) reaches remote callers within 5 s. `Duration::ZERO` disables the cache.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How many (flag, context) answers are kept; when full, expired answers are dropped, then
    /// the oldest. Default: 10,000.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The environment to evaluate in, for admin keys (`?env=`); other keys use their own.
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment = Some(name.into());
        self
    }

    /// Builds the client. Fails on an invalid URL. Needs no runtime until it is used.
    pub fn build(self) -> Result<RemoteClient, Error> {
        let base = endpoint(
            &self.url,
            "ofrep/v1/evaluate/flags",
            self.environment.as_deref(),
        )?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("vexil-rust/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Http)?;
        Ok(RemoteClient {
            inner: Arc::new(RemoteInner {
                http,
                base,
                key: self.key,
                timeout: self.timeout,
                ttl: self.ttl,
                capacity: self.capacity,
                cache: Mutex::new(HashMap::new()),
            }),
        })
    }
}

impl RemoteClient {
    /// A client for the server at `url`, with any key (client keys are meant for this), the
    /// 500 ms timeout and the 5 s cache.
    pub fn new(url: impl Into<String>, key: impl Into<String>) -> Result<RemoteClient, Error> {
        RemoteClient::builder(url, key).build()
    }

    /// A builder, to change the timeout or the cache.
    pub fn builder(url: impl Into<String>, key: impl Into<String>) -> RemoteClientBuilder {
        RemoteClientBuilder {
            url: url.into(),
            key: key.into(),
            environment: None,
            timeout: DEFAULT_TIMEOUT,
            ttl: DEFAULT_CACHE_TTL,
            capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// Whether a boolean flag is on; `false` when it cannot be evaluated (fail closed).
    pub async fn is_enabled(&self, key: &str, ctx: &Context) -> bool {
        self.bool_value(key, ctx, false).await
    }

    /// A boolean flag's value, or `default` (on any error, the timeout included).
    pub async fn bool_value(&self, key: &str, ctx: &Context, default: bool) -> bool {
        self.details(key, ctx, default).await.value
    }

    /// A string flag's value, or `default`.
    pub async fn string_value(&self, key: &str, ctx: &Context, default: &str) -> String {
        self.details(key, ctx, default.to_owned()).await.value
    }

    /// A number flag's value, or `default`.
    pub async fn number_value(&self, key: &str, ctx: &Context, default: f64) -> f64 {
        self.details(key, ctx, default).await.value
    }

    /// Any flag's value as JSON, or `default`.
    pub async fn json_value(&self, key: &str, ctx: &Context, default: Value) -> Value {
        self.details(key, ctx, default).await.value
    }

    /// Evaluates a flag as `T` and says why. On a timeout or a transport error the value is
    /// `default` with [`ErrorCode::General`]; the server's own errors keep their codes
    /// (`FLAG_NOT_FOUND`, `INVALID_CONTEXT`, …); a value of another type is `TYPE_MISMATCH`.
    /// The deciding rule is not reported over OFREP (`rule` is `None`).
    pub async fn details<T: FlagType>(&self, key: &str, ctx: &Context, default: T) -> Details<T> {
        let answer = self.answer(key, ctx).await;
        match &*answer {
            Answer::Error { code, message } => {
                Details::failed(key, default, *code, message.clone())
            }
            Answer::Value {
                value,
                variant,
                reason,
            } => match T::from_json(value) {
                Some(v) => Details {
                    flag_key: key.to_owned(),
                    value: v,
                    variant: variant.clone(),
                    reason: *reason,
                    rule: None,
                    error: None,
                },
                None => {
                    let expected = T::TYPE.map_or("any", |t| t.as_str());
                    Details::failed(
                        key,
                        default,
                        ErrorCode::TypeMismatch,
                        format!(
                            "the flag's value is of type {}, not {expected}",
                            json_type_name(value)
                        ),
                    )
                }
            },
        }
    }

    /// Drops every cached answer.
    pub fn clear_cache(&self) {
        self.cache().clear();
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Cached>> {
        // A panic elsewhere while holding the lock leaves a map that is still consistent.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn answer(&self, key: &str, ctx: &Context) -> Arc<Answer> {
        let cache_key = (
            key.to_owned(),
            Value::Object(ctx.attributes().clone()).to_string(),
        );
        let ttl = self.inner.ttl;
        if !ttl.is_zero()
            && let Some(c) = self.cache().get(&cache_key)
            && c.at.elapsed() < ttl
        {
            return c.answer.clone();
        }
        let timeout = self.inner.timeout;
        let answer = match tokio::time::timeout(timeout, self.fetch(key, ctx)).await {
            Ok(answer) => answer,
            Err(_) => Answer::Error {
                code: ErrorCode::General,
                message: format!("the flag server did not answer within {timeout:?}"),
            },
        };
        let answer = Arc::new(answer);
        let cacheable = match &*answer {
            Answer::Value { .. } => true,
            Answer::Error { code, .. } => *code == ErrorCode::FlagNotFound,
        };
        if cacheable && !ttl.is_zero() && self.inner.capacity > 0 {
            self.store(cache_key, answer.clone());
        }
        answer
    }

    fn store(&self, key: (String, String), answer: Arc<Answer>) {
        let ttl = self.inner.ttl;
        let mut cache = self.cache();
        if cache.len() >= self.inner.capacity && !cache.contains_key(&key) {
            cache.retain(|_, c| c.at.elapsed() < ttl);
            while cache.len() >= self.inner.capacity {
                let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, c)| c.at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                cache.remove(&oldest);
            }
        }
        cache.insert(
            key,
            Cached {
                at: Instant::now(),
                answer,
            },
        );
    }

    async fn fetch(&self, key: &str, ctx: &Context) -> Answer {
        let mut url = self.inner.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(key);
        }
        let body = json!({ "context": ctx.attributes() });
        let response = self
            .inner
            .http
            .post(url)
            .bearer_auth(&self.inner.key)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .timeout(self.inner.timeout)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                return Answer::Error {
                    code: ErrorCode::General,
                    message: format!("cannot reach the flag server: {e}"),
                };
            }
        };
        let status = response.status();
        let body: Option<Value> = response.json().await.ok();
        let field = |name: &str| {
            body.as_ref()
                .and_then(|b| b.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if status.is_success() {
            return match body.as_ref().and_then(|b| b.get("value")) {
                Some(value) => Answer::Value {
                    value: value.clone(),
                    variant: field("variant"),
                    reason: field("reason").map_or(Reason::Default, |r| parse_reason(&r)),
                },
                None => match field("errorCode") {
                    Some(code) => Answer::Error {
                        code: parse_code(&code),
                        message: field("errorDetails").unwrap_or_default(),
                    },
                    None => Answer::Error {
                        code: ErrorCode::ParseError,
                        message: "the server's answer has no value".into(),
                    },
                },
            };
        }
        let message = field("errorDetails")
            .or_else(|| {
                body.as_ref()
                    .and_then(|b| b.pointer("/error/message"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("the flag server answered {status}"));
        let code = match (field("errorCode"), status) {
            (Some(code), _) => parse_code(&code),
            (None, StatusCode::NOT_FOUND) => ErrorCode::FlagNotFound,
            (None, _) => ErrorCode::General,
        };
        Answer::Error { code, message }
    }
}

/// An OFREP reason. Reasons this SDK does not know (a newer server's) read as `DEFAULT`.
fn parse_reason(s: &str) -> Reason {
    match s {
        "STATIC" => Reason::Static,
        "TARGETING_MATCH" => Reason::TargetingMatch,
        "SPLIT" => Reason::Split,
        "DISABLED" => Reason::Disabled,
        "PREREQUISITE_FAILED" => Reason::PrerequisiteFailed,
        "ERROR" => Reason::Error,
        _ => Reason::Default,
    }
}

/// An OFREP error code; unknown ones read as `GENERAL`.
fn parse_code(s: &str) -> ErrorCode {
    match s {
        "FLAG_NOT_FOUND" => ErrorCode::FlagNotFound,
        "TYPE_MISMATCH" => ErrorCode::TypeMismatch,
        "PARSE_ERROR" => ErrorCode::ParseError,
        "INVALID_CONTEXT" => ErrorCode::InvalidContext,
        "PROVIDER_NOT_READY" => ErrorCode::ProviderNotReady,
        _ => ErrorCode::General,
    }
}
