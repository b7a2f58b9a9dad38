//! The conformance suite against SQLite, and what only SQLite has: a data directory and a file.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use tempfile::TempDir;
use vexil_store::{AuditQuery, DynStore, SqliteStore, Store, StoreError};

use crate::conformance::Fixture;

/// A data directory, not yet created, inside a temporary directory of its own.
struct SqliteFixture {
    root: TempDir,
}

impl SqliteFixture {
    fn data_dir(&self) -> PathBuf {
        self.root.path().join("vexil-data")
    }
}

#[async_trait]
impl Fixture for SqliteFixture {
    async fn open(&self) -> DynStore {
        Arc::new(SqliteStore::open(&self.data_dir()).unwrap())
    }
}

async fn fresh() -> Option<SqliteFixture> {
    Some(SqliteFixture {
        root: tempfile::tempdir().unwrap(),
    })
}

mod conformance {
    use super::fresh;

    conformance_tests!(fresh());
}

#[tokio::test]
async fn open_creates_the_data_directory_and_the_file() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("nested").join("vexil-data");
    let store = SqliteStore::open(&dir).unwrap();
    assert_eq!(store.path(), dir.join("vexil.db"));
    assert!(dir.join(SqliteStore::FILE_NAME).is_file());
    assert_eq!(store.snapshot().await.unwrap().revision, 0);

    // The journal mode is a property of the file: another connection sees WAL.
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn open_file_takes_any_path() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("file:not-a-uri.db");
    let store = SqliteStore::open_file(&path).unwrap();
    store.ping().await.unwrap();
    assert!(path.is_file());
}

#[tokio::test]
async fn a_database_from_a_newer_vexil_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(root.path()).unwrap();
    let path = store.path().to_owned();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);

    let err = SqliteStore::open(root.path()).unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("schema version 999"), "{message}");
    assert!(message.contains("newer vexil"), "{message}");
}

#[tokio::test]
async fn a_data_directory_that_cannot_be_created_is_unavailable() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let err = SqliteStore::open(&file.join("vexil-data")).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("a-file"), "{err}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut junk = b"this is not an SQLite database ".repeat(200);
    junk.truncate(4096);
    std::fs::write(root.path().join(SqliteStore::FILE_NAME), junk).unwrap();
    let err = SqliteStore::open(root.path()).unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
    assert!(err.to_string().contains("vexil.db"), "{err}");
}

#[tokio::test]
async fn a_held_write_lock_makes_writes_unavailable_not_broken() {
    let root = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(root.path()).unwrap();
    // Another process holding the write lock longer than the busy timeout.
    let other = rusqlite::Connection::open(store.path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let commit = vexil_store::Commit {
        base_revision: 0,
        actor: "alice".to_owned(),
        action: "environment.create".to_owned(),
        target: "environment:qa".to_owned(),
        comment: None,
        before: None,
        after: None,
        changes: vec![vexil_store::Change::AddEnvironment {
            name: "qa".to_owned(),
        }],
    };
    let (committed, pinged) = tokio::join!(store.commit(commit.clone()), store.ping());
    assert!(
        matches!(committed, Err(StoreError::Unavailable(_))),
        "{committed:?}"
    );
    assert!(
        matches!(pinged, Err(StoreError::Unavailable(_))),
        "{pinged:?}"
    );
    // Reads carry on meanwhile.
    assert_eq!(store.snapshot().await.unwrap().revision, 0);

    // And it recovers by itself once the lock is gone.
    other.execute_batch("ROLLBACK").unwrap();
    store.ping().await.unwrap();
    assert_eq!(store.commit(commit).await.unwrap().revision, 1);
    assert_eq!(store.audit(&AuditQuery::default()).await.unwrap().len(), 1);
}
