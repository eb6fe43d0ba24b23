//! The facade's keys to their series, read with no lock.
//!
//! Every `counter!(...)` call site asks the recorder for its handle on every call, so the
//! lookup is the facade's hot path. The index is an open-addressing table that only ever
//! grows: readers probe it with plain loads (a slot is a `OnceLock`, whose `get` is one
//! acquire load), and the one writer (the recorder, under its registration lock) fills
//! empty slots. When a table is half full the writer builds one twice as large with every
//! entry and publishes it; older tables stay until the index is dropped (their sum is
//! less than the newest), so a reader still probing one reads valid memory and at worst
//! misses a key added since, which sends it to the registration path, where it is found.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Tables of 16 · 2^i slots, i < LEVELS: up to 2^35 slots (2^34 keys), far past any limit.
const LEVELS: usize = 32;
const FIRST: usize = 16;

/// Something the index holds, found by its key's hash and equality.
pub(crate) trait Keyed {
    /// The key's hash (precomputed: `metrics::Key::get_hash`).
    fn hash(&self) -> u64;
}

struct Table<V> {
    slots: Box<[OnceLock<V>]>,
}

impl<V> Table<V> {
    fn new(len: usize) -> Self {
        Table {
            slots: (0..len).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Probes from `hash` until `found` accepts an entry or an empty slot ends the run.
    fn find(&self, hash: u64, mut found: impl FnMut(&V) -> bool) -> Option<&V> {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let v = self.slots[i].get()?;
            if found(v) {
                return Some(v);
            }
            i = (i + 1) & mask;
        }
    }

    /// Puts `v` in the first empty slot of its run. The table is never full (it is
    /// replaced at half).
    fn put(&self, hash: u64, v: V) {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        let mut v = Some(v);
        while let Some(x) = v.take() {
            if let Err(x) = self.slots[i].set(x) {
                v = Some(x);
                i = (i + 1) & mask;
            }
        }
    }
}

/// An insert-only hash table with lock-free lookups (see the module documentation).
pub(crate) struct Index<V> {
    tables: [OnceLock<Table<V>>; LEVELS],
    current: AtomicUsize,
    len: AtomicUsize,
}

impl<V: Keyed + Clone> Index<V> {
    pub(crate) fn new() -> Self {
        let index = Index {
            tables: [const { OnceLock::new() }; LEVELS],
            current: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
        };
        let _ = index.tables[0].set(Table::new(FIRST));
        index
    }

    /// The entry with `hash` that `found` accepts. Loads only: no lock, no write.
    #[inline]
    pub(crate) fn get(&self, hash: u64, found: impl FnMut(&V) -> bool) -> Option<&V> {
        let level = self.current.load(Ordering::Acquire);
        self.tables[level].get()?.find(hash, found)
    }

    /// How many entries the index holds.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Adds `v`. Only one thread may insert at a time (the caller holds a lock); readers
    /// may run meanwhile.
    pub(crate) fn insert(&self, v: V) {
        let level = self.current.load(Ordering::Relaxed);
        let Some(table) = self.tables[level].get() else {
            return;
        };
        let len = self.len.load(Ordering::Relaxed) + 1;
        if len * 2 > table.slots.len() && level + 1 < LEVELS {
            let bigger = Table::new(table.slots.len() * 2);
            for old in table.slots.iter().filter_map(OnceLock::get) {
                bigger.put(old.hash(), old.clone());
            }
            bigger.put(v.hash(), v);
            if self.tables[level + 1].set(bigger).is_ok() {
                self.current.store(level + 1, Ordering::Release);
            }
        } else if len * 4 > table.slots.len() * 3 {
            // The last table is three-quarters full: refuse rather than probe forever.
            return;
        } else {
            table.put(v.hash(), v);
        }
        self.len.store(len, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct E(u64, u32);
    impl Keyed for E {
        fn hash(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn finds_every_entry_across_growth_and_collisions() {
        let index = Index::new();
        // Hashes that collide in the low bits, and distinct ones.
        let entries: Vec<E> = (0..1000u32)
            .map(|i| {
                E(
                    if i % 3 == 0 {
                        7
                    } else {
                        u64::from(i) << 20 | 7
                    },
                    i,
                )
            })
            .collect();
        for (n, e) in entries.iter().enumerate() {
            index.insert(e.clone());
            assert_eq!(index.len(), n + 1);
            for seen in &entries[..=n] {
                let got = index.get(seen.0, |x| x.1 == seen.1);
                assert_eq!(got, Some(seen));
            }
        }
        assert_eq!(index.get(7, |x| x.1 == 5000), None);
    }

    #[test]
    fn readers_race_the_writer_and_miss_nothing_that_was_there() {
        let index = std::sync::Arc::new(Index::new());
        for i in 0..64u32 {
            index.insert(E(u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15), i));
        }
        let reader = {
            let index = index.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    for i in 0..64u32 {
                        let h = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                        assert!(index.get(h, |x| x.1 == i).is_some(), "entry {i}");
                    }
                }
            })
        };
        for i in 64..4096u32 {
            index.insert(E(u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15), i));
        }
        reader.join().unwrap();
    }
}
