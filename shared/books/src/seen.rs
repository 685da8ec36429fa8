//! Remembering which fills were applied, so that a fill reported twice is applied once.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use acctmon_domain::TradeId;

/// A hasher for trade ids: they are exchange-assigned integers, not attacker-chosen keys, so a
/// multiplicative mix is enough and much cheaper than SipHash on the hot path.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
}

pub(crate) type IdSet = HashSet<TradeId, BuildHasherDefault<IdHasher>>;

/// The trade ids applied on one symbol of one account: the most recent `capacity` are remembered
/// exactly; anything older than the oldest one forgotten is treated as already applied (a replay of
/// old history), which is what a repeat after reconnect or a late backfill of known fills looks like.
#[derive(Debug, Clone)]
pub(crate) struct SeenIds {
    set: IdSet,
    order: VecDeque<TradeId>,
    capacity: usize,
    /// Highest id forgotten so far; ids at or below it count as seen.
    floor: Option<TradeId>,
}

impl SeenIds {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            set: IdSet::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            floor: None,
        }
    }

    /// Whether `id` was applied.
    pub(crate) fn contains(&self, id: TradeId) -> bool {
        self.floor.is_some_and(|f| id <= f) || self.set.contains(&id)
    }

    /// Records `id` as applied.
    pub(crate) fn insert(&mut self, id: TradeId) {
        if !self.set.insert(id) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
            self.floor = Some(self.floor.map_or(old, |f| f.max(old)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
