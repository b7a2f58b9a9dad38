//! A document tree that remembers where each node came from.
//!
//! Flag documents arrive as YAML 1.2 or JSON text (JSON is read by the same YAML 1.2 parser, of
//! which it is a subset) or as an already-parsed [`serde_json::Value`] (API bodies). Both become a
//! [`Node`] tree, so validation is written once and reports line and column whenever the input was
//! text. Scalars are resolved with the YAML 1.2 core schema: `on`, `off`, `yes` and `no` are
//! strings, and so are dates.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Number, Value};

use crate::diag::{Diagnostic, Pos};

/// How deeply collections may nest before the document is rejected.
///
/// Well above anything a flag document needs, and low enough that every recursive walk over the
/// tree stays far from the end of the stack.
pub const MAX_DEPTH: usize = 64;

/// How many nodes a document may expand to, aliases included (guards against "billion laughs").
const MAX_NODES: usize = 2_000_000;

/// One node of a parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub value: NodeValue,
    /// Where the node starts in the source text, when there was one.
    pub pos: Option<Pos>,
}

/// The content of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `null`, `~` or an empty scalar.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer or a finite floating-point number.
    Number(Number),
    /// Any other scalar.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order, with the position of each key.
    Map(Vec<(String, Option<Pos>, Node)>),
}

impl Node {
    fn new(value: NodeValue, pos: Option<Pos>) -> Self {
        Node { value, pos }
    }

