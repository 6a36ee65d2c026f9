//! The parser's fast path: a strict, allocation-free walk over one JSON
//! object, filling the same `Fields` as the serde path.
//!
//! Audit lines are flat objects of short strings and integers, and for them
//! a general JSON deserializer does more than needed: this walk looks at
//! each byte once, compares keys in place and finds the end of a string
//! eight bytes at a time. It decides a line only where it can decide it
//! exactly as serde_json would, and otherwise returns [`Fallback`] so the
//! caller parses the line again with serde_json:
//!
//! - a backslash anywhere (escapes are serde_json's to decode and judge);
//! - a top-level value that is not an object, or anything outside the JSON
//!   grammar (so the rejection reason always comes from serde_json);
//! - numbers other than plain integers of up to 19 digits are *read* by
//!   serde_json (on their own text), so floats round exactly as there;
//! - nesting deeper than [`MAX_DEPTH`] inside a value.
//!
//! It never rejects a line itself. The property tests in
//! `tests/it/parse_props.rs` hold it to the serde path's answer on arbitrary
//! and mangled input.

use std::borrow::Cow;

use serde::de::DeserializeSeed;

use super::{Fields, Parser, Scalar, ScalarSeed, slot};
use crate::event::Kind;

/// The fast path could not decide this line; the serde path will.
#[derive(Debug)]
pub(super) struct Fallback;

type Step<T = ()> = Result<T, Fallback>;

/// Containers nested deeper than this inside one value are left to
/// serde_json (one bit per level of the walk's stack).
const MAX_DEPTH: u32 = 64;

/// Walks `text` (already checked to be UTF-8, BOM removed) as one JSON
/// object, offering every field to `fields` exactly as the serde path does.
pub(super) fn walk<'de>(
    text: &'de str,
    kind: Kind,
    parser: &Parser,
    fields: &mut Fields<'de>,
) -> Step {
    let mut c = Cursor {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    c.ws();
    c.eat(b'{')?;
    c.ws();
    if c.peek() == Some(b'}') {
        c.i += 1;
    } else {
        loop {
            let key = c.key()?;
            let slot = slot(kind, key);
            if fields.wants(slot) {
                let value = c.value(true)?;
                fields.offer(slot, value, parser);
            } else {
                c.value(false)?;
            }
            c.ws();
            match c.bump()? {
                b',' => c.ws(),
                b'}' => break,
                _ => return Err(Fallback),
            }
        }
    }
    c.ws();
    if c.i == c.b.len() {
        Ok(())
    } else {
        Err(Fallback)
    }
}

struct Cursor<'de> {
    text: &'de str,
    b: &'de [u8],
    i: usize,
}

