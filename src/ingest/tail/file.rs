//! One followed file: where it has been read and consumed to, its framing
//! (BOM, CRLF, too-long lines skipped without buffering, a partial last line
//! held back), and the checks that tell it was truncated or rewritten.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::ingest::frame;

/// One open file and how far it has been consumed.
#[derive(Debug)]
pub(super) struct Tracked {
    pub(super) name: Arc<str>,
    pub(super) file: File,
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) head_len: u64,
    pub(super) head_hash: u64,
    /// Just past the last returned line: the checkpoint.
    pub(super) offset: u64,
    /// Lines returned so far.
    pub(super) line: u64,
    /// Read up to here; `[offset, read_pos)` is the held partial line, in
    /// `pending` unless `skipping`.
    pub(super) read_pos: u64,
    pub(super) pending: Vec<u8>,
    /// Inside a too-long line: its bytes are dropped as they are read.
    pub(super) skipping: bool,
    pub(super) size: u64,
    pub(super) idle_since: Instant,
    pub(super) rotated: bool,
    pub(super) deleted: bool,
    /// Identity by content, once the first line is complete.
    pub(super) fp: Option<Fingerprint>,
    /// A `.zst` archive (a rotated copy compressed while the daemon was
    /// stopped): read front to back through a decoder.
    pub(super) zst: Option<Box<ZstCursor>>,
    /// A new file under the base name whose first line is that of a file
    /// already followed: once that one is read to its end, this one
    /// continues at its offset (a replacement by a copy).
    pub(super) continues: Option<Fingerprint>,
}

impl Tracked {
    pub(super) fn open(
        name: Arc<str>,
        file: File,
        md: &Metadata,
        head: (u64, u64),
        offset: u64,
        line: u64,
        now: Instant,
    ) -> Tracked {
        Tracked {
            name,
            file,
            dev: md.dev(),
            ino: md.ino(),
            head_len: head.0,
            head_hash: head.1,
            offset,
            line,
            read_pos: offset,
            pending: Vec::new(),
            skipping: false,
            size: md.len(),
            idle_since: now,
            rotated: false,
            deleted: false,
            fp: None,
            zst: None,
            continues: None,
        }
    }

