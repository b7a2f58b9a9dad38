//! Reads. Each is one statement, or one read transaction when it takes several, so that what
//! it returns is as of one revision.

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;

use super::codec::{
    json_from_sql, optional_json_from_sql, timestamp_from_sql, timestamp_to_sql, u64_from_sql,
};
use super::error;
use crate::{ApiKey, AuditEvent, AuditQuery, FlagVersion, KeyKind, Record, Snapshot, StoreError};

/// How many audit events a query with no limit returns.
const DEFAULT_AUDIT_LIMIT: usize = 100;
/// The most audit events one query returns, whatever it asks for.
const MAX_AUDIT_LIMIT: usize = 1000;

pub(super) fn revision(conn: &Connection) -> Result<u64, StoreError> {
    let revision: Option<i64> = conn
        .prepare_cached("SELECT revision FROM meta WHERE id = 1")
        .and_then(|mut stmt| {
            let mut rows = stmt.query([])?;
            rows.next()?.map(|row| row.get(0)).transpose()
        })
        .map_err(error::sqlite)?;
    match revision {
        Some(revision) => u64_from_sql(revision, "revision"),
        None => Err(error::corrupt("meta table", "its row is missing")),
    }
}

pub(super) fn snapshot(conn: &mut Connection) -> Result<Snapshot, StoreError> {
    // A deferred transaction: in WAL mode its first read fixes the version of the database
    // every later read in it sees, while writers carry on.
    let tx = conn.transaction().map_err(error::sqlite)?;
    let revision = revision(&tx)?;
    let environments = tx
        .prepare_cached("SELECT name FROM environments ORDER BY position")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()
        })
        .map_err(error::sqlite)?;
    let flags = records(&tx, "flags")?;
    let segments = records(&tx, "segments")?;
    tx.commit().map_err(error::sqlite)?;
    Ok(Snapshot {
        revision,
        environments,
        flags,
        segments,
    })
}

/// The live rows of `flags` or `segments`, ordered by key.
fn records(conn: &Connection, table: &'static str) -> Result<Vec<Record>, StoreError> {
    let sql = format!(
        "SELECT key, version, definition, updated_at, updated_by FROM {table} ORDER BY key"
    );
    let rows = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error::sqlite)?;
    rows.into_iter()
        .map(|(key, version, definition, updated_at, updated_by)| {
            Ok(Record {
                key,
                version: u64_from_sql(version, "version")?,
                definition: json_from_sql(&definition)?,
                updated_at: timestamp_from_sql(&updated_at)?,
                updated_by,
            })
        })
        .collect()
}

pub(super) fn flag_history(conn: &Connection, key: &str) -> Result<Vec<FlagVersion>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT key, version, definition, updated_at, updated_by, revision \
             FROM flag_versions WHERE key = ?1 ORDER BY version",
        )
        .and_then(|mut stmt| {
            stmt.query_map([key], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error::sqlite)?;
    rows.into_iter()
        .map(
            |(key, version, definition, updated_at, updated_by, revision)| {
                Ok(FlagVersion {
                    key,
                    version: u64_from_sql(version, "version")?,
                    definition: optional_json_from_sql(definition)?,
                    updated_at: timestamp_from_sql(&updated_at)?,
                    updated_by,
                    revision: u64_from_sql(revision, "revision")?,
                })
            },
        )
        .collect()
}

pub(super) fn audit(conn: &Connection, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
    // Only the filters asked for go into the statement, so each shape can use its index.
    let mut sql = String::from(
        "SELECT id, revision, at, actor, action, target, before, after, comment FROM audit",
    );
    let mut params: Vec<SqlValue> = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    if let Some(flag) = &query.flag {
        params.push(SqlValue::Text(format!("flag:{flag}")));
        conditions.push(format!("target = ?{}", params.len()));
    }
    if let Some(since) = query.since {
        params.push(SqlValue::Text(timestamp_to_sql(since)));
        conditions.push(format!("at >= ?{}", params.len()));
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    let limit = match query.limit {
        0 => DEFAULT_AUDIT_LIMIT,
        limit => limit.min(MAX_AUDIT_LIMIT),
    };
    // `limit` is at most MAX_AUDIT_LIMIT, so it fits.
    params.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", params.len()));

    let rows = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(rusqlite::params_from_iter(params), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, Option<String>>(6)?,
                    row.get::<_, Option<String>>(7)?,
                    row.get::<_, Option<String>>(8)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error::sqlite)?;
    rows.into_iter()
        .map(
            |(id, revision, at, actor, action, target, before, after, comment)| {
                Ok(AuditEvent {
                    id: u64_from_sql(id, "audit id")?,
                    revision: u64_from_sql(revision, "revision")?,
                    at: timestamp_from_sql(&at)?,
                    actor,
                    action,
                    target,
                    before: optional_json_from_sql(before)?,
                    after: optional_json_from_sql(after)?,
                    comment,
                })
            },
        )
        .collect()
}

/// Every key, in the order they were created.
pub(super) fn keys(conn: &Connection) -> Result<Vec<ApiKey>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT id, name, kind, environment, secret_hash, created_at, revoked_at \
             FROM api_keys ORDER BY rowid",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, Option<String>>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error::sqlite)?;
    rows.into_iter()
        .map(
            |(id, name, kind, environment, secret_hash, created_at, revoked_at)| {
                Ok(ApiKey {
                    id,
                    name,
                    kind: KeyKind::parse(&kind)
                        .ok_or_else(|| error::corrupt("key kind", format_args!("{kind:?}")))?,
                    environment,
                    secret_hash,
                    created_at: timestamp_from_sql(&created_at)?,
                    revoked_at: revoked_at.as_deref().map(timestamp_from_sql).transpose()?,
                })
            },
        )
        .collect()
}
