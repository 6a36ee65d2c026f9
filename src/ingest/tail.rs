//! The tailer: follows `tool-usage.log`, `approvals.log` and `errors.log` in
//! the audit directory across rotations, restarts and crashes, and hands out
//! complete lines as bytes (SPEC §6, §8).
//!
//! It is synchronous and deterministic: no threads, no watcher, no clock of
//! its own. The daemon decides *when* to look (a `notify` event or a periodic
//! poll) and passes the time in; [`Tailer::poll`] then reads every followed
//! file to its current end. Everything that makes a tailer lose or duplicate
//! lines lives here, where a model-based test can reach it
//! (`tests/tail_model.rs`):
//!
//! - a file is known by its content, as Vector's file source does: its
//!   fingerprint is the SHA-256 of its first line (at most
//!   [`FINGERPRINT_BYTES`] of it), and until that line is complete, device
//!   and inode. A file replaced by a copy of itself (`sed -i`, an editor,
//!   rsync: new inode, same beginning) continues where it stopped instead
//!   of being read again (SPEC §8);
//! - while it is followed, a hash of the first [`HEAD_BYTES`] bytes tells
//!   a rewritten or truncated file from one that only grew;
//! - on a restart, the rotated copies of a log (plain or `.zst`) that the
//!   checkpoint has not seen to the end are read, oldest first (by the ts
//!   of their first line), before the live file: rotations while the
//!   daemon was stopped lose nothing. With no checkpoint, only the live
//!   files are read (history is for `scan`);
//! - a file renamed away (rename rotation) or deleted is kept open and read to
//!   its end before it is let go; the new file under the base name is read
//!   from 0;
//! - a file that shrank below the read position or whose head changed was
//!   truncated (copytruncate): the copy with the same head is drained first,
//!   then the file is read again from 0;
//! - a partial last line is held, never returned and never checkpointed past,
//!   until its newline arrives, or, once its file is rotated away and idle
//!   for `rotate_wait`, it is returned as it is;
//! - a line longer than the maximum is skipped to its newline without being
//!   buffered and reported as [`RejectReason::TooLong`] with file and line.
//!
//! Line numbers are counted per file and saved in the checkpoint
//! ([`FilePosition::line`]), so evidence stays right after a restart.

use std::collections::VecDeque;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::event::{Kind, RejectReason};
use crate::ingest::checkpoint::{FilePosition, Finished, TailCheckpoint};
use crate::ingest::input::{AgeRank, rotation_of};

/// Bytes of a file's beginning hashed to confirm its identity: enough to
/// cover the first JSON line (which carries a timestamp) of any real log, so
/// two generations of a log never share a fingerprint.
pub const HEAD_BYTES: usize = 256;

/// Bytes of a file's first line that make its fingerprint (SPEC §8).
pub const FINGERPRINT_BYTES: usize = 1024;

/// Files read to their end remembered in the checkpoint (by fingerprint),
/// so that a restart does not read them again: a year of daily rotations
/// of three logs, plus size rotations.
pub const MAX_FINISHED: usize = 4096;

/// A file's identity by content: the SHA-256 of its first line.
pub type Fingerprint = [u8; 32];

/// The fingerprint of a file that starts with `head`: the SHA-256 of its
/// first line without the newline, or of its first [`FINGERPRINT_BYTES`]
/// when the line is longer. `None` while the first line is incomplete and
/// shorter than that (identity then rests on device and inode).
pub fn fingerprint(head: &[u8]) -> Option<Fingerprint> {
    let head = &head[..head.len().min(FINGERPRINT_BYTES)];
    let line = match memchr::memchr(b'\n', head) {
        Some(i) => &head[..i],
        None if head.len() == FINGERPRINT_BYTES => head,
        None => return None,
    };
    Some(Sha256::digest(line).into())
}

/// Size of one read: large reads keep syscalls per line negligible on a
/// backlog; the buffer holds the batch anyway.
pub const READ_CHUNK: usize = 1 << 20;

/// Rotated files held per base log. logrotate keeps a handful; a bound keeps
/// a writer that rotates in a loop from exhausting file descriptors. When
/// full, the oldest drained file is let go first.
pub const MAX_ROTATED_PER_BASE: usize = 16;

/// Default `rotation.rotate_wait` (SPEC §2).
pub const DEFAULT_ROTATE_WAIT: Duration = Duration::from_secs(60);

/// A rotated file is let go after this much idleness even when no new file
/// appeared under the base name (SPEC §6: "or it has been idle for 24 h").
pub const RELEASE_IDLE_ALONE: Duration = Duration::from_secs(24 * 3600);

/// Read beyond the size fstat reported, to catch what was appended since.
const PROBE_BYTES: usize = 64 * 1024;

/// A batch buffer grown beyond this by a backlog is freed rather than kept
/// for the next poll.
const RETAIN_BUFFER_BYTES: usize = 64 << 20;

/// A partial line is declared too long as soon as it exceeds the maximum by
/// more than a BOM and a `\r` could explain.
const TOO_LONG_SLACK: usize = 4;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One complete line, without BOM and line ending. Its bytes live in the
/// [`Batch`]'s shared buffer: see [`Batch::bytes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailLine {
    pub kind: Kind,
    /// The name the line was read from (`tool-usage.log`,
    /// `tool-usage.log.20261102-000000`, ...), for evidence.
    pub file: Arc<str>,
    /// 1-based line number within that file.
    pub line_no: u64,
    start: usize,
    end: usize,
}

/// A line that never becomes text: over `max_line_bytes` (the only reason the
/// tailer itself decides; everything else is the parser's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedLine {
    pub kind: Kind,
    pub file: Arc<str>,
    pub line_no: u64,
    pub reason: RejectReason,
    /// Length of the line in bytes, line ending included.
    pub len: u64,
}

/// A file that could not be read this time (other than it being absent,
/// which is normal). The other files were read; the next poll retries.
#[derive(Debug)]
pub struct FileError {
    pub path: PathBuf,
    pub error: io::Error,
}

