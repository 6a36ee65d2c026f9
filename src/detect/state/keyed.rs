//! [`KeyedState`]: a rule's per-key state, with LRU order, idle expiry and a
//! size cap, serialized as a map for checkpoints.
//!
//! The engine's hottest structure (one touch per event per rule), so most
//! of this file is about keeping a touch to the few memory loads it cannot
//! avoid; the type's own doc tells how.

use std::collections::VecDeque;
use std::fmt;
use std::hash::BuildHasher;
use std::marker::PhantomData;

use hashbrown::HashTable;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Snapshot;
use super::key::{same_key, single_key};
use super::slots::Slots;
use crate::event::{Event, Field, Millis, Text};

/// A rule's per-key state, ordered by last touch (front = least recently
/// seen), so both idle expiry and the `max_keys` cap take from the front.
///
/// One touch per event per rule makes this the engine's hottest structure,
/// and with thousands of keys its cost is cache misses, not instructions:
/// every load of memory not touched lately stalls the event. So a touch
/// loads only what it cannot avoid: one hash (foldhash, randomly seeded:
/// keys come from log lines), one probe of a `HashTable` of slot indices
/// (small: it stays cached), and the key's slot.
///
/// The LRU order is a queue with one entry per touch, `order`: the entry of
/// the touch stamped `s` sits at `s − first`, and holds the key's slot and
/// last-seen time as of that touch. A touch of a known key marks the key's
/// previous entry dead (a store, which does not stall) and appends a new
/// one. So the front is read without visiting any slot: dead entries are
/// dropped, and a live entry's time is its key's last-seen time, so idle
/// expiry visits a slot only to remove it. (A linked list would unlink every
/// touched key from its neighbours: two more random loads per touch.) Once
/// dead entries outnumber live keys, the queue is compacted and the live
/// slots restamped, so it holds at most about two entries per key.
///
/// Slots live in chunked [`Slots`] (freed places reused before they
/// grow), not in the hash table: a table that keys come and go in keeps
/// tombstones and grows to four times its keys, which for nodes of a
/// hundred bytes doubled the memory and the cache footprint.
///
/// A map that is never expired (the new-tool seen set, say) needs the order
/// only once it is full, so until the order is first needed
/// ([`KeyedState::expire`], an eviction) a touch only stamps its slot, and
/// the queue is then built from the stamps.
///
/// Keys up to 24 bytes are stored inline. Serialized as a map from key to
/// [`Entry`] in LRU order, front first.
///
/// A [`Snapshot`] (the daemon's checkpoint) costs a copy of the index, not
/// of the nodes.
#[derive(Clone)]
pub(crate) struct KeyedState<V> {
    /// Slot of every key, by the key's hash.
    index: HashTable<u32>,
    /// Live keys and free places (reused before the slots grow).
    slots: Slots<Node<V>>,
    free: Vec<u32>,
    len: usize,
    lru: Lru,
    hasher: foldhash::fast::RandomState,
}

impl<V: Clone> Snapshot for KeyedState<V> {
    /// Lends the slots (see [`Slots::lend`]) and leaves out the queue,
    /// which the snapshot rebuilds from the stamps if it is ever touched.
    fn snapshot(&mut self) -> Self {
        KeyedState {
            index: self.index.clone(),
            slots: self.slots.lend(),
            free: self.free.clone(),
            len: self.len,
            lru: Lru {
                order: VecDeque::new(),
                first: self.lru.clock + 1,
                ordered: false,
                clock: self.lru.clock,
            },
            hasher: self.hasher.clone(),
        }
    }
}

/// The LRU queue of a [`KeyedState`].
#[derive(Clone)]
struct Lru {
    /// One entry per touch since the front's, oldest first (kept only once
    /// `ordered`).
    order: VecDeque<Touched>,
    /// Stamp of `order[0]`.
    first: u64,
    /// Whether `order` is kept (see above).
    ordered: bool,
    /// Stamp of the latest touch; once `ordered`, `first + order.len() ==
    /// clock + 1`.
    clock: u64,
}

