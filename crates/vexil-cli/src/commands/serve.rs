//! `vexil serve`: run the flag service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use vexil_server::{AppState, Source};
use vexil_store::{DynStore, PostgresStore, SqliteStore, StoreError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on.
    #[arg(long, env = "VEXIL_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Where the embedded SQLite database lives.
    #[arg(long, env = "VEXIL_DATA_DIR", default_value = "./vexil-data")]
    data_dir: PathBuf,
    /// A database URL instead of the embedded SQLite: `postgres://USER@HOST/DB` for a fleet of
    /// instances, or `sqlite:PATH` for a SQLite file elsewhere.
    #[arg(long, env = "VEXIL_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Serve this flag file read-only, reloading it when it changes.
    #[arg(long, env = "VEXIL_FLAGS", value_name = "FILE")]
    flags: Option<PathBuf>,
    /// The secret of the first admin key, used when the store is empty (for automation);
    /// otherwise a random one is created and printed once.
    #[arg(
        long,
        env = "VEXIL_ADMIN_KEY",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    admin_key: Option<String>,
    /// The secret web UI sessions are signed with (at least 32 random characters). Give every
    /// instance of a fleet the same one, so that a session works on all of them; without it,
    /// each process makes its own and its sessions end when it stops.
    #[arg(
        long,
        env = "VEXIL_SESSION_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    session_secret: Option<String>,
    /// Serve the web UI from this directory instead of the copy built into the binary (for
    /// working on the UI: edits show on reload).
    #[arg(long, env = "VEXIL_UI_DIR", value_name = "DIR", hide = true)]
    ui_dir: Option<PathBuf>,
    /// Log filter, e.g. `info` or `vexil_server=debug`.
    #[arg(long, env = "VEXIL_LOG", default_value = "info")]
    log: String,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log)
                .with_context(|| format!("--log `{}` is not a valid log filter", args.log))?,
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

/// The opened store, and for PostgreSQL the revisions it announces.
struct Opened {
    store: DynStore,
    nudges: Option<tokio::sync::watch::Receiver<u64>>,
}

async fn open_store(args: &Args) -> anyhow::Result<Opened> {
    let store: DynStore = match args.database_url.as_deref() {
        None => {
            Arc::new(SqliteStore::open(&args.data_dir).with_context(|| {
                format!("cannot open the database in {}", args.data_dir.display())
            })?)
        }
        Some(url) => {
            if let Some(path) = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
            {
                Arc::new(
                    SqliteStore::open_file(path.as_ref())
                        .with_context(|| format!("cannot open the SQLite database {path}"))?,
                )
            } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                let store = connect_postgres(url).await?;
                let nudges = Some(store.listen());
                return Ok(Opened {
                    store: Arc::new(store),
                    nudges,
                });
            } else {
                bail!("--database-url `{url}` is not understood; use postgres://… or sqlite:PATH");
            }
        }
    };
    Ok(Opened {
        store,
        nudges: None,
    })
}

/// Connects to PostgreSQL, waiting up to a minute for it when it is not up yet (instances
/// often start before their database).
async fn connect_postgres(url: &str) -> anyhow::Result<PostgresStore> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut wait = std::time::Duration::from_millis(250);
    loop {
        match PostgresStore::connect(url).await {
            Ok(store) => return Ok(store),
            Err(StoreError::Unavailable(e)) if std::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "PostgreSQL is not available yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(5));
            }
            Err(e) => return Err(e).context("cannot connect to PostgreSQL"),
        }
    }
}

async fn serve(args: &Args) -> anyhow::Result<ExitCode> {
    // Bad usage is reported before anything is opened or written.
    if let Some(secret) = &args.session_secret
        && secret.len() < vexil_server::session::MIN_SECRET
    {
        bail!(
            "--session-secret (VEXIL_SESSION_SECRET) is {} bytes long; use at least {} random characters",
            secret.len(),
            vexil_server::session::MIN_SECRET
        );
    }
    let Opened { store, nudges } = open_store(args).await?;
    let polling = if nudges.is_some() {
        // Notifications do the work; polling is the safety net.
        std::time::Duration::from_secs(5)
    } else {
        std::time::Duration::from_secs(1)
    };
    if let Some(secret) = vexil_server::bootstrap(&store, args.admin_key.as_deref())
        .await
        .context("cannot prepare the new database")?
    {
        if args.admin_key.is_some() {
            println!("vexil: created the first admin key from VEXIL_ADMIN_KEY");
        } else {
            println!(
                "vexil: created the first admin key; it is shown only this once:\n\n    {secret}\n"
            );
        }
    }
    let source = match &args.flags {
        Some(path) => Source::File(path.clone()),
        None => Source::Store,
    };
    if args.session_secret.is_none() && nudges.is_some() {
        tracing::warn!(
            "no --session-secret (VEXIL_SESSION_SECRET): web UI sessions work only on the \
             instance that made them and end when it stops; give every instance the same secret"
        );
    }
    let options = vexil_server::Options {
        ui_dir: args.ui_dir.clone(),
        session_secret: args.session_secret.clone(),
        ..vexil_server::Options::default()
    };
    let state = AppState::load_with(store, source, options)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("cannot load the configuration")?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = listener.local_addr().context("no local address")?;
    if let Some(path) = &args.flags {
        tokio::spawn(vexil_server::file::watch(state.clone(), path.clone()));
        tracing::info!(file = %path.display(), "serving the flag file read-only");
    } else {
        // Other processes may write to the same database: follow their commits.
        tokio::spawn(vexil_server::fleet::follow(state.clone(), nudges, polling));
    }
    tracing::info!(%addr, "vexil is listening");
    println!("vexil: listening on http://{addr}");
    println!("vexil: web UI at http://{addr}/ (sign in with an admin key)");
    vexil_server::serve(listener, state, shutdown_signal())
        .await
        .context("the server failed")?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
