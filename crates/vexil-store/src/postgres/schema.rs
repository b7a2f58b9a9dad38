//! Connection settings, and bringing the schema up to date.
//!
//! The schema is versioned in a table of its own, `vexil_migrations`: one row per script of
//! [`MIGRATIONS`] applied. Connecting applies the missing ones, in order, in one transaction
//! that first takes a transaction-scoped advisory lock, so that instances starting together
//! queue and the first migrates while the others find nothing left to do. A database with a
//! higher version than this build knows is refused rather than misread. A migration, once
//! released, is never edited: changes are new scripts.

use std::time::Duration;

use deadpool_postgres::Client;
use tokio_postgres::Config;
use tokio_postgres::config::{Host, SslMode};

use super::codec::RowExt;
use super::error::{self, BadUrl, SchemaTooNew};
use super::{execute, query};
use crate::StoreError;

/// The migration scripts; the schema version of a database is how many of them it has had.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_initial.sql")];

/// The advisory lock migrations take ("vexil" and a 1): one lock per database, shared by
/// every vexil using it.
const MIGRATION_LOCK: i64 = 0x7665_7869_6c00_0001;

/// How long opening a connection (TCP, startup, authentication) may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one statement may run on the server, waiting for the revision row's lock
/// included, before the server cancels it (and the store answers `Unavailable`).
pub(super) const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a migration's statements may run: creating indexes on a large table takes time.
const MIGRATION_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A session idle inside a transaction this long (its client hung or vanished) is ended by
/// the server, so that a lock it holds — the revision row's — cannot stall the fleet.
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(15);

/// How long data sent may go unacknowledged before the kernel drops the connection: a cut
/// network fails a statement in this time rather than at the store's deadline.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP keepalives find a dead idle connection (a pooled one, or the listener's) within about
/// `idle + interval × retries`.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(3);
const KEEPALIVES_RETRIES: u32 = 3;

/// tokio-postgres's default keepalive idle time, which means "not set by the URL".
const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// Parses a `postgres://` URL (or a `key=value` connection string) and adds the store's
/// settings where the URL does not choose its own.
pub(super) fn config(url: &str) -> Result<Config, StoreError> {
    let mut config: Config = url.parse().map_err(|err: tokio_postgres::Error| {
        // The message names the option at fault, never its value (it may be a password).
        let reason = match std::error::Error::source(&err) {
            Some(cause) => format!("{err}: {cause}"),
            None => err.to_string(),
        };
        StoreError::Internal(Box::new(BadUrl { reason }))
    })?;
    if config.get_ssl_mode() == SslMode::Require {
        return Err(StoreError::Internal(Box::new(BadUrl {
            reason: "sslmode=require, but this build of vexil connects to PostgreSQL without \
                     TLS; use sslmode=disable on a private network, or a local TLS proxy"
                .to_owned(),
        })));
    }
    if config.get_hosts().is_empty() {
        return Err(StoreError::Internal(Box::new(BadUrl {
            reason: "it names no host (postgres://USER@HOST:PORT/DATABASE)".to_owned(),
        })));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    if config.get_keepalives_idle() == DEFAULT_KEEPALIVES_IDLE {
        config.keepalives_idle(KEEPALIVES_IDLE);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVES_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVES_RETRIES);
    }
    if config.get_application_name().is_none() {
        config.application_name("vexil");
    }
    // Ours first: the server applies `-c` options in order, so the URL's own win.
    let ours = format!(
        "-c statement_timeout={} -c idle_in_transaction_session_timeout={}",
        STATEMENT_TIMEOUT.as_millis(),
        IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
    );
    let options = match config.get_options() {
        Some(theirs) if !theirs.trim().is_empty() => format!("{ours} {theirs}"),
        _ => ours,
    };
    config.options(options);
    Ok(config)
}