#[derive(Clone)]
struct Node<V> {
    key: Text,
    /// The key's hash (its high 32 bits), kept so growing the table never
    /// rehashes keys; the table places it by [`spread`].
    hash: u32,
    /// Stamp of this key's latest touch: the low 32 bits of the map's
    /// clock (see [`RENUMBER`] for why that is enough).
    stamp: u32,
    entry: Entry<V>,
}

/// One touch in the LRU queue.
#[derive(Clone, Copy, Debug)]
struct Touched {
    /// Slot of the touched key.
    slot: u32,
    /// The key was touched again later (or removed): this entry is void.
    dead: bool,
    /// The key's last-seen time after this touch.
    seen: Millis,
}

/// The most keys one map can hold, whatever `max_keys` says: slots are
/// numbered by `u32`, and the LRU queue (at most two entries a key and
/// the slack) must stay shorter than 2³² so that 32-bit stamps name its
/// entries.
const MAX_INDEXED: usize = 1 << 30;

/// How often (in touches) a map that keeps no queue renumbers its stamps.
/// A node's stamp is the low 32 bits of the clock at its latest touch, and
/// the order of two stamps is that of their ages, `clock − stamp` modulo
/// 2³², which is right while every live stamp is younger than 2³²
/// touches. A queue keeps them that young (its entries are the stamps);
/// without one, a key touched once and never again would age past that,
/// so every `RENUMBER` touches the live stamps are renumbered in their
/// order, youngest at the clock. Tests start the clock just below 2³²
/// and renumber often.
#[cfg(not(test))]
const RENUMBER: u64 = 1 << 31;
#[cfg(test)]
const RENUMBER: u64 = 16;

/// The clock of a new map (see [`RENUMBER`]).
#[cfg(not(test))]
const CLOCK_START: u64 = 0;
#[cfg(test)]
const CLOCK_START: u64 = u32::MAX as u64 - 40;

/// Where the table places a key of 32-bit hash `h`: a multiplication by an
/// odd constant, so the top bits (the table's tag) depend on every bit
/// of `h` and the low bits (its bucket) stay as random as `h`'s.
#[inline]
fn spread(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Age of `stamp` at `clock`, in touches (modulo 2³², see [`RENUMBER`]).
#[inline]
fn age(clock: u64, stamp: u32) -> u32 {
    (clock as u32).wrapping_sub(stamp)
}

/// Dead entries tolerated in `order` beyond one per live key before it is
/// compacted. Compaction visits every live slot, so the slack keeps it
/// rare for small maps, and a large map compacts at most once per as many
/// touches as it has keys (16 bytes an entry: the queue costs at most ~32
/// bytes a key). Tests compact often.
#[cfg(not(test))]
const ORDER_SLACK: usize = 4096;
#[cfg(test)]
const ORDER_SLACK: usize = 3;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Entry<V> {
    /// Event time of the last event that touched this key.
    pub(crate) last_seen: Millis,
    pub(crate) value: V,
}

/// What happened to the map while touching a key; the caller counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Touch {
    /// A key was evicted because the map was full.
    pub(crate) evicted: bool,
    /// The key was not in the map (it was created).
    pub(crate) inserted: bool,
}