/// What one [`Tailer::poll`] read.
///
/// All line bytes are in one buffer, read into directly from the files, so a
/// line is never copied on its way to the parser (only a partial line carried
/// over from the previous poll is copied once).
#[derive(Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    /// Complete lines, grouped by kind in [`Kind`] order, each kind's lines
    /// in file order (rotated files oldest first, then the live file).
    pub lines: Vec<TailLine>,
    /// Lines over the maximum, in the same order.
    pub rejected: Vec<RejectedLine>,
    /// Files that failed to read this time.
    pub errors: Vec<FileError>,
    /// False when a read limit ([`Tailer::set_read_limit`]) stopped a file
    /// before its end: poll again soon.
    pub caught_up: bool,
}

impl Batch {
    /// The bytes of `line` (which must come from this batch).
    pub fn bytes(&self, line: &TailLine) -> &[u8] {
        self.data.get(line.start..line.end).unwrap_or(&[])
    }

    /// Lines with their bytes, in batch order.
    pub fn iter(&self) -> impl Iterator<Item = (&TailLine, &[u8])> {
        self.lines.iter().map(|l| (l, self.bytes(l)))
    }

    /// The lines of one kind (a contiguous run, file order).
    pub fn lines_of(&self, kind: Kind) -> &[TailLine] {
        let start = self.lines.partition_point(|l| l.kind < kind);
        let end = self.lines.partition_point(|l| l.kind <= kind);
        &self.lines[start..end]
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.rejected.is_empty()
    }

    /// Empties the batch, keeping its buffers (up to a bound).
    pub fn clear(&mut self) {
        if self.data.capacity() > RETAIN_BUFFER_BYTES {
            self.data = Vec::new();
        }
        self.data.clear();
        self.lines.clear();
        self.rejected.clear();
        self.errors.clear();
        self.caught_up = true;
    }
}

/// A followed file as the rotator and `/healthz` see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowedFile {
    pub kind: Kind,
    /// Path under its current name (the last name seen when it was renamed
    /// out of the directory or deleted).
    pub path: PathBuf,
    pub name: Arc<str>,
    pub dev: u64,
    pub ino: u64,
    /// Consumed up to here (what [`Tailer::checkpoint`] saves).
    pub offset: u64,
    /// Read up to here (past `offset` by a held partial line).
    pub read_pos: u64,
    /// Size at the last poll.
    pub size: u64,
    /// Lines consumed.
    pub line: u64,
    /// Last time the file grew or was read.
    pub idle_since: Instant,
    /// No longer under its base name (renamed, copied away, or deleted).
    pub rotated: bool,
    /// Unlinked: only the open descriptor keeps it readable.
    pub deleted: bool,
}

impl FollowedFile {
    /// Everything in the file has been consumed (a held partial line counts
    /// as not consumed).
    pub fn consumed(&self) -> bool {
        self.offset >= self.size
    }
}

/// One open file and how far it has been consumed.
#[derive(Debug)]
struct Tracked {
    name: Arc<str>,
    file: File,
    dev: u64,
    ino: u64,
    head_len: u64,
    head_hash: u64,
    /// Just past the last returned line: the checkpoint.
    offset: u64,
    /// Lines returned so far.
    line: u64,
    /// Read up to here; `[offset, read_pos)` is the held partial line, in
    /// `pending` unless `skipping`.
    read_pos: u64,
    pending: Vec<u8>,
    /// Inside a too-long line: its bytes are dropped as they are read.
    skipping: bool,
    size: u64,
    idle_since: Instant,
    rotated: bool,
    deleted: bool,
    /// Identity by content, once the first line is complete.
    fp: Option<Fingerprint>,
    /// A `.zst` archive (a rotated copy compressed while the daemon was
    /// stopped): read front to back through a decoder.
    zst: Option<Box<ZstCursor>>,
    /// A new file under the base name whose first line is that of a file
    /// already followed: once that one is read to its end, this one
    /// continues at its offset (a replacement by a copy).
    continues: Option<Fingerprint>,
}

/// A `.zst` file decompressed front to back; offsets are in the
/// decompressed stream.
struct ZstCursor {
    decoder: zstd::stream::read::Decoder<'static, io::BufReader<PosReader>>,
    pos: u64,
    eof: bool,
}

impl std::fmt::Debug for ZstCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstCursor")
            .field("pos", &self.pos)
            .field("eof", &self.eof)
            .finish()
    }
}

/// Reads a file from its start with positional reads: a duplicated
/// descriptor shares its offset with the original, so two readers of one
/// file must not rely on it.
struct PosReader {
    file: File,
    pos: u64,
}

