//! [`state_key`]: the key a rule's state map is indexed by, built from an
//! event's key fields without colliding tuples (and without a copy for the
//! one-field keys most rules use); [`same_key`]: a stored key against one.

use crate::event::{Event, Field, Text};
use crate::swar::{bytes_equal, load, load_half};

/// The state-map key of an event for the given key fields: the value itself
/// for one field (borrowed, no copy); for several, values joined in `buf` by
/// U+001F with `\\` and U+001F escaped, so distinct tuples never collide.
pub(crate) fn state_key<'a>(ev: &'a Event, fields: &[Field], buf: &'a mut String) -> &'a str {
    if let [f] = fields {
        return ev.key_value(*f);
    }
    buf.clear();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            buf.push('\u{1f}');
        }
        let v = ev.key_value(*f);
        if !needs_escape(v.as_bytes()) {
            buf.push_str(v);
            continue;
        }
        for c in v.chars() {
            match c {
                '\\' => buf.push_str("\\\\"),
                '\u{1f}' => buf.push_str("\\u"),
                c => buf.push(c),
            }
        }
    }
    buf
}

/// The state-map key of an event when it is one field's value (no
/// buffer needed), for [`KeyedState::warm_event`](super::KeyedState::warm_event).
/// `None` for keys of several fields.
#[inline]
pub(crate) fn single_key<'a>(ev: &'a Event, fields: &[Field]) -> Option<&'a str> {
    match fields {
        [f] => Some(ev.key_value(*f)),
        _ => None,
    }
}

/// Whether `bytes` holds `\\` or U+001F, eight bytes at a time: values are
/// short, so this is a few word loads (overlapping at the end) rather than
/// a loop over bytes.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    let special = |word: u64| bytes_equal(word, b'\\') | bytes_equal(word, 0x1f);
    let n = bytes.len();
    if n >= 8 {
        let mut found = 0;
        let mut at = 0;
        while at + 8 <= n {
            found |= special(load(bytes, at));
            at += 8;
        }
        // The last eight bytes (overlapping what was checked).
        found |= special(load(bytes, n - 8));
        found != 0
    } else if n >= 4 {
        // Two overlapping halves; the zero bytes above each match nothing.
        special(load_half(bytes, 0) | (load_half(bytes, n - 4) << 32)) != 0
    } else {
        bytes.iter().any(|&b| b == b'\\' || b == 0x1f)
    }
}
/// `stored == key`. Most keys are short ids or id pairs, which a few
/// (overlapping) word loads per side compare without a call to `memcmp`.
#[inline]
pub(crate) fn same_key(stored: &Text, key: &str) -> bool {
    let (a, b) = (stored.as_bytes(), key.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if !(8..=32).contains(&n) {
        return a == b;
    }
    let mut at = 0;
    while at + 8 < n {
        if load(a, at) != load(b, at) {
            return false;
        }
        at += 8;
    }
    load(a, n - 8) == load(b, n - 8)
}
#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn same_key_is_string_equality(
            a in "[ab]{0,40}",
            b in "[ab]{0,40}",
        ) {
            proptest::prop_assert_eq!(same_key(&Text::from(a.as_str()), &b), a == b);
        }
    }

    proptest::proptest! {
        #[test]
        fn needs_escape_agrees_with_a_byte_scan(bytes in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just(0x1fu8),
                proptest::strategy::Just(b'\\'),
                proptest::prelude::any::<u8>(),
            ],
            0..40,
        )) {
            let want = bytes.iter().any(|&b| b == b'\\' || b == 0x1f);
            proptest::prop_assert_eq!(needs_escape(&bytes), want);
        }
    }

    #[test]
    fn multi_field_keys_do_not_collide() {
        let a = Event {
            server_name: Some("x\u{1f}y".into()),
            tool_name: Some("z".into()),
            ..Event::default()
        };
        let b = Event {
            server_name: Some("x".into()),
            tool_name: Some("y\u{1f}z".into()),
            ..Event::default()
        };
        let (mut ka, mut kb) = (String::new(), String::new());
        let fields = [Field::ServerName, Field::ToolName];
        assert_ne!(
            state_key(&a, &fields, &mut ka),
            state_key(&b, &fields, &mut kb)
        );
    }
}
