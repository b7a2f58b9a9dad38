//! Just enough lexing to find flag references without being fooled: string literals delimited
//! the way each language delimits them (quotes, escapes, raw strings, templates), comments
//! skipped, identifiers and punctuation kept so SDK calls can be recognised.
//!
//! A lexer never fails: on input it does not understand it moves on by one byte. Only ASCII
//! matters to it (flag keys are ASCII), so it works on bytes and never validates UTF-8.

use std::path::Path;

/// The languages `vexil lint` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// `.rs`
    Rust,
    /// `.py`, `.pyi`
    Python,
    /// JavaScript and TypeScript: `.js`, `.jsx`, `.mjs`, `.cjs`, `.ts`, `.tsx`, `.mts`, `.cts`
    JavaScript,
    /// `.go`
    Go,
    /// `.java`
    Java,
    /// `.kt`, `.kts`
    Kotlin,
    /// `.rb`, `.rake`, `Rakefile`, `Gemfile`
    Ruby,
    /// `.cs`
    CSharp,
    /// `.yaml`, `.yml`
    Yaml,
    /// `.json`
    Json,
}

impl Lang {
    /// The language of a file, from its name.
    pub fn of(path: &Path) -> Option<Lang> {
        let name = path.file_name()?.to_str()?;
        if matches!(name, "Rakefile" | "Gemfile") {
            return Some(Lang::Ruby);
        }
        // Minified bundles are build output, not code anyone edits.
        if name.ends_with(".min.js") {
            return None;
        }
        let ext = name.rsplit_once('.')?.1;
        Some(match ext {
            "rs" => Lang::Rust,
            "py" | "pyi" => Lang::Python,
            "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" => Lang::JavaScript,
            "go" => Lang::Go,
            "java" => Lang::Java,
            "kt" | "kts" => Lang::Kotlin,
            "rb" | "rake" => Lang::Ruby,
            "cs" => Lang::CSharp,
            "yaml" | "yml" => Lang::Yaml,
            "json" => Lang::Json,
            _ => return None,
        })
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An identifier or keyword.
    Ident,
    /// A string literal. `constant` is false for one with interpolations (a template), whose
    /// content is not a fixed text.
    Str {
        /// Whether the literal's text is fixed.
        constant: bool,
    },
    /// One punctuation byte.
    Punct(u8),
    /// A number or anything else that is one unit but none of the above.
    Other,
}

/// One token. Offsets are byte offsets into the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// Where it starts (for a string, its opening quote or prefix).
    pub at: u32,
    /// The text that matters: an identifier's name, a string's content between its delimiters.
    pub text: (u32, u32),
    /// Whether a line break separates it from the token before (for paren-less Ruby calls).
    pub newline_before: bool,
}

/// The result of lexing one file: its tokens and where its comments are.
#[derive(Debug, Default)]
pub struct Lexed {
    /// The tokens, in source order.
    pub tokens: Vec<Token>,
    /// Comment spans (byte ranges), in source order; filled only when asked for.
    pub comments: Vec<(usize, usize)>,
}

impl Lexed {
    /// Empties both lists, keeping their memory.
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.comments.clear();
    }
}

/// Lexes `src` as `lang` into `out` (cleared first). Comments are recorded only when
/// `want_comments` (custom patterns need them blanked; nothing else does).
pub fn lex(lang: Lang, src: &[u8], want_comments: bool, out: &mut Lexed) {
    out.clear();
    let mut lx = Lexer {
        src,
        pos: 0,
        lang,
        out,
        want_comments,
        newline: false,
        depth: 0,
    };
    match lang {
        Lang::Yaml => lx.yaml(),
        _ => lx.code(false),
    }
}

struct Lexer<'s, 'o> {
    src: &'s [u8],
    pos: usize,
    lang: Lang,
    out: &'o mut Lexed,
    want_comments: bool,
    /// Whether a line break was seen since the last token.
    newline: bool,
    /// How many interpolations deep the lexer is.
    depth: usize,
}

/// Interpolations nested deeper than this are skipped as text rather than lexed, so that no
/// input can exhaust the stack.
const MAX_NESTING: usize = 32;

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80
}

