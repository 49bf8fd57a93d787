//! Where keys and shards go: a key's shard is a stable hash of the key; a
//! shard's owner is the live member with the highest rendezvous score for
//! it among those not yet full (each member takes at most its even share,
//! rounded up), so every node with the same view picks the same owners,
//! the shards spread evenly, and a node joining mostly takes shards it
//! wins outright.

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

/// `node`'s rendezvous score for `shard` of `kind`.
fn score(kind: &str, shard: u32, node: &str) -> u64 {
    finish(fnv1a(&[
        kind.as_bytes(),
        &shard.to_le_bytes(),
        node.as_bytes(),
    ]))
}

/// The owner of each of `shards` shards of `kind` among `members` (empty
/// without members): shard by shard, the highest-scoring member that has
/// not reached its share.
pub(crate) fn assign<'a>(kind: &str, shards: u32, members: &'a [String]) -> Vec<&'a str> {
    if members.is_empty() {
        return Vec::new();
    }
    let share = (shards as usize).div_ceil(members.len());
    let mut taken = vec![0usize; members.len()];
    let mut owners = Vec::with_capacity(shards as usize);
    for shard in 0..shards {
        // Ties (never in practice) go to the smaller name, everywhere.
        let winner = (0..members.len())
            .filter(|&i| taken[i] < share)
            .max_by_key(|&i| {
                (
                    score(kind, shard, &members[i]),
                    std::cmp::Reverse(members[i].as_str()),
                )
            });
        // Shares add up to at least `shards`: someone always has room.
        let winner = winner.unwrap_or(0);
        taken[winner] += 1;
        owners.push(members[winner].as_str());
    }
    owners
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
        let members = nodes(&["n1", "n2", "n3"]);
        let owners = assign("counter", 32, &members);
        let mut owned = std::collections::HashMap::new();
        for owner in &owners {
            *owned.entry(*owner).or_insert(0) += 1;
        }
        // 32 over 3: at most 11 each.
        assert!(owned.values().all(|&n| n <= 11), "{owned:?}");
        assert_eq!(owners.len(), 32);
        assert!(assign("counter", 32, &[]).is_empty());
        assert_eq!(
            assign("counter", 32, &members),
            owners,
            "the same everywhere"
        );
    }

    #[test]
    fn a_node_joining_moves_few_shards() {
        let (three, four) = (nodes(&["a", "b", "c"]), nodes(&["a", "b", "c", "d"]));
        let before = assign("k", 240, &three);
        let after = assign("k", 240, &four);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let to_d = after.iter().filter(|a| **a == "d").count();
        assert_eq!(to_d, 60);
        // At best exactly d's share moves; capacity forces a few more.
        assert!(moved < 2 * to_d, "{moved} moved for {to_d} new");
    }
}
