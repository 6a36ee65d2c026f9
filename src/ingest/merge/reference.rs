//! The line-by-line merge: each file's next event parsed when the merge
//! needs it. The simplest merge, kept (for tests only) as the reference the
//! chunked merges are held to; a file of its own so the merge module reads
//! as the code that ships.

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
    fn advance(&mut self, i: usize) -> Result<Advance, InputError> {
        let s = &mut self.sources[i];
        s.advance(self.parser, self.stats, self.on_reject)?;
        if !s.started {
            // Its first event is known: set it aside until its turn.
            s.started = true;
            s.lines.park();
        }
        Ok(if s.has_head {
            Advance::Head
        } else {
            Advance::Done
        })
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
