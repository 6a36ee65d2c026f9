//! [`Slots`]: the node storage of a [`KeyedState`](super::KeyedState), in
//! chunks that a snapshot of the detector state (the daemon's checkpoint)
//! borrows instead of copying.
//!
//! The daemon takes the snapshot on the detection thread and serializes it
//! on the checkpoint writer's: with 400,000 live keys, copying the nodes
//! took 105–164 ms and serializing them 280–320 ms, all of it a stall of
//! detection. A snapshot now lends every chunk (one `Arc` around the
//! chunk's `Vec`, no copy of a node); detection pays only when it first
//! writes a chunk the snapshot still holds: it takes the chunk back, and
//! copies it only if the writer is not done with it yet.
//!
//! A chunk detection owns is a plain `Vec`, so a write costs no atomic
//! operation (an `Arc::make_mut` per write, which fences, made `scan` 30 %
//! slower).

use std::sync::Arc;

/// Nodes per chunk: large enough that the chunk table of a million keys
/// (245 entries) stays in the nearest cache, small enough that copying one
/// on a first write is a fraction of a millisecond.
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;

/// A growable array of optional nodes addressed by `u32`, in chunks of
/// `CHUNK`. [`Slots::lend`] shares them with a snapshot; a later write to
/// a lent chunk takes it back first.
#[derive(Debug)]
pub(super) struct Slots<T> {
    chunks: Vec<Chunk<T>>,
    len: usize,
}

#[derive(Debug)]
enum Chunk<T> {
    /// Only this map has it: written in place.
    Owned(Vec<Option<T>>),
    /// Lent to a snapshot (which may be done with it by now).
    Lent(Arc<Vec<Option<T>>>),
}

impl<T> Chunk<T> {
    #[inline]
    fn nodes(&self) -> &[Option<T>] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Lent(v) => v,
        }
    }
}

impl<T: Clone> Clone for Chunk<T> {
    /// A copy of an owned chunk; a lent one stays shared (nobody writes
    /// it in place).
    fn clone(&self) -> Self {
        match self {
            Chunk::Owned(v) => Chunk::Owned(v.clone()),
            Chunk::Lent(v) => Chunk::Lent(v.clone()),
        }
    }
}

