//! The host's key-value store with time-to-live (`livestack:edge/kv`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::bindings::livestack::edge::types::KvError;

/// A bounded in-memory map with per-entry expiry, shared by every call on
/// one host. Expired entries are invisible and are purged when the map is
/// full.
#[derive(Debug)]
pub(crate) struct Kv {
    map: Mutex<HashMap<String, Entry>>,
    max_entries: usize,
    max_key_bytes: usize,
    max_value_bytes: usize,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Instant,
}

impl Kv {
    pub(crate) fn new(max_entries: usize, max_key_bytes: usize, max_value_bytes: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            max_entries,
            max_key_bytes,
            max_value_bytes,
        }
    }

    /// The live value under `key`.
    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<Vec<u8>> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .filter(|e| e.expires > now)
            .map(|e| e.value.clone())
    }

    /// Stores unless a live entry exists; `Ok(true)` if stored.
    pub(crate) fn set_if_absent(
        &self,
        key: String,
        value: Vec<u8>,
        ttl: Duration,
        now: Instant,
    ) -> Result<bool, KvError> {
        self.check_sizes(&key, &value)?;
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.get(&key).is_some_and(|e| e.expires > now) {
            return Ok(false);
        }
        self.make_room(&mut map, &key, now)?;
        map.insert(
            key,
            Entry {
                value,
                expires: expiry(now, ttl),
            },
        );
        Ok(true)
    }

    /// Stores, replacing any entry.
    pub(crate) fn set(
        &self,
        key: String,
        value: Vec<u8>,
        ttl: Duration,
        now: Instant,
    ) -> Result<(), KvError> {
        self.check_sizes(&key, &value)?;
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        self.make_room(&mut map, &key, now)?;
        map.insert(
            key,
            Entry {
                value,
                expires: expiry(now, ttl),
            },
        );
        Ok(())
    }

    fn check_sizes(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        if key.len() > self.max_key_bytes {
            return Err(KvError::TooLarge(self.max_key_bytes as u64));
        }
        if value.len() > self.max_value_bytes {
            return Err(KvError::TooLarge(self.max_value_bytes as u64));
        }
        Ok(())
    }

    /// Ensures inserting `key` stays within the entry bound, purging expired
    /// entries if needed.
    fn make_room(
        &self,
        map: &mut HashMap<String, Entry>,
        key: &str,
        now: Instant,
    ) -> Result<(), KvError> {
        if map.len() < self.max_entries || map.contains_key(key) {
            return Ok(());
        }
        map.retain(|_, e| e.expires > now);
        if map.len() < self.max_entries {
            Ok(())
        } else {
            Err(KvError::Full)
        }
    }
}

fn expiry(now: Instant, ttl: Duration) -> Instant {
    // TTLs are capped at a year; a guest cannot make `Instant` overflow.
    const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
    now.checked_add(ttl.min(MAX_TTL)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds_and_purge() {
        let kv = Kv::new(2, 8, 8);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(
            kv.set_if_absent("a".into(), b"1".to_vec(), ms(10), t0),
            Ok(true)
        );
        assert_eq!(
            kv.set_if_absent("a".into(), b"2".to_vec(), ms(10), t0),
            Ok(false)
        );
        assert_eq!(kv.get("a", t0), Some(b"1".to_vec()));
        assert_eq!(kv.get("a", t0 + ms(10)), None);
        assert_eq!(kv.set("b".into(), b"x".to_vec(), ms(100), t0), Ok(()));
        assert_eq!(
            kv.set("c".into(), b"x".to_vec(), ms(100), t0),
            Err(KvError::Full)
        );
        // "a" expired: purged to make room.
        assert_eq!(
            kv.set("c".into(), b"x".to_vec(), ms(100), t0 + ms(20)),
            Ok(())
        );
        assert_eq!(
            kv.set("k".repeat(9), Vec::new(), ms(1), t0),
            Err(KvError::TooLarge(8))
        );
        assert_eq!(
            kv.set("k".into(), vec![0; 9], ms(1), t0),
            Err(KvError::TooLarge(8))
        );
    }
}
