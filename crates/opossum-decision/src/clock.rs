//! Clocks for time-dependent decisions.
//!
//! A rule such as "the old price is still accepted for 30 minutes after a change" depends on
//! the current time. Folds that need it receive a [`Clock`] (see
//! [`DecisionProjection::with_clock`](crate::DecisionProjection::with_clock)) instead of asking
//! the operating system, so tests can set the time with [`ManualClock`] rather than sleep.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use opossum_core::Timestamp;

/// A source of the current time.
///
/// Implementations must be cheap to call: a fold may call [`Clock::now`] once per event.
pub trait Clock: Send + Sync {
    /// The current instant (UTC).
    fn now(&self) -> Timestamp;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// The operating system's wall clock. Use it in production.
///
/// ```
/// use opossum_decision::{Clock, SystemClock};
///
/// let before = opossum_core::Timestamp::now();
/// assert!(SystemClock.now() >= before);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until told otherwise. Use it in tests.
///
/// Clones share one time: keep a clone in the test and give another to the projection, then
/// [`ManualClock::advance`] or [`ManualClock::set`] it between decisions.
///
/// ```
/// use std::time::Duration;
/// use opossum_core::Timestamp;
/// use opossum_decision::{Clock, ManualClock};
///
/// let start = Timestamp::from_second(1_700_000_000)?;
/// let clock = ManualClock::new(start);
/// let seen_by_projection = clock.clone();
///
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(seen_by_projection.now(), Timestamp::from_second(1_700_000_090)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    /// A clock showing `start`.
    #[must_use]
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Sets the time, for this clock and every clone of it. Time may go backwards.
    pub fn set(&self, now: Timestamp) {
        *self.lock() = now;
    }

    /// Moves the time forward by `by`, for this clock and every clone of it. Stops at
    /// [`Timestamp::MAX`] rather than overflow.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now = now.checked_add(by).unwrap_or(Timestamp::MAX);
    }

    fn lock(&self) -> MutexGuard<'_, Timestamp> {
        // A timestamp is written in one assignment, so a poisoned lock still holds a valid one.
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    #[test]
    fn a_manual_clock_stands_still_until_moved() {
        let clock = ManualClock::new(at(1_000));
        assert_eq!(clock.now(), at(1_000));
        assert_eq!(clock.now(), at(1_000));
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.now(), at(1_005));
        clock.set(at(10));
        assert_eq!(clock.now(), at(10));
    }

    #[test]
    fn clones_share_one_time() {
        let clock = ManualClock::new(at(0));
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        clock.advance(Duration::from_secs(60));
        assert_eq!(shared.now(), at(60));
    }

    #[test]
    fn advancing_past_the_end_of_time_saturates() {
        let clock = ManualClock::new(Timestamp::MAX);
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Timestamp::MAX);
    }
}
