//! The routes, one module per area; handlers are thin and leave the work to [`crate::state`].

pub mod admin;
pub mod eval;
pub mod flags;
pub mod session;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Ready"), (status = 503, description = "The store is unreachable")))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.ready().await {
        Ok(()) => {
            Json(json!({ "status": "ready", "revision": state.live().revision() })).into_response()
        }
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reason": reason })),
        )
            .into_response(),
    }
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        state.metrics().render(),
    )
        .into_response()
}

/// `GET /openapi.json`: this API's OpenAPI document, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1")))]
pub async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see /openapi.json".into())
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "vexil", description = "Feature flags: admin API, OFREP evaluation and the simple API."),
    paths(
        healthz, readyz, metrics, openapi,
        eval::simple_get, flags::simple_put, eval::ofrep_single, eval::ofrep_bulk,
        flags::list, flags::get, flags::put, flags::delete, flags::enable, flags::disable,
        flags::history, flags::revert, eval::explain,
        admin::segments_list, admin::segment_get, admin::segment_put, admin::segment_delete,
        admin::environments_list, admin::environment_create,
        admin::keys_list, admin::key_create, admin::key_revoke,
        admin::audit, admin::export, admin::import,
        crate::sync::flags, crate::sync::stream,
        session::get, session::create, session::delete,
    ),
    components(schemas(crate::error::Detail)),
    modifiers(&Security),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}