/// The database a config points at, for messages: `USER@HOST:PORT/DATABASE`, never the
/// password.
pub(super) fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config
                .get_ports()
                .get(i)
                .or_else(|| config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let dbname = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or_default();
    format!("{user}{}/{dbname}", hosts.join(","))
}

/// Applies the migrations the database lacks.
pub(super) async fn migrate(client: &mut Client, target: &str) -> Result<(), StoreError> {
    apply(client, target, MIGRATIONS).await
}

async fn apply(client: &mut Client, target: &str, migrations: &[&str]) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(error::postgres)?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}",
        MIGRATION_STATEMENT_TIMEOUT.as_millis()
    ))
    .await
    .map_err(error::postgres)?;
    // Held until the transaction ends: another instance migrating at the same moment waits
    // here, then sees the version this one recorded.
    query(&tx, "SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    // Looked for before it is created, so that a database already up to date needs no write:
    // an instance may start (and serve what it reads) while the database is read-only.
    let rows = query(
        &tx,
        "SELECT to_regclass('vexil_migrations') IS NOT NULL",
        &[],
    )
    .await?;
    let exists = match rows.first() {
        Some(row) => row.column(0)?,
        None => false,
    };
    if !exists {
        tx.batch_execute(
            "CREATE TABLE vexil_migrations (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(error::postgres)?;
    }
    let rows = query(
        &tx,
        "SELECT coalesce(max(version), 0)::bigint FROM vexil_migrations",
        &[],
    )
    .await?;
    let found: i64 = match rows.first() {
        Some(row) => row.column(0)?,
        None => 0,
    };
    let known = migrations.len();
    let applied = usize::try_from(found)
        .ok()
        .filter(|&applied| applied <= known)
        .ok_or_else(|| {
            StoreError::Internal(Box::new(SchemaTooNew {
                target: target.to_owned(),
                found,
                known,
            }))
        })?;
    if applied == known {
        // Nothing to do; ending the transaction lets the lock go.
        return tx.commit().await.map_err(error::postgres);
    }
    for (index, script) in migrations.iter().enumerate().skip(applied) {
        tx.batch_execute(script).await.map_err(error::postgres)?;
        let version = i32::try_from(index + 1)
            .map_err(|_| error::corrupt("schema version", format_args!("{index} overflows")))?;
        execute(
            &tx,
            "INSERT INTO vexil_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await.map_err(error::postgres)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_adds_its_settings() {
        let config = config("postgres://vexil:secret@db.internal:6543/flags").unwrap();
        assert_eq!(config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(config.get_application_name(), Some("vexil"));
        assert_eq!(
            config.get_options(),
            Some("-c statement_timeout=5000 -c idle_in_transaction_session_timeout=15000")
        );
        assert_eq!(describe(&config), "vexil@db.internal:6543/flags");
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn the_url_s_own_settings_win() {
        let config = config(
            "postgres://vexil@db/flags?connect_timeout=1&application_name=edge\
             &options=-c%20statement_timeout%3D100",
        )
        .unwrap();
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(1)));
        assert_eq!(config.get_application_name(), Some("edge"));
        let options = config.get_options().unwrap();
        assert!(
            options.ends_with("-c statement_timeout=100"),
            "the URL's last: {options}"
        );
    }

    #[test]
    fn unusable_urls_are_refused_without_showing_secrets() {
        for (url, says) in [
            ("postgres://u:hunter2@db/x?nonsense=1", "nonsense"),
            ("postgres://u:hunter2@db/x?sslmode=require", "TLS"),
            ("postgres://u:hunter2@db:notaport/x", "invalid"),
            ("postgres:///x", "no host"),
        ] {
            let err = config(url).unwrap_err();
            assert!(matches!(err, StoreError::Internal(_)), "{url}: {err:?}");
            let message = err.to_string();
            assert!(message.contains(says), "{url}: {message}");
            assert!(!message.contains("hunter2"), "{url}: {message}");
        }
    }
}
