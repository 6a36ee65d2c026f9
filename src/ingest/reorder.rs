//! Putting events from many hosts back in ts order (SPEC §10). Lines from
//! a stream arrive in the order their hosts published them, not by ts: each
//! is held until the smaller of the highest ts seen and the wall clock has
//! passed it by `allowed_lateness`, then handed out in ts order (ties by
//! host, then file, then line; files of one host in `scan`'s kind order, so
//! one host's lines come out exactly as `scan` merges them). While nothing
//! arrives (for [`IDLE`], or the lateness if shorter), the clock alone
//! decides: the last events before a pause do not wait for the next one.
//! An event older than one already handed out is handed out at once and
//! counted late.
//!
//! Pure: the clock is an argument, nothing here reads it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::event::{Kind, Millis};

/// Wall time without an arrival after which the stream counts as idle.
pub(crate) const IDLE: Millis = 1_000;

/// Where an event sorts among events of equal ts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tie {
    pub(crate) host: Arc<str>,
    pub(crate) kind: Kind,
    pub(crate) file: Arc<str>,
    pub(crate) line: u64,
}

struct Held<T> {
    ts: Millis,
    tie: Tie,
    /// Arrival order: the last word, so equal keys stay first come, first out.
    n: u64,
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, &self.tie, self.n) == (o.ts, &o.tie, o.n)
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Held<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.ts, &self.tie, self.n).cmp(&(o.ts, &o.tie, o.n))
    }
}

/// The events held back, smallest key first.
pub(crate) struct Reorder<T> {
    heap: BinaryHeap<Reverse<Held<T>>>,
    lateness: Millis,
    /// Highest ts seen (`Millis::MIN` before the first event).
    max_ts: Millis,
    /// Highest ts handed out.
    released: Millis,
    /// Wall clock (ms) of the last arrival.
    last_arrival: Option<Millis>,
    n: u64,
}

impl<T> Reorder<T> {
    pub(crate) fn new(allowed_lateness: Millis) -> Reorder<T> {
        Reorder {
            heap: BinaryHeap::new(),
            lateness: allowed_lateness.max(0),
            max_ts: Millis::MIN,
            released: Millis::MIN,
            last_arrival: None,
            n: 0,
        }
    }

    /// Takes an event that arrived at wall clock `now`. An event older than
    /// one already handed out comes straight back (`Some`): process it now,
    /// and count it late.
    pub(crate) fn push(&mut self, ts: Millis, tie: Tie, item: T, now: Millis) -> Option<T> {
        self.last_arrival = Some(now);
        if ts < self.released {
            return Some(item);
        }
        self.max_ts = self.max_ts.max(ts);
        self.n += 1;
        self.heap.push(Reverse(Held {
            ts,
            tie,
            n: self.n,
            item,
        }));
        None
    }

    /// The ts up to which events are handed out at wall clock `now`.
    fn bound(&self, now: Millis) -> Millis {
        let idle = self
            .last_arrival
            .is_none_or(|t| now.saturating_sub(t) >= self.lateness.min(IDLE));
        let seen = if idle { now } else { self.max_ts.min(now) };
        seen.saturating_sub(self.lateness)
    }

    /// Hands out, in order, every event the clock and the highest ts have
    /// passed by the allowed lateness.
    pub(crate) fn release(&mut self, now: Millis, mut out: impl FnMut(Millis, &Tie, T)) {
        let bound = self.bound(now);
        while self.heap.peek().is_some_and(|Reverse(h)| h.ts <= bound) {
            if let Some(Reverse(h)) = self.heap.pop() {
                self.released = self.released.max(h.ts);
                out(h.ts, &h.tie, h.item);
            }
        }
    }

    /// Hands out, in order, the oldest events beyond `max` held: memory
    /// stays bounded whatever the lateness and the rate. Returns how many.
    pub(crate) fn release_over(
        &mut self,
        max: usize,
        mut out: impl FnMut(Millis, &Tie, T),
    ) -> usize {
        let mut n = 0;
        while self.heap.len() > max {
            if let Some(Reverse(h)) = self.heap.pop() {
                self.released = self.released.max(h.ts);
                out(h.ts, &h.tie, h.item);
                n += 1;
            }
        }
        n
    }

