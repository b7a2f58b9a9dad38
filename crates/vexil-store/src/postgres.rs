//! The PostgreSQL backend: one database shared by every `vexil serve` of a fleet.
//!
//! - **Connections.** A small pool of connections, opened as they are needed. A connection
//!   that broke or closed is dropped and the next operation opens a new one, so the store
//!   recovers by itself when the database comes back; meanwhile operations fail with
//!   [`StoreError::Unavailable`].
//! - **Timeouts.** Opening a connection may take 5 s; a statement may run 5 s on the server
//!   (`statement_timeout`, waiting for a lock included); a whole operation may take 10 s on
//!   the client (the ping 5 s), after which its connection is closed rather than reused, as
//!   its state is unknown. TCP keepalives and `tcp_user_timeout` notice a cut network within
//!   seconds. All of these are [`StoreError::Unavailable`]. A commit that fails this way may
//!   or may not have been committed: the caller reloads to find out.
//! - **Writes.** Each commit is one transaction that first locks the single row holding the
//!   revision (`SELECT … FOR UPDATE`): commits from every instance queue on that lock, and
//!   each compares its base revision and expected versions with what the previous one left,
//!   so the loser of a race sees [`StoreError::Stale`] or [`StoreError::Conflict`], never a
//!   lost update. Commit times come from the database's clock, whole microseconds.
//! - **Reads** are single statements, or one `REPEATABLE READ` transaction for a snapshot.
//! - **Propagation.** Each commit sends `pg_notify('vexil_changes', REVISION)` inside its
//!   transaction, delivered only if it commits. [`PostgresStore::listen`] follows them; together
//!   with [`Store::revision`](crate::Store::revision) as a catch-up read, an instance learns of
//!   other instances' commits.
//! - **Schema.** Versioned migrations, applied at connect, safe when several instances start
//!   at once (see `schema.rs`). The tables are created in the connection's `search_path`: give
//!   vexil a database of its own, or a schema (`?options=-c%20search_path%3Dvexil`).
//! - **TLS** is not supported yet: the store connects without it (`sslmode=prefer` falls back
//!   to plain TCP, and `sslmode=require` is refused), so it belongs on a private network.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    Client, GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::{
    ApiKey, AuditEvent, AuditQuery, Commit, Committed, FlagVersion, Snapshot, Store, StoreError,
};

mod codec;
mod error;
mod listen;
mod read;
mod schema;
mod write;

/// The channel commits notify on, with their revision as the payload.
const CHANNEL: &str = "vexil_changes";

/// The most connections one store opens (a listener opens one more).
const POOL_SIZE: usize = 8;

/// How long an operation waits for a free connection when all are busy.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// How long a read or a commit may take, end to end, on the client.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a ping may take.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the migrations at connect may take (another instance's included).
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(120);

/// The PostgreSQL backend of [`Store`].
///
/// Cloning it is cheap and gives another handle on the same pool of connections.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// For the listener's own connection.
    config: tokio_postgres::Config,
    /// `USER@HOST:PORT/DATABASE`, for messages.
    target: String,
    /// Where the listener runs.
    runtime: tokio::runtime::Handle,
}

