//! The ts-ordered merge of SPEC §3: each file is read in its own line order;
//! files are merged by the ts of their next line, ties in file order
//! (tool-usage, approvals, errors; within a kind, older generations first).
//!
//! `scan` and `report` drive [`merge_files_auto`]: [`merge_files`] on one
//! core, [`merge_files_pipelined`] (parsing shared by two threads) on more,
//! which hand out the same events and rejects in the same order. Both read
//! each file a chunk of lines at a time (`chunk`); a line-by-line merge is
//! kept as the reference the tests hold them to. Rejected
//! lines are handed to a callback as they are met (with file and line) and
//! never stop the read.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::input::{InputError, InputFile};
use super::lines::{LineReader, LogStream};
use super::parse::Parser;
use crate::event::LineRef;
use crate::event::{Event, Kind, Millis, RejectReason};

mod chunk;
mod parallel;
use chunk::{Next, Place, Sizes};
pub use parallel::merge_files_pipelined;

/// What a read saw, for summaries and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Accepted events by kind.
    pub events: BTreeMap<Kind, u64>,
    /// Rejected lines by reason.
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Events accepted but outside the `--since`/`--until` selection.
    pub filtered: u64,
}

/// Inclusive-exclusive event-time selection: `since <= ts < until`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeRange {
    pub since: Option<Millis>,
    pub until: Option<Millis>,
}

impl TimeRange {
    pub(crate) fn contains(&self, ts: Millis) -> bool {
        self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts < u)
    }
}

/// A rejected line, as reported to the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected<'a> {
    pub file: &'a Arc<str>,
    pub line: u64,
    pub reason: RejectReason,
}

/// The lines of one file of a merge. The merge needs every file's first
/// event at once, but reads most files only later (months of archives are
/// read one day after the other), so a file is set aside once its first
/// event is known ([`park`](Self::park)): only its descriptor is kept, not
/// the read buffer (256 KiB) and zstd's decoder and window (up to a few
/// MiB), and it resumes where it stopped when the merge comes back to it.
struct FileLines {
    state: LinesState,
    /// A regular file (one that can be set aside and resumed).
    regular: bool,
    zst: bool,
    max_line_bytes: usize,
    counter: Option<Arc<AtomicU64>>,
}

type Reader = LineReader<LogStream>;

enum LinesState {
    Open(Reader),
    /// Set aside: the descriptor, and the offset and line number to resume
    /// at.
    Parked(File, u64, u64),
    /// Read to its end (or failed): nothing held.
    Done,
}

impl FileLines {
    fn open(
        f: &InputFile,
        max_line_bytes: usize,
        counter: Option<Arc<AtomicU64>>,
    ) -> Result<FileLines, InputError> {
        let file = File::open(&f.path).map_err(|e| io_error(f, e))?;
        // A pipe (say) cannot be rewound: it is read through, never parked.
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        Ok(FileLines {
            state: LinesState::Parked(file, 0, 0),
            regular,
            zst: f.zst,
            max_line_bytes,
            counter,
        })
    }

    /// The reader, resumed first if set aside; `None` once read to the end.
    fn reader(&mut self) -> std::io::Result<Option<&mut Reader>> {
        if let LinesState::Parked(..) = self.state
            && let LinesState::Parked(file, offset, line) =
                std::mem::replace(&mut self.state, LinesState::Done)
        {
            let counter = self.counter.clone();
            let stream = if self.regular {
                LogStream::resume(file, self.zst, offset, counter)?
            } else {
                // Never set aside: this is its first read.
                LogStream::new(file, self.zst, counter)?
            };
            let reader = LineReader::new(stream, self.max_line_bytes);
            self.state = LinesState::Open(reader.resume_at(offset, line));
        }
        Ok(match &mut self.state {
            LinesState::Open(r) => Some(r),
            _ => None,
        })
    }

    /// Sets the file aside after the lines read so far.
    fn park(&mut self) {
        if self.regular
            && let LinesState::Open(_) = self.state
            && let LinesState::Open(r) = std::mem::replace(&mut self.state, LinesState::Done)
        {
            let (offset, line, unread) = (r.offset(), r.line_no(), r.buffered());
            self.state = LinesState::Parked(r.into_inner().into_file(unread), offset, line);
        }
    }

