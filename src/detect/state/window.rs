//! [`Window`]: counts of events in an event-time sliding window `(t − w, t]`,
//! kept per key by the counting rules (two counters, for denial rates).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::event::Millis;

/// Counts of events per millisecond in an event-time window `(t − w, t]`.
/// Equal timestamps share one slot, so a window never holds more slots than
/// it has milliseconds, however hard a key floods.
///
/// Every key of the counting rules holds one, and most keys hold a single
/// slot (a key's events are further apart than the window), so that case
/// is the window itself: 24 bytes, no allocation, no pointer to chase.
/// Only a key with events in two or more milliseconds of one window moves
/// its slots to the heap ([`Many`]); it comes back inline when its events
/// are again further apart than the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "WindowData", into = "WindowData")]
pub(crate) struct Window(Repr);

#[derive(Clone, Debug, Default)]
enum Repr {
    #[default]
    Empty,
    /// One slot: `(ts, a, b)`.
    One(Millis, u32, u32),
    Many(Box<Many>),
}

/// The slots of a window with more than one, `(ts, a, b)` sorted by ts, and
/// their totals; `a` and `b` are two counters (events and, for denial
/// rates, denials).
#[derive(Clone, Debug)]
struct Many {
    slots: VecDeque<(Millis, u32, u32)>,
    total_a: u64,
    total_b: u64,
}

/// A window as checkpoints store it: its slots and totals.
#[derive(Serialize, Deserialize)]
struct WindowData {
    slots: Vec<(Millis, u32, u32)>,
    total_a: u64,
    total_b: u64,
}

impl From<Window> for WindowData {
    fn from(w: Window) -> WindowData {
        match w.0 {
            Repr::Empty => WindowData {
                slots: Vec::new(),
                total_a: 0,
                total_b: 0,
            },
            Repr::One(t, a, b) => WindowData {
                slots: vec![(t, a, b)],
                total_a: u64::from(a),
                total_b: u64::from(b),
            },
            Repr::Many(m) => WindowData {
                slots: m.slots.into(),
                total_a: m.total_a,
                total_b: m.total_b,
            },
        }
    }
}

impl From<WindowData> for Window {
    fn from(d: WindowData) -> Window {
        Window(match d.slots[..] {
            [] => Repr::Empty,
            [(t, a, b)] => Repr::One(t, a, b),
            _ => Repr::Many(Box::new(Many {
                slots: d.slots.into(),
                total_a: d.total_a,
                total_b: d.total_b,
            })),
        })
    }
}

impl Window {
    /// Adds an event at `t` and drops what can no longer be inside any
    /// window ending at or after the newest event seen.
    pub(crate) fn add(&mut self, t: Millis, a: u32, b: u32, width: Millis) {
        let floor = t.saturating_sub(width);
        match &mut self.0 {
            // The usual case: `t` is the newest ts and every slot is out of
            // any window ending at or after it (a key's calls are minutes
            // apart).
            Repr::Empty => self.0 = Repr::One(t, a, b),
            Repr::One(ts, _, _) if *ts <= floor => self.0 = Repr::One(t, a, b),
            Repr::Many(m) if m.slots.back().is_none_or(|back| back.0 <= floor) => {
                self.0 = Repr::One(t, a, b)
            }
            Repr::One(ts, x, y) if *ts == t => {
                *x = x.saturating_add(a);
                *y = y.saturating_add(b);
            }
            Repr::One(ts, x, y) => {
                let mut m = Many {
                    slots: VecDeque::from([(*ts, *x, *y)]),
                    total_a: u64::from(*x),
                    total_b: u64::from(*y),
                };
                m.add(t, a, b, width);
                self.0 = m.into_repr();
            }
            Repr::Many(m) => {
                m.add(t, a, b, width);
                if m.slots.len() < 2 {
                    let m = std::mem::take(&mut self.0);
                    if let Repr::Many(m) = m {
                        self.0 = m.into_repr();
                    }
                }
            }
        }
    }

