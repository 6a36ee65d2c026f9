//! The ts-ordered merge of SPEC §3: each file is read in its own line order;
//! files are merged by the ts of their next line, ties in file order
//! (tool-usage, approvals, errors; within a kind, older generations first).
//!
//! `scan` and `report` drive [`merge_files`]; rejected lines are handed to a
//! callback as they are met (with file and line) and never stop the read.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
    pub file: &'a str,
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
                    on_event(
                        &s.head,
                        LineRef {
                            file: &s.file.name,
                            line: s.line,
                            raw: &s.raw,
                        },
                    );
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
}
