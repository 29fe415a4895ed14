//! The read → decide → append cycle with retry on a failed append condition.

use std::future::Future;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::num::NonZeroU32;
use std::time::Duration;

use opossum_core::EventStore;
use tracing::Instrument;

use crate::Error;

/// Tells [`execute_decision`] whether an error is a failed DCB append condition — the one
/// error worth deciding again, because the state the decision read has changed.
///
/// Implemented for [`opossum_core::Error`] and for this crate's [`Error`]. Implement it for
/// your own error type when your decision operation returns one:
///
/// ```
/// use opossum_decision::ConditionFailure;
///
/// #[derive(Debug)]
/// enum EnrolError {
///     CourseFull,
///     Store(opossum_decision::Error),
/// }
///
/// impl ConditionFailure for EnrolError {
///     fn is_condition_failure(&self) -> bool {
///         matches!(self, EnrolError::Store(e) if e.is_condition_failed())
///     }
/// }
/// ```
pub trait ConditionFailure {
    /// True when the error means "the append condition failed: nothing was appended; read
    /// again and decide again".
    fn is_condition_failure(&self) -> bool;
}

impl ConditionFailure for opossum_core::Error {
    fn is_condition_failure(&self) -> bool {
        self.is_condition_failed()
    }
}

impl ConditionFailure for Error {
    fn is_condition_failure(&self) -> bool {
        self.is_condition_failed()
    }
}

/// How the wait before each retry is randomized, so that writers that collided do not collide
/// again in lockstep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// Wait exactly the exponential delay. Deterministic: for tests.
    None,
    /// Wait a uniformly random time between zero and the exponential delay.
    Full,
    /// Wait half the exponential delay plus a uniformly random time up to the other half: the
    /// delay still grows with every retry, and colliding writers still spread out.
    #[default]
    Equal,
}

/// How often, and how patiently, [`execute_decision_with`] decides again after a failed append
/// condition.
///
/// The wait before retry *n* (n = 1 after the first failed attempt) is
/// `initial_backoff × 2ⁿ⁻¹`, capped at `max_backoff`, then randomized by the [`Jitter`].
///
/// ```
/// use std::time::Duration;
/// use opossum_decision::{Jitter, RetryPolicy};
///
/// let patient = RetryPolicy::default()
///     .max_attempts(10)
///     .initial_backoff(Duration::from_millis(10))
///     .max_backoff(Duration::from_millis(500))
///     .jitter(Jitter::Full);
/// assert_eq!(patient.get_max_attempts(), 10);
/// assert_eq!(RetryPolicy::default().get_max_attempts(), 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    max_attempts: NonZeroU32,
    initial_backoff: Duration,
    max_backoff: Duration,
    jitter: Jitter,
}

impl Default for RetryPolicy {
    /// 3 attempts, 50 ms initial backoff doubling up to 1 s, [`Jitter::Equal`].
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: NonZeroU32::MIN.saturating_add(2),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            jitter: Jitter::Equal,
        }
    }
}

impl RetryPolicy {
    /// A policy that runs the operation once and never retries.
    #[must_use]
    pub fn no_retry() -> RetryPolicy {
        RetryPolicy::default().max_attempts(1)
    }

    /// Sets the total number of attempts, the first included (default 3).
    ///
    /// # Panics
    /// When `attempts` is 0: a decision always runs at least once.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> RetryPolicy {
        match NonZeroU32::new(attempts) {
            Some(n) => self.max_attempts = n,
            None => panic!("RetryPolicy::max_attempts must be at least 1 (the first attempt)"),
        }
        self
    }

    /// Sets the wait before the first retry (default 50 ms).
    #[must_use]
    pub fn initial_backoff(mut self, delay: Duration) -> RetryPolicy {
        self.initial_backoff = delay;
        self
    }

    /// Sets the longest wait before a retry, before jitter (default 1 s).
    #[must_use]
    pub fn max_backoff(mut self, delay: Duration) -> RetryPolicy {
        self.max_backoff = delay;
        self
    }

    /// Sets how waits are randomized (default [`Jitter::Equal`]).
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> RetryPolicy {
        self.jitter = jitter;
        self
    }

    /// See [`RetryPolicy::max_attempts`]: the total number of attempts, the first included.
    #[must_use]
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts.get()
    }

    /// See [`RetryPolicy::initial_backoff`].
    #[must_use]
    pub fn get_initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// See [`RetryPolicy::max_backoff`].
    #[must_use]
    pub fn get_max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// See [`RetryPolicy::jitter`].
    #[must_use]
    pub fn get_jitter(&self) -> Jitter {
        self.jitter
    }

    /// The exponential delay before retry `retry` (1 for the first retry), before jitter.
    #[must_use]
    pub fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1);
        let factor = 2_u32.checked_pow(doublings);
        factor
            .and_then(|f| self.initial_backoff.checked_mul(f))
            .map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }

    /// The delay before retry `retry`, jittered with `random` (any `u64`).
    fn delay(&self, retry: u32, random: u64) -> Duration {
        let base = self.backoff(retry);
        match self.jitter {
            Jitter::None => base,
            Jitter::Full => fraction_of(base, random),
            Jitter::Equal => {
                let half = base / 2;
                half + fraction_of(base - half, random)
            }
        }
    }
}