impl<'de> Cursor<'de> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn bump(&mut self) -> Step<u8> {
        let c = self.peek().ok_or(Fallback)?;
        self.i += 1;
        Ok(c)
    }

    #[inline]
    fn eat(&mut self, want: u8) -> Step {
        if self.bump()? == want {
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    /// JSON's four whitespace bytes.
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// `"key"`, whitespace, `:`, whitespace.
    #[inline]
    fn key(&mut self) -> Step<&'de str> {
        self.eat(b'"')?;
        let key = self.string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Ok(key)
    }

    /// The rest of a string whose opening quote is consumed: its text,
    /// borrowed from the line. Gives up at a backslash or at a control
    /// character (which JSON does not allow unescaped).
    #[inline]
    fn string(&mut self) -> Step<&'de str> {
        let start = self.i;
        let b = self.b;
        let mut i = start;
        // Eight bytes at a time, straight to the first byte that can end
        // the string; the last few bytes of the line one at a time.
        while let Some(chunk) = b.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().map_err(|_| Fallback)?);
            let stops = string_stops(word);
            if stops != 0 {
                i += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        loop {
            match b.get(i).copied().ok_or(Fallback)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return Err(Fallback),
                _ => i += 1,
            }
        }
        self.i = i + 1;
        // Both ends are ASCII quotes, so both are char boundaries.
        self.text.get(start..i).ok_or(Fallback)
    }

    /// One value. With `want`, the value as the parser uses it; without,
    /// it is only checked and stepped over (`Absent`).
    #[inline]
    fn value(&mut self, want: bool) -> Step<Scalar<'de>> {
        match self.peek().ok_or(Fallback)? {
            b'"' => {
                self.i += 1;
                let s = self.string()?;
                Ok(Scalar::Str(Cow::Borrowed(s)))
            }
            b'-' | b'0'..=b'9' => self.number(want),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'{' | b'[' => {
                self.nested()?;
                Ok(Scalar::Absent)
            }
            _ => Err(Fallback),
        }
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Step<Scalar<'de>> {
        if self
            .b
            .get(self.i..)
            .is_some_and(|rest| rest.starts_with(word))
        {
            self.i += word.len();
            Ok(Scalar::Absent)
        } else {
            Err(Fallback)
        }
    }

    /// A number by JSON's grammar:
    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    #[inline]
    fn number(&mut self, want: bool) -> Step<Scalar<'de>> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        match self.bump()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return Err(Fallback),
        }
        let int_end = self.i;
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        if !want {
            return Ok(Scalar::Absent);
        }
        let plain = !negative && int_end == self.i && int_end - start <= 19;
        if plain {
            // Up to 19 digits always fit a u64.
            let n = self.b[start..int_end]
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            return Ok(Scalar::U64(n));
        }
        // Negative, fractional, exponent or huge: serde_json reads the
        // number's own text, so the value is bit for bit its value.
        let span = self.text.get(start..self.i).ok_or(Fallback)?;
        let mut de = serde_json::Deserializer::from_str(span);
        ScalarSeed.deserialize(&mut de).map_err(|_| Fallback)
    }

    #[inline]
    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn some_digits(&mut self) -> Step {
        let start = self.i;
        self.digits();
        if self.i > start {
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    /// Steps over an object or array (the cursor is at its `{` or `[`),
    /// checking its grammar, without recursion: the stack is one bit per
    /// open container (1 = object).
    fn nested(&mut self) -> Step {
        let mut stack: u64 = 0;
        let mut depth: u32 = 0;
        'open: loop {
            // At a `{` or `[`: open it.
            let object = self.bump()? == b'{';
            if depth == MAX_DEPTH {
                return Err(Fallback);
            }
            stack = (stack << 1) | u64::from(object);
            depth += 1;
            self.ws();
            let close = if object { b'}' } else { b']' };
            if self.peek() == Some(close) {
                self.i += 1;
                stack >>= 1;
                depth -= 1;
                if depth == 0 {
                    return Ok(());
                }
            } else {
                if object {
                    self.key()?;
                }
                if let Some(b'{' | b'[') = self.peek() {
                    continue 'open;
                }
                self.value(false)?;
            }
            // After a value: a comma and the next one, or the close.
            loop {
                self.ws();
                let object = stack & 1 == 1;
                match self.bump()? {
                    b',' => {
                        self.ws();
                        if object {
                            self.key()?;
                        }
                        if let Some(b'{' | b'[') = self.peek() {
                            continue 'open;
                        }
                        self.value(false)?;
                    }
                    b'}' if object => {
                        stack >>= 1;
                        depth -= 1;
                    }
                    b']' if !object => {
                        stack >>= 1;
                        depth -= 1;
                    }
                    _ => return Err(Fallback),
                }
                if depth == 0 {
                    return Ok(());
                }
            }
        }
    }
}