fn is_ident_continue(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Keywords after which a `/` starts a regular expression rather than a division.
const REGEX_AFTER_KEYWORDS: [&[u8]; 22] = [
    b"return",
    b"typeof",
    b"instanceof",
    b"in",
    b"of",
    b"new",
    b"delete",
    b"void",
    b"throw",
    b"case",
    b"do",
    b"else",
    b"yield",
    b"await",
    b"if",
    b"unless",
    b"when",
    b"and",
    b"or",
    b"not",
    b"elsif",
    b"while",
];

fn off(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Lexer<'_, '_> {
    fn peek(&self, n: usize) -> u8 {
        self.src.get(self.pos + n).copied().unwrap_or(0)
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.src[self.pos.min(self.src.len())..].starts_with(s)
    }

    fn push(&mut self, kind: Kind, at: usize, text: (usize, usize)) {
        self.out.tokens.push(Token {
            kind,
            at: off(at),
            text: (off(text.0), off(text.1)),
            newline_before: self.newline,
        });
        self.newline = false;
    }

    fn comment(&mut self, start: usize, end: usize) {
        if self.want_comments {
            self.out.comments.push((start, end));
        }
    }

    fn line_comment(&mut self) {
        let start = self.pos;
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.pos += 1;
        }
        self.comment(start, self.pos);
    }

    fn block_comment(&mut self, open: &[u8], close: &[u8], nests: bool) {
        let start = self.pos;
        self.pos += open.len();
        let mut depth = 1usize;
        while self.pos < self.src.len() {
            if self.starts_with(close) {
                self.pos += close.len();
                depth -= 1;
                if depth == 0 {
                    break;
                }
            } else if nests && self.starts_with(open) {
                self.pos += open.len();
                depth += 1;
            } else {
                if self.src[self.pos] == b'\n' {
                    self.newline = true;
                }
                self.pos += 1;
            }
        }
        self.comment(start, self.pos);
    }

    fn has_c_comments(&self) -> bool {
        !matches!(self.lang, Lang::Python | Lang::Ruby | Lang::Yaml)
    }

    fn has_hash_comments(&self) -> bool {
        matches!(self.lang, Lang::Python | Lang::Ruby)
    }

    /// Whether a `/` here starts a regular expression (JavaScript, Ruby), judged by the token
    /// before it.
    fn regex_allowed(&self) -> bool {
        if !matches!(self.lang, Lang::JavaScript | Lang::Ruby) {
            return false;
        }
        match self.out.tokens.last() {
            None => true,
            Some(t) => match t.kind {
                Kind::Punct(c) => !matches!(c, b')' | b']'),
                Kind::Ident => {
                    let word = &self.src[t.text.0 as usize..t.text.1 as usize];
                    REGEX_AFTER_KEYWORDS.contains(&word)
                }
                Kind::Str { .. } | Kind::Other => false,
            },
        }
    }

    /// Skips a regular-expression literal starting at `/`; false (nothing consumed) when the
    /// line ends before it closes, in which case the `/` was a division after all.
    fn regex(&mut self) -> bool {
        let mut i = self.pos + 1;
        let mut class = false;
        while i < self.src.len() {
            match self.src[i] {
                b'\n' => return false,
                b'\\' => i += 1,
                b'[' => class = true,
                b']' => class = false,
                b'/' if !class => {
                    i += 1;
                    while i < self.src.len() && self.src[i].is_ascii_alphabetic() {
                        i += 1;
                    }
                    let at = self.pos;
                    self.pos = i;
                    self.push(Kind::Other, at, (at, i));
                    return true;
                }
                _ => {}
            }
            i += 1;
        }
        false
    }

    /// Code, up to the end of the input or, with `in_interpolation`, up to the `}` that closes
    /// an interpolation (consumed).
    fn code(&mut self, in_interpolation: bool) {
        let mut depth = 0usize;
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            match c {
                b'\n' => {
                    self.newline = true;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' | 0x0c => self.pos += 1,
                b'/' if self.peek(1) == b'/' && self.has_c_comments() => self.line_comment(),
                b'/' if self.peek(1) == b'*' && self.has_c_comments() => {
                    let nests = matches!(self.lang, Lang::Rust | Lang::Kotlin);
                    self.block_comment(b"/*", b"*/", nests);
                }
                b'#' if self.has_hash_comments() => {
                    self.line_comment();
                }
                b'=' if self.lang == Lang::Ruby
                    && self.starts_with(b"=begin")
                    && (self.pos == 0 || self.src[self.pos - 1] == b'\n') =>
                {
                    let start = self.pos;
                    match find_line(self.src, self.pos, b"=end") {
                        Some(end) => self.pos = end,
                        None => self.pos = self.src.len(),
                    }
                    self.comment(start, self.pos);
                }
                b'{' => {
                    depth += 1;
                    self.punct(c);
                }
                b'}' => {
                    if in_interpolation && depth == 0 {
                        self.pos += 1;
                        return;
                    }
                    depth = depth.saturating_sub(1);
                    self.punct(c);
                }
                b'"' => self.double_quote(self.pos),
                b'\'' => self.single_quote(),
                b'`' => match self.lang {
                    Lang::JavaScript => self.js_template(),
                    Lang::Go => self.raw_until(self.pos, self.pos + 1, b"`"),
                    Lang::Ruby => self.escaped(self.pos, self.pos + 1, b'`', None),
                    _ => self.punct(c),
                },
                b'@' if self.lang == Lang::CSharp && matches!(self.peek(1), b'"' | b'$') => {
                    self.csharp_prefixed()
                }
                b'$' if self.lang == Lang::CSharp && matches!(self.peek(1), b'"' | b'@') => {
                    self.csharp_prefixed()
                }
                b':' if self.lang == Lang::Ruby => self.ruby_colon(),
                b'%' if self.lang == Lang::Ruby && self.ruby_percent() => {}
                b'<' if self.lang == Lang::Ruby && self.ruby_heredoc() => {}
                b'/' if self.regex_allowed() && self.regex() => {}
                b'0'..=b'9' => self.number(),
                _ if is_ident_start(c) => self.ident(),
                _ => self.punct(c),
            }
        }
    }

    /// The code of an interpolation (`${…}`, `#{…}`, `{…}`), the cursor just inside it; up to
    /// and including its closing brace.
    fn interpolation(&mut self) {
        if self.depth >= MAX_NESTING {
            return;
        }
        self.depth += 1;
        self.code(true);
        self.depth -= 1;
    }

    fn punct(&mut self, c: u8) {
        let at = self.pos;
        self.pos += 1;
        self.push(Kind::Punct(c), at, (at, at + 1));
    }

    fn number(&mut self) {
        let at = self.pos;
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            if c.is_ascii_alphanumeric() || c == b'_' {
                self.pos += 1;
            } else if c == b'.' && self.peek(1).is_ascii_digit() {
                self.pos += 2;
            } else {
                break;
            }
        }
        self.push(Kind::Other, at, (at, self.pos));
    }

    fn ident(&mut self) {
        let at = self.pos;
        while self.pos < self.src.len() && is_ident_continue(self.src[self.pos]) {
            self.pos += 1;
        }
        // Ruby method names may end in `?` or `!` (`enabled?`), written right after the name.
        if self.lang == Lang::Ruby
            && matches!(self.peek(0), b'?' | b'!')
            && !matches!(self.peek(1), b'=' | b':')
        {
            self.pos += 1;
        }
        let word = &self.src[at..self.pos];
        let next = self.peek(0);
        // String prefixes: the identifier is part of the literal that follows it.
        match self.lang {
            Lang::Rust => match word {
                b"r" | b"br" | b"cr" if (next == b'"' || next == b'#') && self.rust_raw(at) => {
                    return;
                }
                b"b" | b"c" if next == b'"' => return self.double_quote(at),
                b"b" if next == b'\'' => return self.char_literal(),
                _ => {}
            },
            Lang::Python
                if (next == b'"' || next == b'\'')
                    && word.len() <= 2
                    && word.iter().all(|c| {
                        matches!(c.to_ascii_lowercase(), b'r' | b'b' | b'u' | b'f' | b't')
                    }) =>
            {
                return self.python_string(at, next);
            }
            _ => {}
        }
        self.push(Kind::Ident, at, (at, self.pos));
    }

    /// A literal opened by `"` (at `self.pos`), with `at` the start of its prefix.
    fn double_quote(&mut self, at: usize) {
        match self.lang {
            Lang::Python => self.python_string(at, b'"'),
            Lang::Java | Lang::CSharp | Lang::Kotlin if self.starts_with(b"\"\"\"") => {
                let n = count_run(self.src, self.pos, b'"');
                match self.lang {
                    // Java text blocks have escapes; Kotlin raw strings and C# raw strings
                    // have none. All end at the same run of quotes.
                    Lang::Java => self.raw_until(at, self.pos + 3, b"\"\"\""),
                    Lang::Kotlin => self.kotlin_raw(at),
                    _ => {
                        let close = vec![b'"'; n];
                        self.raw_until(at, self.pos + n, &close);
                    }
                }
            }
            Lang::Kotlin => self.escaped(at, self.pos + 1, b'"', Some(Interp::Dollar)),
            Lang::Ruby => self.escaped(at, self.pos + 1, b'"', Some(Interp::Hash)),
            _ => self.escaped(at, self.pos + 1, b'"', None),
        }
    }

    fn single_quote(&mut self) {
        match self.lang {
            Lang::Python => self.python_string(self.pos, b'\''),
            Lang::JavaScript | Lang::Yaml | Lang::Json => {
                self.escaped(self.pos, self.pos + 1, b'\'', None)
            }
            Lang::Ruby => self.escaped(self.pos, self.pos + 1, b'\'', None),
            Lang::Rust => {
                // A character literal, or a lifetime / label (`'a`, `'static`).
                let is_char = self.peek(1) == b'\\'
                    || (self.peek(1) != b'\'' && {
                        let len = utf8_len(self.peek(1));
                        self.peek(1 + len) == b'\''
                    });
                if is_char {
                    self.char_literal();
                } else {
                    self.punct(b'\'');
                }
            }
            Lang::Go | Lang::Java | Lang::Kotlin | Lang::CSharp => self.char_literal(),
        }
    }

    /// A character literal starting at the `'` under the cursor: skipped, it can never be a
    /// flag key.
    fn char_literal(&mut self) {
        let at = self.pos;
        if self.src[self.pos] != b'\'' {
            self.pos += 1; // a `b` prefix
        }
        self.pos += 1;
        while self.pos < self.src.len() {
            match self.src[self.pos] {
                b'\\' => self.pos += 2,
                b'\'' => {
                    self.pos += 1;
                    break;
                }
                b'\n' => break,
                _ => self.pos += 1,
            }
        }
        self.pos = self.pos.min(self.src.len());
        self.push(Kind::Other, at, (at, self.pos));
    }

    /// A string with backslash escapes from `content` up to `close`, with optional
    /// interpolations lexed as code.
    fn escaped(&mut self, at: usize, content: usize, close: u8, interp: Option<Interp>) {
        self.pos = content;
        let mut constant = true;
        let mut end = self.src.len();
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            if c == b'\\' {
                self.pos += 2;
                continue;
            }
            if c == close {
                end = self.pos;
                self.pos += 1;
                break;
            }
            match interp {
                Some(Interp::Hash) if c == b'#' && self.peek(1) == b'{' => {
                    constant = false;
                    self.pos += 2;
                    self.interpolation();
                    continue;
                }
                Some(Interp::Dollar) if c == b'$' && self.peek(1) == b'{' => {
                    constant = false;
                    self.pos += 2;
                    self.interpolation();
                    continue;
                }
                Some(Interp::Dollar) if c == b'$' && is_ident_start(self.peek(1)) => {
                    constant = false;
                }
                _ => {}
            }
            if c == b'\n' && close != b'`' && !matches!(self.lang, Lang::Ruby | Lang::Rust) {
                // An unterminated literal: stop at the line's end rather than swallow the file.
                end = self.pos;
                constant = false;
                break;
            }
            self.pos += 1;
        }
        self.pos = self.pos.min(self.src.len());
        let end = end.min(self.src.len());
        self.push(Kind::Str { constant }, at, (content.min(end), end));
    }

    /// A literal without escapes from `content` to the first `close`.
    fn raw_until(&mut self, at: usize, content: usize, close: &[u8]) {
        let rest = self.src.get(content..).unwrap_or_default();
        let (end, after) = match find(rest, close) {
            Some(i) => (content + i, content + i + close.len()),
            None => (self.src.len(), self.src.len()),
        };
        self.pos = after;
        self.push(Kind::Str { constant: true }, at, (content.min(end), end));
    }

    /// Rust's `r"…"`, `r#"…"#`, `br"…"`; `self.pos` is after the prefix. False when this is a
    /// raw identifier (`r#type`) instead.
    fn rust_raw(&mut self, at: usize) -> bool {
        let hashes = count_run(self.src, self.pos, b'#');
        if self.src.get(self.pos + hashes) != Some(&b'"') {
            return false;
        }
        let mut close = vec![b'"'];
        close.extend(std::iter::repeat_n(b'#', hashes));
        self.raw_until(at, self.pos + hashes + 1, &close);
        true
    }

    /// Python strings: `'…'`, `"…"`, `'''…'''`, `"""…"""`, any prefix. Backslashes keep the
    /// next character from closing the string even in raw strings, as in Python.
    fn python_string(&mut self, at: usize, quote: u8) {
        let triple = self.src.get(self.pos..self.pos + 3) == Some(&[quote; 3][..]);
        let prefix = self.src[at..self.pos].to_ascii_lowercase();
        let formatted = prefix.contains(&b'f') || prefix.contains(&b't');
        let content = self.pos + if triple { 3 } else { 1 };
        self.pos = content;
        let mut end = self.src.len();
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            if c == b'\\' {
                self.pos += 2;
                continue;
            }
            if c == quote && (!triple || self.src.get(self.pos..self.pos + 3) == Some(&[quote; 3]))
            {
                end = self.pos;
                self.pos += if triple { 3 } else { 1 };
                break;
            }
            if c == b'\n' && !triple {
                end = self.pos;
                break;
            }
            self.pos += 1;
        }
        self.pos = self.pos.min(self.src.len());
        let end = end.min(self.src.len());
        let text = &self.src[content.min(end)..end];
        let constant = !(formatted && text.contains(&b'{'));
        self.push(Kind::Str { constant }, at, (content.min(end), end));
    }

    /// A JavaScript template literal; `${…}` is code (which may hold more literals).
    fn js_template(&mut self) {
        let at = self.pos;
        self.pos += 1;
        let content = self.pos;
        let mut constant = true;
        let mut end = self.src.len();
        while self.pos < self.src.len() {
            match self.src[self.pos] {
                b'\\' => self.pos += 2,
                b'`' => {
                    end = self.pos;
                    self.pos += 1;
                    break;
                }
                b'$' if self.peek(1) == b'{' => {
                    constant = false;
                    self.pos += 2;
                    self.interpolation();
                }
                _ => self.pos += 1,
            }
        }
        self.pos = self.pos.min(self.src.len());
        let end = end.min(self.src.len());
        self.push(Kind::Str { constant }, at, (content.min(end), end));
    }

    /// Kotlin's `"""…"""`: no escapes, `${…}` templates.
    fn kotlin_raw(&mut self, at: usize) {
        let content = self.pos + 3;
        self.pos = content;
        let mut constant = true;
        let mut end = self.src.len();
        while self.pos < self.src.len() {
            if self.starts_with(b"\"\"\"") {
                // Extra quotes before the closing three belong to the string.
                let n = count_run(self.src, self.pos, b'"');
                end = self.pos + n - 3;
                self.pos += n;
                break;
            }
            if self.src[self.pos] == b'$' && self.peek(1) == b'{' {
                constant = false;
                self.pos += 2;
                self.interpolation();
                continue;
            }
            self.pos += 1;
        }
        self.pos = self.pos.min(self.src.len());
        let end = end.min(self.src.len());
        self.push(Kind::Str { constant }, at, (content.min(end), end));
    }

    /// C#'s `@"…"` (verbatim: `""` is a quote), `$"…"` (interpolated), `$@"…"`, `@$"…"` and
    /// `$"""…"""`.
    fn csharp_prefixed(&mut self) {
        let at = self.pos;
        let mut verbatim = false;
        let mut interpolated = false;
        while matches!(self.peek(0), b'@' | b'$') {
            if self.peek(0) == b'@' {
                verbatim = true;
            } else {
                interpolated = true;
            }
            self.pos += 1;
        }
        if self.peek(0) != b'"' {
            self.push(Kind::Punct(self.src[at]), at, (at, at + 1));
            self.pos = at + 1;
            return;
        }
        if self.starts_with(b"\"\"\"") {
            let n = count_run(self.src, self.pos, b'"');
            let close = vec![b'"'; n];
            self.raw_until(at, self.pos + n, &close);
            if let Some(t) = self.out.tokens.last_mut() {
                t.kind = Kind::Str {
                    constant: !interpolated,
                };
            }
            return;
        }
        self.pos += 1;
        let content = self.pos;
        let mut constant = true;
        let mut end = self.src.len();
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            if verbatim && c == b'"' && self.peek(1) == b'"' {
                self.pos += 2;
                continue;
            }
            if !verbatim && c == b'\\' {
                self.pos += 2;
                continue;
            }
            if c == b'"' {
                end = self.pos;
                self.pos += 1;
                break;
            }
            if interpolated && c == b'{' {
                if self.peek(1) == b'{' {
                    self.pos += 2;
                    continue;
                }
                constant = false;
                self.pos += 1;
                self.interpolation();
                continue;
            }
            self.pos += 1;
        }
        self.pos = self.pos.min(self.src.len());
        let end = end.min(self.src.len());
        self.push(Kind::Str { constant }, at, (content.min(end), end));
    }

    /// Ruby's `:symbol` and `:"symbol"` are literals too; `::` and `a ? b : c` are not.
    fn ruby_colon(&mut self) {
        let next = self.peek(1);
        let prev = if self.pos > 0 {
            self.src[self.pos - 1]
        } else {
            b' '
        };
        if prev == b':' || next == b':' {
            return self.punct(b':');
        }
        if next == b'"' {
            let at = self.pos;
            return self.escaped(at, self.pos + 2, b'"', Some(Interp::Hash));
        }
        if is_ident_start(next) && !prev.is_ascii_alphanumeric() {
            let at = self.pos;
            let start = self.pos + 1;
            self.pos = start;
            while self.pos < self.src.len() && is_ident_continue(self.src[self.pos]) {
                self.pos += 1;
            }
            if matches!(self.peek(0), b'?' | b'!') {
                self.pos += 1;
            }
            return self.push(Kind::Str { constant: true }, at, (start, self.pos));
        }
        self.punct(b':')
    }

    /// Ruby's `%q(…)`, `%Q[…]`, `%(…)`, `%w[…]`, `%i[…]`, `%r{…}`: true when one was read.
    /// The words of `%w` and `%i` are literals each.
    fn ruby_percent(&mut self) -> bool {
        let (kind, open_at) = match self.peek(1) {
            c @ (b'q' | b'Q' | b'w' | b'W' | b'i' | b'I' | b'r' | b's') => (c, self.pos + 2),
            b'(' | b'[' | b'{' | b'<' => (b'Q', self.pos + 1),
            _ => return false,
        };
        let Some(&open) = self.src.get(open_at) else {
            return false;
        };
        let close = match open {
            b'(' => b')',
            b'[' => b']',
            b'{' => b'}',
            b'<' => b'>',
            b'|' | b'!' | b'/' | b'^' => open,
            _ => return false,
        };
        // `x % (y)` is a modulo; a literal follows an operator, a comma or an opening bracket.
        if let Some(t) = self.out.tokens.last()
            && matches!(t.kind, Kind::Ident | Kind::Other | Kind::Str { .. })
            && open_at == self.pos + 1
        {
            return false;
        }
        let at = self.pos;
        let content = open_at + 1;
        let mut depth = 1usize;
        let mut i = content;
        while i < self.src.len() {
            let c = self.src[i];
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == close && open != close {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            } else if c == open && open != close {
                depth += 1;
            } else if c == close {
                break;
            }
            i += 1;
        }
        let end = i.min(self.src.len());
        self.pos = (end + 1).min(self.src.len());
        match kind {
            b'w' | b'W' | b'i' | b'I' => {
                let mut j = content;
                while j < end {
                    while j < end && self.src[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    let start = j;
                    while j < end && !self.src[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if start < j {
                        self.push(Kind::Str { constant: true }, start, (start, j));
                    }
                }
            }
            b'r' => self.push(Kind::Other, at, (content, end)),
            _ => {
                let constant = !self.src[content..end].windows(2).any(|w| w == b"#{");
                self.push(Kind::Str { constant }, at, (content, end));
            }
        }
        true
    }

    /// Ruby heredocs: `<<~EOS`, `<<-EOS`, `<<EOS`, `<<~'EOS'`. The body (from the next line to
    /// the terminator) is one literal. True when one was read.
    fn ruby_heredoc(&mut self) -> bool {
        if !self.starts_with(b"<<") {
            return false;
        }
        let mut i = self.pos + 2;
        let squiggly = matches!(self.src.get(i), Some(b'~' | b'-'));
        if squiggly {
            i += 1;
        }
        let quote = match self.src.get(i) {
            Some(&q @ (b'\'' | b'"')) => {
                i += 1;
                Some(q)
            }
            _ => None,
        };
        let start = i;
        while i < self.src.len() && (self.src[i].is_ascii_alphanumeric() || self.src[i] == b'_') {
            i += 1;
        }
        // `<<EOS` needs an upper-case terminator; otherwise `a << b` is a shift or an append.
        let id = &self.src[start..i];
        if id.is_empty()
            || (!squiggly && quote.is_none() && !id.iter().all(|c| !c.is_ascii_lowercase()))
        {
            return false;
        }
        if let Some(q) = quote {
            if self.src.get(i) != Some(&q) {
                return false;
            }
            i += 1;
        }
        let id = id.to_vec();
        let at = self.pos;
        // The rest of the line is code; the body starts on the next line.
        let Some(nl) = self.src[i..]
            .iter()
            .position(|&c| c == b'\n')
            .map(|p| i + p)
        else {
            return false;
        };
        self.push(Kind::Other, at, (at, i));
        self.pos = i;
        // Lex the rest of the opening line as code, then skip the body.
        let body_start = nl + 1;
        let mut j = body_start;
        let mut body_end = self.src.len();
        let mut after = self.src.len();
        while j < self.src.len() {
            let line_end = self.src[j..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(self.src.len(), |p| j + p);
            let line = &self.src[j..line_end];
            let trimmed = trim_ascii(line);
            if trimmed == id.as_slice() {
                body_end = j;
                after = line_end;
                break;
            }
            j = line_end + 1;
        }
        // The code after the opener on its line: lex it in place, then jump past the body.
        let src = self.src;
        let mut sub = Lexer {
            src: &src[..nl],
            pos: self.pos,
            lang: self.lang,
            out: &mut *self.out,
            want_comments: self.want_comments,
            newline: false,
            depth: self.depth,
        };
        sub.code(false);
        let body_start = body_start.min(body_end);
        self.newline = true;
        self.push(
            Kind::Str { constant: false },
            body_start,
            (body_start, body_end),
        );
        self.pos = after;
        true
    }

    /// YAML: comments, quoted scalars, and plain scalars (a whole scalar is one literal);
    /// block scalars (`|`, `>`) are text and skipped.
    fn yaml(&mut self) {
        let src = self.src;
        // The indentation of the line that opened a block scalar, while inside one.
        let mut block: Option<usize> = None;
        let mut flow = 0usize;
        while self.pos < src.len() {
            // At the start of a line.
            let line_start = self.pos;
            let mut indent = 0;
            while self.pos < src.len() && src[self.pos] == b' ' {
                self.pos += 1;
                indent += 1;
            }
            let blank = self.pos >= src.len() || matches!(src[self.pos], b'\n' | b'\r');
            if let Some(parent) = block {
                if blank || indent > parent {
                    self.skip_line();
                    continue;
                }
                block = None;
            }
            let mut seg: Option<usize> = None;
            let mut seg_end = self.pos;
            let mut value_position = true;
            while self.pos < src.len() && src[self.pos] != b'\n' {
                let c = src[self.pos];
                let prev_space =
                    self.pos == line_start || matches!(src[self.pos - 1], b' ' | b'\t');
                match c {
                    b'#' if prev_space => {
                        self.end_plain(seg.take(), seg_end);
                        self.line_comment();
                        break;
                    }
                    b'"' | b'\'' if seg.is_none() => {
                        self.yaml_quoted(c);
                        value_position = false;
                        seg_end = self.pos;
                        continue;
                    }
                    b':' if matches!(self.peek(1), b' ' | b'\t' | b'\n' | b'\r' | 0)
                        || (flow > 0 && matches!(self.peek(1), b',' | b']' | b'}')) =>
                    {
                        self.end_plain(seg.take(), seg_end);
                        self.punct(b':');
                        value_position = true;
                        continue;
                    }
                    b'-' if seg.is_none()
                        && matches!(self.peek(1), b' ' | b'\t' | b'\n' | b'\r' | 0) =>
                    {
                        self.pos += 1;
                        value_position = true;
                        continue;
                    }
                    b'[' | b'{' if seg.is_none() => {
                        flow += 1;
                        self.punct(c);
                        continue;
                    }
                    b']' | b'}' | b',' if flow > 0 => {
                        self.end_plain(seg.take(), seg_end);
                        if c != b',' {
                            flow -= 1;
                        }
                        self.punct(c);
                        continue;
                    }
                    b'|' | b'>' if seg.is_none() && value_position && flow == 0 => {
                        block = Some(indent);
                        self.skip_line();
                        break;
                    }
                    b'&' | b'*' | b'!' if seg.is_none() => {
                        // An anchor, alias or tag: one word, not a scalar.
                        while self.pos < src.len() && !matches!(src[self.pos], b' ' | b'\n') {
                            self.pos += 1;
                        }
                        continue;
                    }
                    b' ' | b'\t' | b'\r' => {}
                    _ => {
                        if seg.is_none() {
                            seg = Some(self.pos);
                        }
                        seg_end = self.pos + 1;
                    }
                }
                self.pos += 1;
            }
            self.end_plain(seg.take(), seg_end);
            if self.pos < src.len() && src[self.pos] == b'\n' {
                self.pos += 1;
                self.newline = true;
            }
        }
    }

    fn skip_line(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.pos += 1;
        }
        if self.pos < self.src.len() {
            self.pos += 1;
        }
    }

    fn end_plain(&mut self, start: Option<usize>, end: usize) {
        if let Some(start) = start
            && start < end
        {
            self.push(Kind::Str { constant: true }, start, (start, end));
        }
    }

    /// A YAML quoted scalar: `'…'` (`''` is a quote) or `"…"` (backslash escapes); either may
    /// span lines.
    fn yaml_quoted(&mut self, quote: u8) {
        let at = self.pos;
        self.pos += 1;
        let content = self.pos;
        let mut end = self.src.len();
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            if quote == b'"' && c == b'\\' {
                self.pos += 2;
                continue;
            }
            if c == quote {
                if quote == b'\'' && self.peek(1) == b'\'' {
                    self.pos += 2;
                    continue;
                }
                end = self.pos;
                self.pos += 1;
                break;
            }
            self.pos += 1;
        }
        self.pos = self.pos.min(self.src.len());
        let end = end.min(self.src.len());
        self.push(Kind::Str { constant: true }, at, (content.min(end), end));
    }
}

