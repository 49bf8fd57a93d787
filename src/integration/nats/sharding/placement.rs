//! Where keys and shards go: a key's shard is a stable hash of the key; a
//! shard's owner is the live member with the highest rendezvous score for
//! it, so every node with the same view picks the same owner, and a node
//! joining or leaving moves only the shards it wins or held.

/// FNV-1a, 64 bits: stable across processes, platforms and releases (the
/// standard library's hasher promises none of that).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Mixes the bits of `hash` (FNV's low bits are weak for `%`).
fn finish(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash
}

/// The shard of `key` among `shards`.
pub(crate) fn shard_of(key: &str, shards: u32) -> u32 {
    (finish(fnv1a(&[key.as_bytes()])) % u64::from(shards.max(1))) as u32
}

/// The owner of `shard` of `kind` among `members` (rendezvous hashing);
/// `None` without members.
pub(crate) fn owner_of<'a>(kind: &str, shard: u32, members: &'a [String]) -> Option<&'a str> {
    members
        .iter()
        .max_by_key(|node| {
            let score = finish(fnv1a(&[
                kind.as_bytes(),
                &shard.to_le_bytes(),
                node.as_bytes(),
            ]));
            // Ties (never in practice) go to the smaller name, everywhere.
            (score, std::cmp::Reverse(node.as_str()))
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn keys_spread_evenly_over_shards() {
        let mut counts = vec![0u32; 64];
        for key in 0..64_000 {
            counts[shard_of(&key.to_string(), 64) as usize] += 1;
        }
        // 1,000 expected per shard; a fair hash stays well within ±20 %.
        assert!(
            counts.iter().all(|&n| (800..1_200).contains(&n)),
            "{counts:?}"
        );
        assert_eq!(shard_of("42", 64), shard_of("42", 64));
    }

    #[test]
    fn shards_spread_evenly_over_nodes() {
        let members = nodes(&["a", "b", "c"]);
        let mut owned = std::collections::HashMap::new();
        for shard in 0..300 {
            *owned
                .entry(owner_of("k", shard, &members).unwrap())
                .or_insert(0) += 1;
        }
        assert!(owned.values().all(|&n| (70..130).contains(&n)), "{owned:?}");
        assert_eq!(owner_of("k", 0, &[]), None);
    }

    #[test]
    fn a_node_joining_takes_only_shards_it_wins() {
        let before = nodes(&["a", "b", "c"]);
        let after = nodes(&["a", "b", "c", "d"]);
        for shard in 0..256 {
            let new = owner_of("k", shard, &after).unwrap();
            if new != "d" {
                assert_eq!(owner_of("k", shard, &before).unwrap(), new);
            }
        }
    }
}