/// The bytes of `word` (little-endian) that are `"`, `\\` or a control
/// character (< 0x20), as their high bits: the bytes that end a plain string
/// or make the fast path give up. Bytes ≥ 0x80 (UTF-8) never match. Only the
/// lowest marked byte is exact (a borrow can mark bytes above a real match),
/// which is all the caller uses.
fn string_stops(word: u64) -> u64 {
    use crate::swar::{HIGH, ONES, bytes_equal};
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    bytes_equal(word, b'"') | bytes_equal(word, b'\\') | control
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: crate::event::Millis = 1_795_478_400_000;

    /// Whether the fast path decides `line` itself.
    fn decides(line: &str) -> bool {
        let parser = Parser {
            max_line_bytes: 1 << 20,
            now_ms: NOW,
        };
        let mut fields = Fields::new();
        walk(line, Kind::ToolCall, &parser, &mut fields).is_ok()
    }

    #[test]
    fn audit_lines_take_the_fast_path() {
        for line in [
            r#"{"ts":"2026-11-23T14:03:07.412Z","request_id":"r-81","user_id":"u-42","agent_id":"ag-7","server_name":"gmail","tool_name":"email_send","outcome":"success","duration_ms":182}"#,
            r#" { "ts" : 1795442587 , "tool" : "x" } "#,
            r#"{"ts":1795442587.5,"tool_latency_secs":0.25,"n":-1,"e":1E+3}"#,
            r#"{"ts":1,"args":{"to":["a@b.c",{"deep":[[],{}]}],"n":null},"ok":true,"no":false}"#,
            r#"{"ts":"x","user":"café ☃"}"#,
            "{}",
        ] {
            assert!(decides(line), "{line}");
        }
    }

    #[test]
    fn what_serde_json_must_decide_falls_back() {
        for line in [
            r#"{"ts":1,"error":"said \"hi\""}"#,
            r#"{"t\u0073":1}"#,
            r#"{"ts":1,"x":"tab	here"}"#,
            r#"[{"ts":1}]"#,
            r#"{"ts":01}"#,
            r#"{"ts":1.}"#,
            r#"{"ts":-}"#,
            r#"{"ts":1,}"#,
            r#"{"ts":1} x"#,
            r#"{"ts":1"#,
            r#"{"ts":tru}"#,
            r#"{"ts":1,"x":[1,]}"#,
            r#"{"ts":1,"x":{"a":1,}}"#,
            r#"{"ts":1,"x":{"a"}}"#,
            r#"{"ts":1,"x":[}"#,
            "{\"ts\":1,\"x\":\u{a0}1}",
        ] {
            assert!(!decides(line), "{line}");
        }
        let deep = format!(r#"{{"ts":1,"x":{}{}}}"#, "[".repeat(65), "]".repeat(65));
        assert!(!decides(&deep));
        let deep_enough = format!(r#"{{"ts":1,"x":{}{}}}"#, "[".repeat(64), "]".repeat(64));
        assert!(decides(&deep_enough));
    }

    proptest::proptest! {
        #[test]
        fn string_stops_agrees_with_a_byte_scan(bytes in proptest::prelude::any::<[u8; 8]>()) {
            let want = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let got = match string_stops(u64::from_le_bytes(bytes)) {
                0 => None,
                m => Some((m.trailing_zeros() / 8) as usize),
            };
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn string_stops_marks_the_first_stopping_byte_exactly() {
        let first = |bytes: [u8; 8]| match string_stops(u64::from_le_bytes(bytes)) {
            0 => None,
            m => Some(m.trailing_zeros() / 8),
        };
        for stop in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
            for at in 0..8 {
                let mut bytes = *b"abcdefgh";
                bytes[at] = stop;
                assert_eq!(first(bytes), Some(at as u32), "{stop:#x} at {at}");
                // Any stopping bytes after it do not move the first.
                for later in at + 1..8 {
                    let mut more = bytes;
                    more[later] = b'"';
                    assert_eq!(
                        first(more),
                        Some(at as u32),
                        "{stop:#x} at {at}, quote at {later}"
                    );
                }
            }
        }
        for plain in [
            *b"abcdefgh",
            *b"        ",
            *b"\x7f~}|{ !#",
            *b"!!!!!!!!",
            *b"]]]]]]]]",
            [0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98],
            [0x21, 0x20, 0x23, 0x5b, 0x5d, 0xff, 0x80, 0xa0],
        ] {
            assert_eq!(first(plain), None, "{plain:?}");
        }
    }
}
