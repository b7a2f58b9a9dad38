//! `vexil`: the command-line interface of the vexil feature-flag platform.
//!
//! Arguments are parsed once, by clap, into [`Cli`]; each subcommand lives in its own module
//! under [`commands`] and returns the process exit code (PRODUCT.md section 3: 0 success,
//! 1 a finding or validation failure, 2 bad usage or an unreachable server).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

/// mimalloc: the server allocates many small, short-lived objects per request (JSON values,
/// strings); a modern allocator serves them with less CPU than the system one.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// vexil — feature flags: deploy dark, release deliberately.
#[derive(Debug, Parser)]
#[command(name = "vexil", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the flag service: admin API, OFREP, the simple API (embedded SQLite by default).
    Serve(commands::serve::Args),
    /// Validate flag files and list every problem (exit 1 when there is any).
    Check(commands::check::Args),
    /// Evaluate one flag from a file and print the result as JSON.
    Eval(commands::eval::Args),
    /// Print the JSON Schema of the flag file, for editors.
    Schema,
    /// Find flag references in source code: expired and unknown flags (errors), unused,
    /// expiring and ownerless flags (warnings).
    Lint(commands::lint::Args),
    /// Manage flags on a server: list, get, set, delete, enable, disable, history, revert.
    Flags(commands::admin::flags::Args),
    /// Manage API keys on a server: create, list, revoke.
    Keys(commands::admin::keys::Args),
    /// Print a server's whole configuration as one flag document (JSON).
    Export(commands::admin::transfer::ExportArgs),
    /// Replace a server's whole configuration with a flag document (YAML or JSON).
    Import(commands::admin::transfer::ImportArgs),
}

/// Exit status for bad usage (wrong arguments, unreadable input).
pub const EXIT_USAGE: u8 = 2;
/// Exit status for a finding: invalid document, evaluation error.
pub const EXIT_FINDING: u8 = 1;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on usage errors and 0 for --help/--version, as we want.
            e.exit();
        }
    };
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(&args),
        Command::Check(args) => commands::check::run(&args),
        Command::Eval(args) => commands::eval::run(&args),
        Command::Lint(args) => commands::lint::run(&args),
        Command::Flags(args) => commands::admin::flags::run(&args),
        Command::Keys(args) => commands::admin::keys::run(&args),
        Command::Export(args) => commands::admin::transfer::export(&args),
        Command::Import(args) => commands::admin::transfer::import(&args),
        Command::Schema => {
            println!("{}", vexil_engine::JSON_SCHEMA.trim_end());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
