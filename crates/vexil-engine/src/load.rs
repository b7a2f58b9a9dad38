//! Loading: a [`Node`] tree is validated and compiled into a [`Config`] in one pass that collects
//! every problem (PRODUCT.md section 1.7). A document with any problem yields no `Config`.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use crate::diag::{Diagnostic, LoadError, Pos};
use crate::model::*;
use crate::node::{Node, NodeValue};
use crate::semver::Version;

type Entries = [(String, Option<Pos>, Node)];

/// The longest chain of prerequisites (or of segments naming segments) a document may have.
/// Evaluation recurses along such chains, so they are bounded.
pub const MAX_CHAIN: usize = 32;

/// The largest regular expression, in bytes of compiled program, a condition may use.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

const FLAG_FIELDS: &[&str] = &[
    "description",
    "kind",
    "owner",
    "tags",
    "created",
    "expires",
    "ticket",
    "link",
    "variants",
    "off",
    "environments",
    "enabled",
    "prerequisites",
    "targets",
    "rules",
    "serve",
    "rollout",
    "bucket_by",
    "salt",
];
const TARGETING_FIELDS: &[&str] = &[
    "enabled",
    "prerequisites",
    "targets",
    "rules",
    "serve",
    "rollout",
    "bucket_by",
    "salt",
];

/// Whether `s` is a valid flag key, segment name or environment name:
/// `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_key(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn child(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'$');
    match (path.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", serde_json::Value::String(key.to_owned())),
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// What pass one learns about each flag, needed to resolve references in pass two.
struct FlagHead<'a> {
    key: String,
    pos: Option<Pos>,
    meta: FlagMeta,
    variants: Vec<(Box<str>, Value)>,
    value_type: ValueType,
    off: usize,
    /// The flag's mapping (None for the `true`/`false` shorthand).
    body: Option<&'a Entries>,
    shorthand: Option<bool>,
    /// Whether the head itself was valid (variants and `off` resolved).
    ok: bool,
}

struct Loader<'a> {
    errors: Vec<Diagnostic>,
    envs: Vec<Box<str>>,
    declares_envs: bool,
    heads: Vec<FlagHead<'a>>,
    flag_index: FastMap<Box<str>, usize>,
    segment_index: FastMap<Box<str>, usize>,
    _root: &'a Node,
}

impl Config {
    /// Loads a document from YAML 1.2 or JSON text. Problems carry line and column.
    pub fn from_text(text: &str) -> Result<Config, LoadError> {
        let node = crate::node::parse_text(text).map_err(|d| LoadError {
            diagnostics: vec![d],
        })?;
        Config::from_node(&node)
    }

    /// Loads a document already parsed as JSON (an API body). Problems carry paths only.
    pub fn from_json(value: &Value) -> Result<Config, LoadError> {
        let node = Node::from_json(value).map_err(|d| LoadError {
            diagnostics: vec![d],
        })?;
        Config::from_node(&node)
    }

    /// Loads a document from a node tree.
    pub fn from_node(root: &Node) -> Result<Config, LoadError> {
        let mut l = Loader {
            errors: Vec::new(),
            envs: Vec::new(),
            declares_envs: false,
            heads: Vec::new(),
            flag_index: FastMap::default(),
            segment_index: FastMap::default(),
            _root: root,
        };
        let config = l.load(root);
        if l.errors.is_empty()
            && let Some(config) = config
        {
            Ok(config)
        } else {
            let mut diagnostics = l.errors;
            diagnostics.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
            diagnostics.dedup();
            Err(LoadError { diagnostics })
        }
    }
}

