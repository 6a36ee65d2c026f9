//! The log names of SPEC §1, §4 and §6 and their rotation grammar, parsed
//! strictly, in one place for every reader and the rotator: `scan`,
//! `report` and the tailer read what [`classify`] accepts, and the rotator
//! touches nothing else.
//!
//! Anything that does not parse here is left alone: a stray `notes.txt`, a
//! `tool-usage.log.1.gz` from logrotate's own compression, a `.zst` file
//! without a time or number in its name. Keeping the grammar in one place is
//! what makes "nothing else is ever touched" checkable.

use std::cmp::Reverse;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::event::Kind;

/// The alert log of SPEC §4, written by `run` beside the audit logs.
pub(crate) const ALERTS_LOG: &str = "alerts.log";

/// The logs the daemon's tailer consumes (SPEC §1), in merge tie-break
/// order; only these wait for consumption. `alerts.log` is the daemon's own
/// output: nothing reads it behind us.
pub(crate) const INPUT_LOGS: [&str; 3] = [
    Kind::ToolCall.base_file(),
    Kind::Approval.base_file(),
    Kind::Error.base_file(),
];

/// The logs the rotator manages: the three inputs and the alert log.
pub(crate) const LOGS: [&str; 4] = [INPUT_LOGS[0], INPUT_LOGS[1], INPUT_LOGS[2], ALERTS_LOG];

/// `YYYYMMDD-HHMMSS`, UTC, as in `tool-usage.log.20261102-000000`.
pub(crate) const TS_FORMAT: &str = "%Y%m%d-%H%M%S";

/// Suffix of compressed archives.
pub(crate) const ZST: &str = ".zst";

/// Suffix of the temp file an archive is written to before its verified
/// rename; the temp is `.<archive name>.tmp` (hidden, same directory).
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// What a file name in the log directory is to the rotator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LogName {
    /// `<log>`: the file writers append to.
    Live { base: &'static str },
    /// `<log>.<N>[.zst]`: rotated by another tool (logrotate's default
    /// naming). Read by `scan` and a restarted `run`; the rotator compresses
    /// a plain one and leaves a compressed one alone.
    Numbered {
        base: &'static str,
        n: u64,
        zst: bool,
    },
    /// `<log>.<YYYYMMDD-HHMMSS>[-N][.zst]`: rotated by us (or by the rename
    /// step of compressing a `<log>.<N>`).
    Rotated {
        base: &'static str,
        ts: DateTime<Utc>,
        seq: Option<u64>,
        zst: bool,
    },
}

impl LogName {
    pub(crate) fn base(&self) -> &'static str {
        match self {
            LogName::Live { base }
            | LogName::Numbered { base, .. }
            | LogName::Rotated { base, .. } => base,
        }
    }

    /// A `.zst` archive.
    pub(crate) fn zst(&self) -> bool {
        match self {
            LogName::Live { .. } => false,
            LogName::Numbered { zst, .. } | LogName::Rotated { zst, .. } => *zst,
        }
    }

    /// Where the file stands among its log's generations.
    pub(crate) fn age(&self) -> AgeRank {
        match self {
            LogName::Live { .. } => AgeRank::Live,
            LogName::Numbered { n, .. } => AgeRank::Numbered(Reverse(*n)),
            LogName::Rotated { ts, seq, .. } => AgeRank::Stamped(*ts, seq.unwrap_or(0)),
        }
    }
}

/// Sort key putting a log's generations in the order they were written:
/// logrotate-style `.N` (higher N is older), then timestamped rotations by
/// their time (and collision number), then the live file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AgeRank {
    Numbered(Reverse<u64>),
    Stamped(DateTime<Utc>, u64),
    Live,
}

