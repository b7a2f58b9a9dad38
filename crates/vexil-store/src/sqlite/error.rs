//! How SQLite's failures become [`StoreError`]s.
//!
//! The line drawn: what may go away by itself or by an operator's hand (a lock held too long, a
//! failing or full disk, a file that cannot be opened or written) is
//! [`StoreError::Unavailable`], so the server answers 503 and readiness fails; everything else
//! (a bug, corrupt data, a schema this build does not know) is [`StoreError::Internal`].

use rusqlite::ErrorCode;

use crate::StoreError;

/// Maps an error of an operation on an open database.
pub(super) fn sqlite(err: rusqlite::Error) -> StoreError {
    if is_unavailable(&err) {
        StoreError::Unavailable(Box::new(err))
    } else {
        StoreError::Internal(Box::new(err))
    }
}

/// Maps an error, saying what was being done (opening which file, for instance).
pub(super) fn sqlite_context(context: String, err: rusqlite::Error) -> StoreError {
    let unavailable = is_unavailable(&err);
    let err = Box::new(Context {
        context,
        source: Box::new(err),
    });
    if unavailable {
        StoreError::Unavailable(err)
    } else {
        StoreError::Internal(err)
    }
}

/// Maps a filesystem error (creating the data directory): always a matter for the operator.
pub(super) fn io(context: String, err: std::io::Error) -> StoreError {
    StoreError::Unavailable(Box::new(Context {
        context,
        source: Box::new(err),
    }))
}

/// Data in the database that this code cannot read back.
pub(super) fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Internal(Box::new(Corrupt {
        what,
        detail: detail.to_string(),
    }))
}

fn is_unavailable(err: &rusqlite::Error) -> bool {
    match err {
        rusqlite::Error::SqliteFailure(err, _) => matches!(
            err.code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::PermissionDenied
                | ErrorCode::DiskFull
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::OutOfMemory
        ),
        _ => false,
    }
}

/// An error with what was being done when it happened.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
struct Context {
    context: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// A value read from the database that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("the database holds an invalid {what}: {detail}")]
struct Corrupt {
    what: &'static str,
    detail: String,
}

/// The database was written by a newer vexil.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database {path} has schema version {found}, but this build of vexil knows only \
     versions up to {known}; run a newer vexil, or use another data directory"
)]
pub(super) struct SchemaTooNew {
    pub(super) path: String,
    pub(super) found: i64,
    pub(super) known: usize,
}

/// The database refused write-ahead logging, without which commits are not durable as promised.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database {path} cannot use write-ahead logging (journal mode is {mode}); \
     put the data directory on a local filesystem"
)]
pub(super) struct NoWal {
    pub(super) path: String,
    pub(super) mode: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn transient_failures_are_unavailable() {
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_IOERR,
            rusqlite::ffi::SQLITE_CANTOPEN,
            rusqlite::ffi::SQLITE_READONLY,
            rusqlite::ffi::SQLITE_FULL,
        ] {
            assert!(
                matches!(sqlite(failure(code)), StoreError::Unavailable(_)),
                "code {code}"
            );
        }
    }

    #[test]
    fn other_failures_are_internal() {
        for code in [
            rusqlite::ffi::SQLITE_CONSTRAINT,
            rusqlite::ffi::SQLITE_CORRUPT,
            rusqlite::ffi::SQLITE_NOTADB,
            rusqlite::ffi::SQLITE_ERROR,
        ] {
            assert!(
                matches!(sqlite(failure(code)), StoreError::Internal(_)),
                "code {code}"
            );
        }
        assert!(matches!(
            sqlite(rusqlite::Error::QueryReturnedNoRows),
            StoreError::Internal(_)
        ));
    }
}
