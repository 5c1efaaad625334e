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

/// Hashes run inside an event delivery at once, per instance (each reads at most 8 MiB at a
/// time): beyond this, a file's hash goes to the `Work` queue like a large one.
pub const INLINE_HASHES_AT_ONCE: usize = 8;

/// Which files are hashed (and checked by the gates) in the event delivery that found them,
/// instead of through the `Work` queue: those up to `max_bytes`, while a slot is free. A
/// small file then skips the queue's hop (on an idle app the queue trigger polls only every
/// few seconds); memory stays bounded by the slots, and time by the size limit, well inside
/// Event Grid's 30 seconds.
pub struct InlineHashes {
    max_bytes: u64,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

impl InlineHashes {
    /// `max_bytes == 0` sends every hash to the queue.
    pub fn new(max_bytes: u64) -> Self {
        InlineHashes {
            max_bytes,
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(INLINE_HASHES_AT_ONCE)),
        }
    }

    /// A slot to hash a file of `size` bytes now, or `None` (too large, or all slots busy).
    pub fn try_slot(&self, size: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if self.max_bytes == 0 || size > self.max_bytes {
            return None;
        }
        self.slots.clone().try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod inline_tests {
    use super::*;

    #[test]
    fn small_files_get_a_slot_while_one_is_free_and_large_ones_never() {
        let inline = InlineHashes::new(1024);
        assert!(inline.try_slot(1025).is_none(), "larger than the limit");
        let held: Vec<_> = (0..INLINE_HASHES_AT_ONCE)
            .map(|_| inline.try_slot(1024).expect("a free slot"))
            .collect();
        assert!(inline.try_slot(1).is_none(), "every slot busy");
        drop(held);
        assert!(inline.try_slot(1).is_some());
        assert!(InlineHashes::new(0).try_slot(0).is_none(), "0 turns it off");
    }
}
