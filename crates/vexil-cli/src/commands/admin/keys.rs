//! `vexil keys create|list|revoke`.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Body, Failure, ServerArgs, WriteArgs, cell, finish, print_json, table};

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
    /// Create a key and print its secret, which is shown this once only.
    Create {
        /// A name saying who or what uses the key.
        name: String,
        /// What the key may do.
        #[arg(long, value_enum)]
        kind: Kind,
        /// The environment of a server or client key.
        #[arg(long, value_name = "ENV")]
        env: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// List the live keys (never their secrets).
    List,
    /// Revoke a key at once.
    Revoke {
        /// The key's id (see `vexil keys list`).
        id: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// The kinds of key.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// Everything, in every environment.
    Admin,
    /// Evaluation and the sync API, in one environment.
    Server,
    /// Evaluation only, in one environment.
    Client,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Admin => "admin",
            Kind::Server => "server",
            Kind::Client => "client",
        }
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    finish(dispatch(args))
}

fn dispatch(args: &Args) -> Result<(), Failure> {
    let client = args.server.client()?;
    match &args.command {
        Command::Create {
            name,
            kind,
            env,
            write,
        } => {
            let mut body = json!({ "name": name, "kind": kind.as_str() });
            if let (Some(env), Some(o)) = (env, body.as_object_mut()) {
                o.insert("environment".into(), json!(env));
            }
            let answer = client.send(
                Method::POST,
                "/api/v1/keys",
                Some(Body::Json(body)),
                &write.headers(),
            )?;
            let k = &answer.body;
            if args.json {
                print_json(k);
            } else {
                let scope = match k.get("environment").and_then(Value::as_str) {
                    Some(env) => format!(" for {env}"),
                    None => String::new(),
                };
                println!(
                    "created {} key `{}` (id {}){scope}",
                    cell(k.get("kind")),
                    cell(k.get("name")),
                    cell(k.get("id"))
                );
                println!("secret, shown this once only:");
                println!("{}", cell(k.get("secret")));
            }
            Ok(())
        }
        Command::List => {
            let answer = client.get("/api/v1/keys")?;
            if args.json {
                print_json(&answer.body);
                return Ok(());
            }
            let keys = answer
                .body
                .get("keys")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        cell(k.get("id")),
                        cell(k.get("name")),
                        cell(k.get("kind")),
                        cell(k.get("environment")),
                        cell(k.get("created_at")),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["ID", "NAME", "KIND", "ENVIRONMENT", "CREATED"], &rows)
            );
            Ok(())
        }
        Command::Revoke { id, write } => {
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(Failure::Usage(format!(
                    "`{id}` is not a key id (see `vexil keys list`)"
                )));
            }
            client.send(
                Method::DELETE,
                &format!("/api/v1/keys/{id}"),
                None,
                &write.headers(),
            )?;
            if args.json {
                print_json(&json!({ "id": id, "revoked": true }));
            } else {
                println!("revoked key {id}");
            }
            Ok(())
        }
    }
}
