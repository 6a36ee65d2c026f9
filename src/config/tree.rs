//! A small position-keeping value tree shared by the JSON and TOML sources.
//!
//! serde's derive stops at the first error and forgets where values were, so
//! each file is parsed into this tree (every value and key carries its
//! `line:col`) and then checked field by field by [`Ctx`], which collects
//! every problem instead of stopping.

use super::{ConfigError, parse_duration};
use crate::event::Millis;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

#[derive(Clone, Debug)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Datetime,
    Arr(Vec<Node>),
    Obj(Vec<Entry>),
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_pos: Pos,
    pub(crate) val: Node,
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) pos: Pos,
    pub(crate) val: Val,
}

impl Node {
    /// "a string", "a number", ... for "expected X, got Y" messages.
    pub(crate) fn type_name(&self, table_word: &'static str) -> &'static str {
        match self.val {
            Val::Null => "null",
            Val::Bool(_) => "a boolean",
            Val::Int(_) | Val::Float(_) => "a number",
            Val::Str(_) => "a string",
            Val::Datetime => "a date-time",
            Val::Arr(_) => "an array",
            Val::Obj(_) => table_word,
        }
    }

    pub(crate) fn entries(&self) -> Option<&[Entry]> {
        match &self.val {
            Val::Obj(e) => Some(e),
            _ => None,
        }
    }

    /// The entry of an object with this key (the last one when repeated).
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().rev().find(|e| e.key == key)
    }
}

/// Bytes between two of [`LineIndex`]'s character counts: a column costs
/// at most about this many bytes of counting.
const CHAR_BLOCK: usize = 1024;

/// Maps byte offsets of one text to line:col.
///
/// A column counts characters from the start of its line. Counting them
/// afresh for every value is quadratic when a file is one long line (a
/// minified `security-config.json` with 200,000 tools took most of a minute
/// in `check`), so the characters before every [`CHAR_BLOCK`]-th byte are
/// counted once up front, and a column far into a line costs at most two
/// blocks of counting, whatever the line's length.
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
    /// `marks[i]`: the last character boundary at or before byte
    /// `i * CHAR_BLOCK`, and the characters before it.
    marks: Vec<(usize, usize)>,
}

impl<'t> LineIndex<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        let mut marks = Vec::with_capacity(text.len() / CHAR_BLOCK + 1);
        let (mut at, mut chars) = (0, 0);
        for i in 0..=text.len() / CHAR_BLOCK {
            let mut b = i * CHAR_BLOCK;
            while !text.is_char_boundary(b) {
                b -= 1;
            }
            chars += text[at..b].chars().count();
            at = b;
            marks.push((b, chars));
        }
        LineIndex {
            text,
            starts,
            marks,
        }
    }

    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = if offset - start <= CHAR_BLOCK {
            self.text
                .get(start..offset)
                .map_or(offset - start, |s| s.chars().count())
        } else {
            self.chars_upto(offset) - self.chars_upto(start)
        } + 1;
        Pos { line, col }
    }

    /// The characters in `text[..offset]` (`offset` a character boundary;
    /// otherwise the bytes after the last mark count as characters).
    fn chars_upto(&self, offset: usize) -> usize {
        let (b, chars) = self.marks[offset / CHAR_BLOCK];
        chars
            + self
                .text
                .get(b..offset)
                .map_or(offset - b, |s| s.chars().count())
    }
}

