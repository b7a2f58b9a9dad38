//! `vexil`: the command-line interface of the vexil feature-flag platform.
//!
//! Arguments are parsed once, by clap, into [`Cli`]; each subcommand lives in its own module
//! under [`commands`] and returns the process exit code (PRODUCT.md section 3: 0 success,
//! 1 a finding or validation failure, 2 bad usage or an unreachable server).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

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
