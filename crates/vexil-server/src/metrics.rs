//! Prometheus metrics: requests by route and status, request latency, evaluations by flag and
//! reason. Served as text at `/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Arc<String>,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EvalLabels {
    flag: String,
    reason: &'static str,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    evaluations: Family<EvalLabels, Counter>,
    /// Route label values, made once per route so that counting a request allocates nothing.
    routes: RwLock<HashMap<String, Arc<String>>>,
    /// The counters of `evaluations` by flag, then reason: found by `&str`, so that counting an
    /// evaluation allocates nothing (a bulk evaluation counts one per flag).
    evaluation_counters: RwLock<HashMap<String, Vec<(&'static str, Counter)>>>,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("vexil");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let evaluations = Family::<EvalLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "evaluations",
            "Flag evaluations by flag and reason",
            evaluations.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            evaluations,
            routes: RwLock::default(),
            evaluation_counters: RwLock::default(),
        }
    }

    /// Counts one evaluation.
    ///
    /// Failed evaluations (reason `ERROR`: above all unknown flags, whose keys come from
    /// callers) share one `flag` label, so callers cannot grow the metrics without bound.
    pub fn evaluation(&self, flag: &str, reason: &'static str) {
        let flag = if reason == "ERROR" { "(error)" } else { flag };
        let counters = self
            .evaluation_counters
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, counter)) = counters
            .get(flag)
            .and_then(|c| c.iter().find(|(r, _)| *r == reason))
        {
            counter.inc();
            return;
        }
        drop(counters);
        // First time for this flag and reason: the counter is made in the family (which
        // exports it) and shared with the cache.
        let counter = self
            .evaluations
            .get_or_create(&EvalLabels {
                flag: flag.to_owned(),
                reason,
            })
            .clone();
        counter.inc();
        let mut counters = self
            .evaluation_counters
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let by_reason = counters.entry(flag.to_owned()).or_default();
        if !by_reason.iter().any(|(r, _)| *r == reason) {
            by_reason.push((reason, counter));
        }
    }

    /// The route label for a matched path (`unmatched` for none).
    fn route(&self, path: Option<&str>) -> Arc<String> {
        let path = path.unwrap_or("unmatched");
        if let Some(route) = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
        {
            return route.clone();
        }
        // Matched paths are route templates, so this table stays as small as the router.
        self.routes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(path.to_owned())
            .or_insert_with(|| Arc::new(path.to_owned()))
            .clone()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Middleware recording every request.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let m = state.metrics();
    let route = m.route(
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let method = method_label(req.method());
    let response = next.run(req).await;
    m.requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    m.latency
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The method label: the standard methods by name, any other as `other` (a client choosing
/// arbitrary methods must not be able to create series without bound).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}
