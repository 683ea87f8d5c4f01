//! A small time-bounded cache for warm Lambda instances (merchant settings, verified API keys).
//! Bounded in size; entries expire after a fixed time-to-live measured on a monotonic clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
                if entries.len() >= self.capacity {
                    entries.clear();
                }
            }
            entries.insert(key, (Instant::now(), value));
        }
    }

    pub fn remove(&self, key: &K) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_ttl_disables() {
        let c = TtlCache::new(Duration::ZERO, 4);
        c.insert(1, "a");
        assert_eq!(c.get(&1), None);
    }

    #[test]
    fn stays_bounded() {
        let c = TtlCache::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            c.insert(i, i);
        }
        assert_eq!(c.get(&9), Some(9));
        assert!(c.entries.lock().unwrap().len() <= 3);
    }
}