/// A uniformly random duration in `0..=span`, drawn from `random`.
fn fraction_of(span: Duration, random: u64) -> Duration {
    let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
    match nanos.checked_add(1) {
        Some(range) => Duration::from_nanos(random % range),
        None => Duration::from_nanos(random),
    }
}

/// A xorshift64* generator: plenty for spreading retry delays, and no dependency.
struct Xorshift(u64);

impl Xorshift {
    /// Seeded from the standard library's per-instance random hash keys.
    fn seeded() -> Xorshift {
        let seed = RandomState::new().build_hasher().finish();
        // Xorshift is stuck at zero; any other seed works.
        Xorshift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Runs the read → decide → append cycle `operation`, deciding again when its append condition
/// fails, with the default [`RetryPolicy`] (3 attempts, 50 ms initial backoff, jittered).
///
/// See [`execute_decision_with`] for the rules.
///
/// # Errors
/// The operation's error: immediately when it is not a condition failure, or the last
/// condition failure when every attempt failed.
pub async fn execute_decision<'s, St, F, Fut, T, E>(store: &'s St, operation: F) -> Result<T, E>
where
    St: EventStore + ?Sized,
    F: FnMut(&'s St) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: ConditionFailure,
{
    execute_decision_with(store, RetryPolicy::default(), operation).await
}

/// Runs the read → decide → append cycle `operation` under `policy`.
///
/// `operation` is called with `store` and should build its decision model, decide, and append
/// with the model's condition. When it returns an error for which
/// [`ConditionFailure::is_condition_failure`] is true, the state it decided on was stale and
/// nothing was appended: after a backoff it is called again, up to `policy`'s attempt count.
/// Any other outcome — success, a domain rejection returned as `Ok`, or any other error — is
/// returned at once.
///
/// Each attempt runs in a `tracing` span named `decision_attempt` with the attempt number.
/// Backoffs sleep on Tokio's timer, so run decisions inside a Tokio runtime with the time
/// driver enabled (`#[tokio::main]` enables it).
///
/// # Cancellation
/// Dropping the returned future (a timeout, a `select!`, a client that went away) cancels the
/// decision safely, provided the operation writes with a single conditional append, as a DCB
/// decision does. No task is spawned: nothing runs after the drop. Between attempts — while
/// backing off — nothing is in flight, and every earlier attempt appended nothing (its
/// condition failed; a successful attempt ends the decision). During an attempt, the store
/// performs the append atomically: if the future is dropped while that append is in flight, it
/// has either happened entirely or not at all; read the store to learn which.
///
/// ```
/// use std::time::Duration;
/// use opossum_core::{EventStore, InMemoryEventStore, NewEvent, Payload, Query};
/// use opossum_decision::{build_decision_model, execute_decision_with, DecisionProjection, RetryPolicy};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// let store = InMemoryEventStore::new();
/// let policy = RetryPolicy::default().max_attempts(5).initial_backoff(Duration::from_millis(5));
///
/// let number = execute_decision_with(&store, policy, |store| async move {
///     let invoices = Query::from_event_types(["InvoiceCreated"])?;
///     let count = DecisionProjection::new(0_u64, invoices, |n, _| n + 1);
///     let model = build_decision_model(store, count).await?;
///     let next = model.state + 1;
///     let event = NewEvent::builder("InvoiceCreated", Payload::from_json("{}")?).build()?;
///     model.append(store, vec![event]).await?;
///     Ok::<_, opossum_decision::Error>(next)
/// })
/// .await?;
/// assert_eq!(number, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// The operation's error: immediately when it is not a condition failure, or the last
/// condition failure when every attempt failed.
pub async fn execute_decision_with<'s, St, F, Fut, T, E>(
    store: &'s St,
    policy: RetryPolicy,
    mut operation: F,
) -> Result<T, E>
where
    St: EventStore + ?Sized,
    F: FnMut(&'s St) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: ConditionFailure,
{
    let mut attempts = Attempts::new(policy);
    loop {
        let span = attempts.span();
        let error = match operation(store).instrument(span.clone()).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !error.is_condition_failure() || !attempts.again(&span).await {
            return Err(error);
        }
    }
}

/// The attempts of one decision under a [`RetryPolicy`]: the span of each, and the backoff
/// between them.
pub(crate) struct Attempts {
    policy: RetryPolicy,
    random: Xorshift,
    attempt: u32,
}

impl Attempts {
    pub(crate) fn new(policy: RetryPolicy) -> Attempts {
        Attempts {
            policy,
            random: Xorshift::seeded(),
            attempt: 1,
        }
    }

    /// The span of the current attempt.
    pub(crate) fn span(&self) -> tracing::Span {
        tracing::debug_span!(
            "decision_attempt",
            attempt = self.attempt,
            max_attempts = self.policy.get_max_attempts()
        )
    }

    /// After the current attempt's append condition failed: waits the backoff and returns true
    /// when another attempt is allowed; returns false at once when this was the last.
    pub(crate) async fn again(&mut self, span: &tracing::Span) -> bool {
        if self.attempt >= self.policy.get_max_attempts() {
            tracing::warn!(
                parent: span,
                attempts = self.attempt,
                "decision gave up: its append condition failed on every attempt (heavy contention \
                 on the same events; consider more attempts or a narrower query)"
            );
            return false;
        }
        let delay = self.policy.delay(self.attempt, self.random.next());
        tracing::debug!(
            parent: span,
            ?delay,
            "append condition failed: events the decision depends on changed; deciding again"
        );
        tokio::time::sleep(delay).await;
        self.attempt += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
            .initial_backoff(50 * MS)
            .max_backoff(300 * MS)
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let p = policy();
        let delays: Vec<Duration> = (1..=6).map(|n| p.backoff(n)).collect();
        assert_eq!(
            delays,
            [50 * MS, 100 * MS, 200 * MS, 300 * MS, 300 * MS, 300 * MS]
        );
        assert_eq!(p.backoff(u32::MAX), 300 * MS);
    }

    #[test]
    fn no_jitter_is_exact() {
        let p = policy().jitter(Jitter::None);
        assert_eq!(p.delay(2, u64::MAX), 100 * MS);
        assert_eq!(p.delay(2, 12_345), 100 * MS);
    }

    #[test]
    fn jittered_delays_stay_in_their_bounds_and_vary() {
        let full = policy().jitter(Jitter::Full);
        let equal = policy().jitter(Jitter::Equal);
        let mut rng = Xorshift::seeded();
        let mut full_seen = Vec::new();
        for _ in 0..1_000 {
            let r = rng.next();
            let f = full.delay(3, r);
            assert!(f <= 200 * MS, "{f:?}");
            full_seen.push(f);
            let e = equal.delay(3, r);
            assert!(e >= 100 * MS && e <= 200 * MS, "{e:?}");
        }
        full_seen.sort();
        full_seen.dedup();
        assert!(full_seen.len() > 900, "jitter should rarely repeat a delay");
        assert!(full_seen[0] < 20 * MS && full_seen[full_seen.len() - 1] > 180 * MS);
    }

    #[test]
    fn extreme_random_values_do_not_overflow() {
        let p = RetryPolicy::default()
            .initial_backoff(Duration::MAX)
            .max_backoff(Duration::MAX)
            .jitter(Jitter::Full);
        assert!(p.delay(40, u64::MAX) <= Duration::MAX);
        assert_eq!(fraction_of(Duration::ZERO, u64::MAX), Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn zero_attempts_is_refused() {
        let _ = RetryPolicy::default().max_attempts(0);
    }

    #[test]
    fn no_retry_means_one_attempt() {
        assert_eq!(RetryPolicy::no_retry().get_max_attempts(), 1);
    }

    #[test]
    fn the_generator_never_sticks() {
        let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
        let a = rng.next();
        let b = rng.next();
        assert_ne!(a, b);
        assert_ne!(rng.0, 0);
    }
}
