//! Commits: the only way anything is written.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;

use super::codec::{json_to_sql, timestamp_to_sql, u64_from_sql, u64_to_sql};
use super::{error, read};
use crate::{ApiKey, Change, Commit, Committed, Expected, StoreError};

/// Applies a commit in one `BEGIN IMMEDIATE` transaction. Any error returns before `COMMIT`,
/// and dropping the transaction rolls everything back.
pub(super) fn commit(conn: &mut Connection, commit: &Commit) -> Result<Committed, StoreError> {
    // IMMEDIATE takes the write lock before the revision is read, so no other writer (in this
    // process or another) can slip in between the check and the write.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error::sqlite)?;
    let current = read::revision(&tx)?;
    if current != commit.base_revision {
        return Err(StoreError::Stale { current });
    }
    let revision = current
        .checked_add(1)
        .ok_or_else(|| error::corrupt("revision", format_args!("{current} overflows")))?;
    // Read under the lock, so that commit times follow revisions as far as the clock does.
    let at = Timestamp::now();
    let write = Write {
        tx: &tx,
        revision: u64_to_sql(revision, "revision")?,
        at: timestamp_to_sql(at),
        actor: &commit.actor,
    };

    let mut versions = Vec::with_capacity(commit.changes.len());
    for change in &commit.changes {
        versions.push(write.apply(change)?);
    }
    write.audit(commit)?;
    let updated = tx
        .prepare_cached("UPDATE meta SET revision = ?1 WHERE id = 1")
        .and_then(|mut stmt| stmt.execute([write.revision]))
        .map_err(error::sqlite)?;
    if updated != 1 {
        return Err(error::corrupt("meta table", "its row is missing"));
    }
    tx.commit().map_err(error::sqlite)?;
    Ok(Committed {
        revision,
        at,
        versions,
    })
}

/// The tables of one versioned kind of thing.
struct Versioned {
    /// The live rows.
    current: &'static str,
    /// Every version.
    history: &'static str,
    /// The prefix of its targets in errors: `flag:KEY`.
    prefix: &'static str,
}

const FLAGS: Versioned = Versioned {
    current: "flags",
    history: "flag_versions",
    prefix: "flag",
};

const SEGMENTS: Versioned = Versioned {
    current: "segments",
    history: "segment_versions",
    prefix: "segment",
};

/// One commit being written.
struct Write<'a> {
    tx: &'a Transaction<'a>,
    revision: i64,
    at: String,
    actor: &'a str,
}

