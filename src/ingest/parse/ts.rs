//! Timestamps: every ts form of SPEC §1 (RFC 3339, `YYYY-MM-DD HH:MM:SS`,
//! epoch seconds or milliseconds as numbers or text) → ms since the epoch.
//!
//! Read straight from the value's bytes, without a date library; the range
//! check (`bad_ts`) is the caller's. A room of its own so the calendar
//! arithmetic sits apart from the field table.

use super::fields::Scalar;
use crate::event::Millis;
use chrono::Datelike;

/// A ts value in any form of SPEC §1, as ms since the epoch; `None` when it
/// is not a timestamp at all. Range is checked by the caller.
pub(super) fn ts_of(v: &Scalar<'_>) -> Option<Millis> {
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
pub(crate) fn parse_ts_str(s: &str) -> Option<Millis> {
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
    // chrono checks the calendar (month lengths, leap years) and counts the
    // days; a table lookup, cheap beside the rest of a line's parse.
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32)?;
    if hour > 23 || min > 59 || sec > 60 {
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
    let days = i64::from(date.num_days_from_ce()) - DAYS_BEFORE_EPOCH;
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01 (day 0 of Unix
/// time), less one.
pub(crate) const DAYS_BEFORE_EPOCH: i64 = 719_163;
