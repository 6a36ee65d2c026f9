//! One JSON line → one [`Event`] (SPEC §1), or the reason it was rejected.
//!
//! This is the hottest code in the program: `scan` over history is bounded by
//! it. Two walks share one set of field rules ([`slot`], `Fields`):
//!
//! - the fast path ([`fast`]): a strict, allocation-free walk over the flat
//!   objects audit logs are made of. It decides a line only when it can decide
//!   it exactly as serde_json would, and otherwise gives up;
//! - the serde path: serde_json with a hand-written `Visitor` that matches
//!   keys as borrowed `&str` and skips every value it does not need with
//!   [`IgnoredAny`]. It has the last word on every line the fast path gives up
//!   on (escapes, odd numbers, very deep nesting, anything that is not valid
//!   JSON), so every rejection reason comes from it.
//!
//! [`Parser::parse_with_serde`] runs the serde path alone: property tests
//! hold the two to the same answer on arbitrary input.
//!
//! Alias priority (SPEC §1: the canonical name, else the first alias *in the
//! table's order* with a usable value) is kept per field as a small rank, so
//! the order of keys in the line does not matter. String fields are built
//! from the line only once their winner is known.
//!
//! Deep nesting cannot overflow the stack: both walks skip nested values
//! iteratively, and everything else is at most two levels deep. Nothing here
//! panics on any input.

mod fast;

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::event::{
    ApprovalMode, DecidedBy, Decision, Event, Kind, Millis, Outcome, RejectReason, Text,
};

/// 2000-01-01T00:00:00Z in ms: earlier timestamps are `bad_ts` (SPEC §1).
pub const MIN_TS_MS: Millis = 946_684_800_000;
/// How far ahead of the reading clock a ts may be before it is `bad_ts`.
pub const MAX_FUTURE_MS: Millis = 10 * 60 * 1000;
/// The default `input.max_line_bytes` (1 MiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses lines of the three logs. Cheap to build; holds no state between
/// lines, so one parser can serve any number of files.
#[derive(Clone, Copy, Debug)]
pub struct Parser {
    /// Lines longer than this (without their line ending) are `too_long`.
    pub max_line_bytes: usize,
    /// The wall clock at reading time, ms; a ts more than 10 minutes after it
    /// is `bad_ts`. The caller supplies it so the parser stays pure.
    pub now_ms: Millis,
}

impl Parser {
    /// Parses one line without its line ending. `kind` comes from the file
    /// name and decides which kind-specific fields are read (so `outcome` is a
    /// call's outcome in `tool-usage.log` and an alias of `decision` in
    /// `approvals.log`).
    ///
    /// `missing_ts`: no ts field (canonical or alias) holds a string or a
    /// number (null, booleans, objects and arrays count as absent).
    /// `bad_ts`: some did, but none is a timestamp in range (unparsable, before
    /// 2000-01-01, or more than 10 minutes after `now_ms`).
    pub fn parse(&self, kind: Kind, line: &[u8]) -> Result<Event, RejectReason> {
        let text = self.prepare(line)?;
        let mut fields = Fields::new();
        if fast::walk(text, kind, self, &mut fields).is_err() {
            // The fast path gave up somewhere in the line: start over with
            // serde_json, which decides it (and any rejection reason).
            fields = Fields::new();
            self.walk_serde(text, kind, &mut fields)?;
        }
        fields.finish(kind)
    }

    /// [`parse`](Self::parse) through the serde path alone: the reference
    /// the fast path is tested against. Same answer for every input.
    pub fn parse_with_serde(&self, kind: Kind, line: &[u8]) -> Result<Event, RejectReason> {
        let text = self.prepare(line)?;
        let mut fields = Fields::new();
        self.walk_serde(text, kind, &mut fields)?;
        fields.finish(kind)
    }

    /// The checks before any JSON: length, BOM, blank, UTF-8.
    fn prepare<'l>(&self, line: &'l [u8]) -> Result<&'l str, RejectReason> {
        if line.len() > self.max_line_bytes {
            return Err(RejectReason::TooLong);
        }
        let line = line.strip_prefix(BOM).unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(RejectReason::Empty);
        }
        std::str::from_utf8(line).map_err(|_| RejectReason::NotUtf8)
    }

    /// Walks `text` with serde_json, filling `fields`.
    fn walk_serde<'de>(
        &self,
        text: &'de str,
        kind: Kind,
        fields: &mut Fields<'de>,
    ) -> Result<(), RejectReason> {
        let mut de = serde_json::Deserializer::from_str(text);
        // The visitor fills `fields` in place: it is a few hundred bytes, and
        // moving it out through serde's return values showed up as memmove.
        let is_object = (&mut de)
            .deserialize_any(TopVisitor {
                kind,
                parser: self,
                fields,
            })
            .map_err(|_| RejectReason::NotJson)?;
        de.end().map_err(|_| RejectReason::NotJson)?;
        if is_object {
            Ok(())
        } else {
            Err(RejectReason::NotObject)
        }
    }

    /// Whether `ms` is an acceptable event time (SPEC §1).
    fn ts_in_range(&self, ms: Millis) -> bool {
        ms >= MIN_TS_MS && ms <= self.now_ms.saturating_add(MAX_FUTURE_MS)
    }
}

/// A rank: 0 for the canonical name, 1.. for aliases in the spec's order.
/// A candidate replaces the held value only with a strictly lower rank, so
/// among duplicates of one name the first wins.
type Rank = u8;

/// The string identity fields, indexing [`Fields::strs`].
#[derive(Clone, Copy, Debug, PartialEq)]
enum StrField {
    RequestId,
    UserId,
    AgentId,
    ConversationId,
    ServerName,
    ToolName,
    TokenId,
    ErrorCode,
    ErrorType,
    ErrorMessage,
    Phase,
}

const STR_FIELDS: usize = 11;

/// What a key means for this kind of log.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    Ignore,
    Ts(Rank),
    Str(StrField, Rank),
    Outcome,
    /// `duration_ms`, `latency_ms` (ms) or `tool_latency_secs` (× 1000).
    Duration(Rank, f64),
    ArgsBytes,
    ApprovalMode,
    Decision(Rank),
    DecidedBy,
    WaitMs,
}