/// How a language interpolates inside double-quoted strings.
#[derive(Debug, Clone, Copy)]
enum Interp {
    /// Ruby's `#{…}`.
    Hash,
    /// Kotlin's `${…}` and `$name`.
    Dollar,
}

fn count_run(src: &[u8], from: usize, c: u8) -> usize {
    src.get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| b == c)
        .count()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The offset just past the line (from `from` on) that starts with `marker`, if any.
fn find_line(src: &[u8], from: usize, marker: &[u8]) -> Option<usize> {
    let mut i = from;
    loop {
        let nl = src[i..].iter().position(|&c| c == b'\n').map(|p| i + p)?;
        i = nl + 1;
        if src[i..].starts_with(marker) {
            let end = src[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(src.len(), |p| i + p);
            return Some(end);
        }
    }
}

fn trim_ascii(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constant string literals of `src`, as text.
    fn strings(lang: Lang, src: &str) -> Vec<String> {
        let mut out = Lexed::default();
        lex(lang, src.as_bytes(), false, &mut out);
        out.tokens
            .iter()
            .filter(|t| t.kind == Kind::Str { constant: true })
            .map(|t| src[t.text.0 as usize..t.text.1 as usize].to_owned())
            .collect()
    }

    fn check(lang: Lang, src: &str, expected: &[&str]) {
        assert_eq!(strings(lang, src), expected, "{lang:?}: {src}");
    }

    #[test]
    fn literals_per_language() {
        check(Lang::Rust, r#"let a = "x"; // "no""#, &["x"]);
        check(
            Lang::Rust,
            r##"r#"a "q" b"# /* "no" /* "nested" */ */ "y""##,
            &[r#"a "q" b"#, "y"],
        );
        check(
            Lang::Rust,
            r#"fn f<'a>(x: &'a str) -> char { '"' } "k""#,
            &["k"],
        );
        check(
            Lang::Rust,
            r#"let r#type = 1; b"bytes" "e\"s""#,
            &["bytes", r#"e\"s"#],
        );
        check(
            Lang::Python,
            "# 'no'\nx = 'a' + \"b\" + '''c\n'''",
            &["a", "b", "c\n"],
        );
        check(Lang::Python, r#"f"{x}" rb'\'' f"const""#, &[r"\'", "const"]);
        check(
            Lang::JavaScript,
            "a = `t${ f('in') }x` // 'no'\n/* 'no' */ 'y'",
            &["in", "y"],
        );
        check(
            Lang::JavaScript,
            r#"x = /"[/]/g.test(s); y = a / b / "k""#,
            &["k"],
        );
        check(
            Lang::Go,
            "x := `raw \"q\"` + \"s\" // \"no\"\nr := '\"'",
            &["raw \"q\"", "s"],
        );
        check(
            Lang::Java,
            "String s = \"\"\"\n  text \"q\"\n  \"\"\"; char c = '\"'; \"k\"",
            &["\n  text \"q\"\n  ", "k"],
        );
        check(
            Lang::Kotlin,
            r#"val s = "a ${f("in")} b"; val t = "k""#,
            &["in", "k"],
        );
        check(
            Lang::Ruby,
            "x = :sym # 'no'\ny = \"a #{f('in')}\" + 'k'\n=begin\n'no'\n=end\nz = %w[a b]",
            &["sym", "in", "k", "a", "b"],
        );
        check(Lang::Ruby, "s = <<~EOS\n  \"no\n  EOS\nt = \"k\"", &["k"]);
        check(
            Lang::CSharp,
            r#"var a = @"c:\x""y"; var b = $"{F("in")}"; var c = "k";"#,
            &[r#"c:\x""y"#, "in", "k"],
        );
        check(
            Lang::Json,
            r#"{"a": ["b", 1, "c\"d"]}"#,
            &["a", "b", r#"c\"d"#],
        );
    }

    /// Random inputs made of the characters lexers care about: no panic, and every token's
    /// spans lie within the input, in order.
    #[test]
    fn never_panics() {
        const ALPHABET: &[u8] = b"\"'`/\\*#$@%{}()[]<>:=,.?!-|&~ \n\trbfuq0aZ_EOS=begin=end<<~";
        let langs = [
            Lang::Rust,
            Lang::Python,
            Lang::JavaScript,
            Lang::Go,
            Lang::Java,
            Lang::Kotlin,
            Lang::Ruby,
            Lang::CSharp,
            Lang::Yaml,
            Lang::Json,
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = Lexed::default();
        for _ in 0..3000 {
            let len = (next() % 80) as usize;
            let src: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            for lang in langs {
                lex(lang, &src, true, &mut out);
                for t in &out.tokens {
                    assert!(t.text.0 <= t.text.1 && t.text.1 as usize <= src.len());
                    assert!((t.at as usize) <= src.len());
                }
                for &(a, b) in &out.comments {
                    assert!(a <= b && b <= src.len());
                }
            }
        }
        // Deep nesting is cut off, not recursed into without end.
        let deep = "`${".repeat(100_000);
        lex(Lang::JavaScript, deep.as_bytes(), false, &mut out);
    }

    #[test]
    fn yaml_scalars() {
        check(
            Lang::Yaml,
            "# flags: no\nkey: value # no\nlist: [a, 'b c', \"d\"]\n- item\ntext: |\n  no\n  also no\nlast: two words\n",
            &[
                "key",
                "value",
                "list",
                "a",
                "b c",
                "d",
                "item",
                "text",
                "last",
                "two words",
            ],
        );
    }
}
