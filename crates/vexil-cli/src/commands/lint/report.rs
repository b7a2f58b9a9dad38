//! What lint reports: the findings made from the references and the flags' metadata, and the
//! four ways of printing them (text, JSON, SARIF 2.1.0, GitHub workflow commands).

use std::fmt::Write as _;
use std::sync::Arc;

use jiff::civil::Date;
use serde::Serialize;
use serde::ser::SerializeSeq as _;
use serde_json::{Value, json};

use super::scan::{ScanResult, Target, Via};
use super::source::Flags;

/// The checks, in the order their rules are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// Code references a flag whose `expires` date has passed.
    ExpiredFlag,
    /// An SDK call (or a custom pattern) names a key that is no flag.
    UnknownFlag,
    /// No code references the flag.
    UnreferencedFlag,
    /// The flag expires within the window.
    ExpiringFlag,
    /// A temporary flag without `expires` or `owner`.
    MissingLifecycle,
}

/// Every rule, in SARIF's `rules[]` order.
pub const RULES: [Rule; 5] = [
    Rule::ExpiredFlag,
    Rule::UnknownFlag,
    Rule::UnreferencedFlag,
    Rule::ExpiringFlag,
    Rule::MissingLifecycle,
];

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Fails the run (exit 1).
    Error,
    /// Reported; the run still passes.
    Warning,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

impl Rule {
    /// The stable id (SARIF `ruleId`).
    pub fn id(self) -> &'static str {
        match self {
            Rule::ExpiredFlag => "expired-flag",
            Rule::UnknownFlag => "unknown-flag",
            Rule::UnreferencedFlag => "unreferenced-flag",
            Rule::ExpiringFlag => "expiring-flag",
            Rule::MissingLifecycle => "missing-lifecycle",
        }
    }

    /// How bad its findings are.
    pub fn level(self) -> Level {
        match self {
            Rule::ExpiredFlag | Rule::UnknownFlag => Level::Error,
            _ => Level::Warning,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Rule::ExpiredFlag => "ExpiredFlagReferenced",
            Rule::UnknownFlag => "UnknownFlagReferenced",
            Rule::UnreferencedFlag => "UnreferencedFlag",
            Rule::ExpiringFlag => "FlagExpiringSoon",
            Rule::MissingLifecycle => "TemporaryFlagWithoutLifecycle",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Rule::ExpiredFlag => "Code references a flag that has expired",
            Rule::UnknownFlag => "An SDK call names a flag that does not exist",
            Rule::UnreferencedFlag => "No code references the flag",
            Rule::ExpiringFlag => "The flag expires soon",
            Rule::MissingLifecycle => "A temporary flag has no expiry date or no owner",
        }
    }

    fn full(self) -> &'static str {
        match self {
            Rule::ExpiredFlag => {
                "The flag's `expires` date has passed and code still references it. Remove the code paths behind the flag, then the flag."
            }
            Rule::UnknownFlag => {
                "An SDK accessor (or a custom pattern) is called with a key that no flag has: a typo, or a flag that was deleted. The SDK serves the caller's default."
            }
            Rule::UnreferencedFlag => {
                "No string literal, SDK call or custom pattern in the searched code names the flag. If no other code uses it, delete it."
            }
            Rule::ExpiringFlag => {
                "The flag's `expires` date falls within the warning window. Plan its removal, or move the date with a reason."
            }
            Rule::MissingLifecycle => {
                "Release and experiment flags are temporary: each needs an `expires` date and an `owner` so that someone removes it. Permanent switches should be `kind: ops` or `kind: permission`."
            }
        }
    }
}

/// Where a finding is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    /// The file, relative, with `/` separators.
    pub file: Arc<str>,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1, in characters.
    pub column: u32,
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Its rule.
    pub rule: Rule,
    /// The flag (or unknown key) it is about.
    pub flag: Arc<str>,
    /// What is wrong, for people.
    pub message: String,
    /// Where; `None` for a flag from a server.
    pub loc: Option<Loc>,
}

/// One reference, for the JSON output.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The flag.
    pub flag: Arc<str>,
    /// Where.
    pub loc: Loc,
    /// How it was found.
    pub via: Via,
}

/// Everything a run reports.
#[derive(Debug)]
pub struct Report {
    /// The date the run judged expiry by.
    pub today: Date,
    /// The warning window, in days.
    pub expiring_within: u32,
    /// Where the flags came from.
    pub origin: String,
    /// How many flags there are.
    pub flags: usize,
    /// How many of them some code references.
    pub flags_referenced: usize,
    /// The findings, by file, line, column.
    pub findings: Vec<Finding>,
    /// Every reference to a known flag, by file, line, column.
    pub references: Vec<Reference>,
    /// How many files were searched.
    pub files_scanned: usize,
    /// How many binary files were skipped.
    pub binary_skipped: usize,
    /// The names of the custom patterns, by index.
    pub pattern_names: Vec<String>,
}

