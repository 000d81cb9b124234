//! Time as a parameter.
//!
//! Code that decides by time (cache freshness, TTLs, leases, heartbeat
//! ages, grace periods) reads it from a [`Clock`] handed in by its owner
//! instead of calling `Instant::now()` itself, the way quinn-proto and
//! str0m take `now` from their caller. Production passes [`SystemClock`]
//! (the default everywhere); tests pass a [`ManualClock`] and move time
//! forward with [`ManualClock::advance`] instead of sleeping.
//!
//! A clock gives two readings that move together: a monotonic
//! [`Instant`] for durations measured inside this process, and wall-clock
//! [`UnixMillis`] for times stored where other machines read them (the
//! control plane's expiries and heartbeats).
//!
//! ```
//! use std::time::Duration;
//! use livestack_clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::new();
//! let (t0, wall0) = (clock.now(), clock.unix_millis());
//! clock.advance(Duration::from_secs(5));
//! assert_eq!(clock.now() - t0, Duration::from_secs(5));
//! assert_eq!(clock.unix_millis() - wall0, 5_000);
//! ```

use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (UTC).
pub type UnixMillis = u64;

/// A source of the current time. Shared between tasks as
/// [`SharedClock`].
pub trait Clock: Debug + Send + Sync + 'static {
    /// Monotonic now, for durations inside this process.
    fn now(&self) -> Instant;

    /// Wall-clock now, as [`UnixMillis`] (0 before 1970), for times that
    /// other machines read.
    fn unix_millis(&self) -> UnixMillis;
}

/// A clock shared by the tasks of one component.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clocks: [`Instant::now`] and
/// [`SystemTime::now`]. The production default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl SystemClock {
    /// The system clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

/// `t` as [`UnixMillis`] (0 before 1970, saturating far in the future).
fn millis_of(t: SystemTime) -> UnixMillis {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_millis(&self) -> UnixMillis {
        millis_of(SystemTime::now())
    }
}

/// A clock that stands still until told to move: tests advance it
/// explicitly, so that an expiry, a TTL or a grace period passes at once
/// and exactly, on any machine.
///
/// It starts at the real time of its creation (so that records it stamps
/// look like today's, and a real server comparing them with its own clock
/// sees them as fresh) and moves only by [`advance`](Self::advance).
/// Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    start: Instant,
    start_millis: UnixMillis,
    elapsed: Arc<Mutex<Duration>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock at the current real time, standing still.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            start_millis: millis_of(SystemTime::now()),
            elapsed: Arc::default(),
        }
    }

    /// This clock (sharing its time) as a [`SharedClock`].
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }

    /// Moves time forward by `by`, for every clone of this clock.
    pub fn advance(&self, by: Duration) {
        let mut elapsed = self.elapsed.lock().unwrap_or_else(PoisonError::into_inner);
        *elapsed = elapsed.saturating_add(by);
    }

    /// How far the clock has been advanced since it was created.
    pub fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let elapsed = self.elapsed();
        // A test cannot advance past `Instant`'s range in practice; should
        // it, the clock stops at the last representable step instead of
        // panicking.
        self.start
            .checked_add(elapsed)
            .unwrap_or_else(|| self.start + Duration::from_secs(u64::from(u32::MAX)))
    }

    fn unix_millis(&self) -> UnixMillis {
        let ms = u64::try_from(self.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.start_millis.saturating_add(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = ManualClock::new();
        let shared = clock.shared();
        let (t0, w0) = (shared.now(), shared.unix_millis());
        assert_eq!(shared.now(), t0, "stands still");
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(shared.now() - t0, Duration::from_millis(1_500));
        assert_eq!(shared.unix_millis() - w0, 1_500);
        assert_eq!(clock.elapsed(), Duration::from_millis(1_500));
    }

    #[test]
    fn system_clock_is_today() {
        // 2020-01-01 in Unix ms: the system clock is past it.
        assert!(SystemClock.unix_millis() > 1_577_836_800_000);
        let a = SystemClock.now();
        assert!(SystemClock.now() >= a);
    }
}