/// The meaning of `key` in a line of `kind`'s log: SPEC §1's names, each
/// alias ranked by its place in the table.
///
/// Every key of every line goes through here, so it dispatches on the
/// length first (one jump) and then compares against the few names of that
/// length. `token` may hold a secret and is never read (SPEC §1): it is no
/// name here, so it is skipped like any unknown key.
#[inline]
fn slot(kind: Kind, key: &str) -> Slot {
    use Kind::{Approval as A, Error as E, ToolCall as T};
    use StrField as F;
    match (key.len(), kind) {
        (2, _) if key == "ts" => Slot::Ts(0),
        (4, _) => match key {
            "time" => Slot::Ts(2),
            "user" => Slot::Str(F::UserId, 1),
            "tool" => Slot::Str(F::ToolName, 1),
            _ => Slot::Ignore,
        },
        (5, _) => match (key, kind) {
            ("agent", _) => Slot::Str(F::AgentId, 1),
            ("error", E) => Slot::Str(F::ErrorMessage, 1),
            ("phase", E) => Slot::Str(F::Phase, 0),
            _ => Slot::Ignore,
        },
        (6, _) => match (key, kind) {
            ("userId", _) => Slot::Str(F::UserId, 2),
            ("server", _) => Slot::Str(F::ServerName, 1),
            ("result", A) => Slot::Decision(1),
            _ => Slot::Ignore,
        },
        (7, _) => match (key, kind) {
            ("user_id", _) => Slot::Str(F::UserId, 0),
            ("call_id", _) => Slot::Str(F::RequestId, 2),
            ("agentId", _) => Slot::Str(F::AgentId, 2),
            ("outcome", T) => Slot::Outcome,
            ("outcome", A) => Slot::Decision(2),
            ("wait_ms", A) => Slot::WaitMs,
            _ => Slot::Ignore,
        },
        (8, _) => match (key, kind) {
            ("loggedAt", _) => Slot::Ts(4),
            ("agent_id", _) => Slot::Str(F::AgentId, 0),
            ("token_id", _) => Slot::Str(F::TokenId, 0),
            ("decision", A) => Slot::Decision(0),
            _ => Slot::Ignore,
        },
        (9, _) => match key {
            "timestamp" => Slot::Ts(1),
            "requestId" => Slot::Str(F::RequestId, 1),
            "principal" => Slot::Str(F::UserId, 3),
            "tool_name" => Slot::Str(F::ToolName, 0),
            _ => Slot::Ignore,
        },
        (10, _) => match (key, kind) {
            ("request_id", _) => Slot::Str(F::RequestId, 0),
            ("@timestamp", _) => Slot::Ts(3),
            ("session_id", _) => Slot::Str(F::ConversationId, 1),
            ("latency_ms", T) => Slot::Duration(1, 1.0),
            ("args_bytes", T) => Slot::ArgsBytes,
            ("decided_by", A) => Slot::DecidedBy,
            ("error_code", E) => Slot::Str(F::ErrorCode, 0),
            ("error_type", E) => Slot::Str(F::ErrorType, 0),
            _ => Slot::Ignore,
        },
        (11, _) => match (key, kind) {
            ("server_name", _) => Slot::Str(F::ServerName, 0),
            ("duration_ms", T) => Slot::Duration(0, 1.0),
            _ => Slot::Ignore,
        },
        (13, _) => match (key, kind) {
            ("mcp_tool_name", _) => Slot::Str(F::ToolName, 2),
            ("approval_mode", A) => Slot::ApprovalMode,
            ("error_message", E) => Slot::Str(F::ErrorMessage, 0),
            _ => Slot::Ignore,
        },
        (14, _) if key == "conversationId" => Slot::Str(F::ConversationId, 2),
        (15, _) => match key {
            "conversation_id" => Slot::Str(F::ConversationId, 0),
            "event_timestamp" => Slot::Ts(5),
            "mcp_server_name" => Slot::Str(F::ServerName, 2),
            _ => Slot::Ignore,
        },
        (17, _) => match (key, kind) {
            ("token_fingerprint", _) => Slot::Str(F::TokenId, 1),
            ("tool_latency_secs", T) => Slot::Duration(2, 1000.0),
            _ => Slot::Ignore,
        },
        _ => Slot::Ignore,
    }
}

/// One JSON value as far as the parser cares: a string (borrowed from the
/// line unless it had escapes), a number, or absent (null, bool, object,
/// array — drained without being kept).
enum Scalar<'de> {
    Str(Cow<'de, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Absent,
}

