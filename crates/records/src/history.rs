//! Per-function history: how many jobs ended in each way, and percentiles
//! of queue wait and run time, over the last minute, hour, day and week.
//!
//! Each window is a ring of time slots: the minute is 12 slots of 5
//! seconds, the hour 60 slots of a minute, the day 24 slots of an hour,
//! the week 42 slots of 4 hours. An ended job is counted in the current
//! slot of each ring. A window reports its slots that are not older than
//! the ring, so "the last minute" covers between 55 and 60 seconds (the
//! hour between 59 and 60 minutes, the day between 23 and 24 hours, the
//! week between 6 days 20 hours and 7 days), depending on how far into
//! its current slot the clock is. [`History::series`] gives every slot of
//! a window on its own, for charts. Percentiles come from log-scale
//! histograms (see [`crate::histogram`]) and are within 12.5 % of the
//! exact nearest-rank value.
//!
//! Memory is bounded per function: 138 slots, each allocated when a job
//! first ends in it, a few dozen bytes plus 8 bytes per histogram bucket
//! in use (at most 252 per histogram); a ring's table of slots is
//! allocated when its first job ends. [`History::prune`] forgets
//! functions with nothing in the last week.
//!
//! [`History::snapshot`] gives a serde value the server stores; restoring
//! it ([`History::restore`]) after a restart keeps the slots still inside
//! their window and drops older ones, so a server that was down for two
//! hours comes back with its day and week windows and empty minute and hour
//! windows. A window whose slot width differs from this version's (a
//! snapshot from a version with other window sizes) is dropped on restore;
//! the other windows are kept.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::histogram::{percentile, BadHistogram, Histogram, BUCKETS};
use crate::json::split;
use crate::record::Record;
use crate::state::RecordState;
use crate::text::escape;

/// One of the reported windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// The last minute.
    Minute,
    /// The last hour.
    Hour,
    /// The last day.
    Day,
    /// The last week.
    Week,
}

impl Window {
    /// The windows, shortest first.
    pub const ALL: [Window; 4] = [Window::Minute, Window::Hour, Window::Day, Window::Week];

    /// `minute`, `hour`, `day` or `week`.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Week => "week",
        }
    }

    /// The window named `minute`, `hour`, `day` or `week`.
    pub fn parse(name: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|window| window.as_str() == name)
    }

    /// The width of one slot (milliseconds) and the number of slots.
    pub fn slots(self) -> (u64, usize) {
        match self {
            Window::Minute => (5_000, 12),
            Window::Hour => (60_000, 60),
            Window::Day => (3_600_000, 24),
            Window::Week => (14_400_000, 42),
        }
    }
}

/// Jobs counted by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Ended `complete`.
    pub completed: u64,
    /// Ended `failed`.
    pub failed: u64,
    /// Ended `exception`.
    pub exceptions: u64,
    /// Ended `timeout`.
    pub timeouts: u64,
    /// Ended `cancelled`.
    pub cancelled: u64,
    /// Ended `dropped`.
    pub dropped: u64,
    /// Ended `dead` (out of attempts under a policy with dead letters).
    #[serde(default)]
    pub dead: u64,
    /// Failed attempts a policy retried (not ends of jobs: not in
    /// [`Counts::total`]).
    #[serde(default)]
    pub retried: u64,
}

impl Counts {
    fn count(&mut self, state: RecordState) {
        let counter = match state {
            RecordState::Complete => &mut self.completed,
            RecordState::Failed => &mut self.failed,
            RecordState::Exception => &mut self.exceptions,
            RecordState::Timeout => &mut self.timeouts,
            RecordState::Cancelled => &mut self.cancelled,
            RecordState::Dropped => &mut self.dropped,
            RecordState::Dead => &mut self.dead,
            RecordState::Queued | RecordState::Running | RecordState::Retrying => return,
        };
        *counter += 1;
    }

    fn add(&mut self, other: &Counts) {
        self.completed += other.completed;
        self.failed += other.failed;
        self.exceptions += other.exceptions;
        self.timeouts += other.timeouts;
        self.cancelled += other.cancelled;
        self.dropped += other.dropped;
        self.dead += other.dead;
        self.retried += other.retried;
    }

    /// All jobs counted.
    pub fn total(&self) -> u64 {
        self.completed + self.failed + self.exceptions + self.timeouts + self.cancelled + self.dropped + self.dead
    }
}

/// Approximate percentiles of durations in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many durations there were.
    pub samples: u64,
    /// Median; `None` without samples.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
}

impl Percentiles {
    fn of(dense: &[u64; BUCKETS]) -> Percentiles {
        Percentiles {
            samples: dense.iter().sum(),
            p50: percentile(dense, 50),
            p90: percentile(dense, 90),
            p99: percentile(dense, 99),
        }
    }
}