    /// Opens a followed file under `name`: plain, or a `.zst` archive read
    /// through a decoder. Computes its fingerprint when it has one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn open_named(
        name: Arc<str>,
        file: File,
        md: &Metadata,
        head: (u64, u64),
        offset: u64,
        line: u64,
        now: Instant,
    ) -> io::Result<Tracked> {
        let zst = is_zst(&name);
        let mut t = Tracked::open(name, file, md, head, offset, line, now);
        if zst {
            t.zst = Some(Box::new(ZstCursor::open(&t.file)?));
            t.size = offset.saturating_add(1);
        }
        t.update_fingerprint()?;
        Ok(t)
    }

    /// Reads `buf.len()` bytes at `off` of the file's content.
    pub(super) fn read_src(&mut self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        match self.zst.as_deref_mut() {
            None => read_at(&self.file, buf, off),
            Some(z) => z.read_at(&self.file, buf, off),
        }
    }

    /// Computes the fingerprint once the first line is complete.
    pub(super) fn update_fingerprint(&mut self) -> io::Result<()> {
        if self.fp.is_some() {
            return Ok(());
        }
        let head = match &self.zst {
            None => read_head(&self.file, FINGERPRINT_BYTES)?,
            Some(_) => zst_head(&self.file, FINGERPRINT_BYTES)?,
        };
        self.fp = fingerprint(&head);
        Ok(())
    }

    /// Read to its end as far as is known now (an archive only once its
    /// decoder has reached the end of the stream).
    pub(super) fn at_end(&self) -> bool {
        self.read_pos >= self.size && self.zst.as_ref().is_none_or(|z| z.eof)
    }

    /// The fingerprint of what the file holds now (the cached one may be
    /// stale for a file truncated and rewritten since it was read).
    pub(super) fn current_fingerprint(&self) -> Option<Fingerprint> {
        match &self.zst {
            None => read_head(&self.file, FINGERPRINT_BYTES)
                .ok()
                .and_then(|h| fingerprint(&h)),
            Some(_) => self.fp,
        }
    }

    pub(super) fn position(&self, base: &str) -> FilePosition {
        FilePosition {
            base: base.to_string(),
            name: self.name.to_string(),
            dev: self.dev,
            ino: self.ino,
            head_hash: self.head_hash,
            head_len: self.head_len,
            offset: self.offset,
            line: self.line,
            fingerprint: self.fp.map(hex::encode),
        }
    }

    /// Whether reading may resume at `offset` in a file known by its
    /// content but not its inode (a copy, or the file compressed): it is at
    /// least that long and the byte before ends a line (SPEC §8), or it
    /// ends right there (a partial last line released as it was);
    /// otherwise it is not the file the offset was taken in.
    pub(super) fn resumable_at(&mut self, offset: u64) -> bool {
        if offset == 0 {
            return true;
        }
        let mut b = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            match self.read_src(&mut b[got..], offset - 1 + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(_) => return false,
            }
        }
        got == 1 || (got == 2 && b[0] == b'\n')
    }

    /// Whether this is the very file a position was taken in (same device
    /// and inode, long enough): then its offset is trusted as it is.
    pub(super) fn same_file(&self, pos: &FilePosition) -> bool {
        self.dev == pos.dev && self.ino == pos.ino && self.zst.is_none() && self.size >= pos.offset
    }

    /// Checks that the file still starts with the bytes fingerprinted so far
    /// and extends the fingerprint while it is shorter than [`HEAD_BYTES`].
    /// `false` means the content was replaced (truncated and rewritten).
    pub(super) fn verify_head(&mut self) -> io::Result<bool> {
        if self.zst.is_some() {
            // An archive is never rewritten in place.
            return Ok(true);
        }
        let head = read_head(&self.file, HEAD_BYTES)?;
        let known = self.head_len as usize;
        if head.len() < known || fnv1a(&head[..known]) != self.head_hash {
            return Ok(false);
        }
        if head.len() > known {
            self.head_len = head.len() as u64;
            self.head_hash = fnv1a(&head);
        }
        Ok(true)
    }

    /// Starts over at 0 (after a truncation).
    pub(super) fn reset(&mut self) {
        self.offset = 0;
        self.line = 0;
        self.read_pos = 0;
        self.pending.clear();
        self.skipping = false;
        self.head_len = 0;
        self.head_hash = fnv1a(&[]);
        self.fp = None;
    }

    /// Re-reads size and link count through the descriptor.
    pub(super) fn refresh(&mut self, now: Instant) -> io::Result<()> {
        let md = self.file.metadata()?;
        // An archive's decompressed size is known once read to its end;
        // until then one byte more than read says "more to come".
        let len = match &self.zst {
            None => md.len(),
            Some(z) if z.eof => z.pos,
            Some(z) => z.pos.max(self.read_pos).saturating_add(1),
        };
        if len != self.size {
            self.size = len;
            self.idle_since = now;
        }
        self.deleted = md.nlink() == 0;
        Ok(())
    }

    pub(super) fn has_partial(&self) -> bool {
        self.skipping || !self.pending.is_empty()
    }

    /// Reads to the end (or `limit` bytes) into `out`; returns whether the
    /// end was reached. Complete lines are returned; the trailing partial
    /// line is kept in `pending` whatever happens.
    pub(super) fn read(
        &mut self,
        kind: Kind,
        max: usize,
        limit: u64,
        out: &mut Batch,
    ) -> io::Result<bool> {
        let mut line_start = out.data.len();
        out.data.extend_from_slice(&self.pending);
        self.pending.clear();
        let result = self.read_inner(kind, max, limit, out, &mut line_start);
        if !self.skipping {
            self.pending.extend_from_slice(&out.data[line_start..]);
        }
        out.data.truncate(line_start);
        result
    }

    pub(super) fn read_inner(
        &mut self,
        kind: Kind,
        max: usize,
        limit: u64,
        out: &mut Batch,
        line_start: &mut usize,
    ) -> io::Result<bool> {
        let mut scan_from = out.data.len();
        let mut read = 0u64;
        loop {
            if read >= limit {
                return Ok(false);
            }
            // Ask for what fstat said is there (plus a margin for what arrived
            // since), so an idle poll zeroes a small buffer, not a chunk.
            let want = (self.size.saturating_sub(self.read_pos) as usize)
                .saturating_add(PROBE_BYTES)
                .min(READ_CHUNK)
                .min(usize::try_from(limit - read).unwrap_or(usize::MAX))
                .max(1);
            let old = out.data.len();
            out.data.resize(old + want, 0);
            let n = match self.read_src(&mut out.data[old..], self.read_pos) {
                Ok(n) => n,
                Err(e) => {
                    out.data.truncate(old);
                    return Err(e);
                }
            };
            out.data.truncate(old + n);
            if n == 0 {
                if let Some(z) = &self.zst {
                    self.size = z.pos;
                }
                return Ok(true);
            }
            self.read_pos += n as u64;
            read += n as u64;
            while let Some(i) = memchr::memchr(b'\n', &out.data[scan_from..]) {
                let nl = scan_from + i;
                // The buffer's end is the file's read_pos.
                let nl_off = self.read_pos - (out.data.len() - nl) as u64;
                self.finish_line(kind, max, out, *line_start, nl, nl_off + 1);
                *line_start = nl + 1;
                scan_from = nl + 1;
            }
            scan_from = out.data.len();
            if !self.skipping && frame::hopeless(out.data.len() - *line_start, max) {
                self.skipping = true;
            }
            if self.skipping {
                // Drop the too-long line's bytes as they come.
                out.data.truncate(*line_start);
                scan_from = *line_start;
            }
            if n < want && self.zst.is_none() {
                // A short read of a regular file: its end, for now. (A
                // decoder returns short reads anywhere; only 0 is its end.)
                return Ok(true);
            }
        }
    }

    /// Ends the line in `out.data[start..nl]` whose end (past its newline or
    /// its last byte) is at file offset `end_off`.
    pub(super) fn finish_line(
        &mut self,
        kind: Kind,
        max: usize,
        out: &mut Batch,
        start: usize,
        nl: usize,
        end_off: u64,
    ) {
        self.push_line(kind, max, out, start..nl, true, end_off);
    }

    /// Hands out the line in `out.data[at]` (`ended`: by a newline) or its
    /// `too_long` reject, and consumes it up to `end_off`.
    fn push_line(
        &mut self,
        kind: Kind,
        max: usize,
        out: &mut Batch,
        at: std::ops::Range<usize>,
        ended: bool,
        end_off: u64,
    ) {
        self.line = self.line.saturating_add(1);
        let len = end_off - self.offset;
        let framed = match self.skipping {
            true => Err(RejectReason::TooLong),
            false => frame::frame(&out.data[at.clone()], self.offset == 0, ended, max),
        };
        self.skipping = false;
        match framed {
            Err(_) => out.rejected.push(self.reject(kind, len)),
            Ok(r) => out.lines.push(TailLine {
                kind,
                file: self.name.clone(),
                line_no: self.line,
                start: at.start + r.start,
                end: at.start + r.end,
            }),
        }
        self.offset = end_off;
    }

    pub(super) fn reject(&self, kind: Kind, len: u64) -> RejectedLine {
        RejectedLine {
            kind,
            file: self.name.clone(),
            line_no: self.line,
            reason: RejectReason::TooLong,
            len,
        }
    }

    /// Returns the held partial line as it is (its file is gone for good).
    pub(super) fn release_partial(&mut self, kind: Kind, max: usize, out: &mut Batch) {
        if !self.has_partial() {
            return;
        }
        let start = out.data.len();
        out.data.extend_from_slice(&self.pending);
        self.pending.clear();
        let end = out.data.len();
        // A partial line has no newline, so no `\r` of one to strip.
        self.push_line(kind, max, out, start..end, false, self.read_pos);
    }
}

/// Reads one followed file into `out`; `true` when the read limit stopped
/// it before its end.
pub(super) fn read_one(
    t: &mut Tracked,
    dir: &Path,
    kind: Kind,
    max: usize,
    limit: u64,
    now: Instant,
    out: &mut Batch,
) -> bool {
    let mut stopped = false;
    match t.read(kind, max, limit, out) {
        Ok(true) => {}
        Ok(false) => {
            out.caught_up = false;
            stopped = true;
        }
        Err(e) => out.errors.push(FileError {
            path: dir.join(&*t.name),
            error: e,
        }),
    }
    if t.read_pos > t.size {
        t.size = t.read_pos;
        t.idle_since = now;
    }
    if t.fp.is_none() && t.read_pos > 0 {
        let _ = t.update_fingerprint();
    }
    stopped
}
