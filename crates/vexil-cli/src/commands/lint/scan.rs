//! Finding references: the parallel walk over the source tree, and what counts as a reference
//! in one file.
//!
//! A reference is a string literal whose whole text is a flag's key, an SDK accessor called
//! with a literal key (`client.bool_value("new_checkout", …)`), or a match of a custom pattern.
//! An SDK call or a custom pattern naming a key that is no flag is an unknown flag.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, bail};
use ignore::{DirEntry, ParallelVisitor, ParallelVisitorBuilder, WalkState};

use super::config::{Pattern, UnknownPolicy};
use super::lexer::{self, Kind, Lang, Lexed, Token};

/// Directories of code that is not the project's own: never read.
pub const VENDORED: [&str; 12] = [
    "vendor",
    "node_modules",
    "third_party",
    "third-party",
    "thirdparty",
    "bower_components",
    "jspm_packages",
    "Pods",
    "Carthage",
    "site-packages",
    "venv",
    "__pycache__",
];

/// Files larger than this are data or generated code, not code to lint.
const MAX_FILE_SIZE: u64 = 8 << 20;

/// How much of a file's start is looked at to tell binary files (a NUL byte) from text.
const BINARY_PROBE: usize = 8192;

/// The SDK accessors recognised out of the box, called as methods (`.NAME(`), the key as the
/// first argument (or named `flag_key` / `flagKey` / `key`; in Go, the second argument after a
/// `context.Context`).
pub const ACCESSORS: &[&str] = &[
    // vexil's SDKs.
    "is_enabled",
    "bool_value",
    "string_value",
    "number_value",
    "json_value",
    "details",
    // OpenFeature: JavaScript/TypeScript, Java, Kotlin.
    "getBooleanValue",
    "getStringValue",
    "getNumberValue",
    "getIntegerValue",
    "getDoubleValue",
    "getObjectValue",
    "getBooleanDetails",
    "getStringDetails",
    "getNumberDetails",
    "getIntegerDetails",
    "getDoubleDetails",
    "getObjectDetails",
    // OpenFeature: Python (and its async variants).
    "get_boolean_value",
    "get_string_value",
    "get_integer_value",
    "get_float_value",
    "get_object_value",
    "get_boolean_details",
    "get_string_details",
    "get_integer_details",
    "get_float_details",
    "get_object_details",
    "get_boolean_value_async",
    "get_string_value_async",
    "get_integer_value_async",
    "get_float_value_async",
    "get_object_value_async",
    "get_boolean_details_async",
    "get_string_details_async",
    "get_integer_details_async",
    "get_float_details_async",
    "get_object_details_async",
    // OpenFeature: Rust.
    "get_bool_value",
    "get_int_value",
    "get_struct_value",
    "get_bool_details",
    "get_int_details",
    "get_struct_details",
    // OpenFeature: Go.
    "BooleanValue",
    "StringValue",
    "IntValue",
    "FloatValue",
    "ObjectValue",
    "BooleanValueDetails",
    "StringValueDetails",
    "IntValueDetails",
    "FloatValueDetails",
    "ObjectValueDetails",
    // OpenFeature: .NET (and Go wrappers named the same way).
    "GetBooleanValue",
    "GetStringValue",
    "GetIntegerValue",
    "GetDoubleValue",
    "GetObjectValue",
    "GetBooleanDetails",
    "GetStringDetails",
    "GetIntegerDetails",
    "GetDoubleDetails",
    "GetObjectDetails",
    "GetBooleanValueAsync",
    "GetStringValueAsync",
    "GetIntegerValueAsync",
    "GetDoubleValueAsync",
    "GetObjectValueAsync",
    "GetBooleanDetailsAsync",
    "GetStringDetailsAsync",
    "GetIntegerDetailsAsync",
    "GetDoubleDetailsAsync",
    "GetObjectDetailsAsync",
    // OpenFeature: Ruby.
    "boolean_value",
    "integer_value",
    "float_value",
    "object_value",
    "fetch_boolean_value",
    "fetch_string_value",
    "fetch_number_value",
    "fetch_integer_value",
    "fetch_float_value",
    "fetch_object_value",
    "fetch_boolean_details",
    "fetch_string_details",
    "fetch_number_details",
    "fetch_integer_details",
    "fetch_float_details",
    "fetch_object_details",
];

