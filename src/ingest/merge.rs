//! The ts-ordered merge of SPEC §3: each file is read in its own line order;
//! files are merged by the ts of their next line, ties in file order
//! (tool-usage, approvals, errors; within a kind, older generations first).
//!
//! `scan` and `report` drive [`merge_files`]; rejected lines are handed to a
//! callback as they are met (with file and line) and never stop the read.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use super::input::{InputError, InputFile};
use super::lines::{LineReader, open_log};
use super::parse::Parser;
use crate::detect::LineRef;
use crate::event::{Event, Kind, Millis, RejectReason};

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

/// Counts bytes read from the underlying file (before decompression), for
/// progress bars.
struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct Source {
    file: InputFile,
    reader: LineReader<Box<dyn Read + Send>>,
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
            let next = self
                .reader
                .next_line()
                .map_err(|e| InputError::Io(self.file.path.display().to_string(), e))?;
            let Some((line_no, res)) = next else {
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

/// Reads `files` merged by ts and calls `on_event` for each accepted event
/// inside `range`, in processing order. `bytes_read`, when given, counts
/// file bytes read (for a progress bar).
pub fn merge_files(
    files: &[InputFile],
    parser: &Parser,
    range: TimeRange,
    bytes_read: Option<Arc<AtomicU64>>,
    on_reject: &mut dyn FnMut(Rejected<'_>),
    on_event: &mut dyn FnMut(&Event, LineRef<'_>),
) -> Result<ReadStats, InputError> {
    merge_with(
        files,
        parser,
        range,
        bytes_read,
        on_reject,
        &mut |ev, raw, file, line| on_event(ev, LineRef { file, line, raw }),
    )
}

/// What [`merge_with`] hands each event to: the event and its raw line
/// (the callee's to take: the merge needs neither once handed out), the
/// file's name and the line number.
type TakeEvent<'a> = dyn FnMut(&mut Event, &mut Vec<u8>, &Arc<str>, u64) + 'a;

/// [`merge_files`], handing out each event and its raw line mutably.
fn merge_with(
    files: &[InputFile],
    parser: &Parser,
    range: TimeRange,
    bytes_read: Option<Arc<AtomicU64>>,
    on_reject: &mut dyn FnMut(Rejected<'_>),
    on_event: &mut TakeEvent<'_>,
) -> Result<ReadStats, InputError> {
    let mut stats = ReadStats::default();
    let mut sources = Vec::with_capacity(files.len());
    for f in files {
        let raw = open_log(&f.path).map_err(|e| InputError::Io(f.path.display().to_string(), e))?;
        let raw: Box<dyn Read + Send> = match &bytes_read {
            Some(c) => Box::new(Counting {
                inner: raw,
                counter: c.clone(),
            }),
            None => raw,
        };
        sources.push(Source {
            file: f.clone(),
            reader: LineReader::new(raw, parser.max_line_bytes),
            head: Event::default(),
            raw: Vec::new(),
            line: 0,
            has_head: false,
            events: 0,
        });
    }
    let mut heap = BinaryHeap::with_capacity(sources.len());
    for (i, s) in sources.iter_mut().enumerate() {
        s.advance(parser, &mut stats, on_reject)?;
        if s.has_head {
            heap.push(Reverse((s.head.ts, i)));
        }
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let s = &mut sources[i];
        loop {
            if s.has_head {
                if range.contains(s.head.ts) {
                    on_event(&mut s.head, &mut s.raw, &s.file.name, s.line);
                } else {
                    stats.filtered += 1;
                }
            }
            s.advance(parser, &mut stats, on_reject)?;
            if !s.has_head {
                break;
            }
            // While this file's next event still goes before every other
            // file's (ties in file order), take it without the heap: what
            // a push and a pop would give, for one comparison.
            let next = (s.head.ts, i);
            if heap.peek().is_some_and(|Reverse(other)| *other < next) {
                heap.push(Reverse(next));
                break;
            }
        }
    }
    for s in &sources {
        if s.events > 0 {
            *stats.events.entry(s.file.kind).or_default() += s.events;
        }
    }
    Ok(stats)
}

/// Events read ahead by [`merge_files_pipelined`]'s reader, handed over
/// together (and handed back spent, to be refilled without allocating).
#[derive(Default)]
struct Batch {
    /// The events, taken from the merge (not copied).
    events: Vec<Event>,
    /// Per event: its raw line (swapped with the merge's buffer, which
    /// gets this batch's spent one to refill), index into `files`, line
    /// number. Spent entries past `events.len()` keep their buffers.
    lines: Vec<(Vec<u8>, usize, u64)>,
    /// Names of the files this batch's events come from.
    files: Vec<Arc<str>>,
    /// Bytes of raw lines in this fill.
    bytes: usize,
    /// Lines rejected in this fill, in read order: (events before it,
    /// index into `files`, line number, reason).
    rejects: Vec<(usize, usize, u64, RejectReason)>,
}

impl Batch {
    /// Events per batch: enough to make the hand-over cost nothing per
    /// event, few enough that a batch (~700 KB) stays in cache.
    const EVENTS: usize = 1024;
    /// Raw bytes after which a batch goes early (long lines), so the
    /// batches in flight hold a few MiB whatever the input.
    const BYTES: usize = 1 << 20;
    /// A spent line buffer larger than this is freed, not kept for reuse
    /// (one very long line must not pin its size in every buffer).
    const KEEP_BUFFER: usize = 64 << 10;

    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.rejects.is_empty()
    }

    fn full(&self) -> bool {
        self.events.len() + self.rejects.len() >= Self::EVENTS || self.bytes >= Self::BYTES
    }

    /// Index of `file` in `files`, added if new.
    fn file(&mut self, file: &Arc<str>) -> usize {
        match self.files.iter().rposition(|f| Arc::ptr_eq(f, file)) {
            Some(i) => i,
            None => {
                self.files.push(file.clone());
                self.files.len() - 1
            }
        }
    }

    fn reject(&mut self, r: Rejected<'_>) {
        let file = self.file(r.file);
        (self.rejects).push((self.events.len(), file, r.line, r.reason));
    }

    fn push(&mut self, ev: &mut Event, raw: &mut Vec<u8>, file: &Arc<str>, line: u64) {
        let file = self.file(file);
        let n = self.events.len();
        self.bytes += raw.len();
        self.events.push(std::mem::take(ev));
        match self.lines.get_mut(n) {
            Some(slot) => {
                std::mem::swap(&mut slot.0, raw);
                (slot.1, slot.2) = (file, line);
            }
            None => self.lines.push((std::mem::take(raw), file, line)),
        }
    }

    /// Hands out the batch's rejects and events in the order they were
    /// read.
    fn each(
        &self,
        on_reject: &mut dyn FnMut(Rejected<'_>),
        on_event: &mut dyn FnMut(&Event, LineRef<'_>),
    ) {
        let mut rejects = self.rejects.iter().peekable();
        let mut reject_until = |n: usize, on_reject: &mut dyn FnMut(Rejected<'_>)| {
            while let Some(&(_, file, line, reason)) = rejects.next_if(|r| r.0 <= n) {
                on_reject(Rejected {
                    file: &self.files[file],
                    line,
                    reason,
                });
            }
        };
        for (n, (ev, (raw, file, line))) in self.events.iter().zip(&self.lines).enumerate() {
            reject_until(n, on_reject);
            on_event(
                ev,
                LineRef {
                    file: &self.files[*file],
                    line: *line,
                    raw,
                },
            );
        }
        reject_until(usize::MAX, on_reject);
    }

    /// Drops the events; keeps the line buffers (but very long ones) for
    /// the next fill.
    fn clear(&mut self) {
        self.events.clear();
        self.files.clear();
        self.rejects.clear();
        self.bytes = 0;
        for (raw, _, _) in &mut self.lines {
            if raw.capacity() > Self::KEEP_BUFFER {
                *raw = Vec::new();
            }
        }
    }
}

/// The reader thread's end of [`merge_files_pipelined`]: the batch being
/// filled and the channels.
struct Feed {
    batch: Batch,
    full: mpsc::SyncSender<Batch>,
    spent: mpsc::Receiver<Batch>,
    /// The calling thread still takes batches.
    open: bool,
}

impl Feed {
    /// Sends the batch once full (or `last`), taking a spent one back to
    /// refill when there is one.
    fn flush(&mut self, last: bool) {
        let due = self.batch.full() || (last && !self.batch.is_empty());
        if self.open && due {
            let next = self.spent.try_recv().unwrap_or_default();
            self.open = self
                .full
                .send(std::mem::replace(&mut self.batch, next))
                .is_ok();
        }
    }
}

/// [`merge_files`] with reading, decompression, parsing and the merge on a
/// thread of their own, so that detection (`on_event`, on the calling
/// thread) overlaps them on a machine with more than one core. Both
/// callbacks run on the calling thread and see what [`merge_files`] hands
/// out, in the same order: the same events with the same line references,
/// the same rejects; and the stats are the same.
pub fn merge_files_pipelined(
    files: &[InputFile],
    parser: &Parser,
    range: TimeRange,
    bytes_read: Option<Arc<AtomicU64>>,
    on_reject: &mut dyn FnMut(Rejected<'_>),
    on_event: &mut dyn FnMut(&Event, LineRef<'_>),
) -> Result<ReadStats, InputError> {
    // Four batches in flight keep the reader busy while detection works
    // through one; spent batches come back to be refilled.
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(4);
    let (spent_tx, spent_rx) = mpsc::channel::<Batch>();
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("mcpwatch-read".into())
            .spawn_scoped(scope, move || {
                let feed = std::cell::RefCell::new(Feed {
                    batch: Batch::default(),
                    full: full_tx,
                    spent: spent_rx,
                    open: true,
                });
                let stats = merge_with(
                    files,
                    parser,
                    range,
                    bytes_read,
                    &mut |r| {
                        let mut f = feed.borrow_mut();
                        f.batch.reject(r);
                        f.flush(false);
                    },
                    &mut |ev, raw, file, line| {
                        let mut f = feed.borrow_mut();
                        f.batch.push(ev, raw, file, line);
                        f.flush(false);
                    },
                );
                feed.borrow_mut().flush(true);
                stats
            })
            .map_err(|e| InputError::Io("reader thread".into(), e))?;
        for mut batch in full_rx {
            batch.each(on_reject, on_event);
            batch.clear();
            let _ = spent_tx.send(batch);
        }
        reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// [`merge_files_pipelined`] when there is a core for the reader thread,
/// else [`merge_files`]: the same callbacks see the same events and rejects
/// in the same order either way (`scan` and `report` read through this).
pub fn merge_files_auto(
    files: &[InputFile],
    parser: &Parser,
    range: TimeRange,
    bytes_read: Option<Arc<AtomicU64>>,
    on_reject: &mut dyn FnMut(Rejected<'_>),
    on_event: &mut dyn FnMut(&Event, LineRef<'_>),
) -> Result<ReadStats, InputError> {
    let merge = if std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
        merge_files_pipelined
    } else {
        merge_files
    };
    merge(files, parser, range, bytes_read, on_reject, on_event)
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
        let parser = Parser {
            max_line_bytes: 1 << 20,
            now_ms: i64::MAX / 2,
        };
        let mut seen = Vec::new();
        let mut rejects = Vec::new();
        let stats = merge_files(
            &files,
            &parser,
            TimeRange::default(),
            None,
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

    /// Every event of `files` with its line reference, as `merge` hands
    /// them out, plus the rejects (each with the number of events handed
    /// out before it) and stats.
    type Seen = (
        Vec<(Event, String, u64, Vec<u8>)>,
        Vec<(String, u64, usize)>,
        ReadStats,
    );

    fn read_all(
        files: &[InputFile],
        range: TimeRange,
        merge: impl FnOnce(
            &[InputFile],
            &Parser,
            TimeRange,
            &mut dyn FnMut(Rejected<'_>),
            &mut dyn FnMut(&Event, LineRef<'_>),
        ) -> Result<ReadStats, InputError>,
    ) -> Seen {
        let parser = Parser {
            max_line_bytes: 1 << 20,
            now_ms: i64::MAX / 2,
        };
        let (mut seen, mut rejects) = (Vec::new(), Vec::new());
        // Events handed out so far, so each reject records where it came.
        let handed = std::cell::Cell::new(0);
        let stats = merge(
            files,
            &parser,
            range,
            &mut |r| rejects.push((r.file.to_string(), r.line, handed.get())),
            &mut |ev, l| {
                handed.set(handed.get() + 1);
                seen.push((ev.clone(), l.file.to_string(), l.line, l.raw.to_vec()))
            },
        )
        .unwrap();
        (seen, rejects, stats)
    }

    #[test]
    fn the_pipelined_merge_hands_out_what_the_merge_does() {
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
            let direct = read_all(&files, range, |f, p, r, rej, ev| {
                merge_files(f, p, r, None, rej, ev)
            });
            let piped = read_all(&files, range, |f, p, r, rej, ev| {
                merge_files_pipelined(f, p, r, None, rej, ev)
            });
            assert!(direct.0.len() > 2 * Batch::EVENTS, "{}", direct.0.len());
            assert!(!direct.1.is_empty());
            assert_eq!(direct.0.len(), piped.0.len());
            for (a, b) in direct.0.iter().zip(&piped.0) {
                assert_eq!(
                    (&a.0.ts, &a.0.request_id, &a.1, a.2, &a.3),
                    (&b.0.ts, &b.0.request_id, &b.1, b.2, &b.3)
                );
            }
            assert_eq!(direct.1, piped.1);
            assert_eq!(direct.2, piped.2);
        }
    }

    #[test]
    fn the_pipelined_merge_hands_out_long_lines_as_the_merge_does() {
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
        let direct = read_all(&files, TimeRange::default(), |f, p, r, rej, ev| {
            merge_files(f, p, r, None, rej, ev)
        });
        let piped = read_all(&files, TimeRange::default(), |f, p, r, rej, ev| {
            merge_files_pipelined(f, p, r, None, rej, ev)
        });
        assert_eq!(direct.0.len(), 400);
        const { assert!(400 * 20_000 > 4 * Batch::BYTES, "spans several batches") };
        let lines = |seen: &Seen| -> Vec<(String, u64, Vec<u8>)> {
            seen.0
                .iter()
                .map(|e| (e.1.clone(), e.2, e.3.clone()))
                .collect()
        };
        assert_eq!(lines(&direct), lines(&piped));
        assert_eq!(direct.2, piped.2);
    }

    #[test]
    fn a_spent_batch_frees_very_long_line_buffers_and_keeps_the_rest() {
        let file: Arc<str> = "tool-usage.log".into();
        let mut b = Batch::default();
        for len in [100, 100_000, 200] {
            let mut raw = vec![b'x'; len];
            b.push(&mut Event::default(), &mut raw, &file, 1);
        }
        assert!(!b.full() && b.bytes == 100_300);
        b.clear();
        let caps: Vec<usize> = b.lines.iter().map(|l| l.0.capacity()).collect();
        assert!(caps[0] >= 100 && caps[1] == 0 && caps[2] >= 200, "{caps:?}");
        assert_eq!((b.events.len(), b.bytes), (0, 0));
    }
}
