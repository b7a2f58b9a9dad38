//! `vexil serve`: run the flag service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use vexil_server::{AppState, Source};
use vexil_store::{DynStore, SqliteStore};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on.
    #[arg(long, env = "VEXIL_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Where the embedded SQLite database lives.
    #[arg(long, env = "VEXIL_DATA_DIR", default_value = "./vexil-data")]
    data_dir: PathBuf,
    /// A database URL instead of the embedded SQLite: `sqlite:PATH` (a file).
    #[arg(long, env = "VEXIL_DATABASE_URL")]
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

async fn open_store(args: &Args) -> anyhow::Result<DynStore> {
    let store = match args.database_url.as_deref() {
        None => SqliteStore::open(&args.data_dir)
            .with_context(|| format!("cannot open the database in {}", args.data_dir.display()))?,
        Some(url) => {
            if let Some(path) = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
            {
                SqliteStore::open_file(path.as_ref())
                    .with_context(|| format!("cannot open the SQLite database {path}"))?
            } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                bail!(
                    "PostgreSQL is not supported by this version yet; use the embedded SQLite (leave out --database-url)"
                );
            } else {
                bail!("--database-url `{url}` is not understood; use sqlite:PATH");
            }
        }
    };
    Ok(Arc::new(store))
}

async fn serve(args: &Args) -> anyhow::Result<ExitCode> {
    let store = open_store(args).await?;
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
    let state = AppState::load(store, source)
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
        tokio::spawn(vexil_server::fleet::follow(
            state.clone(),
            None,
            std::time::Duration::from_secs(1),
        ));
    }
    tracing::info!(%addr, "vexil is listening");
    println!("vexil: listening on http://{addr}");
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
