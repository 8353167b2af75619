//! The cron table: every recurring job's definition, where it came from,
//! the last run submitted and the next one due. It decides *when*; the
//! engine submits the jobs.

use std::collections::{BTreeMap, VecDeque};

use super::spec::CronSpec;
use super::{CatchUp, MAX_CATCH_UP};

/// A timer to set: (entry version, run time in Unix seconds).
pub(crate) type Arm = (u64, i64);

/// A run to submit: (entry name, run time in Unix seconds).
pub(crate) type Run = (String, i64);

/// Where an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronSource {
    /// The policy file (replaced whole on each reload).
    File,
    /// `cron add` at run time (kept in the store).
    Runtime,
}

impl CronSource {
    /// `file` or `runtime`.
    pub fn as_str(self) -> &'static str {
        match self {
            CronSource::File => "file",
            CronSource::Runtime => "runtime",
        }
    }
}

/// One entry and its timing.
#[derive(Debug, Clone)]
pub(crate) struct CronEntry {
    pub spec: CronSpec,
    pub source: CronSource,
    /// Changes whenever the entry is replaced or re-armed, so a timer set
    /// for an earlier version is recognised as stale.
    pub id: u64,
    /// The next run (Unix seconds), once the table is started.
    pub next: Option<i64>,
    /// The last run submitted (Unix seconds), as kept in the store.
    pub last: Option<i64>,
}

/// Why a change to the table was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronError {
    /// `cron add` of a name in use.
    NameTaken {
        /// The entry already there came from the file (else: at run time).
        from_file: bool,
    },
    /// No entry has that name.
    UnknownEntry,
    /// `cron remove` of an entry from the policy file.
    FromFile,
    /// The JSON of `cron add` cannot be used.
    BadSpec(String),
    /// The run's job could not be submitted (the submission's refusal).
    NotSubmitted(&'static str),
}

impl std::fmt::Display for CronError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CronError::NameTaken { from_file: true } => {
                f.write_str("the policy file already has an entry of that name")
            }
            CronError::NameTaken { from_file: false } => {
                f.write_str("an entry of that name exists (cron remove it first)")
            }
            CronError::UnknownEntry => f.write_str("no cron entry has that name"),
            CronError::FromFile => {
                f.write_str("the entry comes from the policy file: edit the file and reload (SIGHUP)")
            }
            CronError::BadSpec(why) => f.write_str(why),
            CronError::NotSubmitted(why) => write!(f, "the job could not be submitted: {why}"),
        }
    }
}

impl std::error::Error for CronError {}

/// The entries, by name.
#[derive(Debug, Default)]
pub(crate) struct CronTable {
    entries: BTreeMap<String, CronEntry>,
    /// Last runs kept in the store, for entries not (yet) defined.
    restored_last: BTreeMap<String, i64>,
    next_id: u64,
    /// Whether next runs are computed (after the start-up replay).
    started: bool,
}

impl CronTable {
    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Every entry, by name.
    pub fn entries(&self) -> impl Iterator<Item = &CronEntry> {
        self.entries.values()
    }

    pub fn get(&self, name: &str) -> Option<&CronEntry> {
        self.entries.get(name)
    }

    /// Replaces the file's entries. An unchanged entry keeps its timing; a
    /// name a run-time entry already has is skipped (returned, for the
    /// log): the operator's entry stays until removed. Returns the names
    /// skipped and the entries to arm.
    pub fn set_file(&mut self, specs: Vec<CronSpec>, now: i64) -> (Vec<String>, Vec<Arm>) {
        let mut skipped = Vec::new();
        let mut arm = Vec::new();
        let wanted: Vec<String> = specs.iter().map(|s| s.name.as_str().to_owned()).collect();
        self.entries.retain(|name, e| e.source == CronSource::Runtime || wanted.contains(name));
        for spec in specs {
            let name = spec.name.as_str().to_owned();
            match self.entries.get(&name) {
                Some(e) if e.source == CronSource::Runtime => {
                    skipped.push(name);
                    continue;
                }
                Some(e) if e.spec == spec => continue,
                _ => {}
            }
            let last = self.entries.get(&name).and_then(|e| e.last).or_else(|| self.restored_last.get(&name).copied());
            arm.extend(self.put(spec, CronSource::File, last, now));
        }
        (skipped, arm)
    }

    /// Adds a run-time entry (refused if the name is in use); returns the
    /// entry to arm.
    pub fn add_runtime(&mut self, spec: CronSpec, now: i64) -> Result<Option<Arm>, CronError> {
        if let Some(e) = self.entries.get(spec.name.as_str()) {
            return Err(CronError::NameTaken { from_file: e.source == CronSource::File });
        }
        let last = self.restored_last.get(spec.name.as_str()).copied();
        Ok(self.put(spec, CronSource::Runtime, last, now))
    }

