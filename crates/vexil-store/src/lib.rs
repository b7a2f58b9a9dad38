//! Storage for vexil: the [`Store`] trait, the contract every backend keeps, and its two
//! backends: SQLite ([`SqliteStore`], one server) and PostgreSQL ([`PostgresStore`], a fleet
//! of servers sharing one database).
//!
//! # The contract
//!
//! - **One commit, one transaction.** [`Store::commit`] applies every [`Change`] of a
//!   [`Commit`], bumps the store's revision by one, records a new version of each flag and
//!   segment it touches, and appends exactly one [`AuditEvent`] — all in one transaction. Either
//!   all of it is durable when `commit` returns `Ok`, or none of it happened.
//! - **Durable on acknowledgement.** Once `commit` returns `Ok`, the commit survives a crash of
//!   the process (`kill -9`) and of the machine's power, as far as the backend's storage allows.
//! - **Optimistic concurrency, twice.** A commit names the revision its changes were computed
//!   against (`base_revision`); if the store has moved on it fails with [`StoreError::Stale`] and
//!   nothing is written (the caller reloads and recomputes). Each flag or segment change may
//!   also name the version it expects ([`Expected`]); a mismatch fails the whole commit with
//!   [`StoreError::Conflict`].
//! - **Versions.** The revision is global, starts at 0 for an empty store and grows by exactly
//!   one per commit. A flag's (or segment's) version starts at 1 when it is created and grows
//!   by one per change to it; deleting and re-creating a key continues its numbering, so
//!   history never has two entries with one version.
//! - **History is append-only.** Every version of every flag, deleted ones included, stays
//!   readable through [`Store::flag_history`]; the audit log is never rewritten.
//! - **Nothing is cached across calls.** Every read reflects every commit acknowledged before
//!   it started, including commits made by other processes sharing the database.
//! - **Changes by others are found by revision.** A server sharing the database with others
//!   keeps a snapshot in memory; [`Store::revision`] is the cheap read that tells it the
//!   snapshot is behind (the revision moved), and then it reloads. PostgreSQL also pushes
//!   revisions as they are committed ([`PostgresStore::listen`]).
//! - **Secrets never reach the store.** Keys are stored by a hash of their secret.

use std::fmt;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A shared handle to a store.
pub type DynStore = std::sync::Arc<dyn Store>;

/// The storage of a vexil service. See the crate docs for the contract.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The whole current configuration, consistent as of one revision.
    async fn snapshot(&self) -> Result<Snapshot, StoreError>;

    /// Applies a commit atomically (see the crate docs).
    async fn commit(&self, commit: Commit) -> Result<Committed, StoreError>;

    /// Every version of a flag, oldest first, including deletions. Empty when the key was never
    /// used.
    async fn flag_history(&self, key: &str) -> Result<Vec<FlagVersion>, StoreError>;

    /// Audit events matching the query, newest first.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;

    /// Every API key, revoked ones included, in the order they were created.
    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError>;

    /// The current revision: the same as [`Snapshot::revision`], read without the rest.
    ///
    /// It is what a server polls to learn that another process sharing the database has
    /// committed (the revision moved past the snapshot it holds), cheap enough to call every
    /// second. Like every read, it reflects every commit acknowledged before it started.
    async fn revision(&self) -> Result<u64, StoreError>;

    /// Succeeds when the store can serve reads and writes right now.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The current configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The revision this snapshot is of (0 for an empty store).
    pub revision: u64,
    /// Environment names, in the order they were created.
    pub environments: Vec<String>,
    /// Live flags, ordered by key.
    pub flags: Vec<Record>,
    /// Live segments, ordered by name.
    pub segments: Vec<Record>,
}

/// The current version of a flag or segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The flag key or segment name.
    pub key: String,
    /// Its version (from 1).
    pub version: u64,
    /// Its definition: the section-1 JSON of one flag or one segment.
    pub definition: Value,
    /// When this version was written.
    pub updated_at: Timestamp,
    /// Who wrote it (the key's name).
    pub updated_by: String,
}

/// One entry of a flag's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagVersion {
    /// The flag key.
    pub key: String,
    /// The version (from 1).
    pub version: u64,
    /// The definition at this version; `None` when this version deleted the flag.
    pub definition: Option<Value>,
    /// When it was written.
    pub updated_at: Timestamp,
    /// Who wrote it.
    pub updated_by: String,
    /// The revision of the commit that wrote it.
    pub revision: u64,
}

/// What a change expects of the current version of what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expected {
    /// No check.
    Any,
    /// The key must not exist (create only).
    Absent,
    /// The key must exist at exactly this version (`If-Match`).
    Version(u64),
}

