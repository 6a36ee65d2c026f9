//! The building blocks of detector state: keyed maps with LRU order, idle
//! expiry and a size cap; event-time sliding windows; realert cooldowns.
//!
//! All of it is plain data (serde) so the daemon can checkpoint it, and none
//! of it reads a clock: time is always the event time passed in.

use hashlink::LinkedHashMap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use crate::event::{Event, Field, Millis};

/// A rule's per-key state, ordered by last touch (front = least recently
/// seen), so both idle expiry and the `max_keys` cap pop from the front.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeyedState<V> {
    map: LinkedHashMap<String, Entry<V>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry<V> {
    /// Event time of the last event that touched this key.
    pub last_seen: Millis,
    pub value: V,
}

/// What happened to the map while touching a key; the caller counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Touch {
    /// A key was evicted because the map was full.
    pub evicted: bool,
    /// The key was not in the map (it was created).
    pub inserted: bool,
}

impl<V: Default> KeyedState<V> {
    pub fn new() -> Self {
        KeyedState {
            map: LinkedHashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The state for `key` at event time `t`, created (or reset, when it has
    /// been idle longer than `idle`) as needed, and moved to the back of the
    /// LRU order. `idle = None` means state never expires by time.
    pub fn touch(
        &mut self,
        key: &str,
        t: Millis,
        idle: Option<Millis>,
        max_keys: usize,
    ) -> (&mut Entry<V>, Touch) {
        let mut touch = Touch::default();
        if self.map.contains_key(key) {
            // Move to back, then check idleness.
            let entry = self
                .map
                .to_back(key)
                .expect("key is present: checked just above");
            if let Some(idle) = idle
                && t.saturating_sub(entry.last_seen) > idle
            {
                entry.value = V::default();
            }
            entry.last_seen = entry.last_seen.max(t);
            return (entry, touch);
        }
        if self.map.len() >= max_keys.max(1) {
            self.map.pop_front();
            touch.evicted = true;
        }
        touch.inserted = true;
        self.map.insert(
            key.to_owned(),
            Entry {
                last_seen: t,
                value: V::default(),
            },
        );
        let entry = self.map.get_mut(key).expect("entry inserted just above");
        (entry, touch)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Entry<V>> {
        self.map.get_mut(key)
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.map.remove(key).map(|e| e.value)
    }

    /// Drops keys idle longer than `idle` at watermark `now` (memory only:
    /// `touch` already resets idle state exactly). Returns how many went.
    pub fn expire(&mut self, now: Millis, idle: Millis) -> usize {
        let mut n = 0;
        while let Some((_, e)) = self.map.front() {
            if now.saturating_sub(e.last_seen) > idle {
                self.map.pop_front();
                n += 1;
            } else {
                break;
            }
        }
        n
    }
}

/// Counts of events per millisecond in an event-time window `(t − w, t]`.
/// Equal timestamps share one slot, so a window never holds more slots than
/// it has milliseconds, however hard a key floods.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Window {
    /// `(ts, a, b)` sorted by ts; `a` and `b` are two counters (events and,
    /// for denial rates, denials).
    slots: VecDeque<(Millis, u32, u32)>,
    total_a: u64,
    total_b: u64,
}

impl Window {
    /// Adds an event at `t` and drops what can no longer be inside any
    /// window ending at or after the newest event seen.
    pub fn add(&mut self, t: Millis, a: u32, b: u32, width: Millis) {
        match self.slots.back_mut() {
            Some(back) if back.0 == t => {
                back.1 += a;
                back.2 += b;
            }
            Some(back) if back.0 > t => {
                // Out of order: insert at its sorted place.
                let i = self.slots.partition_point(|s| s.0 < t);
                if self.slots.get(i).is_some_and(|s| s.0 == t) {
                    self.slots[i].1 += a;
                    self.slots[i].2 += b;
                } else {
                    self.slots.insert(i, (t, a, b));
                }
            }
            _ => self.slots.push_back((t, a, b)),
        }
        self.total_a += u64::from(a);
        self.total_b += u64::from(b);
        let newest = self.slots.back().map(|s| s.0).unwrap_or(t);
        while let Some(front) = self.slots.front() {
            if front.0 <= newest - width {
                self.total_a -= u64::from(front.1);
                self.total_b -= u64::from(front.2);
                self.slots.pop_front();
            } else {
                break;
            }
        }
    }

    /// Sums of both counters over `(t − width, t]`.
    pub fn sums(&self, t: Millis, width: Millis) -> (u64, u64) {
        let newest = self.slots.back().map(|s| s.0);
        let oldest = self.slots.front().map(|s| s.0);
        match (oldest, newest) {
            (Some(o), Some(n)) if n <= t && o > t - width => (self.total_a, self.total_b),
            (None, _) | (_, None) => (0, 0),
            _ => {
                let lo = self.slots.partition_point(|s| s.0 <= t - width);
                let hi = self.slots.partition_point(|s| s.0 <= t);
                self.slots
                    .range(lo..hi)
                    .fold((0, 0), |(a, b), s| (a + u64::from(s.1), b + u64::from(s.2)))
            }
        }
    }
}

/// Realert bookkeeping for one (rule, key): SPEC §3's cooldown.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Cooldown {
    pub last_alert: Option<Millis>,
    pub suppressed: u64,
}

impl Cooldown {
    /// Decides a hit at `t`: `Some(suppressed count to report)` when it
    /// alerts, `None` when it is suppressed (and counted). `realert = None`
    /// means never alert again for this key.
    pub fn hit(&mut self, t: Millis, realert: Option<Millis>) -> Option<u64> {
        if let Some(last) = self.last_alert {
            let quiet = match realert {
                None => true,
                Some(r) => t < last.saturating_add(r),
            };
            if quiet {
                self.suppressed += 1;
                return None;
            }
        }
        let n = self.suppressed;
        self.suppressed = 0;
        self.last_alert = Some(t);
        Some(n)
    }
}

/// Builds the state-map key of an event for the given key fields: the value
/// itself for one field; for several, values joined by U+001F with `\` and
/// U+001F escaped, so distinct tuples never collide.
pub fn state_key(ev: &Event, fields: &[Field], buf: &mut String) {
    buf.clear();
    if let [f] = fields {
        buf.push_str(ev.key_value(*f));
        return;
    }
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            buf.push('\u{1f}');
        }
        let v = ev.key_value(*f);
        if memchr::memchr2(b'\\', 0x1f, v.as_bytes()).is_none() {
            buf.push_str(v);
            continue;
        }
        for c in v.chars() {
            match c {
                '\\' => buf.push_str("\\\\"),
                '\u{1f}' => buf.push_str("\\u"),
                c => buf.push(c),
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

    #[test]
    fn cooldown_alerts_again_at_exactly_realert() {
        let mut c = Cooldown::default();
        assert_eq!(c.hit(0, Some(600_000)), Some(0));
        assert_eq!(c.hit(1, Some(600_000)), None);
        assert_eq!(c.hit(599_999, Some(600_000)), None);
        assert_eq!(c.hit(600_000, Some(600_000)), Some(2));
        assert_eq!(c.hit(600_001, None), None);
    }

    #[test]
    fn keyed_state_evicts_least_recently_seen_and_resets_idle() {
        let mut s: KeyedState<u32> = KeyedState::new();
        s.touch("a", 0, Some(10), 2).0.value = 1;
        s.touch("b", 1, Some(10), 2).0.value = 2;
        s.touch("a", 2, Some(10), 2);
        let (_, t) = s.touch("c", 3, Some(10), 2);
        assert!(t.evicted);
        assert!(!s.contains("b"));
        assert_eq!(s.touch("a", 12, Some(10), 2).0.value, 1);
        assert_eq!(s.touch("a", 23, Some(10), 2).0.value, 0);
    }

    #[test]
    fn multi_field_keys_do_not_collide() {
        let a = Event {
            server_name: Some("x\u{1f}y".into()),
            tool_name: Some("z".into()),
            ..Event::default()
        };
        let b = Event {
            server_name: Some("x".into()),
            tool_name: Some("y\u{1f}z".into()),
            ..Event::default()
        };
        let (mut ka, mut kb) = (String::new(), String::new());
        state_key(&a, &[Field::ServerName, Field::ToolName], &mut ka);
        state_key(&b, &[Field::ServerName, Field::ToolName], &mut kb);
        assert_ne!(ka, kb);
    }
}
