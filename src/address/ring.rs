//! [`HashRing`]: consistent hashing with virtual nodes, so that adding a
//! member to a pool of `n` moves about `1/(n+1)` of the keys (all of them to
//! the new member) instead of reshuffling every key.

use crate::message::router::fnv1a;

/// Points each member places on the ring; more points even out the share
/// each member gets (with 128, shares stay within about ±20 % of even).
const VIRTUAL_NODES: usize = 128;

/// A consistent-hash ring over members `0..len`.
///
/// ```
/// use airssys_rt::address::HashRing;
/// let ring = HashRing::new("users", 4);
/// let member = ring.member("user-42").unwrap();
/// assert!(member < 4);
/// assert_eq!(ring.member("user-42"), Some(member)); // stable
/// ```
#[derive(Debug, Clone, Default)]
pub struct HashRing {
    salt: u64,
    /// `(point, member)`, sorted by point.
    points: Vec<(u64, usize)>,
    len: usize,
}

impl HashRing {
    /// A ring named `name` (rings with the same name and size agree on every
    /// key) over members `0..len`.
    pub fn new(name: &str, len: usize) -> Self {
        let mut ring = Self {
            salt: fnv1a(name.as_bytes()),
            points: Vec::with_capacity(len * VIRTUAL_NODES),
            len: 0,
        };
        ring.resize(len);
        ring
    }

    /// Members on the ring.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the ring has no members.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Grows or shrinks the ring to members `0..len`; members below
    /// `len` keep their points, so only keys of added or removed members move.
    pub fn resize(&mut self, len: usize) {
        if len < self.len {
            self.points.retain(|&(_, member)| member < len);
        } else {
            for member in self.len..len {
                for node in 0..VIRTUAL_NODES {
                    let point = mix(self.salt ^ mix(((member as u64) << 32) | node as u64));
                    self.points.push((point, member));
                }
            }
            self.points.sort_unstable();
        }
        self.len = len;
    }

    /// The member owning `key`: the first point at or after the key's hash,
    /// wrapping around. `None` on an empty ring.
    pub fn member(&self, key: &str) -> Option<usize> {
        let hash = mix(self.salt ^ fnv1a(key.as_bytes()));
        let at = self.points.partition_point(|&(point, _)| point < hash);
        self.points
            .get(at)
            .or_else(|| self.points.first())
            .map(|&(_, member)| member)
    }
}

/// SplitMix64's finaliser: spreads FNV's clustered outputs over the ring.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(ring: &HashRing, keys: usize) -> Vec<usize> {
        (0..keys)
            .map(|k| ring.member(&format!("key-{k}")).unwrap())
            .collect()
    }

    #[test]
    fn empty_ring_has_no_owner() {
        assert_eq!(HashRing::new("r", 0).member("k"), None);
    }

    #[test]
    fn adding_a_member_moves_about_one_share_all_to_the_new_member() {
        const KEYS: usize = 20_000;
        for n in [1usize, 3, 7, 15] {
            let mut ring = HashRing::new("pool", n);
            let before = owners(&ring, KEYS);
            ring.resize(n + 1);
            let after = owners(&ring, KEYS);
            let moved: Vec<_> = (0..KEYS).filter(|&k| before[k] != after[k]).collect();
            assert!(
                moved.iter().all(|&k| after[k] == n),
                "keys moved between old members"
            );
            let share = KEYS / (n + 1);
            assert!(
                moved.len() > share / 2 && moved.len() < share * 2,
                "n={n}: {} keys moved, an even share is {share}",
                moved.len()
            );
        }
    }

    #[test]
    fn removing_a_member_moves_only_its_keys() {
        let mut ring = HashRing::new("pool", 5);
        let before = owners(&ring, 5_000);
        ring.resize(4);
        let after = owners(&ring, 5_000);
        for (b, a) in before.iter().zip(&after) {
            if *b != 4 {
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn every_member_gets_a_fair_share() {
        let ring = HashRing::new("pool", 8);
        let mut hits = [0usize; 8];
        for owner in owners(&ring, 16_000) {
            hits[owner] += 1;
        }
        assert!(hits.iter().all(|&h| h > 1_000 && h < 3_000), "{hits:?}");
    }

    #[test]
    fn rings_with_another_name_place_keys_differently() {
        let a = owners(&HashRing::new("a", 8), 1_000);
        let b = owners(&HashRing::new("b", 8), 1_000);
        assert_ne!(a, b);
    }
}
