//! The admin API from a terminal: `vexil flags …`, `vexil keys …`, `vexil export`, `vexil
//! import`. Each command is one or two HTTP requests; output is a table for people or, with
//! `--json`, the server's JSON for scripts. A refused request prints the server's own message and
//! details and exits 1 (2 for a refused key or an unreachable server).

pub mod client;
pub mod flags;
pub mod keys;
pub mod transfer;

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

pub use client::{Body, Client, Failure, ServerArgs};

/// Options of every write.
#[derive(Debug, Clone, clap::Args)]
pub struct WriteArgs {
    /// A comment for the audit log (sent as `X-Vexil-Comment`).
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
}

impl WriteArgs {
    /// The headers these options add.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        self.comment
            .iter()
            .map(|c| ("X-Vexil-Comment", c.clone()))
            .collect()
    }
}

/// Runs a command body and turns its failure into a message and an exit code.
pub fn finish(result: Result<(), Failure>) -> anyhow::Result<ExitCode> {
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    })
}

/// Checks a flag key, environment name or key id before it becomes part of a URL.
pub fn check_name(what: &str, name: &str) -> Result<(), Failure> {
    if vexil_engine::is_valid_key(name) {
        Ok(())
    } else {
        Err(Failure::Usage(format!(
            "invalid {what} `{name}`: use 1 to 128 letters, digits, `_`, `.` or `-`, starting with a letter or digit"
        )))
    }
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &Path) -> Result<String, Failure> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Usage(format!("cannot read standard input: {e}")))?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
    }
}

/// Parses YAML 1.2 or JSON text into JSON, with the problem's line and column when it fails.
pub fn parse_document(path: &Path, text: &str) -> Result<Value, Failure> {
    vexil_engine::parse_text(text)
        .map(|node| node.to_json())
        .map_err(|d| {
            let name = if path == Path::new("-") {
                "<stdin>".to_owned()
            } else {
                path.display().to_string()
            };
            Failure::Invalid(format!("{name}:{d}"))
        })
}

/// Prints a value as pretty JSON.
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// A plain-text table: a header row, left-aligned columns two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A JSON value as a table cell: strings bare, `null` as `-`.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
