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
use crate::ingest::frame::{Found, Framer};

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
    /// Read up to here; `[offset, read_pos)` is the unfinished line: its
    /// bytes held in `pending`, or dropped by the framer (too long).
    pub(super) read_pos: u64,
    pub(super) pending: Vec<u8>,
    pub(super) framer: Framer,
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
            framer: Framer::default(),
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

    /// The file's identity for [`TailLine::file_id`]: the first 8 bytes of
    /// its fingerprint, computed once its first line is complete (a line is
    /// handed out only then). Should the head not be readable, a hash of
    /// device and inode stands in.
    fn file_id(&mut self) -> u64 {
        if self.fp.is_none() {
            let _ = self.update_fingerprint();
        }
        match &self.fp {
            Some(fp) => {
                u64::from_be_bytes([fp[0], fp[1], fp[2], fp[3], fp[4], fp[5], fp[6], fp[7]])
            }
            None => {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&self.dev.to_le_bytes());
                b[8..].copy_from_slice(&self.ino.to_le_bytes());
                super::fnv1a(&b)
            }
        }
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
        self.framer = Framer::default();
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
        self.framer.inside_line(self.pending.len())
    }

    /// Reads to the end (or `limit` bytes) into `out`; returns whether the
    /// end was reached. Complete lines are returned; the unfinished last
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
        self.pending.extend_from_slice(&out.data[line_start..]);
        out.data.truncate(line_start);
        result
    }

    fn read_inner(
        &mut self,
        kind: Kind,
        max: usize,
        limit: u64,
        out: &mut Batch,
        line_start: &mut usize,
    ) -> io::Result<bool> {
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
            // The bytes before `old` were searched already.
            let mut searched = old - *line_start;
            while let Some(found) =
                self.framer
                    .split(&out.data[*line_start..], searched, self.offset == 0, max)
            {
                let at = *line_start;
                *line_start += found.used;
                searched = 0;
                self.push_line(kind, out, at, found);
            }
            if !self.framer.keep(out.data.len() - *line_start, max) {
                out.data.truncate(*line_start);
            }
            if n < want && self.zst.is_none() {
                // A short read of a regular file: its end, for now. (A
                // decoder returns short reads anywhere; only 0 is its end.)
                return Ok(true);
            }
        }
    }

    /// Hands out the line the framer found at `out.data[at..]`, or its
    /// `too_long` reject, and consumes it.
    fn push_line(&mut self, kind: Kind, out: &mut Batch, at: usize, found: Found) {
        self.line = self.line.saturating_add(1);
        match found.line {
            Err(_) => out.rejected.push(self.reject(kind, found.len)),
            Ok(r) => {
                let file_id = self.file_id();
                out.lines.push(TailLine {
                    kind,
                    file: self.name.clone(),
                    line_no: self.line,
                    offset: self.offset,
                    file_id,
                    start: at + r.start,
                    end: at + r.end,
                })
            }
        }
        self.offset += found.len;
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
        let at = out.data.len();
        out.data.extend_from_slice(&self.pending);
        self.pending.clear();
        match self.framer.finish(&out.data[at..], self.offset == 0, max) {
            Some(found) => self.push_line(kind, out, at, found),
            None => out.data.truncate(at),
        }
        // Only the BOM of an empty file is no line, and is consumed too.
        self.offset = self.read_pos;
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