impl<V> Default for KeyedState<V> {
    fn default() -> Self {
        KeyedState {
            index: HashTable::new(),
            slots: Slots::default(),
            free: Vec::new(),
            len: 0,
            lru: Lru {
                order: VecDeque::new(),
                first: CLOCK_START + 1,
                ordered: false,
                clock: CLOCK_START,
            },
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl<V: Default + Clone> KeyedState<V> {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The state for `key` at event time `t`, created (or reset, when it has
    /// been idle longer than `idle`) as needed, and moved to the back of the
    /// LRU order. `idle = None` means state never expires by time.
    pub(crate) fn touch(
        &mut self,
        key: &str,
        t: Millis,
        idle: Option<Millis>,
        max_keys: usize,
    ) -> (&mut Entry<V>, Touch) {
        if self.lru.ordered && self.lru.order.len() > 2 * self.len + ORDER_SLACK {
            self.compact();
        }
        // Each touch moves the clock by one, so this runs once per RENUMBER.
        if !self.lru.ordered && self.lru.clock.is_multiple_of(RENUMBER) {
            self.renumber();
        }
        let mut touch = Touch::default();
        let hash = self.hash(key);
        let (i, found) = match self.find(hash, key) {
            Some(i) => (i, true),
            None => {
                if self.len >= max_keys.clamp(1, MAX_INDEXED) {
                    self.pop_front();
                    touch.evicted = true;
                }
                touch.inserted = true;
                let entry = Entry {
                    last_seen: t,
                    value: V::default(),
                };
                (self.insert_slot(key.into(), hash, entry), false)
            }
        };
        let Some(node) = self.slots.get_mut(i) else {
            unreachable!("slot {i} was filled or found just above")
        };
        if found {
            self.lru.kill(node.stamp);
            self.lru.clock += 1;
            node.stamp = self.lru.clock as u32;
        }
        let entry = &mut node.entry;
        if let Some(idle) = idle
            && t.saturating_sub(entry.last_seen) > idle
        {
            entry.value = V::default();
        }
        entry.last_seen = entry.last_seen.max(t);
        self.lru.push(i, entry.last_seen);
        (entry, touch)
    }
}

impl<V: Clone> KeyedState<V> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Starts loading the node of `key` into the cache, without waiting
    /// for it: the engine warms every rule's node before the rules run,
    /// so their cache misses overlap instead of following one another.
    #[inline]
    pub(crate) fn warm(&self, key: &str) {
        for &i in self.index.iter_hash(spread(self.hash(key))) {
            self.slots.prefetch(i);
        }
    }

    /// [`KeyedState::warm`] for the key of `ev` by `fields` (a key of one
    /// field: a joined key would need a buffer, and is not warmed).
    #[inline]
    pub(crate) fn warm_event(&self, ev: &Event, fields: &[Field]) {
        if let Some(key) = single_key(ev, fields) {
            self.warm(key);
        }
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.find(self.hash(key), key).is_some()
    }

    /// The entry of `key`, to read or change its value (`last_seen` is the
    /// map's: it orders the keys, so it must not be changed here).
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Entry<V>> {
        let i = self.find(self.hash(key), key)?;
        self.slots.get_mut(i).map(|n| &mut n.entry)
    }

    /// Forgets `key` (a silence that fired: its state has done its work).
    pub(crate) fn remove(&mut self, key: &str) {
        if let Some(i) = self.find(self.hash(key), key) {
            self.remove_slot(i);
        }
    }

    /// Drops keys idle longer than `idle` at watermark `now` (memory only:
    /// `touch` already resets idle state exactly). Returns how many went.
    pub(crate) fn expire(&mut self, now: Millis, idle: Millis) -> usize {
        let mut n = 0;
        while let Some(front) = self.front() {
            if now.saturating_sub(front.seen) <= idle {
                break;
            }
            self.pop_front();
            n += 1;
        }
        n
    }

    /// Entries from least to most recently seen: `order`'s live entries
    /// once it is kept, else the live slots sorted by stamp (the same
    /// order: `order` follows the stamps).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Entry<V>)> {
        let live: Vec<u32> = if self.lru.ordered {
            (self.lru.order.iter())
                .filter(|e| !e.dead)
                .map(|e| e.slot)
                .collect()
        } else {
            self.oldest_first()
        };
        (live.into_iter())
            .filter_map(|i| self.slots.get(i))
            .map(|n| (n.key.as_str(), &n.entry))
    }

    /// The stored hash of `key` (see [`Node::hash`]).
    #[inline]
    fn hash(&self, key: &str) -> u32 {
        (self.hasher.hash_one(key) >> 32) as u32
    }

    #[inline]
    fn find(&self, hash: u32, key: &str) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(spread(hash), |&i| {
                slots
                    .get(i)
                    .is_some_and(|n| n.hash == hash && same_key(&n.key, key))
            })
            .copied()
    }

    /// The live entry of the least recently touched key, dropping dead
    /// entries on the way.
    #[inline]
    fn front(&mut self) -> Option<Touched> {
        if !self.lru.ordered {
            self.build_order();
        }
        let lru = &mut self.lru;
        while let Some(&e) = lru.order.front() {
            if !e.dead {
                return Some(e);
            }
            lru.order.pop_front();
            lru.first += 1;
        }
        None
    }

    /// Removes the least recently touched key.
    fn pop_front(&mut self) {
        let Some(e) = self.front() else {
            return;
        };
        self.lru.order.pop_front();
        self.lru.first += 1;
        self.remove_slot(e.slot);
    }

    /// Empties slot `i` (live) and forgets its key.
    fn remove_slot(&mut self, i: u32) {
        // Read the hash and drop the node in place (taking it out would
        // copy the whole node first: 2–4 % of `scan` where keys expire).
        let Some((hash, stamp)) = self.slots.get(i).map(|n| (n.hash, n.stamp)) else {
            return;
        };
        self.slots.clear(i);
        if let Ok(found) = self.index.find_entry(spread(hash), |&j| j == i) {
            found.remove();
        }
        self.lru.kill(stamp);
        self.free.push(i);
        self.len -= 1;
        if self.len == 0 {
            // Nothing live: every entry of `order` is dead.
            self.lru.order.clear();
            self.lru.first = self.lru.clock + 1;
        }
    }

    /// Adds a key known to be absent, most recently touched (its queue
    /// entry is the caller's to push); returns its slot.
    fn insert_slot(&mut self, key: Text, hash: u32, entry: Entry<V>) -> u32 {
        self.lru.clock += 1;
        let node = Node {
            key,
            hash,
            stamp: self.lru.clock as u32,
            entry,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots.set(i, Some(node));
                i
            }
            None => self.slots.push(node),
        };
        let slots = &self.slots;
        self.index.insert_unique(spread(hash), i, |&j| {
            slots.get(j).map_or(0, |n| spread(n.hash))
        });
        self.len += 1;
        i
    }

