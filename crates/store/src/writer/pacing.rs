//! Pacing: when a commit that could start waits a moment for more
//! operations. Gathering applies after large commits, regrouping after
//! small ones (see the module documentation of [`writer`](super)).

use std::time::{Duration, Instant};

use super::intake::First;
use super::{Writer, GATHER_FROM_BATCH};

/// What pacing learns from the commits.
#[derive(Debug)]
pub(super) struct Pacing {
    /// The size of recent commits: the last one's if larger, else decaying
    /// by an eighth per commit.
    recent_batch: usize,
    /// How fast the clients of a commit come back.
    pub(super) turn: TurnAround,
    /// The store wants regrouping ([`Store::regroups`](crate::Store::regroups)).
    regroups: bool,
}

impl Pacing {
    pub(super) fn new(regroups: bool) -> Pacing {
        Pacing { recent_batch: 0, turn: TurnAround::default(), regroups }
    }

    /// A commit of `ops` operations starts.
    pub(super) fn started(&mut self, ops: usize) {
        self.recent_batch = ops.max(self.recent_batch - self.recent_batch / 8);
    }
}

impl Writer {
    /// Before a commit starts with only a fragment of what recent commits
    /// took, waits (up to `gather_max`) for three quarters of that to be
    /// pending. With one stream only: with several, a commit that starts
    /// small does not hold up the operations that arrive after it.
    pub(super) async fn gather(&mut self) {
        if self.streams != 1
            || self.config.gather_max.is_zero()
            || !self.in_flight.is_empty()
            || self.idle.is_empty()
            || !self.queue.is_healthy()
            || self.queue.closing
            || !self.queue.has_work()
        {
            return;
        }
        if self.pacing.recent_batch < GATHER_FROM_BATCH {
            if self.pacing.regroups {
                self.regroup().await;
            }
            return;
        }
        let want = (self.pacing.recent_batch * 3 / 4).min(self.config.max_batch);
        if self.queue.pending_count() >= want {
            return;
        }
        let until = tokio::time::Instant::now() + self.config.gather_max;
        let deadline = tokio::time::sleep_until(until);
        self.queue.receive(deadline, First::Operations, |q| q.closing || q.pending_count() >= want).await;
    }

    /// Before a small commit, waits for the clients of the last one while
    /// they usually come back quickly (see [`TurnAround::regroup_until`]).
    async fn regroup(&mut self) {
        let turn = &mut self.pacing.turn;
        let Some(until) = turn.regroup_until(self.queue.arrivals, self.config.gather_max) else { return };
        let deadline = tokio::time::sleep_until(until.into());
        self.queue.receive(deadline, First::Operations, |q| q.closing || turn.back(q.arrivals)).await;
        turn.observe(self.queue.arrivals);
    }
}

/// How long the clients whose operations were in the last commit take to
/// send their next ones, against how long a commit takes: both as moving
/// averages, for regrouping (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct TurnAround {
    /// When the last commit ended.
    last_end: Option<Instant>,
    /// How many operations it carried.
    last_ops: usize,
    /// `Queue::arrivals` when it ended.
    arrivals_at_end: u64,
    /// The turn-around since the last commit has been measured.
    sampled: bool,
    /// Moving average of the time from a commit's end until as many new
    /// operations had arrived as it carried.
    turnaround: Option<Duration>,
    /// Moving average of a commit's duration.
    commit: Option<Duration>,
}

/// An eighth of the new sample, seven eighths of the old average.
fn moving(avg: Option<Duration>, sample: Duration) -> Duration {
    match avg {
        Some(a) => (a * 7 + sample) / 8,
        None => sample,
    }
}

impl TurnAround {
    /// A commit of `ops` operations that took `took` has just ended.
    pub(super) fn committed(&mut self, ops: usize, took: Duration, arrivals: u64) {
        self.commit = Some(moving(self.commit, took));
        self.last_end = Some(Instant::now());
        self.last_ops = ops;
        self.arrivals_at_end = arrivals;
        self.sampled = false;
    }

    /// As many operations as the last commit carried have arrived since it
    /// ended (from its clients or any others).
    fn back(&self, arrivals: u64) -> bool {
        arrivals.saturating_sub(self.arrivals_at_end) >= self.last_ops as u64
    }

    /// Takes the turn-around sample once the last commit's count is back.
    pub(super) fn observe(&mut self, arrivals: u64) {
        if self.sampled || self.last_ops == 0 || !self.back(arrivals) {
            return;
        }
        if let Some(end) = self.last_end {
            self.turnaround = Some(moving(self.turnaround, end.elapsed()));
            self.sampled = true;
        }
    }

    /// When the next commit should stop waiting for the last one's clients,
    /// or None to start now: they are back already, or they have not been
    /// coming back within half a commit (waiting would then cost more
    /// than the commit it saves), or the wait (twice their usual
    /// turn-around, at most half a commit and `limit`) is over.
    fn regroup_until(&self, arrivals: u64, limit: Duration) -> Option<Instant> {
        let (Some(end), Some(turnaround), Some(commit)) = (self.last_end, self.turnaround, self.commit) else {
            return None;
        };
        if self.last_ops == 0 || self.back(arrivals) || turnaround * 2 > commit {
            return None;
        }
        let until = end + (turnaround * 2).min(commit / 2).min(limit);
        (until > Instant::now()).then_some(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TurnAround that has seen commits of `commit` and clients coming
    /// back in `turnaround`, the last commit (of 4) just ended.
    fn learned(turnaround: Duration, commit: Duration) -> TurnAround {
        TurnAround {
            last_end: Some(Instant::now()),
            last_ops: 4,
            arrivals_at_end: 100,
            sampled: false,
            turnaround: Some(turnaround),
            commit: Some(commit),
        }
    }

    #[test]
    fn regrouping_waits_only_for_quick_clients_and_only_so_long() {
        let limit = Duration::from_millis(1);
        // Clients back in 50 µs, commits of 400 µs: wait, at most 100 µs.
        let t = learned(Duration::from_micros(50), Duration::from_micros(400));
        let until = t.regroup_until(100, limit).expect("waits for quick clients");
        assert!(until <= Instant::now() + Duration::from_micros(100), "{until:?}");
        // Once as many operations as the last commit carried are back: no wait.
        assert!(t.regroup_until(104, limit).is_none());
        // Clients that take more than half a commit are not waited for.
        assert!(learned(Duration::from_micros(250), Duration::from_micros(400)).regroup_until(100, limit).is_none());
        // The wait is bounded by half a commit and by the limit.
        let t = learned(Duration::from_millis(2), Duration::from_secs(1));
        let until = t.regroup_until(100, limit).expect("waits");
        assert!(until <= Instant::now() + limit, "{until:?}");
        // Nothing learned yet: no wait.
        assert!(TurnAround::default().regroup_until(0, limit).is_none());
    }

    #[test]
    fn turnaround_is_sampled_once_the_last_commits_count_is_back() {
        let mut t = TurnAround::default();
        t.committed(3, Duration::from_micros(300), 10);
        assert_eq!(t.commit, Some(Duration::from_micros(300)));
        t.observe(12);
        assert!(t.turnaround.is_none(), "two of three back: no sample yet");
        t.observe(13);
        let first = t.turnaround.expect("sampled when the third came back");
        t.observe(20);
        assert_eq!(t.turnaround, Some(first), "one sample per commit");
        // Averages move by an eighth.
        t.committed(3, Duration::from_micros(1100), 20);
        assert_eq!(t.commit, Some(Duration::from_micros(400)));
    }
}
