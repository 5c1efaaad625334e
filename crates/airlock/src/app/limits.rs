//! A per-caller rate limit for the API: a token bucket per user id, refilled continuously.
//! It keeps one caller (a script in a loop, say) from starving the others or filling stores;
//! it is per handler instance, which is what a caller's burst reaches.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// Buckets kept before idle (full) ones are dropped.
const MAX_TRACKED: usize = 10_000;

pub struct RateLimiter {
    /// Calls a caller may make per minute, sustained; also the burst.
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

impl RateLimiter {
    /// `per_minute == 0` turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one call for `caller` at `now`: `Err(seconds)` to wait when the bucket is empty.
    pub fn take(&self, caller: &str, now: DateTime<Utc>) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED {
            buckets.retain(|_, b| refilled(b, now, per_second, capacity) < capacity);
        }
        let bucket = buckets.entry(caller.to_string()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens = refilled(bucket, now, per_second, capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}

fn refilled(bucket: &Bucket, now: DateTime<Utc>, per_second: f64, capacity: f64) -> f64 {
    let elapsed = (now - bucket.at).num_milliseconds().max(0) as f64 / 1000.0;
    (bucket.tokens + elapsed * per_second).min(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_callers_wait_and_refill() {
        let limiter = RateLimiter::new(60);
        let t0 = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for _ in 0..60 {
            assert_eq!(limiter.take("alice", t0), Ok(()));
        }
        assert_eq!(limiter.take("alice", t0), Err(1));
        // Others are not affected.
        assert_eq!(limiter.take("bob", t0), Ok(()));
        // One call per second comes back.
        let t1 = t0 + chrono::Duration::seconds(1);
        assert_eq!(limiter.take("alice", t1), Ok(()));
        assert!(limiter.take("alice", t1).is_err());
        // A minute refills the whole burst, never more.
        let later = t0 + chrono::Duration::minutes(10);
        for _ in 0..60 {
            assert_eq!(limiter.take("alice", later), Ok(()));
        }
        assert!(limiter.take("alice", later).is_err());
        assert!(RateLimiter::new(0).take("x", t0).is_ok());
    }
}
