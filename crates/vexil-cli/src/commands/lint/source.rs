//! Where the flags come from: a flag file (with each flag's position in it, so findings about a
//! flag point at its definition) or a server.

use std::path::Path;

use serde_json::json;
use vexil_engine::{Config, FlagMeta, NodeValue};

use crate::commands::admin::{Client, Failure};

/// One flag as lint sees it.
#[derive(Debug)]
pub struct FlagEntry {
    /// Its key.
    pub key: String,
    /// Its metadata.
    pub meta: FlagMeta,
    /// Where its key is in the flag file: line and column.
    pub pos: Option<(u32, u32)>,
}

/// The flags, and where they came from.
#[derive(Debug)]
pub struct Flags {
    /// Every flag, in document order.
    pub list: Vec<FlagEntry>,
    /// The flag file as reports name it, or `None` for a server.
    pub file: Option<String>,
    /// A description of the source: the file, or the server and the route used.
    pub origin: String,
}

/// Why the flags could not be loaded.
pub enum LoadFailure {
    /// The flag file is invalid: its problems, `FILE:LINE:COLUMN: PATH: MESSAGE` (exit 1).
    Invalid(Vec<String>),
    /// Anything else (exit 2).
    Other(String),
}

impl From<Failure> for LoadFailure {
    fn from(f: Failure) -> Self {
        LoadFailure::Other(
            f.to_string()
                .trim_end()
                .trim_start_matches("error: ")
                .to_owned(),
        )
    }
}

/// Loads a flag file; `shown` is the path as reports show it.
pub fn from_file(path: &Path, shown: &str) -> Result<Flags, LoadFailure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadFailure::Other(format!("cannot read flag file {shown}: {e}")))?;
    let config = Config::from_text(&text).map_err(|e| {
        LoadFailure::Invalid(
            e.diagnostics
                .iter()
                .map(|d| format!("{shown}:{d}"))
                .collect(),
        )
    })?;
    // The document parsed once already; parsing again for positions keeps the engine's API as
    // it is (its compiled form does not remember where a flag was written).
    let mut positions = std::collections::HashMap::new();
    if let Ok(root) = vexil_engine::parse_text(&text)
        && let NodeValue::Map(entries) = &root.value
        && let Some((_, _, flags)) = entries.iter().find(|(k, _, _)| k == "flags")
        && let NodeValue::Map(flags) = &flags.value
    {
        for (key, pos, _) in flags {
            if let Some(p) = pos {
                positions.insert(
                    key.clone(),
                    (
                        u32::try_from(p.line).unwrap_or(u32::MAX),
                        u32::try_from(p.column).unwrap_or(u32::MAX),
                    ),
                );
            }
        }
    }
    Ok(Flags {
        list: entries(&config, |key| positions.get(key).copied()),
        file: Some(shown.to_owned()),
        origin: shown.to_owned(),
    })
}

/// Loads the flags from a server: the whole configuration with an admin key
/// (`GET /api/v1/export`), else its key's environment (`GET /sdk/v1/flags`, a server key).
pub fn from_server(client: &Client) -> Result<Flags, LoadFailure> {
    let (document, route) = match client.get("/api/v1/export") {
        Ok(answer) => (answer.body, "/api/v1/export"),
        Err(Failure::Server(e)) if e.status == reqwest::StatusCode::FORBIDDEN => {
            let answer = client.get("/sdk/v1/flags")?;
            let body = answer.body;
            (
                json!({
                    "flags": body.get("flags").cloned().unwrap_or(json!({})),
                    "segments": body.get("segments").cloned().unwrap_or(json!({})),
                }),
                "/sdk/v1/flags",
            )
        }
        Err(other) => return Err(other.into()),
    };
    if !document.is_object() {
        return Err(LoadFailure::Other(format!(
            "{}{route} did not answer with a flag document",
            client.base()
        )));
    }
    let config = Config::from_json(&document).map_err(|e| {
        LoadFailure::Other(format!(
            "the flags of {}{route} do not load: {}",
            client.base(),
            e.diagnostics
                .first()
                .map(ToString::to_string)
                .unwrap_or_default()
        ))
    })?;
    Ok(Flags {
        list: entries(&config, |_| None),
        file: None,
        origin: format!("{}{route}", client.base()),
    })
}

fn entries(config: &Config, pos: impl Fn(&str) -> Option<(u32, u32)>) -> Vec<FlagEntry> {
    config
        .flags()
        .map(|f| FlagEntry {
            key: f.key().to_owned(),
            meta: f.meta().clone(),
            pos: pos(f.key()),
        })
        .collect()
}
