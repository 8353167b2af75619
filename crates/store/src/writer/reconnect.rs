//! Reconnecting after the database went away, with waits that grow from
//! `reconnect_min` to `reconnect_max` while operations keep being taken in
//! (inserts fail at once, deletes are kept).

use std::time::Duration;

use tracing::{debug, info};

use super::intake::First;
use super::Writer;
use crate::StoreError;

/// The waits between reconnect attempts.
#[derive(Debug)]
pub(super) struct Backoff {
    min: Duration,
    max: Duration,
    /// The wait before the next reconnect after one that worked but whose
    /// next commit failed again.
    after_unproven: Duration,
    /// The store reconnected and no commit has succeeded since.
    unproven: bool,
}

impl Backoff {
    pub(super) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, after_unproven: Duration::ZERO, unproven: false }
    }

    /// A commit succeeded: the connection works.
    pub(super) fn proven(&mut self) {
        self.unproven = false;
        self.after_unproven = Duration::ZERO;
    }

    /// The next wait between reconnect attempts: twice `delay`, within
    /// `min` and `max`.
    fn longer(&self, delay: Duration) -> Duration {
        (delay * 2).min(self.max).max(self.min)
    }
}

impl Writer {
    /// Reconnects every stream, with backoff, failing inserts that arrive
    /// meanwhile. Called with no commit in flight. Returns false when the
    /// writer should stop (closed while down).
    pub(super) async fn reconnect(&mut self) -> bool {
        // A store that takes the connection and then fails its next commit
        // again (a full disk, a database that refuses writes) would
        // otherwise be retried every `reconnect_min` for as long as that
        // lasts, each time with a warning: the wait grows from one round to
        // the next until a commit succeeds.
        if self.backoff.unproven && !self.queue.closing {
            self.backoff.after_unproven = self.backoff.longer(self.backoff.after_unproven);
            self.pause(self.backoff.after_unproven).await;
        }
        let mut delay = self.backoff.min;
        loop {
            let stores = &mut self.idle;
            let attempt = async move {
                for store in stores.iter_mut() {
                    store.reconnect().await?;
                }
                Ok::<(), StoreError>(())
            };
            match self.queue.receive(attempt, First::Event, |_| false).await {
                Some(Ok(())) => {
                    info!(store = %self.describe(), "store reconnected");
                    self.queue.set_healthy(true);
                    self.backoff.unproven = true;
                    return true;
                }
                Some(Err(e)) => debug!("store reconnect failed: {e}"),
                None => {}
            }
            if self.queue.closing {
                return false;
            }
            self.pause(delay).await;
            delay = self.backoff.longer(delay);
        }
    }

    /// Waits `delay` while taking operations (inserts fail at once while
    /// the store is down) and reporting them.
    async fn pause(&mut self, delay: Duration) {
        self.queue.receive(tokio::time::sleep(delay), First::Event, |_| false).await;
    }
}
