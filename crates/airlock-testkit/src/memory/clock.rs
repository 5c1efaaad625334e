use airlock::ports::Clock;
use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;

/// A clock that only moves when told to (starts at the real time).
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(Mutex::new(Utc::now()))
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}
