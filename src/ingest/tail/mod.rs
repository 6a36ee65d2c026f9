//! The tailer: follows `tool-usage.log`, `approvals.log` and `errors.log` in
//! the audit directory across rotations, restarts and crashes, and hands out
//! complete lines as bytes (SPEC §6, §8).
//!
//! It is synchronous and deterministic: no threads, no watcher, no clock of
//! its own. The daemon decides *when* to look (a `notify` event or a periodic
//! poll) and passes the time in; [`Tailer::poll`] then reads every followed
//! file to its current end. Everything that makes a tailer lose or duplicate
//! lines lives here, where a model-based test can reach it
//! (`tests/it/tail_model.rs`):
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
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::{Kind, RejectReason};
use crate::logs::{AgeRank, rotation_of};
use crate::state::{FilePosition, Finished, TailCheckpoint};

mod file;
mod identity;
mod restore;

use file::*;
pub(crate) use identity::fnv1a;
use identity::*;
pub(crate) use identity::{FINGERPRINT_BYTES, Fingerprint, HEAD_BYTES, MAX_FINISHED, fingerprint};
use restore::*;

/// Size of one read: large reads keep syscalls per line negligible on a
/// backlog; the buffer holds the batch anyway.
pub(crate) const READ_CHUNK: usize = 1 << 20;

/// Rotated files held per base log. logrotate keeps a handful; a bound keeps
/// a writer that rotates in a loop from exhausting file descriptors. When
/// full, the oldest drained file is let go first.
pub const MAX_ROTATED_PER_BASE: usize = 16;

/// Default `rotation.rotate_wait` (SPEC §2).
pub(crate) const DEFAULT_ROTATE_WAIT: Duration = Duration::from_secs(60);

/// A rotated file is let go after this much idleness even when no new file
/// appeared under the base name (SPEC §6: "or it has been idle for 24 h").
pub(crate) const RELEASE_IDLE_ALONE: Duration = Duration::from_secs(24 * 3600);

/// Read beyond the size fstat reported, to catch what was appended since.
const PROBE_BYTES: usize = 64 * 1024;

/// A batch buffer grown beyond this by a backlog is freed rather than kept
/// for the next poll.
const RETAIN_BUFFER_BYTES: usize = 64 << 20;

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
    /// Byte offset of the line's start in its file: with [`TailLine::file_id`]
    /// it names the line for good (the `Nats-Msg-Id` of SPEC §10).
    pub(crate) offset: u64,
    /// The file's identity by content: the first 8 bytes of its
    /// fingerprint (SPEC §8), the same under any name it is rotated to.
    pub(crate) file_id: u64,
    start: usize,
    end: usize,
}

/// A line that never becomes text: over `max_line_bytes` (the only reason the
/// tailer itself decides; everything else is the parser's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedLine {
    pub(crate) kind: Kind,
    pub(crate) file: Arc<str>,
    pub line_no: u64,
    pub reason: RejectReason,
    /// Length of the line in bytes, line ending included.
    pub len: u64,
}

/// A file that could not be read this time (other than it being absent,
/// which is normal). The other files were read; the next poll retries.
#[derive(Debug)]
pub struct FileError {
    pub(crate) path: PathBuf,
    pub(crate) error: io::Error,
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
    pub(crate) fn bytes(&self, line: &TailLine) -> &[u8] {
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
    pub(crate) fn clear(&mut self) {
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
    pub(crate) kind: Kind,
    /// Path under its current name (the last name seen when it was renamed
    /// out of the directory or deleted).
    pub(crate) path: PathBuf,
    pub(crate) name: Arc<str>,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// Consumed up to here (what [`Tailer::checkpoint`] saves).
    pub offset: u64,
    /// Read up to here (past `offset` by a held partial line).
    pub read_pos: u64,
    /// Size at the last poll.
    pub size: u64,
    /// Lines consumed.
    pub line: u64,
    /// Last time the file grew or was read.
    pub(crate) idle_since: Instant,
    /// No longer under its base name (renamed, copied away, or deleted).
    pub rotated: bool,
    /// Unlinked: only the open descriptor keeps it readable.
    pub(crate) deleted: bool,
}

impl FollowedFile {
    /// Everything in the file has been consumed (a held partial line counts
    /// as not consumed).
    pub fn consumed(&self) -> bool {
        self.offset >= self.size
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
        let fingerprint = t.fp.map(hex::encode);
        self.finished.retain(|f| match &fingerprint {
            Some(fp) => f.fingerprint.as_ref() != Some(fp),
            None => f.fingerprint.is_some() || (f.dev, f.ino) != (t.dev, t.ino),
        });
        self.finished.push_back(Finished {
            base: self.kind.base_file().to_string(),
            fingerprint,
            dev: t.dev,
            ino: t.ino,
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
    pub(crate) truncated_partial_lost: u64,
    /// Rotated files let go of while not read to their end (too many held).
    pub dropped_unread: u64,
    /// Checkpoint positions whose file was not found at start-up.
    pub(crate) restore_not_found: u64,
    /// Rotated copies read at start-up that the checkpoint did not know
    /// (rotated while the daemon was stopped).
    pub(crate) restored_unknown: u64,
    /// New files under the base name that continued a followed file with
    /// the same first line (a replacement by a copy) instead of being read
    /// again.
    pub(crate) copies_continued: u64,
}

/// Follows the three audit logs of one directory.
///
/// # Driving it
///
/// ```no_run
/// # use mcpwatch::ingest::tail::Tailer;
/// # use std::{path::Path, time::Instant};
/// # fn detect(_: &[u8]) {} fn save(_: &mcpwatch::state::TailCheckpoint) {}
/// let saved = mcpwatch::state::load_tail(Path::new("state")).ok().flatten();
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

    /// Takes reloaded settings: the line maximum (for lines not yet read)
    /// and `rotate_wait`.
    pub(crate) fn reconfigure(&mut self, max_line_bytes: usize, rotate_wait: Duration) {
        self.max_line_bytes = max_line_bytes;
        self.rotate_wait = rotate_wait;
    }

    /// Caps the bytes read from one file in one poll (default: none, so a
    /// poll reads every file to its end as SPEC §3 wants). With a cap,
    /// [`Batch::caught_up`] says whether more is waiting.
    pub fn set_read_limit(&mut self, bytes: u64) {
        self.read_limit = bytes.max(1);
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
        if gone
            && let Some(mut old) = b.live.take()
            && old.continues.is_none()
        {
            // (A copy still waiting to continue its original is dropped
            // unread: the original, still followed, holds the same lines,
            // and whatever replaced the copy continues it in turn.)
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
                                && b.rotated
                                    .iter()
                                    .any(|r| r.current_fingerprint() == Some(fp))
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
        // A copy waiting for its original is resolved even when the read
        // limit stopped this poll: the original must not be let go below
        // while the copy still needs its offset.
        continue_copy(b, now);
        if !stopped
            && let Some(t) = b.live.as_mut()
            && t.continues.is_none()
        {
            read_one(t, &dir, kind, max, limit, now, out);
        }

        adopt_copies(&dir, base_name, b, now);

        // Give up waiting on rotated files: return a partial last line after
        // `rotate_wait`, let go of drained files once the writer moved on.
        let live_exists = b.live.is_some();
        let mut k = 0;
        while k < b.rotated.len() {
            let t = &mut b.rotated[k];
            let idle = now.saturating_duration_since(t.idle_since);
            let at_end = t.at_end();
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
                .position(|t| t.at_end() && !t.has_partial())
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
