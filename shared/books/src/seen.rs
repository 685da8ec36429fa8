//! Remembering which fills were applied, so that a fill reported twice is applied once.

use std::collections::VecDeque;
use std::hash::{BuildHasherDefault, Hasher};

use acctmon_domain::TradeId;

/// A hasher for short exchange names (symbols, assets): word-at-a-time multiply-rotate, far cheaper than
/// SipHash for keys that come from the exchange, not from an adversary.
#[derive(Default)]
pub(crate) struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(n)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// Build-hasher for maps keyed by exchange names.
pub(crate) type NameHash = BuildHasherDefault<NameHasher>;

/// The trade ids applied on one symbol of one account: the most recent `capacity` are remembered
/// exactly; anything older than the oldest one forgotten is treated as already applied (a replay of
/// old history), which is what a repeat after reconnect or a late backfill of known fills looks like.
///
/// Trade ids of one symbol grow with time, so the ids are kept sorted in a ring: a new fill is an
/// append and a lookup of a newer id is one comparison, with no hashing and no scattered memory.
/// A fill that arrives out of order (a backfill) is inserted in place.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SeenIds {
    ids: VecDeque<TradeId>,
    capacity: usize,
    /// Highest id forgotten so far; ids at or below it count as seen.
    floor: Option<TradeId>,
}

impl SeenIds {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            ids: VecDeque::new(),
            capacity: capacity.max(1),
            floor: None,
        }
    }

    /// Whether `id` was applied.
    pub(crate) fn contains(&self, id: TradeId) -> bool {
        match self.ids.back() {
            None => self.floor.is_some_and(|f| id <= f),
            Some(&last) if id > last => false,
            Some(&last) if id == last => true,
            Some(_) => self.floor.is_some_and(|f| id <= f) || self.ids.binary_search(&id).is_ok(),
        }
    }

    /// Records `id` as applied.
    pub(crate) fn insert(&mut self, id: TradeId) {
        match self.ids.back() {
            Some(&last) if id <= last => match self.ids.binary_search(&id) {
                Ok(_) => return,
                Err(at) => self.ids.insert(at, id),
            },
            _ => self.ids.push_back(id),
        }
        if self.ids.len() > self.capacity
            && let Some(old) = self.ids.pop_front()
        {
            self.floor = Some(self.floor.map_or(old, |f| f.max(old)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_ids_are_kept_sorted() {
        let mut s = SeenIds::new(10);
        for id in [5, 9, 7, 6, 9, 5] {
            s.insert(id);
        }
        assert_eq!(s.ids, [5, 6, 7, 9]);
        assert!(s.contains(7) && !s.contains(8) && !s.contains(4) && !s.contains(10));
    }

    #[test]
    fn remembers_recent_ids_and_treats_forgotten_history_as_seen() {
        let mut s = SeenIds::new(2);
        s.insert(10);
        s.insert(11);
        assert!(s.contains(10) && s.contains(11) && !s.contains(12));
        s.insert(12);
        assert!(s.contains(10), "10 was forgotten but is below the floor");
        assert!(s.contains(12));
        assert!(!s.contains(13));
    }
}