    /// Sums of both counters over `(t − width, t]`.
    pub(crate) fn sums(&self, t: Millis, width: Millis) -> (u64, u64) {
        let inside = |ts: Millis| ts <= t && ts > t.saturating_sub(width);
        match &self.0 {
            Repr::Empty => (0, 0),
            Repr::One(ts, a, b) if inside(*ts) => (u64::from(*a), u64::from(*b)),
            Repr::One(..) => (0, 0),
            Repr::Many(m) => m.sums(t, width),
        }
    }
}

impl Many {
    /// Adds an event (not out of the window: `Window::add` took that
    /// case) and drops the slots no window ending at or after the newest
    /// can hold.
    fn add(&mut self, t: Millis, a: u32, b: u32, width: Millis) {
        let slots = &mut self.slots;
        match slots.back_mut() {
            Some(back) if back.0 == t => {
                back.1 = back.1.saturating_add(a);
                back.2 = back.2.saturating_add(b);
            }
            Some(back) if back.0 > t => {
                // Out of order: at its sorted place.
                let i = slots.partition_point(|s| s.0 < t);
                match slots.get_mut(i) {
                    Some(s) if s.0 == t => {
                        s.1 = s.1.saturating_add(a);
                        s.2 = s.2.saturating_add(b);
                    }
                    _ => slots.insert(i, (t, a, b)),
                }
            }
            _ => slots.push_back((t, a, b)),
        }
        self.total_a += u64::from(a);
        self.total_b += u64::from(b);
        let newest = slots.back().map_or(t, |s| s.0);
        while let Some(front) = slots.front() {
            if front.0 > newest.saturating_sub(width) {
                break;
            }
            self.total_a -= u64::from(front.1);
            self.total_b -= u64::from(front.2);
            slots.pop_front();
        }
    }

    /// What is left, inline when it is one slot or none.
    fn into_repr(self) -> Repr {
        match self.slots.len() {
            0 => Repr::Empty,
            1 => {
                let (t, a, b) = self.slots[0];
                Repr::One(t, a, b)
            }
            _ => Repr::Many(Box::new(self)),
        }
    }

    fn sums(&self, t: Millis, width: Millis) -> (u64, u64) {
        let floor = t.saturating_sub(width);
        match (self.slots.front(), self.slots.back()) {
            (Some(o), Some(n)) if n.0 <= t && o.0 > floor => (self.total_a, self.total_b),
            (None, _) | (_, None) => (0, 0),
            _ => {
                let lo = self.slots.partition_point(|s| s.0 <= floor);
                let hi = self.slots.partition_point(|s| s.0 <= t);
                (self.slots.range(lo..hi.max(lo)))
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
    fn a_window_of_one_slot_is_24_bytes_and_checkpoints_as_before() {
        assert_eq!(std::mem::size_of::<Window>(), 24);
        let mut w = Window::default();
        w.add(5, 2, 1, 60);
        assert!(matches!(w.0, Repr::One(5, 2, 1)));
        let bytes = postcard::to_stdvec(&w).expect("serializes");
        let before = WindowData {
            slots: vec![(5, 2, 1)],
            total_a: 2,
            total_b: 1,
        };
        assert_eq!(bytes, postcard::to_stdvec(&before).expect("serializes"));
        // Two slots go to the heap; once the first has left, it is inline again.
        w.add(30, 1, 0, 60);
        assert!(matches!(w.0, Repr::Many(_)));
        assert_eq!(w.sums(30, 60), (3, 1));
        w.add(70, 1, 0, 60);
        assert!(matches!(w.0, Repr::Many(_)));
        w.add(200, 1, 0, 60);
        assert!(matches!(w.0, Repr::One(200, 1, 0)));
        assert_eq!(w.sums(200, 60), (1, 0));
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