/// One change inside a [`Commit`].
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Creates or replaces a flag.
    PutFlag {
        /// The flag key.
        key: String,
        /// Its new definition.
        definition: Value,
        /// What the current version must be.
        expected: Expected,
    },
    /// Deletes a flag. Fails with [`StoreError::NotFound`] when it does not exist (but with
    /// [`StoreError::Conflict`] when `expected` names a version).
    DeleteFlag {
        /// The flag key.
        key: String,
        /// What the current version must be.
        expected: Expected,
    },
    /// Creates or replaces a segment.
    PutSegment {
        /// The segment name.
        name: String,
        /// Its new definition.
        definition: Value,
        /// What the current version must be.
        expected: Expected,
    },
    /// Deletes a segment. Fails with [`StoreError::NotFound`] when it does not exist (but with
    /// [`StoreError::Conflict`] when `expected` names a version).
    DeleteSegment {
        /// The segment name.
        name: String,
        /// What the current version must be.
        expected: Expected,
    },
    /// Adds an environment at the end of the list. Fails with [`StoreError::AlreadyExists`]
    /// when one of that name exists.
    AddEnvironment {
        /// Its name.
        name: String,
    },
    /// Stores a new API key. Fails with [`StoreError::AlreadyExists`] when a key (revoked ones
    /// included) has the same id, or the same secret hash (then naming that key).
    CreateKey(ApiKey),
    /// Revokes a key. Fails with [`StoreError::NotFound`] when no live key has that id.
    RevokeKey {
        /// The key's id.
        id: String,
    },
}

/// A unit of change: applied, versioned and audited atomically.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The revision the changes were computed against.
    pub base_revision: u64,
    /// Who makes the change (the key's name).
    pub actor: String,
    /// What was done, for the audit log: `flag.create`, `flag.update`, `flag.delete`,
    /// `flag.enable`, `flag.disable`, `flag.revert`, `segment.update`, `import`, `key.create`, …
    pub action: String,
    /// What it was done to: `flag:new_checkout`, `segment:internal`, `key:ID`, `environment:qa`,
    /// `config` for imports.
    pub target: String,
    /// The comment the writer gave (`X-Vexil-Comment`).
    pub comment: Option<String>,
    /// The audit event's "before" state.
    pub before: Option<Value>,
    /// The audit event's "after" state.
    pub after: Option<Value>,
    /// The changes, applied in order.
    pub changes: Vec<Change>,
}

/// What a successful commit produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Committed {
    /// The store's new revision.
    pub revision: u64,
    /// When it was committed (also the `updated_at` of what it wrote).
    pub at: Timestamp,
    /// For each change, in order, the new version of the flag or segment it touched (0 for
    /// changes that are not versioned: environments and keys).
    pub versions: Vec<u64>,
}

/// One audit event: exactly one per commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Increasing id.
    pub id: u64,
    /// The revision the commit produced.
    pub revision: u64,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: String,
    /// What (see [`Commit::action`]).
    pub action: String,
    /// To what (see [`Commit::target`]).
    pub target: String,
    /// The state before.
    pub before: Option<Value>,
    /// The state after.
    pub after: Option<Value>,
    /// The writer's comment.
    pub comment: Option<String>,
}

/// Which audit events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events whose target is `flag:KEY`.
    pub flag: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// At most this many (the newest); 0 means 100, and more than 1000 means 1000.
    pub limit: usize,
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Everything.
    Admin,
    /// The sync API and evaluation, for one environment.
    Server,
    /// Evaluation only, for one environment.
    Client,
}

impl KeyKind {
    /// The lowercase name (`admin`, `server`, `client`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Admin => "admin",
            KeyKind::Server => "server",
            KeyKind::Client => "client",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "admin" => Some(KeyKind::Admin),
            "server" => Some(KeyKind::Server),
            "client" => Some(KeyKind::Client),
            _ => None,
        }
    }
}

/// An API key as stored: never its secret, only a hash of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// A public identifier.
    pub id: String,
    /// A human name; also the actor recorded for its writes.
    pub name: String,
    /// What it may do.
    pub kind: KeyKind,
    /// The environment it is scoped to (`None` for admin keys).
    pub environment: Option<String>,
    /// Lowercase hex SHA-256 of the secret.
    pub secret_hash: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The commit was computed against an older revision; reload and retry.
    #[error("the configuration changed meanwhile (now at revision {current})")]
    Stale {
        /// The store's current revision.
        current: u64,
    },
    /// A change expected another version of its target.
    #[error("{target} is at version {}, not the version expected", fmt_version(*.current))]
    Conflict {
        /// What conflicted: `flag:KEY` or `segment:NAME`.
        target: String,
        /// Its current version (`None` when it does not exist).
        current: Option<u64>,
    },
    /// The target of a delete or revoke does not exist.
    #[error("{target} does not exist")]
    NotFound {
        /// `flag:KEY`, `segment:NAME`, `key:ID`.
        target: String,
    },
    /// An environment (or key id) of that name already exists.
    #[error("{target} already exists")]
    AlreadyExists {
        /// `environment:NAME` or `key:ID`.
        target: String,
    },
    /// The database cannot be reached or refused the operation for now; retry later.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else; a bug or corrupt data.
    #[error("storage error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn fmt_version(v: Option<u64>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "none (it does not exist)".to_owned(),
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
