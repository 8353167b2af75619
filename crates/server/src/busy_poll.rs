//! Brief busy-polling after activity (`--busy-poll`).
//!
//! On a small virtual machine most of a one-client round trip is not work
//! but wake-ups: the server's thread sleeps in `epoll_wait`, and each new
//! packet costs an inter-processor interrupt and a switch back in (see
//! docs/benchmarks.md, "Busy polling").
//! After handling something, the server therefore keeps its thread awake
//! for a short window, polling the sockets without blocking, so a packet
//! that arrives within the window is read at once. Once the window passes
//! with nothing new the thread sleeps as before, so an idle server uses no
//! CPU; a busy one rarely reaches the end of a window anyway.
//!
//! Only for the single-threaded runtime (the default `-t 1`): there the
//! poll is a `yield_now`, after which tokio's scheduler checks the sockets
//! with a zero timeout before running the yielding task again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The window when `--busy-poll` is not given.
pub const DEFAULT_WINDOW: Duration = Duration::from_micros(50);

/// The polling window to use: `flag` in microseconds when given, else the
/// default, except with a single CPU to run on (an affinity mask or a
/// container's CPU quota, as `available_parallelism` reports): there a
/// polling server would take the CPU from the very clients and workers it
/// waits for. `None` means no polling.
pub fn window(flag: Option<u64>, cpus: usize) -> Option<Duration> {
    match flag {
        Some(0) => None,
        Some(us) => Some(Duration::from_micros(us)),
        None if cpus < 2 => None,
        None => Some(DEFAULT_WINDOW),
    }
}

/// The engine's side: tells the poller that something happened.
#[derive(Clone, Default)]
pub struct Activity {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Bumped on every engine turn that handled something.
    count: AtomicU64,
    /// Polls made so far (for tests and diagnostics).
    polls: AtomicU64,
    /// The poller sleeps between windows and must be woken.
    sleeping: AtomicBool,
    wake: Notify,
}

impl Activity {
    /// Called by the engine task after a turn of work.
    pub fn touch(&self) {
        self.inner.count.fetch_add(1, Ordering::SeqCst);
        if self.inner.sleeping.load(Ordering::SeqCst) {
            self.inner.wake.notify_one();
        }
    }

    /// How many times the poller has checked the sockets without sleeping.
    #[cfg(test)]
    pub fn polls(&self) -> u64 {
        self.inner.polls.load(Ordering::Relaxed)
    }

    /// Runs for ever: after each piece of activity, keep the thread polling
    /// until `window` passes without any more.
    pub async fn poll_after_activity(self, window: Duration) {
        let mut seen = self.inner.count.load(Ordering::SeqCst);
        loop {
            // Sleep until the next activity (re-checking after saying so,
            // in case it came in between).
            self.inner.sleeping.store(true, Ordering::SeqCst);
            if self.inner.count.load(Ordering::SeqCst) == seen {
                self.inner.wake.notified().await;
            }
            self.inner.sleeping.store(false, Ordering::SeqCst);
            seen = self.inner.count.load(Ordering::SeqCst);
            let mut until = Instant::now() + window;
            loop {
                tokio::task::yield_now().await;
                self.inner.polls.fetch_add(1, Ordering::Relaxed);
                let now_seen = self.inner.count.load(Ordering::Relaxed);
                if now_seen != seen {
                    seen = now_seen;
                    until = Instant::now() + window;
                } else if Instant::now() >= until {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_follows_the_flag_and_is_off_on_one_cpu_by_default() {
        assert_eq!(window(None, 2), Some(DEFAULT_WINDOW));
        assert_eq!(window(None, 1), None);
        assert_eq!(window(Some(0), 8), None);
        assert_eq!(window(Some(200), 1), Some(Duration::from_micros(200)));
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn polls_only_for_a_window_after_activity() {
        let activity = Activity::default();
        tokio::spawn(activity.clone().poll_after_activity(Duration::from_millis(5)));
        settle().await;
        assert_eq!(activity.polls(), 0, "an idle server must not poll");

        activity.touch();
        // A task that never sleeps lets the poller run between its turns
        // only via the scheduler: yield a few times and see it poll.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(activity.polls() > 0, "activity must start a polling window");

        settle().await;
        let after_window = activity.polls();
        settle().await;
        assert_eq!(activity.polls(), after_window, "polling must stop once the window passes quietly");

        // Activity during a window extends it; afterwards it stops again.
        activity.touch();
        let started = activity.polls();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            activity.touch();
        }
        assert!(activity.polls() > started + 10, "polled throughout the extended window");
        settle().await;
        let stopped = activity.polls();
        settle().await;
        assert_eq!(activity.polls(), stopped);
    }
}
