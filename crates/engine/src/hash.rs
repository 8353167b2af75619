//! A fast hasher for the engine's integer keys (job numbers, connection
//! ids). They are assigned by us, not chosen by peers, so a simple
//! multiplicative hash cannot be attacked into collisions.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative hasher for integer keys the engine assigns itself
/// (never for keys a peer chooses).
#[derive(Default, Clone, Copy)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A hash map keyed by engine-assigned integers, hashed with [`IntHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// A hash set of engine-assigned integers, hashed with [`IntHasher`].
pub type FastSet<K> = std::collections::HashSet<K, BuildHasherDefault<IntHasher>>;
