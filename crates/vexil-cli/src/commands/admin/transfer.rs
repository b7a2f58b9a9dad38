//! `vexil export` and `vexil import [--dry-run]`: the whole configuration as one section-1
//! document.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;

use super::{Body, Failure, ServerArgs, WriteArgs, finish, print_json, read_input};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Write the document to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The document (YAML or JSON; `-` for standard input). It replaces the whole
    /// configuration: flags and segments it does not contain are deleted.
    #[arg(value_name = "FILE|-")]
    file: PathBuf,
    /// Validate and show what would change, without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Print the server's JSON instead of a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    write: WriteArgs,
}

pub fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    finish((|| {
        let client = args.server.client()?;
        let answer = client.get("/api/v1/export")?;
        match &args.output {
            None => print_json(&answer.body),
            Some(path) => {
                let mut text = serde_json::to_string_pretty(&answer.body)
                    .map_err(|e| Failure::Usage(e.to_string()))?;
                text.push('\n');
                std::fs::write(path, text)
                    .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display())))?;
            }
        }
        Ok(())
    })())
}

pub fn import(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    finish((|| {
        let client = args.server.client()?;
        let text = read_input(&args.file)?;
        let body = if is_json(&args.file, &text) {
            Body::Text(text, "application/json")
        } else {
            Body::Text(text, "application/yaml")
        };
        let path = if args.dry_run {
            "/api/v1/import?dry_run=true"
        } else {
            "/api/v1/import"
        };
        let answer = client.send(Method::POST, path, Some(body), &args.write.headers())?;
        if args.json {
            print_json(&answer.body);
        } else {
            print!("{}", summary(&answer.body, args.dry_run));
        }
        Ok(())
    })())
}

/// JSON by its extension, or for standard input by its first character; YAML otherwise.
fn is_json(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => ext.eq_ignore_ascii_case("json"),
        None => text.trim_start().starts_with('{'),
    }
}

/// The import's diff, for people.
fn summary(body: &Value, dry_run: bool) -> String {
    let diff = body.get("diff").unwrap_or(&Value::Null);
    let names = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = String::new();
    if dry_run {
        out.push_str("dry run: nothing was written\n");
    }
    for what in ["flags", "segments"] {
        let d = diff.get(what);
        let mut parts = Vec::new();
        for change in ["added", "changed", "removed"] {
            let list = names(d.and_then(|d| d.get(change)));
            if list.is_empty() {
                parts.push(format!("0 {change}"));
            } else {
                parts.push(format!("{} {change} ({})", list.len(), list.join(", ")));
            }
        }
        let unchanged = d
            .and_then(|d| d.get("unchanged"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        parts.push(format!("{unchanged} unchanged"));
        out.push_str(&format!("{what}: {}\n", parts.join(", ")));
    }
    let envs = names(diff.get("environments").and_then(|e| e.get("added")));
    if !envs.is_empty() {
        out.push_str(&format!("environments added: {}\n", envs.join(", ")));
    }
    if let Some(revision) = body.get("revision").and_then(Value::as_u64) {
        out.push_str(&format!(
            "imported: the configuration is now at revision {revision}\n"
        ));
    }
    out
}