/// One window of one function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowView {
    /// Ended jobs by outcome.
    pub counts: Counts,
    /// Time from submission to the first start, of jobs that started.
    pub queue_wait_ms: Percentiles,
    /// Duration of the last attempt, of jobs that ran.
    pub run_time_ms: Percentiles,
}

/// The windows of one function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryView {
    /// The last minute.
    pub minute: WindowView,
    /// The last hour.
    pub hour: WindowView,
    /// The last day.
    pub day: WindowView,
    /// The last week.
    pub week: WindowView,
}

impl HistoryView {
    /// The view of one window.
    pub fn window(&self, window: Window) -> &WindowView {
        match window {
            Window::Minute => &self.minute,
            Window::Hour => &self.hour,
            Window::Day => &self.day,
            Window::Week => &self.week,
        }
    }
}

/// What one slot holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SlotStats {
    counts: Counts,
    wait: Histogram,
    run: Histogram,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Slot {
    /// The slot's start (a multiple of the ring's slot width).
    start: u64,
    stats: SlotStats,
}

/// One window's ring of slots; allocated on first use.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ring {
    window: Window,
    slots: Vec<Option<Box<Slot>>>,
}

impl Ring {
    fn new(window: Window) -> Ring {
        Ring { window, slots: Vec::new() }
    }

    fn index(&self, start: u64) -> usize {
        let (width, count) = self.window.slots();
        (start / width % count as u64) as usize
    }

    /// Whether a slot starting at `start` is inside the window at `now`.
    fn in_window(&self, start: u64, now: u64) -> bool {
        let (width, count) = self.window.slots();
        let current = now - now % width;
        start <= current && current - start < width * count as u64
    }

    fn slot_for(&mut self, now: u64) -> &mut SlotStats {
        let (width, count) = self.window.slots();
        if self.slots.is_empty() {
            self.slots.resize_with(count, || None);
        }
        let start = now - now % width;
        let index = self.index(start);
        let slot = self.slots[index].get_or_insert_with(Box::default);
        if slot.start != start {
            // An older lap of the ring (or, after the clock stepped back, a
            // later one): start the slot afresh.
            **slot = Slot { start, stats: SlotStats::default() };
        }
        &mut slot.stats
    }

