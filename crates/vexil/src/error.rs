//! The errors of building a client. Evaluation itself never fails: it returns the caller's
//! default with an error code (see [`crate::Details`]).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use vexil_engine::LoadError;

use crate::Status;

/// Why a client could not be built, or did not become ready in time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flag file could not be read.
    #[error("cannot read the flag file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A flag document is not valid; every problem is listed.
    #[error("{what} is not a valid flag document:{}", list(source))]
    Invalid {
        /// What was read: a file's path, or a description of the document.
        what: String,
        /// The problems, each with its path (and line and column for text).
        #[source]
        source: LoadError,
    },
    /// The environment asked for (by argument or `VEXIL_ENV`) is not in the document.
    #[error(
        "no environment `{name}` in {what}; it has: {}",
        available.join(", ")
    )]
    UnknownEnvironment {
        /// The environment asked for.
        name: String,
        /// What was read.
        what: String,
        /// The document's environments.
        available: Vec<String>,
    },
    /// The server URL is not an absolute `http` or `https` URL.
    #[error("invalid server URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it is not usable.
        reason: String,
    },
    /// The HTTP client could not be set up (for example, no TLS backend).
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
    /// A client that syncs with a server was built outside a tokio runtime.
    #[error(
        "a client that syncs with a server runs a background task: build it inside a tokio runtime"
    )]
    NoRuntime,
    /// [`ClientBuilder::build`](crate::ClientBuilder::build) was called without
    /// [`server`](crate::ClientBuilder::server) or [`file`](crate::ClientBuilder::file).
    #[error("no source of flag definitions: call .server(url, key) or .file(path) on the builder")]
    NoSource,
    /// The file watcher thread could not be started.
    #[error("cannot start the file watcher: {0}")]
    Watcher(#[source] std::io::Error),
    /// [`Client::wait_ready`](crate::Client::wait_ready) timed out.
    #[error("the client is not ready after {waited:?} (status: {status})")]
    NotReady {
        /// The status when the wait ended.
        status: Status,
        /// How long was waited.
        waited: Duration,
    },
}

fn list(e: &LoadError) -> String {
    let mut out = String::new();
    for d in &e.diagnostics {
        let _ = write!(out, "\n  {d}");
    }
    out
}
