//! The tailer's logs as sources of the one ts merge `scan` and `report`
//! use ([`merge_heads`](crate::ingest::merge::merge_heads)): what `run` read this cycle, after what earlier
//! cycles could not place yet. So "run gives the alerts scan gives" holds
//! by construction: the same merge, the same engine.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::alert::Alert;
use crate::detect::Engine;
use crate::event::{Event, LineRef, Millis};
use crate::ingest::input::InputError;
use crate::ingest::merge::{Advance, Heads};
use crate::ingest::tail::Batch;

/// The tailer's three logs as sources of [`merge_heads`](crate::ingest::merge::merge_heads), in kind order:
/// each kind's events carried from earlier cycles, then this batch's, in
/// file order. A kind whose file the read limit cut short must wait once
/// they run out. Handing out a head runs it through the engine.
pub(super) struct LiveHeads<'a> {
    pub(super) batch: &'a Batch,
    pub(super) per_kind: &'a [Vec<(Event, usize)>; 3],
    pub(super) carry: &'a mut [VecDeque<Carried>; 3],
    /// Next event of `per_kind[k]` once `carry[k]` is empty.
    pub(super) next: [usize; 3],
    /// Whether each kind was read to its current end.
    pub(super) complete: [bool; 3],
    pub(super) engine: &'a mut Engine,
    pub(super) alerts: &'a mut Vec<Alert>,
}

impl Heads for LiveHeads<'_> {
    fn advance(&mut self, k: usize) -> Result<Advance, InputError> {
        Ok(
            if !self.carry[k].is_empty() || self.next[k] < self.per_kind[k].len() {
                Advance::Head
            } else if self.complete[k] {
                Advance::Done
            } else {
                Advance::Wait
            },
        )
    }

    fn ts(&self, k: usize) -> Millis {
        match self.carry[k].front() {
            Some(c) => c.ev.ts,
            None => self.per_kind[k][self.next[k]].0.ts,
        }
    }

    fn emit(&mut self, k: usize) {
        if let Some(c) = self.carry[k].pop_front() {
            let line = LineRef {
                file: &c.file,
                line: c.line,
                raw: &c.raw,
            };
            self.engine.process(&c.ev, line, self.alerts);
            return;
        }
        let (ev, idx) = &self.per_kind[k][self.next[k]];
        self.next[k] += 1;
        let line = &self.batch.lines[*idx];
        self.engine.process(
            ev,
            LineRef {
                file: &line.file,
                line: line.line_no,
                raw: self.batch.bytes(line),
            },
            self.alerts,
        );
    }
}

/// An event held over to the next cycle, with what evidence needs.
pub(super) struct Carried {
    pub(super) ev: Event,
    pub(super) raw: Vec<u8>,
    pub(super) file: Arc<str>,
    pub(super) line: u64,
}