    /// The name of this node's type, for messages ("expected a string, found a sequence").
    pub fn type_name(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Number(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    /// Converts the node into JSON. Mapping order is kept.
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Number(n) => Value::Number(n.clone()),
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, _, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Converts JSON into a node tree without positions.
    ///
    /// Returns an error when the value nests deeper than [`MAX_DEPTH`].
    pub fn from_json(value: &Value) -> Result<Node, Diagnostic> {
        fn convert(value: &Value, depth: usize) -> Result<Node, Diagnostic> {
            if depth > MAX_DEPTH {
                return Err(Diagnostic::new(
                    "",
                    None,
                    format!("the document nests more than {MAX_DEPTH} levels deep"),
                ));
            }
            let v = match value {
                Value::Null => NodeValue::Null,
                Value::Bool(b) => NodeValue::Bool(*b),
                Value::Number(n) => NodeValue::Number(n.clone()),
                Value::String(s) => NodeValue::String(s.clone()),
                Value::Array(items) => NodeValue::Seq(
                    items
                        .iter()
                        .map(|i| convert(i, depth + 1))
                        .collect::<Result<_, _>>()?,
                ),
                Value::Object(map) => NodeValue::Map(
                    map.iter()
                        .map(|(k, v)| Ok((k.clone(), None, convert(v, depth + 1)?)))
                        .collect::<Result<_, Diagnostic>>()?,
                ),
            };
            Ok(Node::new(v, None))
        }
        convert(value, 0)
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
fn resolve_plain(text: &str) -> NodeValue {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return NodeValue::Null,
        "true" | "True" | "TRUE" => return NodeValue::Bool(true),
        "false" | "False" | "FALSE" => return NodeValue::Bool(false),
        _ => {}
    }
    if let Some(n) = resolve_int(text) {
        return NodeValue::Number(n);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return NodeValue::Number(n);
    }
    NodeValue::String(text.to_owned())
}

fn resolve_int(text: &str) -> Option<Number> {
    let (neg, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if let Some(oct) = digits.strip_prefix("0o") {
        let v = i64::from_str_radix(oct, 8).ok()?;
        return (!neg && !text.starts_with('+')).then(|| Number::from(v));
    }
    if let Some(hex) = digits.strip_prefix("0x") {
        let v = i64::from_str_radix(hex, 16).ok()?;
        return (!neg && !text.starts_with('+')).then(|| Number::from(v));
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if neg {
        text.parse::<i64>().ok().map(Number::from)
    } else if let Ok(v) = digits.parse::<u64>() {
        Some(Number::from(v))
    } else {
        // Too large for an integer: YAML still reads it as a number.
        digits.parse::<f64>().ok().and_then(Number::from_f64)
    }
}

/// The core schema's float pattern: `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`.
/// Infinity and NaN are not numbers JSON can carry, so `.inf` and `.nan` stay strings.
fn looks_like_float(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<(String, Option<Pos>, Node)>,
        pending_key: Option<(String, Pos)>,
        pos: Pos,
        anchor: usize,
    },
}

/// Parses YAML 1.2 (or JSON) text into a node tree.
///
/// A syntax error is returned as a single diagnostic with its line and column. Duplicate keys,
/// non-scalar keys, several documents and excessive nesting are errors too.
pub fn parse_text(text: &str) -> Result<Node, Diagnostic> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut node_count = 0usize;

    let syntax = |span_pos: Pos, message: String| Diagnostic::new("", Some(span_pos), message);

    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(ok) => ok,
            Err(e) => {
                let m = e.marker();
                return Err(syntax(
                    Pos {
                        line: m.line(),
                        column: m.col() + 1,
                    },
                    format!("invalid syntax: {}", e.info()),
                ));
            }
        };
        let pos = pos_of(&span);
        let completed: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(syntax(
                        pos,
                        "the file holds more than one YAML document; put all flags in one".into(),
                    ));
                }
                None
            }
            Event::Alias(id) => {
                let Some(node) = anchors.get(&id) else {
                    return Err(syntax(pos, "an alias refers to an unknown anchor".into()));
                };
                node_count += count_nodes(node);
                if node_count > MAX_NODES {
                    return Err(syntax(
                        pos,
                        format!("the document expands to more than {MAX_NODES} nodes"),
                    ));
                }
                let mut node = node.clone();
                node.pos = Some(pos);
                Some((node, 0))
            }
            Event::Scalar(text, style, anchor, tag) => {
                node_count += 1;
                let is_str_tag = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !is_str_tag {
                    resolve_plain(&text)
                } else {
                    NodeValue::String(Cow::into_owned(text))
                };
                Some((Node::new(value, Some(pos)), anchor))
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(syntax(
                        pos,
                        format!("the document nests more than {MAX_DEPTH} levels deep"),
                    ));
                }
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    pos,
                    anchor,
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(syntax(
                        pos,
                        format!("the document nests more than {MAX_DEPTH} levels deep"),
                    ));
                }
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    pending_key: None,
                    pos,
                    anchor,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { items, pos, anchor }) => {
                    node_count += 1;
                    Some((Node::new(NodeValue::Seq(items), Some(pos)), anchor))
                }
                _ => return Err(syntax(pos, "unbalanced sequence".into())),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    entries,
                    pos,
                    anchor,
                    ..
                }) => {
                    node_count += 1;
                    Some((Node::new(NodeValue::Map(entries), Some(pos)), anchor))
                }
                _ => return Err(syntax(pos, "unbalanced mapping".into())),
            },
        };
        if node_count > MAX_NODES {
            return Err(syntax(
                pos,
                format!("the document expands to more than {MAX_NODES} nodes"),
            ));
        }
        let Some((node, anchor)) = completed else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    let key = match node.value {
                        NodeValue::String(s) => s,
                        NodeValue::Null => "null".to_owned(),
                        NodeValue::Bool(b) => b.to_string(),
                        NodeValue::Number(n) => n.to_string(),
                        NodeValue::Seq(_) | NodeValue::Map(_) => {
                            return Err(syntax(
                                node.pos.unwrap_or(pos),
                                "a mapping key must be a plain value, not a list or mapping".into(),
                            ));
                        }
                    };
                    if entries.iter().any(|(k, _, _)| *k == key) {
                        return Err(syntax(
                            node.pos.unwrap_or(pos),
                            format!("duplicate key `{key}`"),
                        ));
                    }
                    *pending_key = Some((key, node.pos.unwrap_or(pos)));
                }
                Some((key, key_pos)) => entries.push((key, Some(key_pos), node)),
            },
        }
    }
    match root {
        Some(node) if !matches!(node.value, NodeValue::Null) => Ok(node),
        _ => Err(Diagnostic::new(
            "",
            Some(Pos { line: 1, column: 1 }),
            "the document is empty: expected a mapping with a `flags` key".into(),
        )),
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        NodeValue::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeValue::Map(entries) => {
            1 + entries
                .iter()
                .map(|(_, _, v)| count_nodes(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Value {
        parse_text(text).unwrap().to_json()
    }

    #[test]
    fn core_schema_scalars() {
        let v = parse(
            "a: on\nb: yes\nc: true\nd: 12\ne: 1.5\nf: 2026-01-15\ng: ~\nh: '12'\ni: 0x1f\nj: .inf\nk: -3\n",
        );
        assert_eq!(
            v,
            serde_json::json!({"a": "on", "b": "yes", "c": true, "d": 12, "e": 1.5,
                "f": "2026-01-15", "g": null, "h": "12", "i": 31, "j": ".inf", "k": -3})
        );
    }

    #[test]
    fn keeps_order_and_positions() {
        let node = parse_text("flags:\n  b: 1\n  a: 2\n").unwrap();
        let NodeValue::Map(entries) = &node.value else {
            panic!()
        };
        let NodeValue::Map(flags) = &entries[0].2.value else {
            panic!()
        };
        assert_eq!(flags[0].0, "b");
        assert_eq!(flags[1].1, Some(Pos { line: 3, column: 3 }));
    }

    #[test]
    fn json_is_read_too() {
        let v = parse(r#"{"flags": {"x": {"variants": {"a": "\u00e9", "b": 1e3}}}}"#);
        assert_eq!(v["flags"]["x"]["variants"]["a"], "é");
        assert_eq!(v["flags"]["x"]["variants"]["b"], 1000.0);
    }

    #[test]
    fn rejects_duplicates_depth_and_bombs() {
        assert!(parse_text("a: 1\na: 2\n").is_err());
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse_text(&deep).is_err());
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for c in 'b'..='k' {
            bomb.push_str(&format!(
                "{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
            prev = c;
        }
        assert!(parse_text(&bomb).is_err());
        assert!(parse_text("").is_err());
        assert!(parse_text("a: [").is_err());
    }
}
