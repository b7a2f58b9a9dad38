//! Flag documents read locally: files (optionally watched), text, and bootstraps.
//!
//! The environment is chosen once per load: the one asked for, else the `VEXIL_ENV` variable,
//! else the document's first (`default` when it lists none). A watched file is polled from a
//! small thread (no async runtime needed); a new version replaces the definitions only when it
//! is a valid document with that environment, so a broken edit keeps the last good one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use vexil_engine::Config;

use crate::client::{Defs, Shared, Status};
use crate::error::Error;

/// Reads `VEXIL_ENV`: the SDK's documented contract is that a file client with no environment
/// given evaluates in the one this variable names (as the `vexil` command does), so this is
/// the one place outside the binaries' argument parsing that reads the process environment.
#[allow(clippy::disallowed_methods)]
fn vexil_env() -> Option<String> {
    std::env::var("VEXIL_ENV")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The environment to ask for: the argument, else `VEXIL_ENV`.
pub(crate) fn asked_environment(asked: Option<&str>) -> Option<String> {
    asked.map(str::to_owned).or_else(vexil_env)
}

/// Compiles a parsed document and checks the environment.
fn compile(
    node: &vexil_engine::Node,
    asked: Option<&str>,
    what: &str,
    revision: u64,
) -> Result<Defs, Error> {
    let config = Config::from_node(node).map_err(|source| Error::Invalid {
        what: what.to_owned(),
        source,
    })?;
    let env = match asked {
        None => None,
        Some(name) if config.env(name).is_some() => Some(name.into()),
        Some(name) => {
            return Err(Error::UnknownEnvironment {
                name: name.to_owned(),
                what: what.to_owned(),
                available: config.environments().map(str::to_owned).collect(),
            });
        }
    };
    Ok(Defs {
        config,
        env,
        document: Arc::new(node.to_json()),
        revision,
    })
}

fn parse(text: &str, what: &str) -> Result<vexil_engine::Node, Error> {
    vexil_engine::parse_text(text).map_err(|d| Error::Invalid {
        what: what.to_owned(),
        source: vexil_engine::LoadError {
            diagnostics: vec![d],
        },
    })
}

/// Loads a document from text, in environment `env` (already resolved with
/// [`asked_environment`]; `None` for the first).
pub(crate) fn load_text(
    text: &str,
    env: Option<&str>,
    what: &str,
    revision: u64,
) -> Result<Defs, Error> {
    compile(&parse(text, what)?, env, what, revision)
}

/// Loads a document from a JSON value, in environment `env` (`None` for the first).
pub(crate) fn load_json(
    value: &Value,
    env: Option<&str>,
    what: &str,
    revision: u64,
) -> Result<Defs, Error> {
    let node = vexil_engine::Node::from_json(value).map_err(|d| Error::Invalid {
        what: what.to_owned(),
        source: vexil_engine::LoadError {
            diagnostics: vec![d],
        },
    })?;
    compile(&node, env, what, revision)
}

/// Reads a flag file's text.
pub(crate) fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// Loads a bootstrap: a flag document (evaluated in `env`, `None` for the first), or a saved
/// `GET /sdk/v1/flags` answer (`{"revision", "environment", "flags", "segments"}`), whose
/// `revision` and `environment` are dropped: it is then a document with one environment.
pub(crate) fn load_bootstrap(value: &Value, env: Option<&str>, what: &str) -> Result<Defs, Error> {
    if let Value::Object(map) = value
        && (map.contains_key("revision") || map.contains_key("environment"))
    {
        let doc = serde_json::json!({
            "flags": map.get("flags").cloned().unwrap_or_else(|| Value::Object(Default::default())),
            "segments": map.get("segments").cloned().unwrap_or_else(|| Value::Object(Default::default())),
        });
        // A sync answer is one environment, `default`: whatever was asked does not apply.
        return load_json(&doc, None, what, 0);
    }
    load_json(value, env, what, 0)
}

/// Reads a bootstrap file as text (YAML or JSON) into JSON.
pub(crate) fn read_bootstrap(path: &Path) -> Result<Value, Error> {
    let what = path.display().to_string();
    Ok(parse(&read(path)?, &what)?.to_json())
}

/// What the watcher compares to notice an edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// Every this many polls the watcher re-reads the file even when its size and modification
/// time look unchanged (an edit of the same size within the file system's timestamp
/// granularity).
const REREAD_EVERY: u32 = 5;

/// Starts a thread that polls `path` every `interval` and swaps in each valid new version (in
/// environment `asked`, or the first). `loaded` is the text already loaded. The thread ends by
/// itself once the client is dropped.
pub(crate) fn watch(
    shared: Weak<Shared>,
    path: PathBuf,
    asked: Option<String>,
    interval: Duration,
    loaded: String,
) -> Result<(), Error> {
    let mut watcher = Watcher {
        last_stamp: stamp(&path).ok(),
        last_text: loaded,
        last_valid: true,
        revision: 1,
        polls: 0,
        path,
        asked,
    };
    std::thread::Builder::new()
        .name("vexil-file-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                watcher.poll(&shared);
            }
        })
        .map(|_| ())
        .map_err(Error::Watcher)
}

struct Watcher {
    path: PathBuf,
    asked: Option<String>,
    last_stamp: Option<Stamp>,
    /// The text last read, valid or not (a broken version is reported once, not every poll).
    last_text: String,
    /// Whether `last_text` is what is served.
    last_valid: bool,
    revision: u64,
    polls: u32,
}

impl Watcher {
    fn poll(&mut self, shared: &Shared) {
        self.polls = self.polls.wrapping_add(1);
        let now = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) => {
                if shared.status() != Status::Stale {
                    tracing::warn!(path = %self.path.display(), error = %e,
                        "the flag file is unreadable; serving its last valid version");
                    shared.set_status(Status::Stale);
                }
                self.last_stamp = None;
                return;
            }
        };
        if Some(now) == self.last_stamp && self.polls % REREAD_EVERY != 0 {
            return;
        }
        self.last_stamp = Some(now);
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                if shared.status() != Status::Stale {
                    tracing::warn!(path = %self.path.display(), error = %e,
                        "cannot read the flag file; serving its last valid version");
                    shared.set_status(Status::Stale);
                }
                return;
            }
        };
        if text == self.last_text {
            // Unchanged. If it had been unreadable, it is back, and what is served is what it
            // says (unless it is the broken version reported before).
            if self.last_valid {
                shared.set_status(Status::Ready);
            }
            return;
        }
        self.last_text = text;
        let what = self.path.display().to_string();
        let next = self.revision + 1;
        match load_text(&self.last_text, self.asked.as_deref(), &what, next) {
            Ok(defs) => {
                self.revision = next;
                self.last_valid = true;
                shared.install(defs, Status::Ready);
                tracing::info!(path = %what, "reloaded the flag file");
            }
            Err(e) => {
                self.last_valid = false;
                tracing::warn!(error = %e, "the edited flag file is not valid; serving its last valid version");
                shared.set_status(Status::Stale);
            }
        }
    }
}
