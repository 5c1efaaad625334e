//! The latency budget: each step of a request's pipeline as a `debug` event on the target
//! `airlock::steps`, carrying how long the step took (`ms`) inside the invocation's span,
//! which names the function, the invocation and the request. A step that waited rather than
//! worked (a trigger in the queue or in Event Grid) is logged as `waited` with its age.
//!
//! Off by default (one line per step would multiply the log); turned on with
//! `AIRLOCK_LOG=info,airlock::steps=debug`. The throughput bench does, and prints the budget
//! from the handler's log, so every change shows which step it moved.

use chrono::{DateTime, Utc};
use std::time::Instant;

/// The log target of step events.
pub const TARGET: &str = "airlock::steps";

/// A step being timed: started at construction, logged by [`Step::done`].
#[derive(Clone, Copy, Debug)]
pub struct Step(Instant);

impl Step {
    pub fn start() -> Step {
        Step(Instant::now())
    }

    /// Logs `name` with the time since [`Step::start`], and starts the next step.
    pub fn done(&mut self, name: &'static str) {
        let ms = self.0.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(target: TARGET, step = name, ms, "step");
        self.0 = Instant::now();
    }
}

/// Logs how long a trigger waited before this invocation picked it up (`since`: when it was
/// queued or raised). A clock ahead of ours gives zero, never a negative wait.
pub fn waited(name: &'static str, since: DateTime<Utc>) {
    let ms = (Utc::now() - since).num_microseconds().unwrap_or(0).max(0) as f64 / 1000.0;
    tracing::debug!(target: TARGET, step = name, ms, waited = true, "step");
}
