//! Key-based routing: maps a message's [`routing_key`](super::Message::routing_key)
//! onto one of `n` destinations, stably.
//!
//! The hash is FNV-1a (64-bit): fixed across processes, platforms and Rust
//! versions, so two nodes route the same key to the same slot.

/// Picks a slot in `0..n` for `key`. Returns `None` when `n == 0`.
///
/// ```
/// use airssys_rt::message::route_by_key;
/// let slot = route_by_key("user-42", 8).unwrap();
/// assert!(slot < 8);
/// assert_eq!(route_by_key("user-42", 8), Some(slot)); // stable
/// assert_eq!(route_by_key("x", 0), None);
/// ```
pub fn route_by_key(key: &str, n: usize) -> Option<usize> {
    if n == 0 {
        return None;
    }
    Some((fnv1a(key.as_bytes()) % n as u64) as usize)
}

/// 64-bit FNV-1a hash of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn keys_spread_over_all_slots() {
        let mut hits = [0usize; 8];
        for i in 0..8_000 {
            hits[route_by_key(&format!("key-{i}"), 8).unwrap()] += 1;
        }
        assert!(hits.iter().all(|&h| h > 0), "{hits:?}");
    }
}
