//! [`merge_files_pipelined`]: the merge of [`merge_files`](super::merge_files)
//! with parsing shared between two threads.
//!
//! Parsing is the main cost of a scan, and it is the one part that needs no
//! order: a line parses the same whoever parses it. So a helper thread reads
//! every file and frames its lines into chunks (a file's chunks in order,
//! each its lines' bytes back to back), and the chunks are parsed by
//! whichever thread gets to them first: the helper, after framing, parses
//! the chunk furthest ahead; the calling thread, when it reaches a chunk no
//! one has parsed yet, parses it itself. The calling thread alone merges
//! and hands out events, so the callbacks (detection) run there and see
//! exactly what `merge_files` hands out, in the same order.
//!
//! Work balances itself: while detection is the slower side, the helper
//! parses everything ahead of it; while reading is, the calling thread
//! parses every chunk it reaches before the helper does.

use std::collections::VecDeque;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::chunk::{Chunk, End, Next, Place, Sizes};
use super::{Advance, FileLines, Heads, ReadStats, Reading, Rejected, merge_heads};
use crate::event::LineRef;
use crate::event::{Event, Kind, Millis};
use crate::ingest::input::{InputError, InputFile};
use crate::ingest::parse::Parser;

/// A chunk in a file's queue.
enum Slot {
    /// Framed, parsed by no one yet.
    Framed(Chunk),
    /// Being parsed by the helper.
    Parsing,
    Parsed(Chunk),
}

/// What both threads share, under one lock (taken a few times per chunk).
struct Shared {
    state: Mutex<State>,
    /// The calling thread waits here for a chunk; signalled when one is
    /// framed or parsed, and when the helper stops.
    ready: Condvar,
    /// The helper waits here for work; signalled when a chunk is asked for,
    /// and when the merge is over.
    work: Condvar,
}

#[derive(Default)]
struct State {
    /// Per file: its chunks not yet taken by the merge, in order.
    queues: Vec<VecDeque<Slot>>,
    /// Per file: the sequence number of its queue's front.
    first: Vec<u64>,
    /// Files to frame one more chunk of, in the order asked.
    wanted: VecDeque<usize>,
    /// (file, sequence number) of framed chunks, newest last; entries of
    /// chunks since taken are stale and skipped.
    unparsed: Vec<(usize, u64)>,
    /// Spent chunks, to refill without allocating.
    spare: Vec<Chunk>,
    /// The merge is over (done or failed): the helper stops.
    closed: bool,
    /// The helper has stopped (it panicked, if the merge was not over).
    helper_gone: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic on the other thread is re-raised when it is joined; the
        // state itself is never left half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A piece of the helper's work.
enum Job {
    /// Frame the next chunk of file `.0` into the spent chunk `.1`.
    Frame(usize, Chunk),
    /// Parse chunk `.1` of file `.0`.
    Parse(usize, u64, Chunk),
}

/// The helper's work: frame what the merge asks for (cheap, and it
/// unblocks the merge), else parse the framed chunk furthest ahead.
fn helper(
    shared: &Shared,
    readers: &mut [FileLines],
    kinds: &[Kind],
    parser: &Parser,
    sizes: Sizes,
) {
    /// Marks the helper gone however it leaves, so the merge never waits
    /// on it in vain.
    struct Gone<'a>(&'a Shared);
    impl Drop for Gone<'_> {
        fn drop(&mut self) {
            self.0.lock().helper_gone = true;
            self.0.ready.notify_all();
        }
    }
    let _gone = Gone(shared);
    let n = readers.len();
    let mut ended = vec![false; n];
    let mut framed = vec![0u64; readers.len()];
    loop {
        let job = {
            let mut st = shared.lock();
            loop {
                if st.closed {
                    return;
                }
                if let Some(i) = st.wanted.pop_front() {
                    if ended[i] {
                        continue;
                    }
                    let chunk = st.spare.pop().unwrap_or_default();
                    break Job::Frame(i, chunk);
                }
                if let Some(job) = claim_newest(&mut st) {
                    break job;
                }
                st = shared.work.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        match job {
            Job::Frame(i, mut chunk) => {
                chunk.fill(&mut readers[i], sizes.lines, sizes.bytes);
                ended[i] = !matches!(chunk.end, End::More);
                let seq = framed[i];
                framed[i] += 1;
                if seq == 0 {
                    // Set aside until the merge starts on this file.
                    readers[i].park();
                }
                let mut st = shared.lock();
                st.queues[i].push_back(Slot::Framed(chunk));
                st.unparsed.push((i, seq));
                if st.unparsed.len() > 16 * (n + 4) {
                    // Chunks the merge took and parsed itself.
                    let State {
                        unparsed, first, ..
                    } = &mut *st;
                    unparsed.retain(|&(i, seq)| seq >= first[i]);
                }
                drop(st);
                shared.ready.notify_one();
            }
            Job::Parse(i, seq, mut chunk) => {
                chunk.parse(parser, kinds[i]);
                let mut st = shared.lock();
                // The merge waits for a chunk being parsed, never takes it.
                let at = (seq - st.first[i]) as usize;
                st.queues[i][at] = Slot::Parsed(chunk);
                drop(st);
                shared.ready.notify_one();
            }
        }
    }

    /// The newest framed chunk no one parses yet, marked as being parsed.
    fn claim_newest(st: &mut State) -> Option<Job> {
        while let Some((i, seq)) = st.unparsed.pop() {
            let Some(at) = seq.checked_sub(st.first[i]) else {
                continue;
            };
            let slot = &mut st.queues[i][at as usize];
            match std::mem::replace(slot, Slot::Parsing) {
                Slot::Framed(chunk) => return Some(Job::Parse(i, seq, chunk)),
                other => *slot = other,
            }
        }
        None
    }
}

/// The calling thread's side: each file's current chunk and place in it.
struct Merge<'a, 'c> {
    shared: &'a Shared,
    files: &'a [InputFile],
    parser: &'a Parser,
    stats: &'a mut ReadStats,
    on_reject: &'a mut dyn FnMut(Rejected<'_>),
    on_event: &'a mut (dyn FnMut(&Event, LineRef<'_>) + 'c),
    cursors: Vec<Cursor>,
    /// [`Sizes::ahead`].
    ahead: usize,
}

