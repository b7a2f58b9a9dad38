//! A small blocking client of the admin API, and what its failures mean for the exit code.

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client as Http, RequestBuilder};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::Value;

/// How long one request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where the server is and the key to use (`--server`, `--key`, or `VEXIL_SERVER`,
/// `VEXIL_KEY`).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "VEXIL_SERVER", value_name = "URL", global = true)]
    pub server: Option<String>,
    /// The API key (an admin key for the admin commands).
    #[arg(
        long,
        env = "VEXIL_KEY",
        value_name = "KEY",
        global = true,
        hide_env_values = true
    )]
    pub key: Option<String>,
}

impl ServerArgs {
    /// A client for these arguments; a usage error when one is missing.
    pub fn client(&self) -> Result<Client, Failure> {
        let Some(server) = self.server.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Err(Failure::Usage(
                "no server: pass --server URL or set VEXIL_SERVER".into(),
            ));
        };
        let Some(key) = self.key.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Err(Failure::Usage(
                "no API key: pass --key KEY or set VEXIL_KEY".into(),
            ));
        };
        Client::new(server, key)
    }
}

/// Why a command against the server failed.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage: a missing option, an unreadable file, an invalid argument. Exit 2.
    Usage(String),
    /// No answer from the server. Exit 2.
    Unreachable(String),
    /// The server refused the request; its own words.
    Server(ServerError),
    /// Input that is not a valid document. Exit 1.
    Invalid(String),
}

/// An error answer: the status and the server's `{"error": {"code", "message", "details"}}`.
#[derive(Debug)]
pub struct ServerError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable error code (`validation_failed`, `not_found`, …).
    pub code: String,
    /// The server's message.
    pub message: String,
    /// `(path, message)` of each detail.
    pub details: Vec<(String, String)>,
}

impl Failure {
    /// The exit code: 2 for bad usage, an unreachable or failing server and a refused key; 1
    /// for a request the server refused as invalid or conflicting (a finding).
    pub fn exit_code(&self) -> ExitCode {
        let code = match self {
            Failure::Usage(_) | Failure::Unreachable(_) => crate::EXIT_USAGE,
            Failure::Invalid(_) => crate::EXIT_FINDING,
            Failure::Server(e) => {
                if e.status == StatusCode::UNAUTHORIZED
                    || e.status == StatusCode::FORBIDDEN
                    || e.status.is_server_error()
                {
                    crate::EXIT_USAGE
                } else {
                    crate::EXIT_FINDING
                }
            }
        };
        ExitCode::from(code)
    }

    /// Prints the failure on stderr and returns its exit code.
    pub fn report(&self) -> ExitCode {
        eprint!("{self}");
        self.exit_code()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) | Failure::Invalid(m) => writeln!(f, "error: {m}"),
            Failure::Unreachable(m) => writeln!(f, "error: {m}"),
            Failure::Server(e) => {
                // The server's message, as it phrased it; a single detail that repeats it is
                // folded into one line with its path.
                match e.details.as_slice() {
                    [(path, message)] if *message == e.message => {
                        if path.is_empty() {
                            writeln!(f, "error: {message}")?;
                        } else {
                            writeln!(f, "error: {path}: {message}")?;
                        }
                    }
                    details => {
                        writeln!(f, "error: {}", e.message)?;
                        for (path, message) in details {
                            if path.is_empty() {
                                writeln!(f, "  {message}")?;
                            } else {
                                writeln!(f, "  {path}: {message}")?;
                            }
                        }
                    }
                }
                writeln!(
                    f,
                    "({} {}, {})",
                    e.status.as_u16(),
                    e.status.canonical_reason().unwrap_or(""),
                    e.code
                )
            }
        }
    }
}

/// A successful answer: its status, `ETag` and JSON body (`null` when empty).
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
}

/// A client of one server with one key.
#[derive(Debug)]
pub struct Client {
    http: Http,
    base: String,
    key: String,
}

/// A request body.
pub enum Body {
    /// JSON.
    Json(Value),
    /// Text with its content type (`application/yaml`, `application/json`).
    Text(String, &'static str),
}

impl Client {
    /// A client for `base` (`http://host:port`, a trailing `/` ignored).
    pub fn new(base: &str, key: &str) -> Result<Client, Failure> {
        let base = base.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| Failure::Usage(format!("--server `{base}` is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Failure::Usage(format!(
                "--server `{base}` must start with http:// or https://"
            )));
        }
        let http = Http::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("vexil-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Usage(format!("cannot build an HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            key: key.trim().to_owned(),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET PATH`.
    pub fn get(&self, path: &str) -> Result<Answer, Failure> {
        self.send(reqwest::Method::GET, path, None, &[])
    }

    /// Sends a request; an answer outside 2xx is a [`Failure::Server`].
    pub fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
        headers: &[(&str, String)],
    ) -> Result<Answer, Failure> {
        let url = format!("{}{path}", self.base);
        let mut request: RequestBuilder = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.key);
        for (name, value) in headers {
            let value = HeaderValue::from_str(value).map_err(|_| {
                Failure::Usage(format!("{name}: `{value}` cannot be sent in a header"))
            })?;
            request = request.header(*name, value);
        }
        request = match body {
            None => request,
            Some(Body::Json(v)) => request.json(&v),
            Some(Body::Text(text, content_type)) => {
                request.header(CONTENT_TYPE, content_type).body(text)
            }
        };
        let response = request.send().map_err(|e| {
            Failure::Unreachable(format!(
                "cannot reach the server at {}: {}",
                self.base,
                root_cause(&e)
            ))
        })?;
        let status = response.status();
        let bytes = response.bytes().map_err(|e| {
            Failure::Unreachable(format!(
                "{method} {url}: the answer broke off: {}",
                root_cause(&e)
            ))
        })?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(_) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            }
        };
        if status.is_success() {
            return Ok(Answer { status, body });
        }
        Err(Failure::Server(server_error(status, &body)))
    }
}

/// The server's error object, or a description of an answer that has none (a proxy's page).
fn server_error(status: StatusCode, body: &Value) -> ServerError {
    let error = body.get("error");
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let message = text(error.and_then(|e| e.get("message")))
        .or_else(|| text(body.get("errorDetails")))
        .unwrap_or_else(|| match body {
            Value::String(s) if !s.trim().is_empty() => s.trim().chars().take(300).collect(),
            _ => format!(
                "the server answered {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        });
    let details = error
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|d| {
                    (
                        text(d.get("path")).unwrap_or_default(),
                        text(d.get("message")).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ServerError {
        status,
        code: text(error.and_then(|e| e.get("code"))).unwrap_or_else(|| "-".into()),
        message,
        details,
    }
}

/// The innermost cause of an error ("Connection refused (os error 111)"), which says more than
/// reqwest's outer "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
