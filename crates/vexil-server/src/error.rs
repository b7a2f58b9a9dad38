//! API errors and their one mapping to HTTP: `{"error": {"code", "message", "details"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vexil_engine::Diagnostic;
use vexil_store::StoreError;

/// One problem in a request, by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Detail {
    /// Where: a path into the body (`rules[2].rollout`), a query parameter or a header.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or a parameter is invalid; each problem is a detail.
    #[error("{message}")]
    Validation {
        /// The summary.
        message: String,
        /// Each problem.
        details: Vec<Detail>,
    },
    /// Bad input of another kind (unparseable JSON, a wrong header…).
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// No key, or an unknown or revoked one.
    #[error("{0}")]
    Unauthorized(String),
    /// The key may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A request with a session cookie that could have come from another site (no or a wrong
    /// CSRF token, a foreign origin).
    #[error("{0}")]
    CsrfFailed(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (exists already, read-only mode…).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// `If-Match` named a version that is no longer current.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The body is larger than allowed.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The store cannot take writes right now.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the details are logged, not shown.
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "<[Detail]>::is_empty")]
    details: &'a [Detail],
}

impl ApiError {
    /// A validation failure from engine diagnostics. `strip` removes a path prefix
    /// (`flags.KEY.`) so paths are relative to the body that was sent.
    pub fn from_diagnostics(diagnostics: &[Diagnostic], strip: &str) -> ApiError {
        let details: Vec<Detail> = diagnostics
            .iter()
            .map(|d| {
                // Only a whole path segment is stripped: writing `flags.base` must not turn a
                // problem in `flags.based` into one in `d`.
                let path = d
                    .path
                    .strip_prefix(strip)
                    .filter(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
                    .map(|p| p.trim_start_matches('.').to_owned())
                    .unwrap_or_else(|| d.path.clone());
                let mut message = d.message.clone();
                if let (Some(l), Some(c)) = (d.line, d.column) {
                    message = format!("{message} (line {l}, column {c})");
                }
                Detail { path, message }
            })
            .collect();
        let n = details.len();
        ApiError::Validation {
            message: format!(
                "the request has {n} problem{}",
                if n == 1 { "" } else { "s" }
            ),
            details,
        }
    }

    /// A validation failure with one detail.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::Validation {
            message: message.clone(),
            details: vec![Detail {
                path: path.into(),
                message,
            }],
        }
    }

    /// The HTTP status and the stable error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Validation { .. } => (StatusCode::BAD_REQUEST, "validation_failed"),
            ApiError::BadRequest(code, _) => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::CsrfFailed(_) => (StatusCode::FORBIDDEN, "csrf_failed"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(code, _) => (StatusCode::CONFLICT, code),
            ApiError::PreconditionFailed(_) => {
                (StatusCode::PRECONDITION_FAILED, "version_conflict")
            }
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => ApiError::PreconditionFailed(format!(
                "{e}; fetch it again and retry with its current ETag"
            )),
            StoreError::Stale { .. } => ApiError::Conflict(
                "concurrent_change",
                "the configuration changed while this request was applied; retry".into(),
            ),
            StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            StoreError::AlreadyExists { .. } => ApiError::Conflict("already_exists", e.to_string()),
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "store unavailable");
                ApiError::Unavailable(
                    "the database is unavailable; the change was not applied (if the connection broke while committing, check the flag's history before retrying)".into(),
                )
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (message, details): (String, &[Detail]) = match &self {
            ApiError::Internal(internal) => {
                tracing::error!(error = %internal, "internal error");
                ("internal error; the server log has the details".into(), &[])
            }
            ApiError::Validation { message, details } => (message.clone(), details),
            other => (other.to_string(), &[]),
        };
        let body = Body {
            error: Inner {
                code,
                message,
                details,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vexil\""),
            );
        }
        response
    }
}
