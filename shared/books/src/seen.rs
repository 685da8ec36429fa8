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
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(from = "SeenIdsWire")]
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

/// How [`SeenIds`] is persisted: the ids ascending as LEB128 varints, the first and then each one's
/// distance from the one before (about a byte and a half per id instead of five, in a state written
/// at every checkpoint). States written before carry `ids` as a list, which is still read.
#[derive(serde::Deserialize)]
struct SeenIdsWire {
    #[serde(default)]
    ids: Option<VecDeque<TradeId>>,
    #[serde(default, deserialize_with = "packed::deserialize")]
    packed: Vec<TradeId>,
    capacity: usize,
    floor: Option<TradeId>,
}

impl serde::Serialize for SeenIds {
    /// The [`SeenIdsWire`] form, written from the ring without copying it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Wire<'a> {
            #[serde(serialize_with = "packed::serialize")]
            packed: &'a VecDeque<TradeId>,
            capacity: usize,
            floor: Option<TradeId>,
        }
        serde::Serialize::serialize(
            &Wire {
                packed: &self.ids,
                capacity: self.capacity,
                floor: self.floor,
            },
            s,
        )
    }
}

impl From<SeenIdsWire> for SeenIds {
    fn from(w: SeenIdsWire) -> Self {
        let mut ids: Vec<TradeId> = w.ids.map(Vec::from).unwrap_or_default();
        ids.extend(w.packed);
        ids.sort_unstable();
        ids.dedup();
        SeenIds {
            ids: ids.into(),
            capacity: w.capacity.max(1),
            floor: w.floor,
        }
    }
}

/// Ascending ids ⇄ delta-encoded LEB128 bytes.
mod packed {
    use std::collections::VecDeque;

    use acctmon_domain::TradeId;
    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        ids: &&VecDeque<TradeId>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut out = Vec::with_capacity(ids.len() * 2);
        let mut previous = 0;
        for &id in ids.iter() {
            let mut v = id.wrapping_sub(previous);
            previous = id;
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
        }
        s.serialize_bytes(&out)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TradeId>, D::Error> {
        d.deserialize_bytes(Bytes)
    }

    fn decode<E: serde::de::Error>(bytes: &[u8]) -> Result<Vec<TradeId>, E> {
        let mut ids = Vec::with_capacity(bytes.len());
        let (mut previous, mut v, mut shift) = (0u64, 0u64, 0u32);
        for &b in bytes {
            if shift > 63 {
                return Err(E::custom("a trade id longer than 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                previous = previous.wrapping_add(v);
                ids.push(previous);
                (v, shift) = (0, 0);
            } else {
                shift += 7;
            }
        }
        if shift != 0 {
            return Err(E::custom("packed trade ids end inside a number"));
        }
        Ok(ids)
    }

    struct Bytes;

    impl<'de> Visitor<'de> for Bytes {
        type Value = Vec<TradeId>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("packed trade ids (bytes)")
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            decode(v)
        }

        /// Formats without a bytes type (JSON) write them as a list of numbers.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut bytes = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                bytes.push(b);
            }
            decode::<A::Error>(&bytes)
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
    fn persisted_ids_are_packed_and_read_back_in_both_forms() {
        let mut s = SeenIds::new(1024);
        for id in (5_000_000..5_001_024).step_by(1).chain([u64::MAX - 1, 3]) {
            s.insert(id);
        }
        let bytes = rmp_serde::to_vec_named(&s).unwrap();
        assert!(
            bytes.len() < 1_200,
            "{} bytes for {} ids",
            bytes.len(),
            s.ids.len()
        );
        let back: SeenIds = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!((back.ids, back.floor), (s.ids.clone(), s.floor));
        let json: SeenIds = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(json.ids, s.ids);
        // A state written before the ids were packed.
        #[derive(serde::Serialize)]
        struct Old {
            ids: Vec<u64>,
            capacity: usize,
            floor: Option<u64>,
        }
        let old = Old {
            ids: vec![7, 9, 12],
            capacity: 4,
            floor: Some(2),
        };
        let read: SeenIds = rmp_serde::from_slice(&rmp_serde::to_vec_named(&old).unwrap()).unwrap();
        assert_eq!(
            (read.ids, read.capacity, read.floor),
            ([7, 9, 12].into(), 4, Some(2))
        );
        assert!(
            rmp_serde::from_slice::<SeenIds>(
                b"\x83\xa6packed\xc4\x01\x80\xa8capacity\x01\xa5floor\xc0"
            )
            .is_err()
        );
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
