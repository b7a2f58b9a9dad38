//! How PostgreSQL's failures become [`StoreError`]s.
//!
//! The line drawn, as for SQLite: what may go away by itself or by an operator's hand is
//! [`StoreError::Unavailable`], so the server answers 503 and readiness fails — the server
//! cannot be reached or refuses connections, a connection broke or closed, an operation timed
//! out (on the server: `statement_timeout`; on the client: the store's own deadline), the server
//! is shutting down or is a read-only standby, it is out of connections, memory or disk, a lock
//! was not granted in time. Everything else — a bug, corrupt data, a schema this build does not
//! know, an invalid URL — is [`StoreError::Internal`].

use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::StoreError;

/// Maps an error of an operation on an open connection.
pub(super) fn postgres(err: tokio_postgres::Error) -> StoreError {
    if is_unavailable(&err) {
        StoreError::Unavailable(Box::new(Postgres(err)))
    } else {
        StoreError::Internal(Box::new(Postgres(err)))
    }
}

/// Maps a failure to get a connection from the pool: whatever the cause, the database cannot
/// be used right now.
pub(super) fn pool(err: deadpool_postgres::PoolError, target: &str) -> StoreError {
    use deadpool_postgres::PoolError;
    let source: Box<dyn std::error::Error + Send + Sync> = match err {
        PoolError::Backend(err) => Box::new(Postgres(err)),
        PoolError::Timeout(_) => Box::new(PoolTimeout {
            what: "waiting for a database connection",
        }),
        other => Box::new(other),
    };
    StoreError::Unavailable(Box::new(Context {
        context: format!("cannot connect to the database {target}"),
        source,
    }))
}

/// Maps an error met while connecting (outside the pool): always a matter of reaching the
/// database.
pub(super) fn connecting(err: tokio_postgres::Error, target: &str) -> StoreError {
    StoreError::Unavailable(Box::new(Context {
        context: format!("cannot connect to the database {target}"),
        source: Box::new(Postgres(err)),
    }))
}

/// A connection the server (or the network) closed.
pub(super) fn connection_closed(target: &str) -> StoreError {
    StoreError::Unavailable(Box::new(Context {
        context: format!("the connection to the database {target}"),
        source: "closed by the server or the network".into(),
    }))
}

/// An operation that did not finish within its deadline.
pub(super) fn timed_out(what: &'static str, after: Duration) -> StoreError {
    StoreError::Unavailable(Box::new(Deadline { what, after }))
}

/// Data in the database that this code cannot read back.
pub(super) fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Internal(Box::new(Corrupt {
        what,
        detail: detail.to_string(),
    }))
}

fn is_unavailable(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    if let Some(db) = err.as_db_error() {
        return is_unavailable_state(db.code());
    }
    // Without a server's answer, only a failure of the connection itself is transient; the
    // rest (a value that does not convert, an unexpected message) is a bug.
    std::error::Error::source(err).is_some_and(|source| source.is::<std::io::Error>())
}

fn is_unavailable_state(code: &SqlState) -> bool {
    let code = code.code();
    // Class 08: connection exceptions. Class 53: insufficient resources (too many
    // connections, disk full, out of memory). Class 57P: the server is shutting down or
    // starting up. Class 58: system errors (I/O).
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code.starts_with("58")
        || [
            // `statement_timeout` (or a cancel request).
            SqlState::QUERY_CANCELED.code(),
            // `lock_timeout`.
            SqlState::LOCK_NOT_AVAILABLE.code(),
            // A read-only standby, for instance right after a failover.
            SqlState::READ_ONLY_SQL_TRANSACTION.code(),
            // The session was ended for idling in a transaction.
            SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT.code(),
            SqlState::T_R_SERIALIZATION_FAILURE.code(),
            SqlState::T_R_DEADLOCK_DETECTED.code(),
            // Credentials or the database name are wrong: a matter for the operator, like a
            // database file that cannot be opened.
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION.code(),
            SqlState::INVALID_PASSWORD.code(),
            SqlState::INVALID_CATALOG_NAME.code(),
        ]
        .contains(&code)
}

/// A tokio-postgres error shown with its cause (its own message is as short as "db error").
#[derive(Debug)]
struct Postgres(tokio_postgres::Error);

impl std::fmt::Display for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match std::error::Error::source(&self.0) {
            Some(cause) => write!(f, "{}: {cause}", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

impl std::error::Error for Postgres {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// An error with what was being done when it happened.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub(super) struct Context {
    pub(super) context: String,
    pub(super) source: Box<dyn std::error::Error + Send + Sync>,
}

/// The pool had no connection to give in time.
#[derive(Debug, thiserror::Error)]
#[error("timed out {what}")]
struct PoolTimeout {
    what: &'static str,
}

/// An operation that took longer than the store allows.
#[derive(Debug, thiserror::Error)]
#[error("{what} did not finish within {after:?}; the database is slow or unreachable")]
struct Deadline {
    what: &'static str,
    after: Duration,
}

/// A value read from the database that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("the database holds an invalid {what}: {detail}")]
struct Corrupt {
    what: &'static str,
    detail: String,
}

/// The database was migrated by a newer vexil.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database {target} has schema version {found}, but this build of vexil knows only \
     versions up to {known}; run a newer vexil, or use another database"
)]
pub(super) struct SchemaTooNew {
    pub(super) target: String,
    pub(super) found: i64,
    pub(super) known: usize,
}

/// The URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid PostgreSQL URL: {reason}")]
pub(super) struct BadUrl {
    pub(super) reason: String,
}

/// The server is a read-only standby, or the database refuses writes.
#[derive(Debug, thiserror::Error)]
#[error("the database {target} is read-only (a standby, or default_transaction_read_only)")]
pub(super) struct ReadOnly {
    pub(super) target: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_states_are_unavailable() {
        for code in [
            SqlState::CONNECTION_FAILURE,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::DISK_FULL,
            SqlState::QUERY_CANCELED,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::IO_ERROR,
            SqlState::INVALID_PASSWORD,
        ] {
            assert!(is_unavailable_state(&code), "{code:?}");
        }
    }

    #[test]
    fn other_states_are_internal() {
        for code in [
            SqlState::UNIQUE_VIOLATION,
            SqlState::FOREIGN_KEY_VIOLATION,
            SqlState::UNDEFINED_TABLE,
            SqlState::SYNTAX_ERROR,
            SqlState::DATA_CORRUPTED,
            SqlState::INVALID_TEXT_REPRESENTATION,
        ] {
            assert!(!is_unavailable_state(&code), "{code:?}");
        }
    }
}
