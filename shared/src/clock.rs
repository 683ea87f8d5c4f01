//! Time as a port: handlers ask a [`Clock`], tests hand them a fixed or virtual one.

use jiff::Timestamp;
use std::sync::Mutex;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until moved; for tests and the local scenario's virtual time.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        if let Ok(mut now) = self.0.lock() {
            *now = at;
        }
    }

    /// Moves the clock forward by `span`.
    pub fn advance(&self, span: jiff::SignedDuration) {
        if let Ok(mut now) = self.0.lock() {
            *now = now.checked_add(span).unwrap_or(*now);
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|e| *e.into_inner())
    }
}

/// The system clock moved by a number of seconds read from a file on every reading; for the local
/// scenario, which runs real binaries through days of virtual time (see
/// [`crate::config::VIRTUAL_CLOCK_FILE`]). A missing or unreadable file means no offset.
#[derive(Debug, Clone)]
pub struct FileOffsetClock {
    path: std::path::PathBuf,
}

impl FileOffsetClock {
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl Clock for FileOffsetClock {
    fn now(&self) -> Timestamp {
        let offset = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(offset))
            .unwrap_or_else(|_| Timestamp::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_offset_clock_follows_the_file() {
        let path =
            std::env::temp_dir().join(format!("aftercare-clock-{}", crate::domain::ids::new_id()));
        let clock = FileOffsetClock::new(&path);
        let drift = |c: &FileOffsetClock| c.now().as_second() - Timestamp::now().as_second();
        assert!(drift(&clock).abs() <= 1, "no file: no offset");
        std::fs::write(&path, "604800\n").unwrap();
        assert!((drift(&clock) - 604_800).abs() <= 1);
        std::fs::write(&path, "not a number").unwrap();
        assert!(drift(&clock).abs() <= 1);
        std::fs::remove_file(&path).unwrap();
    }
}
