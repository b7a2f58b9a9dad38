//! The vexil service: the admin API, OFREP and the simple evaluation API over HTTP (axum), on
//! top of a [`vexil_store::Store`] and the [`vexil_engine`].
//!
//! Only this crate knows HTTP. [`router`] builds the routes; [`serve`] runs them on a listener
//! until a shutdown signal, so tests bind `127.0.0.1:0`. [`bootstrap`] prepares a new store.
//! The admin web UI is built in ([`ui`]) and signs in with [`session`] cookies.

pub mod auth;
pub mod body;
pub mod error;
pub mod file;
pub mod fleet;
pub mod metrics;
pub mod routes;
pub mod session;
pub mod state;
pub mod sync;
pub mod ui;

use std::future::Future;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use vexil_store::{Change, Commit, KeyKind};

pub use error::ApiError;
pub use state::{AppState, Options, Source};

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    use routes::{admin, eval, flags};
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/{*path}", get(ui::asset))
        .route(
            "/api/v1/session",
            get(routes::session::get)
                .post(routes::session::create)
                .delete(routes::session::delete),
        )
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(routes::openapi))
        .route("/flags/{key}", get(eval::simple_get).put(flags::simple_put))
        .route("/ofrep/v1/evaluate/flags/{key}", post(eval::ofrep_single))
        .route("/ofrep/v1/evaluate/flags", post(eval::ofrep_bulk))
        .route("/api/v1/flags", get(flags::list))
        .route(
            "/api/v1/flags/{key}",
            get(flags::get).put(flags::put).delete(flags::delete),
        )
        .route(
            "/api/v1/flags/{key}/environments/{env}/enable",
            post(flags::enable),
        )
        .route(
            "/api/v1/flags/{key}/environments/{env}/disable",
            post(flags::disable),
        )
        .route("/api/v1/flags/{key}/history", get(flags::history))
        .route("/api/v1/flags/{key}/revert", post(flags::revert))
        .route("/api/v1/flags/{key}/explain", post(eval::explain))
        .route("/api/v1/segments", get(admin::segments_list))
        .route(
            "/api/v1/segments/{name}",
            get(admin::segment_get)
                .put(admin::segment_put)
                .delete(admin::segment_delete),
        )
        .route(
            "/api/v1/environments",
            get(admin::environments_list).post(admin::environment_create),
        )
        .route(
            "/api/v1/keys",
            get(admin::keys_list).post(admin::key_create),
        )
        .route(
            "/api/v1/keys/{id}",
            axum::routing::delete(admin::key_revoke),
        )
        .route("/sdk/v1/flags", get(sync::flags))
        .route("/sdk/v1/stream", get(sync::stream))
        .route("/api/v1/audit", get(admin::audit))
        .route("/api/v1/export", get(admin::export))
        .route("/api/v1/import", post(admin::import))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

async fn method_not_allowed() -> ApiError {
    ApiError::BadRequest(
        "method_not_allowed",
        "this route does not take that method; see /openapi.json".into(),
    )
}

/// Serves the router on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub_state = state.clone();
    let shutdown = async move {
        shutdown.await;
        // SDK streams never end by themselves: end them, or shutdown would wait forever.
        hub_state.hub().close();
    };
    // `into_make_service` compiles the routes once. Handing `serve` the router itself would
    // rebuild its route table for every connection (axum's `Router::with_state` on each
    // accept), and keep that copy, about 9 KiB here, for the connection's life: 90 MB for
    // 10,000 SDK streams.
    axum::serve(listener, router(state).into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Prepares a new, empty store: the initial environments and the first admin key, in one
/// commit. Returns the admin secret when it created one (`None` when the store was not empty).
/// `admin_secret` fixes the secret (from `VEXIL_ADMIN_KEY`); otherwise a random one is made.
pub async fn bootstrap(
    store: &vexil_store::DynStore,
    admin_secret: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let snapshot = store.snapshot().await?;
    if snapshot.revision != 0 {
        return Ok(None);
    }
    let secret = match admin_secret {
        Some(s) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => auth::new_secret(KeyKind::Admin)?,
    };
    let key = vexil_store::ApiKey {
        id: auth::random_hex(8)?,
        name: "admin".into(),
        kind: KeyKind::Admin,
        environment: None,
        secret_hash: auth::hash_secret(&secret),
        created_at: jiff::Timestamp::now(),
        revoked_at: None,
    };
    let mut changes: Vec<Change> = state::INITIAL_ENVIRONMENTS
        .iter()
        .map(|e| Change::AddEnvironment { name: (*e).into() })
        .collect();
    changes.push(Change::CreateKey(key));
    let committed = store
        .commit(Commit {
            base_revision: 0,
            actor: "vexil".into(),
            action: "bootstrap".into(),
            target: "config".into(),
            comment: Some("first start: initial environments and admin key".into()),
            before: None,
            after: Some(serde_json::json!({ "environments": state::INITIAL_ENVIRONMENTS })),
            changes,
        })
        .await;
    match committed {
        Ok(_) => Ok(Some(secret)),
        // Another instance of the fleet bootstrapped the same database first.
        Err(vexil_store::StoreError::Stale { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