    fn live_slots(&self, now: u64) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten().map(|slot| &**slot).filter(move |slot| self.in_window(slot.start, now))
    }

    fn view(&self, now: u64) -> WindowView {
        let (mut counts, mut wait, mut run) = (Counts::default(), [0; BUCKETS], [0; BUCKETS]);
        for slot in self.live_slots(now) {
            counts.add(&slot.stats.counts);
            slot.stats.wait.add_to(&mut wait);
            slot.stats.run.add_to(&mut run);
        }
        WindowView { counts, queue_wait_ms: Percentiles::of(&wait), run_time_ms: Percentiles::of(&run) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FunctionHistory {
    rings: [Ring; 4],
}

impl FunctionHistory {
    fn new() -> FunctionHistory {
        FunctionHistory { rings: Window::ALL.map(Ring::new) }
    }
}

/// Per-function history of ended jobs. Times are Unix milliseconds given
/// by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    functions: HashMap<Box<[u8]>, FunctionHistory>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Counts a job of `function` that ended in `state` at `now`, with its
    /// queue wait and run time when it had them. Live states are not
    /// counted.
    pub fn record_end(&mut self, function: &[u8], state: RecordState, wait: Option<u64>, run: Option<u64>, now: u64) {
        if !state.is_final() {
            return;
        }
        let history = match self.functions.get_mut(function) {
            Some(history) => history,
            None => self.functions.entry(function.into()).or_insert_with(FunctionHistory::new),
        };
        for ring in &mut history.rings {
            let stats = ring.slot_for(now);
            stats.counts.count(state);
            if let Some(wait) = wait {
                stats.wait.add(wait);
            }
            if let Some(run) = run {
                stats.run.add(run);
            }
        }
    }

    /// Counts a failed attempt of `function` that its policy retries, at
    /// `now`.
    pub fn record_retry(&mut self, function: &[u8], now: u64) {
        let history = match self.functions.get_mut(function) {
            Some(history) => history,
            None => self.functions.entry(function.into()).or_insert_with(FunctionHistory::new),
        };
        for ring in &mut history.rings {
            ring.slot_for(now).counts.retried += 1;
        }
    }

    /// Counts an ended record, at its end time.
    pub fn record(&mut self, record: &Record) {
        let ended = record.finished().unwrap_or(record.submitted());
        self.record_end(record.function(), record.state(), record.queue_wait(), record.run_time(), ended);
    }

    /// The windows of `function` at `now`; `None` for a function never seen
    /// (or pruned).
    pub fn query(&self, function: &[u8], now: u64) -> Option<HistoryView> {
        let history = self.functions.get(function)?;
        let [minute, hour, day, week] = &history.rings;
        Some(HistoryView { minute: minute.view(now), hour: hour.view(now), day: day.view(now), week: week.view(now) })
    }

    /// Every function's windows at `now`, ordered by function name.
    pub fn query_all(&self, now: u64) -> Vec<(&[u8], HistoryView)> {
        let mut all: Vec<_> =
            self.functions.keys().filter_map(|function| Some((&**function, self.query(function, now)?))).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Every function's counts over one `window` at `now`, by function name:
    /// ended jobs by outcome only, no percentiles, so it is cheap enough to
    /// join to every listing of the functions (their rates).
    pub fn counts(&self, window: Window, now: u64) -> Vec<(&[u8], Counts)> {
        let mut all: Vec<(&[u8], Counts)> = self
            .functions
            .iter()
            .filter_map(|(function, history)| {
                let ring = history.rings.iter().find(|ring| ring.window == window)?;
                let mut counts = Counts::default();
                for slot in ring.live_slots(now) {
                    counts.add(&slot.stats.counts);
                }
                Some((&**function, counts))
            })
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Every slot of `window` at `now`, oldest first, for one function or
    /// (`None`) summed over every function. Slots in which nothing ended
    /// are there with zero counts, so a chart has one bar per slot; a
    /// function never seen gives such an empty series too.
    pub fn series(&self, function: Option<&[u8]>, window: Window, now: u64) -> Series {
        let (width, count) = window.slots();
        let current = now - now % width;
        let functions: Vec<&FunctionHistory> = match function {
            Some(function) => self.functions.get(function).into_iter().collect(),
            None => self.functions.values().collect(),
        };
        let rings: Vec<&Ring> = functions
            .into_iter()
            .filter_map(|history| history.rings.iter().find(|ring| ring.window == window))
            .filter(|ring| !ring.slots.is_empty())
            .collect();
        let slots = (0..count as u64)
            .rev()
            .filter_map(|back| current.checked_sub(back * width))
            .map(|start| {
                let (mut counts, mut wait, mut run) = (Counts::default(), [0; BUCKETS], [0; BUCKETS]);
                for ring in &rings {
                    let Some(slot) = &ring.slots[ring.index(start)] else { continue };
                    if slot.start == start {
                        counts.add(&slot.stats.counts);
                        slot.stats.wait.add_to(&mut wait);
                        slot.stats.run.add_to(&mut run);
                    }
                }
                SeriesSlot { start, counts, queue_wait_ms: Percentiles::of(&wait), run_time_ms: Percentiles::of(&run) }
            })
            .collect();
        Series { window, slot_ms: width, slots }
    }

    /// Forgets functions with nothing in any window at `now` (so nothing in
    /// the last week).
    pub fn prune(&mut self, now: u64) {
        self.functions.retain(|_, history| history.rings.iter().any(|ring| ring.live_slots(now).next().is_some()));
    }

    /// Everything still inside its window at `now`, for storing.
    pub fn snapshot(&self, now: u64) -> HistorySnapshot {
        let mut functions: Vec<FunctionSnapshot> = self
            .functions
            .iter()
            .map(|(function, history)| {
                let (name, name_base64) = split(function);
                let windows = history
                    .rings
                    .iter()
                    .map(|ring| RingSnapshot {
                        window: ring.window,
                        slot_ms: ring.window.slots().0,
                        slots: ring
                            .live_slots(now)
                            .map(|slot| SlotSnapshot { start: slot.start, stats: slot.stats.clone() })
                            .collect(),
                    })
                    .collect();
                FunctionSnapshot { function: name, function_base64: name_base64, windows }
            })
            .collect();
        functions.sort_unstable_by(|a, b| (&a.function, &a.function_base64).cmp(&(&b.function, &b.function_base64)));
        HistorySnapshot { version: SNAPSHOT_VERSION, taken_at: now, functions }
    }

    /// A history from a snapshot, at `now`: slots that have left their
    /// window since the snapshot was taken are dropped, and so are windows
    /// whose slot width is not this version's (a snapshot from a server
    /// with other window sizes).
    pub fn restore(snapshot: HistorySnapshot, now: u64) -> Result<History, SnapshotError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(snapshot.version));
        }
        let mut history = History::new();
        for function in snapshot.functions {
            let name = crate::json::join("function", function.function, function.function_base64)
                .map_err(|err| SnapshotError::Function(err.to_string()))?
                .ok_or_else(|| SnapshotError::Function("function is missing".to_owned()))?;
            let mut restored = FunctionHistory::new();
            for ring_snapshot in function.windows {
                let Some(ring) = restored.rings.iter_mut().find(|ring| ring.window == ring_snapshot.window) else {
                    continue;
                };
                let (width, count) = ring.window.slots();
                if ring_snapshot.slot_ms != width {
                    continue;
                }
                for slot in ring_snapshot.slots {
                    slot.stats.wait.validate()?;
                    slot.stats.run.validate()?;
                    if slot.start % width != 0 {
                        return Err(SnapshotError::Slot(slot.start));
                    }
                    if !ring.in_window(slot.start, now) {
                        continue;
                    }
                    if ring.slots.is_empty() {
                        ring.slots.resize_with(count, || None);
                    }
                    let index = ring.index(slot.start);
                    if ring.slots[index].is_some() {
                        return Err(SnapshotError::Slot(slot.start));
                    }
                    ring.slots[index] = Some(Box::new(Slot { start: slot.start, stats: slot.stats }));
                }
            }
            history.functions.insert(name.into_boxed_slice(), restored);
        }
        history.prune(now);
        Ok(history)
    }

    /// The answer to the admin command `history`: one line per function and
    /// window of [`ADMIN_WINDOWS`] (not the week: readers count on three
    /// lines per function; the week is in the web API's history),
    /// `function\twindow\tcompleted\tfailed\texceptions\ttimeouts\t
    /// cancelled\tdropped\tdead\twait_p50\twait_p90\twait_p99\trun_p50\t
    /// run_p90\trun_p99\tretried` (milliseconds, `-` without samples, the
    /// function name escaped; `retried` counts failed attempts a policy
    /// retried, last so that readers of the first fifteen columns are
    /// unaffected), then a line `.`.
    pub fn admin_text(&self, now: u64) -> String {
        let dash = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let mut out = String::new();
        for (function, view) in self.query_all(now) {
            for window in ADMIN_WINDOWS {
                let w = view.window(window);
                let c = &w.counts;
                let (wait, run) = (&w.queue_wait_ms, &w.run_time_ms);
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    escape(function),
                    window.as_str(),
                    c.completed,
                    c.failed,
                    c.exceptions,
                    c.timeouts,
                    c.cancelled,
                    c.dropped,
                    c.dead,
                    dash(wait.p50),
                    dash(wait.p90),
                    dash(wait.p99),
                    dash(run.p50),
                    dash(run.p90),
                    dash(run.p99),
                    c.retried,
                ));
            }
        }
        out.push_str(".\n");
        out
    }
}