/// The work of one operation, on one connection.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`, or
    /// libpq's `key=value` form) and brings its schema up to date. Several instances may do so
    /// at once: one migrates while the others wait, then find nothing left to do.
    ///
    /// Settings the URL does not choose are the store's: `connect_timeout` 5 s,
    /// `statement_timeout` 5 s, TCP keepalives, `application_name=vexil`.
    ///
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the database cannot be reached, refuses the
    /// credentials, or does not exist; [`StoreError::Internal`] when the URL is invalid (or
    /// asks for TLS), when there is no tokio runtime, or when the database is not one this
    /// build can use (for instance one migrated by a newer vexil, or holding other tables of
    /// the same names).
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|err| StoreError::Internal(Box::new(err)))?;
        let config = schema::config(url)?;
        let target = schema::describe(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // A closed connection is dropped when it comes back to the pool; one that
                // broke silently fails its next statement (keepalives, timeouts) and is
                // dropped then.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(schema::CONNECT_TIMEOUT + Duration::from_secs(1)))
            .recycle_timeout(Some(schema::STATEMENT_TIMEOUT))
            .build()
            .map_err(|err| StoreError::Internal(Box::new(err)))?;
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                config,
                target,
                runtime,
            }),
        };
        let target = store.inner.target.clone();
        store
            .run("migrating the database", MIGRATION_TIMEOUT, move |client| {
                Box::pin(async move { schema::migrate(client, &target).await })
            })
            .await?;
        Ok(store)
    }

    /// The database, as `USER@HOST:PORT/DATABASE` (never the password).
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// Follows the commits made to the database, by this instance and every other.
    ///
    /// The receiver holds the highest revision heard of so far (0 until the first is heard),
    /// and is marked changed each time a higher one is: on every commit (PostgreSQL's
    /// `LISTEN vexil_changes`, delivered once the commit is durable), on connecting and
    /// reconnecting (a catch-up read of the revision, so commits made while not listening are
    /// not missed), and on a periodic check of the connection. Revisions may be skipped —
    /// reload the snapshot when the revision moves past the one loaded — but the latest is
    /// always delivered.
    ///
    /// A background task on its own connection does the listening. It reconnects by itself,
    /// with backoff, when the connection fails, and ends when every receiver is dropped (not
    /// when the store is).
    pub fn listen(&self) -> tokio::sync::watch::Receiver<u64> {
        listen::spawn(
            &self.inner.runtime,
            self.inner.config.clone(),
            self.inner.target.clone(),
        )
    }

    /// Runs `work` on a connection from the pool, within `deadline`.
    async fn run<T, F>(
        &self,
        what: &'static str,
        deadline: Duration,
        work: F,
    ) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(&'c mut Client) -> BoxFuture<'c, Result<T, StoreError>>,
    {
        let mut client = self
            .inner
            .pool
            .get()
            .await
            .map_err(|err| error::pool(err, &self.inner.target))?;
        match tokio::time::timeout(deadline, work(&mut client)).await {
            Ok(result) => result,
            Err(_elapsed) => {
                // A statement may still be running, or the network be gone: this connection's
                // state is unknown, so close it rather than hand it to the next operation.
                drop(Object::take(client));
                Err(error::timed_out(what, deadline))
            }
        }
    }
}

/// Runs a statement (prepared once per connection) and returns its rows.
async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(error::postgres)?;
    client
        .query(&statement, params)
        .await
        .map_err(error::postgres)
}

/// Runs a statement (prepared once per connection) and returns how many rows it changed.
async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(error::postgres)?;
    client
        .execute(&statement, params)
        .await
        .map_err(error::postgres)
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.run("reading the configuration", OPERATION_TIMEOUT, |client| {
            Box::pin(read::snapshot(client))
        })
        .await
    }

    async fn commit(&self, commit: Commit) -> Result<Committed, StoreError> {
        self.run("committing", OPERATION_TIMEOUT, move |client| {
            Box::pin(async move { write::commit(client, &commit).await })
        })
        .await
    }

    async fn flag_history(&self, key: &str) -> Result<Vec<FlagVersion>, StoreError> {
        let key = key.to_owned();
        self.run(
            "reading a flag's history",
            OPERATION_TIMEOUT,
            move |client| Box::pin(async move { read::flag_history(&*client, &key).await }),
        )
        .await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let query = query.clone();
        self.run("reading the audit log", OPERATION_TIMEOUT, move |client| {
            Box::pin(async move { read::audit(&*client, &query).await })
        })
        .await
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.run("reading the keys", OPERATION_TIMEOUT, |client| {
            Box::pin(read::keys(&*client))
        })
        .await
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.run("reading the revision", OPERATION_TIMEOUT, |client| {
            Box::pin(read::revision(&*client))
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A read shows the schema is there; the read-only check shows a commit would be
        // accepted (after a failover the URL may lead to a standby).
        let target = self.inner.target.clone();
        self.run("pinging the database", PING_TIMEOUT, move |client| {
            Box::pin(async move {
                read::revision(&*client).await?;
                if read::read_only(&*client).await? {
                    return Err(StoreError::Unavailable(Box::new(error::ReadOnly {
                        target,
                    })));
                }
                Ok(())
            })
        })
        .await
    }
}
