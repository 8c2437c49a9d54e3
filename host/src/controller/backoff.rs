//! How long a failed reconcile waits before it is retried: controller-runtime's default
//! workqueue rate limiter (client-go's `DefaultTypedControllerRateLimiter`), the larger of
//! - a per-object exponential delay, `base * 2^failures` up to [`MAX_DELAY`], where `base` is
//!   5 ms for a failed API call (client-go's) and longer for a failure that the same input
//!   would repeat ([`error_policy`](super::error_policy) picks it), and
//! - a token bucket shared by every object, [`REQUEUES_PER_SECOND`] with a burst of
//!   [`REQUEUE_BURST`]: many objects failing at once (the API server down) are retried at that
//!   rate, not all together.
//!
//! A successful reconcile forgets the object's failures, and so does its deletion.
//!
//! # Guarantees
//! Over any interval of length T at most `REQUEUE_BURST + REQUEUES_PER_SECOND * T` retries
//! are scheduled to start. The bucket is Go's `rate.Limiter.Reserve`: a retry that finds it
//! empty takes a future token and waits for it. `governor` (the client's limiter) cannot
//! reserve a token it does not have, so these few lines are ours.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// client-go's base delay of the per-object backoff.
pub const API_BASE_DELAY: Duration = Duration::from_millis(5);
/// client-go's cap of the per-object backoff.
pub const MAX_DELAY: Duration = Duration::from_secs(1000);
/// client-go's overall retry rate (not per object).
pub const REQUEUES_PER_SECOND: f64 = 10.0;
pub const REQUEUE_BURST: f64 = 100.0;

/// Which object: namespace and name.
pub type Key = (Option<String>, String);

/// The failures of each object, and the shared bucket.
pub struct Backoff {
    failures: Mutex<HashMap<Key, u32>>,
    bucket: Mutex<Bucket>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(REQUEUES_PER_SECOND, REQUEUE_BURST)
    }
}

impl Backoff {
    /// A bucket of `burst` tokens refilled at `per_second`.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Backoff {
            failures: Mutex::new(HashMap::new()),
            bucket: Mutex::new(Bucket {
                per_second,
                burst,
                tokens: burst,
                at: None,
            }),
        }
    }

    /// Counts one more failure of `key` and returns how long to wait before retrying it.
    pub fn next_delay(&self, key: &Key, base: Duration) -> Duration {
        self.next_delay_at(key, base, Instant::now())
    }

    fn next_delay_at(&self, key: &Key, base: Duration, now: Instant) -> Duration {
        let failures = {
            let mut all = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
            let failures = all.entry(key.clone()).or_insert(0);
            let before = *failures;
            *failures = failures.saturating_add(1);
            before
        };
        let exponential = 2u32
            .checked_pow(failures)
            .and_then(|factor| base.checked_mul(factor))
            .map_or(MAX_DELAY, |delay| delay.min(MAX_DELAY));
        let shared = self
            .bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reserve(now);
        exponential.max(shared)
    }

    /// Forgets `key`'s failures: its next failure starts from `base` again.
    pub fn forget(&self, key: &Key) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// How many objects have failures counted.
    pub fn failing(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Go's `rate.Limiter`, only `Reserve`: tokens may go negative, and the debt is the wait.
struct Bucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    fn reserve(&mut self, now: Instant) -> Duration {
        if let Some(at) = self.at {
            let refill = now.saturating_duration_since(at).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.at = Some(now.max(self.at.unwrap_or(now)));
        self.tokens -= 1.0;
        if self.tokens >= 0.0 || self.per_second <= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(-self.tokens / self.per_second).unwrap_or(MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        (Some("default".to_string()), name.to_string())
    }

    #[test]
    fn each_failure_doubles_the_delay_up_to_the_cap() {
        let backoff = Backoff::default();
        let now = Instant::now();
        let delays: Vec<_> = (0..5)
            .map(|_| backoff.next_delay_at(&key("a"), API_BASE_DELAY, now))
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(delays, [ms(5), ms(10), ms(20), ms(40), ms(80)]);
        // 5 ms * 2^18 = 1310 s: capped from the 19th failure on, and for ever after.
        for _ in 5..40 {
            backoff.next_delay_at(&key("a"), API_BASE_DELAY, now);
        }
        assert_eq!(
            backoff.next_delay_at(&key("a"), API_BASE_DELAY, now),
            MAX_DELAY
        );
        // Another object starts from the base.
        assert_eq!(backoff.next_delay_at(&key("b"), API_BASE_DELAY, now), ms(5));
    }

    #[test]
    fn a_success_forgets_the_failures() {
        let backoff = Backoff::default();
        let now = Instant::now();
        let base = Duration::from_secs(30);
        assert_eq!(backoff.next_delay_at(&key("a"), base, now), base);
        assert_eq!(backoff.next_delay_at(&key("a"), base, now), base * 2);
        assert_eq!(backoff.failing(), 1);
        backoff.forget(&key("a"));
        assert_eq!(backoff.failing(), 0);
        assert_eq!(backoff.next_delay_at(&key("a"), base, now), base);
    }

    #[test]
    fn the_shared_bucket_spaces_retries_after_its_burst() {
        let backoff = Backoff::new(10.0, 3.0);
        let now = Instant::now();
        // Different objects, each at its first failure: only the bucket delays them.
        let delays: Vec<_> = (0..6)
            .map(|i| backoff.next_delay_at(&key(&format!("o{i}")), API_BASE_DELAY, now))
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(delays[..3], [ms(5), ms(5), ms(5)], "the burst goes at once");
        assert_eq!(
            delays[3..],
            [ms(100), ms(200), ms(300)],
            "then 10 per second"
        );
        // A second later ten tokens are back (debt of three paid, seven left, at most the burst).
        let later = now + Duration::from_secs(1);
        assert_eq!(
            backoff.next_delay_at(&key("late"), API_BASE_DELAY, later),
            ms(5)
        );
    }

    #[test]
    fn the_bucket_holds_no_more_than_its_burst() {
        let mut bucket = Bucket {
            per_second: 10.0,
            burst: 2.0,
            tokens: 2.0,
            at: None,
        };
        let start = Instant::now();
        let hour = start + Duration::from_secs(3600);
        assert_eq!(bucket.reserve(start), Duration::ZERO);
        assert_eq!(bucket.reserve(hour), Duration::ZERO);
        assert_eq!(bucket.reserve(hour), Duration::ZERO);
        assert_eq!(bucket.reserve(hour), Duration::from_millis(100));
        // A clock read out of order never refills.
        assert_eq!(bucket.reserve(start), Duration::from_millis(200));
    }
}
