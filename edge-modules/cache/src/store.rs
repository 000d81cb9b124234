//! The stored responses: a map bounded by bytes and entries, evicting the
//! least recently used. Pure: no clock, the caller passes `now`.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// Bytes charged per entry on top of its key, headers and body: the map
/// slot, the LRU index node and the header map's own allocation, roughly.
const ENTRY_OVERHEAD: usize = 256;

/// One stored origin response.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The origin's status.
    pub status: StatusCode,
    /// The origin's headers (hop-by-hop ones removed).
    pub headers: HeaderMap,
    /// The complete body.
    pub body: Bytes,
    /// When the response was received from the origin.
    pub stored_at: Instant,
    /// When it stops being fresh.
    pub expires: Instant,
}

impl Entry {
    /// Memory charged for this entry under `key`.
    fn size(&self, key: &str) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        ENTRY_OVERHEAD + key.len() + headers + self.body.len()
    }
}

struct Slot {
    entry: Entry,
    size: usize,
    /// Position in `Store::lru`.
    tick: u64,
}

/// What [`Store::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// Stored; this many other entries were evicted to make room.
    Stored {
        /// Entries evicted (least recently used first).
        evicted: u64,
    },
    /// Not stored: larger than an eighth of the byte budget, so one large
    /// object cannot flush the many small hot ones (playlists, parts).
    TooLarge,
}

/// Responses by key, bounded by `max_bytes` (as charged by
/// [`Entry::size`]) and `max_entries`, least recently used evicted first.
///
/// Every operation is `O(log n)`. Expired entries are dropped when looked
/// up, and from the cold end of the LRU order on every insert; the rest
/// age out through eviction. Worst-case memory is `max_bytes` plus the one
/// response being inserted.
pub(crate) struct Store {
    map: HashMap<String, Slot>,
    /// Recency order: the smallest tick is the least recently used.
    lru: BTreeMap<u64, String>,
    next_tick: u64,
    bytes: usize,
    max_bytes: usize,
    max_entries: usize,
}

impl Store {
    /// An empty store.
    pub fn new(max_bytes: usize, max_entries: usize) -> Self {
        Self {
            map: HashMap::new(),
            lru: BTreeMap::new(),
            next_tick: 0,
            bytes: 0,
            max_bytes,
            max_entries,
        }
    }

    /// Bytes charged for the stored entries.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of stored entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }

    /// The fresh entry for `key`, marked most recently used; an expired one
    /// is removed and `None` returned.
    pub fn get(&mut self, key: &str, now: Instant) -> Option<&Entry> {
        let expired = now >= self.map.get(key)?.entry.expires;
        if expired {
            self.remove(key);
            return None;
        }
        let tick = self.tick();
        let slot = self.map.get_mut(key)?;
        if let Some(k) = self.lru.remove(&slot.tick) {
            self.lru.insert(tick, k);
        }
        slot.tick = tick;
        Some(&slot.entry)
    }

    /// Stores `entry` under `key` (replacing any previous one), evicting the
    /// least recently used entries until both bounds hold.
    pub fn insert(&mut self, key: &str, entry: Entry, now: Instant) -> Inserted {
        let size = entry.size(key);
        if size > self.max_bytes / 8 || self.max_entries == 0 {
            return Inserted::TooLarge;
        }
        self.remove(key);
        self.drop_expired_tail(now);
        let mut evicted = 0;
        while self.bytes + size > self.max_bytes || self.map.len() >= self.max_entries {
            let Some((_, victim)) = self.lru.pop_first() else {
                break;
            };
            if let Some(slot) = self.map.remove(&victim) {
                self.bytes -= slot.size;
                evicted += 1;
            }
        }
        let tick = self.tick();
        self.lru.insert(tick, key.to_owned());
        self.map.insert(key.to_owned(), Slot { entry, size, tick });
        self.bytes += size;
        Inserted::Stored { evicted }
    }