impl Scalar<'_> {
    /// A number given as a JSON number or as a numeric string.
    fn as_f64(&self) -> Option<f64> {
        let v = match self {
            Scalar::U64(n) => *n as f64,
            Scalar::I64(n) => *n as f64,
            Scalar::F64(f) => *f,
            Scalar::Str(s) => s.trim().parse::<f64>().ok()?,
            Scalar::Absent => return None,
        };
        v.is_finite().then_some(v)
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Winning candidates collected while walking the object. Strings stay
/// borrowed until the end so losers never allocate.
struct Fields<'de> {
    ts: Option<(Rank, Millis)>,
    /// Some ts candidate was present but not usable (unparsable or out of
    /// range): the line is `bad_ts` rather than `missing_ts`.
    ts_unusable: bool,
    strs: [Option<(Rank, Scalar<'de>)>; STR_FIELDS],
    outcome: Option<Outcome>,
    duration_ms: Option<(Rank, f64)>,
    args_bytes: Option<u64>,
    approval_mode: Option<ApprovalMode>,
    decision: Option<(Rank, Decision)>,
    decided_by: Option<DecidedBy>,
    wait_ms: Option<f64>,
}

fn better<T>(held: &Option<(Rank, T)>, rank: Rank) -> bool {
    held.as_ref().is_none_or(|(r, _)| rank < *r)
}

impl<'de> Fields<'de> {
    fn new() -> Self {
        Fields {
            ts: None,
            ts_unusable: false,
            strs: Default::default(),
            outcome: None,
            duration_ms: None,
            args_bytes: None,
            approval_mode: None,
            decision: None,
            decided_by: None,
            wait_ms: None,
        }
    }

    /// Whether a value for `slot` could still change the result; when not,
    /// the value is skipped without being decoded.
    #[inline]
    fn wants(&self, slot: Slot) -> bool {
        match slot {
            Slot::Ignore => false,
            Slot::Ts(r) => better(&self.ts, r),
            Slot::Str(f, r) => better(&self.strs[f as usize], r),
            Slot::Outcome => self.outcome.is_none(),
            Slot::Duration(r, _) => better(&self.duration_ms, r),
            Slot::ArgsBytes => self.args_bytes.is_none(),
            Slot::ApprovalMode => self.approval_mode.is_none(),
            Slot::Decision(r) => better(&self.decision, r),
            Slot::DecidedBy => self.decided_by.is_none(),
            Slot::WaitMs => self.wait_ms.is_none(),
        }
    }

    /// Offers a candidate; it is kept only if usable.
    #[inline]
    fn offer(&mut self, slot: Slot, value: Scalar<'de>, parser: &Parser) {
        match slot {
            Slot::Ignore => {}
            Slot::Ts(r) => match ts_of(&value) {
                Some(ms) if parser.ts_in_range(ms) => self.ts = Some((r, ms)),
                None if matches!(value, Scalar::Absent) => {}
                _ => self.ts_unusable = true,
            },
            Slot::Str(f, r) => {
                if !matches!(value, Scalar::Absent) {
                    self.strs[f as usize] = Some((r, value));
                }
            }
            Slot::Outcome => {
                self.outcome = value.as_str().and_then(parse_outcome);
            }
            Slot::Duration(r, scale) => {
                if let Some(v) = value.as_f64().filter(|v| *v >= 0.0) {
                    self.duration_ms = Some((r, v * scale));
                }
            }
            Slot::ArgsBytes => {
                self.args_bytes = match value {
                    Scalar::U64(n) => Some(n),
                    Scalar::Str(s) => s.trim().parse::<u64>().ok(),
                    Scalar::F64(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Some(f as u64),
                    _ => None,
                };
            }
            Slot::ApprovalMode => {
                self.approval_mode = value.as_str().and_then(ApprovalMode::parse);
            }
            Slot::Decision(r) => {
                if let Some(d) = value.as_str().and_then(Decision::parse) {
                    self.decision = Some((r, d));
                }
            }
            Slot::DecidedBy => {
                self.decided_by = value.as_str().and_then(parse_decided_by);
            }
            Slot::WaitMs => {
                self.wait_ms = value.as_f64().filter(|v| *v >= 0.0);
            }
        }
    }

    /// The event, once the whole line is walked; or why the ts made it
    /// unusable.
    fn finish(self, kind: Kind) -> Result<Event, RejectReason> {
        let ts = match self.ts {
            Some((_, ts)) => ts,
            None if self.ts_unusable => return Err(RejectReason::BadTs),
            None => return Err(RejectReason::MissingTs),
        };
        let [
            request_id,
            user_id,
            agent_id,
            conversation_id,
            server_name,
            tool_name,
            token_id,
            error_code,
            error_type,
            error_message,
            phase,
        ] = self.strs.map(|s| s.and_then(|(_, v)| text(v)));
        Ok(Event {
            kind: Some(kind),
            ts,
            request_id,
            user_id,
            agent_id,
            conversation_id,
            server_name,
            tool_name,
            token_id,
            outcome: self.outcome,
            duration_ms: self.duration_ms.map(|(_, v)| v),
            args_bytes: self.args_bytes,
            approval_mode: self.approval_mode,
            decision: self.decision.map(|(_, d)| d),
            decided_by: self.decided_by,
            wait_ms: self.wait_ms,
            error_code,
            error_type,
            error_message,
            phase,
        })
    }
}

/// A string field's final value: strings as they are, numbers as their
/// decimal text (`Display`, as `to_string` writes them). Short values (most
/// ids) are stored inline in the [`Text`], without an allocation.
fn text(v: Scalar<'_>) -> Option<Text> {
    match v {
        Scalar::Str(Cow::Borrowed(s)) => Some(Text::from(s)),
        Scalar::Str(Cow::Owned(s)) => Some(Text::from(s)),
        Scalar::U64(n) => Some(compact_str::format_compact!("{n}")),
        Scalar::I64(n) => Some(compact_str::format_compact!("{n}")),
        Scalar::F64(f) => Some(compact_str::format_compact!("{f}")),
        Scalar::Absent => None,
    }
}

fn parse_outcome(s: &str) -> Option<Outcome> {
    match s {
        "success" => Some(Outcome::Success),
        "error" => Some(Outcome::Error),
        "denied" => Some(Outcome::Denied),
        _ => None,
    }
}

fn parse_decided_by(s: &str) -> Option<DecidedBy> {
    match s {
        "human" => Some(DecidedBy::Human),
        "policy" => Some(DecidedBy::Policy),
        "auto" => Some(DecidedBy::Auto),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Timestamps

/// A ts value in any form of SPEC §1, as ms since the epoch; `None` when it
/// is not a timestamp at all. Range is checked by the caller.
fn ts_of(v: &Scalar<'_>) -> Option<Millis> {
    match v {
        Scalar::U64(n) => epoch_int(i64::try_from(*n).ok()?),
        Scalar::I64(n) => epoch_int(*n),
        Scalar::F64(f) => epoch_float(*f),
        Scalar::Str(s) => parse_ts_str(s),
        Scalar::Absent => None,
    }
}

/// An integer epoch: 13 digits are milliseconds, anything else seconds.
fn epoch_int(n: i64) -> Option<Millis> {
    if (1_000_000_000_000..10_000_000_000_000).contains(&n) {
        Some(n)
    } else {
        n.checked_mul(1000)
    }
}

/// Float epoch seconds, truncated to the millisecond. Rounded to the
/// microsecond first so `1795442639.412` (stored as `…411.99999`) stays 412.
fn epoch_float(f: f64) -> Option<Millis> {
    if !f.is_finite() || f.abs() > 1e14 {
        return None;
    }
    if (1e12..1e13).contains(&f) {
        // 13 integer digits: milliseconds, as for integers.
        return Some(f.trunc() as Millis);
    }
    let micros = (f * 1e6).round() as i64;
    Some(micros.div_euclid(1000))
}

/// Parses a ts string: RFC 3339 (`Z` or offset, optional fraction),
/// `YYYY-MM-DD HH:MM:SS` (UTC), or a numeric epoch as text.
pub fn parse_ts_str(s: &str) -> Option<Millis> {
    let b = s.trim().as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_digit() || *c == b'-' => {}
        _ => return None,
    }
    if b.len() >= 19 && b[4] == b'-' {
        return parse_datetime(b);
    }
    parse_epoch_text(b)
}

/// `1795442639`, `1795442639412`, `1795442639.412` as text, exactly (no
/// float rounding: the fraction digits are read as digits).
fn parse_epoch_text(b: &[u8]) -> Option<Millis> {
    let (neg, b) = match b.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, b),
    };
    let (int, frac) = match memchr::memchr(b'.', b) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    if int.is_empty() || int.len() > 15 || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits(int)? as i64;
    let ms = match frac {
        None => {
            let n = if neg { -n } else { n };
            return epoch_int(n);
        }
        Some(f) => {
            if f.is_empty() || !f.iter().all(u8::is_ascii_digit) {
                return None;
            }
            if int.len() == 13 && !neg && n >= 1_000_000_000_000 {
                return Some(n as Millis);
            }
            let mut m = 0i64;
            for i in 0..3 {
                m = m * 10 + f.get(i).map_or(0, |d| i64::from(d - b'0'));
            }
            n.checked_mul(1000)?.checked_add(m)?
        }
    };
    Some(if neg { -ms } else { ms })
}

fn digits(b: &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

fn two(b: &[u8], at: usize) -> Option<i64> {
    let s = b.get(at..at + 2)?;
    digits(s).map(|n| n as i64)
}

/// `YYYY-MM-DD[T| ]HH:MM:SS[.frac][Z|±HH:MM|±HHMM]`; no zone means UTC.
fn parse_datetime(b: &[u8]) -> Option<Millis> {
    let year = digits(b.get(0..4)?)? as i64;
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let month = two(b, 5)?;
    let day = two(b, 8)?;
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (hour, min, sec) = (two(b, 11)?, two(b, 14)?, two(b, 17)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_min = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &b[i + 1..];
            let (oh, om) = match rest.len() {
                5 if rest[2] == b':' => (two(rest, 0)?, two(rest, 3)?),
                4 => (two(rest, 0)?, two(rest, 2)?),
                2 => (two(rest, 0)?, 0),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_min * 60;
    Some(secs * 1000 + millis)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------
// serde plumbing

/// Walks the top-level value; yields whether it was an object, whose fields
/// land in `fields`.
struct TopVisitor<'p, 'f, 'de> {
    kind: Kind,
    parser: &'p Parser,
    fields: &'f mut Fields<'de>,
}

impl<'de> Visitor<'de> for TopVisitor<'_, '_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let fields = self.fields;
        while let Some(slot) = map.next_key_seed(KeySeed(self.kind))? {
            if fields.wants(slot) {
                let value = map.next_value_seed(ScalarSeed)?;
                fields.offer(slot, value, self.parser);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// Classifies a key without allocating (escaped keys arrive as a transient
/// `&str` too).
struct KeySeed(Kind);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Slot;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Slot, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Slot;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Slot, E> {
        Ok(slot(self.0, key))
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(s)))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::U64(n))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::I64(n))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::F64(f))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Absent)
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Absent)
    }
    fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Absent)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Absent)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Absent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Field;

    /// The reading clock of these tests: 2026-11-24T00:00:00Z.
    const NOW: Millis = 1_795_478_400_000;

    fn parser() -> Parser {
        Parser {
            max_line_bytes: 1024,
            now_ms: NOW,
        }
    }

    fn ms(rfc3339: &str) -> Millis {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .expect("test timestamp")
            .timestamp_millis()
    }

    fn call(line: &str) -> Event {
        parser()
            .parse(Kind::ToolCall, line.as_bytes())
            .expect("line parses")
    }

    fn reject(kind: Kind, line: &[u8]) -> RejectReason {
        parser().parse(kind, line).expect_err("line is rejected")
    }

    fn ts_of_line(line: &str) -> Result<Millis, RejectReason> {
        parser()
            .parse(Kind::ToolCall, line.as_bytes())
            .map(|e| e.ts)
    }

    fn b(s: &str) -> Option<crate::event::Text> {
        Some(s.into())
    }

    #[test]
    fn now_constant_is_2026_11_24() {
        assert_eq!(NOW, ms("2026-11-24T00:00:00Z"));
    }

    #[test]
    fn spec_example_tool_call_line() {
        let e = call(
            r#"{"ts":"2026-11-23T14:03:07.412Z","request_id":"r-81","user_id":"u-42","agent_id":"ag-7","server_name":"gmail","tool_name":"email_send","outcome":"success","duration_ms":182}"#,
        );
        assert_eq!(
            e,
            Event {
                kind: Some(Kind::ToolCall),
                ts: ms("2026-11-23T14:03:07.412Z"),
                request_id: b("r-81"),
                user_id: b("u-42"),
                agent_id: b("ag-7"),
                server_name: b("gmail"),
                tool_name: b("email_send"),
                outcome: Some(Outcome::Success),
                duration_ms: Some(182.0),
                ..Event::default()
            }
        );
    }

    #[test]
    fn spec_example_approval_line() {
        let e = parser()
            .parse(
                Kind::Approval,
                br#"{"ts":"2026-11-23T14:03:05.100Z","request_id":"r-81","user_id":"u-42","server_name":"gmail","tool_name":"email_send","approval_mode":"always_ask","decision":"approve","decided_by":"human","wait_ms":5300}"#,
            )
            .expect("parses");
        assert_eq!(
            e,
            Event {
                kind: Some(Kind::Approval),
                ts: ms("2026-11-23T14:03:05.100Z"),
                request_id: b("r-81"),
                user_id: b("u-42"),
                server_name: b("gmail"),
                tool_name: b("email_send"),
                approval_mode: Some(ApprovalMode::AlwaysAsk),
                decision: Some(Decision::Approve),
                decided_by: Some(DecidedBy::Human),
                wait_ms: Some(5300.0),
                ..Event::default()
            }
        );
    }

    #[test]
    fn spec_example_error_line() {
        let e = parser()
            .parse(
                Kind::Error,
                br#"{"ts":"2026-11-23T14:03:09.000Z","request_id":"r-82","server_name":"gmail","tool_name":"email_send","error_type":"upstream_timeout","error_message":"timed out after 30s"}"#,
            )
            .expect("parses");
        assert_eq!(
            e,
            Event {
                kind: Some(Kind::Error),
                ts: ms("2026-11-23T14:03:09.000Z"),
                request_id: b("r-82"),
                server_name: b("gmail"),
                tool_name: b("email_send"),
                error_type: b("upstream_timeout"),
                error_message: b("timed out after 30s"),
                ..Event::default()
            }
        );
    }

    const T: &str = r#""ts":"2026-11-23T14:00:00Z""#;

    #[test]
    fn every_identity_alias_is_read() {
        let cases: &[(&str, Field)] = &[
            ("requestId", Field::RequestId),
            ("call_id", Field::RequestId),
            ("user", Field::UserId),
            ("userId", Field::UserId),
            ("principal", Field::UserId),
            ("agent", Field::AgentId),
            ("agentId", Field::AgentId),
            ("session_id", Field::ConversationId),
            ("conversationId", Field::ConversationId),
            ("server", Field::ServerName),
            ("mcp_server_name", Field::ServerName),
            ("tool", Field::ToolName),
            ("mcp_tool_name", Field::ToolName),
            ("token_fingerprint", Field::TokenId),
        ];
        for &(alias, field) in cases {
            let e = call(&format!(r#"{{{T},"{alias}":"v-1"}}"#));
            assert_eq!(e.field(field), Some("v-1"), "alias {alias}");
            for other in Field::ALL.into_iter().filter(|f| *f != field) {
                assert_eq!(e.field(other), None, "alias {alias} leaks into {other:?}");
            }
        }
    }

    #[test]
    fn canonical_names_are_read() {
        for field in Field::ALL {
            let e = call(&format!(r#"{{{T},"{}":"v-1"}}"#, field.as_str()));
            assert_eq!(e.field(field), Some("v-1"));
        }
    }

    #[test]
    fn canonical_beats_alias_in_any_key_order() {
        let e = call(&format!(r#"{{"user":"alias",{T},"user_id":"canon"}}"#));
        assert_eq!(e.user_id, b("canon"));
        let e = call(&format!(r#"{{"user_id":"canon",{T},"user":"alias"}}"#));
        assert_eq!(e.user_id, b("canon"));
    }

    #[test]
    fn first_alias_in_table_order_wins_not_first_in_line() {
        // Table order for user_id: user, userId, principal.
        let e = call(&format!(
            r#"{{{T},"principal":"p","userId":"u2","user":"u1"}}"#
        ));
        assert_eq!(e.user_id, b("u1"));
        let e = call(&format!(r#"{{{T},"principal":"p","userId":"u2"}}"#));
        assert_eq!(e.user_id, b("u2"));
    }

    #[test]
    fn unusable_canonical_falls_back_to_alias() {
        for bad in ["null", "true", "{}", r#"{"name":"x"}"#, "[1]"] {
            let e = call(&format!(r#"{{{T},"tool_name":{bad},"tool":"email_send"}}"#));
            assert_eq!(e.tool_name, b("email_send"), "canonical {bad}");
        }
        // Nested object counts as absent and is not read.
        let e = call(&format!(
            r#"{{{T},"tool":{{"name":"x"}},"mcp_tool_name":"t"}}"#
        ));
        assert_eq!(e.tool_name, b("t"));
        let e = call(&format!(r#"{{{T},"tool":{{"name":"x"}}}}"#));
        assert_eq!(e.tool_name, None);
    }

    #[test]
    fn numbers_become_their_decimal_text() {
        let e = call(&format!(
            r#"{{{T},"user_id":42,"request_id":-7,"agent_id":1.5,"server_name":""}}"#
        ));
        assert_eq!(e.user_id, b("42"));
        assert_eq!(e.request_id, b("-7"));
        assert_eq!(e.agent_id, b("1.5"));
        assert_eq!(e.server_name, b(""), "strings are used as they are");
    }

    #[test]
    fn escaped_strings_and_keys_are_decoded() {
        let e = call(&format!(
            r#"{{{T},"user_\u0069d":"u-\"42\"","tool_name":"caf\u00e9"}}"#
        ));
        assert_eq!(e.user_id, b("u-\"42\""));
        assert_eq!(e.tool_name, b("café"));
    }

    #[test]
    fn token_field_is_never_read() {
        let e = call(&format!(
            r#"{{{T},"token":"secret-abc","token_id":"tk-1"}}"#
        ));
        assert_eq!(e.token_id, b("tk-1"));
        let e = call(&format!(r#"{{{T},"token":"secret-abc"}}"#));
        assert_eq!(e.token_id, None);
        assert!(!format!("{e:?}").contains("secret"));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let e = call(&format!(
            r#"{{"extra":{{"deep":[1,2,{{"a":null}}]}},{T},"other":"x","user_id":"u"}}"#
        ));
        assert_eq!(e.user_id, b("u"));
    }

    #[test]
    fn tool_call_fields_and_aliases() {
        let e = call(&format!(
            r#"{{{T},"outcome":"denied","latency_ms":12.5,"args_bytes":300}}"#
        ));
        assert_eq!(e.outcome, Some(Outcome::Denied));
        assert_eq!(e.duration_ms, Some(12.5));
        assert_eq!(e.args_bytes, Some(300));
        let e = call(&format!(
            r#"{{{T},"tool_latency_secs":0.25,"outcome":"error"}}"#
        ));
        assert_eq!(e.duration_ms, Some(250.0));
        assert_eq!(e.outcome, Some(Outcome::Error));
        let e = call(&format!(
            r#"{{{T},"tool_latency_secs":9,"latency_ms":8,"duration_ms":7}}"#
        ));
        assert_eq!(e.duration_ms, Some(7.0), "canonical beats aliases");
        let e = call(&format!(r#"{{{T},"tool_latency_secs":9,"latency_ms":8}}"#));
        assert_eq!(
            e.duration_ms,
            Some(8.0),
            "latency_ms before tool_latency_secs"
        );
        let e = call(&format!(r#"{{{T},"outcome":"maybe","decision":"deny"}}"#));
        assert_eq!(e.outcome, None);
        assert_eq!(e.decision, None, "decision is not a tool_call field");
    }

    #[test]
    fn approval_fields_modes_and_decision_synonyms() {
        let a = |line: String| {
            parser()
                .parse(Kind::Approval, line.as_bytes())
                .expect("parses")
        };
        let modes = [
            ("always_ask", ApprovalMode::AlwaysAsk),
            ("fine_grained", ApprovalMode::FineGrained),
            ("no_approval", ApprovalMode::NoApproval),
            ("require_approval_all", ApprovalMode::AlwaysAsk),
            ("require_approval_per_tool", ApprovalMode::FineGrained),
            ("auto_approve_all", ApprovalMode::NoApproval),
        ];
        for (text, mode) in modes {
            let e = a(format!(r#"{{{T},"approval_mode":"{text}"}}"#));
            assert_eq!(e.approval_mode, Some(mode), "{text}");
        }
        let decisions = [
            ("approve", Decision::Approve),
            ("approved", Decision::Approve),
            ("allow", Decision::Approve),
            ("allowed", Decision::Approve),
            ("deny", Decision::Deny),
            ("denied", Decision::Deny),
            ("rejected", Decision::Deny),
            ("blocked", Decision::Deny),
            ("timeout", Decision::Timeout),
            ("timed_out", Decision::Timeout),
            ("expired", Decision::Timeout),
        ];
        for field in ["decision", "result", "outcome"] {
            for (text, d) in decisions {
                let e = a(format!(r#"{{{T},"{field}":"{text}"}}"#));
                assert_eq!(e.decision, Some(d), "{field}={text}");
                assert_eq!(e.outcome, None);
            }
        }
        let e = a(format!(r#"{{{T},"outcome":"deny","result":"approve"}}"#));
        assert_eq!(e.decision, Some(Decision::Approve), "result before outcome");
        let e = a(format!(r#"{{{T},"outcome":"deny","decision":"timeout"}}"#));
        assert_eq!(e.decision, Some(Decision::Timeout), "canonical first");
        let e = a(format!(r#"{{{T},"decision":"perhaps","result":"deny"}}"#));
        assert_eq!(
            e.decision,
            Some(Decision::Deny),
            "unusable canonical falls back"
        );
        for (text, by) in [
            ("human", DecidedBy::Human),
            ("policy", DecidedBy::Policy),
            ("auto", DecidedBy::Auto),
        ] {
            let e = a(format!(r#"{{{T},"decided_by":"{text}","wait_ms":"1200"}}"#));
            assert_eq!(e.decided_by, Some(by));
            assert_eq!(e.wait_ms, Some(1200.0));
        }
    }

    #[test]
    fn error_fields_and_alias() {
        let e = parser()
            .parse(
                Kind::Error,
                format!(r#"{{{T},"error_code":503,"error":"boom","phase":"execute","error_type":"upstream"}}"#)
                    .as_bytes(),
            )
            .expect("parses");
        assert_eq!(e.error_code, b("503"));
        assert_eq!(e.error_message, b("boom"));
        assert_eq!(e.error_type, b("upstream"));
        assert_eq!(e.phase, b("execute"));
        let e = parser()
            .parse(
                Kind::Error,
                format!(r#"{{{T},"error":"alias","error_message":"canon"}}"#).as_bytes(),
            )
            .expect("parses");
        assert_eq!(e.error_message, b("canon"));
    }

    #[test]
    fn ts_rfc3339_forms() {
        let want = ms("2026-11-23T14:03:07.412Z");
        for s in [
            "2026-11-23T14:03:07.412Z",
            "2026-11-23T14:03:07.412999Z",
            "2026-11-23T14:03:07.412123456Z",
            "2026-11-23T15:03:07.412+01:00",
            "2026-11-23T09:03:07.412-05:00",
            "2026-11-23T15:03:07.412+0100",
            "2026-11-23t14:03:07.412z",
        ] {
            assert_eq!(ts_of_line(&format!(r#"{{"ts":"{s}"}}"#)), Ok(want), "{s}");
        }
        let whole = ms("2026-11-23T14:03:07Z");
        assert_eq!(ts_of_line(r#"{"ts":"2026-11-23T14:03:07Z"}"#), Ok(whole));
        assert_eq!(
            ts_of_line(r#"{"ts":"2026-11-23T19:33:07+05:30"}"#),
            Ok(whole)
        );
        assert_eq!(
            ts_of_line(r#"{"ts":"2026-11-23T14:03:07.4Z"}"#),
            Ok(whole + 400)
        );
    }

    #[test]
    fn ts_space_separated_form_is_utc() {
        assert_eq!(
            ts_of_line(r#"{"ts":"2026-11-23 14:03:07"}"#),
            Ok(ms("2026-11-23T14:03:07Z"))
        );
    }

    #[test]
    fn ts_epoch_forms() {
        let s = ms("2026-11-23T14:03:07Z");
        assert_eq!(s, 1_795_442_587_000);
        assert_eq!(ts_of_line(r#"{"ts":1795442587}"#), Ok(s), "epoch seconds");
        assert_eq!(
            ts_of_line(r#"{"ts":1795442587.412}"#),
            Ok(s + 412),
            "float seconds"
        );
        assert_eq!(
            ts_of_line(r#"{"ts":1795442587.4129}"#),
            Ok(s + 412),
            "truncated"
        );
        assert_eq!(
            ts_of_line(r#"{"ts":1795442587412}"#),
            Ok(s + 412),
            "epoch millis"
        );
        assert_eq!(
            ts_of_line(r#"{"ts":"1795442587"}"#),
            Ok(s),
            "numeric string"
        );
        assert_eq!(ts_of_line(r#"{"ts":"1795442587412"}"#), Ok(s + 412));
        assert_eq!(ts_of_line(r#"{"ts":"1795442587.412"}"#), Ok(s + 412));
        assert_eq!(
            ts_of_line(r#"{"ts":1795442587412.9}"#),
            Ok(s + 412),
            "ms with fraction"
        );
        assert_eq!(ts_of_line(r#"{"ts":"1795442587412.9"}"#), Ok(s + 412));
        assert_eq!(ts_of_line(r#"{"ts":"2026-11-23T14:03:07Z"}"#), Ok(s));
    }

    #[test]
    fn every_ts_alias_in_order() {
        let aliases = [
            "timestamp",
            "time",
            "@timestamp",
            "loggedAt",
            "event_timestamp",
        ];
        let base = ms("2026-11-23T14:00:00Z");
        for (i, alias) in aliases.iter().enumerate() {
            assert_eq!(
                ts_of_line(&format!(r#"{{"{alias}":{}}}"#, base / 1000)),
                Ok(base)
            );
            // Every later alias loses to this one; put them first in the line.
            let mut parts: Vec<String> = aliases[i + 1..]
                .iter()
                .map(|a| format!(r#""{a}":{}"#, base / 1000 + 60))
                .collect();
            parts.push(format!(r#""{alias}":{}"#, base / 1000));
            assert_eq!(
                ts_of_line(&format!("{{{}}}", parts.join(","))),
                Ok(base),
                "{alias}"
            );
        }
        let line = format!(
            r#"{{"timestamp":{},"ts":{}}}"#,
            base / 1000 + 60,
            base / 1000
        );
        assert_eq!(ts_of_line(&line), Ok(base), "ts beats timestamp");
    }

    #[test]
    fn unusable_ts_falls_back_to_alias() {
        let base = ms("2026-11-23T14:00:00Z");
        for bad in ["null", r#""soon""#, "{}", "123"] {
            let line = format!(r#"{{"ts":{bad},"timestamp":{}}}"#, base);
            assert_eq!(ts_of_line(&line), Ok(base), "ts {bad}");
        }
    }

    #[test]
    fn missing_ts_rejects() {
        assert_eq!(
            reject(Kind::ToolCall, br#"{"user_id":"u"}"#),
            RejectReason::MissingTs
        );
        assert_eq!(
            reject(Kind::ToolCall, br#"{"ts":null}"#),
            RejectReason::MissingTs
        );
        assert_eq!(
            reject(Kind::ToolCall, br#"{"ts":{"s":1}}"#),
            RejectReason::MissingTs
        );
        assert_eq!(reject(Kind::ToolCall, b"{}"), RejectReason::MissingTs);
    }

    #[test]
    fn bad_ts_rejects_out_of_range_and_garbage() {
        let r = |s: &str| reject(Kind::ToolCall, s.as_bytes());
        assert_eq!(
            r(r#"{"ts":"1999-12-31T23:59:59.999Z"}"#),
            RejectReason::BadTs
        );
        assert_eq!(
            ts_of_line(r#"{"ts":"2000-01-01T00:00:00Z"}"#),
            Ok(MIN_TS_MS)
        );
        let limit = NOW + MAX_FUTURE_MS;
        assert_eq!(ts_of_line(&format!(r#"{{"ts":{limit}}}"#)), Ok(limit));
        assert_eq!(
            r(&format!(r#"{{"ts":{}}}"#, limit + 1)),
            RejectReason::BadTs
        );
        assert_eq!(r(r#"{"ts":"2026-11-24T00:10:01Z"}"#), RejectReason::BadTs);
        assert_eq!(r(r#"{"ts":"yesterday"}"#), RejectReason::BadTs);
        assert_eq!(r(r#"{"ts":"2026-02-30T00:00:00Z"}"#), RejectReason::BadTs);
        assert_eq!(r(r#"{"ts":"2026-11-23T24:00:00Z"}"#), RejectReason::BadTs);
        assert_eq!(
            r(r#"{"ts":"2026-11-23T14:00:00+25:00"}"#),
            RejectReason::BadTs
        );
        assert_eq!(r(r#"{"ts":-5}"#), RejectReason::BadTs);
        assert_eq!(r(r#"{"ts":0}"#), RejectReason::BadTs);
        assert_eq!(r(r#"{"ts":1e300}"#), RejectReason::BadTs);
        assert_eq!(r(r#"{"ts":18446744073709551615}"#), RejectReason::BadTs);
        assert_eq!(r(r#"{"ts":true}"#), RejectReason::MissingTs);
    }

    #[test]
    fn reject_reasons() {
        let k = Kind::ToolCall;
        assert_eq!(reject(k, b""), RejectReason::Empty);
        assert_eq!(reject(k, b" \t \r"), RejectReason::Empty);
        assert_eq!(reject(k, &[b'x'; 1025]), RejectReason::TooLong);
        let head = r#"{"ts":1795442587,"pad":""#;
        let exactly = format!(r#"{head}{}"}}"#, "x".repeat(1024 - head.len() - 2));
        assert_eq!(exactly.len(), 1024);
        assert!(
            parser().parse(k, exactly.as_bytes()).is_ok(),
            "max itself is fine"
        );
        assert_eq!(reject(k, b"{\"ts\":\"\xff\"}"), RejectReason::NotUtf8);
        assert_eq!(reject(k, b"{\"ts\":"), RejectReason::NotJson);
        assert_eq!(reject(k, b"hello"), RejectReason::NotJson);
        assert_eq!(reject(k, b"{\"ts\":1795442587} x"), RejectReason::NotJson);
        assert_eq!(
            reject(k, b"{\"ts\":1795442587}{\"ts\":1795442587}"),
            RejectReason::NotJson
        );
        assert_eq!(reject(k, b"{\"ts\":1795442587,}"), RejectReason::NotJson);
        assert_eq!(reject(k, b"[1,2,3]"), RejectReason::NotObject);
        assert_eq!(reject(k, b"\"str\""), RejectReason::NotObject);
        assert_eq!(reject(k, b"42"), RejectReason::NotObject);
        assert_eq!(reject(k, b"null"), RejectReason::NotObject);
        assert_eq!(reject(k, b"[1,2"), RejectReason::NotJson);
    }

    #[test]
    fn deep_nesting_never_overflows_the_stack() {
        let p = Parser {
            max_line_bytes: usize::MAX,
            now_ms: NOW,
        };
        let open = "[".repeat(100_000);
        let close = "]".repeat(100_000);
        // Skipped values are walked iteratively by serde_json: valid, accepted.
        let skipped = format!(r#"{{"ts":1795442587,"x":{open}{close}}}"#);
        assert_eq!(
            p.parse(Kind::ToolCall, skipped.as_bytes()).map(|e| e.ts),
            Ok(1_795_442_587_000)
        );
        let in_field = format!(r#"{{"ts":1795442587,"tool":{open}{close}}}"#);
        assert_eq!(
            p.parse(Kind::ToolCall, in_field.as_bytes())
                .map(|e| e.tool_name),
            Ok(None)
        );
        let top = format!("{open}{close}");
        assert_eq!(
            p.parse(Kind::ToolCall, top.as_bytes()),
            Err(RejectReason::NotObject)
        );
        // Unbalanced deep input is not JSON.
        assert_eq!(
            p.parse(Kind::ToolCall, open.as_bytes()),
            Err(RejectReason::NotJson)
        );
        let objs = format!(r#"{{"ts":1795442587,"x":{}}}"#, r#"{"a":"#.repeat(50_000));
        assert_eq!(
            p.parse(Kind::ToolCall, objs.as_bytes()),
            Err(RejectReason::NotJson)
        );
    }

    #[test]
    fn bom_and_surrounding_whitespace_are_tolerated() {
        assert_eq!(
            ts_of_line("\u{feff} {\"ts\":1795442587} "),
            Ok(1_795_442_587_000)
        );
    }

    /// SPEC §1's table, name by name: what each key means in each log. The
    /// dispatch in `slot` is by length, so this holds it to the table.
    #[test]
    fn every_name_of_spec_section_1_means_what_the_table_says() {
        use Kind::{Approval as A, Error as E, ToolCall as T};
        use StrField as F;
        let all = [T, A, E];
        let common: &[(&str, Slot)] = &[
            ("ts", Slot::Ts(0)),
            ("timestamp", Slot::Ts(1)),
            ("time", Slot::Ts(2)),
            ("@timestamp", Slot::Ts(3)),
            ("loggedAt", Slot::Ts(4)),
            ("event_timestamp", Slot::Ts(5)),
            ("request_id", Slot::Str(F::RequestId, 0)),
            ("requestId", Slot::Str(F::RequestId, 1)),
            ("call_id", Slot::Str(F::RequestId, 2)),
            ("user_id", Slot::Str(F::UserId, 0)),
            ("user", Slot::Str(F::UserId, 1)),
            ("userId", Slot::Str(F::UserId, 2)),
            ("principal", Slot::Str(F::UserId, 3)),
            ("agent_id", Slot::Str(F::AgentId, 0)),
            ("agent", Slot::Str(F::AgentId, 1)),
            ("agentId", Slot::Str(F::AgentId, 2)),
            ("conversation_id", Slot::Str(F::ConversationId, 0)),
            ("session_id", Slot::Str(F::ConversationId, 1)),
            ("conversationId", Slot::Str(F::ConversationId, 2)),
            ("server_name", Slot::Str(F::ServerName, 0)),
            ("server", Slot::Str(F::ServerName, 1)),
            ("mcp_server_name", Slot::Str(F::ServerName, 2)),
            ("tool_name", Slot::Str(F::ToolName, 0)),
            ("tool", Slot::Str(F::ToolName, 1)),
            ("mcp_tool_name", Slot::Str(F::ToolName, 2)),
            ("token_id", Slot::Str(F::TokenId, 0)),
            ("token_fingerprint", Slot::Str(F::TokenId, 1)),
        ];
        for (name, want) in common {
            for kind in all {
                assert_eq!(slot(kind, name), *want, "{name} in {kind:?}");
            }
        }
        let specific: &[(Kind, &str, Slot)] = &[
            (T, "outcome", Slot::Outcome),
            (T, "duration_ms", Slot::Duration(0, 1.0)),
            (T, "latency_ms", Slot::Duration(1, 1.0)),
            (T, "tool_latency_secs", Slot::Duration(2, 1000.0)),
            (T, "args_bytes", Slot::ArgsBytes),
            (A, "approval_mode", Slot::ApprovalMode),
            (A, "decision", Slot::Decision(0)),
            (A, "result", Slot::Decision(1)),
            (A, "outcome", Slot::Decision(2)),
            (A, "decided_by", Slot::DecidedBy),
            (A, "wait_ms", Slot::WaitMs),
            (E, "error_code", Slot::Str(F::ErrorCode, 0)),
            (E, "error_type", Slot::Str(F::ErrorType, 0)),
            (E, "error_message", Slot::Str(F::ErrorMessage, 0)),
            (E, "error", Slot::Str(F::ErrorMessage, 1)),
            (E, "phase", Slot::Str(F::Phase, 0)),
        ];
        for (kind, name, want) in specific {
            assert_eq!(slot(*kind, name), *want, "{name} in {kind:?}");
            for other in all.into_iter().filter(|k| k != kind) {
                // A kind-specific name means nothing in the other logs,
                // unless it is one of theirs too (`outcome`).
                if !specific.iter().any(|(k, n, _)| *k == other && n == name) {
                    assert_eq!(slot(other, name), Slot::Ignore, "{name} in {other:?}");
                }
            }
        }
        // The secret-bearing `token`, near misses and case are ignored.
        for name in [
            "token",
            "",
            "t",
            "TS",
            "Ts",
            "user_ids",
            "tool_nam",
            "ts ",
            "approval_modes",
        ] {
            for kind in all {
                assert_eq!(slot(kind, name), Slot::Ignore, "{name:?} in {kind:?}");
            }
        }
    }

    #[test]
    fn kind_is_set_from_the_caller() {
        for kind in Kind::ALL {
            let e = parser()
                .parse(kind, br#"{"ts":1795442587}"#)
                .expect("parses");
            assert_eq!(e.kind, Some(kind));
        }
    }
}
