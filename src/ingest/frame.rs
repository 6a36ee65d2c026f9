//! The framing rules of SPEC §1, in one place for every reader of lines
//! (the file and archive reader of `scan` and `report`, and the tailer of
//! `run`): a UTF-8 BOM is dropped at the start of a file only, a line ends
//! at `\n` with an optional `\r` before it, and a line longer than the
//! maximum (without its BOM and ending) is `too_long` — decided as soon as
//! the bytes held for it could never fit, so it is skipped to its newline
//! without being buffered.
//!
//! [`Framer`] applies them to a stream read in pieces: it finds where each
//! line ends in the bytes a reader holds, tells it when to drop the bytes
//! of a line that can no longer fit, and releases a last line without a
//! newline at the end of input. The file and archive reader
//! ([`LineReader`](crate::ingest::lines::LineReader)) and the tailer
//! differ only in how they buffer and where they read.

use std::ops::Range;

use crate::event::RejectReason;

/// The UTF-8 byte order mark.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The bytes of a line that ended (`line` without its `\n`, or the whole
/// rest of a file that ends without one when `ended` is false): without a
/// BOM when it starts its file, and without the `\r` of a `\r\n`. Too long
/// when what is left is longer than `max`.
pub(crate) fn frame(
    line: &[u8],
    starts_file: bool,
    ended: bool,
    max: usize,
) -> Result<Range<usize>, RejectReason> {
    let mut s = 0;
    let mut e = line.len();
    if starts_file && line.starts_with(BOM) {
        s = BOM.len();
    }
    if ended && e > s && line[e - 1] == b'\r' {
        e -= 1;
    }
    if e - s > max {
        Err(RejectReason::TooLong)
    } else {
        Ok(s..e)
    }
}

/// Whether a line still waiting for its newline, `held` bytes so far, is
/// too long already, whatever comes: more than `max` plus what a BOM and a
/// `\r` could explain. A reader then drops its bytes as they come.
pub(crate) fn hopeless(held: usize, max: usize) -> bool {
    held > max.saturating_add(BOM.len() + 1)
}

/// The framing state of one stream between reads: whether it is inside a
/// too-long line, and how many bytes of that line were dropped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Framer {
    skipping: bool,
    dropped: u64,
}

/// A line found by [`Framer`]: the bytes of `held` it used (its newline
/// included), its length in the stream (with what was dropped of it), and
/// its framed bytes as a range of `held`, or why it is rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) used: usize,
    pub(crate) len: u64,
    pub(crate) line: Result<Range<usize>, RejectReason>,
}

impl Framer {
    /// The next line ending in `held`: the bytes of the stream from the
    /// start of the unfinished line (or, inside a too-long line, from after
    /// what was dropped of it). `searched` bytes at its start are known to
    /// hold no newline; `starts_file`: the line starts at offset 0. `None`:
    /// no newline yet; the reader asks [`Framer::keep`] next.
    #[inline]
    pub(crate) fn split(
        &mut self,
        held: &[u8],
        searched: usize,
        starts_file: bool,
        max: usize,
    ) -> Option<Found> {
        let nl = searched + memchr::memchr(b'\n', &held[searched..])?;
        let len = self.dropped + nl as u64 + 1;
        let line = match std::mem::take(&mut self.skipping) {
            true => Err(RejectReason::TooLong),
            false => frame(&held[..nl], starts_file, true, max),
        };
        self.dropped = 0;
        Some(Found {
            used: nl + 1,
            len,
            line,
        })
    }

    /// Whether a reader keeps the `held` bytes of a line that has no
    /// newline yet. `false`: the line is too long whatever comes; the reader
    /// drops them (they are counted in the line's length).
    #[inline]
    pub(crate) fn keep(&mut self, held: usize, max: usize) -> bool {
        if !self.skipping && hopeless(held, max) {
            self.skipping = true;
        }
        if self.skipping {
            self.dropped += held as u64;
        }
        !self.skipping
    }

    /// The end of the input: the `held` bytes (and what was dropped) as a
    /// last line without a newline; `None` when there is none (nothing
    /// held, or only the BOM of an otherwise empty file).
    pub(crate) fn finish(&mut self, held: &[u8], starts_file: bool, max: usize) -> Option<Found> {
        let skipping = std::mem::take(&mut self.skipping);
        let dropped = std::mem::take(&mut self.dropped);
        if !skipping && (held.is_empty() || (starts_file && held == BOM)) {
            return None;
        }
        Some(Found {
            used: held.len(),
            len: dropped + held.len() as u64,
            line: match skipping {
                true => Err(RejectReason::TooLong),
                false => frame(held, starts_file, false, max),
            },
        })
    }

    /// Whether part of a line is held or dropped: the stream is not at a
    /// line boundary.
    pub(crate) fn inside_line(&self, held: usize) -> bool {
        self.skipping || held > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_only_at_the_start_of_a_file_and_cr_only_before_a_newline() {
        assert_eq!(frame(b"\xEF\xBB\xBFab\r", true, true, 10), Ok(3..5));
        assert_eq!(frame(b"\xEF\xBB\xBFab\r", false, true, 10), Ok(0..5));
        assert_eq!(frame(b"ab\r", true, false, 10), Ok(0..3));
        assert_eq!(frame(b"", true, true, 0), Ok(0..0));
    }

    #[test]
    fn the_maximum_counts_the_line_without_bom_and_ending() {
        assert_eq!(frame(b"\xEF\xBB\xBFabcd\r", true, true, 4), Ok(3..7));
        assert_eq!(frame(b"abcde", true, true, 4), Err(RejectReason::TooLong));
        assert!(!hopeless(4 + 4, 4));
        assert!(hopeless(4 + 5, 4));
    }

    #[test]
    fn a_framer_drops_a_hopeless_line_and_counts_it_whole() {
        let mut f = Framer::default();
        assert_eq!(f.split(b"abcdefgh", 0, true, 2), None);
        assert!(!f.keep(8, 2));
        assert_eq!(f.split(b"xy", 0, false, 2), None);
        assert!(!f.keep(2, 2));
        let found = f.split(b"z\nok\n", 0, false, 2).unwrap();
        assert_eq!((found.used, found.len), (2, 12));
        assert_eq!(found.line, Err(RejectReason::TooLong));
        let ok = f.split(b"ok\n", 0, false, 2).unwrap();
        assert_eq!(ok.line, Ok(0..2));
        assert!(f.keep(3, 2));
        assert_eq!(
            f.finish(b"ab\r", false, 2),
            Some(Found {
                used: 3,
                len: 3,
                line: Err(RejectReason::TooLong)
            })
        );
        assert_eq!(f.finish(b"", true, 2), None);
        assert_eq!(f.finish(BOM, true, 2), None);
        assert_eq!(
            f.finish(BOM, false, 2).map(|f| f.line),
            Some(Err(RejectReason::TooLong))
        );
    }
}
