//! Commits: the only way anything is written.

use std::time::SystemTime;

use deadpool_postgres::{Client, Transaction};
use serde_json::Value;

use super::codec::{RowExt, json_to_sql, timestamp_from_sql, timestamp_to_sql, u64_to_sql};
use super::{CHANNEL, error, execute, query};
use crate::{ApiKey, Change, Commit, Committed, Expected, StoreError};

/// Applies a commit in one transaction. Any error returns before `COMMIT`, and dropping the
/// transaction rolls everything back.
pub(super) async fn commit(client: &mut Client, commit: &Commit) -> Result<Committed, StoreError> {
    let tx = client.transaction().await.map_err(error::postgres)?;
    // The row lock is taken before the revision is compared, and held until the transaction
    // ends, so no other writer — on this instance or another — can slip in between the check
    // and the write: they queue here (up to `statement_timeout`). The commit time is the
    // database's clock, one clock for every instance. When the lock was waited for, the row
    // was updated meanwhile (every commit updates it) and PostgreSQL evaluates the statement
    // again on the new row, clock included, so commit times follow revisions as far as that
    // clock does.
    let rows = query(
        &tx,
        "SELECT revision, clock_timestamp() FROM meta WHERE id = 1 FOR UPDATE",
        &[],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Err(error::corrupt("meta table", "its row is missing"));
    };
    let current = row.u64(0, "revision")?;
    if current != commit.base_revision {
        return Err(StoreError::Stale { current });
    }
    let revision = current
        .checked_add(1)
        .ok_or_else(|| error::corrupt("revision", format_args!("{current} overflows")))?;
    let at: SystemTime = row.column(1)?;
    let write = Write {
        tx: &tx,
        revision: u64_to_sql(revision, "revision")?,
        at,
        actor: &commit.actor,
    };

    let mut versions = Vec::with_capacity(commit.changes.len());
    for change in &commit.changes {
        versions.push(write.apply(change).await?);
    }
    write.audit(commit).await?;
    let updated = execute(
        &tx,
        "UPDATE meta SET revision = $1 WHERE id = 1",
        &[&write.revision],
    )
    .await?;
    if updated != 1 {
        return Err(error::corrupt("meta table", "its row is missing"));
    }
    // Queued with the transaction: listeners hear of it when, and only if, it commits.
    query(
        &tx,
        "SELECT pg_notify($1, $2)",
        &[&CHANNEL, &revision.to_string()],
    )
    .await?;
    tx.commit().await.map_err(error::postgres)?;
    Ok(Committed {
        revision,
        at: timestamp_from_sql(at)?,
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
    at: SystemTime,
    actor: &'a str,
}

impl Write<'_> {
    /// Applies one change and returns the version it wrote (0 when unversioned).
    async fn apply(&self, change: &Change) -> Result<u64, StoreError> {
        match change {
            Change::PutFlag {
                key,
                definition,
                expected,
            } => self.put(&FLAGS, key, definition, *expected).await,
            Change::DeleteFlag { key, expected } => self.delete(&FLAGS, key, *expected).await,
            Change::PutSegment {
                name,
                definition,
                expected,
            } => self.put(&SEGMENTS, name, definition, *expected).await,
            Change::DeleteSegment { name, expected } => {
                self.delete(&SEGMENTS, name, *expected).await
            }
            Change::AddEnvironment { name } => self.add_environment(name).await.map(|()| 0),
            Change::CreateKey(key) => self.create_key(key).await.map(|()| 0),
            Change::RevokeKey { id } => self.revoke_key(id).await.map(|()| 0),
        }
    }

    async fn put(
        &self,
        kind: &Versioned,
        key: &str,
        definition: &Value,
        expected: Expected,
    ) -> Result<u64, StoreError> {
        let versions = self.versions(kind, key).await?;
        check(kind, key, expected, versions.live)?;
        let version = versions.next(kind, key)?;
        let stored_version = u64_to_sql(version, "version")?;
        let definition = json_to_sql(definition);
        self.record(kind, key, stored_version, Some(&definition))
            .await?;
        let sql = format!(
            "INSERT INTO {} (key, version, definition, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (key) DO UPDATE SET version = excluded.version, \
             definition = excluded.definition, updated_at = excluded.updated_at, \
             updated_by = excluded.updated_by",
            kind.current
        );
        execute(
            self.tx,
            &sql,
            &[&key, &stored_version, &definition, &self.at, &self.actor],
        )
        .await?;
        Ok(version)
    }

    async fn delete(
        &self,
        kind: &Versioned,
        key: &str,
        expected: Expected,
    ) -> Result<u64, StoreError> {
        let versions = self.versions(kind, key).await?;
        // A version named in `expected` is checked first: "not at the version you saw" says
        // more than "not found" to a writer using `If-Match`.
        check(kind, key, expected, versions.live)?;
        if versions.live.is_none() {
            return Err(StoreError::NotFound {
                target: format!("{}:{key}", kind.prefix),
            });
        }
        let version = versions.next(kind, key)?;
        self.record(kind, key, u64_to_sql(version, "version")?, None)
            .await?;
        let sql = format!("DELETE FROM {} WHERE key = $1", kind.current);
        execute(self.tx, &sql, &[&key]).await?;
        Ok(version)
    }

    /// The live version of a key, if it is live, and the last version in its history,
    /// deletions included (so that re-creating a deleted key continues its numbering).
    async fn versions(&self, kind: &Versioned, key: &str) -> Result<Versions, StoreError> {
        let sql = format!(
            "SELECT (SELECT version FROM {} WHERE key = $1), \
                    (SELECT max(version) FROM {} WHERE key = $1)",
            kind.current, kind.history
        );
        let rows = query(self.tx, &sql, &[&key]).await?;
        let Some(row) = rows.first() else {
            return Err(error::corrupt("version", "no row"));
        };
        let to_u64 = |v: Option<i64>| {
            v.map(|v| super::codec::u64_from_sql(v, "version"))
                .transpose()
        };
        Ok(Versions {
            live: to_u64(row.column(0)?)?,
            last: to_u64(row.column(1)?)?.unwrap_or(0),
        })
    }

    /// Appends a version to the history; `None` records a deletion.
    async fn record(
        &self,
        kind: &Versioned,
        key: &str,
        version: i64,
        definition: Option<&tokio_postgres::types::Json<&Value>>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {} (key, version, definition, updated_at, updated_by, revision) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            kind.history
        );
        execute(
            self.tx,
            &sql,
            &[
                &key,
                &version,
                &definition,
                &self.at,
                &self.actor,
                &self.revision,
            ],
        )
        .await?;
        Ok(())
    }

    async fn add_environment(&self, name: &str) -> Result<(), StoreError> {
        let exists = !query(
            self.tx,
            "SELECT 1 FROM environments WHERE name = $1",
            &[&name],
        )
        .await?
        .is_empty();
        if exists {
            return Err(StoreError::AlreadyExists {
                target: format!("environment:{name}"),
            });
        }
        execute(
            self.tx,
            "INSERT INTO environments (name, position) \
             SELECT $1, coalesce(max(position), -1) + 1 FROM environments",
            &[&name],
        )
        .await?;
        Ok(())
    }

    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let exists = !query(self.tx, "SELECT 1 FROM api_keys WHERE id = $1", &[&key.id])
            .await?
            .is_empty();
        if exists {
            return Err(StoreError::AlreadyExists {
                target: format!("key:{}", key.id),
            });
        }
        // The same secret twice would make a bearer token name two keys: refuse it, naming the
        // key that already has it.
        let holder = query(
            self.tx,
            "SELECT id FROM api_keys WHERE secret_hash = $1",
            &[&key.secret_hash],
        )
        .await?;
        if let Some(row) = holder.first() {
            return Err(StoreError::AlreadyExists {
                target: format!("key:{}", row.column::<String>(0)?),
            });
        }
        let created_at = timestamp_to_sql(key.created_at)?;
        let revoked_at = key.revoked_at.map(timestamp_to_sql).transpose()?;
        execute(
            self.tx,
            "INSERT INTO api_keys \
             (id, name, kind, environment, secret_hash, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &key.id,
                &key.name,
                &key.kind.as_str(),
                &key.environment,
                &key.secret_hash,
                &created_at,
                &revoked_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn revoke_key(&self, id: &str) -> Result<(), StoreError> {
        let revoked = execute(
            self.tx,
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &self.at],
        )
        .await?;
        if revoked == 0 {
            return Err(StoreError::NotFound {
                target: format!("key:{id}"),
            });
        }
        Ok(())
    }

    /// The commit's one audit event.
    async fn audit(&self, commit: &Commit) -> Result<(), StoreError> {
        let before = commit.before.as_ref().map(json_to_sql);
        let after = commit.after.as_ref().map(json_to_sql);
        execute(
            self.tx,
            "INSERT INTO audit \
             (revision, at, actor, action, target, before, after, comment) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &self.revision,
                &self.at,
                &self.actor,
                &commit.action,
                &commit.target,
                &before,
                &after,
                &commit.comment,
            ],
        )
        .await?;
        Ok(())
    }
}

/// What the history says of a key.
struct Versions {
    /// Its live version; `None` when it does not exist (never did, or was deleted).
    live: Option<u64>,
    /// The last version in its history, deletions included; 0 when it never existed.
    last: u64,
}

impl Versions {
    /// The version the next change to the key gets.
    fn next(&self, kind: &Versioned, key: &str) -> Result<u64, StoreError> {
        self.last.checked_add(1).ok_or_else(|| {
            error::corrupt(
                "version",
                format_args!("{}:{key} at {} overflows", kind.prefix, self.last),
            )
        })
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