impl<'a> Loader<'a> {
    fn err(&mut self, path: &str, pos: Option<Pos>, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(path, pos, message.into()));
    }

    fn expect_map<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<&'n Entries> {
        match &node.value {
            NodeValue::Map(entries) => Some(entries),
            _ => {
                self.err(
                    path,
                    node.pos,
                    format!("expected {what} (a mapping), found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn expect_seq<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            NodeValue::Seq(items) => Some(items),
            _ => {
                self.err(
                    path,
                    node.pos,
                    format!("expected {what} (a list), found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn expect_str<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<&'n str> {
        match &node.value {
            NodeValue::String(s) => Some(s),
            _ => {
                self.err(
                    path,
                    node.pos,
                    format!("expected {what} (a string), found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn expect_bool(&mut self, node: &Node, path: &str, what: &str) -> Option<bool> {
        match &node.value {
            NodeValue::Bool(b) => Some(*b),
            _ => {
                self.err(
                    path,
                    node.pos,
                    format!(
                        "expected {what} (true or false), found {}",
                        node.type_name()
                    ),
                );
                None
            }
        }
    }

    /// Reports every field of `entries` not in `allowed`.
    fn check_fields(&mut self, entries: &Entries, path: &str, allowed: &[&str], hint: &str) {
        for (key, pos, _) in entries {
            if !allowed.contains(&key.as_str()) {
                self.err(
                    &child(path, key),
                    *pos,
                    format!(
                        "unknown field `{key}`{hint}{}; expected one of: {}",
                        did_you_mean(key, allowed.iter().copied()),
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn key_name(&mut self, name: &str, path: &str, pos: Option<Pos>, what: &str) -> bool {
        if is_valid_key(name) {
            true
        } else {
            self.err(
                path,
                pos,
                format!(
                    "invalid {what} `{name}`: use 1 to 128 letters, digits, `_`, `.` or `-`, starting with a letter or digit"
                ),
            );
            false
        }
    }

    fn load(&mut self, root: &'a Node) -> Option<Config> {
        let entries = self.expect_map(root, "", "a flag document")?;
        self.check_fields(entries, "", &["environments", "segments", "flags"], "");
        let get = |name: &str| entries.iter().find(|(k, _, _)| k == name);

        // Environments.
        if let Some((_, _, node)) = get("environments") {
            self.declares_envs = true;
            if let Some(items) =
                self.expect_seq(node, "environments", "a list of environment names")
            {
                if items.is_empty() {
                    self.err(
                        "environments",
                        node.pos,
                        "list at least one environment, or leave `environments` out",
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    let path = index("environments", i);
                    if let Some(name) = self.expect_str(item, &path, "an environment name")
                        && self.key_name(name, &path, item.pos, "environment name")
                    {
                        if self.envs.iter().any(|e| **e == *name) {
                            self.err(
                                &path,
                                item.pos,
                                format!("environment `{name}` is listed twice"),
                            );
                        } else {
                            self.envs.push(name.into());
                        }
                    }
                }
            }
        }
        if !self.declares_envs || self.envs.is_empty() {
            self.envs = vec![DEFAULT_ENVIRONMENT.into()];
        }

        // Pass one: names of segments, heads of flags.
        let segment_entries = match get("segments") {
            Some((_, _, node)) => self.expect_map(node, "segments", "segments by name"),
            None => None,
        };
        if let Some(segs) = segment_entries {
            for (i, (name, pos, _)) in segs.iter().enumerate() {
                let path = child("segments", name);
                self.key_name(name, &path, *pos, "segment name");
                self.segment_index.insert(name.as_str().into(), i);
            }
        }
        let flag_entries = match get("flags") {
            Some((_, _, node)) => self.expect_map(node, "flags", "flags by key"),
            None => {
                self.err(
                    "",
                    root.pos,
                    "missing field `flags`: a flag document lists its flags under `flags:`",
                );
                None
            }
        };
        for (key, pos, node) in flag_entries.unwrap_or_default() {
            let path = child("flags", key);
            self.key_name(key, &path, *pos, "flag key");
            let head = self.flag_head(key, *pos, node, &path);
            self.flag_index
                .insert(key.as_str().into(), self.heads.len());
            self.heads.push(head);
        }

        // Pass two: segments and targeting.
        let mut segments = Vec::new();
        for (name, _, node) in segment_entries.unwrap_or_default() {
            segments.push(self.segment(node, &child("segments", name)));
        }
        let mut flags = Vec::with_capacity(self.heads.len());
        for i in 0..self.heads.len() {
            flags.push(self.flag_targeting(i));
        }
        // Where each segment's conditions are written, to point a segment cycle at them.
        let segment_sites: Vec<(String, Option<Pos>)> = segment_entries
            .unwrap_or_default()
            .iter()
            .map(|(name, pos, node)| {
                let path = child("segments", name);
                match &node.value {
                    NodeValue::Map(entries) => match entries.iter().find(|(k, _, _)| k == "when") {
                        Some((_, wpos, _)) => (child(&path, "when"), *wpos),
                        None => (path, *pos),
                    },
                    _ => (path, *pos),
                }
            })
            .collect();
        self.check_cycles(&flags, &segments, &segment_sites);

        if !self.errors.is_empty() {
            return None;
        }
        let heads = std::mem::take(&mut self.heads);
        let flags: Vec<Flag> = heads
            .into_iter()
            .zip(flags)
            .map(|(h, targeting)| Flag {
                overridden: overridden(h.body, &self.envs),
                key: h.key.into(),
                meta: h.meta,
                variants: h.variants,
                value_type: h.value_type,
                off: h.off,
                targeting,
            })
            .collect();
        Some(Config {
            environments: std::mem::take(&mut self.envs),
            declares_environments: self.declares_envs,
            index: std::mem::take(&mut self.flag_index),
            flags,
            segments,
            segment_index: std::mem::take(&mut self.segment_index),
        })
    }

    fn flag_head(
        &mut self,
        key: &str,
        pos: Option<Pos>,
        node: &'a Node,
        path: &str,
    ) -> FlagHead<'a> {
        let boolean_variants = || {
            vec![
                (Box::<str>::from("on"), Value::Bool(true)),
                (Box::<str>::from("off"), Value::Bool(false)),
            ]
        };
        let mut head = FlagHead {
            key: key.to_owned(),
            pos,
            meta: FlagMeta::default(),
            variants: boolean_variants(),
            value_type: ValueType::Boolean,
            off: 1,
            body: None,
            shorthand: None,
            ok: true,
        };
        let entries = match &node.value {
            NodeValue::Bool(b) => {
                head.shorthand = Some(*b);
                return head;
            }
            NodeValue::Map(entries) => entries,
            _ => {
                self.err(
                    path,
                    node.pos.or(pos),
                    format!(
                        "expected a flag (a mapping, or `true`/`false` for a simple switch), found {}",
                        node.type_name()
                    ),
                );
                head.ok = false;
                return head;
            }
        };
        self.check_fields(entries, path, FLAG_FIELDS, " in flag");
        let field = |name: &str| entries.iter().find(|(k, _, _)| k == name);

        // Metadata.
        let text = |l: &mut Self, name: &str| -> Option<String> {
            let (_, _, n) = field(name)?;
            l.expect_str(n, &child(path, name), "text")
                .map(str::to_owned)
        };
        head.meta.description = text(self, "description");
        head.meta.owner = text(self, "owner");
        head.meta.ticket = text(self, "ticket");
        head.meta.link = text(self, "link");
        if let Some((_, _, n)) = field("kind") {
            let p = child(path, "kind");
            if let Some(s) = self.expect_str(n, &p, "a flag kind") {
                match FlagKind::parse(s) {
                    Some(k) => head.meta.kind = k,
                    None => self.err(
                        &p,
                        n.pos,
                        format!(
                            "unknown kind `{s}`; expected release, experiment, ops or permission"
                        ),
                    ),
                }
            }
        }
        if let Some((_, _, n)) = field("tags") {
            let p = child(path, "tags");
            if let Some(items) = self.expect_seq(n, &p, "tags") {
                for (i, item) in items.iter().enumerate() {
                    if let Some(s) = self.expect_str(item, &index(&p, i), "a tag") {
                        head.meta.tags.push(s.to_owned());
                    }
                }
            }
        }
        for (name, slot) in [
            ("created", &mut head.meta.created),
            ("expires", &mut head.meta.expires),
        ] {
            if let Some((_, _, n)) = field(name) {
                let p = child(path, name);
                if let Some(s) = self.expect_str(n, &p, "a date YYYY-MM-DD") {
                    match parse_date(s) {
                        Some(d) => *slot = Some(d),
                        None => self.err(
                            &p,
                            n.pos,
                            format!("invalid date `{s}`; expected YYYY-MM-DD"),
                        ),
                    }
                }
            }
        }

        // Variants.
        if let Some((_, vpos, n)) = field("variants") {
            let p = child(path, "variants");
            match self.expect_map(n, &p, "variants by name") {
                Some([]) => {
                    self.err(&p, n.pos.or(*vpos), "a flag needs at least one variant");
                    head.ok = false;
                }
                Some(vs) => {
                    let mut variants = Vec::new();
                    let mut first_type: Option<(ValueType, &str)> = None;
                    for (name, npos, vnode) in vs {
                        let vp = child(&p, name);
                        if !self.key_name(name, &vp, *npos, "variant name") {
                            head.ok = false;
                        }
                        let value = vnode.to_json();
                        match ValueType::of(&value) {
                            None => {
                                self.err(
                                    &vp,
                                    vnode.pos.or(*npos),
                                    format!(
                                        "a variant's value must be a boolean, string, number or object, found {}",
                                        vnode.type_name()
                                    ),
                                );
                            }
                            Some(t) => match first_type {
                                None => first_type = Some((t, name)),
                                Some((ft, fname)) if ft != t => {
                                    self.err(
                                        &vp,
                                        vnode.pos.or(*npos),
                                        format!(
                                            "values of mixed types: `{name}` is {} {}, but `{fname}` is {} {}; all variants of a flag have one type",
                                            article(t), t.as_str(), article(ft), ft.as_str()
                                        ),
                                    );
                                }
                                Some(_) => {}
                            },
                        }
                        variants.push((Box::<str>::from(name.as_str()), value));
                    }
                    head.value_type = first_type.map_or(ValueType::Boolean, |(t, _)| t);
                    head.variants = variants;
                }
                None => head.ok = false,
            }
        }

        // The off variant.
        let off_name = match field("off") {
            Some((_, _, n)) => self
                .expect_str(n, &child(path, "off"), "a variant name")
                .map(|s| (s.to_owned(), n.pos)),
            None => None,
        };
        match off_name {
            Some((name, npos)) => match head.variants.iter().position(|(v, _)| **v == *name) {
                Some(i) => head.off = i,
                None => {
                    if head.ok {
                        self.err(
                            &child(path, "off"),
                            npos,
                            format!(
                                "unknown variant `{name}`; {}",
                                known_variants(&head.variants)
                            ),
                        );
                    }
                    head.off = 0;
                }
            },
            None => {
                if field("off").is_none() {
                    match head.variants.iter().position(|(v, _)| &**v == "off") {
                        Some(i) if head.value_type == ValueType::Boolean => head.off = i,
                        _ => {
                            if head.ok {
                                self.err(
                                    path,
                                    pos,
                                    format!(
                                        "missing field `off`: name the variant served when the flag is disabled; {}",
                                        known_variants(&head.variants)
                                    ),
                                );
                            }
                            head.off = 0;
                        }
                    }
                } else {
                    head.off = 0;
                }
            }
        }
        head.body = Some(entries);
        head
    }

    fn flag_targeting(&mut self, fi: usize) -> Vec<Arc<Targeting>> {
        let key = self.heads[fi].key.clone();
        let path = child("flags", &key);
        let env_count = self.envs.len();
        let placeholder = || {
            Arc::new(Targeting {
                enabled: true,
                prerequisites: Vec::new(),
                targets: FastMap::default(),
                rules: Vec::new(),
                default: Serve::Variant(0),
                is_static: true,
            })
        };
        if let Some(on) = self.heads[fi].shorthand {
            let h = &self.heads[fi];
            let v = if on { 0 } else { h.off };
            let t = Arc::new(Targeting {
                enabled: true,
                prerequisites: Vec::new(),
                targets: FastMap::default(),
                rules: Vec::new(),
                default: Serve::Variant(v),
                is_static: true,
            });
            return vec![t; env_count];
        }
        let Some(body) = self.heads[fi].body.take() else {
            return vec![placeholder(); env_count];
        };
        if !self.heads[fi].ok {
            // Unknown variants would make every reference an error; the head's problem is enough.
            return vec![placeholder(); env_count];
        }
        let entries = body;
        let flag_level = Arc::new(self.targeting(fi, entries, &path));
        let mut per_env = vec![flag_level; env_count];
        if let Some((_, epos, n)) = entries.iter().find(|(k, _, _)| k == "environments") {
            let p = child(&path, "environments");
            if !self.declares_envs {
                self.err(
                    &p,
                    *epos,
                    "this document declares no `environments`; list them at the top level to override a flag per environment",
                );
            } else if let Some(overrides) = self.expect_map(n, &p, "overrides by environment") {
                for (env, opos, onode) in overrides {
                    let op = child(&p, env);
                    let Some(ei) = self.envs.iter().position(|e| **e == **env) else {
                        self.err(
                            &op,
                            *opos,
                            format!(
                                "unknown environment `{env}`; the document declares: {}",
                                self.envs.join(", ")
                            ),
                        );
                        continue;
                    };
                    per_env[ei] = Arc::new(self.env_override(fi, onode, &op, *opos));
                }
            }
        }
        self.heads[fi].body = Some(body);
        per_env
    }

    fn env_override(&mut self, fi: usize, node: &Node, path: &str, pos: Option<Pos>) -> Targeting {
        let serve_all = |v: usize| Targeting {
            enabled: true,
            prerequisites: Vec::new(),
            targets: FastMap::default(),
            rules: Vec::new(),
            default: Serve::Variant(v),
            is_static: true,
        };
        match &node.value {
            NodeValue::String(name) => match self.variant(fi, name, path, node.pos.or(pos)) {
                Some(v) => serve_all(v),
                None => serve_all(self.heads[fi].off),
            },
            NodeValue::Bool(b) => {
                let h = &self.heads[fi];
                match h.variants.iter().position(|(_, v)| *v == Value::Bool(*b)) {
                    Some(v) if h.value_type == ValueType::Boolean => serve_all(v),
                    _ => {
                        self.err(
                            path,
                            node.pos.or(pos),
                            format!(
                                "`{b}` stands for on/off only on boolean flags; name a variant instead ({})",
                                known_variants(&self.heads[fi].variants)
                            ),
                        );
                        serve_all(self.heads[fi].off)
                    }
                }
            }
            NodeValue::Map(entries) => {
                self.check_fields(
                    entries,
                    path,
                    TARGETING_FIELDS,
                    " in an environment override",
                );
                self.targeting(fi, entries, path)
            }
            _ => {
                self.err(
                    path,
                    node.pos.or(pos),
                    format!(
                        "expected a variant name, true/false, or a mapping of targeting fields, found {}",
                        node.type_name()
                    ),
                );
                serve_all(self.heads[fi].off)
            }
        }
    }

    fn variant(&mut self, fi: usize, name: &str, path: &str, pos: Option<Pos>) -> Option<usize> {
        let h = &self.heads[fi];
        match h.variants.iter().position(|(v, _)| **v == *name) {
            Some(i) => Some(i),
            None => {
                let msg = format!("unknown variant `{name}`; {}", known_variants(&h.variants));
                self.err(path, pos, msg);
                None
            }
        }
    }

    /// Compiles the targeting fields found in `entries` (a flag or an environment override).
    fn targeting(&mut self, fi: usize, entries: &Entries, path: &str) -> Targeting {
        let field = |name: &str| entries.iter().find(|(k, _, _)| k == name);
        let off = self.heads[fi].off;
        let enabled = match field("enabled") {
            Some((_, _, n)) => self
                .expect_bool(n, &child(path, "enabled"), "enabled")
                .unwrap_or(true),
            None => true,
        };

        // Bucketing defaults shared by the default rollout and rule rollouts.
        let bucket_by = field("bucket_by")
            .and_then(|(_, _, n)| {
                self.expect_str(n, &child(path, "bucket_by"), "an attribute name")
            })
            .map(str::to_owned);
        let salt = field("salt")
            .and_then(|(_, _, n)| self.expect_str(n, &child(path, "salt"), "a salt"))
            .map(str::to_owned);

        let mut prerequisites = Vec::new();
        if let Some((_, _, n)) = field("prerequisites") {
            let p = child(path, "prerequisites");
            for (i, item) in self
                .expect_seq(n, &p, "prerequisites")
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if let Some(pre) = self.prerequisite(item, &index(&p, i)) {
                    prerequisites.push(pre);
                }
            }
        }

        let mut targets = FastMap::default();
        if let Some((_, _, n)) = field("targets") {
            let p = child(path, "targets");
            let mut seen: FastMap<Box<str>, String> = FastMap::default();
            for (variant, vpos, list) in self
                .expect_map(n, &p, "targeting keys by variant")
                .unwrap_or_default()
            {
                let vp = child(&p, variant);
                let Some(v) = self.variant(fi, variant, &vp, *vpos) else {
                    continue;
                };
                for (i, item) in self
                    .expect_seq(list, &vp, "targeting keys")
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let ip = index(&vp, i);
                    let Some(k) = self.scalar_key(item, &ip) else {
                        continue;
                    };
                    if let Some(other) = seen.get(&*k) {
                        self.err(
                            &ip,
                            item.pos,
                            format!("targeting key `{k}` is also listed under `{other}`"),
                        );
                        continue;
                    }
                    seen.insert(k.clone(), variant.clone());
                    targets.insert(k, v);
                }
            }
        }

        let mut rules = Vec::new();
        if let Some((_, _, n)) = field("rules") {
            let p = child(path, "rules");
            for (i, item) in self
                .expect_seq(n, &p, "rules")
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if let Some(rule) = self.rule(
                    fi,
                    item,
                    &index(&p, i),
                    bucket_by.as_deref(),
                    salt.as_deref(),
                ) {
                    rules.push(rule);
                }
            }
        }

        let default = match (field("serve"), field("rollout")) {
            (Some((_, pos, _)), Some(_)) => {
                self.err(
                    path,
                    *pos,
                    "give either `serve` or `rollout` as the default, not both",
                );
                Serve::Variant(off)
            }
            (Some((_, _, n)), None) => {
                let p = child(path, "serve");
                match self.serve_variant(fi, n, &p) {
                    Some(v) => Serve::Variant(v),
                    None => Serve::Variant(off),
                }
            }
            (None, Some((_, _, n))) => {
                let p = child(path, "rollout");
                match self.rollout(fi, n, &p, bucket_by.as_deref(), salt.as_deref()) {
                    Some(r) => Serve::Rollout(r),
                    None => Serve::Variant(off),
                }
            }
            (None, None) => Serve::Variant(off),
        };
        let is_static = prerequisites.is_empty()
            && targets.is_empty()
            && rules.is_empty()
            && matches!(default, Serve::Variant(_));
        Targeting {
            enabled,
            prerequisites,
            targets,
            rules,
            default,
            is_static,
        }
    }

    /// A variant named by `serve:`; `true`/`false` are accepted for boolean flags.
    fn serve_variant(&mut self, fi: usize, n: &Node, path: &str) -> Option<usize> {
        match &n.value {
            NodeValue::String(s) => self.variant(fi, s, path, n.pos),
            NodeValue::Bool(b) if self.heads[fi].value_type == ValueType::Boolean => {
                let found = self.heads[fi]
                    .variants
                    .iter()
                    .position(|(_, v)| *v == Value::Bool(*b));
                if found.is_none() {
                    self.err(path, n.pos, format!("no variant has the value `{b}`"));
                }
                found
            }
            _ => {
                self.err(
                    path,
                    n.pos,
                    format!("expected a variant name, found {}", n.type_name()),
                );
                None
            }
        }
    }

    fn scalar_key(&mut self, item: &Node, path: &str) -> Option<Box<str>> {
        match &item.value {
            NodeValue::String(s) => Some(s.as_str().into()),
            NodeValue::Number(n) => Some(n.to_string().into()),
            _ => {
                self.err(
                    path,
                    item.pos,
                    format!(
                        "expected a targeting key (a string), found {}",
                        item.type_name()
                    ),
                );
                None
            }
        }
    }

    fn prerequisite(&mut self, item: &Node, path: &str) -> Option<Prerequisite> {
        let entries = self.expect_map(item, path, "a prerequisite {flag, variants}")?;
        self.check_fields(entries, path, &["flag", "variants"], " in a prerequisite");
        let Some((_, _, fnode)) = entries.iter().find(|(k, _, _)| k == "flag") else {
            self.err(path, item.pos, "missing field `flag`");
            return None;
        };
        let fp = child(path, "flag");
        let name = self.expect_str(fnode, &fp, "a flag key")?;
        let Some(&pfi) = self.flag_index.get(name) else {
            let suggestion = did_you_mean(name, self.heads.iter().map(|h| h.key.as_str()));
            let msg = if suggestion.is_empty() {
                format!(
                    "unknown prerequisite flag `{name}`: the document has no flag with this key"
                )
            } else {
                format!("unknown prerequisite flag `{name}`{suggestion}")
            };
            self.err(&fp, fnode.pos, msg);
            return None;
        };
        let mut variants = Vec::new();
        match entries.iter().find(|(k, _, _)| k == "variants") {
            Some((_, _, vn)) => {
                let vp = child(path, "variants");
                let items = self.expect_seq(vn, &vp, "variant names")?;
                if items.is_empty() {
                    self.err(&vp, vn.pos, "list at least one variant");
                }
                for (i, v) in items.iter().enumerate() {
                    let ip = index(&vp, i);
                    if let Some(s) = self.expect_str(v, &ip, "a variant name")
                        && self.heads[pfi].ok
                        && let Some(x) = self.variant(pfi, s, &ip, v.pos)
                    {
                        variants.push(x);
                    }
                }
            }
            None => match self.heads[pfi]
                .variants
                .iter()
                .position(|(v, _)| &**v == "on")
            {
                Some(x) => variants.push(x),
                None => {
                    if self.heads[pfi].ok {
                        self.err(
                            path,
                            item.pos,
                            format!("flag `{name}` has no variant `on`; list the `variants` this prerequisite needs"),
                        );
                    }
                    return None;
                }
            },
        }
        Some(Prerequisite {
            flag: pfi,
            variants,
        })
    }

    fn rule(
        &mut self,
        fi: usize,
        item: &Node,
        path: &str,
        bucket_by: Option<&str>,
        salt: Option<&str>,
    ) -> Option<Rule> {
        let entries = self.expect_map(item, path, "a rule")?;
        self.check_fields(
            entries,
            path,
            &["name", "when", "serve", "rollout", "bucket_by", "salt"],
            " in a rule",
        );
        let field = |name: &str| entries.iter().find(|(k, _, _)| k == name);
        let name = field("name")
            .and_then(|(_, _, n)| self.expect_str(n, &child(path, "name"), "a rule name"))
            .map(Box::<str>::from);
        let when = match field("when") {
            Some((_, _, n)) => self.conditions(n, &child(path, "when")),
            None => {
                self.err(
                    path,
                    item.pos,
                    "missing field `when`: a rule needs its conditions",
                );
                Vec::new()
            }
        };
        let bucket_by = match field("bucket_by") {
            Some((_, _, n)) => self.expect_str(n, &child(path, "bucket_by"), "an attribute name"),
            None => bucket_by,
        };
        let salt = match field("salt") {
            Some((_, _, n)) => self.expect_str(n, &child(path, "salt"), "a salt"),
            None => salt,
        };
        let serve = match (field("serve"), field("rollout")) {
            (Some((_, _, n)), None) => {
                Serve::Variant(self.serve_variant(fi, n, &child(path, "serve"))?)
            }
            (None, Some((_, _, n))) => {
                Serve::Rollout(self.rollout(fi, n, &child(path, "rollout"), bucket_by, salt)?)
            }
            (Some((_, pos, _)), Some(_)) => {
                self.err(
                    path,
                    *pos,
                    "a rule gives either `serve` or `rollout`, not both",
                );
                return None;
            }
            (None, None) => {
                self.err(
                    path,
                    item.pos,
                    "a rule needs `serve: VARIANT` or `rollout: {…}`",
                );
                return None;
            }
        };
        Some(Rule { name, when, serve })
    }

    fn rollout(
        &mut self,
        fi: usize,
        n: &Node,
        path: &str,
        bucket_by: Option<&str>,
        salt: Option<&str>,
    ) -> Option<Rollout> {
        let h = &self.heads[fi];
        let mut weights = vec![0u32; h.variants.len()];
        match &n.value {
            NodeValue::Number(num) => {
                let on = h.variants.iter().position(|(v, _)| &**v == "on");
                let off = h.variants.iter().position(|(v, _)| &**v == "off");
                let (Some(on), Some(off), ValueType::Boolean) = (on, off, h.value_type) else {
                    self.err(
                        path,
                        n.pos,
                        "`rollout: N` is for boolean flags with variants `on` and `off`; give percentages by variant, like {a: 50, b: 50}",
                    );
                    return None;
                };
                let w = self.percent(num.as_f64(), path, n.pos)?;
                weights[on] = w;
                weights[off] = 100_000 - w;
            }
            NodeValue::Map(entries) => {
                if entries.is_empty() {
                    self.err(
                        path,
                        n.pos,
                        "a rollout needs at least one variant with a percentage",
                    );
                    return None;
                }
                let mut ok = true;
                for (name, npos, wnode) in entries {
                    let wp = child(path, name);
                    let Some(v) = self.variant(fi, name, &wp, *npos) else {
                        ok = false;
                        continue;
                    };
                    let w = match &wnode.value {
                        NodeValue::Number(num) => {
                            self.percent(num.as_f64(), &wp, wnode.pos.or(*npos))
                        }
                        _ => {
                            self.err(
                                &wp,
                                wnode.pos.or(*npos),
                                format!(
                                    "expected a percentage (a number), found {}",
                                    wnode.type_name()
                                ),
                            );
                            None
                        }
                    };
                    match w {
                        Some(w) => weights[v] = w,
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
                if total != 100_000 {
                    self.err(
                        path,
                        n.pos,
                        format!("weights sum to {}, not 100", format_thousandths(total)),
                    );
                    return None;
                }
            }
            _ => {
                self.err(path, n.pos, format!("expected a rollout (percentages by variant, or a number for boolean flags), found {}", n.type_name()));
                return None;
            }
        }
        let mut ends = Vec::new();
        let mut end = 0u32;
        for (v, w) in weights.into_iter().enumerate() {
            if w > 0 {
                end += w;
                ends.push((end, v));
            }
        }
        let salt = salt.unwrap_or(&self.heads[fi].key);
        let bucket_by = bucket_by.map(attr_path);
        Some(Rollout {
            ends,
            bucket_by,
            salted: crate::bucket::salted(salt),
        })
    }

    /// A percentage with at most three decimals, as thousandths of a percent.
    fn percent(&mut self, value: Option<f64>, path: &str, pos: Option<Pos>) -> Option<u32> {
        let Some(p) = value.filter(|p| p.is_finite()) else {
            self.err(path, pos, "expected a percentage from 0 to 100");
            return None;
        };
        if !(0.0..=100.0).contains(&p) {
            self.err(path, pos, format!("percentage {p} is outside 0 to 100"));
            return None;
        }
        let scaled = p * 1000.0;
        let rounded = scaled.round();
        if (scaled - rounded).abs() > 1e-6 {
            self.err(
                path,
                pos,
                format!("percentage {p} has more than three decimals"),
            );
            return None;
        }
        Some(rounded as u32)
    }

    fn conditions(&mut self, n: &Node, path: &str) -> Vec<Condition> {
        let Some(items) = self.expect_seq(n, path, "conditions") else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, c)| self.condition(c, &index(path, i)))
            .collect()
    }

    fn condition(&mut self, n: &Node, path: &str) -> Option<Condition> {
        let entries = self.expect_map(n, path, "a condition")?;
        let forms = ["attribute", "segment", "not", "any", "all"];
        let present: Vec<&str> = forms
            .iter()
            .copied()
            .filter(|f| entries.iter().any(|(k, _, _)| k == f))
            .collect();
        if present.len() != 1 {
            self.err(
                path,
                n.pos,
                if present.is_empty() {
                    "a condition needs one of `attribute`, `segment`, `not`, `any` or `all`"
                        .to_owned()
                } else {
                    format!("a condition has one form, found {}", present.join(" and "))
                },
            );
            return None;
        }
        let field = |name: &str| {
            entries
                .iter()
                .find(|(k, _, _)| k == name)
                .map(|(_, _, v)| v)
        };
        match present[0] {
            "segment" => {
                self.check_fields(entries, path, &["segment"], " in a segment condition");
                let p = child(path, "segment");
                let node = field("segment")?;
                let name = self.expect_str(node, &p, "a segment name")?;
                match self.segment_index.get(name) {
                    Some(&s) => Some(Condition::Segment(s)),
                    None => {
                        let msg = unknown_segment(name, &self.segment_index);
                        self.err(&p, node.pos, msg);
                        None
                    }
                }
            }
            "not" => {
                self.check_fields(entries, path, &["not"], " in a `not` condition");
                let inner = self.condition(field("not")?, &child(path, "not"))?;
                Some(Condition::Not(Box::new(inner)))
            }
            "any" => {
                self.check_fields(entries, path, &["any"], " in an `any` condition");
                Some(Condition::Any(
                    self.conditions(field("any")?, &child(path, "any")),
                ))
            }
            "all" => {
                self.check_fields(entries, path, &["all"], " in an `all` condition");
                Some(Condition::All(
                    self.conditions(field("all")?, &child(path, "all")),
                ))
            }
            _ => self.attribute_condition(entries, n, path),
        }
    }

    fn attribute_condition(
        &mut self,
        entries: &Entries,
        n: &Node,
        path: &str,
    ) -> Option<Condition> {
        self.check_fields(
            entries,
            path,
            &["attribute", "op", "values", "value", "ignore_case"],
            " in a condition",
        );
        let field = |name: &str| {
            entries
                .iter()
                .find(|(k, _, _)| k == name)
                .map(|(_, _, v)| v)
        };
        let anode = field("attribute")?;
        let ap = child(path, "attribute");
        let name = self.expect_str(anode, &ap, "an attribute name")?;
        let attribute = match name {
            "$now" => Attribute::Now,
            "$flag" => Attribute::FlagKey,
            "" => {
                self.err(&ap, anode.pos, "the attribute name is empty");
                return None;
            }
            s if s.starts_with('$') => {
                self.err(
                    &ap,
                    anode.pos,
                    format!(
                        "unknown built-in attribute `{s}`; the built-ins are `$now` and `$flag`"
                    ),
                );
                return None;
            }
            s => Attribute::Path(attr_path(s)),
        };
        let op_path = child(path, "op");
        let Some(op_node) = field("op") else {
            self.err(path, n.pos, "missing field `op`");
            return None;
        };
        let op_name = self.expect_str(op_node, &op_path, "an operator")?;
        let ignore_case = match field("ignore_case") {
            Some(b) => self.expect_bool(b, &child(path, "ignore_case"), "ignore_case")?,
            None => false,
        };
        let (values, vpath): (Vec<&Node>, String) = match (field("values"), field("value")) {
            (Some(_), Some(_)) => {
                self.err(path, n.pos, "give `values` or `value`, not both");
                return None;
            }
            (Some(v), None) => {
                let vp = child(path, "values");
                (self.expect_seq(v, &vp, "values")?.iter().collect(), vp)
            }
            (None, Some(v)) => (vec![v], child(path, "value")),
            (None, None) => (Vec::new(), child(path, "values")),
        };
        let value_pos = |i: usize| values.get(i).and_then(|v| v.pos);
        let needs_values = !matches!(op_name, "exists" | "not_exists");
        if needs_values && values.is_empty() {
            self.err(path, n.pos, format!("`{op_name}` needs `values`"));
            return None;
        }
        if matches!(attribute, Attribute::Now)
            && !matches!(op_name, "before" | "after" | "exists" | "not_exists")
        {
            self.err(
                &op_path,
                op_node.pos,
                format!("`$now` is a time: use `before` or `after`, not `{op_name}`"),
            );
            return None;
        }
        let scalar_strings = |l: &mut Self, lower: bool| -> Option<Vec<Box<str>>> {
            let mut out = Vec::new();
            let mut ok = true;
            for (i, v) in values.iter().enumerate() {
                let s = match &v.value {
                    NodeValue::String(s) => s.clone(),
                    NodeValue::Number(num) => num.to_string(),
                    NodeValue::Bool(b) => b.to_string(),
                    _ => {
                        l.err(
                            &index(&vpath, i),
                            value_pos(i),
                            format!("expected a string or number, found {}", v.type_name()),
                        );
                        ok = false;
                        continue;
                    }
                };
                out.push(if lower {
                    s.to_lowercase().into()
                } else {
                    s.into()
                });
            }
            ok.then_some(out)
        };
        let op = match op_name {
            "in" => Op::In {
                set: StrSet::new(scalar_strings(self, ignore_case)?),
                ignore_case,
            },
            "not_in" => Op::NotIn {
                set: StrSet::new(scalar_strings(self, ignore_case)?),
                ignore_case,
            },
            "contains" | "starts_with" | "ends_with" => Op::Str {
                op: match op_name {
                    "contains" => StrOp::Contains,
                    "starts_with" => StrOp::StartsWith,
                    _ => StrOp::EndsWith,
                },
                values: scalar_strings(self, ignore_case)?,
                ignore_case,
            },
            "matches" => {
                let mut regexes = Vec::new();
                for (i, v) in values.iter().enumerate() {
                    let ip = index(&vpath, i);
                    let Some(pattern) = self.expect_str(v, &ip, "a regular expression") else {
                        continue;
                    };
                    match regex::RegexBuilder::new(pattern)
                        .case_insensitive(ignore_case)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .dfa_size_limit(REGEX_SIZE_LIMIT)
                        .build()
                    {
                        Ok(r) => regexes.push(r),
                        Err(e) => self.err(
                            &ip,
                            v.pos,
                            format!(
                                "invalid regular expression `{pattern}`: {}",
                                regex_problem(&e)
                            ),
                        ),
                    }
                }
                (regexes.len() == values.len()).then_some(Op::Matches {
                    regexes,
                    ignore_case,
                })?
            }
            "lt" | "lte" | "gt" | "gte" => {
                let cmp = cmp_op(op_name);
                let mut nums = Vec::new();
                for (i, v) in values.iter().enumerate() {
                    match number_of(v) {
                        Some(x) => nums.push(x),
                        None => self.err(
                            &index(&vpath, i),
                            value_pos(i),
                            format!(
                                "`{op_name}` compares numbers; `{}` is not one",
                                display_node(v)
                            ),
                        ),
                    }
                }
                (nums.len() == values.len()).then_some(Op::Number(cmp, nums))?
            }
            "semver_eq" | "semver_lt" | "semver_lte" | "semver_gt" | "semver_gte" => {
                let cmp = cmp_op(&op_name["semver_".len()..]);
                let mut versions = Vec::new();
                for (i, v) in values.iter().enumerate() {
                    let text = match &v.value {
                        NodeValue::String(s) => Some(s.clone()),
                        NodeValue::Number(num) => Some(num.to_string()),
                        _ => None,
                    };
                    match text.as_deref().and_then(Version::parse) {
                        Some(ver) => versions.push(ver.to_owned_version()),
                        None => self.err(
                            &index(&vpath, i),
                            value_pos(i),
                            format!(
                                "invalid version `{}`; expected SemVer like 2.3.0 or 2.3.0-beta.1",
                                display_node(v)
                            ),
                        ),
                    }
                }
                (versions.len() == values.len()).then_some(Op::Semver(cmp, versions))?
            }
            "before" | "after" => {
                let mut times = Vec::new();
                for (i, v) in values.iter().enumerate() {
                    let t = match &v.value {
                        NodeValue::String(s) => parse_time(s),
                        NodeValue::Number(num) => num.as_f64().and_then(time_from_seconds),
                        _ => None,
                    };
                    match t {
                        Some(t) => times.push(t),
                        None => self.err(&index(&vpath, i), value_pos(i), format!("invalid time `{}`; expected an RFC 3339 timestamp (2026-12-01T09:00:00Z), a date (2026-12-01) or Unix seconds", display_node(v))),
                    }
                }
                (times.len() == values.len()).then_some(Op::Time {
                    before: op_name == "before",
                    values: times,
                })?
            }
            "exists" | "not_exists" => {
                if !values.is_empty() {
                    self.err(&vpath, value_pos(0), format!("`{op_name}` takes no values"));
                    return None;
                }
                if op_name == "exists" {
                    Op::Exists
                } else {
                    Op::NotExists
                }
            }
            other => {
                self.err(
                    &op_path,
                    op_node.pos,
                    format!("unknown operator `{other}`; expected one of: in, not_in, contains, starts_with, ends_with, matches, lt, lte, gt, gte, semver_eq, semver_lt, semver_lte, semver_gt, semver_gte, before, after, exists, not_exists"),
                );
                return None;
            }
        };
        if ignore_case
            && !matches!(
                op,
                Op::In { .. } | Op::NotIn { .. } | Op::Str { .. } | Op::Matches { .. }
            )
        {
            let pos = entries
                .iter()
                .find(|(k, _, _)| k == "ignore_case")
                .and_then(|(_, pos, _)| *pos);
            self.err(
                &child(path, "ignore_case"),
                pos,
                format!("`ignore_case` applies to text operators, not `{op_name}`"),
            );
            return None;
        }
        Some(Condition::Attribute(attribute, op))
    }

    fn segment(&mut self, node: &Node, path: &str) -> Segment {
        let mut seg = Segment {
            include: FastSet::default(),
            exclude: FastSet::default(),
            when: Vec::new(),
        };
        let Some(entries) = self.expect_map(node, path, "a segment") else {
            return seg;
        };
        self.check_fields(
            entries,
            path,
            &["description", "include", "exclude", "when"],
            " in a segment",
        );
        for (k, _, v) in entries {
            let p = child(path, k);
            match k.as_str() {
                "description" => {
                    self.expect_str(v, &p, "text");
                }
                "include" | "exclude" => {
                    let mut keys = FastSet::default();
                    for (i, item) in self
                        .expect_seq(v, &p, "targeting keys")
                        .unwrap_or_default()
                        .iter()
                        .enumerate()
                    {
                        if let Some(key) = self.scalar_key(item, &index(&p, i)) {
                            keys.insert(key);
                        }
                    }
                    if k == "include" {
                        seg.include = keys
                    } else {
                        seg.exclude = keys
                    }
                }
                "when" => seg.when = self.conditions(v, &p),
                _ => {}
            }
        }
        seg
    }

    /// Where flag `fi`'s prerequisites for environment `env` are written: in that environment's
    /// override when it has one, else at the flag level. Returns the path and position.
    fn prerequisites_site(&self, fi: usize, env: usize) -> (String, Option<Pos>) {
        let head = &self.heads[fi];
        let flag_path = child("flags", &head.key);
        let find = |entries: &'a Entries, name: &str| entries.iter().find(|(k, _, _)| k == name);
        let Some(body) = head.body else {
            return (child(&flag_path, "prerequisites"), head.pos);
        };
        if self.declares_envs
            && let Some(env_name) = self.envs.get(env)
            && let Some((_, _, overrides)) = find(body, "environments")
            && let NodeValue::Map(overrides) = &overrides.value
            && let Some((_, opos, onode)) = find(overrides, env_name)
        {
            let override_path = child(&child(&flag_path, "environments"), env_name);
            return match &onode.value {
                NodeValue::Map(entries) => match find(entries, "prerequisites") {
                    Some((_, ppos, _)) => (child(&override_path, "prerequisites"), *ppos),
                    None => (override_path, *opos),
                },
                _ => (override_path, *opos),
            };
        }
        match find(body, "prerequisites") {
            Some((_, ppos, _)) => (child(&flag_path, "prerequisites"), *ppos),
            None => (flag_path, head.pos),
        }
    }

    /// Rejects prerequisite cycles (in any environment) and segments that include themselves,
    /// and bounds chains so evaluation's recursion stays shallow.
    fn check_cycles(
        &mut self,
        flags: &[Vec<Arc<Targeting>>],
        segments: &[Segment],
        segment_sites: &[(String, Option<Pos>)],
    ) {
        // Segments first: a graph of segment → segments named in its conditions.
        let seg_edges: Vec<Vec<usize>> = segments
            .iter()
            .map(|s| {
                let mut out = Vec::new();
                s.when.iter().for_each(|c| segment_refs(c, &mut out));
                out
            })
            .collect();
        let seg_names: Vec<String> = {
            let mut names = vec![String::new(); segments.len()];
            for (name, &i) in &self.segment_index {
                if i < names.len() {
                    names[i] = name.to_string();
                }
            }
            names
        };
        if let Some(problem) = find_cycle_or_depth(&seg_edges) {
            let (path, pos) = segment_sites
                .get(problem.start)
                .cloned()
                .unwrap_or_else(|| (child("segments", &seg_names[problem.start]), None));
            let msg = describe_chain("segment", &problem, &seg_names);
            self.err(&path, pos, msg);
        }

        let names: Vec<String> = self.heads.iter().map(|h| h.key.clone()).collect();
        let problems: Vec<Option<ChainProblem>> = (0..self.envs.len())
            .map(|env| {
                let edges: Vec<Vec<usize>> = flags
                    .iter()
                    .map(|per_env| {
                        per_env
                            .get(env)
                            .map(|t| t.prerequisites.iter().map(|p| p.flag).collect())
                            .unwrap_or_default()
                    })
                    .collect();
                find_cycle_or_depth(&edges)
            })
            .collect();
        // A cycle at the flag level shows in every environment: name an environment only when
        // the problem is particular to some.
        let everywhere = problems
            .iter()
            .all(|p| p.as_ref().map(|p| &p.chain) == problems[0].as_ref().map(|p| &p.chain));
        let mut reported = HashSet::new();
        for (env, problem) in problems.iter().enumerate() {
            if let Some(problem) = problem
                && reported.insert(problem.start)
            {
                let (path, pos) = self.prerequisites_site(problem.start, env);
                let mut msg = describe_chain("prerequisite", problem, &names);
                if self.declares_envs && !everywhere {
                    msg.push_str(&format!(" (in environment `{}`)", self.envs[env]));
                }
                self.err(&path, pos, msg);
            }
        }
    }
}

/// Which environments, by index, a flag's mapping (`None` for the shorthand) overrides.
fn overridden(body: Option<&Entries>, envs: &[Box<str>]) -> Vec<bool> {
    let overrides = body
        .and_then(|entries| entries.iter().find(|(k, _, _)| k == "environments"))
        .map(|(_, _, n)| &n.value);
    envs.iter()
        .map(|env| match overrides {
            Some(NodeValue::Map(entries)) => entries.iter().any(|(k, _, _)| **k == **env),
            _ => false,
        })
        .collect()
}

fn article(t: ValueType) -> &'static str {
    match t {
        ValueType::Object => "an",
        _ => "a",
    }
}

fn known_variants(variants: &[(Box<str>, Value)]) -> String {
    let names: Vec<&str> = variants.iter().map(|(n, _)| &**n).collect();
    format!("the flag's variants are: {}", names.join(", "))
}

/// Thousandths of a percent as a percentage, as written: `10`, `12.5`, `0.001`.
pub(crate) fn format_thousandths(t: u64) -> String {
    if t % 1000 == 0 {
        (t / 1000).to_string()
    } else {
        let s = format!("{}.{:03}", t / 1000, t % 1000);
        s.trim_end_matches('0').to_owned()
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The regex crate's message without its multi-line drawing of the pattern, which a one-line
/// diagnostic cannot show: `unclosed character class`.
fn regex_problem(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("error: "))
            .map_or_else(|| one_line(text), str::to_owned),
        regex::Error::CompiledTooBig(limit) => {
            format!("it compiles to more than {limit} bytes; use a simpler expression")
        }
        other => one_line(&other.to_string()),
    }
}

fn unknown_segment(name: &str, segments: &FastMap<Box<str>, usize>) -> String {
    let suggestion = did_you_mean(name, segments.keys().map(|k| &**k));
    if !suggestion.is_empty() {
        return format!("unknown segment `{name}`{suggestion}");
    }
    let mut known: Vec<&str> = segments.keys().map(|k| &**k).collect();
    known.sort_unstable();
    match known.len() {
        0 => format!("unknown segment `{name}`: the document declares no `segments`"),
        1..=20 => format!(
            "unknown segment `{name}`; the document declares: {}",
            known.join(", ")
        ),
        _ => format!("unknown segment `{name}`: no segment has this name"),
    }
}

/// A hint, ` (did you mean …?)`, naming the closest of `candidates` when it is a likely
/// misspelling of `name` (a few edits apart, ignoring case); empty otherwise.
fn did_you_mean<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|&(d, c)| (d, c))
        .map_or_else(String::new, |(_, c)| format!(" (did you mean `{c}`?)"))
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn display_node(n: &Node) -> String {
    match &n.value {
        NodeValue::String(s) => s.clone(),
        _ => n.to_json().to_string(),
    }
}

fn cmp_op(name: &str) -> CmpOp {
    match name {
        "lt" => CmpOp::Lt,
        "lte" => CmpOp::Lte,
        "gt" => CmpOp::Gt,
        "gte" => CmpOp::Gte,
        _ => CmpOp::Eq,
    }
}

fn number_of(n: &Node) -> Option<f64> {
    match &n.value {
        NodeValue::Number(num) => num.as_f64(),
        NodeValue::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

pub(crate) fn attr_path(name: &str) -> AttrPath {
    AttrPath {
        full: name.into(),
        parts: if name.contains('.') {
            name.split('.').map(Box::from).collect()
        } else {
            Vec::new()
        },
    }
}

pub(crate) fn parse_date(s: &str) -> Option<jiff::civil::Date> {
    // Exactly YYYY-MM-DD: jiff also accepts other ISO 8601 forms we do not promise.
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    s.parse().ok()
}

/// An RFC 3339 timestamp, or a date (midnight UTC).
pub(crate) fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    if s.len() == 10 {
        let date = parse_date(s)?;
        return jiff::tz::Offset::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .ok();
    }
    // An RFC 3339 timestamp always has a `T` (or space) between date and time and an offset.
    if s.len() < 20 {
        return None;
    }
    s.parse().ok()
}

/// Unix seconds (fractions allowed) as a timestamp.
pub(crate) fn time_from_seconds(secs: f64) -> Option<jiff::Timestamp> {
    if !secs.is_finite() || secs.abs() > 1e13 {
        return None;
    }
    jiff::Timestamp::from_nanosecond((secs * 1e9) as i128).ok()
}

fn segment_refs(c: &Condition, out: &mut Vec<usize>) {
    match c {
        Condition::Segment(s) => out.push(*s),
        Condition::Not(inner) => segment_refs(inner, out),
        Condition::Any(cs) | Condition::All(cs) => cs.iter().for_each(|c| segment_refs(c, out)),
        Condition::Attribute(..) => {}
    }
}

struct ChainProblem {
    start: usize,
    /// The chain found, start first; for a cycle it ends where it began.
    chain: Vec<usize>,
    cycle: bool,
}

fn describe_chain(what: &str, p: &ChainProblem, names: &[String]) -> String {
    let chain: Vec<&str> = p.chain.iter().map(|&i| names[i].as_str()).collect();
    if p.cycle {
        format!("{what} cycle: {}", chain.join(" → "))
    } else {
        format!(
            "{what} chain longer than {MAX_CHAIN}: {} → …",
            chain[..chain.len().min(5)].join(" → ")
        )
    }
}

/// Depth-first search for a cycle or a chain longer than [`MAX_CHAIN`], iteratively.
fn find_cycle_or_depth(edges: &[Vec<usize>]) -> Option<ChainProblem> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        /// Done, with the longest chain starting here.
        Done(usize),
    }
    let mut mark = vec![Mark::New; edges.len()];
    for start in 0..edges.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Stack of (node, next edge index).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&to) = edges[node].get(*next) {
                *next += 1;
                match mark[to] {
                    Mark::Active => {
                        let from = stack.iter().position(|&(n, _)| n == to).unwrap_or(0);
                        let mut chain: Vec<usize> = stack[from..].iter().map(|&(n, _)| n).collect();
                        chain.push(to);
                        return Some(ChainProblem {
                            start: to,
                            chain,
                            cycle: true,
                        });
                    }
                    Mark::New => {
                        mark[to] = Mark::Active;
                        stack.push((to, 0));
                        if stack.len() > MAX_CHAIN + 1 {
                            let chain = stack.iter().map(|&(n, _)| n).collect();
                            return Some(ChainProblem {
                                start,
                                chain,
                                cycle: false,
                            });
                        }
                    }
                    Mark::Done(depth) => {
                        if stack.len() + depth > MAX_CHAIN + 1 {
                            let chain = stack.iter().map(|&(n, _)| n).chain([to]).collect();
                            return Some(ChainProblem {
                                start,
                                chain,
                                cycle: false,
                            });
                        }
                    }
                }
            } else {
                let depth = 1 + edges[node]
                    .iter()
                    .map(|&to| match mark[to] {
                        Mark::Done(d) => d,
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0);
                mark[node] = Mark::Done(depth);
                stack.pop();
            }
        }
    }
    None
}