    /// Starts keeping `order`: every live slot by stamp, restamped so the
    /// queue's positions are their stamps.
    #[cold]
    fn build_order(&mut self) {
        let live = self.oldest_first();
        let lru = &mut self.lru;
        lru.first = lru.clock + 1;
        lru.order = VecDeque::with_capacity(live.len());
        for (&i, stamp) in live.iter().zip(lru.first..) {
            if let Some(n) = self.slots.get_mut(i) {
                n.stamp = stamp as u32;
                lru.order.push_back(Touched {
                    slot: i,
                    dead: false,
                    seen: n.entry.last_seen,
                });
            }
        }
        lru.clock = lru.first + lru.order.len() as u64 - 1;
        lru.ordered = true;
    }

    /// Renumbers the stamps of a map that keeps no queue, in their order,
    /// the youngest at the clock (see [`RENUMBER`]).
    #[cold]
    fn renumber(&mut self) {
        let clock = self.lru.clock as u32;
        let live = self.oldest_first();
        for (rank, &i) in live.iter().rev().enumerate() {
            if let Some(n) = self.slots.get_mut(i) {
                n.stamp = clock.wrapping_sub(rank as u32);
            }
        }
    }

    /// The live slots from the least to the most recently touched, by
    /// their stamps' ages (see [`RENUMBER`]).
    fn oldest_first(&self) -> Vec<u32> {
        let clock = self.lru.clock;
        let mut live: Vec<(u32, u32)> = (self.slots.iter())
            .map(|(i, n)| (age(clock, n.stamp), i))
            .collect();
        live.sort_unstable_by_key(|&(age, _)| std::cmp::Reverse(age));
        live.into_iter().map(|(_, i)| i).collect()
    }

    /// Drops the dead entries of `order` and restamps the live slots.
    #[cold]
    fn compact(&mut self) {
        let lru = &mut self.lru;
        let old = std::mem::replace(&mut lru.order, VecDeque::with_capacity(2 * self.len));
        for e in old.into_iter().filter(|e| !e.dead) {
            if let Some(n) = self.slots.get_mut(e.slot) {
                n.stamp = (lru.first + lru.order.len() as u64) as u32;
            }
            lru.order.push_back(e);
        }
        lru.clock = lru.first + lru.order.len() as u64 - 1;
    }
}