    fn remove(&mut self, key: &str) {
        if let Some(slot) = self.map.remove(key) {
            self.lru.remove(&slot.tick);
            self.bytes -= slot.size;
        }
    }

    /// Removes expired entries from the least recently used end, stopping
    /// at the first fresh one.
    fn drop_expired_tail(&mut self, now: Instant) {
        while let Some(slot) = self
            .lru
            .first_key_value()
            .and_then(|(_, k)| self.map.get(k))
        {
            if now < slot.entry.expires {
                break;
            }
            if let Some((_, k)) = self.lru.pop_first()
                && let Some(slot) = self.map.remove(&k)
            {
                self.bytes -= slot.size;
            }
        }
    }
}

/// `now + ttl`, saturating far in the future instead of overflowing.
pub(crate) fn expiry(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .unwrap_or_else(|| now + Duration::from_secs(u64::from(u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(now: Instant, body: usize, ttl: u64) -> Entry {
        Entry {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from(vec![0; body]),
            stored_at: now,
            expires: now + Duration::from_secs(ttl),
        }
    }

    #[test]
    fn evicts_least_recently_used_by_bytes() {
        let now = Instant::now();
        // Each entry charges 256 + 2 + 1000 = 1258 bytes; room for 8 (an
        // entry may be at most an eighth of the budget).
        let mut s = Store::new(1258 * 8, 100);
        for i in 0..8 {
            assert_eq!(
                s.insert(&format!("k{i}"), entry(now, 1000, 60), now),
                Inserted::Stored { evicted: 0 }
            );
        }
        assert_eq!(s.bytes(), 1258 * 8);
        // Touch k0: k1 is now the least recently used.
        assert!(s.get("k0", now).is_some());
        assert_eq!(
            s.insert("k8", entry(now, 1000, 60), now),
            Inserted::Stored { evicted: 1 }
        );
        assert!(s.get("k1", now).is_none());
        assert!(s.get("k0", now).is_some());
        assert!(s.get("k8", now).is_some());
        assert_eq!(s.len(), 8);
        assert_eq!(s.bytes(), 1258 * 8);
    }

    #[test]
    fn too_large_is_not_stored() {
        let now = Instant::now();
        let mut s = Store::new(8 * 1024, 100);
        assert_eq!(
            s.insert("big", entry(now, 1024, 60), now),
            Inserted::TooLarge
        );
        assert_eq!(s.len(), 0);
        assert_eq!(s.bytes(), 0);
    }

    #[test]
    fn bounded_by_entries() {
        let now = Instant::now();
        let mut s = Store::new(1 << 20, 2);
        s.insert("a", entry(now, 1, 60), now);
        s.insert("b", entry(now, 1, 60), now);
        assert_eq!(
            s.insert("c", entry(now, 1, 60), now),
            Inserted::Stored { evicted: 1 }
        );
        assert!(s.get("a", now).is_none());
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn expired_entries_go_without_counting_as_evictions() {
        let now = Instant::now();
        let mut s = Store::new(1 << 20, 2);
        s.insert("a", entry(now, 1, 1), now);
        s.insert("b", entry(now, 1, 60), now);
        let later = now + Duration::from_secs(1);
        assert_eq!(
            s.insert("c", entry(later, 1, 60), later),
            Inserted::Stored { evicted: 0 }
        );
        assert!(s.get("b", later).is_some());
        let much_later = now + Duration::from_secs(60);
        assert!(s.get("b", much_later).is_none());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn replacing_a_key_keeps_accounting() {
        let now = Instant::now();
        let mut s = Store::new(1 << 20, 10);
        s.insert("a", entry(now, 10, 60), now);
        s.insert("a", entry(now, 20, 60), now);
        assert_eq!(s.len(), 1);
        assert_eq!(s.bytes(), ENTRY_OVERHEAD + 1 + 20);
        assert_eq!(s.get("a", now).map(|e| e.body.len()), Some(20));
    }
}
