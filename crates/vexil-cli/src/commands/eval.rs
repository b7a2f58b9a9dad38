//! `vexil eval FILE FLAG`: evaluate one flag locally and print one JSON object.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};
use vexil_engine::{Context, Evaluation};

use super::{format_diagnostic, load_file};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The flag file (YAML 1.2 or JSON).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The flag's key.
    #[arg(value_name = "FLAG")]
    flag: String,
    /// The environment (default: the file's first environment, or `default`).
    #[arg(long, env = "VEXIL_ENV")]
    env: Option<String>,
    /// The evaluation time, RFC 3339 (default: now). Sets the `$now` attribute.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// The context as a JSON object, e.g. '{"targetingKey": "user-1", "plan": "pro"}'.
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
    /// Extra string attributes, `KEY=VALUE`; they override `--context`.
    #[arg(value_name = "KEY=VALUE")]
    attributes: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut ctx = match &args.context {
        None => Context::new(),
        Some(text) => {
            let value: Value = serde_json::from_str(text).context("--context is not valid JSON")?;
            Context::try_from(value).map_err(|_| anyhow!("--context must be a JSON object"))?
        }
    };
    for pair in &args.attributes {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("attribute `{pair}` is not KEY=VALUE");
        };
        if key.is_empty() {
            bail!("attribute `{pair}` has an empty key");
        }
        ctx.set(key, value);
    }
    let now = match &args.now {
        None => vexil_engine::jiff::Timestamp::now(),
        Some(text) => text.parse().with_context(|| {
            format!("--now `{text}` is not an RFC 3339 timestamp like 2026-12-01T09:00:00Z")
        })?,
    };

    let config = match load_file(&args.file)? {
        Ok(config) => config,
        Err(e) => {
            for d in &e.diagnostics {
                eprintln!("{}", format_diagnostic(&args.file, d));
            }
            eprintln!("{}: {e}", args.file.display());
            return Ok(ExitCode::from(crate::EXIT_FINDING));
        }
    };
    let env = match &args.env {
        None => config.default_env(),
        Some(name) => config.env(name).ok_or_else(|| {
            let known: Vec<&str> = config.environments().collect();
            anyhow!(
                "unknown environment `{name}`; {} has: {}",
                args.file.display(),
                known.join(", ")
            )
        })?,
    };
    let ev = env.evaluate(&args.flag, &ctx, now);
    println!("{}", render(&args.flag, &ev));
    Ok(if ev.error.is_some() {
        ExitCode::from(crate::EXIT_FINDING)
    } else {
        ExitCode::SUCCESS
    })
}

/// The result object of section 3: `flag`, `value`, `variant`, `reason`, `rule`, and on error
/// `error_code` and `error_message`.
pub fn render(flag: &str, ev: &Evaluation<'_>) -> Value {
    let mut out = json!({
        "flag": flag,
        "value": ev.value.cloned().unwrap_or(Value::Null),
        "variant": ev.variant,
        "reason": ev.reason,
        "rule": ev.rule.map(|r| json!({"index": r.index, "name": r.name})),
    });
    if let (Some(e), Some(obj)) = (ev.error, out.as_object_mut()) {
        obj.insert("error_code".into(), json!(e.code()));
        obj.insert("error_message".into(), json!(e.to_string()));
    }
    out
}