impl Write<'_> {
    /// Applies one change and returns the version it wrote (0 when unversioned).
    fn apply(&self, change: &Change) -> Result<u64, StoreError> {
        match change {
            Change::PutFlag {
                key,
                definition,
                expected,
            } => self.put(&FLAGS, key, definition, *expected),
            Change::DeleteFlag { key, expected } => self.delete(&FLAGS, key, *expected),
            Change::PutSegment {
                name,
                definition,
                expected,
            } => self.put(&SEGMENTS, name, definition, *expected),
            Change::DeleteSegment { name, expected } => self.delete(&SEGMENTS, name, *expected),
            Change::AddEnvironment { name } => self.add_environment(name).map(|()| 0),
            Change::CreateKey(key) => self.create_key(key).map(|()| 0),
            Change::RevokeKey { id } => self.revoke_key(id).map(|()| 0),
        }
    }

    fn put(
        &self,
        kind: &Versioned,
        key: &str,
        definition: &Value,
        expected: Expected,
    ) -> Result<u64, StoreError> {
        let current = self.current_version(kind, key)?;
        check(kind, key, expected, current)?;
        let version = self.next_version(kind, key)?;
        let stored_version = u64_to_sql(version, "version")?;
        let definition = json_to_sql(definition)?;
        self.record(kind, key, stored_version, Some(&definition))?;
        let sql = format!(
            "INSERT INTO {} (key, version, definition, updated_at, updated_by) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (key) DO UPDATE SET version = excluded.version, \
             definition = excluded.definition, updated_at = excluded.updated_at, \
             updated_by = excluded.updated_by",
            kind.current
        );
        self.tx
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    key,
                    stored_version,
                    definition,
                    self.at,
                    self.actor
                ])
            })
            .map_err(error::sqlite)?;
        Ok(version)
    }

    fn delete(&self, kind: &Versioned, key: &str, expected: Expected) -> Result<u64, StoreError> {
        let current = self.current_version(kind, key)?;
        // A version named in `expected` is checked first: "not at the version you saw" says
        // more than "not found" to a writer using `If-Match`.
        check(kind, key, expected, current)?;
        if current.is_none() {
            return Err(StoreError::NotFound {
                target: format!("{}:{key}", kind.prefix),
            });
        }
        let version = self.next_version(kind, key)?;
        self.record(kind, key, u64_to_sql(version, "version")?, None)?;
        let sql = format!("DELETE FROM {} WHERE key = ?1", kind.current);
        self.tx
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.execute([key]))
            .map_err(error::sqlite)?;
        Ok(version)
    }

    /// The live version of a key, if it is live.
    fn current_version(&self, kind: &Versioned, key: &str) -> Result<Option<u64>, StoreError> {
        let sql = format!("SELECT version FROM {} WHERE key = ?1", kind.current);
        let version: Option<i64> = self
            .tx
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)).optional())
            .map_err(error::sqlite)?;
        version.map(|v| u64_from_sql(v, "version")).transpose()
    }

    /// One more than the last version in the history, deletions included, so that re-creating
    /// a deleted key continues its numbering.
    fn next_version(&self, kind: &Versioned, key: &str) -> Result<u64, StoreError> {
        let sql = format!("SELECT max(version) FROM {} WHERE key = ?1", kind.history);
        let last: Option<i64> = self
            .tx
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)))
            .map_err(error::sqlite)?;
        let last = match last {
            Some(last) => u64_from_sql(last, "version")?,
            None => 0,
        };
        last.checked_add(1)
            .ok_or_else(|| error::corrupt("version", format_args!("{last} overflows")))
    }

    /// Appends a version to the history; `None` records a deletion.
    fn record(
        &self,
        kind: &Versioned,
        key: &str,
        version: i64,
        definition: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {} (key, version, definition, updated_at, updated_by, revision) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            kind.history
        );
        self.tx
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    key,
                    version,
                    definition,
                    self.at,
                    self.actor,
                    self.revision
                ])
            })
            .map_err(error::sqlite)?;
        Ok(())
    }

    fn add_environment(&self, name: &str) -> Result<(), StoreError> {
        let exists = self
            .tx
            .prepare_cached("SELECT 1 FROM environments WHERE name = ?1")
            .and_then(|mut stmt| stmt.exists([name]))
            .map_err(error::sqlite)?;
        if exists {
            return Err(StoreError::AlreadyExists {
                target: format!("environment:{name}"),
            });
        }
        self.tx
            .prepare_cached(
                "INSERT INTO environments (name, position) \
                 SELECT ?1, coalesce(max(position), -1) + 1 FROM environments",
            )
            .and_then(|mut stmt| stmt.execute([name]))
            .map_err(error::sqlite)?;
        Ok(())
    }

    fn create_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let exists = self
            .tx
            .prepare_cached("SELECT 1 FROM api_keys WHERE id = ?1")
            .and_then(|mut stmt| stmt.exists([&key.id]))
            .map_err(error::sqlite)?;
        if exists {
            return Err(StoreError::AlreadyExists {
                target: format!("key:{}", key.id),
            });
        }
        // The same secret twice would make a bearer token name two keys: refuse it, naming the
        // key that already has it.
        let holder: Option<String> = self
            .tx
            .prepare_cached("SELECT id FROM api_keys WHERE secret_hash = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([&key.secret_hash], |row| row.get(0))
                    .optional()
            })
            .map_err(error::sqlite)?;
        if let Some(holder) = holder {
            return Err(StoreError::AlreadyExists {
                target: format!("key:{holder}"),
            });
        }
        self.tx
            .prepare_cached(
                "INSERT INTO api_keys \
                 (id, name, kind, environment, secret_hash, created_at, revoked_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    key.id,
                    key.name,
                    key.kind.as_str(),
                    key.environment,
                    key.secret_hash,
                    timestamp_to_sql(key.created_at),
                    key.revoked_at.map(timestamp_to_sql),
                ])
            })
            .map_err(error::sqlite)?;
        Ok(())
    }

    fn revoke_key(&self, id: &str) -> Result<(), StoreError> {
        let revoked = self
            .tx
            .prepare_cached(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )
            .and_then(|mut stmt| stmt.execute(params![id, self.at]))
            .map_err(error::sqlite)?;
        if revoked == 0 {
            return Err(StoreError::NotFound {
                target: format!("key:{id}"),
            });
        }
        Ok(())
    }

    /// The commit's one audit event.
    fn audit(&self, commit: &Commit) -> Result<(), StoreError> {
        let before = commit.before.as_ref().map(json_to_sql).transpose()?;
        let after = commit.after.as_ref().map(json_to_sql).transpose()?;
        self.tx
            .prepare_cached(
                "INSERT INTO audit \
                 (revision, at, actor, action, target, before, after, comment) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    self.revision,
                    self.at,
                    self.actor,
                    commit.action,
                    commit.target,
                    before,
                    after,
                    commit.comment,
                ])
            })
            .map_err(error::sqlite)?;
        Ok(())
    }
}

/// Checks a change's expectation against the key's live version.
fn check(
    kind: &Versioned,
    key: &str,
    expected: Expected,
    current: Option<u64>,
) -> Result<(), StoreError> {
    let holds = match expected {
        Expected::Any => true,
        Expected::Absent => current.is_none(),
        Expected::Version(version) => current == Some(version),
    };
    if holds {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            target: format!("{}:{key}", kind.prefix),
            current,
        })
    }
}
