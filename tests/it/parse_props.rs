//! Property tests: no input makes the parser or the line reader panic, no
//! event comes out without a usable ts, the parser's fast path gives exactly
//! the serde path's answer (event or rejection reason) on every input, and
//! line framing agrees with a plain split however the input is chunked.

use std::io::Read;

use mcpwatch::event::{Kind, Millis, RejectReason};
use mcpwatch::ingest::lines::LineReader;
use mcpwatch::ingest::parse::Parser;
use proptest::prelude::*;
use serde_json::Value;

const NOW: Millis = 1_795_478_400_000;
/// SPEC §1: a ts before 2000-01-01T00:00:00Z is `bad_ts`...
const MIN_TS_MS: Millis = 946_684_800_000;
/// ...and so is one more than 10 minutes after the wall clock at reading.
const MAX_FUTURE_MS: Millis = 10 * 60 * 1000;

fn parser(max: usize) -> Parser {
    Parser {
        max_line_bytes: max,
        now_ms: NOW,
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

/// Names the parser reads, so random objects hit real fields often.
const NAMES: &[&str] = &[
    "ts",
    "timestamp",
    "time",
    "@timestamp",
    "loggedAt",
    "event_timestamp",
    "request_id",
    "requestId",
    "user_id",
    "user",
    "tool",
    "tool_name",
    "token",
    "outcome",
    "decision",
    "result",
    "duration_ms",
    "tool_latency_secs",
    "args_bytes",
    "wait_ms",
    "error",
    "approval_mode",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        (MIN_TS_MS - 5_000..NOW + 2 * MAX_FUTURE_MS).prop_map(Value::from),
        (MIN_TS_MS / 1000 - 5..NOW / 1000 + 1200).prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        "20[0-9]{2}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,9})?(Z|[+-][0-2][0-9]:[0-5][0-9])?"
            .prop_map(Value::from),
        prop::sample::select(vec!["approve", "deny", "success", "denied", "expired", "fine_grained"])
            .prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(NAMES).prop_map(String::from),
                        "\\PC{0,8}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A line as real logs write them: the fields the parser reads, in any
/// order, with numbers, floats, escapes, nulls and nested values among them.
fn audit_line() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just("\"2026-11-23T14:03:07.412Z\"".to_string()),
        Just("\"2026-11-23 14:03:07\"".to_string()),
        Just("1795442587".to_string()),
        Just("1795442587412".to_string()),
        Just("1795442587.5".to_string()),
        Just("-12".to_string()),
        Just("1e3".to_string()),
        Just("0.25".to_string()),
        Just("18446744073709551616".to_string()),
        Just("18446744073709551615".to_string()),
        Just("9999999999999999999".to_string()),
        Just("1e400".to_string()),
        Just("-0".to_string()),
        Just("1E-7".to_string()),
        Just("-1795442587.25".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("{\"name\":\"email_send\",\"args\":[1,2,{\"a\":null}]}".to_string()),
        Just("[]".to_string()),
        Just("\"said \\\"hi\\\"\"".to_string()),
        Just("\"caf\u{e9} \u{2603}\"".to_string()),
        Just("\"approve\"".to_string()),
        Just("\"denied\"".to_string()),
        "\"[a-z0-9_-]{0,30}\"",
    ];
    prop::collection::vec(
        (
            prop::sample::select(NAMES),
            value,
            prop::sample::select(vec!["", " ", "\t"]),
        ),
        1..12,
    )
    .prop_map(|kv| {
        let body: Vec<String> = kv
            .into_iter()
            .map(|(k, v, ws)| format!("{ws}\"{k}\"{ws}:{ws}{v}{ws}"))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

fn check(kind: Kind, line: &[u8], max: usize) {
    let got = parser(max).parse(kind, line);
    assert_eq!(
        got,
        parser(max).parse_with_serde(kind, line),
        "fast and serde paths disagree on {:?}",
        String::from_utf8_lossy(line)
    );
    match got {
        Ok(e) => {
            assert_eq!(e.kind, Some(kind));
            assert!(
                e.ts >= MIN_TS_MS && e.ts <= NOW + MAX_FUTURE_MS,
                "ts {}",
                e.ts
            );
            assert!(line.len() <= max);
        }
        Err(RejectReason::TooLong) => assert!(line.len() > max),
        Err(_) => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(kind in kind(), bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check(kind, &bytes, 200);
    }

    #[test]
    fn arbitrary_json_never_panics_and_events_have_ts(kind in kind(), v in json()) {
        let text = v.to_string();
        check(kind, text.as_bytes(), 1 << 20);
        if !v.is_object() {
            prop_assert_eq!(parser(1 << 20).parse(kind, text.as_bytes()).err(), Some(RejectReason::NotObject));
        }
    }

    #[test]
    fn objects_with_real_field_names(kind in kind(), kv in prop::collection::vec((prop::sample::select(NAMES), json()), 0..10)) {
        let mut obj: serde_json::Map<String, Value> = kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        if obj.contains_key("token") {
            // A secret-bearing field, spelled so nothing else can hold it.
            obj.insert("token".into(), Value::from("sk-live-7f3c-secret"));
        }
        let text = Value::Object(obj).to_string();
        check(kind, text.as_bytes(), 1 << 20);
        if let Ok(e) = parser(1 << 20).parse(kind, text.as_bytes()) {
            let shown = format!("{e:?}");
            prop_assert!(!shown.contains("sk-live-7f3c-secret"));
        }
    }

    #[test]
    fn truncated_and_mangled_json_never_panics(kind in kind(), v in json(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let mut bytes = v.to_string().into_bytes();
        let i = cut.index(bytes.len() + 1);
        bytes.truncate(i);
        check(kind, &bytes, 1 << 20);
        if !bytes.is_empty() {
            let j = i / 2;
            bytes[j] ^= flip;
            check(kind, &bytes, 1 << 20);
        }
    }

    #[test]
    fn deep_nesting_never_overflows(kind in kind(), depth in 1usize..20_000, obj in any::<bool>(), wrap in any::<bool>()) {
        let (open, close) = if obj { (r#"{"a":"#, "}") } else { ("[", "]") };
        let mut s = open.repeat(depth);
        s.push('1');
        s.push_str(&close.repeat(depth));
        let line = if wrap { format!(r#"{{"ts":1795442587,"tool":{s}}}"#) } else { s };
        check(kind, line.as_bytes(), usize::MAX);
    }

    #[test]
    fn pretty_printed_objects_parse_as_compact_ones(kind in kind(), kv in prop::collection::vec((prop::sample::select(NAMES), json()), 0..10)) {
        let obj = Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let pretty = serde_json::to_string_pretty(&obj).expect("serializable");
        check(kind, pretty.as_bytes(), 1 << 20);
        prop_assert_eq!(
            parser(1 << 20).parse(kind, pretty.as_bytes()),
            parser(1 << 20).parse(kind, obj.to_string().as_bytes())
        );
    }

    #[test]
    fn audit_lines_with_one_byte_changed(kind in kind(), line in audit_line(), at in any::<prop::sample::Index>(), to in any::<u8>()) {
        check(kind, line.as_bytes(), 1 << 20);
        let mut bytes = line.into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = to;
        check(kind, &bytes, 1 << 20);
    }

    #[test]
    fn line_reader_agrees_with_split(
        data in prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'\n', b'\r', 0xEF, 0xBB, 0xBF]), 0..400),
        step in 1usize..50,
        max in 0usize..40,
    ) {
        // Reference: split on \n, strip one \r before it, BOM stripped at the start.
        let body = data.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(&data);
        let mut want: Vec<Result<Vec<u8>, RejectReason>> = Vec::new();
        // A last line without `\n` is returned as it is (a lone `\r` is no
        // line ending).
        let mut parts: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
        let last = parts.pop().filter(|p| !p.is_empty());
        for p in parts.iter().map(|p| p.strip_suffix(b"\r").unwrap_or(p)).chain(last) {
            want.push(if p.len() > max { Err(RejectReason::TooLong) } else { Ok(p.to_vec()) });
        }
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(out.len()).min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = LineReader::new(Trickle(&data, step), max);
        let mut got = Vec::new();
        while let Some((n, line)) = r.next_line().expect("in-memory read") {
            prop_assert_eq!(n, got.len() as u64 + 1);
            got.push(line.map(<[u8]>::to_vec));
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(r.offset(), data.len() as u64);
    }
}