    /// Drops everything: the file is read to its end.
    fn finish(&mut self) {
        self.state = LinesState::Done;
    }
}

fn io_error(f: &InputFile, e: std::io::Error) -> InputError {
    InputError::Io(f.path.display().to_string(), e)
}

/// What a merge reads: the files (in processing order), how their lines
/// parse, the events it hands out (those inside `range`), and, when given,
/// a counter of the file bytes read (for a progress bar).
#[derive(Clone)]
pub struct Reading<'a> {
    pub files: &'a [InputFile],
    pub parser: &'a Parser,
    pub range: TimeRange,
    pub bytes_read: Option<Arc<AtomicU64>>,
}

impl<'a> Reading<'a> {
    /// Every event of `files`, no bytes counted.
    pub fn all(files: &'a [InputFile], parser: &'a Parser) -> Reading<'a> {
        Reading {
            files,
            parser,
            range: TimeRange::default(),
            bytes_read: None,
        }
    }
}

/// A merge: [`merge_files`], [`merge_files_pipelined`] or
/// [`merge_files_auto`].
pub type Merge = fn(
    Reading<'_>,
    &mut dyn FnMut(Rejected<'_>),
    &mut dyn FnMut(&Event, LineRef<'_>),
) -> Result<ReadStats, InputError>;

/// Reads the files merged by ts and calls `on_event` for each accepted
/// event inside the range, in processing order, on the calling thread.
pub fn merge_files(
    read: Reading<'_>,
    on_reject: &mut dyn FnMut(Rejected<'_>),
    on_event: &mut dyn FnMut(&Event, LineRef<'_>),
) -> Result<ReadStats, InputError> {
    let sizes = Sizes::for_files(read.files.len());
    merge_chunked(read, sizes, on_reject, on_event)
}

/// [`merge_files`] with chunks of the given sizes (tests make them tiny).
fn merge_chunked(
    read: Reading<'_>,
    sizes: Sizes,
    on_reject: &mut dyn FnMut(Rejected<'_>),
    on_event: &mut dyn FnMut(&Event, LineRef<'_>),
) -> Result<ReadStats, InputError> {
    let files = read.files;
    let n = files.len();
    let mut stats = ReadStats::default();
    let mut chunked = Chunked {
        files,
        lines: read.open_all()?,
        places: (0..n).map(|_| Place::default()).collect(),
        parser: read.parser,
        sizes,
        stats: &mut stats,
        on_reject,
        on_event,
    };
    let filtered = merge_heads(&mut chunked, n, read.range)?;
    let events: Vec<u64> = chunked.places.iter().map(|p| p.events).collect();
    stats.tally(files, filtered, events);
    Ok(stats)
}

/// [`merge_files`]'s sources: each file's current chunk, framed and parsed
/// on the calling thread when the merge reaches its end.
struct Chunked<'a, 'c> {
    files: &'a [InputFile],
    lines: Vec<FileLines>,
    places: Vec<Place>,
    parser: &'a Parser,
    sizes: Sizes,
    stats: &'a mut ReadStats,
    on_reject: &'a mut dyn FnMut(Rejected<'_>),
    on_event: &'a mut (dyn FnMut(&Event, LineRef<'_>) + 'c),
}

impl Heads for Chunked<'_, '_> {
    fn advance(&mut self, i: usize) -> Result<Advance, InputError> {
        loop {
            let place = &mut self.places[i];
            match place.next(&self.files[i], self.stats, self.on_reject)? {
                Next::Head => return Ok(Advance::Head),
                Next::Eof => return Ok(Advance::Done),
                Next::Chunk => {}
            }
            let first = place.chunk.is_none();
            let mut chunk = place.chunk.take().unwrap_or_default();
            let lines = &mut self.lines[i];
            chunk.fill(lines, self.sizes.lines, self.sizes.bytes);
            chunk.parse(self.parser, self.files[i].kind);
            if first {
                // Its first events are known: set it aside until its turn.
                lines.park();
            }
            place.start(chunk);
        }
    }

    fn ts(&self, i: usize) -> Millis {
        self.places[i].ts()
    }

    fn emit(&mut self, i: usize) {
        self.places[i].emit(&self.files[i], self.on_event);
    }
}

impl ReadStats {
    /// Adds a file's accepted events (once per file: a map entry per line
    /// showed in profiles).
    fn count_events(&mut self, kind: Kind, n: u64) {
        if n > 0 {
            *self.events.entry(kind).or_default() += n;
        }
    }

    /// Adds what a merge counted: the events outside its range, and each
    /// file's accepted events.
    fn tally(&mut self, files: &[InputFile], filtered: u64, events: Vec<u64>) {
        self.filtered = filtered;
        for (f, n) in files.iter().zip(events) {
            self.count_events(f.kind, n);
        }
    }
}

impl Reading<'_> {
    /// Opens every file (counting the bytes read into `bytes_read`, when
    /// given), before anything is read.
    fn open_all(&self) -> Result<Vec<FileLines>, InputError> {
        let max = self.parser.max_line_bytes;
        (self.files.iter())
            .map(|f| FileLines::open(f, max, self.bytes_read.clone()))
            .collect()
    }
}

/// What a source has after [`Heads::advance`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Advance {
    /// Its next accepted event.
    Head,
    /// Nothing more, ever (a file read to its end).
    Done,
    /// Nothing yet, but more may come (a live log read to its current
    /// end): its next ts is unknown, so the merge must stop here and go on
    /// once the source has more.
    Wait,
}

/// The sources of a merge as the ts merge sees them: each holds its next
/// accepted event (its head) until it is done. Files and archives (`scan`,
/// `report`) and the tailer's logs (`run`) are all merged through this.
pub(crate) trait Heads {
    /// Moves source `i` on to its next accepted event, reporting the lines
    /// rejected on the way; what it has now.
    fn advance(&mut self, i: usize) -> Result<Advance, InputError>;
    /// The ts of source `i`'s head.
    fn ts(&self, i: usize) -> Millis;
    /// Hands out source `i`'s head.
    fn emit(&mut self, i: usize);
}

/// The merge of SPEC §3 over `n` sources: heads by (ts, source index),
/// each source in its own order. Heads outside `range` are counted, not
/// handed out; returns that count. A source that must [`Advance::Wait`]
/// stops the merge there (every head not handed out stays its source's).
pub(crate) fn merge_heads(
    h: &mut impl Heads,
    n: usize,
    range: TimeRange,
) -> Result<u64, InputError> {
    let mut filtered = 0;
    let mut heap = BinaryHeap::with_capacity(n);
    for i in 0..n {
        match h.advance(i)? {
            Advance::Head => heap.push(Reverse((h.ts(i), i))),
            Advance::Done => {}
            Advance::Wait => return Ok(filtered),
        }
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        loop {
            if range.contains(h.ts(i)) {
                h.emit(i);
            } else {
                filtered += 1;
            }
            match h.advance(i)? {
                Advance::Head => {}
                Advance::Done => break,
                Advance::Wait => return Ok(filtered),
            }
            // While this file's next event still goes before every other
            // file's (ties in file order), take it without the heap: what
            // a push and a pop would give, for one comparison.
            let next = (h.ts(i), i);
            if heap.peek().is_some_and(|Reverse(other)| *other < next) {
                heap.push(Reverse(next));
                break;
            }
        }
    }
    Ok(filtered)
}

/// [`merge_files_pipelined`] when there is a core for its helper thread,
/// else [`merge_files`]: the same callbacks see the same events and rejects
/// in the same order either way (`scan` and `report` read through this).
pub fn merge_files_auto(
    read: Reading<'_>,
    on_reject: &mut dyn FnMut(Rejected<'_>),
    on_event: &mut dyn FnMut(&Event, LineRef<'_>),
) -> Result<ReadStats, InputError> {
    let merge: Merge = if std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
        merge_files_pipelined
    } else {
        merge_files
    };
    merge(read, on_reject, on_event)
}

/// The line-by-line merge: each file's next event parsed when the merge
/// needs it. The simplest merge, kept as the reference the chunked merges
/// are tested against.
#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests;
