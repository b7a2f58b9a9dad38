//! `vexil check FILE…`: validate flag files, listing every problem.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::{format_diagnostic, load_file};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flag files (YAML 1.2 or JSON).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// One line per problem, `FILE:LINE:COLUMN: PATH: MESSAGE`, then a summary.
    Text,
    /// A JSON array of files, each with its problems.
    Json,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut unreadable = false;
    let mut report = Vec::new();
    for file in &args.files {
        // An unreadable file is reported and skipped, so the others are still checked.
        let loaded = match load_file(file) {
            Ok(loaded) => loaded,
            Err(e) => {
                eprintln!("error: {e:#}");
                unreadable = true;
                continue;
            }
        };
        let (problems, summary) = match loaded {
            Ok(config) => {
                let envs: Vec<&str> = config.environments().collect();
                (
                    Vec::new(),
                    format!(
                        "{}: ok ({} flag{}, {} segment{}, environments: {})",
                        file.display(),
                        config.flags().len(),
                        plural(config.flags().len()),
                        config.segments().count(),
                        plural(config.segments().count()),
                        envs.join(", ")
                    ),
                )
            }
            Err(e) => {
                failed = true;
                let n = e.diagnostics.len();
                (
                    e.diagnostics,
                    format!("{}: {n} problem{}", file.display(), plural(n)),
                )
            }
        };
        match args.format {
            Format::Text => {
                for d in &problems {
                    println!("{}", format_diagnostic(file, d));
                }
                println!("{summary}");
            }
            Format::Json => report.push(json!({
                "file": file.display().to_string(),
                "valid": problems.is_empty(),
                "problems": problems,
            })),
        }
    }
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(if unreadable {
        ExitCode::from(crate::EXIT_USAGE)
    } else if failed {
        ExitCode::from(crate::EXIT_FINDING)
    } else {
        ExitCode::SUCCESS
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
