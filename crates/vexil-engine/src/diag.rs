//! Validation problems: what is wrong, where in the document, and where in the file.

use std::fmt;

use serde::Serialize;

/// A position in source text: line and column, both counted from 1 (columns in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pos {
    /// Line number, from 1.
    pub line: usize,
    /// Column number, from 1, in characters.
    pub column: usize,
}

/// One problem found while loading a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Where in the document, as `flags.new_checkout.rules[2].rollout`; empty for the whole document.
    pub path: String,
    /// The line in the source text, when the document was read from text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The column in the source text, when the document was read from text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong and, where it helps, what to do instead.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(path: impl Into<String>, pos: Option<Pos>, message: String) -> Self {
        Diagnostic {
            path: path.into(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            message,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A document that could not be loaded, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem{} in the flag document", .diagnostics.len(), if .diagnostics.len() == 1 { "" } else { "s" })]
pub struct LoadError {
    /// Every problem, in document order.
    pub diagnostics: Vec<Diagnostic>,
}