/// A syntax error: where and what. Reported alone.
pub(crate) struct SyntaxError {
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

/// Strict JSON (no comments, no trailing commas: the platform reads these
/// files with a strict parser, so mcpwatch must not accept more).
pub(crate) fn parse_json(text: &str) -> Result<Node, SyntaxError> {
    use jsonc_parser::{CollectOptions, ParseOptions, parse_to_ast};
    let opts = ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let idx = LineIndex::new(text);
    let parsed =
        parse_to_ast(text, &CollectOptions::default(), &opts).map_err(|e| SyntaxError {
            pos: idx.pos(e.range().start),
            message: e.kind().to_string(),
        })?;
    match parsed.value {
        Some(v) => Ok(json_node(&v, &idx)),
        None => Err(SyntaxError {
            pos: idx.pos(0),
            message: "empty file; expected a JSON object".into(),
        }),
    }
}

fn json_node(v: &jsonc_parser::ast::Value<'_>, idx: &LineIndex<'_>) -> Node {
    use jsonc_parser::ast::{ObjectPropName, Value};
    let (start, val) = match v {
        Value::StringLit(s) => (s.range.start, Val::Str(s.value.to_string())),
        Value::NumberLit(n) => (n.range.start, number(n.value)),
        Value::BooleanLit(b) => (b.range.start, Val::Bool(b.value)),
        Value::NullKeyword(n) => (n.range.start, Val::Null),
        Value::Array(a) => (
            a.range.start,
            Val::Arr(a.elements.iter().map(|e| json_node(e, idx)).collect()),
        ),
        Value::Object(o) => (
            o.range.start,
            Val::Obj(
                o.properties
                    .iter()
                    .map(|p| {
                        let (key, kstart) = match &p.name {
                            ObjectPropName::String(s) => (s.value.to_string(), s.range.start),
                            ObjectPropName::Word(w) => (w.value.to_string(), w.range.start),
                        };
                        Entry {
                            key,
                            key_pos: idx.pos(kstart),
                            val: json_node(&p.value, idx),
                        }
                    })
                    .collect(),
            ),
        ),
    };
    Node {
        pos: idx.pos(start),
        val,
    }
}

fn number(s: &str) -> Val {
    if let Ok(i) = s.parse::<i64>() {
        return Val::Int(i);
    }
    Val::Float(s.parse::<f64>().unwrap_or(f64::NAN))
}

/// TOML 1.x with spans.
pub(crate) fn parse_toml(text: &str) -> Result<Node, SyntaxError> {
    let idx = LineIndex::new(text);
    let table = toml::de::DeTable::parse(text).map_err(|e| SyntaxError {
        pos: idx.pos(e.span().map_or(0, |s| s.start)),
        message: e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    })?;
    Ok(Node {
        pos: idx.pos(table.span().start),
        val: toml_table(table.get_ref(), &idx),
    })
}

fn toml_table(t: &toml::de::DeTable<'_>, idx: &LineIndex<'_>) -> Val {
    Val::Obj(
        t.iter()
            .map(|(k, v)| Entry {
                key: k.get_ref().to_string(),
                key_pos: idx.pos(k.span().start),
                val: toml_node(v, idx),
            })
            .collect(),
    )
}

fn toml_node(v: &toml::Spanned<toml::de::DeValue<'_>>, idx: &LineIndex<'_>) -> Node {
    use toml::de::DeValue;
    let val = match v.get_ref() {
        DeValue::String(s) => Val::Str(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map_or(Val::Float(f64::NAN), Val::Int),
        DeValue::Float(f) => Val::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Val::Bool(*b),
        DeValue::Datetime(_) => Val::Datetime,
        DeValue::Array(a) => Val::Arr(a.iter().map(|e| toml_node(e, idx)).collect()),
        DeValue::Table(t) => toml_table(t, idx),
    };
    Node {
        pos: idx.pos(v.span().start),
        val,
    }
}

/// Collects the problems of one file.
pub(crate) struct Ctx {
    pub(crate) file: String,
    pub(crate) errors: Vec<ConfigError>,
    /// "an object" in JSON files, "a table" in TOML files.
    pub(crate) table_word: &'static str,
}

impl Ctx {
    pub(crate) fn new(file: impl Into<String>, table_word: &'static str) -> Self {
        Ctx {
            file: file.into(),
            errors: Vec::new(),
            table_word,
        }
    }

    pub(crate) fn err(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line: pos.line,
            col: pos.col,
            field: field.to_string(),
            message: message.into(),
        });
    }

    fn expected(&mut self, n: &Node, field: &str, what: &str) {
        let got = n.type_name(self.table_word);
        self.err(n.pos, field, format!("expected {what}, got {got}"));
    }