/// `Some((age, zst))` when `name` is `base` or one of its rotations or
/// archives (SPEC §6), or the live log compressed whole (`<log>.zst`, as an
/// export or a copy made for an investigation).
pub(crate) fn rotation_of(name: &str, base: &str) -> Option<(AgeRank, bool)> {
    if name.strip_prefix(base) == Some(ZST) {
        return Some((AgeRank::Live, true));
    }
    parse(name)
        .filter(|n| n.base() == base)
        .map(|n| (n.age(), n.zst()))
}

/// Classifies a file name (not a path) as the rotator sees it. `None`: not
/// ours, leave it alone (a `<log>.<N>.zst` is another tool's archive).
pub(crate) fn classify(name: &str) -> Option<LogName> {
    parse(name).filter(|n| !matches!(n, LogName::Numbered { zst: true, .. }))
}

/// Every name of SPEC §6 a reader reads, the rotator's and another tool's
/// `<log>.<N>.zst`.
fn parse(name: &str) -> Option<LogName> {
    for base in LOGS {
        let Some(rest) = name.strip_prefix(base) else {
            continue;
        };
        if rest.is_empty() {
            return Some(LogName::Live { base });
        }
        let rest = rest.strip_prefix('.')?;
        let (stem, zst) = match rest.strip_suffix(ZST) {
            Some(s) => (s, true),
            None => (rest, false),
        };
        if is_digits(stem) {
            // `<log>.<N>`; a leading zero or an absurd length is not a
            // rotation number any tool writes.
            if stem.len() > 6 || (stem.len() > 1 && stem.starts_with('0')) {
                return None;
            }
            return stem
                .parse()
                .ok()
                .map(|n| LogName::Numbered { base, n, zst });
        }
        let (ts, seq) = parse_stamp(stem)?;
        return Some(LogName::Rotated { base, ts, seq, zst });
    }
    None
}

