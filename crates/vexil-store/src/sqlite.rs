//! The SQLite backend: one database file in the data directory, for a single `vexil serve`.
//!
//! - **Durability.** The file is in WAL mode with `synchronous=FULL`: `COMMIT` returns only
//!   after the commit's log frames are on disk, so an acknowledged commit survives `kill -9` and
//!   a power cut.
//! - **Writes** go through one connection behind a mutex, each commit one `BEGIN IMMEDIATE`
//!   transaction. SQLite runs one writer at a time anyway; `IMMEDIATE` also makes other
//!   processes sharing the file wait (up to a busy timeout) rather than fail halfway.
//! - **Reads** go through a second connection, so they do not queue behind writes: in WAL mode
//!   a reader sees the last committed state while a writer works.
//! - **Blocking.** rusqlite blocks, so every operation runs on tokio's blocking thread pool,
//!   never on the runtime's workers.
//! - **Schema.** Versioned migrations, applied when the store is opened (see `schema.rs`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::Connection;

use crate::{
    ApiKey, AuditEvent, AuditQuery, Commit, Committed, FlagVersion, Snapshot, Store, StoreError,
};

mod codec;
mod error;
mod read;
mod schema;
mod write;

use schema::Role;

/// The SQLite backend of [`Store`].
///
/// Cloning it is cheap and gives another handle on the same connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl SqliteStore {
    /// The name of the database file inside the data directory.
    pub const FILE_NAME: &'static str = "vexil.db";

    /// Opens the store in a data directory (the server's default is `./vexil-data`), creating
    /// the directory, the database file [`SqliteStore::FILE_NAME`] and its schema as needed.
    ///
    /// This blocks on file I/O: call it at startup, or from a blocking task.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the directory or file cannot be created, opened or
    /// locked; [`StoreError::Internal`] when the file is not a vexil database this build can
    /// use (for instance one migrated by a newer vexil).
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|err| {
            error::io(
                format!("cannot create the data directory {}", dir.display()),
                err,
            )
        })?;
        SqliteStore::open_file(&dir.join(Self::FILE_NAME))
    }

    /// Opens the store in a database file, creating the file (but not its directory) and its
    /// schema as needed. SQLite keeps two files next to it (`-wal` and `-shm`).
    ///
    /// This blocks on file I/O, like [`SqliteStore::open`], and fails the same ways.
    pub fn open_file(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut writer = schema::connect(path, Role::Writer)?;
        schema::migrate(&mut writer, path)?;
        let reader = schema::connect(path, Role::Reader)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `work` on one of the connections, on the blocking thread pool.
    async fn run<T, F>(&self, role: Role, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let job = move || {
            let mutex = match role {
                Role::Writer => &inner.writer,
                Role::Reader => &inner.reader,
            };
            // A panic while the lock was held leaves the connection itself intact; the
            // transaction it may have left open is rolled back by `ready`.
            let mut conn = mutex.lock().unwrap_or_else(PoisonError::into_inner);
            ready(&mut conn)?;
            work(&mut conn)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn_blocking(job).await.map_err(|err| {
                if err.is_cancelled() {
                    // The runtime is shutting down.
                    StoreError::Unavailable(Box::new(err))
                } else {
                    StoreError::Internal(Box::new(err))
                }
            })?,
            // Outside a tokio runtime there is no pool to move to; blocking is all there is.
            Err(_) => job(),
        }
    }
}

/// Makes sure a connection is not inside a transaction left open by an earlier operation (one
/// that panicked, or whose rollback failed), so that one failure cannot leak into the next.
fn ready(conn: &mut Connection) -> Result<(), StoreError> {
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK").map_err(error::sqlite)?;
    }
    Ok(())
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.run(Role::Reader, read::snapshot).await
    }

    async fn commit(&self, commit: Commit) -> Result<Committed, StoreError> {
        self.run(Role::Writer, move |conn| write::commit(conn, &commit))
            .await
    }

    async fn flag_history(&self, key: &str) -> Result<Vec<FlagVersion>, StoreError> {
        let key = key.to_owned();
        self.run(Role::Reader, move |conn| read::flag_history(conn, &key))
            .await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let query = query.clone();
        self.run(Role::Reader, move |conn| read::audit(conn, &query))
            .await
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.run(Role::Reader, |conn| read::keys(conn)).await
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.run(Role::Reader, |conn| read::revision(conn)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Taking the write lock (and letting it go) shows that a commit could start now, which
        // a plain read would not: another process may hold the lock, or the file be read-only.
        self.run(Role::Writer, |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(error::sqlite)?;
            read::revision(&tx)?;
            tx.rollback().map_err(error::sqlite)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_poisoned_lock_and_a_dangling_transaction_are_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let inner = Arc::clone(&store.inner);
        let panicked = std::thread::spawn(move || {
            let conn = inner.writer.lock().unwrap();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            panic!("a panic while holding the writer");
        })
        .join();
        assert!(panicked.is_err());
        assert!(store.inner.writer.is_poisoned());

        store.ping().await.unwrap();
        let committed = store
            .commit(Commit {
                base_revision: 0,
                actor: "test".to_owned(),
                action: "environment.create".to_owned(),
                target: "environment:qa".to_owned(),
                comment: None,
                before: None,
                after: None,
                changes: vec![crate::Change::AddEnvironment {
                    name: "qa".to_owned(),
                }],
            })
            .await
            .unwrap();
        assert_eq!(committed.revision, 1);
        assert_eq!(store.snapshot().await.unwrap().environments, ["qa"]);
    }

    #[test]
    fn works_outside_a_runtime_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // A minimal executor: the future never waits on anything outside a runtime.
        let snapshot = poll_once(store.snapshot()).unwrap();
        assert_eq!(snapshot.revision, 0);
    }

    /// Polls a future that completes without waking (as the store's do outside a runtime).
    fn poll_once<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => panic!("the future waited outside a runtime"),
        }
    }
}
