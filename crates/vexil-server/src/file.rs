//! `--flags FILE`: serving a flag file read-only, reloaded when it changes.
//!
//! The file is polled (its modification time, size and content hash) rather than watched
//! through OS notifications, which behave differently across platforms, editors (write to a
//! temporary file, then rename) and mounted volumes. A broken edit is logged and ignored: the
//! last good version keeps serving.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow_free::Error;
use jiff::Timestamp;
use serde_json::Value;
use vexil_store::{Record, Snapshot};

use crate::state::{AppState, Live};

/// Errors of file mode, as text for logs.
mod anyhow_free {
    /// A message.
    #[derive(Debug)]
    pub struct Error(pub String);

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Error {}
}

/// How often the file is checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Reads and compiles a flag file into a [`Live`] configuration.
pub fn load(path: &Path) -> Result<Live, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error(format!("cannot read flag file {}: {e}", path.display())))?;
    let node =
        vexil_engine::parse_text(&text).map_err(|d| Error(format!("{}:{d}", path.display())))?;
    vexil_engine::Config::from_node(&node).map_err(|e| {
        let lines: Vec<String> = e
            .diagnostics
            .iter()
            .map(|d| format!("{}:{d}", path.display()))
            .collect();
        Error(lines.join("\n"))
    })?;
    let doc = node.to_json();
    let at = Timestamp::now();
    let records = |field: &str| -> Vec<Record> {
        let mut out: Vec<Record> = doc
            .get(field)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| Record {
                        key: k.clone(),
                        version: 1,
                        definition: v.clone(),
                        updated_at: at,
                        updated_by: "file".into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    };
    let environments = match doc.get("environments").and_then(Value::as_array) {
        Some(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        None => vec![vexil_engine::DEFAULT_ENVIRONMENT.to_owned()],
    };
    let snapshot = Snapshot {
        // A file has no revision of its own: the load time (in milliseconds) keeps event ids
        // increasing across reloads and restarts, so an SDK never mistakes a changed file for
        // the version it already has.
        revision: u64::try_from(at.as_millisecond()).unwrap_or(1),
        environments,
        flags: records("flags"),
        segments: records("segments"),
    };
    // A file without `environments` has one environment, `default`; the document built from
    // the snapshot lists it explicitly, which the engine reads the same way.
    Live::new(snapshot).map_err(|e| Error(e.to_string()))
}

fn fingerprint(path: &Path) -> Option<(std::time::SystemTime, u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    let bytes = std::fs::read(path).ok()?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Some((meta.modified().ok()?, meta.len(), h))
}

/// Polls the file and swaps in each new valid version until the task is dropped.
pub async fn watch(state: AppState, path: PathBuf) {
    let mut last = fingerprint(&path);
    let mut revision = state.live().revision();
    loop {
        tokio::time::sleep(POLL_INTERVAL).await;
        let now = fingerprint(&path);
        if now.is_none() || now == last {
            continue;
        }
        last = now;
        match load(&path) {
            Ok(mut live) => {
                revision = live.snapshot.revision.max(revision + 1);
                live.snapshot.revision = revision;
                let n = live.snapshot.flags.len();
                state.set_live(live);
                tracing::info!(file = %path.display(), flags = n, "reloaded the flag file");
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "the flag file is invalid; still serving its last good version");
            }
        }
    }
}
