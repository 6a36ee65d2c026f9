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
use crate::detect::LineRef;
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
    pub fn contains(&self, ts: Millis) -> bool {
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
    fn advance(&mut self, i: usize) -> Result<bool, InputError> {
        loop {
            let place = &mut self.places[i];
            match place.next(&self.files[i], self.stats, self.on_reject)? {
                Next::Head => return Ok(true),
                Next::Eof => return Ok(false),
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

/// The sources of a merge as the ts merge sees them: each holds its next
/// accepted event (its head) until it is done.
trait Heads {
    /// Moves source `i` on to its next accepted event, reporting the lines
    /// rejected on the way; whether it has one.
    fn advance(&mut self, i: usize) -> Result<bool, InputError>;
    /// The ts of source `i`'s head.
    fn ts(&self, i: usize) -> Millis;
    /// Hands out source `i`'s head.
    fn emit(&mut self, i: usize);
}

/// The merge of SPEC §3 over `n` sources: heads by (ts, source index),
/// each source in its own order. Heads outside `range` are counted, not
/// handed out; returns that count.
fn merge_heads(h: &mut impl Heads, n: usize, range: TimeRange) -> Result<u64, InputError> {
    let mut filtered = 0;
    let mut heap = BinaryHeap::with_capacity(n);
    for i in 0..n {
        if h.advance(i)? {
            heap.push(Reverse((h.ts(i), i)));
        }
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        loop {
            if range.contains(h.ts(i)) {
                h.emit(i);
            } else {
                filtered += 1;
            }
            if !h.advance(i)? {
                break;
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
mod reference {
    use super::*;

    /// [`merge_files`](super::merge_files), a line at a time.
    pub(super) fn merge_lines(
        read: Reading<'_>,
        on_reject: &mut dyn FnMut(Rejected<'_>),
        on_event: &mut dyn FnMut(&Event, LineRef<'_>),
    ) -> Result<ReadStats, InputError> {
        let (files, parser) = (read.files, read.parser);
        let mut stats = ReadStats::default();
        let mut sources = Vec::with_capacity(files.len());
        for (f, lines) in files.iter().zip(read.open_all()?) {
            sources.push(Source {
                file: f.clone(),
                lines,
                started: false,
                head: Event::default(),
                raw: Vec::new(),
                line: 0,
                has_head: false,
                events: 0,
            });
        }
        let mut direct = Direct {
            sources: &mut sources,
            parser,
            stats: &mut stats,
            on_reject,
            on_event,
        };
        let filtered = merge_heads(&mut direct, files.len(), read.range)?;
        stats.filtered = filtered;
        for s in &sources {
            stats.count_events(s.file.kind, s.events);
        }
        Ok(stats)
    }

    struct Source {
        file: InputFile,
        lines: FileLines,
        /// The first advance is done: the file was set aside after it.
        started: bool,
        /// The next event of this file, when there is one (`has_head`), with
        /// its raw line and number. Kept in place between lines: an event is
        /// a few hundred bytes, and moving it in and out of an `Option` per
        /// line showed in profiles.
        head: Event,
        raw: Vec<u8>,
        line: u64,
        has_head: bool,
        /// Events accepted from this file (added to `ReadStats` at the end:
        /// a map entry per line showed in profiles).
        events: u64,
    }

    impl Source {
        /// Reads ahead to the next accepted event, reporting rejects.
        fn advance(
            &mut self,
            parser: &Parser,
            stats: &mut ReadStats,
            on_reject: &mut dyn FnMut(Rejected<'_>),
        ) -> Result<(), InputError> {
            self.has_head = false;
            loop {
                let reader = self.lines.reader().map_err(|e| io_error(&self.file, e))?;
                let Some(reader) = reader else {
                    return Ok(());
                };
                let next = reader.next_line().map_err(|e| io_error(&self.file, e))?;
                let Some((line_no, res)) = next else {
                    self.lines.finish();
                    return Ok(());
                };
                let parsed = res.and_then(|bytes| {
                    parser.parse(self.file.kind, bytes).inspect(|_| {
                        // The previous line's buffer: no allocation per line.
                        self.raw.clear();
                        self.raw.extend_from_slice(bytes);
                    })
                });
                match parsed {
                    Ok(ev) => {
                        self.events += 1;
                        self.head = ev;
                        self.line = line_no;
                        self.has_head = true;
                        return Ok(());
                    }
                    Err(reason) => {
                        *stats.rejected.entry(reason).or_default() += 1;
                        on_reject(Rejected {
                            file: &self.file.name,
                            line: line_no,
                            reason,
                        });
                    }
                }
            }
        }
    }

    /// [`merge_lines`]'s sources.
    struct Direct<'a, 'c> {
        sources: &'a mut [Source],
        parser: &'a Parser,
        stats: &'a mut ReadStats,
        on_reject: &'a mut dyn FnMut(Rejected<'_>),
        on_event: &'a mut (dyn FnMut(&Event, LineRef<'_>) + 'c),
    }

    impl Heads for Direct<'_, '_> {
        fn advance(&mut self, i: usize) -> Result<bool, InputError> {
            let s = &mut self.sources[i];
            s.advance(self.parser, self.stats, self.on_reject)?;
            if !s.started {
                // Its first event is known: set it aside until its turn.
                s.started = true;
                s.lines.park();
            }
            Ok(s.has_head)
        }

        fn ts(&self, i: usize) -> Millis {
            self.sources[i].head.ts
        }

        fn emit(&mut self, i: usize) {
            let s = &self.sources[i];
            (self.on_event)(
                &s.head,
                LineRef {
                    file: &s.file.name,
                    line: s.line,
                    raw: &s.raw,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::input::discover;

    #[test]
    fn files_merge_by_ts_with_ties_in_file_order() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("errors.log"),
            "{\"ts\":\"2026-11-23T10:00:00Z\",\"server\":\"e1\"}\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("tool-usage.log"),
            "{\"ts\":\"2026-11-23T10:00:01Z\",\"tool\":\"t2\"}\n{\"ts\":\"2026-11-23T10:00:00Z\",\"tool\":\"t1\"}\nnot json\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("approvals.log"),
            "{\"ts\":\"2026-11-23T10:00:00Z\",\"tool\":\"a1\"}\n",
        )
        .unwrap();
        let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
        let parser = test_parser();
        let mut seen = Vec::new();
        let mut rejects = Vec::new();
        let stats = merge_files(
            Reading::all(&files, &parser),
            &mut |r| rejects.push((r.file.to_string(), r.line, r.reason)),
            &mut |ev, l| {
                let name = ev
                    .tool_name
                    .as_deref()
                    .or(ev.server_name.as_deref())
                    .unwrap_or("?")
                    .to_string();
                seen.push((name, l.line));
            },
        )
        .unwrap();
        // tool-usage's next line is 10:00:01 first, so approvals (10:00:00)
        // and errors (10:00:00) go before it; its own 10:00:00 line follows
        // it, in file order.
        let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a1", "e1", "t2", "t1"]);
        assert_eq!(
            rejects,
            [("tool-usage.log".to_string(), 3, RejectReason::NotJson)]
        );
        assert_eq!(stats.events.values().sum::<u64>(), 4);
    }

    /// Lines up to 1 MiB, no event in the future.
    fn test_parser() -> Parser {
        Parser {
            max_line_bytes: 1 << 20,
            now_ms: i64::MAX / 2,
        }
    }

    /// Every event of `files` with its line reference, as `merge` hands
    /// them out, plus the rejects (each with the number of events handed
    /// out before it) and stats.
    type Seen = (
        Vec<(Event, String, u64, Vec<u8>)>,
        Vec<(String, u64, usize)>,
        ReadStats,
    );

    fn read_all(
        read: Reading<'_>,
        merge: impl FnOnce(
            Reading<'_>,
            &mut dyn FnMut(Rejected<'_>),
            &mut dyn FnMut(&Event, LineRef<'_>),
        ) -> Result<ReadStats, InputError>,
    ) -> Seen {
        let (mut seen, mut rejects) = (Vec::new(), Vec::new());
        // Events handed out so far, so each reject records where it came.
        let handed = std::cell::Cell::new(0);
        let stats = merge(
            read,
            &mut |r| rejects.push((r.file.to_string(), r.line, handed.get())),
            &mut |ev, l| {
                handed.set(handed.get() + 1);
                seen.push((ev.clone(), l.file.to_string(), l.line, l.raw.to_vec()))
            },
        )
        .unwrap();
        (seen, rejects, stats)
    }

    /// Every merge, the line-by-line reference first.
    const MERGES: [(&str, Merge); 3] = [
        ("reference", reference::merge_lines),
        ("chunked", merge_files),
        ("pipelined", merge_files_pipelined),
    ];

    /// What each merge of [`MERGES`] hands out, in that order.
    fn read_each(read: Reading<'_>) -> Vec<(&'static str, Seen)> {
        (MERGES.iter())
            .map(|&(name, merge)| (name, read_all(read.clone(), merge)))
            .collect()
    }

    #[test]
    fn every_merge_hands_out_what_the_line_by_line_merge_does() {
        // Three files, several batches' worth of events, rejects, ties and
        // a time range: the same events, lines, rejects and stats.
        let d = tempfile::tempdir().unwrap();
        for (name, every) in [
            ("tool-usage.log", 1),
            ("approvals.log", 3),
            ("errors.log", 7),
        ] {
            let mut text = String::new();
            for i in 0..3000u64 {
                if i % 97 == 5 {
                    text.push_str("not json\n");
                    continue;
                }
                let s = i * every % 3600;
                text.push_str(&format!(
                    "{{\"ts\":\"2026-11-23T{:02}:{:02}:{:02}Z\",\"request_id\":\"r-{i}\",\"tool\":\"t{}\",\"user\":\"u-{}\"}}\n",
                    s / 3600 + 10,
                    s / 60 % 60,
                    s % 60,
                    i % 13,
                    i % 5
                ));
            }
            std::fs::write(d.path().join(name), text).unwrap();
        }
        let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
        assert_eq!(files.len(), 3);
        for range in [
            TimeRange::default(),
            TimeRange {
                since: Some(1_795_428_000_000 + 600_000),
                until: Some(1_795_428_000_000 + 1_800_000),
            },
        ] {
            let all = read_each(Reading {
                range,
                ..Reading::all(&files, &test_parser())
            });
            let reference = &all[0].1;
            assert!(reference.0.len() > 2 * 1024, "{}", reference.0.len());
            assert!(!reference.1.is_empty());
            for (name, seen) in &all[1..] {
                assert_eq!(reference.0.len(), seen.0.len(), "{name}");
                for (a, b) in reference.0.iter().zip(&seen.0) {
                    assert_eq!(
                        (&a.0.ts, &a.0.request_id, &a.1, a.2, &a.3),
                        (&b.0.ts, &b.0.request_id, &b.1, b.2, &b.3),
                        "{name}"
                    );
                }
                assert_eq!(reference.1, seen.1, "{name}");
                assert_eq!(reference.2, seen.2, "{name}");
            }
        }
    }

    #[test]
    fn every_merge_hands_out_long_lines_as_the_line_by_line_merge_does() {
        // ~20 KB lines fill a batch by bytes long before 1,024 events.
        let d = tempfile::tempdir().unwrap();
        let pad = "x".repeat(20_000);
        let mut text = String::new();
        for i in 0..400 {
            text.push_str(&format!(
                "{{\"ts\":\"2026-11-23T10:{:02}:{:02}Z\",\"tool\":\"t{i}\",\"pad\":\"{pad}\"}}\n",
                i / 60,
                i % 60
            ));
        }
        std::fs::write(d.path().join("tool-usage.log"), text).unwrap();
        let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
        let all = read_each(Reading::all(&files, &test_parser()));
        let reference = &all[0].1;
        assert_eq!(reference.0.len(), 400);
        let chunk = Sizes::for_files(1).bytes;
        assert!(400 * 20_000 > 4 * chunk, "spans several chunks");
        let lines = |seen: &Seen| -> Vec<(String, u64, Vec<u8>)> {
            seen.0
                .iter()
                .map(|e| (e.1.clone(), e.2, e.3.clone()))
                .collect()
        };
        for (name, seen) in &all[1..] {
            assert_eq!(lines(reference), lines(seen), "{name}");
            assert_eq!(reference.2, seen.2, "{name}");
        }
    }

    /// `n` numbered lines of `kind`'s log from second `start`, every
    /// `step` seconds (overlapping other files'), a reject every 11th.
    fn log_text(n: u64, start: u64, step: u64, tag: &str) -> String {
        let mut text = String::new();
        for i in 0..n {
            if i % 11 == 4 {
                text.push_str("{\"ts\":\"not a time\"}\n");
                continue;
            }
            let s = start + i * step;
            text.push_str(&format!(
                "{{\"ts\":\"2026-11-23T{:02}:{:02}:{:02}Z\",\"request_id\":\"{tag}-{i}\",\"tool\":\"t\"}}\n",
                s / 3600 % 24,
                s / 60 % 60,
                s % 60,
            ));
        }
        text
    }

    #[test]
    fn every_merge_of_many_files_hands_out_what_the_line_by_line_merge_does() {
        // Sixty generations with overlapping times (every third a zstd
        // archive), plus the other two logs: small chunks, many files in
        // flight at once, each set aside after its first chunk and resumed.
        let d = tempfile::tempdir().unwrap();
        for g in 1..=60u64 {
            let text = log_text(90, 3600 + g * 30, 7, &format!("g{g}"));
            if g % 3 == 0 {
                let z = zstd::encode_all(text.as_bytes(), 3).unwrap();
                std::fs::write(d.path().join(format!("tool-usage.log.{g}.zst")), z).unwrap();
            } else {
                std::fs::write(d.path().join(format!("tool-usage.log.{g}")), text).unwrap();
            }
        }
        std::fs::write(
            d.path().join("tool-usage.log"),
            log_text(500, 3600, 3, "live"),
        )
        .unwrap();
        std::fs::write(d.path().join("approvals.log"), log_text(300, 3601, 5, "a")).unwrap();
        std::fs::write(d.path().join("errors.log"), log_text(40, 3700, 60, "e")).unwrap();
        let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
        assert_eq!(files.len(), 63);
        assert!(
            Sizes::for_files(63).lines < 90,
            "chunks smaller than a file"
        );
        let all = read_each(Reading::all(&files, &test_parser()));
        let ids = |seen: &Seen| -> Vec<(Option<String>, String, u64)> {
            (seen.0.iter())
                .map(|e| {
                    (
                        e.0.request_id.as_deref().map(str::to_string),
                        e.1.clone(),
                        e.2,
                    )
                })
                .collect()
        };
        let reference = &all[0].1;
        assert_eq!(reference.0.len(), 60 * 82 + 454 + 273 + 36);
        for (name, seen) in &all[1..] {
            assert_eq!(ids(reference), ids(seen), "{name}");
            assert_eq!(reference.1, seen.1, "{name}");
            assert_eq!(reference.2, seen.2, "{name}");
        }
    }

    #[test]
    fn a_read_error_stops_every_merge_where_it_stops_the_line_by_line_merge() {
        // A zstd archive cut short: its lines up to the cut are handed
        // out, then the read fails, with the same error either way.
        let d = tempfile::tempdir().unwrap();
        let text = log_text(5000, 0, 1, "z");
        let packed = zstd::encode_all(text.as_bytes(), 3).unwrap();
        let cut = &packed[..packed.len() * 2 / 3];
        std::fs::write(d.path().join("tool-usage.log.1.zst"), cut).unwrap();
        std::fs::write(d.path().join("approvals.log"), log_text(50, 0, 60, "a")).unwrap();
        let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
        let parser = test_parser();
        let run = |merge: Merge| {
            let (mut seen, mut rejects) = (Vec::new(), 0);
            let res = merge(
                Reading::all(&files, &parser),
                &mut |_| rejects += 1,
                &mut |ev, l| seen.push((ev.request_id.clone(), l.line)),
            );
            let err = res.expect_err("the archive is cut short").to_string();
            (seen, rejects, err)
        };
        let reference = run(MERGES[0].1);
        assert!(
            reference.0.len() > 1000,
            "{} events before the cut",
            reference.0.len()
        );
        assert!(
            reference.2.contains("tool-usage.log.1.zst"),
            "{}",
            reference.2
        );
        for (name, merge) in &MERGES[1..] {
            assert_eq!(reference, run(*merge), "{name}");
        }
    }

    #[test]
    fn lines_in_flight_stay_bounded_whatever_the_number_of_files() {
        for n in [1, 2, 3, 8, 63, 256, 1000] {
            let s = Sizes::for_files(n);
            let in_flight = n * s.lines * (s.ahead + 1);
            assert!(s.ahead >= 2 && s.lines >= 16, "{n}: {s:?}");
            assert!(
                in_flight <= 12_288 || s.lines == 16,
                "{n} files: {in_flight} lines"
            );
            assert!(n * s.bytes * (s.ahead + 1) <= 12 << 20 || s.bytes == 64 << 10);
        }
    }

    #[test]
    fn bytes_read_count_file_bytes_once_whichever_merge() {
        // The progress bar's total is the files' sizes on disk: the count
        // is of bytes before decompression, and a file set aside and
        // resumed is not counted twice.
        let d = tempfile::tempdir().unwrap();
        let text = log_text(20_000, 0, 1, "z");
        let z = zstd::encode_all(text.as_bytes(), 3).unwrap();
        std::fs::write(d.path().join("tool-usage.log.1.zst"), &z).unwrap();
        std::fs::write(d.path().join("tool-usage.log"), &text).unwrap();
        std::fs::write(d.path().join("errors.log"), log_text(3000, 5, 9, "e")).unwrap();
        let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
        let on_disk: u64 = (files.iter())
            .map(|f| std::fs::metadata(&f.path).unwrap().len())
            .sum();
        let parser = test_parser();
        for (name, merge) in MERGES {
            let counter = Arc::new(AtomicU64::new(0));
            let read = Reading {
                bytes_read: Some(counter.clone()),
                ..Reading::all(&files, &parser)
            };
            merge(read, &mut |_| {}, &mut |_, _| {}).unwrap();
            let read = counter.load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(read, on_disk, "{name}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Tiny chunks, cut by lines or bytes, one to three ahead, up to
        /// five files of events, bad, empty and too-long lines: both
        /// chunked merges hand out what the line-by-line merge does.
        #[test]
        fn the_merges_in_tiny_chunks_hand_out_what_the_line_by_line_merge_does(
            logs in proptest::collection::vec(
                proptest::collection::vec((0u8..8, 0u32..40), 0..50), 1..=5),
            lines in 1usize..5,
            bytes in 1usize..400,
            ahead in 1usize..4,
        ) {
            let names = ["tool-usage.log", "approvals.log", "errors.log", "tool-usage.log.1", "errors.log.1"];
            let d = tempfile::tempdir().unwrap();
            for (log, name) in logs.iter().zip(names) {
                let mut text = String::new();
                for (i, &(what, s)) in log.iter().enumerate() {
                    match what {
                        0 => text.push_str("not json"),
                        1 => text.push_str(&format!("{{\"ts\":\"2026-11-23T10:00:00Z\",\"pad\":\"{}\"}}", "x".repeat(300))),
                        2 => {}
                        _ => text.push_str(&format!("{{\"ts\":\"2026-11-23T10:00:{s:02}Z\",\"request_id\":\"{name}-{i}\"}}")),
                    }
                    text.push('\n');
                }
                std::fs::write(d.path().join(name), text).unwrap();
            }
            let files = discover(&[d.path().to_path_buf()], d.path()).unwrap();
            let parser = Parser { max_line_bytes: 200, now_ms: i64::MAX / 2 };
            let range = TimeRange { since: Some(1_795_428_000_000 + 5_000), until: None };
            let read = Reading { range, ..Reading::all(&files, &parser) };
            let reference = read_all(read.clone(), reference::merge_lines);
            let sizes = Sizes { lines, bytes, ahead };
            let chunked = read_all(read.clone(), |read, rej, ev| merge_chunked(read, sizes, rej, ev));
            let piped = read_all(read, |read, rej, ev| parallel::merge_in_chunks(read, sizes, rej, ev));
            type Line = (i64, Option<String>, String, u64, Vec<u8>);
            let lines_of = |seen: &Seen| -> Vec<Line> {
                (seen.0.iter())
                    .map(|e| (e.0.ts, e.0.request_id.as_deref().map(str::to_string), e.1.clone(), e.2, e.3.clone()))
                    .collect()
            };
            for seen in [&chunked, &piped] {
                proptest::prop_assert_eq!(lines_of(&reference), lines_of(seen));
                proptest::prop_assert_eq!(&reference.1, &seen.1);
                proptest::prop_assert_eq!(&reference.2, &seen.2);
            }
        }
    }
}