/// Parses `YYYYMMDD-HHMMSS[-N]`, N ≥ 1 without leading zero.
fn parse_stamp(s: &str) -> Option<(DateTime<Utc>, Option<u64>)> {
    let ts_part = s.get(..15)?;
    let b = ts_part.as_bytes();
    if !(is_digits(&ts_part[..8]) && b[8] == b'-' && is_digits(&ts_part[9..])) {
        return None;
    }
    let ts = NaiveDateTime::parse_from_str(ts_part, TS_FORMAT)
        .ok()?
        .and_utc();
    let seq = match &s[15..] {
        "" => None,
        tail => {
            let n = tail.strip_prefix('-')?;
            if !is_digits(n) || n.starts_with('0') || n.len() > 6 {
                return None;
            }
            Some(n.parse().ok()?)
        }
    };
    Some((ts, seq))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `<base>.<YYYYMMDD-HHMMSS>` or with `-<seq>`.
pub(crate) fn rotated_name(base: &str, ts: DateTime<Utc>, seq: u64) -> String {
    let stamp = ts.format(TS_FORMAT);
    if seq == 0 {
        format!("{base}.{stamp}")
    } else {
        format!("{base}.{stamp}-{seq}")
    }
}

/// The hidden temp name an archive is written under before its rename.
pub(crate) fn temp_name(archive_name: &str) -> String {
    format!(".{archive_name}{TMP_SUFFIX}")
}

/// If `name` is one of our archive temps, the archive name it was for.
pub(crate) fn temp_target(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('.')?.strip_suffix(TMP_SUFFIX)?;
    match classify(inner)? {
        LogName::Rotated { zst: true, .. } => Some(inner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn live_numbered_and_rotated_names_parse() {
        assert_eq!(
            classify("tool-usage.log"),
            Some(LogName::Live {
                base: "tool-usage.log"
            })
        );
        assert_eq!(
            classify("alerts.log.3"),
            Some(LogName::Numbered {
                base: "alerts.log",
                n: 3,
                zst: false
            })
        );
        assert_eq!(
            classify("errors.log.20261102-000000.zst"),
            Some(LogName::Rotated {
                base: "errors.log",
                ts: ts(2026, 11, 2, 0, 0, 0),
                seq: None,
                zst: true
            })
        );
        assert_eq!(
            classify("approvals.log.20261231-235959-12"),
            Some(LogName::Rotated {
                base: "approvals.log",
                ts: ts(2026, 12, 31, 23, 59, 59),
                seq: Some(12),
                zst: false
            })
        );
    }

    #[test]
    fn readers_take_numbered_archives_and_order_generations_by_age() {
        assert_eq!(
            rotation_of("tool-usage.log.1.zst", "tool-usage.log"),
            Some((AgeRank::Numbered(Reverse(1)), true))
        );
        assert_eq!(
            rotation_of("tool-usage.log", "tool-usage.log"),
            Some((AgeRank::Live, false))
        );
        assert_eq!(
            rotation_of("tool-usage.log.2", "tool-usage.log"),
            Some((AgeRank::Numbered(Reverse(2)), false))
        );
        assert_eq!(
            rotation_of("tool-usage.log.20261102-000000-1.zst", "tool-usage.log"),
            Some((AgeRank::Stamped(ts(2026, 11, 2, 0, 0, 0), 1), true))
        );
        assert_eq!(rotation_of("tool-usage.log.bak", "tool-usage.log"), None);
        assert_eq!(rotation_of("tool-usage.logx", "tool-usage.log"), None);
        assert_eq!(
            rotation_of("alerts.log.zst", "alerts.log"),
            Some((AgeRank::Live, true))
        );
        assert_eq!(rotation_of("tool-usage.log.1", "errors.log"), None);
        let mut names = [
            "tool-usage.log",
            "tool-usage.log.20261102-000000-10",
            "tool-usage.log.1",
            "tool-usage.log.20261102-000000-2",
            "tool-usage.log.2.zst",
            "tool-usage.log.20261102-000000",
        ];
        names.sort_by_key(|n| rotation_of(n, "tool-usage.log").unwrap().0);
        assert_eq!(
            names,
            [
                "tool-usage.log.2.zst",
                "tool-usage.log.1",
                "tool-usage.log.20261102-000000",
                "tool-usage.log.20261102-000000-2",
                "tool-usage.log.20261102-000000-10",
                "tool-usage.log",
            ]
        );
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for n in [
            "notes.txt",
            "tool-usage.logx",
            "tool-usage.log.",
            "tool-usage.log.1.gz",
            "tool-usage.log.01",
            "tool-usage.log.1.zst",
            "tool-usage.log.20261302-000000",
            "tool-usage.log.20261102-000000-0",
            "tool-usage.log.20261102-000000-",
            "tool-usage.log.20261102-000000.gz",
            "tool-usage.log.20261102000000",
            "tool-usage.log.2026110-0000000",
            "tool-usage.log.20261102-000000.zst.tmp",
            "other.log.20261102-000000.zst",
            "checkpoint.json",
        ] {
            assert_eq!(classify(n), None, "{n}");
        }
    }

    #[test]
    fn rotated_name_round_trips_with_sequence() {
        let t = ts(2026, 11, 23, 0, 0, 5);
        assert_eq!(
            rotated_name("errors.log", t, 0),
            "errors.log.20261123-000005"
        );
        assert_eq!(
            rotated_name("errors.log", t, 2),
            "errors.log.20261123-000005-2"
        );
        assert_eq!(
            classify(&rotated_name("errors.log", t, 2)),
            Some(LogName::Rotated {
                base: "errors.log",
                ts: t,
                seq: Some(2),
                zst: false
            })
        );
    }

    #[test]
    fn temp_names_map_back_to_their_archive() {
        let t = temp_name("tool-usage.log.20261123-000005.zst");
        assert_eq!(t, ".tool-usage.log.20261123-000005.zst.tmp");
        assert_eq!(temp_target(&t), Some("tool-usage.log.20261123-000005.zst"));
        assert_eq!(temp_target(".tool-usage.log.tmp"), None);
        assert_eq!(temp_target(".notes.zst.tmp"), None);
    }
}