impl Report {
    /// Makes the findings.
    pub fn new(
        flags: &Flags,
        scan: &ScanResult,
        pattern_names: &[String],
        today: Date,
        expiring_within: u32,
    ) -> Report {
        let mut findings = Vec::new();
        let mut references = Vec::new();
        let mut referenced = vec![false; flags.list.len()];
        // Keys and paths are shared by every finding and reference that names them.
        let keys: Vec<Arc<str>> = flags
            .list
            .iter()
            .map(|f| Arc::from(f.key.as_str()))
            .collect();
        for file in &scan.files {
            let path: Arc<str> = Arc::from(file.path.as_str());
            for hit in &file.hits {
                let loc = Loc {
                    file: path.clone(),
                    line: hit.line,
                    column: hit.column,
                };
                match &hit.target {
                    Target::Flag(i) => {
                        let flag = &flags.list[*i];
                        referenced[*i] = true;
                        if let Some(expires) = flag.meta.expires
                            && today > expires
                        {
                            findings.push(Finding {
                                rule: Rule::ExpiredFlag,
                                flag: keys[*i].clone(),
                                message: format!(
                                    "flag `{}` expired on {expires} ({}) and is still referenced; remove the code behind it, then the flag",
                                    flag.key,
                                    days_ago(expires, today)
                                ),
                                loc: Some(loc.clone()),
                            });
                        }
                        references.push(Reference {
                            flag: keys[*i].clone(),
                            loc,
                            via: hit.via,
                        });
                    }
                    Target::Unknown(key) => {
                        let how = match hit.via {
                            Via::Pattern(p) => format!(
                                "pattern `{}`",
                                pattern_names.get(p).map_or("?", String::as_str)
                            ),
                            _ => "an SDK call".into(),
                        };
                        let mut message = format!(
                            "unknown flag `{}`: {how} names a key that no flag has",
                            printable(key)
                        );
                        if let Some(near) = nearest(key, flags) {
                            let _ = write!(message, " (did you mean `{near}`?)");
                        }
                        findings.push(Finding {
                            rule: Rule::UnknownFlag,
                            flag: Arc::from(key.as_str()),
                            message,
                            loc: Some(loc),
                        });
                    }
                }
            }
        }
        let flag_file: Option<Arc<str>> = flags.file.as_deref().map(Arc::from);
        for ((flag, &used), shared_key) in flags.list.iter().zip(&referenced).zip(&keys) {
            let loc = match (&flag_file, flag.pos) {
                (Some(file), Some((line, column))) => Some(Loc {
                    file: file.clone(),
                    line,
                    column,
                }),
                _ => None,
            };
            let key = &flag.key;
            let expired = flag.meta.expires.filter(|&e| today > e);
            if !used {
                let message = match expired {
                    Some(e) => format!(
                        "flag `{key}` expired on {e} and is referenced nowhere in the searched code: delete it"
                    ),
                    None => format!(
                        "flag `{key}` is referenced nowhere in the searched code; if nothing else uses it, delete it"
                    ),
                };
                findings.push(Finding {
                    rule: Rule::UnreferencedFlag,
                    flag: shared_key.clone(),
                    message,
                    loc: loc.clone(),
                });
            }
            if let Some(expires) = flag.meta.expires
                && today <= expires
                && (today + jiff::Span::new().days(i64::from(expiring_within))) >= expires
            {
                let when = match (expires - today).get_days() {
                    0 => "today".to_owned(),
                    1 => "tomorrow".to_owned(),
                    n => format!("in {n} days"),
                };
                findings.push(Finding {
                    rule: Rule::ExpiringFlag,
                    flag: shared_key.clone(),
                    message: format!("flag `{key}` expires on {expires}, {when}"),
                    loc: loc.clone(),
                });
            }
            if !flag.meta.kind.is_permanent() {
                let missing = match (flag.meta.expires.is_none(), flag.meta.owner.is_none()) {
                    (true, true) => Some("no `expires` date and no `owner`"),
                    (true, false) => Some("no `expires` date"),
                    (false, true) => Some("no `owner`"),
                    (false, false) => None,
                };
                if let Some(missing) = missing {
                    let kind = serde_json::to_value(flag.meta.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    findings.push(Finding {
                        rule: Rule::MissingLifecycle,
                        flag: shared_key.clone(),
                        message: format!(
                            "{kind} flag `{key}` has {missing}; temporary flags need both so someone removes them (or make it `kind: ops` / `kind: permission`)"
                        ),
                        loc,
                    });
                }
            }
        }
        // Findings with a place first, by file and position; those without (server flags)
        // last, in flag order.
        findings.sort_by(|a, b| match (&a.loc, &b.loc) {
            (Some(x), Some(y)) => x.cmp(y).then(a.rule.cmp(&b.rule)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        Report {
            today,
            expiring_within,
            origin: flags.origin.clone(),
            flags: flags.list.len(),
            flags_referenced: referenced.iter().filter(|&&r| r).count(),
            findings,
            references,
            files_scanned: scan.files_scanned,
            binary_skipped: scan.binary_skipped,
            pattern_names: pattern_names.to_vec(),
        }
    }

    /// How many findings are errors.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.rule.level() == Level::Error)
            .count()
    }

    fn warnings(&self) -> usize {
        self.findings.len() - self.errors()
    }

    /// One line: the counts.
    fn summary(&self) -> String {
        let errors = self.errors();
        let warnings = self.warnings();
        let head = if self.findings.is_empty() {
            "no problems".to_owned()
        } else {
            format!(
                "{} problem{} ({} error{}, {} warning{})",
                self.findings.len(),
                plural(self.findings.len()),
                errors,
                plural(errors),
                warnings,
                plural(warnings)
            )
        };
        let mut line = format!(
            "{head}: {} reference{} to {} of {} flag{} in {} file{} searched",
            self.references.len(),
            plural(self.references.len()),
            self.flags_referenced,
            self.flags,
            plural(self.flags),
            self.files_scanned,
            plural(self.files_scanned),
        );
        if self.binary_skipped > 0 {
            let _ = write!(
                line,
                " ({} binary file{} skipped)",
                self.binary_skipped,
                plural(self.binary_skipped)
            );
        }
        line
    }

    /// Grouped by file, one line a finding, then the counts.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut i = 0;
        while i < self.findings.len() {
            let file = self.findings[i].loc.as_ref().map(|l| &*l.file);
            let end = self.findings[i..]
                .iter()
                .position(|f| f.loc.as_ref().map(|l| &*l.file) != file)
                .map_or(self.findings.len(), |n| i + n);
            let group = &self.findings[i..end];
            match file {
                Some(file) => {
                    let _ = writeln!(out, "{file}");
                }
                None => {
                    let _ = writeln!(out, "flags from {}", self.origin);
                }
            }
            let places: Vec<String> = group
                .iter()
                .map(|f| match &f.loc {
                    Some(l) => format!("{}:{}", l.line, l.column),
                    None => "-".to_owned(),
                })
                .collect();
            let width = places.iter().map(String::len).max().unwrap_or(0);
            for (f, place) in group.iter().zip(&places) {
                let _ = writeln!(
                    out,
                    "  {place:<width$}  {:<7}  {}  [{}]",
                    f.rule.level().as_str(),
                    f.message,
                    f.rule.id()
                );
            }
            out.push('\n');
            i = end;
        }
        let _ = writeln!(out, "{}", self.summary());
        out
    }

    /// Writes the JSON document for scripts: summary, findings, every reference. Each item
    /// is made as it is written, so a report of half a million references stays small.
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> serde_json::Result<()> {
        #[derive(Serialize)]
        struct Doc<'r> {
            today: String,
            expiring_within_days: u32,
            flags_from: &'r str,
            summary: Value,
            findings: Each<'r, Finding>,
            references: Each<'r, Reference>,
        }
        let doc = Doc {
            today: self.today.to_string(),
            expiring_within_days: self.expiring_within,
            flags_from: &self.origin,
            summary: json!({
                "errors": self.errors(),
                "warnings": self.warnings(),
                "flags": self.flags,
                "flags_referenced": self.flags_referenced,
                "references": self.references.len(),
                "files_searched": self.files_scanned,
                "binary_files_skipped": self.binary_skipped,
            }),
            findings: Each(self, &self.findings, |_, f| {
                json!({
                    "rule": f.rule.id(),
                    "level": f.rule.level().as_str(),
                    "flag": &*f.flag,
                    "message": f.message,
                    "file": f.loc.as_ref().map(|l| &*l.file),
                    "line": f.loc.as_ref().map(|l| l.line),
                    "column": f.loc.as_ref().map(|l| l.column),
                })
            }),
            references: Each(self, &self.references, |report, r| {
                json!({
                    "flag": &*r.flag,
                    "file": &*r.loc.file,
                    "line": r.loc.line,
                    "column": r.loc.column,
                    "via": report.via(r.via),
                })
            }),
        };
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        out.write_all(b"\n").map_err(serde_json::Error::io)
    }

    fn via(&self, via: Via) -> String {
        match via {
            Via::Literal => "literal".into(),
            Via::Sdk => "sdk".into(),
            Via::Pattern(p) => format!(
                "pattern:{}",
                self.pattern_names.get(p).map_or("?", String::as_str)
            ),
        }
    }

    /// Writes a SARIF 2.1.0 log with one run.
    pub fn write_sarif(&self, out: &mut dyn std::io::Write) -> serde_json::Result<()> {
        #[derive(Serialize)]
        struct Log<'r> {
            #[serde(rename = "$schema")]
            schema: &'static str,
            version: &'static str,
            runs: [Run<'r>; 1],
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Run<'r> {
            tool: Value,
            column_kind: &'static str,
            results: Each<'r, Finding>,
        }
        let rules: Vec<Value> = RULES
            .iter()
            .map(|r| {
                json!({
                    "id": r.id(),
                    "name": r.name(),
                    "shortDescription": { "text": r.short() },
                    "fullDescription": { "text": r.full() },
                    "defaultConfiguration": { "level": r.level().as_str() },
                    "helpUri": "https://github.com/vexil-flags/vexil/blob/main/docs/flags-in-ci.md",
                })
            })
            .collect();
        let log = Log {
            schema: "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
            version: "2.1.0",
            runs: [Run {
                tool: json!({
                    "driver": {
                        "name": "vexil lint",
                        "informationUri": "https://github.com/vexil-flags/vexil",
                        "version": env!("CARGO_PKG_VERSION"),
                        "rules": rules,
                    },
                }),
                column_kind: "unicodeCodePoints",
                results: Each(self, &self.findings, |_, f| {
                    let index = RULES.iter().position(|r| *r == f.rule).unwrap_or(0);
                    let mut result = json!({
                        "ruleId": f.rule.id(),
                        "ruleIndex": index,
                        "level": f.rule.level().as_str(),
                        "message": { "text": f.message },
                        "properties": { "flag": &*f.flag },
                    });
                    if let (Some(l), Some(o)) = (&f.loc, result.as_object_mut()) {
                        o.insert(
                            "locations".into(),
                            json!([{
                                "physicalLocation": {
                                    "artifactLocation": {
                                        "uri": uri_path(&l.file),
                                        "uriBaseId": "%SRCROOT%",
                                    },
                                    "region": {
                                        "startLine": l.line,
                                        "startColumn": l.column,
                                    },
                                },
                            }]),
                        );
                    }
                    result
                }),
            }],
        };
        serde_json::to_writer_pretty(&mut *out, &log)?;
        out.write_all(b"\n").map_err(serde_json::Error::io)
    }

    /// GitHub Actions workflow commands (`::error file=…,line=…,col=…,title=…::message`), which
    /// GitHub shows as annotations on the pull request's diff; then the counts.
    pub fn github(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let mut props = Vec::new();
            if let Some(l) = &f.loc {
                props.push(format!("file={}", escape_property(&l.file)));
                props.push(format!("line={}", l.line));
                props.push(format!("col={}", l.column));
            }
            props.push(format!(
                "title={}",
                escape_property(&format!("vexil lint: {}", f.rule.id()))
            ));
            let _ = writeln!(
                out,
                "::{} {}::{}",
                f.rule.level().as_str(),
                props.join(","),
                escape_data(&f.message)
            );
        }
        let _ = writeln!(out, "vexil lint: {}", self.summary());
        out
    }
}

