//! Opening connections and bringing the schema up to date.
//!
//! The schema is versioned with SQLite's `user_version`: it counts the scripts of
//! [`MIGRATIONS`] applied so far. Opening a database applies the missing ones, in order, in
//! one transaction; a database with a higher version than this build knows is refused rather
//! than misread. A migration, once released, is never edited: changes are new scripts.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::error::{self, NoWal, SchemaTooNew};
use crate::StoreError;

/// The migration scripts; the schema version of a database is how many of them it has had.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_initial.sql")];

/// How long a statement waits for a lock held by another connection (another process sharing
/// the file, or a checkpoint) before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many prepared statements a connection keeps (the store has about thirty).
const STATEMENT_CACHE: usize = 64;

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Takes every write, and creates the file and its schema.
    Writer,
    /// Only reads (`query_only`); opened after the writer has prepared the file.
    Reader,
}

/// Opens a connection to the database file and configures it.
pub(super) fn connect(path: &Path, role: Role) -> Result<Connection, StoreError> {
    let shown = path.display().to_string();
    let in_context = |err| error::sqlite_context(format!("cannot open the database {shown}"), err);

    // No URI parsing: the path is a path, whatever it looks like.
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if role == Role::Writer {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(in_context)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(in_context)?;
    // Room for every statement the store prepares, so none is re-prepared per call.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);

    if role == Role::Writer {
        // WAL is a property of the file; setting it once, from the writer, is enough.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
            .map_err(in_context)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Internal(Box::new(NoWal { path: shown, mode })));
        }
    }
    // FULL: a commit's WAL frames are fsynced before COMMIT returns, so an acknowledged commit
    // survives a power cut, not only a crash of the process. The rest are per connection too.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(in_context)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(in_context)?;
    if role == Role::Reader {
        conn.pragma_update(None, "query_only", "ON")
            .map_err(in_context)?;
    }
    Ok(conn)
}

/// Applies the migrations the database lacks.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    apply(conn, path, MIGRATIONS)
}

fn apply(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<(), StoreError> {
    // IMMEDIATE: two processes opening a new database at once must not both migrate it.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error::sqlite)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(error::sqlite)?;
    let known = migrations.len();
    let applied = usize::try_from(found)
        .ok()
        .filter(|&applied| applied <= known)
        .ok_or_else(|| {
            StoreError::Internal(Box::new(SchemaTooNew {
                path: path.display().to_string(),
                found,
                known,
            }))
        })?;
    if applied == known {
        return Ok(());
    }
    for script in &migrations[applied..] {
        tx.execute_batch(script).map_err(error::sqlite)?;
    }
    let version = i64::try_from(known)
        .map_err(|_| error::corrupt("schema version", format_args!("{known} overflows")))?;
    tx.pragma_update(None, "user_version", version)
        .map_err(error::sqlite)?;
    tx.commit().map_err(error::sqlite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn connections_are_configured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let writer = connect(&path, Role::Writer).unwrap();
        let reader = connect(&path, Role::Reader).unwrap();
        for conn in [&writer, &reader] {
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |row| row.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let synchronous: i64 = conn
                .pragma_query_value(None, "synchronous", |row| row.get(0))
                .unwrap();
            assert_eq!(synchronous, 2, "FULL");
            let foreign_keys: i64 = conn
                .pragma_query_value(None, "foreign_keys", |row| row.get(0))
                .unwrap();
            assert_eq!(foreign_keys, 1);
        }
        let query_only = |conn: &Connection| -> i64 {
            conn.pragma_query_value(None, "query_only", |row| row.get(0))
                .unwrap()
        };
        assert_eq!(query_only(&writer), 0);
        assert_eq!(query_only(&reader), 1);
    }

    #[test]
    fn migrations_apply_in_order_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let mut conn = connect(&path, Role::Writer).unwrap();
        let first = ["CREATE TABLE a (x INTEGER) STRICT;"];
        let both = [
            first[0],
            "INSERT INTO a VALUES (1); INSERT INTO a VALUES (2);",
        ];

        apply(&mut conn, &path, &first).unwrap();
        assert_eq!(user_version(&conn), 1);
        apply(&mut conn, &path, &both).unwrap();
        apply(&mut conn, &path, &both).unwrap();
        assert_eq!(user_version(&conn), 2);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM a", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 2, "the second script ran exactly once");
    }

    #[test]
    fn a_failing_migration_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let mut conn = connect(&path, Role::Writer).unwrap();
        let scripts = ["CREATE TABLE a (x INTEGER) STRICT;", "NOT SQL AT ALL;"];

        assert!(apply(&mut conn, &path, &scripts).is_err());
        assert_eq!(user_version(&conn), 0);
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let mut conn = connect(&path, Role::Writer).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();

        let err = apply(&mut conn, &path, &["SELECT 1;"]).unwrap_err();
        assert!(matches!(err, StoreError::Internal(_)));
        let message = err.to_string();
        assert!(message.contains("schema version 7"), "{message}");
        assert!(message.contains("up to 1"), "{message}");
    }

    #[test]
    fn the_real_migrations_apply() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let mut conn = connect(&path, Role::Writer).unwrap();
        migrate(&mut conn, &path).unwrap();
        assert_eq!(
            user_version(&conn),
            i64::try_from(MIGRATIONS.len()).unwrap()
        );
        let revision: i64 = conn
            .query_row("SELECT revision FROM meta", [], |row| row.get(0))
            .unwrap();
        assert_eq!(revision, 0);
    }
}