/// Argument names that hold the flag key in calls with named arguments.
const KEY_PARAMS: [&[u8]; 5] = [b"flag_key", b"flagKey", b"FlagKey", b"key", b"flag"];

/// How a reference was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// A string literal equal to the key.
    Literal,
    /// An SDK accessor called with the key.
    Sdk,
    /// A custom pattern, by its index.
    Pattern(usize),
}

/// What a hit names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A known flag, by index.
    Flag(usize),
    /// A key that is no flag.
    Unknown(String),
}

/// One reference in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1, in characters.
    pub column: u32,
    /// What it names.
    pub target: Target,
    /// How it was found.
    pub via: Via,
}

/// The hits of one file.
#[derive(Debug)]
pub struct FileHits {
    /// The path, relative to the current directory where it can be, with `/` separators.
    pub path: String,
    /// Its hits, by position.
    pub hits: Vec<Hit>,
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Files with at least one hit, sorted by path.
    pub files: Vec<FileHits>,
    /// How many files were read and searched.
    pub files_scanned: usize,
    /// How many files were skipped as binary.
    pub binary_skipped: usize,
    /// Problems met on the way (unreadable files or directories), as messages.
    pub problems: Vec<String>,
}

/// Everything the search needs, shared by the walking threads.
pub struct Scanner {
    flags: HashMap<String, usize>,
    accessors: HashSet<Vec<u8>>,
    patterns: Vec<Pattern>,
}

/// A hit before its line and column are known.
struct RawHit {
    offset: usize,
    target: Target,
    via: Via,
}