/// A list serialized one item at a time, each made by a function when it is written.
struct Each<'r, T>(&'r Report, &'r [T], fn(&Report, &T) -> Value);

impl<T> Serialize for Each<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.1.len()))?;
        for item in self.1 {
            seq.serialize_element(&(self.2)(self.0, item))?;
        }
        seq.end()
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn days_ago(then: Date, today: Date) -> String {
    match (today - then).get_days() {
        1 => "yesterday".to_owned(),
        n => format!("{n} days ago"),
    }
}

/// A key as shown in a message: control characters escaped, long keys cut.
fn printable(key: &str) -> String {
    let mut out: String = key.chars().take(128).flat_map(char::escape_debug).collect();
    if key.chars().count() > 128 {
        out.push('…');
    }
    out
}

/// The flag key closest to `key`, if one is close enough to be a likely typo.
fn nearest<'f>(key: &str, flags: &'f Flags) -> Option<&'f str> {
    if key.len() > 128 {
        return None;
    }
    let limit = (key.chars().count() / 4).clamp(1, 3);
    flags
        .list
        .iter()
        .filter(|f| f.key.len().abs_diff(key.len()) <= limit)
        .map(|f| (distance(key, &f.key), f.key.as_str()))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A relative path as a URI reference: unreserved characters and `/` kept, the rest
/// percent-encoded.
fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The escaping of a workflow command's message.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The escaping of a workflow command's property value.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance() {
        assert_eq!(distance("new_checkout", "new_checkout"), 0);
        assert_eq!(distance("new_chekout", "new_checkout"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_data("50%\nx"), "50%25%0Ax");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
        assert_eq!(uri_path("src/my file.rs"), "src/my%20file.rs");
    }
}
