//! The building blocks of detector state: keyed maps with LRU order, idle
//! expiry and a size cap; event-time sliding windows; realert cooldowns.
//!
//! All of it is plain data (serde) so the daemon can checkpoint it, and none
//! of it reads a clock: time is always the event time passed in.

use std::collections::VecDeque;
use std::fmt;
use std::hash::BuildHasher;
use std::marker::PhantomData;

use hashbrown::HashTable;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::{Event, Field, Millis, Text};

/// A rule's per-key state, ordered by last touch (front = least recently
/// seen), so both idle expiry and the `max_keys` cap pop from the front.
///
/// One touch per event per rule makes this the engine's hottest structure,
/// so it is laid out for that: the entries live in one dense `Vec`, linked
/// into LRU order by `u32` indices, and a `HashTable` of those indices finds
/// a key with one hash (foldhash, randomly seeded: keys come from log lines)
/// and one probe. Keys up to 24 bytes are stored inline. A removed entry's
/// place is filled by the last one, so the `Vec` stays dense.
///
/// Serialized as a map from key to [`Entry`] in LRU order, front first.
#[derive(Clone)]
pub struct KeyedState<V> {
    /// Index into `nodes` of every key, by the key's hash.
    index: HashTable<u32>,
    nodes: Vec<Node<V>>,
    /// Least and most recently seen node, [`NIL`] when empty.
    head: u32,
    tail: u32,
    hasher: foldhash::fast::RandomState,
}

#[derive(Clone)]
struct Node<V> {
    key: Text,
    /// The key's hash, kept so growing the table never rehashes keys.
    hash: u64,
    prev: u32,
    next: u32,
    entry: Entry<V>,
}

/// No node: the end of the LRU list.
const NIL: u32 = u32::MAX;

/// The most keys one map can hold, whatever `max_keys` says (indices are
/// `u32`, and [`NIL`] is one of them).
const MAX_INDEXED: usize = (u32::MAX - 1) as usize;

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

impl<V> Default for KeyedState<V> {
    fn default() -> Self {
        KeyedState {
            index: HashTable::new(),
            nodes: Vec::new(),
            head: NIL,
            tail: NIL,
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl<V: Default> KeyedState<V> {
    pub fn new() -> Self {
        Self::default()
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
        let hash = self.hasher.hash_one(key);
        if let Some(i) = self.find(hash, key) {
            self.unlink(i);
            self.link_back(i);
            let entry = &mut self.nodes[i as usize].entry;
            if let Some(idle) = idle
                && t.saturating_sub(entry.last_seen) > idle
            {
                entry.value = V::default();
            }
            entry.last_seen = entry.last_seen.max(t);
            return (entry, touch);
        }
        if self.nodes.len() >= max_keys.clamp(1, MAX_INDEXED) {
            self.pop_front();
            touch.evicted = true;
        }
        touch.inserted = true;
        let i = self.push_back(
            key.into(),
            hash,
            Entry {
                last_seen: t,
                value: V::default(),
            },
        );
        (&mut self.nodes[i as usize].entry, touch)
    }
}

impl<V> KeyedState<V> {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.find(self.hasher.hash_one(key), key).is_some()
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Entry<V>> {
        let i = self.find(self.hasher.hash_one(key), key)?;
        Some(&mut self.nodes[i as usize].entry)
    }

    /// Drops keys idle longer than `idle` at watermark `now` (memory only:
    /// `touch` already resets idle state exactly). Returns how many went.
    pub fn expire(&mut self, now: Millis, idle: Millis) -> usize {
        let mut n = 0;
        while let Some(front) = self.nodes.get(self.head as usize) {
            if now.saturating_sub(front.entry.last_seen) > idle {
                self.pop_front();
                n += 1;
            } else {
                break;
            }
        }
        n
    }

    /// Entries from least to most recently seen.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry<V>)> {
        let mut at = self.head;
        std::iter::from_fn(move || {
            let node = self.nodes.get(at as usize)?;
            at = node.next;
            Some((node.key.as_str(), &node.entry))
        })
    }

    fn find(&self, hash: u64, key: &str) -> Option<u32> {
        let nodes = &self.nodes;
        self.index
            .find(hash, |&i| nodes[i as usize].key == key)
            .copied()
    }

    /// Appends a key known to be absent; returns its index.
    fn push_back(&mut self, key: Text, hash: u64, entry: Entry<V>) -> u32 {
        let i = self.nodes.len() as u32;
        self.nodes.push(Node {
            key,
            hash,
            prev: NIL,
            next: NIL,
            entry,
        });
        let nodes = &self.nodes;
        self.index
            .insert_unique(hash, i, |&j| nodes[j as usize].hash);
        self.link_back(i);
        i
    }

    fn link_back(&mut self, i: u32) {
        let old_tail = self.tail;
        {
            let node = &mut self.nodes[i as usize];
            node.prev = old_tail;
            node.next = NIL;
        }
        match self.nodes.get_mut(old_tail as usize) {
            Some(t) => t.next = i,
            None => self.head = i,
        }
        self.tail = i;
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let node = &self.nodes[i as usize];
            (node.prev, node.next)
        };
        match self.nodes.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.nodes.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn pop_front(&mut self) {
        if self.head != NIL {
            self.remove_at(self.head);
        }
    }

    /// Removes node `i`; the last node moves into its place.
    fn remove_at(&mut self, i: u32) {
        self.unlink(i);
        let hash = self.nodes[i as usize].hash;
        if let Ok(slot) = self.index.find_entry(hash, |&j| j == i) {
            slot.remove();
        }
        let last = (self.nodes.len() - 1) as u32;
        if i != last {
            let (hash, prev, next) = {
                let node = &self.nodes[last as usize];
                (node.hash, node.prev, node.next)
            };
            if let Some(slot) = self.index.find_mut(hash, |&j| j == last) {
                *slot = i;
            }
            match self.nodes.get_mut(prev as usize) {
                Some(p) => p.next = i,
                None => self.head = i,
            }
            match self.nodes.get_mut(next as usize) {
                Some(n) => n.prev = i,
                None => self.tail = i,
            }
        }
        self.nodes.swap_remove(i as usize);
    }
}

impl<V: fmt::Debug> fmt::Debug for KeyedState<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Serialize> Serialize for KeyedState<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, e) in self.iter() {
            map.serialize_entry(k, e)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for KeyedState<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = KeyedState<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of keys to entries, least recently seen first")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut st = KeyedState::default();
                while let Some((key, entry)) = map.next_entry::<Text, Entry<V>>()? {
                    // A key twice (a hand-edited checkpoint): the later
                    // place in the order wins, as a re-touch would.
                    let hash = st.hasher.hash_one(key.as_str());
                    if let Some(i) = st.find(hash, &key) {
                        st.remove_at(i);
                    }
                    if st.len() >= MAX_INDEXED {
                        st.pop_front();
                    }
                    st.push_back(key, hash, entry);
                }
                Ok(st)
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
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

