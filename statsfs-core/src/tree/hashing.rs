//! The tree's hash maps' hashing: the name index's random-keyed name hash, and the cheap
//! hasher of keys that need no more (a group id, or 32 bits of a name's hash).

use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::OnceLock;

/// A hash of a subordinate's name, keyed at random once per process, so that names an
/// outsider chooses (say, a peer's address) cannot be made to collide.
pub(super) fn name_hash(name: &str) -> u64 {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    KEYS.get_or_init(RandomState::new).hash_one(name)
}

/// Builds [`Mixed`] hashers: for maps keyed by group ids and by name hashes.
pub(super) type MixedState = BuildHasherDefault<Mixed>;

/// Hashes a number that no outsider chooses (an id the process hands out in sequence, or
/// bits of a random-keyed hash): one multiplication, which spreads consecutive ids over
/// all the bits a hash table looks at (the top ones as much as the bottom ones).
#[derive(Default)]
pub(super) struct Mixed(u64);

impl Hasher for Mixed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(*b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        // 2^64 / the golden ratio: odd, so distinct ids stay distinct.
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}