impl Lru {
    /// Appends the touch just stamped `clock`.
    #[inline]
    fn push(&mut self, slot: u32, seen: Millis) {
        if self.ordered {
            self.order.push_back(Touched {
                slot,
                dead: false,
                seen,
            });
        }
    }

    /// Marks the entry of the touch stamped `stamp` dead.
    #[inline]
    fn kill(&mut self, stamp: u32) {
        if !self.ordered {
            return;
        }
        let at = usize::try_from(stamp.wrapping_sub(self.first as u32)).ok();
        if let Some(e) = at.and_then(|i| self.order.get_mut(i)) {
            e.dead = true;
        }
    }
}

impl<V: fmt::Debug + Clone> fmt::Debug for KeyedState<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Serialize + Clone> Serialize for KeyedState<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, e) in self.iter() {
            map.serialize_entry(k, e)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de> + Clone> Deserialize<'de> for KeyedState<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de> + Clone> Visitor<'de> for MapVisitor<V> {
            type Value = KeyedState<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of keys to entries, least recently seen first")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut st = KeyedState::default();
                while let Some((key, entry)) = map.next_entry::<Text, Entry<V>>()? {
                    // A key twice (a hand-edited checkpoint): the later
                    // place in the order wins, as a re-touch would.
                    let hash = st.hash(key.as_str());
                    if let Some(i) = st.find(hash, &key) {
                        st.remove_slot(i);
                    }
                    if st.len() >= MAX_INDEXED {
                        st.pop_front();
                    }
                    let seen = entry.last_seen;
                    let i = st.insert_slot(key, hash, entry);
                    st.lru.push(i, seen);
                }
                Ok(st)
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_costs_40_bytes_besides_its_value() {
        assert_eq!(std::mem::size_of::<Node<()>>(), 40);
        assert_eq!(std::mem::size_of::<Option<Node<u64>>>(), 48);
    }

    /// A key touched once, then left while the clock passes 2³² (tests
    /// start it just below) and many renumberings: still the oldest.
    #[test]
    fn an_untouched_key_stays_oldest_across_the_stamp_wraparound() {
        let mut s: KeyedState<u32> = KeyedState::new();
        s.touch("old", 0, None, 4);
        for i in 0..200 {
            s.touch(["a", "b", "c"][i % 3], i as Millis, None, 4);
        }
        assert!(s.lru.clock > u64::from(u32::MAX));
        let (_, touch) = s.touch("new", 300, None, 4);
        assert!(touch.evicted);
        assert!(!s.contains("old"));
        let order: Vec<&str> = s.iter().map(|(k, _)| k).collect();
        assert_eq!(order, ["c", "a", "b", "new"]);
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

        /// Touches (counting per key), expiries, caps, checkpoint round
        /// trips and snapshots in any order, with event time going back now and then,
        /// leave the map as the model: same keys, same
        /// LRU order, same values, same eviction and insertion reports.
        /// Without `expiring`, the map is never expired (as the seen set),
        /// so its order is built only when the cap first evicts.
        #[test]
        fn keyed_state_behaves_as_an_lru_list(
            ops in proptest::collection::vec((0u8..6, 0u8..12, -20i64..50), 1..200),
            max in 1usize..8,
            expiring in proptest::bool::ANY,
        ) {
            let mut s: KeyedState<u32> = KeyedState::new();
            let mut m = Model::default();
            let mut t = 0;
            // Snapshots taken along the way, with their bytes then.
            let mut snapshots = Vec::new();
            for (op, key, dt) in ops {
                t += dt;
                let key = format!("k{key}");
                match op {
                    2 if expiring => proptest::prop_assert_eq!(s.expire(t, 30), m.expire(t, 30)),
                    0..=2 => {
                        // A hint before the touch, as the engine gives it.
                        s.warm(&key);
                        let (e, touch) = s.touch(&key, t, Some(60), max);
                        e.value += 1;
                        let want = m.touch(&key, t, Some(60), max);
                        proptest::prop_assert_eq!((e.value, touch), want);
                    }
                    3 => {
                        let bytes = postcard::to_stdvec(&s).expect("serializes");
                        s = postcard::from_bytes(&bytes).expect("deserializes");
                    }
                    // A snapshot; the map goes on from the original or,
                    // now and then, from the snapshot (queue rebuilt).
                    _ => {
                        let bytes = postcard::to_stdvec(&s).expect("serializes");
                        let snapshot = s.snapshot();
                        if dt % 3 == 0 {
                            snapshots.push((s, bytes));
                            s = snapshot;
                        } else {
                            snapshots.push((snapshot, bytes));
                        }
                    }
                }
                proptest::prop_assert_eq!(contents(&s), m.0.clone());
                proptest::prop_assert_eq!(s.len(), m.0.len());
                for (k, _, v) in &m.0 {
                    proptest::prop_assert!(s.contains(k));
                    proptest::prop_assert_eq!(s.get_mut(k).map(|e| e.value), Some(*v));
                }
            }
            // Nothing done to one side after the snapshot reached the other.
            for (snapshot, bytes) in snapshots {
                proptest::prop_assert_eq!(postcard::to_stdvec(&snapshot).ok(), Some(bytes));
            }
        }
    }

    #[test]
    fn a_map_never_expired_evicts_in_lru_order() {
        // No expiry ever runs, so the order is first built at the eviction.
        let mut s: KeyedState<u32> = KeyedState::new();
        for (k, t) in [("a", 1), ("b", 2), ("c", 3), ("a", 4)] {
            s.touch(k, t, None, 3);
        }
        let (_, t) = s.touch("d", 5, None, 3);
        assert!(t.evicted);
        assert!(!s.contains("b"), "b was least recently touched");
        s.touch("c", 6, None, 3);
        s.touch("e", 7, None, 3);
        assert!(!s.contains("a"));
        let keys: Vec<&str> = s.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["d", "c", "e"]);
    }

