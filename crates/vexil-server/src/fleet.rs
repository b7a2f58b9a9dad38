//! Keeping an instance current with writes made by other instances sharing its database.
//!
//! A background task compares the store's revision with the instance's own. It checks when the
//! database says something changed (PostgreSQL `LISTEN`, fed in as `nudges`) and, as a safety
//! net for missed notifications and reconnects, every `interval`. When the revision moved, it
//! reads a snapshot, compiles it, swaps it in, reloads the keys, and publishes what changed to
//! the SDK streams as one patch whose id is the new revision — the same revision every instance
//! uses, so an SDK can resume on any of them.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;
use vexil_store::{Change, Expected, Record, Snapshot};

use crate::state::AppState;

/// Runs until the task is dropped. `nudges` carries the latest revision the database announced
/// (PostgreSQL `LISTEN`); `interval` is the safety-net poll.
pub async fn follow(state: AppState, mut nudges: Option<watch::Receiver<u64>>, interval: Duration) {
    loop {
        match &mut nudges {
            Some(rx) => {
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            // The listener is gone for good: fall back to polling alone.
                            nudges = None;
                        }
                    }
                    () = tokio::time::sleep(interval) => {}
                }
            }
            None => tokio::time::sleep(interval).await,
        }
        if let Err(e) = catch_up(&state).await {
            tracing::warn!(error = %e, "cannot catch up with the database; serving the last loaded configuration");
        }
    }
}

/// Loads and applies whatever other instances committed since this instance's revision.
/// Returns whether anything changed.
pub async fn catch_up(state: &AppState) -> Result<bool, crate::ApiError> {
    state.catch_up().await
}

/// The changes that turn `old` into `new`, as a patch (puts and deletes of flags and segments).
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    diff_records(&old.flags, &new.flags, &mut changes, true);
    diff_records(&old.segments, &new.segments, &mut changes, false);
    changes
}

fn diff_records(old: &[Record], new: &[Record], out: &mut Vec<Change>, flags: bool) {
    let before: HashMap<&str, &Record> = old.iter().map(|r| (r.key.as_str(), r)).collect();
    let after: HashMap<&str, &Record> = new.iter().map(|r| (r.key.as_str(), r)).collect();
    for r in new {
        let changed = before
            .get(r.key.as_str())
            .is_none_or(|o| o.version != r.version || o.definition != r.definition);
        if changed {
            out.push(if flags {
                Change::PutFlag {
                    key: r.key.clone(),
                    definition: r.definition.clone(),
                    expected: Expected::Any,
                }
            } else {
                Change::PutSegment {
                    name: r.key.clone(),
                    definition: r.definition.clone(),
                    expected: Expected::Any,
                }
            });
        }
    }
    for r in old {
        if !after.contains_key(r.key.as_str()) {
            out.push(if flags {
                Change::DeleteFlag {
                    key: r.key.clone(),
                    expected: Expected::Any,
                }
            } else {
                Change::DeleteSegment {
                    name: r.key.clone(),
                    expected: Expected::Any,
                }
            });
        }
    }
}
