//! Alerts (SPEC §4) and their way out: router, durable outbox, channels,
//! and incident actions (commands run per alert, queued like a channel).
//!
//! `Alert` is what detectors produce and every sink consumes; its JSON form
//! is the contract (field names and order as in SPEC §4).

pub(crate) mod action;
pub mod delivery;
pub(crate) mod email;
pub(crate) mod error;
pub(crate) mod formats;
pub(crate) mod log;
pub mod outbox;
pub mod router;
pub(crate) mod webhook;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use crate::event::{Field, Millis, Severity};

/// Where the firing line was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub file: String,
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<String>,
}

/// A count (`11`) or a ratio (`0.6`), printed as JSON numbers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Number {
    Int(u64),
    Float(f64),
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Int(n) => write!(f, "{n}"),
            Number::Float(x) => write!(f, "{x}"),
        }
    }
}

/// One finding. Field order is the serialization order of SPEC §4.
///
/// Equality is that of the JSON form: [`Alert::line_fields`] is not
/// compared (an alert read back from `alerts.log` equals the one raised).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub rule: String,
    pub severity: Severity,
    /// RFC 3339 UTC with milliseconds.
    pub ts: String,
    pub key: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub threshold: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub window: Option<String>,
    pub suppressed: u64,
    pub message: String,
    pub evidence: Vec<Evidence>,
    /// The firing line's canonical fields (`ts`, `request_id`, `user_id`,
    /// …, by canonical name, in that order; absent ones left out; a plain
    /// list: every alert of `scan` builds one), for the environment of
    /// incident actions (SPEC §5). Not part of the alert's JSON: the outbox
    /// keeps it beside the alert, so it survives a restart there.
    #[serde(skip)]
    pub line_fields: Vec<(&'static str, String)>,
}

impl PartialEq for Alert {
    fn eq(&self, o: &Alert) -> bool {
        self.id == o.id
            && self.rule == o.rule
            && self.severity == o.severity
            && self.ts == o.ts
            && self.key == o.key
            && self.value == o.value
            && self.threshold == o.threshold
            && self.window == o.window
            && self.suppressed == o.suppressed
            && self.message == o.message
            && self.evidence == o.evidence
    }
}

impl Alert {
    /// Event time of the alert in ms (parsed back from `ts`; 0 if unparsable,
    /// which cannot happen for alerts this program made).
    pub(crate) fn ts_millis(&self) -> Millis {
        chrono::DateTime::parse_from_rfc3339(&self.ts)
            .map(|d| d.timestamp_millis())
            .unwrap_or(0)
    }
}

/// Formats event time as SPEC §4 wants it: `2026-11-23T14:03:59.000Z`.
pub fn format_ts(ms: Millis) -> String {
    let mut s = String::with_capacity(24);
    push_ts(&mut s, ms);
    s
}

/// Appends [`format_ts`]'s text to `out`. Every alert formats a ts, so the
/// years 0000–9999 are formatted by hand (chrono's formatter reads its
/// pattern each time); anything else goes through chrono.
pub(crate) fn push_ts(out: &mut String, ms: Millis) {
    const MAX: Millis = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    const MIN: Millis = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
    if !(MIN..=MAX).contains(&ms) {
        let text = match chrono::DateTime::from_timestamp_millis(ms) {
            Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            None => "1970-01-01T00:00:00.000Z".to_string(),
        };
        out.push_str(&text);
        return;
    }
    use chrono::Datelike;
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // In range (checked above), so the date exists.
    let (y, m, d) = chrono::NaiveDate::from_num_days_from_ce_opt(
        (days + crate::ingest::parse::DAYS_BEFORE_EPOCH) as i32,
    )
    .map_or((1970, 1, 1), |date| {
        (
            i64::from(date.year()),
            i64::from(date.month()),
            i64::from(date.day()),
        )
    });
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (at, width, v) in [
        (0, 4, y),
        (5, 2, m),
        (8, 2, d),
        (11, 2, rem / 3_600_000),
        (14, 2, rem / 60_000 % 60),
        (17, 2, rem / 1000 % 60),
        (20, 3, rem % 1000),
    ] {
        let mut v = v;
        for b in text[at..at + width].iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    out.extend(text.iter().map(|&b| char::from(b)));
}

/// The key object as canonical field names → values (sorted by name, which
/// is what the id's compact JSON needs).
pub(crate) fn key_map(fields: &[(Field, &str)]) -> BTreeMap<String, String> {
    fields
        .iter()
        .map(|(f, v)| (f.as_str().to_string(), (*v).to_string()))
        .collect()
}

/// `id` of SPEC §4: lowercase hex SHA-256 of `<rule>\n<key>\n<line>`, with
/// `<key>` the key object as compact JSON, keys sorted, and `<line>` the
/// firing line without BOM and line ending.
pub fn alert_id(rule: &str, key: &BTreeMap<String, String>, line: &[u8]) -> String {
    /// Feeds what serde_json writes straight to the hash (no key string).
    struct Feed<'a>(&'a mut Sha256);
    impl std::io::Write for Feed<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let line = strip_line(line);
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    h.update(b"\n");
    // A map of strings always serializes; writing to a hash cannot fail.
    let _ = serde_json::to_writer(Feed(&mut h), key);
    h.update(b"\n");
    h.update(line);
    // Into a buffer, not `hex::encode` (which collects chars one by one:
    // 2 % of a scan that raises an alert every fourth line).
    let mut hex = [0u8; 64];
    match hex::encode_to_slice(h.finalize(), &mut hex) {
        Ok(()) => String::from_utf8_lossy(&hex).into_owned(),
        Err(_) => unreachable!("a SHA-256 digest is 32 bytes"),
    }
}

/// The line without a leading UTF-8 BOM and without a trailing `\n`/`\r\n`.
pub(crate) fn strip_line(mut line: &[u8]) -> &[u8] {
    if let Some(rest) = line.strip_prefix(crate::ingest::frame::BOM) {
        line = rest;
    }
    if let Some(rest) = line.strip_suffix(b"\n") {
        line = rest;
    }
    if let Some(rest) = line.strip_suffix(b"\r") {
        line = rest;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_ts_matches_chrono_across_the_range() {
        let chrono_text = |ms: Millis| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        };
        let mut ms: Millis = -62_167_219_200_000;
        while ms < 253_402_300_799_999 {
            assert_eq!(Some(format_ts(ms)), chrono_text(ms), "{ms}");
            ms += 86_399_937_123; // every time of day, leap days, centuries
        }
        for ms in [
            0,
            -1,
            951_782_400_123, // 2000-02-29
            1_795_442_587_412,
            253_402_300_799_999,
            253_402_300_800_000, // year 10000: chrono's text
            -62_167_219_200_001, // year -1
        ] {
            assert_eq!(Some(format_ts(ms)), chrono_text(ms), "{ms}");
        }
        assert_eq!(format_ts(Millis::MAX), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn id_is_sha256_of_rule_key_line() {
        let key = key_map(&[(Field::UserId, "u-42")]);
        let a = alert_id("rapid_tool_usage", &key, b"{\"ts\":1}\r\n");
        let b = alert_id("rapid_tool_usage", &key, b"\xEF\xBB\xBF{\"ts\":1}");
        assert_eq!(a, b);
        let mut h = Sha256::new();
        h.update(b"rapid_tool_usage\n{\"user_id\":\"u-42\"}\n{\"ts\":1}");
        assert_eq!(a, hex::encode(h.finalize()));
    }

    #[test]
    fn ts_has_milliseconds_and_z() {
        assert_eq!(format_ts(1_795_442_639_000), "2026-11-23T14:03:59.000Z");
    }
}