impl Scanner {
    /// A scanner for the flags `keys` (their index is their position), the built-in accessors
    /// plus `extra_accessors`, and custom `patterns`.
    pub fn new<'k>(
        keys: impl IntoIterator<Item = &'k str>,
        extra_accessors: &[String],
        patterns: Vec<Pattern>,
    ) -> Scanner {
        Scanner {
            flags: keys
                .into_iter()
                .enumerate()
                .map(|(i, k)| (k.to_owned(), i))
                .collect(),
            accessors: ACCESSORS
                .iter()
                .map(|a| a.as_bytes().to_vec())
                .chain(extra_accessors.iter().map(|a| a.as_bytes().to_vec()))
                .collect(),
            patterns,
        }
    }

    /// Whether a file is read at all: a language lint knows, or a custom pattern's files.
    fn wants(&self, path: &str, lang: Option<Lang>) -> bool {
        lang.is_some()
            || self
                .patterns
                .iter()
                .any(|p| p.files.as_ref().is_some_and(|f| f.is_match(path)))
    }

    /// The hits in one file's contents.
    pub fn scan(
        &self,
        path: &str,
        lang: Option<Lang>,
        src: &[u8],
        lexed: &mut Lexed,
        scratch: &mut Vec<u8>,
    ) -> Vec<Hit> {
        let patterns: Vec<(usize, &Pattern)> = self
            .patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| match &p.files {
                None => lang.is_some(),
                Some(f) => f.is_match(path),
            })
            .collect();
        let mut raw = Vec::new();
        lexed.clear();
        if let Some(lang) = lang {
            lexer::lex(lang, src, !patterns.is_empty(), lexed);
            self.tokens(lang, src, &lexed.tokens, &mut raw);
        }
        if !patterns.is_empty() {
            // Patterns see the code with its comments blanked out (offsets unchanged).
            let code: &[u8] = if lexed.comments.is_empty() {
                src
            } else {
                scratch.clear();
                scratch.extend_from_slice(src);
                for &(start, end) in &lexed.comments {
                    for b in &mut scratch[start..end] {
                        if *b != b'\n' {
                            *b = b' ';
                        }
                    }
                }
                scratch
            };
            for (index, pattern) in patterns {
                for caps in pattern.regex.captures_iter(code) {
                    let Some(m) = caps.get(pattern.group) else {
                        continue;
                    };
                    let key = String::from_utf8_lossy(m.as_bytes());
                    let target = match self.flags.get(key.as_ref()) {
                        Some(&i) => Target::Flag(i),
                        None if pattern.unknown == UnknownPolicy::Error => {
                            Target::Unknown(key.into_owned())
                        }
                        None => continue,
                    };
                    raw.push(RawHit {
                        offset: m.start(),
                        target,
                        via: Via::Pattern(index),
                    });
                }
            }
        }
        positions(src, raw)
    }

    /// The hits among a file's tokens: SDK calls first (they claim their key's literal), then
    /// every other literal equal to a flag key.
    fn tokens(&self, lang: Lang, src: &[u8], toks: &[Token], out: &mut Vec<RawHit>) {
        let text = |t: &Token| &src[t.text.0 as usize..t.text.1 as usize];
        let mut claimed = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            if t.kind != Kind::Ident
                || i == 0
                || toks[i - 1].kind != Kind::Punct(b'.')
                || !self.accessors.contains(text(t))
            {
                continue;
            }
            let Some(k) = key_argument(lang, src, toks, i) else {
                continue;
            };
            claimed.push(k);
            let key = String::from_utf8_lossy(text(&toks[k]));
            let target = match self.flags.get(key.as_ref()) {
                Some(&f) => Target::Flag(f),
                None => Target::Unknown(key.into_owned()),
            };
            out.push(RawHit {
                offset: toks[k].at as usize,
                target,
                via: Via::Sdk,
            });
        }
        claimed.sort_unstable();
        for (i, t) in toks.iter().enumerate() {
            if t.kind != (Kind::Str { constant: true }) || claimed.binary_search(&i).is_ok() {
                continue;
            }
            let Ok(s) = std::str::from_utf8(text(t)) else {
                continue;
            };
            if let Some(&f) = self.flags.get(s) {
                out.push(RawHit {
                    offset: t.at as usize,
                    target: Target::Flag(f),
                    via: Via::Literal,
                });
            }
        }
    }
}