    /// A run-time entry as the store kept it (at start-up).
    pub fn restore_runtime(&mut self, spec: CronSpec) {
        let last = self.restored_last.get(spec.name.as_str()).copied();
        self.put(spec, CronSource::Runtime, last, 0);
    }

    /// The last run of `name` as the store kept it (at start-up).
    pub fn restore_last(&mut self, name: &str, tick: i64) {
        self.note_tick(name, tick);
    }

    /// A run of `name` at `tick` is known to have been submitted (kept in
    /// the store, or a job of the entry found in the replayed queue).
    pub fn note_tick(&mut self, name: &str, tick: i64) {
        let slot = self.restored_last.entry(name.to_owned()).or_insert(tick);
        *slot = (*slot).max(tick);
        if let Some(e) = self.entries.get_mut(name) {
            e.last = Some(e.last.map_or(tick, |l| l.max(tick)));
        }
    }

    /// Removes a run-time entry; the file's are refused.
    pub fn remove_runtime(&mut self, name: &str) -> Result<CronEntry, CronError> {
        match self.entries.get(name) {
            None => Err(CronError::UnknownEntry),
            Some(e) if e.source == CronSource::File => Err(CronError::FromFile),
            Some(_) => {
                self.restored_last.remove(name);
                self.entries.remove(name).ok_or(CronError::UnknownEntry)
            }
        }
    }

    fn put(&mut self, spec: CronSpec, source: CronSource, last: Option<i64>, now: i64) -> Option<Arm> {
        let id = self.new_id();
        let name = spec.name.as_str().to_owned();
        let mut entry = CronEntry { spec, source, id, next: None, last };
        let arm = if self.started { arm_entry(&mut entry, now) } else { None };
        self.entries.insert(name, entry);
        arm
    }

    /// Starts the table at `now` (after the replay): the runs each entry
    /// missed since its last recorded run, as its `catch_up` says, and the
    /// entries to arm.
    pub fn start(&mut self, now: i64) -> (Vec<Run>, Vec<Arm>) {
        self.started = true;
        let mut missed = Vec::new();
        let mut arm = Vec::new();
        for entry in self.entries.values_mut() {
            if let Some(last) = entry.last {
                for tick in missed_ticks(&entry.spec, last, now) {
                    missed.push((entry.spec.name.as_str().to_owned(), tick));
                }
            }
            arm.extend(arm_entry(entry, now));
        }
        (missed, arm)
    }

    /// A timer came due: if it is still the entry's (same id, same next
    /// run), the run to submit, with the entry re-armed for the run after
    /// `now` (runs the server slept through are not made up while it runs).
    pub fn due(&mut self, id: u64, at: i64, now: i64) -> Option<(CronSpec, Option<Arm>)> {
        let entry = self.entries.values_mut().find(|e| e.id == id)?;
        if entry.next != Some(at) {
            return None;
        }
        entry.last = Some(at);
        let spec = entry.spec.clone();
        entry.id = self.next_id + 1;
        self.next_id += 1;
        let arm = arm_entry(entry, now.max(at));
        Some((spec, arm))
    }

    /// Records a run submitted by hand or a catch-up run as the last.
    pub fn set_last(&mut self, name: &str, tick: i64) {
        self.note_tick(name, tick);
    }
}

/// Computes the entry's next run after `now` (never at or before its last
/// run, should the clock have gone back); the timer to set.
fn arm_entry(entry: &mut CronEntry, now: i64) -> Option<Arm> {
    let after = entry.last.map_or(now, |last| last.max(now));
    entry.next = entry.spec.schedule.next_after(after, entry.spec.timezone.tz());
    entry.next.map(|at| (entry.id, at))
}

/// Most schedule times walked through when counting missed runs; past
/// it, only the last day before `now` is looked at (a seconds schedule
/// down for weeks would otherwise be walked for a long time).
const MAX_WALK: usize = 100_000;

/// The runs `spec` missed after `last` up to `now`, as its catch-up mode
/// wants them: none; the most recent; or all, oldest first, at most
/// [`MAX_CATCH_UP`] (the most recent ones).
pub(crate) fn missed_ticks(spec: &CronSpec, last: i64, now: i64) -> Vec<i64> {
    let keep = match spec.catch_up {
        CatchUp::None => return Vec::new(),
        CatchUp::Last => 1,
        CatchUp::All => MAX_CATCH_UP,
    };
    let tz = spec.timezone.tz();
    let walk = |from: i64| -> Option<VecDeque<i64>> {
        let mut kept = VecDeque::new();
        let mut at = from;
        for _ in 0..MAX_WALK {
            match spec.schedule.next_after(at, tz) {
                Some(t) if t <= now => {
                    if kept.len() == keep {
                        kept.pop_front();
                    }
                    kept.push_back(t);
                    at = t;
                }
                _ => return Some(kept),
            }
        }
        None
    };
    let kept = walk(last).or_else(|| walk(last.max(now - 86_400))).unwrap_or_default();
    kept.into()
}
