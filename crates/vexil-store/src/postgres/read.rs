//! Reads. Each is one statement, or one `REPEATABLE READ` transaction when it takes several,
//! so that what it returns is as of one revision.

use deadpool_postgres::{Client, GenericClient};
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use super::codec::{RowExt, lower_bound_to_sql};
use super::{error, query};
use crate::{ApiKey, AuditEvent, AuditQuery, FlagVersion, KeyKind, Record, Snapshot, StoreError};

/// How many audit events a query with no limit returns.
const DEFAULT_AUDIT_LIMIT: usize = 100;
/// The most audit events one query returns, whatever it asks for.
const MAX_AUDIT_LIMIT: usize = 1000;

pub(super) async fn revision(client: &impl GenericClient) -> Result<u64, StoreError> {
    let rows = query(client, "SELECT revision FROM meta WHERE id = 1", &[]).await?;
    match rows.first() {
        Some(row) => row.u64(0, "revision"),
        None => Err(error::corrupt("meta table", "its row is missing")),
    }
}

pub(super) async fn snapshot(client: &mut Client) -> Result<Snapshot, StoreError> {
    // One snapshot of the database for every statement of the transaction, taken at its
    // first, while writers carry on.
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(error::postgres)?;
    let revision = revision(&tx).await?;
    let environments = query(&tx, "SELECT name FROM environments ORDER BY position", &[])
        .await?
        .iter()
        .map(|row| row.column::<String>(0))
        .collect::<Result<Vec<_>, _>>()?;
    let flags = records(&tx, "flags").await?;
    let segments = records(&tx, "segments").await?;
    tx.commit().await.map_err(error::postgres)?;
    Ok(Snapshot {
        revision,
        environments,
        flags,
        segments,
    })
}

/// The live rows of `flags` or `segments`, ordered by key (bytewise: the column is `"C"`).
async fn records(
    client: &impl GenericClient,
    table: &'static str,
) -> Result<Vec<Record>, StoreError> {
    let sql = format!(
        "SELECT key, version, definition, updated_at, updated_by FROM {table} ORDER BY key"
    );
    query(client, &sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Record {
                key: row.column(0)?,
                version: row.u64(1, "version")?,
                definition: row.json(2)?,
                updated_at: row.timestamp(3)?,
                updated_by: row.column(4)?,
            })
        })
        .collect()
}

pub(super) async fn flag_history(
    client: &impl GenericClient,
    key: &str,
) -> Result<Vec<FlagVersion>, StoreError> {
    query(
        client,
        "SELECT key, version, definition, updated_at, updated_by, revision \
         FROM flag_versions WHERE key = $1 ORDER BY version",
        &[&key],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(FlagVersion {
            key: row.column(0)?,
            version: row.u64(1, "version")?,
            definition: row.optional_json(2)?,
            updated_at: row.timestamp(3)?,
            updated_by: row.column(4)?,
            revision: row.u64(5, "revision")?,
        })
    })
    .collect()
}

pub(super) async fn audit(
    client: &impl GenericClient,
    filter: &AuditQuery,
) -> Result<Vec<AuditEvent>, StoreError> {
    // Only the filters asked for go into the statement, so each shape can use its index.
    let mut sql = String::from(
        "SELECT id, revision, at, actor, action, target, before, after, comment FROM audit",
    );
    let target = filter.flag.as_ref().map(|flag| format!("flag:{flag}"));
    let since = filter.since.map(lower_bound_to_sql).transpose()?;
    let limit = match filter.limit {
        0 => DEFAULT_AUDIT_LIMIT,
        limit => limit.min(MAX_AUDIT_LIMIT),
    };
    // `limit` is at most MAX_AUDIT_LIMIT, so it fits.
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);

    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    if let Some(target) = &target {
        params.push(target);
        conditions.push(format!("target = ${}", params.len()));
    }
    if let Some(since) = &since {
        params.push(since);
        conditions.push(format!("at >= ${}", params.len()));
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    params.push(&limit);
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", params.len()));

    query(client, &sql, &params)
        .await?
        .iter()
        .map(|row| {
            Ok(AuditEvent {
                id: row.u64(0, "audit id")?,
                revision: row.u64(1, "revision")?,
                at: row.timestamp(2)?,
                actor: row.column(3)?,
                action: row.column(4)?,
                target: row.column(5)?,
                before: row.optional_json(6)?,
                after: row.optional_json(7)?,
                comment: row.column(8)?,
            })
        })
        .collect()
}

/// Every key, in the order they were created.
pub(super) async fn keys(client: &impl GenericClient) -> Result<Vec<ApiKey>, StoreError> {
    query(
        client,
        "SELECT id, name, kind, environment, secret_hash, created_at, revoked_at \
         FROM api_keys ORDER BY position",
        &[],
    )
    .await?
    .iter()
    .map(|row| {
        let kind: String = row.column(2)?;
        Ok(ApiKey {
            id: row.column(0)?,
            name: row.column(1)?,
            kind: KeyKind::parse(&kind)
                .ok_or_else(|| error::corrupt("key kind", format_args!("{kind:?}")))?,
            environment: row.column(3)?,
            secret_hash: row.column(4)?,
            created_at: row.timestamp(5)?,
            revoked_at: row.optional_timestamp(6)?,
        })
    })
    .collect()
}

/// Whether the database would refuse a commit because it is read-only: a standby (after a
/// failover, say) or `default_transaction_read_only`.
pub(super) async fn read_only(client: &impl GenericClient) -> Result<bool, StoreError> {
    let rows = query(
        client,
        "SELECT current_setting('transaction_read_only') = 'on'",
        &[],
    )
    .await?;
    match rows.first() {
        Some(row) => row.column(0),
        None => Err(error::corrupt(
            "setting",
            "transaction_read_only is missing",
        )),
    }
}