/// The index of the literal key of the SDK call whose accessor is `toks[i]`, if it has one.
fn key_argument(lang: Lang, src: &[u8], toks: &[Token], i: usize) -> Option<usize> {
    let punct = |k: usize, c: u8| toks.get(k).is_some_and(|t| t.kind == Kind::Punct(c));
    let mut k = i + 1;
    // Rust's turbofish `::<T>`, and generic arguments `<T>` elsewhere.
    if punct(k, b':') && punct(k + 1, b':') && punct(k + 2, b'<') {
        k += 2;
    }
    if punct(k, b'<') {
        let mut depth = 0usize;
        let limit = (k + 32).min(toks.len());
        let mut closed = false;
        while k < limit {
            if punct(k, b'<') {
                depth += 1;
            } else if punct(k, b'>') {
                depth -= 1;
                if depth == 0 {
                    closed = true;
                    k += 1;
                    break;
                }
            }
            k += 1;
        }
        if !closed {
            return None;
        }
    }
    let paren = punct(k, b'(');
    if !paren && lang != Lang::Ruby {
        return None;
    }
    let start = if paren { k + 1 } else { k };
    if !paren && toks.get(start).is_none_or(|t| t.newline_before) {
        return None;
    }
    // The first three arguments, as token ranges.
    let mut args: Vec<(usize, usize)> = Vec::with_capacity(3);
    let mut depth = 0usize;
    let mut arg_start = start;
    let mut j = start;
    while j < toks.len() && args.len() < 3 {
        let t = toks[j];
        if !paren && depth == 0 && j > start && t.newline_before {
            args.push((arg_start, j));
            break;
        }
        match t.kind {
            Kind::Punct(b'(' | b'[' | b'{') => depth += 1,
            Kind::Punct(b')' | b']' | b'}') => {
                if depth == 0 {
                    args.push((arg_start, j));
                    break;
                }
                depth -= 1;
            }
            Kind::Punct(b',') if depth == 0 => {
                args.push((arg_start, j));
                arg_start = j + 1;
            }
            _ => {}
        }
        j += 1;
    }
    if j == toks.len() && args.len() < 3 {
        args.push((arg_start, j));
    }
    let literal = |(s, e): (usize, usize)| -> Option<usize> {
        (e == s + 1 && matches!(toks[s].kind, Kind::Str { .. })).then_some(s)
    };
    // A named argument: `flag_key: "x"`, `flag_key="x"`, `flagKey: "x"`.
    for &(s, e) in &args {
        if e == s + 3
            && toks[s].kind == Kind::Ident
            && KEY_PARAMS.contains(&&src[toks[s].text.0 as usize..toks[s].text.1 as usize])
            && matches!(toks[s + 1].kind, Kind::Punct(b':' | b'='))
        {
            return constant(toks, literal((s + 2, e))?);
        }
    }
    let first = *args.first()?;
    if let Some(s) = literal(first) {
        return constant(toks, s);
    }
    // Go's OpenFeature client takes a context.Context first.
    if lang == Lang::Go
        && let Some(&second) = args.get(1)
    {
        return constant(toks, literal(second)?);
    }
    None
}

/// `Some(i)` when the literal `toks[i]` has a fixed text (not a template).
fn constant(toks: &[Token], i: usize) -> Option<usize> {
    (toks[i].kind == Kind::Str { constant: true }).then_some(i)
}

/// Turns byte offsets into lines and columns (characters, from 1), sorted, one hit per target
/// and line.
fn positions(src: &[u8], mut raw: Vec<RawHit>) -> Vec<Hit> {
    raw.sort_by_key(|h| h.offset);
    let mut hits: Vec<Hit> = Vec::with_capacity(raw.len());
    let mut line = 1u32;
    let mut line_start = 0usize;
    let mut scanned = 0usize;
    for h in raw {
        for (i, &b) in src[scanned..h.offset].iter().enumerate() {
            if b == b'\n' {
                line += 1;
                line_start = scanned + i + 1;
            }
        }
        scanned = h.offset;
        let column = src[line_start..h.offset]
            .iter()
            .filter(|&&b| (b & 0xc0) != 0x80)
            .count()
            + 1;
        let column = u32::try_from(column).unwrap_or(u32::MAX);
        // The same flag twice on a line (a pattern over an SDK call, say) is one reference.
        if hits
            .iter()
            .rev()
            .take_while(|p| p.line == line)
            .any(|p| p.target == h.target)
        {
            continue;
        }
        hits.push(Hit {
            line,
            column,
            target: h.target,
            via: h.via,
        });
    }
    hits
}

/// Where the walk starts, what it skips.
pub struct Walk<'a> {
    /// The roots (files or directories).
    pub roots: &'a [PathBuf],
    /// The current directory, for relative paths and exclusions.
    pub cwd: &'a Path,
    /// Gitignore-style globs to skip.
    pub exclude: &'a [String],
    /// Files never read (the flag file, the lint configuration), canonical.
    pub skip: &'a [PathBuf],
}