    pub(crate) fn obj<'n>(&mut self, n: &'n Node, field: &str) -> Option<&'n [Entry]> {
        match &n.val {
            Val::Obj(e) => Some(e),
            _ => {
                let w = self.table_word;
                self.expected(n, field, w);
                None
            }
        }
    }

    pub(crate) fn arr<'n>(&mut self, n: &'n Node, field: &str) -> Option<&'n [Node]> {
        match &n.val {
            Val::Arr(a) => Some(a),
            _ => {
                self.expected(n, field, "an array");
                None
            }
        }
    }

    pub(crate) fn str_<'n>(&mut self, n: &'n Node, field: &str, what: &str) -> Option<&'n str> {
        match &n.val {
            Val::Str(s) => Some(s),
            _ => {
                self.expected(n, field, what);
                None
            }
        }
    }

    pub(crate) fn bool_(&mut self, n: &Node, field: &str) -> Option<bool> {
        match n.val {
            Val::Bool(b) => Some(b),
            _ => {
                self.expected(n, field, "true or false");
                None
            }
        }
    }

    /// A whole number in `min..=max`; `what` words the message.
    pub(crate) fn int(
        &mut self,
        n: &Node,
        field: &str,
        min: i64,
        max: i64,
        what: &str,
    ) -> Option<i64> {
        let v = match n.val {
            Val::Int(i) => Some(i),
            Val::Float(f) if f.fract() == 0.0 && f.is_finite() && f.abs() < 9e15 => Some(f as i64),
            _ => None,
        };
        match v {
            Some(i) if (min..=max).contains(&i) => Some(i),
            Some(i) => {
                self.err(
                    n.pos,
                    field,
                    format!("{i} is out of range; expected {what}"),
                );
                None
            }
            None => {
                let got = n.type_name(self.table_word);
                let got = match n.val {
                    Val::Float(f) => format!("{f}"),
                    _ => got.to_string(),
                };
                self.err(n.pos, field, format!("expected {what}, got {got}"));
                None
            }
        }
    }

    /// Any finite number in `min..=max`.
    pub(crate) fn num(
        &mut self,
        n: &Node,
        field: &str,
        min: f64,
        max: f64,
        what: &str,
    ) -> Option<f64> {
        let v = match n.val {
            Val::Int(i) => Some(i as f64),
            Val::Float(f) if f.is_finite() => Some(f),
            _ => None,
        };
        match v {
            Some(x) if x >= min && x <= max => Some(x),
            Some(x) => {
                self.err(
                    n.pos,
                    field,
                    format!("{x} is out of range; expected {what}"),
                );
                None
            }
            None => {
                self.expected(n, field, what);
                None
            }
        }
    }

    /// A duration string of SPEC §2, at least `min`.
    pub(crate) fn duration(&mut self, n: &Node, field: &str, min: Millis) -> Option<Millis> {
        const WHAT: &str = "a duration such as \"500ms\", \"60s\", \"10m\", \"1h\" or \"90d\"";
        let s = self.str_(n, field, WHAT)?;
        match parse_duration(s) {
            Ok(d) if d >= min => Some(d),
            Ok(_) => {
                self.err(n.pos, field, format!("duration {s:?} must be more than 0"));
                None
            }
            Err(e) => {
                self.err(n.pos, field, e);
                None
            }
        }
    }

    /// An array of strings; reports each non-string element.
    pub(crate) fn str_list<'n>(
        &mut self,
        n: &'n Node,
        field: &str,
        what: &str,
    ) -> Vec<(Pos, &'n str)> {
        let mut out = Vec::new();
        if let Some(items) = self.arr(n, field) {
            for (i, item) in items.iter().enumerate() {
                if let Some(s) = self.str_(item, &format!("{field}[{i}]"), what) {
                    out.push((item.pos, s));
                }
            }
        }
        out
    }

    /// Reports keys of a table not in `allowed`.
    pub(crate) fn known_keys(&mut self, entries: &[Entry], prefix: &str, allowed: &[&str]) {
        for e in entries {
            if !allowed.contains(&e.key.as_str()) {
                let field = join(prefix, &e.key);
                self.err(
                    e.key_pos,
                    &field,
                    format!("unknown key {:?}; expected {}", e.key, one_of(allowed)),
                );
            }
        }
    }
}

/// `a.b` or `b` when the prefix is empty.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// "a, b or c".
pub(crate) fn one_of(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_counts_characters_from_one() {
        let idx = LineIndex::new("{\n  \"é\": 1\n}");
        assert_eq!(idx.pos(0), Pos { line: 1, col: 1 });
        assert_eq!(idx.pos(2), Pos { line: 2, col: 1 });
        // "é" is two bytes: the value `1` is at byte 10, character column 8.
        assert_eq!(idx.pos(10), Pos { line: 2, col: 8 });
    }

    #[test]
    fn line_index_columns_on_a_long_line_count_characters() {
        // One long line of mixed one- to four-byte characters, crossing
        // many blocks; every column agrees with counting from the start.
        let line: String = (0..3000)
            .map(|i| ["a", "é", "名", "🦀", "\"", " "][i % 6])
            .collect();
        let text = format!("{{\n{line}\n}}");
        let idx = LineIndex::new(&text);
        let start = 2;
        for (off, _) in text[start..start + line.len()].char_indices() {
            let want = text[start..start + off].chars().count() + 1;
            assert_eq!(idx.pos(start + off), Pos { line: 2, col: want });
        }
        assert_eq!(idx.pos(text.len() - 1), Pos { line: 3, col: 1 });
        assert_eq!(idx.pos(usize::MAX), Pos { line: 3, col: 2 });
    }

    #[test]
    fn one_of_words_lists() {
        assert_eq!(one_of(&["a"]), "a");
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
    }

    #[test]
    fn json_syntax_error_has_position() {
        // The trailing comma itself is the error.
        let e = parse_json("{\n  \"a\": 1,\n}").err().map(|e| e.pos);
        assert_eq!(e, Some(Pos { line: 2, col: 9 }));
    }

    #[test]
    fn toml_keeps_positions() {
        let n = parse_toml("a = 1\n[t]\nb = \"x\"\n")
            .ok()
            .unwrap_or_else(|| panic!());
        let t = n.get("t").map(|e| &e.val);
        let b = t.and_then(|t| t.get("b")).map(|e| (e.key_pos, e.val.pos));
        assert_eq!(b, Some((Pos { line: 3, col: 1 }, Pos { line: 3, col: 5 })));
    }
}
