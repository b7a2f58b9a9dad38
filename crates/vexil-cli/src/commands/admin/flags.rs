//! `vexil flags list|get|set|delete|enable|disable|history|revert`.

use std::path::PathBuf;
use std::process::ExitCode;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{
    Body, Client, Failure, ServerArgs, WriteArgs, cell, check_name, finish, parse_document,
    print_json, read_input, table,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List every flag: kind, owner, expiry, version and whether it is enabled in each
    /// environment.
    List,
    /// Show one flag: its version, who changed it last, its state per environment and its
    /// definition.
    Get {
        /// The flag's key.
        #[arg(value_name = "KEY")]
        flag: String,
    },
    /// Create or replace a flag with a definition (YAML or JSON, `-` for standard input).
    Set {
        /// The flag's key.
        #[arg(value_name = "KEY")]
        flag: String,
        /// The definition: the flag's section of a flag file, as YAML or JSON.
        #[arg(value_name = "FILE|-")]
        file: PathBuf,
        /// Only write if the flag is still at this version (else exit 1: fetch it again).
        #[arg(long, value_name = "VERSION")]
        if_match: Option<u64>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Delete a flag (its history and audit trail are kept).
    Delete {
        /// The flag's key.
        #[arg(value_name = "KEY")]
        flag: String,
        /// Only delete if the flag is still at this version.
        #[arg(long, value_name = "VERSION")]
        if_match: Option<u64>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Turn a flag back on in one environment, with the targeting it had (the kill switch).
    Enable {
        /// The flag's key.
        #[arg(value_name = "KEY")]
        flag: String,
        /// The environment.
        #[arg(long, value_name = "ENV")]
        env: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Turn a flag off in one environment: it serves its `off` variant there (the kill
    /// switch). Its targeting is kept for `enable`.
    Disable {
        /// The flag's key.
        #[arg(value_name = "KEY")]
        flag: String,
        /// The environment.
        #[arg(long, value_name = "ENV")]
        env: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Every version of a flag, oldest first.
    History {
        /// The flag's key.
        #[arg(value_name = "KEY")]
        flag: String,
    },
    /// Write a new version of a flag equal to an old one.
    Revert {
        /// The flag's key.
        #[arg(value_name = "KEY")]
        flag: String,
        /// The version to go back to (see `vexil flags history`).
        #[arg(value_name = "VERSION")]
        to_version: u64,
        /// Only write if the flag is still at this version.
        #[arg(long, value_name = "VERSION")]
        if_match: Option<u64>,
        #[command(flatten)]
        write: WriteArgs,
    },
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    finish(dispatch(args))
}

fn dispatch(args: &Args) -> Result<(), Failure> {
    let client = args.server.client()?;
    let json = args.json;
    match &args.command {
        Command::List => list(&client, json),
        Command::Get { flag: key } => get(&client, key, json),
        Command::Set {
            flag: key,
            file,
            if_match,
            write,
        } => set(&client, key, file, *if_match, write, json),
        Command::Delete {
            flag: key,
            if_match,
            write,
        } => {
            check_name("flag key", key)?;
            let mut headers = write.headers();
            headers.extend(if_match.map(|v| ("If-Match", format!("\"{v}\""))));
            client.send(
                Method::DELETE,
                &format!("/api/v1/flags/{key}"),
                None,
                &headers,
            )?;
            if json {
                print_json(&json!({"key": key, "deleted": true}));
            } else {
                println!("deleted flag `{key}`");
            }
            Ok(())
        }
        Command::Enable {
            flag: key,
            env,
            write,
        } => switch(&client, key, env, true, write, json),
        Command::Disable {
            flag: key,
            env,
            write,
        } => switch(&client, key, env, false, write, json),
        Command::History { flag: key } => history(&client, key, json),
        Command::Revert {
            flag: key,
            to_version: version,
            if_match,
            write,
        } => {
            check_name("flag key", key)?;
            let mut headers = write.headers();
            headers.extend(if_match.map(|v| ("If-Match", format!("\"{v}\""))));
            let answer = client.send(
                Method::POST,
                &format!("/api/v1/flags/{key}/revert"),
                Some(Body::Json(json!({ "version": version }))),
                &headers,
            )?;
            if json {
                print_json(&answer.body);
            } else {
                println!(
                    "reverted flag `{key}` to version {version}; it is now version {}",
                    cell(answer.body.get("version"))
                );
            }
            Ok(())
        }
    }
}

/// The names of the server's environments, in order.
fn environments(client: &Client) -> Result<Vec<String>, Failure> {
    let answer = client.get("/api/v1/environments")?;
    Ok(answer
        .body
        .get("environments")
        .and_then(Value::as_array)
        .map(|envs| {
            envs.iter()
                .filter_map(|e| e.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Whether a flag definition is enabled in `env` (the kill switch is not thrown there).
fn enabled_in(definition: &Value, env: &str) -> bool {
    let Value::Object(def) = definition else {
        return true;
    };
    match def.get("environments").and_then(|e| e.get(env)) {
        // An object override replaces the targeting; `enabled` defaults to true there.
        Some(Value::Object(o)) => o.get("enabled") != Some(&Value::Bool(false)),
        Some(_) => true,
        None => def.get("enabled") != Some(&Value::Bool(false)),
    }
}

fn meta<'v>(definition: &'v Value, field: &str) -> Option<&'v Value> {
    definition.as_object().and_then(|d| d.get(field))
}

fn list(client: &Client, json: bool) -> Result<(), Failure> {
    let answer = client.get("/api/v1/flags")?;
    if json {
        print_json(&answer.body);
        return Ok(());
    }
    let envs = environments(client)?;
    let flags = answer
        .body
        .get("flags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if flags.is_empty() {
        println!("no flags");
        return Ok(());
    }
    let mut headers = vec!["KEY", "KIND", "OWNER", "EXPIRES", "VERSION"];
    headers.extend(envs.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = flags
        .iter()
        .map(|f| {
            let def = f.get("definition").unwrap_or(&Value::Null);
            let mut row = vec![
                cell(f.get("key")),
                meta(def, "kind")
                    .and_then(Value::as_str)
                    .unwrap_or("release")
                    .to_owned(),
                cell(meta(def, "owner")),
                cell(meta(def, "expires")),
                cell(f.get("version")),
            ];
            row.extend(envs.iter().map(|e| state(def, e).to_owned()));
            row
        })
        .collect();
    print!("{}", table(&headers, &rows));
    Ok(())
}

fn state(definition: &Value, env: &str) -> &'static str {
    if enabled_in(definition, env) {
        "enabled"
    } else {
        "disabled"
    }
}

fn get(client: &Client, key: &str, json: bool) -> Result<(), Failure> {
    check_name("flag key", key)?;
    let answer = client.get(&format!("/api/v1/flags/{key}"))?;
    if json {
        print_json(&answer.body);
        return Ok(());
    }
    let envs = environments(client)?;
    let r = &answer.body;
    let def = r.get("definition").unwrap_or(&Value::Null);
    println!(
        "{key}: version {}, updated {} by {}",
        cell(r.get("version")),
        cell(r.get("updated_at")),
        cell(r.get("updated_by"))
    );
    let states: Vec<String> = envs
        .iter()
        .map(|e| format!("{e} {}", state(def, e)))
        .collect();
    if !states.is_empty() {
        println!("{}", states.join(", "));
    }
    print_json(def);
    Ok(())
}

fn set(
    client: &Client,
    key: &str,
    file: &std::path::Path,
    if_match: Option<u64>,
    write: &WriteArgs,
    json: bool,
) -> Result<(), Failure> {
    check_name("flag key", key)?;
    let text = read_input(file)?;
    let definition = parse_document(file, &text)?;
    let mut headers = write.headers();
    headers.extend(if_match.map(|v| ("If-Match", format!("\"{v}\""))));
    let answer = client.send(
        Method::PUT,
        &format!("/api/v1/flags/{key}"),
        Some(Body::Json(definition)),
        &headers,
    )?;
    if json {
        print_json(&answer.body);
    } else {
        let verb = if answer.status == StatusCode::CREATED {
            "created"
        } else {
            "updated"
        };
        println!(
            "{verb} flag `{key}` (version {})",
            cell(answer.body.get("version"))
        );
    }
    Ok(())
}

fn switch(
    client: &Client,
    key: &str,
    env: &str,
    enable: bool,
    write: &WriteArgs,
    json: bool,
) -> Result<(), Failure> {
    check_name("flag key", key)?;
    check_name("environment", env)?;
    let action = if enable { "enable" } else { "disable" };
    let answer = client.send(
        Method::POST,
        &format!("/api/v1/flags/{key}/environments/{env}/{action}"),
        None,
        &write.headers(),
    )?;
    if json {
        print_json(&answer.body);
    } else {
        println!(
            "flag `{key}` {action}d in {env} (version {})",
            cell(answer.body.get("version"))
        );
    }
    Ok(())
}

fn history(client: &Client, key: &str, json: bool) -> Result<(), Failure> {
    check_name("flag key", key)?;
    let answer = client.get(&format!("/api/v1/flags/{key}/history"))?;
    if json {
        print_json(&answer.body);
        return Ok(());
    }
    let versions = answer
        .body
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut previous: Option<&Value> = None;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for v in &versions {
        let current = v.get("definition").filter(|d| !d.is_null());
        rows.push(vec![
            cell(v.get("version")),
            cell(v.get("updated_at")),
            cell(v.get("updated_by")),
            abbreviate(&change(previous, current), 100),
        ]);
        previous = current;
    }
    print!("{}", table(&["VERSION", "UPDATED", "BY", "CHANGE"], &rows));
    Ok(())
}

/// What changed from one version of a definition to the next: `created`, `deleted`, or each
/// changed field (environment overrides one by one) as `field: old → new`.
fn change(before: Option<&Value>, after: Option<&Value>) -> String {
    let empty = serde_json::Map::new();
    let as_map = |v| as_map(v, &empty);
    let (before, after) = match (before, after) {
        (None, None) => return "deleted".into(),
        (None, Some(_)) => return "created".into(),
        (Some(_), None) => return "deleted".into(),
        (Some(b), Some(a)) => (b, a),
    };
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return if before == after {
            "no change".into()
        } else {
            format!("{} → {}", short(Some(before)), short(Some(after)))
        };
    };
    let mut changes = Vec::new();
    let mut fields: Vec<&String> = b
        .keys()
        .chain(a.keys().filter(|k| !b.contains_key(*k)))
        .collect();
    fields.dedup();
    for field in fields {
        let (old, new) = (b.get(field), a.get(field));
        if old == new {
            continue;
        }
        if field == "environments"
            && let (Some(old), Some(new)) = (as_map(old), as_map(new))
        {
            for env in old
                .keys()
                .chain(new.keys().filter(|k| !old.contains_key(*k)))
            {
                if old.get(env) != new.get(env) {
                    changes.push(format!(
                        "environments.{env}: {} → {}",
                        short(old.get(env)),
                        short(new.get(env))
                    ));
                }
            }
            continue;
        }
        changes.push(format!("{field}: {} → {}", short(old), short(new)));
    }
    if changes.is_empty() {
        "no change".into()
    } else {
        changes.join("; ")
    }
}

/// An object's fields; an absent value as no fields; anything else as `None`.
fn as_map<'v>(
    v: Option<&'v Value>,
    empty: &'v serde_json::Map<String, Value>,
) -> Option<&'v serde_json::Map<String, Value>> {
    match v {
        None => Some(empty),
        Some(Value::Object(m)) => Some(m),
        Some(_) => None,
    }
}

/// A value in a change description: compact JSON, `-` when absent, cut at 40 characters.
fn short(v: Option<&Value>) -> String {
    match v {
        None => "-".into(),
        Some(v) => abbreviate(&v.to_string(), 40),
    }
}

/// At most `max` characters of `s`, with `…` when cut.
fn abbreviate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}