    /// Events held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// The items held now, in no particular order.
    pub(crate) fn held(&self) -> impl Iterator<Item = &T> {
        self.heap.iter().map(|Reverse(h)| &h.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tie(host: &str, kind: Kind, line: u64) -> Tie {
        Tie {
            host: host.into(),
            kind,
            file: kind.base_file().into(),
            line,
        }
    }

    fn drain(r: &mut Reorder<&'static str>, now: Millis) -> Vec<&'static str> {
        let mut v = Vec::new();
        r.release(now, |_, _, x| v.push(x));
        v
    }

    const NOW: Millis = 1_000_000;

    #[test]
    fn events_wait_until_the_highest_ts_passed_them_by_the_lateness() {
        let mut r = Reorder::new(5_000);
        assert!(
            r.push(NOW - 10_000, tie("b", Kind::ToolCall, 1), "b1", NOW)
                .is_none()
        );
        assert!(
            r.push(NOW - 12_000, tie("a", Kind::ToolCall, 1), "a1", NOW)
                .is_none()
        );
        // Highest ts NOW-10s: bound NOW-15s, nothing yet.
        assert!(drain(&mut r, NOW).is_empty());
        r.push(NOW - 7_000, tie("a", Kind::ToolCall, 2), "a2", NOW);
        // Bound NOW-12s exactly: a1 (ts == bound) goes, b1 waits.
        assert_eq!(drain(&mut r, NOW), vec!["a1"]);
        r.push(NOW - 5_000, tie("b", Kind::ToolCall, 2), "b2", NOW);
        assert_eq!(drain(&mut r, NOW), vec!["b1"]);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn the_clock_caps_a_host_stamping_ahead() {
        let mut r = Reorder::new(5_000);
        r.push(NOW - 6_000, tie("a", Kind::ToolCall, 1), "a1", NOW);
        r.push(NOW + 600_000, tie("b", Kind::ToolCall, 1), "ahead", NOW);
        // The ahead host's ts does not release a1 early... but the clock
        // has passed a1 by more than 5 s: out it goes, the future one waits.
        assert_eq!(drain(&mut r, NOW), vec!["a1"]);
        assert_eq!(drain(&mut r, NOW + 1_000), Vec::<&str>::new());
    }

    #[test]
    fn an_idle_stream_is_released_by_the_clock_alone() {
        let mut r = Reorder::new(5_000);
        r.push(NOW - 1_000, tie("a", Kind::ToolCall, 1), "a1", NOW);
        assert!(drain(&mut r, NOW + 3_999).is_empty());
        assert_eq!(drain(&mut r, NOW + 4_000), vec!["a1"]);
        // History replayed: its highest ts holds the last 5 s of it back
        // until the stream has been idle for a second.
        let mut h = Reorder::new(5_000);
        h.push(10, tie("a", Kind::ToolCall, 2), "old-2", NOW);
        h.push(5, tie("a", Kind::ToolCall, 1), "old-1", NOW);
        assert!(drain(&mut h, NOW + 999).is_empty());
        assert_eq!(drain(&mut h, NOW + 1_000), vec!["old-1", "old-2"]);
        // A lateness shorter than a second is its own idle time.
        let mut z = Reorder::new(200);
        z.push(10, tie("a", Kind::ToolCall, 1), "z", NOW);
        assert!(drain(&mut z, NOW + 199).is_empty());
        assert_eq!(drain(&mut z, NOW + 200), vec!["z"]);
    }

    #[test]
    fn ties_go_by_host_then_kind_order_then_file_then_line() {
        let mut r = Reorder::new(0);
        let ts = NOW - 1;
        r.push(ts, tie("b", Kind::ToolCall, 1), "b-call", NOW);
        r.push(ts, tie("a", Kind::Error, 1), "a-error", NOW);
        r.push(ts, tie("a", Kind::Approval, 1), "a-approval", NOW);
        r.push(ts, tie("a", Kind::ToolCall, 2), "a-call-2", NOW);
        r.push(ts, tie("a", Kind::ToolCall, 1), "a-call-1", NOW);
        assert_eq!(
            drain(&mut r, NOW + 10),
            vec!["a-call-1", "a-call-2", "a-approval", "a-error", "b-call"]
        );
    }

    #[test]
    fn beyond_the_cap_the_oldest_go_out_early() {
        let mut r = Reorder::new(60_000);
        for (i, x) in ["c", "a", "d", "b"].into_iter().enumerate() {
            let ts = match x {
                "a" => 1,
                "b" => 2,
                "c" => 3,
                _ => 4,
            };
            r.push(NOW - 1_000 + ts, tie("a", Kind::ToolCall, i as u64), x, NOW);
        }
        let mut v = Vec::new();
        assert_eq!(r.release_over(2, |_, _, x| v.push(x)), 2);
        assert_eq!(v, vec!["a", "b"]);
        assert_eq!(r.len(), 2);
        // What is older than those handed out is now late.
        assert_eq!(
            r.push(NOW - 1_000, tie("b", Kind::ToolCall, 1), "z", NOW),
            Some("z")
        );
    }

    #[test]
    fn an_event_older_than_one_handed_out_comes_back_at_once() {
        let mut r = Reorder::new(1_000);
        r.push(NOW - 5_000, tie("a", Kind::ToolCall, 1), "a1", NOW);
        r.push(NOW - 1_000, tie("a", Kind::ToolCall, 2), "a2", NOW);
        assert_eq!(drain(&mut r, NOW), vec!["a1"]);
        // Equal to the highest handed out: not late, held as usual.
        assert_eq!(
            r.push(NOW - 5_000, tie("b", Kind::ToolCall, 1), "b1", NOW),
            None
        );
        assert_eq!(
            r.push(NOW - 5_001, tie("b", Kind::ToolCall, 2), "late", NOW),
            Some("late")
        );
    }
}