/// Walks the roots in parallel (respecting `.gitignore`, `.ignore` and hidden files as
/// ripgrep does, skipping vendored directories, binary and oversized files) and searches each
/// file.
pub fn walk(scanner: &Scanner, walk: &Walk<'_>) -> anyhow::Result<ScanResult> {
    let Some((first, rest)) = walk.roots.split_first() else {
        bail!("nothing to lint: no path given");
    };
    for root in walk.roots {
        if !root.exists() {
            bail!("{}: no such file or directory", root.display());
        }
    }
    let mut builder = ignore::WalkBuilder::new(first);
    for root in rest {
        builder.add(root);
    }
    let mut overrides = ignore::overrides::OverrideBuilder::new(walk.cwd);
    for glob in walk.exclude {
        overrides
            .add(&format!("!{glob}"))
            .with_context(|| format!("invalid exclude glob `{glob}`"))?;
    }
    builder
        .hidden(true)
        .parents(true)
        .git_ignore(true)
        .git_exclude(true)
        // The user's global excludes file would make results differ between machines.
        .git_global(false)
        // `.gitignore` applies even outside a Git checkout (an unpacked release, a CI cache).
        .require_git(false)
        .max_filesize(Some(MAX_FILE_SIZE))
        .overrides(overrides.build().context("invalid exclude globs")?)
        .filter_entry(|e| {
            e.depth() == 0
                || !e.file_type().is_some_and(|t| t.is_dir())
                || !e
                    .file_name()
                    .to_str()
                    .is_some_and(|n| VENDORED.contains(&n))
        });
    let shared = Mutex::new(ScanResult::default());
    let mut visitors = Builder {
        scanner,
        walk,
        shared: &shared,
    };
    builder.build_parallel().visit(&mut visitors);
    let mut result = shared
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    result.files.sort_by(|a, b| a.path.cmp(&b.path));
    result.problems.sort();
    Ok(result)
}

struct Builder<'s> {
    scanner: &'s Scanner,
    walk: &'s Walk<'s>,
    shared: &'s Mutex<ScanResult>,
}

impl<'s> ParallelVisitorBuilder<'s> for Builder<'s> {
    fn build(&mut self) -> Box<dyn ParallelVisitor + 's> {
        Box::new(Visitor {
            scanner: self.scanner,
            walk: self.walk,
            shared: self.shared,
            local: ScanResult::default(),
            lexed: Lexed::default(),
            scratch: Vec::new(),
        })
    }
}

/// One walking thread: its own buffers and results, merged when it is done.
struct Visitor<'s> {
    scanner: &'s Scanner,
    walk: &'s Walk<'s>,
    shared: &'s Mutex<ScanResult>,
    local: ScanResult,
    lexed: Lexed,
    scratch: Vec<u8>,
}

impl ParallelVisitor for Visitor<'_> {
    fn visit(&mut self, entry: Result<DirEntry, ignore::Error>) -> WalkState {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                self.local.problems.push(e.to_string());
                return WalkState::Continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            return WalkState::Continue;
        }
        let path = display_path(entry.path(), self.walk.cwd);
        let lang = Lang::of(entry.path());
        if !self.scanner.wants(&path, lang) || self.skipped(entry.path()) {
            return WalkState::Continue;
        }
        let src = match std::fs::read(entry.path()) {
            Ok(src) => src,
            Err(e) => {
                self.local.problems.push(format!("{path}: {e}"));
                return WalkState::Continue;
            }
        };
        if src[..src.len().min(BINARY_PROBE)].contains(&0) {
            self.local.binary_skipped += 1;
            return WalkState::Continue;
        }
        self.local.files_scanned += 1;
        let hits = self
            .scanner
            .scan(&path, lang, &src, &mut self.lexed, &mut self.scratch);
        if !hits.is_empty() {
            self.local.files.push(FileHits { path, hits });
        }
        WalkState::Continue
    }
}

impl Visitor<'_> {
    fn skipped(&self, path: &Path) -> bool {
        if self.walk.skip.is_empty() {
            return false;
        }
        // Compare names first: canonicalizing every file would cost a system call each.
        let name = path.file_name();
        if !self.walk.skip.iter().any(|s| s.file_name() == name) {
            return false;
        }
        path.canonicalize()
            .is_ok_and(|c| self.walk.skip.contains(&c))
    }
}

