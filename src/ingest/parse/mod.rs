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
//!   [`IgnoredAny`](serde::de::IgnoredAny). It has the last word on every
//!   line the fast path gives up on (escapes, odd numbers, very deep
//!   nesting, anything that is not valid JSON), so every rejection reason
//!   comes from it.
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
//!
//! The rooms: `fields` (the field table and the winners it keeps), `ts`
//! (every timestamp form of SPEC §1), `fast` (the fast path) and `walk` (the
//! serde path's visitors); this file holds [`Parser`], which runs them.

mod fast;
mod fields;
mod ts;
mod walk;

use serde::de::Deserializer;

use crate::event::{Event, Kind, Millis, RejectReason};
use fields::{Fields, Scalar, slot};
use walk::{ScalarSeed, TopVisitor};

pub(crate) use ts::DAYS_BEFORE_EPOCH;

/// 2000-01-01T00:00:00Z in ms: earlier timestamps are `bad_ts` (SPEC §1).
pub(crate) const MIN_TS_MS: Millis = 946_684_800_000;
/// How far ahead of the reading clock a ts may be before it is `bad_ts`.
pub(crate) const MAX_FUTURE_MS: Millis = 10 * 60 * 1000;
/// The default `input.max_line_bytes` (1 MiB).
pub(crate) const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

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

#[cfg(test)]
mod tests;
