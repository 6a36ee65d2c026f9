//! [`Window`]: counts of events in an event-time sliding window `(t − w, t]`,
//! kept per key by the counting rules (two counters, for denial rates).

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::event::Millis;

/// Counts of events per millisecond in an event-time window `(t − w, t]`.
/// Equal timestamps share one slot, so a window never holds more slots than
/// it has milliseconds, however hard a key floods.
///
/// Most keys hold one or two slots at a time, so those live inline in the
/// key's state (no allocation, no pointer to chase); slots that fall out of
/// the window are skipped by `head` and compacted away once they are half.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "WindowData", into = "WindowData")]
pub(crate) struct Window {
    /// `(ts, a, b)` sorted by ts; `a` and `b` are two counters (events and,
    /// for denial rates, denials). Those before `head` have left.
    slots: SmallVec<[(Millis, u32, u32); 2]>,
    head: usize,
    total_a: u64,
    total_b: u64,
}

/// A window as checkpoints store it: its live slots and totals.
#[derive(Serialize, Deserialize)]
struct WindowData {
    slots: Vec<(Millis, u32, u32)>,
    total_a: u64,
    total_b: u64,
}

impl From<Window> for WindowData {
    fn from(w: Window) -> WindowData {
        WindowData {
            slots: w.live().to_vec(),
            total_a: w.total_a,
            total_b: w.total_b,
        }
    }
}

impl From<WindowData> for Window {
    fn from(d: WindowData) -> Window {
        Window {
            slots: d.slots.into_iter().collect(),
            head: 0,
            total_a: d.total_a,
            total_b: d.total_b,
        }
    }
}

impl Window {
    fn live(&self) -> &[(Millis, u32, u32)] {
        self.slots.get(self.head..).unwrap_or_default()
    }

    /// Adds an event at `t` and drops what can no longer be inside any
    /// window ending at or after the newest event seen.
    pub(crate) fn add(&mut self, t: Millis, a: u32, b: u32, width: Millis) {
        // The usual case: `t` is the newest ts and every slot is out of any
        // window ending at or after it (a key's calls are minutes apart).
        if self.live().last().is_none_or(|back| back.0 <= t - width) {
            self.slots.clear();
            self.slots.push((t, a, b));
            self.head = 0;
            self.total_a = u64::from(a);
            self.total_b = u64::from(b);
            return;
        }
        let head = self.head;
        match self.slots.get_mut(head..).and_then(|l| l.last_mut()) {
            Some(back) if back.0 == t => {
                back.1 += a;
                back.2 += b;
            }
            Some(back) if back.0 > t => {
                // Out of order: insert at its sorted place.
                let i = head + self.live().partition_point(|s| s.0 < t);
                match self.slots.get_mut(i) {
                    Some(s) if s.0 == t => {
                        s.1 += a;
                        s.2 += b;
                    }
                    _ => self.slots.insert(i, (t, a, b)),
                }
            }
            _ => self.slots.push((t, a, b)),
        }
        self.total_a += u64::from(a);
        self.total_b += u64::from(b);
        let newest = self.live().last().map_or(t, |s| s.0);
        while let Some(front) = self.slots.get(self.head) {
            if front.0 > newest - width {
                break;
            }
            self.total_a -= u64::from(front.1);
            self.total_b -= u64::from(front.2);
            self.head += 1;
        }
        if self.head * 2 >= self.slots.len() && self.head > 0 {
            self.slots.drain(..self.head);
            self.head = 0;
        }
    }

    /// Sums of both counters over `(t − width, t]`.
    pub(crate) fn sums(&self, t: Millis, width: Millis) -> (u64, u64) {
        let live = self.live();
        match (live.first(), live.last()) {
            (Some(o), Some(n)) if n.0 <= t && o.0 > t - width => (self.total_a, self.total_b),
            (None, _) | (_, None) => (0, 0),
            _ => {
                let lo = live.partition_point(|s| s.0 <= t - width);
                let hi = live.partition_point(|s| s.0 <= t);
                live.get(lo..hi)
                    .unwrap_or_default()
                    .iter()
                    .fold((0, 0), |(a, b), s| (a + u64::from(s.1), b + u64::from(s.2)))
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_open_at_t_minus_width() {
        let mut w = Window::default();
        w.add(0, 1, 0, 60_000);
        w.add(60_000, 1, 0, 60_000);
        assert_eq!(w.sums(60_000, 60_000), (1, 0));
        w.add(59_999 + 60_000, 1, 0, 60_000);
        assert_eq!(w.sums(119_999, 60_000), (2, 0));
    }

    #[test]
    fn window_handles_out_of_order_events() {
        let mut w = Window::default();
        w.add(10_000, 1, 0, 60_000);
        w.add(50_000, 1, 0, 60_000);
        w.add(20_000, 1, 1, 60_000);
        // window (−40s, 20s] holds 10s and 20s, not 50s
        assert_eq!(w.sums(20_000, 60_000), (2, 1));
        assert_eq!(w.sums(50_000, 60_000), (3, 1));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Adds in and out of order, and checkpoint round trips, leave every
        /// sum as a list of all events says: the events with ts in
        /// (t − w, t] that are not older than the newest ts seen minus w.
        #[test]
        fn window_sums_match_the_list_of_events(
            ops in proptest::collection::vec((0i64..40, 0u32..3, 0u32..2, proptest::bool::ANY), 1..120),
        ) {
            const W: Millis = 60;
            let mut w = Window::default();
            let mut events: Vec<(Millis, u32, u32)> = Vec::new();
            let mut t: Millis = 1_000;
            for (dt, a, b, back) in ops {
                // Mostly forward, sometimes a little back in time.
                t = if back { t - dt / 4 } else { t + dt };
                w.add(t, a, b, W);
                events.push((t, a, b));
                let newest = events.iter().map(|e| e.0).max().unwrap_or(t);
                for q in [t, t - 1, t + 30, newest] {
                    let lo = (q - W).max(newest - W);
                    let want = events
                        .iter()
                        .filter(|e| e.0 > lo && e.0 <= q)
                        .fold((0, 0), |(x, y), e| (x + u64::from(e.1), y + u64::from(e.2)));
                    proptest::prop_assert_eq!(w.sums(q, W), want, "at {} after {:?}", q, events);
                }
                if a == 2 {
                    let bytes = postcard::to_stdvec(&w).expect("serializes");
                    w = postcard::from_bytes(&bytes).expect("deserializes");
                }
            }
        }
    }
}
