//! The framing rules of SPEC §1, in one place for every reader of lines
//! (the file and archive reader of `scan` and `report`, and the tailer of
//! `run`): a UTF-8 BOM is dropped at the start of a file only, a line ends
//! at `\n` with an optional `\r` before it, and a line longer than the
//! maximum (without its BOM and ending) is `too_long` — decided as soon as
//! the bytes held for it could never fit, so it is skipped to its newline
//! without being buffered. The readers differ only in how they buffer.

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
}
