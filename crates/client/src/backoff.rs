//! Remembering which servers failed, and when to try them again.

use std::time::{Duration, Instant};

/// Exponential backoff for one server: after each failure the next attempt
/// waits twice as long, up to a maximum; a success resets it.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    retry_at: Option<Instant>,
    pub(crate) last_error: Option<String>,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max, failures: 0, retry_at: None, last_error: None }
    }

    /// True when the server may be tried now.
    pub(crate) fn ready(&self, now: Instant) -> bool {
        match self.retry_at {
            None => true,
            Some(t) => now >= t,
        }
    }

    /// Records a failure and returns how long to wait before the next try.
    pub(crate) fn failed(&mut self, now: Instant, error: String) -> Duration {
        let shift = self.failures.min(16);
        let wait = self.initial.saturating_mul(1u32 << shift).min(self.max);
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + wait);
        self.last_error = Some(error);
        wait
    }

    /// Records a success.
    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
        self.last_error = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let now = Instant::now();
        assert!(b.ready(now));
        assert_eq!(b.failed(now, "x".into()), Duration::from_millis(100));
        assert!(!b.ready(now));
        assert_eq!(b.failed(now, "x".into()), Duration::from_millis(200));
        assert_eq!(b.failed(now, "x".into()), Duration::from_millis(350));
        assert!(b.ready(now + Duration::from_millis(400)));
        b.succeeded();
        assert!(b.ready(now));
    }
}
