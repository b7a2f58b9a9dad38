//! Following commits with `LISTEN`: a background task on a connection of its own.
//!
//! A session connects, runs `LISTEN vexil_changes`, reads the current revision (the catch-up:
//! whatever was committed while no session listened), then passes on each notification's
//! revision. When nothing arrives for [`CHECK_INTERVAL`] it reads the revision again, which
//! both proves the connection alive and covers anything missed. When the session fails it is
//! started anew after a backoff; when every receiver is gone the task ends.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use super::schema::{CONNECT_TIMEOUT, STATEMENT_TIMEOUT};
use super::{CHANNEL, codec, error};
use crate::StoreError;

/// How long a quiet connection goes before the listener checks it (and the revision).
const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The first wait before reconnecting, doubled after each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts the listener and returns its receiver.
pub(super) fn spawn(
    runtime: &tokio::runtime::Handle,
    config: Config,
    target: String,
) -> watch::Receiver<u64> {
    let (revisions, receiver) = watch::channel(0);
    runtime.spawn(run(config, target, revisions));
    receiver
}

async fn run(config: Config, target: String, revisions: watch::Sender<u64>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut listening = false;
        let failure = tokio::select! {
            failure = session(&config, &revisions, &mut listening) => failure,
            () = revisions.closed() => return,
        };
        if listening {
            // It worked for a while: the next failure starts the backoff over.
            backoff = MIN_BACKOFF;
        }
        tracing::warn!(
            database = %target,
            error = %failure,
            "listening for changes failed; reconnecting in {backoff:?}"
        );
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = revisions.closed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's worth of listening. Returns only when it fails.
async fn session(
    config: &Config,
    revisions: &watch::Sender<u64>,
    listening: &mut bool,
) -> StoreError {
    match listen(config, revisions, listening).await {
        Ok(never) => match never {},
        Err(err) => err,
    }
}

async fn listen(
    config: &Config,
    revisions: &watch::Sender<u64>,
    listening: &mut bool,
) -> Result<std::convert::Infallible, StoreError> {
    let target = super::schema::describe(config);
    let connecting = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls));
    let (client, mut connection) = connecting
        .await
        .map_err(|_| error::timed_out("connecting to listen", CONNECT_TIMEOUT))?
        .map_err(|err| error::connecting(err, &target))?;

    // The connection must be polled for anything to happen on it, statements included; the
    // driver does that and hands notifications over.
    let (notes, mut notifications) = mpsc::unbounded_channel::<String>();
    let mut driver = Driver(tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(note))) if note.channel() == CHANNEL => {
                    // The receiving end is gone only when the session is ending anyway.
                    let _ = notes.send(note.payload().to_owned());
                }
                // Notices, and notifications on other channels.
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err),
                None => return Ok(()),
            }
        }
    }));

    within(client.batch_execute(&format!("LISTEN {CHANNEL}"))).await?;
    *listening = true;
    publish(revisions, revision(&client).await?);
    loop {
        tokio::select! {
            note = notifications.recv() => match note {
                Some(payload) => match payload.parse::<u64>() {
                    Ok(revision) => publish(revisions, revision),
                    // Not one of ours; read the revision rather than guess.
                    Err(_) => publish(revisions, revision(&client).await?),
                },
                None => return Err(driver.ended(&target).await),
            },
            () = tokio::time::sleep(CHECK_INTERVAL) => {
                publish(revisions, revision(&client).await?);
            }
        }
    }
}

/// Passes on a revision, if it is higher than the last one passed on.
fn publish(revisions: &watch::Sender<u64>, revision: u64) {
    revisions.send_if_modified(|seen| {
        if revision > *seen {
            *seen = revision;
            true
        } else {
            false
        }
    });
}

async fn revision(client: &Client) -> Result<u64, StoreError> {
    let row = within(client.query_opt("SELECT revision FROM meta WHERE id = 1", &[])).await?;
    match row {
        Some(row) => codec::u64_from_sql(row.try_get(0).map_err(error::postgres)?, "revision"),
        None => Err(error::corrupt("meta table", "its row is missing")),
    }
}

/// Runs a statement with the client-side deadline (the server's `statement_timeout` cannot
/// fire on a connection the network lost).
async fn within<T>(
    statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(STATEMENT_TIMEOUT, statement)
        .await
        .map_err(|_| error::timed_out("a statement of the listener", STATEMENT_TIMEOUT))?
        .map_err(error::postgres)
}

/// The task polling the connection; stopped when the session ends, whichever way.
struct Driver(JoinHandle<Result<(), tokio_postgres::Error>>);

impl Driver {
    /// Why the connection ended.
    async fn ended(&mut self, target: &str) -> StoreError {
        match (&mut self.0).await {
            Ok(Err(err)) => error::postgres(err),
            Ok(Ok(())) => error::connection_closed(target),
            Err(err) => StoreError::Internal(Box::new(err)),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}
