//! A fast non-cryptographic hasher for the per-shard caches keyed by
//! subject (subject-index results, permission decisions).
//!
//! These caches are bounded and cleared when full, so a client that
//! floods distinct subjects to provoke collisions only costs itself
//! lookups; the default SipHash's DoS resistance buys nothing here and
//! costs a noticeable share of a publish.

use std::hash::{BuildHasherDefault, Hasher};

/// The Fx hash (word-at-a-time multiply-rotate), as used inside rustc.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, mut bytes: &[u8]) {
        while bytes.len() >= 8 {
            self.add(u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")));
            bytes = &bytes[8..];
        }
        if bytes.len() >= 4 {
            self.add(u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as u64);
            bytes = &bytes[4..];
        }
        for &b in bytes {
            self.add(b as u64);
        }
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub type FxBuildHasher = BuildHasherDefault<FxHasher>;
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_subjects_hash_apart_and_maps_work() {
        let mut m: FxHashMap<Box<[u8]>, u32> = FxHashMap::default();
        for i in 0..1000u32 {
            m.insert(format!("orders.{i}.created").into_bytes().into(), i);
        }
        for i in 0..1000u32 {
            assert_eq!(m.get(format!("orders.{i}.created").as_bytes()), Some(&i));
        }
        let h = |s: &[u8]| {
            let mut x = FxHasher::default();
            x.write(s);
            x.finish()
        };
        assert_ne!(h(b"foo.bar"), h(b"foo.baz"));
    }
}
