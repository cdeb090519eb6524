//! The token bucket: one refill rule for the per-token request rate limit (`auth.rs`) and a
//! stream viewer's byte budget (`stream/sse.rs`).

use std::time::{Duration, Instant};

/// `rate` tokens a second, `burst` at most.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn full(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// The tokens at `now`.
    pub(crate) fn level(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * self.rate).min(self.burst)
    }

    /// Whether the bucket holds `burst` at `now` (it then behaves like a new one).
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        self.level(now) >= self.burst
    }

    /// Takes `n` tokens if they are there.
    pub(crate) fn take(&mut self, n: f64, now: Instant) -> bool {
        self.tokens = self.level(now);
        self.at = now;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Empties the bucket.
    pub(crate) fn drain(&mut self, now: Instant) {
        self.tokens = 0.0;
        self.at = now;
    }

    /// How long from `now` until the bucket is full.
    pub(crate) fn until_full(&self, now: Instant) -> Duration {
        self.wait_for(self.burst, now)
    }

    /// How long from `now` until the bucket holds `n` tokens (zero when it does).
    pub(crate) fn wait_for(&self, n: f64, now: Instant) -> Duration {
        Duration::from_secs_f64(((n - self.level(now)) / self.rate).max(0.0))
    }
}