#[derive(Default)]
struct Cursor {
    place: Place,
    /// The merge has gone past this file's first head: chunks are read
    /// ahead of it.
    started: bool,
    /// Chunks asked for and not yet taken (framed or to be).
    asked: usize,
}

impl Merge<'_, '_> {
    /// The next chunk of file `i`, parsed (here, if no one has yet).
    fn take(&mut self, i: usize) -> Result<Chunk, InputError> {
        let shared = self.shared;
        let mut st = shared.lock();
        let c = &mut self.cursors[i];
        if c.asked == 0 {
            // A file not started yet whose first chunk held no event.
            c.asked = 1;
            st.wanted.push_back(i);
            self.shared.work.notify_one();
        }
        loop {
            let front = st.queues[i].front();
            if matches!(front, Some(Slot::Framed(_) | Slot::Parsed(_))) {
                st.first[i] += 1;
                let c = &mut self.cursors[i];
                c.asked -= 1;
                if c.started {
                    self.ask_ahead(&mut st, i);
                }
                let slot = st.queues[i].pop_front();
                drop(st);
                self.shared.work.notify_one();
                return Ok(match slot {
                    Some(Slot::Parsed(chunk)) => chunk,
                    Some(Slot::Framed(mut chunk)) => {
                        chunk.parse(self.parser, self.files[i].kind);
                        chunk
                    }
                    _ => unreachable!("the front was framed or parsed"),
                });
            }
            if st.helper_gone {
                return Err(InputError::Io(
                    "reader thread".into(),
                    io::Error::other("the reader thread stopped"),
                ));
            }
            st = self
                .shared
                .ready
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Asks for chunks of file `i` until `ahead` are framed or asked for.
    fn ask_ahead(&mut self, st: &mut State, i: usize) {
        let c = &mut self.cursors[i];
        while c.asked < self.ahead {
            c.asked += 1;
            st.wanted.push_back(i);
        }
    }

    fn recycle(&self, mut chunk: Chunk) {
        chunk.clear();
        self.shared.lock().spare.push(chunk);
    }
}

impl Heads for Merge<'_, '_> {
    fn advance(&mut self, i: usize) -> Result<Advance, InputError> {
        let c = &mut self.cursors[i];
        if c.place.has_head && !c.started {
            // The merge has begun on this file: read ahead of it from now on
            // (until then only its first chunk was framed, and the file set
            // aside).
            c.started = true;
            let chunk = c.place.chunk.as_ref();
            if chunk.is_some_and(|k| matches!(k.end, End::More)) {
                let shared = self.shared;
                let mut st = shared.lock();
                self.ask_ahead(&mut st, i);
                drop(st);
                self.shared.work.notify_one();
            }
        }
        loop {
            let place = &mut self.cursors[i].place;
            match place.next(&self.files[i], self.stats, self.on_reject)? {
                Next::Head => return Ok(Advance::Head),
                Next::Eof => return Ok(Advance::Done),
                Next::Chunk => {}
            }
            let next = self.take(i)?;
            if let Some(spent) = self.cursors[i].place.start(next) {
                self.recycle(spent);
            }
        }
    }

    fn ts(&self, i: usize) -> Millis {
        self.cursors[i].place.ts()
    }

    fn emit(&mut self, i: usize) {
        self.cursors[i].place.emit(&self.files[i], self.on_event);
    }
}

/// [`merge_files`](super::merge_files) with reading and framing on a thread
/// of their own and parsing shared by both (see the module's comment), so
/// that a machine with two cores reads, parses and detects at once. Both
/// callbacks run on the calling thread and see what `merge_files` hands
/// out, in the same order: the same events with the same line references,
/// the same rejects; and the stats are the same.
pub fn merge_files_pipelined(
    read: Reading<'_>,
    on_reject: &mut dyn FnMut(Rejected<'_>),
    on_event: &mut dyn FnMut(&Event, LineRef<'_>),
) -> Result<ReadStats, InputError> {
    let sizes = Sizes::for_files(read.files.len());
    merge_in_chunks(read, sizes, on_reject, on_event)
}

/// [`merge_files_pipelined`] with chunks of the given sizes (tests make
/// them tiny, to cross many chunk boundaries).
pub(super) fn merge_in_chunks(
    read: Reading<'_>,
    sizes: Sizes,
    on_reject: &mut dyn FnMut(Rejected<'_>),
    on_event: &mut dyn FnMut(&Event, LineRef<'_>),
) -> Result<ReadStats, InputError> {
    let mut readers = read.open_all()?;
    let Reading {
        files,
        parser,
        range,
        ..
    } = read;
    let kinds: Vec<Kind> = files.iter().map(|f| f.kind).collect();
    let n = files.len();
    let shared = Shared {
        state: Mutex::new(State {
            queues: (0..n).map(|_| VecDeque::new()).collect(),
            first: vec![0; n],
            // The first chunk of every file (the merge needs every head);
            // more once the merge starts on a file.
            wanted: (0..n).collect(),
            ..State::default()
        }),
        ready: Condvar::new(),
        work: Condvar::new(),
    };
    let mut stats = ReadStats::default();
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("mcpwatch-read".into())
            .spawn_scoped(scope, || {
                helper(&shared, &mut readers, &kinds, parser, sizes)
            })
            .map_err(|e| InputError::Io("reader thread".into(), e))?;
        let mut merge = Merge {
            shared: &shared,
            files,
            parser,
            stats: &mut stats,
            on_reject,
            on_event,
            cursors: (0..n)
                .map(|_| Cursor {
                    asked: 1,
                    ..Cursor::default()
                })
                .collect(),
            ahead: sizes.ahead.max(1),
        };
        let merged = merge_heads(&mut merge, n, range);
        let events: Vec<u64> = merge.cursors.iter().map(|c| c.place.events).collect();
        shared.lock().closed = true;
        shared.work.notify_all();
        if let Err(panic) = helper.join() {
            std::panic::resume_unwind(panic);
        }
        stats.tally(files, merged?, events);
        Ok(stats)
    })
}
