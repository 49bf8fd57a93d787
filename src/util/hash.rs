//! Cheap hashers for the runtime's own maps, where SipHash's protection
//! against chosen keys buys nothing: [`IdHasher`] for sequential integer
//! ids, [`NameHasher`] (FNV-1a) for the short names applications register.

use std::hash::Hasher;

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Fibonacci hashing: one multiplication spreads sequential ids over the
/// table.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(GOLDEN);
    }
}

/// FNV-1a over the bytes written: fast on the short names of the registry.
/// Names are chosen by the application that registers them, not by remote
/// callers, so flooding a table with colliding names is not a threat here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault};

    #[test]
    fn sequential_ids_spread_over_the_top_bits() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let tops: std::collections::HashSet<u64> =
            (0..64u64).map(|id| build.hash_one(id) >> 58).collect();
        assert!(tops.len() > 32, "{} distinct buckets of 64", tops.len());
    }

    #[test]
    fn names_hash_like_fnv1a() {
        let mut h = NameHasher::default();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    }
}
