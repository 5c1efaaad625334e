//! Keeps the `handler` running as the Functions host keeps its custom handler: when the
//! process exits (a crash, a kill, an out-of-memory), it is started again with back-off (1 s,
//! doubling to 30 s; back to 1 s after it has run 15 s: a crash loop dies while starting, a
//! handler killed after serving for a while is not one), the reason logged; deliveries are
//! held while it is down and until it answers its readiness probe; on shutdown it gets SIGTERM
//! and a grace period to finish the invocations in flight before SIGKILL.

use crate::emulators::ChildGuard;
use airlock_testkit::delivery::DeliveryEngine;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the handler gets to finish on shutdown (the host's default grace is similar).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A handler that ran this long before exiting is restarted after the first back-off again.
const HEALTHY_RUN: Duration = Duration::from_secs(15);

struct Running {
    child: Option<ChildGuard>,
    command: Command,
    started: Instant,
    /// No restart before this (a test keeping the handler down).
    hold_until: Option<Instant>,
}

pub struct HandlerSupervisor {
    state: Mutex<Running>,
    log: PathBuf,
    url: String,
    engine: Arc<DeliveryEngine>,
    stopping: AtomicBool,
    restarts: AtomicU32,
}

impl HandlerSupervisor {
    /// Supervises a handler already started (and ready) by `spawn`.
    pub fn watch(
        child: ChildGuard,
        command: Command,
        log: PathBuf,
        url: String,
        engine: Arc<DeliveryEngine>,
    ) -> Arc<HandlerSupervisor> {
        let supervisor = Arc::new(HandlerSupervisor {
            state: Mutex::new(Running {
                child: Some(child),
                command,
                started: Instant::now(),
                hold_until: None,
            }),
            log,
            url,
            engine,
            stopping: AtomicBool::new(false),
            restarts: AtomicU32::new(0),
        });
        let watcher = supervisor.clone();
        std::thread::Builder::new()
            .name("handler-supervisor".into())
            .spawn(move || watcher.run())
            .expect("a thread for the supervisor");
        supervisor
    }

    /// The running handler's process id (none while it is down).
    pub fn pid(&self) -> Option<u32> {
        self.state
            .lock()
            .unwrap()
            .child
            .as_ref()
            .map(ChildGuard::id)
    }

    /// How many times the handler was started again.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::SeqCst)
    }

    /// SIGKILLs the handler (a crash) and keeps it down for at least `down`.
    pub fn crash(&self, down: Duration) {
        let mut state = self.state.lock().unwrap();
        state.hold_until = Some(Instant::now() + down);
        if let Some(child) = state.child.as_mut() {
            child.kill_now();
        }
    }

    /// Waits until the handler has been restarted more than `after` times and is ready.
    pub fn wait_restarted(&self, after: u32, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.restarts() > after && self.pid().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// SIGTERM with a grace period, then SIGKILL; no restart after.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(mut child) = self.state.lock().unwrap().child.take() {
            child.stop_within(SHUTDOWN_GRACE);
        }
    }

    fn run(self: Arc<Self>) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            std::thread::sleep(Duration::from_millis(100));
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            let exited = {
                let mut state = self.state.lock().unwrap();
                match state.child.as_mut().map(ChildGuard::exit_status) {
                    Some(Some(status)) => {
                        let ran = state.started.elapsed();
                        state.child = None;
                        Some((status, ran))
                    }
                    _ => None,
                }
            };
            let Some((status, ran)) = exited else {
                continue;
            };
            // The host delivers nothing to a handler that is down.
            self.engine.pause(true);
            if ran >= HEALTHY_RUN {
                backoff = FIRST_BACKOFF;
            }
            tracing::warn!(%status, ran_secs = ran.as_secs(), backoff_secs = backoff.as_secs(), "the handler exited; starting it again");
            loop {
                let hold = self.state.lock().unwrap().hold_until.take();
                let wait = hold
                    .map(|h| h.saturating_duration_since(Instant::now()))
                    .unwrap_or_default()
                    .max(backoff);
                std::thread::sleep(wait);
                if self.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let mut command = std::mem::replace(
                    &mut self.state.lock().unwrap().command,
                    Command::new("true"),
                );
                let started = crate::stack::spawn_handler(&mut command, &self.log, &self.url);
                let mut state = self.state.lock().unwrap();
                state.command = command;
                match started {
                    Ok(mut child) => {
                        if self.stopping.load(Ordering::SeqCst) {
                            // Stopped while this one was starting: it must not outlive the stack.
                            drop(state);
                            child.stop_within(SHUTDOWN_GRACE);
                            return;
                        }
                        state.child = Some(child);
                        state.started = Instant::now();
                        drop(state);
                        self.restarts.fetch_add(1, Ordering::SeqCst);
                        self.engine.pause(false);
                        tracing::warn!(restarts = self.restarts(), "the handler is ready again");
                        break;
                    }
                    Err(e) => {
                        drop(state);
                        tracing::error!(error = %e, "the handler did not start; trying again");
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
