//! Chunks: a file's lines framed a chunk at a time (their bytes back to
//! back), then parsed together, and a file's place in its current chunk as
//! the ts merge walks it. Both chunked merges are built of these:
//! [`merge_files`](super::merge_files) frames and parses each chunk on the
//! calling thread when the merge reaches it; the pipelined merge frames on a
//! helper thread and parses on either (see `parallel`).
//!
//! Parsing a chunk's lines together, then handing their events to the
//! callback one after the other, keeps the parser's and the callback's code
//! and data each in cache for a run of lines, instead of switching between
//! them at every line.

use std::io;

use super::{FileLines, ReadStats, Reader, Rejected};
use crate::event::LineRef;
use crate::event::{Event, Kind, Millis, RejectReason};
use crate::ingest::input::{InputError, InputFile};
use crate::ingest::parse::Parser;

/// Lines of one file, framed and then parsed.
#[derive(Default)]
pub(super) struct Chunk {
    /// The lines' bytes, back to back (without their endings).
    buf: Vec<u8>,
    /// In line order: line number, and the line's bytes in `buf` or why
    /// framing rejected it (too long).
    lines: Vec<(u64, Framed)>,
    /// What follows the last line.
    pub(super) end: End,
    /// Once parsed: per line of `lines`, `None` for an event (the next of
    /// `events`) or why it was rejected.
    verdicts: Vec<Option<RejectReason>>,
    events: Vec<Event>,
}

/// A framed line: where its bytes are in the chunk's `buf`, or why framing
/// rejected it.
type Framed = Result<(usize, usize), RejectReason>;

/// What follows a chunk's last line.
#[derive(Default)]
pub(super) enum End {
    /// More lines (possibly none).
    #[default]
    More,
    /// The end of the file.
    Eof,
    /// A read error, reported once the lines before it are handed out.
    Err(io::Error),
}

impl Chunk {
    /// Frames up to `lines` lines (or `bytes` bytes) of `file` into this
    /// (spent) chunk.
    pub(super) fn fill(&mut self, file: &mut FileLines, lines: usize, bytes: usize) {
        self.clear();
        self.end = match file.reader() {
            Ok(Some(reader)) => self.frame(reader, lines, bytes),
            Ok(None) => End::Eof,
            Err(e) => End::Err(e),
        };
        if !matches!(self.end, End::More) {
            file.finish();
        }
    }

    fn frame(&mut self, reader: &mut Reader, lines: usize, bytes: usize) -> End {
        while self.lines.len() < lines && self.buf.len() < bytes {
            match reader.next_line() {
                Ok(Some((n, Ok(line)))) => {
                    let at = self.buf.len();
                    self.buf.extend_from_slice(line);
                    self.lines.push((n, Ok((at, self.buf.len()))));
                }
                Ok(Some((n, Err(reason)))) => self.lines.push((n, Err(reason))),
                Ok(None) => return End::Eof,
                Err(e) => return End::Err(e),
            }
        }
        End::More
    }

    /// Parses every framed line.
    pub(super) fn parse(&mut self, parser: &Parser, kind: Kind) {
        self.verdicts.clear();
        self.events.clear();
        for (_, line) in &self.lines {
            let parsed = (*line).and_then(|(a, b)| parser.parse(kind, &self.buf[a..b]));
            self.verdicts.push(match parsed {
                Ok(ev) => {
                    self.events.push(ev);
                    None
                }
                Err(reason) => Some(reason),
            });
        }
    }

    /// Empties the chunk for reuse, keeping its buffers (but a very long
    /// line's: one such line must not pin its size in every chunk).
    pub(super) fn clear(&mut self) {
        if self.buf.capacity() > Self::KEEP_BUFFER {
            self.buf = Vec::new();
        }
        self.buf.clear();
        self.lines.clear();
        self.verdicts.clear();
        self.events.clear();
        self.end = End::More;
    }

    /// Spent chunks with a buffer larger than this drop it.
    const KEEP_BUFFER: usize = 4 << 20;
}