impl io::Read for PosReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_at(&self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl ZstCursor {
    fn open(file: &File) -> io::Result<ZstCursor> {
        let f = PosReader {
            file: file.try_clone()?,
            pos: 0,
        };
        Ok(ZstCursor {
            decoder: zstd::stream::read::Decoder::new(f)?,
            pos: 0,
            eof: false,
        })
    }

    /// Reads decompressed bytes at `off`: forward by skipping, backward by
    /// starting over (the tailer only ever reads forward).
    fn read_at(&mut self, file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
        use std::io::Read;
        if off < self.pos {
            *self = ZstCursor::open(file)?;
        }
        let mut scratch = [0u8; 8192];
        while self.pos < off {
            let want = scratch.len().min((off - self.pos) as usize);
            let n = self.decoder.read(&mut scratch[..want])?;
            if n == 0 {
                self.eof = true;
                return Ok(0);
            }
            self.pos += n as u64;
        }
        let n = self.decoder.read(buf)?;
        self.pos += n as u64;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        Ok(n)
    }
}

/// Reads the first `len` bytes of a `.zst` file, decompressed.
fn zst_head(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut z = ZstCursor::open(file)?;
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = z.read_at(file, &mut buf[got..], got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}

fn is_zst(name: &str) -> bool {
    name.ends_with(".zst")
}

impl Tracked {
    fn open(
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
    fn open_named(
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
    fn read_src(&mut self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        match self.zst.as_deref_mut() {
            None => read_at(&self.file, buf, off),
            Some(z) => z.read_at(&self.file, buf, off),
        }
    }

    /// Computes the fingerprint once the first line is complete.
    fn update_fingerprint(&mut self) -> io::Result<()> {
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

    fn position(&self, base: &str) -> FilePosition {
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
    fn resumable_at(&mut self, offset: u64) -> bool {
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
    fn same_file(&self, pos: &FilePosition) -> bool {
        self.dev == pos.dev && self.ino == pos.ino && self.zst.is_none() && self.size >= pos.offset
    }

    /// Checks that the file still starts with the bytes fingerprinted so far
    /// and extends the fingerprint while it is shorter than [`HEAD_BYTES`].
    /// `false` means the content was replaced (truncated and rewritten).
    fn verify_head(&mut self) -> io::Result<bool> {
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
    fn reset(&mut self) {
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
    fn refresh(&mut self, now: Instant) -> io::Result<()> {
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

    fn has_partial(&self) -> bool {
        self.skipping || !self.pending.is_empty()
    }

    /// Reads to the end (or `limit` bytes) into `out`; returns whether the
    /// end was reached. Complete lines are returned; the trailing partial
    /// line is kept in `pending` whatever happens.
    fn read(&mut self, kind: Kind, max: usize, limit: u64, out: &mut Batch) -> io::Result<bool> {
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

    fn read_inner(
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
            if !self.skipping && out.data.len() - *line_start > max.saturating_add(TOO_LONG_SLACK) {
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
    fn finish_line(
        &mut self,
        kind: Kind,
        max: usize,
        out: &mut Batch,
        start: usize,
        nl: usize,
        end_off: u64,
    ) {
        self.line = self.line.saturating_add(1);
        let len = end_off - self.offset;
        if self.skipping {
            self.skipping = false;
            out.rejected.push(self.reject(kind, len));
        } else {
            let mut s = start;
            let mut e = nl;
            if self.offset == 0 && out.data[s..e].starts_with(BOM) {
                s += BOM.len();
            }
            if e > s && out.data[e - 1] == b'\r' {
                e -= 1;
            }
            if e - s > max {
                out.rejected.push(self.reject(kind, len));
            } else {
                out.lines.push(TailLine {
                    kind,
                    file: self.name.clone(),
                    line_no: self.line,
                    start: s,
                    end: e,
                });
            }
        }
        self.offset = end_off;
    }

    fn reject(&self, kind: Kind, len: u64) -> RejectedLine {
        RejectedLine {
            kind,
            file: self.name.clone(),
            line_no: self.line,
            reason: RejectReason::TooLong,
            len,
        }
    }

    /// Returns the held partial line as it is (its file is gone for good).
    fn release_partial(&mut self, kind: Kind, max: usize, out: &mut Batch) {
        if !self.has_partial() {
            return;
        }
        let start = out.data.len();
        out.data.extend_from_slice(&self.pending);
        self.pending.clear();
        let end = out.data.len();
        let end_off = self.read_pos;
        // `finish_line` strips a `\r` before a newline; a partial line has
        // none, so keep it out of reach by passing the real end.
        self.line = self.line.saturating_add(1);
        let len = end_off - self.offset;
        if self.skipping {
            self.skipping = false;
            out.rejected.push(self.reject(kind, len));
        } else {
            let mut s = start;
            if self.offset == 0 && out.data[s..end].starts_with(BOM) {
                s += BOM.len();
            }
            if end - s > max {
                out.rejected.push(self.reject(kind, len));
            } else {
                out.lines.push(TailLine {
                    kind,
                    file: self.name.clone(),
                    line_no: self.line,
                    start: s,
                    end,
                });
            }
        }
        self.offset = end_off;
    }
}

/// The files of one base log: the one under the base name, and the rotated
/// ones still being drained (oldest first).
#[derive(Debug)]
struct Base {
    kind: Kind,
    live: Option<Tracked>,
    rotated: VecDeque<Tracked>,
    /// Checkpoint positions not yet matched to files (until the first poll).
    restore: Option<Vec<FilePosition>>,
    /// Files of this log read to their end and let go (oldest first).
    finished: VecDeque<Finished>,
    stats: TailStats,
}

impl Base {
    /// Remembers a file let go of after it was read, so a restart does not
    /// read it again under another name or compressed.
    fn finish(&mut self, t: &Tracked) {
        let Some(fp) = t.fp else {
            return;
        };
        let fingerprint = hex::encode(fp);
        self.finished.retain(|f| f.fingerprint != fingerprint);
        self.finished.push_back(Finished {
            base: self.kind.base_file().to_string(),
            fingerprint,
            offset: t.offset,
            line: t.line,
        });
        while self.finished.len() > MAX_FINISHED / 3 {
            self.finished.pop_front();
        }
    }
}

/// What the tailer noticed about rotations, per base log, since it started
/// (for metrics and logs; counters per process).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TailStats {
    /// The file under the base name was replaced (renamed away or deleted).
    pub rotations: u64,
    /// A followed file shrank or its head changed (copytruncate or rewrite).
    pub truncations: u64,
    /// ... and a copy with the same head was found and drained.
    pub copies_drained: u64,
    /// ... and no copy was found: a held partial line was lost with it.
    pub truncated_partial_lost: u64,
    /// Rotated files let go of while not read to their end (too many held).
    pub dropped_unread: u64,
    /// Checkpoint positions whose file was not found at start-up.
    pub restore_not_found: u64,
    /// Rotated copies read at start-up that the checkpoint did not know
    /// (rotated while the daemon was stopped).
    pub restored_unknown: u64,
    /// New files under the base name that continued a followed file with
    /// the same first line (a replacement by a copy) instead of being read
    /// again.
    pub copies_continued: u64,
}

/// Follows the three audit logs of one directory.
///
/// # Driving it
///
/// ```no_run
/// # use mcpwatch::ingest::tail::Tailer;
/// # use std::{path::Path, time::Instant};
/// # fn detect(_: &[u8]) {} fn save(_: &mcpwatch::ingest::checkpoint::TailCheckpoint) {}
/// let saved = mcpwatch::ingest::checkpoint::load_tail(Path::new("state")).ok().flatten();
/// let mut tailer = Tailer::new(Path::new(".elevenlabs/audit"), 1 << 20, saved);
/// loop {
///     // woken by a notify event on the directory or by the poll interval
///     let batch = tailer.poll(Instant::now()).expect("poll");
///     for (line, bytes) in batch.iter() { detect(bytes) }
///     // only after detection consumed the batch:
///     save(&tailer.checkpoint());
///     # break;
/// }
/// ```
///
/// - Call [`poll`](Tailer::poll) on every wake-up, whatever the event said:
///   it stats the three names and reads every followed file to its end, so
///   coalesced, overflowed or missed `notify` events cost nothing but
///   latency. Watch the directory (not the files): the files may be renamed,
///   and the directory itself may appear later (then watch its parent, or
///   rely on the periodic poll).
/// - [`checkpoint`](Tailer::checkpoint) is the position just past everything
///   returned so far. Save it (with the detector state) only after the batch
///   has been processed; after a crash, the lines after the saved checkpoint
///   are returned again.
/// - The time passed to `poll` only decides when a rotated file's partial
///   last line is given up waiting for (`rotate_wait`) and when a drained
///   rotated file is let go; pass `Instant::now()` live, any monotonic
///   sequence in tests.
/// - The tailer never sleeps, spawns or panics on file content; a file it
///   cannot read shows up in [`Batch::errors`] and is retried next poll.
#[derive(Debug)]
pub struct Tailer {
    dir: PathBuf,
    max_line_bytes: usize,
    rotate_wait: Duration,
    read_limit: u64,
    bases: Vec<Base>,
    /// See [`TailCheckpoint::since_ms`].
    since_ms: Option<i64>,
}

impl Tailer {
    /// Follows `tool-usage.log`, `approvals.log` and `errors.log` in `dir`
    /// (which need not exist yet). With no checkpoint each existing file is
    /// read from its beginning; with one, each file resumes where it stopped,
    /// including rotated files still being drained. No I/O happens here: the
    /// checkpoint is matched to files on the first [`poll`](Tailer::poll).
    pub fn new(dir: &Path, max_line_bytes: usize, checkpoint: Option<TailCheckpoint>) -> Tailer {
        let mut bases: Vec<Base> = Kind::ALL
            .iter()
            .map(|&kind| Base {
                kind,
                live: None,
                rotated: VecDeque::new(),
                restore: None,
                finished: VecDeque::new(),
                stats: TailStats::default(),
            })
            .collect();
        let mut since_ms = None;
        if let Some(cp) = checkpoint {
            // A checkpoint (even one with no file yet) means a restart:
            // every base restores, so rotated copies are looked for.
            for b in &mut bases {
                b.restore = Some(Vec::new());
            }
            for pos in cp.files {
                if let Some(b) = bases.iter_mut().find(|b| b.kind.base_file() == pos.base) {
                    b.restore.get_or_insert_with(Vec::new).push(pos);
                }
            }
            for f in cp.finished {
                if let Some(b) = bases.iter_mut().find(|b| b.kind.base_file() == f.base) {
                    b.finished.push_back(f);
                }
            }
            since_ms = cp.since_ms;
        }
        Tailer {
            dir: dir.to_path_buf(),
            max_line_bytes,
            rotate_wait: DEFAULT_ROTATE_WAIT,
            read_limit: u64::MAX,
            bases,
            since_ms,
        }
    }

    /// Sets when tailing began in this state directory (Unix ms), unless
    /// the checkpoint already says: the daemon passes the wall clock at
    /// its first start. Rotated copies modified before it are history.
    pub fn with_since(mut self, now_ms: i64) -> Tailer {
        self.since_ms.get_or_insert(now_ms);
        self
    }

    /// Sets `rotate_wait` (SPEC §2 `rotation.rotate_wait`): how long a
    /// rotated file must be idle before its partial last line is returned as
    /// it is and the file is let go.
    pub fn with_rotate_wait(mut self, rotate_wait: Duration) -> Tailer {
        self.rotate_wait = rotate_wait;
        self
    }

    /// Caps the bytes read from one file in one poll (default: none, so a
    /// poll reads every file to its end as SPEC §3 wants). With a cap,
    /// [`Batch::caught_up`] says whether more is waiting.
    pub fn set_read_limit(&mut self, bytes: u64) {
        self.read_limit = bytes.max(1);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn rotate_wait(&self) -> Duration {
        self.rotate_wait
    }

    /// Reads every followed file to its current end and returns the new
    /// complete lines. Never fails on file content or on files vanishing;
    /// per-file I/O errors are in [`Batch::errors`].
    pub fn poll(&mut self, now: Instant) -> io::Result<Batch> {
        let mut out = Batch::default();
        self.poll_into(now, &mut out)?;
        Ok(out)
    }

    /// [`poll`](Tailer::poll) into a batch that is cleared first and whose
    /// buffers are reused: no allocation per poll in the steady state.
    pub fn poll_into(&mut self, now: Instant, out: &mut Batch) -> io::Result<()> {
        out.clear();
        for i in 0..self.bases.len() {
            self.poll_base(i, now, out);
        }
        Ok(())
    }

    /// Positions just past everything [`poll`](Tailer::poll) has returned,
    /// for every file still followed (rotated ones first, oldest first).
    pub fn checkpoint(&self) -> TailCheckpoint {
        let mut files = Vec::new();
        for b in &self.bases {
            let base = b.kind.base_file();
            files.extend(b.rotated.iter().map(|t| t.position(base)));
            files.extend(b.live.iter().map(|t| t.position(base)));
            // Positions not matched yet (no poll since `new`) are kept.
            if let Some(r) = &b.restore {
                files.extend(r.iter().cloned());
            }
        }
        TailCheckpoint {
            files,
            finished: self
                .bases
                .iter()
                .flat_map(|b| b.finished.iter().cloned())
                .collect(),
            since_ms: self.since_ms,
        }
    }

    /// Every open file, for the rotator and for health.
    ///
    /// For the rotator: match files by `dev` + `ino`, not by path (a file
    /// renamed out of the directory or deleted keeps its last name, which
    /// may be the base name). The offsets here run ahead of the last
    /// *saved* checkpoint; a file may be compressed and deleted only once
    /// the saved checkpoint has consumed it (or it is no longer in it), or a
    /// crash would restore a position in a file that is gone.
    pub fn followed_files(&self) -> Vec<FollowedFile> {
        let mut v = Vec::new();
        for b in &self.bases {
            for t in b.rotated.iter().chain(b.live.iter()) {
                v.push(FollowedFile {
                    kind: b.kind,
                    path: self.dir.join(&*t.name),
                    name: t.name.clone(),
                    dev: t.dev,
                    ino: t.ino,
                    offset: t.offset,
                    read_pos: t.read_pos,
                    size: t.size,
                    line: t.line,
                    idle_since: t.idle_since,
                    rotated: t.rotated,
                    deleted: t.deleted,
                });
            }
        }
        v
    }

    /// Rotation counters per base log, in [`Kind`] order.
    pub fn stats(&self) -> Vec<(Kind, TailStats)> {
        self.bases.iter().map(|b| (b.kind, b.stats)).collect()
    }

    /// Bytes written to followed files but not yet consumed, as of the last
    /// poll (a held partial line counts).
    pub fn lag_bytes(&self) -> u64 {
        self.bases
            .iter()
            .flat_map(|b| b.rotated.iter().chain(b.live.iter()))
            .map(|t| t.size.saturating_sub(t.offset))
            .fold(0u64, u64::saturating_add)
    }

    fn poll_base(&mut self, i: usize, now: Instant, out: &mut Batch) {
        let dir = self.dir.clone();
        let max = self.max_line_bytes;
        let limit = self.read_limit;
        let rotate_wait = self.rotate_wait;
        let b = &mut self.bases[i];
        let kind = b.kind;
        let base_name = kind.base_file();
        let path = dir.join(base_name);

        if let Some(positions) = b.restore.take() {
            restore(&dir, b, positions, self.since_ms, now, out);
        }

        let cur = match stat_file(&path) {
            Ok(md) => Some(md),
            Err(e) => {
                out.errors.push(FileError {
                    path: path.clone(),
                    error: e,
                });
                None
            }
        };

        // Is the live file still under the base name?
        let gone = match (&b.live, &cur) {
            (Some(live), Some(Some(md))) => md.dev() != live.dev || md.ino() != live.ino,
            (Some(_), Some(None)) => true,
            _ => false,
        };
        if gone && let Some(mut old) = b.live.take() {
            b.stats.rotations += 1;
            // Renamed away or deleted: drain it under its new name.
            old.rotated = true;
            old.name = locate(&dir, base_name, &old).unwrap_or(old.name);
            b.rotated.push_back(old);
        }

        // A file under the base name and nothing following it: read it from
        // 0, unless it is a rotated file moved back.
        if b.live.is_none() && matches!(cur, Some(Some(_))) {
            match open_file(&path) {
                Ok(Some((file, md))) => {
                    let back = b
                        .rotated
                        .iter()
                        .position(|t| t.dev == md.dev() && t.ino == md.ino());
                    let mut t = match back.and_then(|p| b.rotated.remove(p)) {
                        Some(mut t) => {
                            t.rotated = false;
                            t
                        }
                        None => {
                            let mut t = Tracked::open(
                                base_name.into(),
                                file,
                                &md,
                                (0, fnv1a(&[])),
                                0,
                                0,
                                now,
                            );
                            // Same first line as a file still followed: a
                            // copy put in its place, to be continued
                            // where that one ends (see the read below).
                            if t.update_fingerprint().is_ok()
                                && let Some(fp) = t.fp
                                && b.rotated.iter().any(|r| r.fp == Some(fp))
                            {
                                t.continues = Some(fp);
                            }
                            t
                        }
                    };
                    t.name = base_name.into();
                    match t.verify_head() {
                        Ok(true) => b.live = Some(t),
                        Ok(false) => {
                            // A rotated file moved back after being rewritten:
                            // treat it as new.
                            t.reset();
                            let _ = t.verify_head();
                            b.live = Some(t);
                        }
                        Err(e) => out.errors.push(FileError { path, error: e }),
                    }
                }
                Ok(None) => {}
                Err(e) => out.errors.push(FileError { path, error: e }),
            }
        }

        // Rotated files: follow renames (logrotate shifts .1 → .2).
        for t in b.rotated.iter_mut() {
            let p = dir.join(&*t.name);
            let still =
                matches!(stat_file(&p), Ok(Some(md)) if md.dev() == t.dev && md.ino() == t.ino);
            if !still && let Some(n) = locate(&dir, base_name, t) {
                t.name = n;
            }
        }

        // Truncated (copytruncate, possibly renamed afterwards): drain the
        // copy first, then read the file again from 0. The copy goes just
        // before the truncated file in reading order.
        let mut i = 0;
        while i <= b.rotated.len() {
            let is_live = i == b.rotated.len();
            let t = if is_live {
                b.live.as_mut()
            } else {
                b.rotated.get_mut(i)
            };
            let Some(t) = t else {
                break;
            };
            let truncated = match t.refresh(now).and_then(|()| t.verify_head()) {
                Ok(head_ok) => !head_ok || t.size < t.read_pos,
                Err(e) => {
                    out.errors.push(FileError {
                        path: dir.join(&*t.name),
                        error: e,
                    });
                    false
                }
            };
            if truncated {
                let copy = find_copy(&dir, base_name, b, i, now);
                b.stats.truncations += 1;
                if copy.is_some() {
                    b.stats.copies_drained += 1;
                } else {
                    let t = if is_live {
                        b.live.as_ref()
                    } else {
                        b.rotated.get(i)
                    };
                    if t.is_some_and(|t| t.read_pos > t.offset) {
                        b.stats.truncated_partial_lost += 1;
                    }
                }
                let t = if is_live {
                    b.live.as_mut()
                } else {
                    b.rotated.get_mut(i)
                };
                if let Some(t) = t {
                    t.reset();
                    let _ = t.verify_head();
                    t.idle_since = now;
                }
                if let Some(c) = copy {
                    b.rotated.insert(i, c);
                    i += 1;
                }
            }
            i += 1;
        }

        // Read: rotated files (older lines) first, then the live one. A
        // file cut short by the read limit stops the reading of this log
        // for this poll, so its lines never come after newer ones.
        let mut stopped = false;
        for t in b.rotated.iter_mut() {
            stopped = read_one(t, &dir, kind, max, limit, now, out);
            if stopped {
                break;
            }
        }
        if !stopped {
            continue_copy(b, now);
            if let Some(t) = b.live.as_mut()
                && t.continues.is_none()
            {
                read_one(t, &dir, kind, max, limit, now, out);
            }
        }

        // Give up waiting on rotated files: return a partial last line after
        // `rotate_wait`, let go of drained files once the writer moved on.
        let live_exists = b.live.is_some();
        let mut k = 0;
        while k < b.rotated.len() {
            let t = &mut b.rotated[k];
            let idle = now.saturating_duration_since(t.idle_since);
            let at_end = t.read_pos >= t.size;
            if at_end && idle >= rotate_wait {
                t.release_partial(kind, max, out);
                if live_exists || t.deleted || idle >= RELEASE_IDLE_ALONE {
                    if let Some(t) = b.rotated.remove(k) {
                        b.finish(&t);
                    }
                    continue;
                }
            }
            k += 1;
        }
        while b.rotated.len() > MAX_ROTATED_PER_BASE {
            let victim = b
                .rotated
                .iter()
                .position(|t| t.read_pos >= t.size && !t.has_partial())
                .unwrap_or(0);
            let Some(t) = b.rotated.remove(victim) else {
                break;
            };
            if t.offset >= t.size {
                b.finish(&t);
            } else {
                b.stats.dropped_unread += 1;
                tracing::warn!(
                    file = %t.name,
                    unread_bytes = t.size - t.offset,
                    "too many rotated files held; letting go of one not read to its end"
                );
            }
        }
    }
}

/// Reads one followed file into `out`; `true` when the read limit stopped
/// it before its end.
fn read_one(
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

/// The live file has the first line of a followed rotated file (a copy put
/// in its place: `sed -i`, an editor, rsync). Once that file has been read
/// to its end, the copy continues at its offset if it ends a line there
/// (SPEC §8) and the original is let go; otherwise, or when the original
/// went away, the copy is read from its beginning as a new file.
fn continue_copy(b: &mut Base, now: Instant) {
    let Some(live) = b.live.as_mut() else {
        return;
    };
    let Some(fp) = live.continues else {
        return;
    };
    let Some(i) = b.rotated.iter().position(|r| r.fp == Some(fp)) else {
        live.continues = None;
        return;
    };
    let orig = &b.rotated[i];
    if orig.read_pos < orig.size && !orig.deleted {
        // Still being written or cut short by the read limit: wait.
        return;
    }
    let (offset, line) = (orig.offset, orig.line);
    live.continues = None;
    if live.resumable_at(offset) {
        live.offset = offset;
        live.read_pos = offset;
        live.line = line;
        live.idle_since = now;
        b.stats.copies_continued += 1;
        tracing::info!(
            file = %live.name,
            offset,
            "the log was replaced by a copy of itself; going on where it stopped"
        );
        // Its lines are the copy's: nothing of it is read again.
        b.rotated.remove(i);
    }
}

/// A file found at start-up that may continue a log.
struct Candidate {
    name: String,
    md: Metadata,
    fp: Option<Fingerprint>,
}

/// Opens the candidates of one log at start-up and computes their
/// fingerprints.
fn candidates(dir: &Path, base_name: &str, out: &mut Batch) -> Vec<Candidate> {
    let mut found: Vec<(String, Metadata)> = Vec::new();
    match stat_file(&dir.join(base_name)) {
        Ok(Some(md)) => found.push((base_name.to_string(), md)),
        Ok(None) => {}
        Err(e) => out.errors.push(FileError {
            path: dir.join(base_name),
            error: e,
        }),
    }
    found.extend(rotated_candidates(dir, base_name, true));
    found
        .into_iter()
        .map(|(name, md)| {
            let fp = open_file(&dir.join(&name))
                .ok()
                .flatten()
                .and_then(|(f, _)| {
                    let head = if is_zst(&name) {
                        zst_head(&f, FINGERPRINT_BYTES)
                    } else {
                        read_head(&f, FINGERPRINT_BYTES)
                    };
                    head.ok()
                })
                .and_then(|h| fingerprint(&h));
            Candidate { name, md, fp }
        })
        .collect()
}

fn parse_fingerprint(hex_text: Option<&str>) -> Option<Fingerprint> {
    let mut fp = [0u8; 32];
    hex::decode_to_slice(hex_text?, &mut fp).ok()?;
    Some(fp)
}

/// Matches the checkpoint to the files found at start-up (SPEC §8):
///
/// - a position with a fingerprint resumes in the file with that first
///   line, whatever its name, inode or compression (the same file renamed,
///   rotated twice, replaced by a copy, or compressed by another tool);
///   one without (its first line was incomplete, or an older checkpoint)
///   resumes in the file with its device, inode and head;
/// - it resumes at its offset only if the file ends a line there;
///   otherwise the file is read from its beginning as a new one;
/// - a file read to its end before ([`Finished`]) is not read again;
/// - an unknown rotated copy is read from its beginning when it was
///   modified after tailing began in this state directory (rotated while
///   the daemon was stopped);
/// - rotated files are then read oldest first, by the ts of their first
///   line (their names' age order when that cannot be told).
fn restore(
    dir: &Path,
    b: &mut Base,
    mut positions: Vec<FilePosition>,
    since_ms: Option<i64>,
    now: Instant,
    out: &mut Batch,
) {
    let base_name = b.kind.base_file();
    let cands = candidates(dir, base_name, out);
    let mut claimed = vec![false; cands.len()];

    // The same file twice (the original and its copy, both followed when
    // the checkpoint was written): the further position wins.
    positions.sort_by_key(|p| std::cmp::Reverse(p.offset));
    let mut seen: Vec<Fingerprint> = Vec::new();
    positions.retain(|p| match parse_fingerprint(p.fingerprint.as_deref()) {
        Some(fp) if seen.contains(&fp) => false,
        Some(fp) => {
            seen.push(fp);
            true
        }
        None => true,
    });

    let mut opened: Vec<Tracked> = Vec::new();
    for pos in positions {
        let found = match parse_fingerprint(pos.fingerprint.as_deref()) {
            Some(fp) => {
                // Same first line; the same inode first, then the live
                // name, then a plain file over an archive.
                let rank = |c: &Candidate| {
                    (
                        !(c.md.dev() == pos.dev && c.md.ino() == pos.ino),
                        c.name != base_name,
                        is_zst(&c.name),
                    )
                };
                (0..cands.len())
                    .filter(|&i| !claimed[i] && cands[i].fp == Some(fp))
                    .min_by_key(|&i| rank(&cands[i]))
            }
            None => by_inode_and_head(dir, base_name, &pos, &cands, &claimed),
        };
        let Some(ci) = found else {
            b.stats.restore_not_found += 1;
            tracing::info!(
                file = %pos.name,
                offset = pos.offset,
                "checkpointed file is gone (deleted, or compressed once read); going on without it"
            );
            continue;
        };
        claimed[ci] = true;
        let c = &cands[ci];
        let Some(mut t) = open_candidate(dir, c, now, out) else {
            continue;
        };
        if t.same_file(&pos) || t.resumable_at(pos.offset) {
            t.offset = pos.offset;
            t.read_pos = pos.offset;
            t.line = pos.line;
        } else {
            tracing::warn!(
                file = %c.name,
                offset = pos.offset,
                "file does not end a line at its checkpointed offset; reading it from its beginning as a new file"
            );
        }
        opened.push(t);
    }

    // Files read to their end before: a plain one that grew since is read
    // on from where it ended; nothing else of them is read again.
    let mut still_there: Vec<bool> = vec![false; b.finished.len()];
    for (k, f) in b.finished.iter().enumerate() {
        let Some(fp) = parse_fingerprint(Some(&f.fingerprint)) else {
            continue;
        };
        for ci in 0..cands.len() {
            if claimed[ci] || cands[ci].fp != Some(fp) {
                continue;
            }
            claimed[ci] = true;
            still_there[k] = true;
            let c = &cands[ci];
            if is_zst(&c.name) || c.md.len() <= f.offset {
                continue;
            }
            if let Some(mut t) = open_candidate(dir, c, now, out)
                && t.resumable_at(f.offset)
            {
                t.offset = f.offset;
                t.read_pos = f.offset;
                t.line = f.line;
                opened.push(t);
            }
        }
    }
    // Forget finished files that are gone for good (compressed ones keep
    // their first line and so their entry).
    let mut k = 0;
    b.finished.retain(|_| {
        k += 1;
        still_there[k - 1]
    });

    // Rotated copies the checkpoint never saw: rotated while the daemon
    // was stopped, or before it ever ran (history: left to `scan`).
    for (ci, c) in cands.iter().enumerate() {
        if claimed[ci] || c.name == base_name || rotation_of(&c.name, base_name).is_none() {
            continue;
        }
        let recent = since_ms.is_some_and(|s| mtime_ms(&c.md) > s);
        if !recent {
            continue;
        }
        // A copy of a file already opened (same first line) is the same
        // lines again.
        if c.fp.is_some() && opened.iter().any(|t| t.fp == c.fp) {
            continue;
        }
        claimed[ci] = true;
        if let Some(t) = open_candidate(dir, c, now, out) {
            b.stats.restored_unknown += 1;
            tracing::info!(
                file = %c.name,
                "reading a rotated copy made while mcpwatch was stopped"
            );
            opened.push(t);
        }
    }

    let mut rotated: Vec<(Option<crate::event::Millis>, AgeRank, Tracked)> = Vec::new();
    for mut t in opened {
        if &*t.name == base_name && b.live.is_none() {
            b.live = Some(t);
            continue;
        }
        t.rotated = true;
        let ts = first_ts(&t, b.kind);
        let age = rotation_of(&t.name, base_name)
            .map(|(age, _)| age)
            .unwrap_or(AgeRank::Live);
        rotated.push((ts, age, t));
    }
    // Oldest first: by the first line's ts where all can be told, else by
    // the names' age order.
    if rotated.iter().all(|r| r.0.is_some()) {
        rotated.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    } else {
        rotated.sort_by(|a, b| a.1.cmp(&b.1));
    }
    b.rotated.extend(rotated.into_iter().map(|r| r.2));
}

/// The position of a checkpoint without fingerprint: the file with its
/// device, inode and head (possibly renamed), else one with its head alone
/// (a copy made by copytruncate, or the same file on a new device number).
fn by_inode_and_head(
    dir: &Path,
    base_name: &str,
    pos: &FilePosition,
    cands: &[Candidate],
    claimed: &[bool],
) -> Option<usize> {
    // With no head (nothing read yet) an inode number alone is too weak
    // across a restart: a deleted file's inode is soon reused, e.g. by the
    // copy of a copytruncate. Then only the same name will do.
    let usable = |i: usize| {
        let c = &cands[i];
        !claimed[i]
            && !is_zst(&c.name)
            && (pos.head_len > 0 || c.name == pos.name)
            && c.md.len() >= pos.offset
            && head_matches(&dir.join(&c.name), pos.head_len, pos.head_hash)
    };
    let by_id = (0..cands.len())
        .find(|&i| cands[i].md.dev() == pos.dev && cands[i].md.ino() == pos.ino && usable(i));
    by_id.or_else(|| {
        if pos.head_len == 0 {
            return None;
        }
        // The base name first (same file, new device number), then the
        // newest copy.
        (0..cands.len())
            .filter(|&i| usable(i))
            .max_by_key(|&i| (cands[i].name == base_name, mtime(&cands[i].md)))
    })
}

fn open_candidate(dir: &Path, c: &Candidate, now: Instant, out: &mut Batch) -> Option<Tracked> {
    let path = dir.join(&c.name);
    let (file, md) = match open_file(&path) {
        Ok(Some(f)) => f,
        Ok(None) => return None,
        Err(e) => {
            out.errors.push(FileError { path, error: e });
            return None;
        }
    };
    match Tracked::open_named(
        c.name.as_str().into(),
        file,
        &md,
        (0, fnv1a(&[])),
        0,
        0,
        now,
    ) {
        Ok(mut t) => {
            let _ = t.verify_head();
            Some(t)
        }
        Err(e) => {
            out.errors.push(FileError { path, error: e });
            None
        }
    }
}

/// The ts of a file's first line, to order rotated copies.
fn first_ts(t: &Tracked, kind: Kind) -> Option<crate::event::Millis> {
    let head = match &t.zst {
        None => read_head(&t.file, FINGERPRINT_BYTES),
        Some(_) => zst_head(&t.file, FINGERPRINT_BYTES),
    }
    .ok()?;
    let line = &head[..memchr::memchr(b'\n', &head).unwrap_or(head.len())];
    let parser = crate::ingest::parse::Parser {
        max_line_bytes: FINGERPRINT_BYTES,
        now_ms: i64::MAX / 4,
    };
    parser.parse(kind, line).ok().map(|ev| ev.ts)
}

fn mtime_ms(md: &Metadata) -> i64 {
    md.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

/// File `i` of `b` (rotated index, or the live one at `rotated.len()`)
/// shrank or its head changed: finds the copy a copytruncate left (same
/// head, at least as long as what was consumed, not followed already) and
/// opens it at the consumed position.
fn find_copy(dir: &Path, base_name: &str, b: &Base, i: usize, now: Instant) -> Option<Tracked> {
    let t = if i == b.rotated.len() {
        b.live.as_ref()
    } else {
        b.rotated.get(i)
    }?;
    let followed = |md: &Metadata| {
        b.rotated
            .iter()
            .chain(b.live.iter())
            .any(|f| f.dev == md.dev() && f.ino == md.ino())
    };
    let mut best: Option<(String, Metadata)> = None;
    if t.head_len > 0 {
        for (name, md) in rotated_candidates(dir, base_name, false) {
            if followed(&md)
                || md.len() < t.offset
                || !head_matches(&dir.join(&name), t.head_len, t.head_hash)
            {
                continue;
            }
            if best.as_ref().is_none_or(|(_, b)| mtime(&md) > mtime(b)) {
                best = Some((name, md));
            }
        }
    }
    let found = best.and_then(|(name, _)| {
        open_file(&dir.join(&name))
            .ok()
            .flatten()
            .map(|f| (name, f))
    });
    let Some((name, (file, md))) = found else {
        if t.read_pos > t.offset {
            tracing::warn!(
                file = %t.name,
                offset = t.offset,
                "file truncated and no copy with the same head found; its partial last line is lost"
            );
        }
        return None;
    };
    let mut c = Tracked::open(
        name.as_str().into(),
        file,
        &md,
        (t.head_len, t.head_hash),
        t.offset,
        t.line,
        now,
    );
    c.rotated = true;
    Some(c)
}

/// Finds the current name of a file that left the base name, by device +
/// inode, among the rotated names in the directory.
fn locate(dir: &Path, base_name: &str, t: &Tracked) -> Option<Arc<str>> {
    rotated_candidates(dir, base_name, false)
        .into_iter()
        .find(|(_, md)| md.dev() == t.dev && md.ino() == t.ino)
        .map(|(n, _)| n.into())
}

/// Regular files named `<base>.<something>` directly in `dir`, except
/// compressed ones (while running, a compressed file is never a
/// continuation to read), or with `archives` also the `.zst` archives of
/// SPEC §6's names.
fn rotated_candidates(dir: &Path, base_name: &str, archives: bool) -> Vec<(String, Metadata)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{base_name}.");
    let mut v = Vec::new();
    for entry in rd.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // `.zst` archives by SPEC §6's names, when asked for (a restart
        // looks for copies compressed while it was stopped).
        let archive = archives && is_zst(&name) && rotation_of(&name, base_name).is_some();
        if !name.starts_with(&prefix)
            || (!archive
                && [".zst", ".gz", ".xz", ".bz2", ".tmp"]
                    .iter()
                    .any(|s| name.ends_with(s)))
        {
            continue;
        }
        // DirEntry::metadata does not follow symbolic links.
        if let Ok(md) = entry.metadata()
            && md.is_file()
        {
            v.push((name, md));
        }
    }
    v
}

fn mtime(md: &Metadata) -> SystemTime {
    md.modified().unwrap_or(SystemTime::UNIX_EPOCH)
}

/// `Ok(None)` when there is no regular file at `path` (absent, a directory,
/// or the directory itself missing): the normal case for a log not written
/// yet.
fn stat_file(path: &Path) -> io::Result<Option<Metadata>> {
    match std::fs::metadata(path) {
        Ok(md) if md.is_file() => Ok(Some(md)),
        Ok(_) => Ok(None),
        Err(e) if absent(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens and fstats: the identity is that of what was opened, whatever the
/// name pointed to a moment before.
fn open_file(path: &Path) -> io::Result<Option<(File, Metadata)>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let md = file.metadata()?;
    if !md.is_file() {
        return Ok(None);
    }
    Ok(Some((file, md)))
}

fn absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(libc::ENOTDIR)
}

fn head_matches(path: &Path, head_len: u64, head_hash: u64) -> bool {
    if head_len == 0 {
        return true;
    }
    if head_len > HEAD_BYTES as u64 {
        // Not a checkpoint this tailer wrote: never a match (and never a
        // huge allocation).
        return false;
    }
    let Ok(Some((file, _))) = open_file(path) else {
        return false;
    };
    match read_head(&file, head_len as usize) {
        Ok(h) => h.len() as u64 == head_len && fnv1a(&h) == head_hash,
        Err(_) => false,
    }
}

fn read_head(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = read_at(file, &mut buf[got..], got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}

fn read_at(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, off) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// FNV-1a, 64 bit: stable across builds and Rust versions (the hash is
/// saved in checkpoints), and plenty to tell 256-byte log heads apart.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
