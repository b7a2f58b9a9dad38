//! The lint configuration file, `.vexil-lint.yaml` by default (its format is documented in
//! `docs/cli.md`): more SDK accessors, custom reference patterns, paths to exclude and the
//! expiry window.

use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;

/// The file looked for in the current directory when `--config` is not given.
pub const DEFAULT_FILE: &str = ".vexil-lint.yaml";

/// The configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintConfig {
    /// Warn about flags expiring within this many days (`--expiring-within` overrides it).
    #[serde(default)]
    pub expiring_within: Option<u32>,
    /// Gitignore-style globs of paths to skip, relative to the directory lint runs in.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// More SDK accessor method names, recognised like the built-in ones.
    #[serde(default)]
    pub accessors: Vec<String>,
    /// Custom reference patterns.
    #[serde(default)]
    pub patterns: Vec<PatternConfig>,
}

/// One custom pattern.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// A name, shown in the JSON output; by default the pattern's position in the list.
    #[serde(default)]
    pub name: Option<String>,
    /// A regular expression with one capture group (or a group named `key`) for the flag key.
    pub regex: String,
    /// Globs of file names or paths the pattern applies to (default: every file lint reads).
    #[serde(default)]
    pub files: Vec<String>,
    /// What a match whose key is not a flag is: `error` (an unknown flag, the default) or
    /// `ignore`.
    #[serde(default)]
    pub unknown: UnknownPolicy,
}

/// What to do with a custom pattern's match that names no flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownPolicy {
    /// Report an unknown-flag error, as for an SDK call.
    #[default]
    Error,
    /// Ignore it.
    Ignore,
}

/// A compiled custom pattern.
#[derive(Debug)]
pub struct Pattern {
    /// Its name.
    pub name: String,
    /// The expression.
    pub regex: regex::bytes::Regex,
    /// The capture group holding the key.
    pub group: usize,
    /// The files it applies to; `None` for all.
    pub files: Option<globset::GlobSet>,
    /// What an unknown key is.
    pub unknown: UnknownPolicy,
}

impl LintConfig {
    /// Reads `path`. With `explicit` false, a missing file is an empty configuration.
    pub fn load(path: &Path, explicit: bool) -> anyhow::Result<LintConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LintConfig::default());
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot read the lint configuration {}", path.display())
                });
            }
        };
        if text.trim().is_empty() {
            return Ok(LintConfig::default());
        }
        let node =
            vexil_engine::parse_text(&text).map_err(|d| anyhow!("{}:{d}", path.display()))?;
        serde_json::from_value(node.to_json())
            .with_context(|| format!("{} is not a valid lint configuration", path.display()))
    }

    /// Compiles the custom patterns.
    pub fn patterns(&self, path: &Path) -> anyhow::Result<Vec<Pattern>> {
        let mut out = Vec::new();
        for (i, p) in self.patterns.iter().enumerate() {
            let name = p.name.clone().unwrap_or_else(|| format!("patterns[{i}]"));
            let regex = regex::bytes::Regex::new(&p.regex).with_context(|| {
                format!(
                    "{}: pattern `{name}` is not a valid regular expression",
                    path.display()
                )
            })?;
            let group = match regex.capture_names().position(|n| n == Some("key")) {
                Some(g) => g,
                None if regex.captures_len() >= 2 => 1,
                None => bail!(
                    "{}: pattern `{name}` has no capture group; put the flag key in `(…)` or `(?P<key>…)`",
                    path.display()
                ),
            };
            let files = if p.files.is_empty() {
                None
            } else {
                let mut set = globset::GlobSetBuilder::new();
                for glob in &p.files {
                    set.add(
                        globset::GlobBuilder::new(glob)
                            .literal_separator(false)
                            .build()
                            .with_context(|| {
                                format!(
                                    "{}: pattern `{name}`: invalid glob `{glob}`",
                                    path.display()
                                )
                            })?,
                    );
                }
                Some(set.build()?)
            };
            out.push(Pattern {
                name,
                regex,
                group,
                files,
                unknown: p.unknown,
            });
        }
        Ok(out)
    }
}