/// How much is framed ahead, by the number of files merged: chunks of up to
/// 1,024 lines (enough to make the hand-over cost nothing per line, few
/// enough to stay in cache) and two to four per file ahead of the merge (so
/// both threads find work). Many files (months of archives) get smaller
/// chunks, so that the lines in flight (framed ahead, plus each file's
/// current chunk) stay near 12k up to 256 files, and 48 a file beyond;
/// long lines cut chunks short at 4 MiB over all files (64 KiB a file at
/// least).
#[derive(Clone, Copy, Debug)]
pub(super) struct Sizes {
    /// Lines per chunk.
    pub(super) lines: usize,
    /// Bytes after which a chunk is cut short.
    pub(super) bytes: usize,
    /// Chunks per file framed ahead of the merge.
    pub(super) ahead: usize,
}

impl Sizes {
    pub(super) fn for_files(n: usize) -> Sizes {
        let n = n.max(1);
        Sizes {
            lines: (4096 / n).clamp(16, 1024),
            bytes: ((4 << 20) / n).clamp(64 << 10, 1 << 20),
            ahead: (8 / n).clamp(2, 4),
        }
    }
}

/// Where a merge is in one file's chunks.
#[derive(Default)]
pub(super) struct Place {
    /// The current chunk (parsed).
    pub(super) chunk: Option<Chunk>,
    /// Next line of the chunk (the head's, while there is a head).
    line: usize,
    /// Next event of the chunk (the head, while there is a head).
    event: usize,
    /// The line and event above are this file's head.
    pub(super) has_head: bool,
    /// Events accepted from this file.
    pub(super) events: u64,
}

/// What [`Place::next`] found.
pub(super) enum Next {
    /// A head: the next accepted event.
    Head,
    /// The end of the file.
    Eof,
    /// The end of the chunk: the file's next chunk is needed.
    Chunk,
}

impl Place {
    /// Moves past the head, if there is one, to the chunk's next accepted
    /// event, reporting the lines rejected on the way; a read error is
    /// raised once the lines before it are handed out.
    pub(super) fn next(
        &mut self,
        file: &InputFile,
        stats: &mut ReadStats,
        on_reject: &mut dyn FnMut(Rejected<'_>),
    ) -> Result<Next, InputError> {
        if self.has_head {
            // Past the head, handed out or filtered.
            self.has_head = false;
            self.line += 1;
            self.event += 1;
        }
        let Some(chunk) = &mut self.chunk else {
            return Ok(Next::Chunk);
        };
        while let Some(verdict) = chunk.verdicts.get(self.line) {
            let Some(reason) = *verdict else {
                self.events += 1;
                self.has_head = true;
                return Ok(Next::Head);
            };
            *stats.rejected.entry(reason).or_default() += 1;
            on_reject(Rejected {
                file: &file.name,
                line: chunk.lines[self.line].0,
                reason,
            });
            self.line += 1;
        }
        match std::mem::take(&mut chunk.end) {
            End::More => Ok(Next::Chunk),
            End::Eof => Ok(Next::Eof),
            End::Err(e) => Err(InputError::Io(file.path.display().to_string(), e)),
        }
    }

    /// Starts on the file's next chunk; returns the spent one.
    pub(super) fn start(&mut self, next: Chunk) -> Option<Chunk> {
        (self.line, self.event) = (0, 0);
        self.chunk.replace(next)
    }

    /// The ts of the head.
    pub(super) fn ts(&self) -> Millis {
        let head = (self.chunk.as_ref()).and_then(|chunk| chunk.events.get(self.event));
        head.map_or(0, |ev| ev.ts)
    }

    /// Hands the head to `on_event`.
    pub(super) fn emit(&self, file: &InputFile, on_event: &mut dyn FnMut(&Event, LineRef<'_>)) {
        if let Some(chunk) = &self.chunk
            && let (Some(ev), Some((line, Ok((a, b))))) =
                (chunk.events.get(self.event), chunk.lines.get(self.line))
        {
            on_event(
                ev,
                LineRef {
                    file: &file.name,
                    line: *line,
                    raw: &chunk.buf[*a..*b],
                },
            );
        }
    }
}