    #[test]
    fn retouching_one_key_keeps_the_queue_bounded() {
        // Every touch of a known key leaves a dead entry; compaction keeps
        // them to a few per live key (plus the slack, 3 under test).
        let mut s: KeyedState<u32> = KeyedState::new();
        s.touch("old", 0, Some(1_000_000), 10);
        assert_eq!(s.expire(0, 1_000_000), 0);
        for t in 1..10_000 {
            s.touch("hot", t, Some(1_000_000), 10).0.value += 1;
            assert!(s.lru.order.len() <= 2 * s.len() + ORDER_SLACK + 1);
        }
        let keys: Vec<(&str, u32)> = s.iter().map(|(k, e)| (k, e.value)).collect();
        assert_eq!(keys, [("old", 0), ("hot", 9_999)]);
        // The front is still the oldest key, found without a stale entry.
        assert_eq!(s.expire(1_000_001, 1_000_000), 1);
        assert!(!s.contains("old") && s.contains("hot"));
    }

    #[test]
    fn expire_after_the_front_key_moved_back_finds_the_new_front() {
        // a is the front and not idle; then b arrives late (older ts) and a
        // is touched again: b is the front now, and idle at 112.
        let mut s: KeyedState<u32> = KeyedState::new();
        s.touch("a", 100, None, 10);
        assert_eq!(s.expire(100, 30), 0);
        s.touch("b", 80, None, 10);
        s.touch("a", 105, None, 10);
        assert_eq!(s.expire(112, 30), 1);
        assert!(!s.contains("b"));
        // Likewise when the front key goes.
        let mut s: KeyedState<u32> = KeyedState::new();
        s.touch("a", 100, None, 1);
        assert_eq!(s.expire(100, 30), 0);
        s.touch("b", 60, None, 1); // evicts a
        assert_eq!(s.expire(100, 30), 1);
        assert!(s.is_empty());
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
}