impl Drop for Visitor<'_> {
    fn drop(&mut self) {
        let local = std::mem::take(&mut self.local);
        let mut shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        shared.files.extend(local.files);
        shared.files_scanned += local.files_scanned;
        shared.binary_skipped += local.binary_skipped;
        shared.problems.extend(local.problems);
    }
}

/// A path as reports show it: relative to `cwd` when it is inside it, without a leading `./`,
/// with `/` separators.
pub fn display_path(path: &Path, cwd: &Path) -> String {
    let rel = if path.is_absolute() {
        path.strip_prefix(cwd).unwrap_or(path)
    } else {
        path
    };
    let mut out = String::new();
    for c in rel.components() {
        match c {
            std::path::Component::CurDir => continue,
            std::path::Component::RootDir => out.push('/'),
            other => {
                if !out.is_empty() && !out.ends_with('/') {
                    out.push('/');
                }
                out.push_str(&other.as_os_str().to_string_lossy());
            }
        }
    }
    if out.is_empty() { ".".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hits of `src` as `(line:column, flag key or ?unknown, via)`, with flags `a.b`,
    /// `new_checkout` and `dark-mode`.
    fn hits(lang: Lang, src: &str) -> Vec<String> {
        let keys = ["a.b", "new_checkout", "dark-mode"];
        let scanner = Scanner::new(keys, &[], Vec::new());
        let mut lexed = Lexed::default();
        let mut scratch = Vec::new();
        scanner
            .scan("x", Some(lang), src.as_bytes(), &mut lexed, &mut scratch)
            .into_iter()
            .map(|h| {
                let what = match h.target {
                    Target::Flag(i) => keys[i].to_owned(),
                    Target::Unknown(k) => format!("?{k}"),
                };
                format!("{}:{} {what} {:?}", h.line, h.column, h.via)
            })
            .collect()
    }

    #[test]
    fn sdk_calls() {
        assert_eq!(
            hits(
                Lang::Rust,
                "c.bool_value(\"new_checkout\", &ctx, false);\nc.is_enabled(\"nope\", &ctx)"
            ),
            ["1:14 new_checkout Sdk", "2:14 ?nope Sdk"]
        );
        assert_eq!(
            hits(Lang::Go, "c.BooleanValue(ctx, \"dark-mode\", false, ec)"),
            ["1:21 dark-mode Sdk"]
        );
        assert_eq!(
            hits(
                Lang::Ruby,
                "c.fetch_boolean_value(flag_key: \"a.b\", default_value: false)\nc.fetch_string_value flag_key: 'zz', default_value: 'x'"
            ),
            ["1:33 a.b Sdk", "2:32 ?zz Sdk"]
        );
        assert_eq!(
            hits(
                Lang::Python,
                "c.get_boolean_value(flag_key=\"new_checkout\", default_value=False)"
            ),
            ["1:30 new_checkout Sdk"]
        );
        assert_eq!(
            hits(
                Lang::JavaScript,
                "c.getObjectValue<T>('a.b', {}); c.getBooleanValue(`x${y}`, false); c.getBooleanValue(key, false)"
            ),
            ["1:21 a.b Sdk"]
        );
        assert_eq!(
            hits(
                Lang::Rust,
                "c.json_value::<T>(\"a.b\", &ctx, d); is_enabled(\"free\")"
            ),
            ["1:19 a.b Sdk"]
        );
    }

    #[test]
    fn literals_must_be_whole() {
        assert_eq!(
            hits(
                Lang::Python,
                "x = 'new_checkout is on'  # \"new_checkout\"\ny = \"new_checkout_v2\"\nz = 'dark-mode'"
            ),
            ["3:5 dark-mode Literal"]
        );
    }
}
