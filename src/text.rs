//! Text from log fields made safe to show to a person (SPEC §8): the one
//! escaping rule every human-facing output shares — `scan --format table`,
//! the text and compliance reports, CSV cells and email bodies.
//!
//! Any field of a log line is attacker-controlled. Raw, an ESC or BEL can
//! retitle or repaint a terminal (`cat week.csv`), a CR or LF can fake a
//! line of output, and a bidirectional override (U+202E) can make
//! `exe.txt` read as `txt.exe` in a table or a mail client. [`escape`] shows
//! each such character as a visible escape instead, so a reader sees
//! exactly what the log held and nothing of it can act on the display.
//! Machine formats (ndjson, JSON) need none of this: their own quoting
//! already shows every character.

use std::borrow::Cow;

/// Unicode bidirectional formatting controls: the embeddings and overrides
/// U+202A–U+202E, the isolates U+2066–U+2069, and the marks U+200E (LRM),
/// U+200F (RLM) and U+061C (ALM). Any of them can reorder how the text
/// around it is displayed.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `c` must not reach a terminal, spreadsheet or mail body raw: C0
/// and C1 controls and DEL (tab, CR and LF included), the Unicode line and
/// paragraph separators (U+2028, U+2029) and the bidi controls.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}' || is_bidi_control(c)
}

/// Escapes `s` for display: `\n`, `\r`, `\t` and `\\` as in Rust string
/// literals, every other character of [`needs_escape`] as `\u{hex}`
/// (`\u{1b}`, `\u{202e}`). The backslash is doubled so the escaping is
/// unambiguous: a field holding the six characters `\u{1b}` shows as
/// `\\u{1b}`, never as if it held an ESC. Borrows when nothing needs
/// escaping, which is almost always.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_shows_c0_c1_and_del_as_visible_escapes() {
        assert_eq!(
            escape("a\u{1b}]0;pwned\u{7}b\u{0}\u{7f}\u{85}\u{9b}"),
            "a\\u{1b}]0;pwned\\u{7}b\\u{0}\\u{7f}\\u{85}\\u{9b}"
        );
        assert_eq!(escape("x\r\ny\tz"), "x\\r\\ny\\tz");
    }

    #[test]
    fn escape_shows_every_bidi_control() {
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            let s = format!("a{c}b");
            let e = escape(&s);
            assert_eq!(e, format!("a\\u{{{:x}}}b", c as u32));
            assert!(!e.contains(c));
        }
        assert_eq!(escape("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe");
        assert_eq!(escape("a\u{2028}b\u{2029}"), "a\\u{2028}b\\u{2029}");
    }

    #[test]
    fn escape_doubles_backslashes_so_escapes_are_unambiguous() {
        assert_eq!(escape("\\u{1b}"), "\\\\u{1b}");
        assert_ne!(escape("\\u{1b}"), escape("\u{1b}"));
    }

    #[test]
    fn escape_borrows_ordinary_text_unchanged() {
        for s in ["", "gmail/send_email", "ünïcødé 名前 עברית", "a b=c,d"] {
            assert!(matches!(escape(s), Cow::Borrowed(b) if b == s));
        }
    }
}
