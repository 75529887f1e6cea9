//! A bounded cache of verified blocks, for reads that cover a block only in part (small random
//! reads): the block was hashed once, so its neighbours are served without hashing it again.
//! Whole-block reads skip it (the kernel's page cache keeps those pages). Only bytes that passed
//! verification ever enter it. Memory: at most `capacity` bytes of block data.

use cerro_core::rootfs::Blake3Root;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Independent shards, so threads reading different files rarely wait for each other.
const SHARDS: usize = 16;

type Key = (Blake3Root, u64);

struct Shard {
    map: HashMap<Key, Arc<Vec<u8>>>,
    order: VecDeque<Key>,
    bytes: usize,
}

pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl BlockCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        order: VecDeque::new(),
                        bytes: 0,
                    })
                })
                .collect(),
            per_shard: capacity / SHARDS,
        }
    }

    fn shard(&self, k: &Key) -> &Mutex<Shard> {
        let h = k.0.as_bytes()[0] as usize ^ (k.1 as usize).wrapping_mul(0x9e37);
        &self.shards[h % SHARDS]
    }

    pub fn get(&self, root: &Blake3Root, block: u64) -> Option<Arc<Vec<u8>>> {
        let k = (*root, block);
        self.shard(&k).lock().ok()?.map.get(&k).cloned()
    }

    /// Keep a verified block, evicting the oldest entries of its shard beyond the bound.
    pub fn put(&self, root: &Blake3Root, block: u64, data: Arc<Vec<u8>>) {
        if self.per_shard == 0 || data.len() > self.per_shard {
            return;
        }
        let k = (*root, block);
        let Ok(mut s) = self.shard(&k).lock() else {
            return;
        };
        if s.map.contains_key(&k) {
            return;
        }
        s.bytes += data.len();
        s.map.insert(k, data);
        s.order.push_back(k);
        while s.bytes > self.per_shard {
            let Some(old) = s.order.pop_front() else {
                break;
            };
            if let Some(v) = s.map.remove(&old) {
                s.bytes -= v.len();
            }
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.bytes).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_bound() {
        let c = BlockCache::new(SHARDS * 1000);
        let r = Blake3Root::of(b"x");
        for i in 0..10_000u64 {
            c.put(&r, i, Arc::new(vec![0u8; 100]));
        }
        assert!(c.bytes() <= SHARDS * 1000);
        assert!(c.get(&r, 9_999).is_some());
        assert!(c.get(&r, 0).is_none());
    }
}