    /// The reference the map is held to: a `Vec` in LRU order.
    #[derive(Default)]
    struct Model(Vec<(String, Millis, u32)>);

    impl Model {
        fn touch(
            &mut self,
            key: &str,
            t: Millis,
            idle: Option<Millis>,
            max: usize,
        ) -> (u32, Touch) {
            let mut touch = Touch::default();
            let (mut value, mut last) = (0, t);
            if let Some(i) = self.0.iter().position(|(k, _, _)| k == key) {
                let (_, l, v) = self.0.remove(i);
                (value, last) = (v, l.max(t));
                if idle.is_some_and(|idle| t.saturating_sub(l) > idle) {
                    value = 0;
                }
            } else {
                touch.inserted = true;
                if self.0.len() >= max.max(1) {
                    self.0.remove(0);
                    touch.evicted = true;
                }
            }
            self.0.push((key.to_string(), last, value + 1));
            (value + 1, touch)
        }

        fn expire(&mut self, now: Millis, idle: Millis) -> usize {
            let n = self
                .0
                .iter()
                .take_while(|(_, l, _)| now.saturating_sub(*l) > idle)
                .count();
            self.0.drain(..n);
            n
        }
    }

    fn contents(s: &KeyedState<u32>) -> Vec<(String, Millis, u32)> {
        s.iter()
            .map(|(k, e)| (k.to_string(), e.last_seen, e.value))
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Touches (counting per key), expiries, caps and checkpoint round
        /// trips in any order leave the map as the model: same keys, same
        /// LRU order, same values, same eviction and insertion reports.
        #[test]
        fn keyed_state_behaves_as_an_lru_list(
            ops in proptest::collection::vec((0u8..4, 0u8..12, 0i64..50), 1..200),
            max in 1usize..8,
        ) {
            let mut s: KeyedState<u32> = KeyedState::new();
            let mut m = Model::default();
            let mut t = 0;
            for (op, key, dt) in ops {
                t += dt;
                let key = format!("k{key}");
                match op {
                    0 | 1 => {
                        let (e, touch) = s.touch(&key, t, Some(60), max);
                        e.value += 1;
                        let want = m.touch(&key, t, Some(60), max);
                        proptest::prop_assert_eq!((e.value, touch), want);
                    }
                    2 => proptest::prop_assert_eq!(s.expire(t, 30), m.expire(t, 30)),
                    _ => {
                        let bytes = postcard::to_stdvec(&s).expect("serializes");
                        s = postcard::from_bytes(&bytes).expect("deserializes");
                    }
                }
                proptest::prop_assert_eq!(contents(&s), m.0.clone());
                proptest::prop_assert_eq!(s.len(), m.0.len());
                for (k, _, v) in &m.0 {
                    proptest::prop_assert!(s.contains(k));
                    proptest::prop_assert_eq!(s.get_mut(k).map(|e| e.value), Some(*v));
                }
            }
        }
    }

    #[test]
    fn keyed_state_serializes_as_a_map_in_lru_order() {
        let mut s: KeyedState<u32> = KeyedState::new();
        s.touch("b", 1, None, 10).0.value = 2;
        s.touch("a", 2, None, 10).0.value = 1;
        s.touch("a-much-longer-key-than-fits-inline", 3, None, 10)
            .0
            .value = 3;
        s.touch("b", 4, None, 10);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"a":{"last_seen":2,"value":1},"a-much-longer-key-than-fits-inline":{"last_seen":3,"value":3},"b":{"last_seen":4,"value":2}}"#
        );
        let back: KeyedState<u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(contents(&back), contents(&s));
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
