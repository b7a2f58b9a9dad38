//! `vexil lint [PATH…]`: flag hygiene. Finds the references to flags in source trees and
//! reports expired flags still referenced and unknown flags passed to SDK calls (errors), and
//! flags referenced nowhere, expiring soon or lacking an expiry date or owner (warnings).
//!
//! The flags come from a flag file or a server ([`source`]); the tree is walked in parallel
//! ([`scan`]), each file lexed just enough to know its string literals and SDK calls
//! ([`lexer`]); [`report`] turns what was found into findings and prints them.

pub mod config;
pub mod lexer;
pub mod report;
pub mod scan;
pub mod source;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use jiff::civil::Date;

use self::config::LintConfig;
use self::report::Report;
use self::scan::{Scanner, Walk};
use self::source::LoadFailure;
use super::admin::ServerArgs;

/// The flag files looked for in the current directory when neither `--flags` nor a server is
/// given.
const DEFAULT_FLAG_FILES: [&str; 3] = ["flags.yaml", "flags.yml", "flags.json"];

/// The default warning window for expiring flags, in days.
const DEFAULT_EXPIRING_WITHIN: u32 = 14;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to search (default: the current directory).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The flag file (default: flags.yaml, flags.yml or flags.json here, unless a server is
    /// given). Wins over VEXIL_SERVER.
    #[arg(long, value_name = "FILE")]
    flags: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The date expiry is judged by (default: today, UTC), for reproducible runs.
    #[arg(long, value_name = "YYYY-MM-DD")]
    today: Option<String>,
    /// Warn about flags expiring within this many days (default: 14, or the config file's).
    #[arg(long, value_name = "DAYS")]
    expiring_within: Option<u32>,
    /// The lint configuration (default: .vexil-lint.yaml here, if it exists).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Findings grouped by file, then the counts.
    Text,
    /// One JSON document: summary, findings and every reference.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// GitHub Actions workflow commands: annotations on the pull request.
    Github,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let (config_path, explicit) = match &args.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(config::DEFAULT_FILE), false),
    };
    let lint_config = LintConfig::load(&config_path, explicit)?;
    let patterns = lint_config.patterns(&config_path)?;
    let pattern_names: Vec<String> = patterns.iter().map(|p| p.name.clone()).collect();
    let today = match &args.today {
        Some(text) => text
            .parse::<Date>()
            .map_err(|_| anyhow!("--today `{text}` is not a date like 2026-03-20"))?,
        None => jiff::tz::Offset::UTC
            .to_datetime(jiff::Timestamp::now())
            .date(),
    };
    let expiring_within = args
        .expiring_within
        .or(lint_config.expiring_within)
        .unwrap_or(DEFAULT_EXPIRING_WITHIN);

    let loaded = match (&args.flags, &args.server.server) {
        (Some(file), _) => source::from_file(file, &scan::display_path(file, &cwd)),
        (None, Some(_)) => match args.server.client() {
            Ok(client) => source::from_server(&client),
            Err(failure) => return Ok(failure.report()),
        },
        (None, None) => match DEFAULT_FLAG_FILES.iter().find(|f| Path::new(f).is_file()) {
            Some(file) => source::from_file(Path::new(file), file),
            None => bail!(
                "no flags to check against: pass --flags FILE, or --server URL and --key KEY (there is no {} here)",
                DEFAULT_FLAG_FILES.join(", ")
            ),
        },
    };
    let flags = match loaded {
        Ok(flags) => flags,
        Err(LoadFailure::Invalid(problems)) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!(
                "error: the flag file is invalid ({} problem{}); fix it first (`vexil check`)",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::from(crate::EXIT_FINDING));
        }
        Err(LoadFailure::Other(message)) => bail!(message),
    };

    // The flag file and the lint configuration are never searched: every key is in the first.
    let mut skip = Vec::new();
    for path in [args.flags.as_deref(), Some(config_path.as_path())]
        .into_iter()
        .flatten()
        .chain(flags.file.as_deref().map(Path::new))
    {
        if let Ok(canonical) = path.canonicalize() {
            skip.push(canonical);
        }
    }
    let roots = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let scanner = Scanner::new(
        flags.list.iter().map(|f| f.key.as_str()),
        &lint_config.accessors,
        patterns,
    );
    let result = scan::walk(
        &scanner,
        &Walk {
            roots: &roots,
            cwd: &cwd,
            exclude: &lint_config.exclude,
            skip: &skip,
        },
    )?;
    for problem in &result.problems {
        eprintln!("warning: {problem}");
    }
    let report = Report::new(&flags, &result, &pattern_names, today, expiring_within);
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    // A closed pipe (`vexil lint | head`) is not an error of lint's: the results are ignored.
    let _ = match args.format {
        Format::Text => stdout
            .write_all(report.text().as_bytes())
            .map_err(serde_json::Error::io),
        Format::Json => report.write_json(&mut stdout),
        Format::Sarif => report.write_sarif(&mut stdout),
        Format::Github => stdout
            .write_all(report.github().as_bytes())
            .map_err(serde_json::Error::io),
    };
    let _ = stdout.flush();
    Ok(if report.errors() > 0 {
        ExitCode::from(crate::EXIT_FINDING)
    } else {
        ExitCode::SUCCESS
    })
}