/// Every slot of one window, oldest first (see [`History::series`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// The window.
    pub window: Window,
    /// The width of each slot (milliseconds).
    pub slot_ms: u64,
    /// The slots, oldest first; the last is the current one.
    pub slots: Vec<SeriesSlot>,
}

/// One slot of a [`Series`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesSlot {
    /// When the slot starts (Unix milliseconds, a multiple of the width).
    pub start: u64,
    /// Jobs that ended in it, by outcome.
    pub counts: Counts,
    /// Queue wait percentiles of the jobs that ended in it.
    pub queue_wait_ms: Percentiles,
    /// Run time percentiles of the jobs that ended in it.
    pub run_time_ms: Percentiles,
}

/// The windows admin `history` reports, as it always has: the week was
/// added later, and `sprocket admin history` and scripts expect three
/// lines per function.
pub const ADMIN_WINDOWS: [Window; 3] = [Window::Minute, Window::Hour, Window::Day];

/// The snapshot format version this crate writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// A stored form of a [`History`] (serde; JSON is the intended encoding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistorySnapshot {
    version: u32,
    /// When it was taken (Unix milliseconds).
    taken_at: u64,
    functions: Vec<FunctionSnapshot>,
}

impl HistorySnapshot {
    /// When it was taken (Unix milliseconds).
    pub fn taken_at(&self) -> u64 {
        self.taken_at
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FunctionSnapshot {
    function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    function_base64: Option<String>,
    windows: Vec<RingSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RingSnapshot {
    window: Window,
    slot_ms: u64,
    slots: Vec<SlotSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SlotSnapshot {
    start: u64,
    #[serde(flatten)]
    stats: SlotStats,
}

/// A snapshot that cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Written by another version.
    #[error("history snapshot has version {0}; this server reads version {SNAPSHOT_VERSION}")]
    Version(u32),
    /// A function name that cannot be read.
    #[error("history snapshot has a bad function name: {0}")]
    Function(String),
    /// A slot that does not start on a slot boundary, or two slots in one
    /// place.
    #[error("history snapshot has a misplaced slot starting at {0}")]
    Slot(u64),
    /// A histogram that is not well formed.
    #[error("history snapshot: {0}")]
    Histogram(#[from] BadHistogram),
}

#[cfg(test)]
mod tests;
