//! One module per subcommand. Each `run` returns the exit code; an `Err` is bad usage
//! (exit 2) and is printed by `main`.

pub mod admin;
pub mod check;
pub mod eval;
pub mod lint;
pub mod serve;

use std::path::Path;

use anyhow::Context as _;
use vexil_engine::{Config, Diagnostic, LoadError};

/// Reads a flag file (YAML or JSON).
pub fn read_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read flag file {}", path.display()))
}

/// Loads a flag file: `Ok(Err(_))` is an invalid document, `Err(_)` an unreadable file.
pub fn load_file(path: &Path) -> anyhow::Result<Result<Config, LoadError>> {
    Ok(Config::from_text(&read_file(path)?))
}

/// Formats a problem the way compilers do, so editors and terminals can jump to it:
/// `FILE:LINE:COLUMN: PATH: MESSAGE`.
pub fn format_diagnostic(file: &Path, d: &Diagnostic) -> String {
    format!("{}:{d}", file.display())
}