impl<T: Clone> Clone for Slots<T> {
    fn clone(&self) -> Self {
        Slots {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

#[inline]
fn split(i: u32) -> (usize, usize) {
    ((i >> CHUNK_BITS) as usize, i as usize & (CHUNK - 1))
}

impl<T> Slots<T> {
    #[inline]
    pub(super) fn get(&self, i: u32) -> Option<&T> {
        let (c, at) = split(i);
        self.chunks.get(c)?.nodes().get(at)?.as_ref()
    }

    /// Starts loading node `i` into the cache (see `KeyedState::warm`):
    /// every cache line it spans.
    #[inline]
    pub(super) fn prefetch(&self, i: u32) {
        const LINE: usize = 64;
        let (c, at) = split(i);
        if let Some(n) = self.chunks.get(c).and_then(|c| c.nodes().get(at)) {
            let p: *const u8 = (n as *const Option<T>).cast();
            let last = p.wrapping_add(size_of::<Option<T>>() - 1);
            let mut line = p;
            while (line as usize) / LINE < (last as usize) / LINE {
                crate::swar::prefetch(line);
                line = line.wrapping_add(LINE);
            }
            crate::swar::prefetch(last);
        }
    }

    /// Every live node with its place, in place order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        (self.chunks.iter().flat_map(|c| c.nodes()).enumerate())
            .filter_map(|(i, n)| Some((i as u32, n.as_ref()?)))
    }

    /// A copy that shares every chunk with this one: both read the same
    /// nodes until this one writes a chunk (see [`Slots::owned`]). Costs a
    /// pointer per chunk.
    pub(super) fn lend(&mut self) -> Slots<T> {
        let chunks = (self.chunks.iter_mut())
            .map(|c| {
                let shared = match c {
                    Chunk::Owned(v) => Arc::new(std::mem::take(v)),
                    Chunk::Lent(v) => v.clone(),
                };
                *c = Chunk::Lent(shared.clone());
                Chunk::Lent(shared)
            })
            .collect();
        Slots {
            chunks,
            len: self.len,
        }
    }
}

impl<T: Clone> Slots<T> {
    /// Chunk `c` to write, taken back from a snapshot if it was lent.
    #[inline]
    fn owned(&mut self, c: usize) -> Option<&mut Vec<Option<T>>> {
        let chunk = self.chunks.get_mut(c)?;
        if let Chunk::Lent(_) = chunk {
            take_back(chunk);
        }
        match chunk {
            Chunk::Owned(v) => Some(v),
            Chunk::Lent(_) => None,
        }
    }

    /// The node at `i` to change.
    #[inline]
    pub(super) fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        let (c, at) = split(i);
        self.owned(c)?.get_mut(at)?.as_mut()
    }

    /// Puts `node` at `i` (a place used before); returns what was there.
    pub(super) fn set(&mut self, i: u32, node: Option<T>) -> Option<T> {
        let (c, at) = split(i);
        std::mem::replace(self.owned(c)?.get_mut(at)?, node)
    }

    /// Empties place `i`, dropping its node where it lies (`set(i, None)`
    /// would move it out first).
    pub(super) fn clear(&mut self, i: u32) {
        let (c, at) = split(i);
        if let Some(node) = self.owned(c).and_then(|v| v.get_mut(at)) {
            *node = None;
        }
    }

    /// Appends `node` at a new place; returns it.
    pub(super) fn push(&mut self, node: T) -> u32 {
        let i = self.len as u32;
        let (c, _) = split(i);
        if c == self.chunks.len() {
            self.chunks.push(Chunk::Owned(Vec::new()));
        }
        if let Some(v) = self.owned(c) {
            v.push(Some(node));
        }
        self.len += 1;
        i
    }
}

/// Makes a lent chunk owned again: the vector itself when the snapshot is
/// done with it, else a copy.
#[cold]
fn take_back<T: Clone>(chunk: &mut Chunk<T>) {
    let Chunk::Lent(shared) = chunk else {
        return;
    };
    let shared = std::mem::take(shared);
    *chunk = Chunk::Owned(Arc::try_unwrap(shared).unwrap_or_else(|still| (*still).clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(n: u64) -> Slots<u64> {
        let mut a = Slots::default();
        for v in 0..n {
            assert_eq!(a.push(v), v as u32);
        }
        a
    }

    fn buffer(s: &Slots<u64>, c: usize) -> *const Option<u64> {
        s.chunks[c].nodes().as_ptr()
    }

    #[test]
    fn a_snapshot_reads_the_nodes_as_they_were_when_lent() {
        let mut a = filled(CHUNK as u64 * 3 + 5);
        let before: Vec<u64> = a.iter().map(|(_, v)| *v).collect();
        let b = a.lend();
        assert_eq!(buffer(&a, 1), buffer(&b, 1), "lent, not copied");
        *a.get_mut(CHUNK as u32 + 1).expect("live") = 7;
        a.clear(2);
        a.push(99);
        // The written chunks were copied; the others are still shared.
        assert_ne!(buffer(&a, 0), buffer(&b, 0));
        assert_ne!(buffer(&a, 1), buffer(&b, 1));
        assert_eq!(buffer(&a, 2), buffer(&b, 2));
        let after: Vec<u64> = b.iter().map(|(_, v)| *v).collect();
        assert_eq!(after, before);
        assert_eq!(a.get(CHUNK as u32 + 1), Some(&7));
        assert_eq!(a.get(2), None);
        assert_eq!(a.get(a.len as u32 - 1), Some(&99));
        assert_eq!(b.get(b.len as u32), None);
    }

    #[test]
    fn a_chunk_the_snapshot_is_done_with_is_taken_back_without_a_copy() {
        let mut a = filled(10);
        let lent = buffer(&a, 0);
        drop(a.lend());
        *a.get_mut(3).expect("live") = 30;
        assert_eq!(buffer(&a, 0), lent);
        assert!(matches!(a.chunks[0], Chunk::Owned(_)));
        assert_eq!(a.get(3), Some(&30));
    }

    #[test]
    fn a_clone_copies_what_is_owned_and_shares_what_is_lent() {
        let mut a = filled(CHUNK as u64 + 1);
        let snapshot = a.lend();
        a.set(0, None);
        let b = a.clone();
        assert_ne!(buffer(&a, 0), buffer(&b, 0));
        assert_eq!(buffer(&b, 1), buffer(&snapshot, 1));
        assert_eq!(b.get(0), None);
        assert_eq!(b.get(CHUNK as u32), Some(&(CHUNK as u64)));
    }
}
