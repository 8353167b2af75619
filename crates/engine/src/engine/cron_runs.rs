//! Recurring jobs in the engine: the cron table's runs become background
//! jobs through the same path as a client's submission (durable insert,
//! record, NOOPs to sleeping workers; a paused function's job queues and
//! waits), each run's time is kept in the store so that a restart neither
//! repeats nor (with `catch_up`) forgets runs, and the admin `cron`
//! commands.

use std::io::Write as _;

use bytes::Bytes;
use sprocket_proto::admin::CronCommand;

use super::dispatch::Submit;
use super::submit::Refusal;
use crate::cron::{
    iso_time, manual_unique, parse_tick_unique, tick_unique, CronError, CronSpec, CronView, CRON_SETTING,
    CRON_TICK_SETTING,
};
use crate::engine::Engine;
use crate::records::{ReadPurpose, ReadWaiter};
use crate::types::*;

impl Engine {
    /// Replaces the policy file's cron entries (at start-up and on each
    /// reload). An entry whose name a run-time entry already has is
    /// skipped, with a warning: the operator's stays until removed.
    pub fn set_file_cron(&mut self, specs: Vec<CronSpec>) {
        let now = self.now_secs();
        let (skipped, arm) = self.cron.set_file(specs, now);
        for name in skipped {
            tracing::warn!(entry = %name, "the policy file's cron entry is ignored: a run-time entry (cron add) has its name");
        }
        self.arm_cron(arm);
    }

    /// A run-time cron entry as the store kept it, at start-up.
    pub fn restore_cron(&mut self, spec: CronSpec) {
        self.cron.restore_runtime(spec);
    }

    /// The last run submitted for entry `name` (Unix seconds), as the
    /// store kept it, at start-up.
    pub fn restore_cron_tick(&mut self, name: &str, tick: i64) {
        self.cron.restore_last(name, tick);
    }

    /// Starts the cron table once the store is replayed: each entry's
    /// missed runs are submitted as its `catch_up` says, and its next run
    /// is set. A replayed job of a run counts as that run submitted.
    pub fn start_cron(&mut self) {
        let seen: Vec<(String, i64)> = self
            .jobs
            .iter()
            .filter_map(|j| parse_tick_unique(j.unique_bytes()).map(|(name, tick)| (name.to_owned(), tick)))
            .collect();
        for (name, tick) in seen {
            self.cron.note_tick(&name, tick);
        }
        let (missed, arm) = self.cron.start(self.now_secs());
        for (name, tick) in missed {
            let Some(spec) = self.cron.get(&name).map(|e| e.spec.clone()) else { continue };
            tracing::info!(entry = %name, run = tick, "submitting a cron run missed while the server was down");
            self.submit_run(&spec, tick);
        }
        self.arm_cron(arm);
    }

    /// Every cron entry with its next run, by name.
    pub fn cron_entries(&self) -> Vec<CronView> {
        self.cron
            .entries()
            .map(|e| CronView { spec: e.spec.clone(), source: e.source, next: e.next, last: e.last })
            .collect()
    }

    /// Adds a run-time cron entry (refused if its name is in use) and asks
    /// for it to be kept in the store: returns the id of that write (see
    /// [`Engine::setting_write_done`]; `None` when settings are not kept).
    pub fn add_cron(&mut self, spec: CronSpec) -> Result<Option<u64>, CronError> {
        let name = spec.name.as_str().to_owned();
        let json = spec.to_json();
        let arm = self.cron.add_runtime(spec, self.now_secs())?;
        self.arm_cron(arm);
        tracing::info!(entry = %name, "cron entry added by an operator");
        Ok(self.write_setting(CRON_SETTING, &name, Some(json)))
    }

    /// Removes a run-time cron entry (the file's are refused) and its
    /// settings; returns the id of the write to wait for, as
    /// [`Engine::add_cron`] does.
    pub fn remove_cron(&mut self, name: &str) -> Result<Option<u64>, CronError> {
        self.cron.remove_runtime(name)?;
        tracing::info!(entry = %name, "cron entry removed by an operator");
        self.write_setting(CRON_TICK_SETTING, name, None);
        Ok(self.write_setting(CRON_SETTING, name, None))
    }

    /// Submits one job for entry `name` now (`cron run`), under the unique
    /// `cron:<name>:manual:<ms>`; returns the job's handle. Its schedule
    /// is untouched.
    pub fn run_cron(&mut self, name: &str) -> Result<Bytes, CronError> {
        let spec = self.cron.get(name).map(|e| e.spec.clone()).ok_or(CronError::UnknownEntry)?;
        let unique = manual_unique(name, self.now);
        let job_no = self.submit_cron_job(&spec, unique).map_err(|r| CronError::NotSubmitted(r.text))?;
        Ok(self.jobs.get(job_no).map(|j| j.handle()).unwrap_or_default())
    }

    /// A cron timer came due.
    pub(super) fn cron_due(&mut self, entry: u64, at: i64) {
        let Some((spec, arm)) = self.cron.due(entry, at, self.now_secs()) else { return };
        self.submit_run(&spec, at);
        self.arm_cron(arm);
    }

    fn arm_cron(&mut self, arm: impl IntoIterator<Item = (u64, i64)>) {
        for (entry, at) in arm {
            self.timers.cron_run(at, entry);
        }
    }

    /// Submits the scheduled run of `spec` at `tick` and keeps the tick in
    /// the store as the entry's last run.
    fn submit_run(&mut self, spec: &CronSpec, tick: i64) {
        let name = spec.name.as_str();
        self.cron.set_last(name, tick);
        if let Err(refusal) = self.submit_cron_job(spec, tick_unique(name, tick)) {
            tracing::warn!(entry = %name, run = tick, function = spec.function.as_str(), reason = refusal.text,
                "a cron run could not be submitted");
        }
        self.write_setting(CRON_TICK_SETTING, name, Some(tick.to_string()));
    }

    fn submit_cron_job(&mut self, spec: &CronSpec, unique: String) -> Result<JobNo, Refusal> {
        self.submit_from(
            None,
            Submit {
                function: Bytes::copy_from_slice(spec.function.as_str().as_bytes()),
                unique: Bytes::from(unique),
                data: Bytes::copy_from_slice(spec.payload.as_bytes()),
                priority: spec.priority.priority(),
                background: true,
                ..Submit::default()
            },
        )
    }

    /// Asks the server to keep (or, with `None`, remove) a setting;
    /// returns the write's id, or `None` when settings are not kept.
    fn write_setting(&mut self, kind: &'static str, name: &str, value: Option<String>) -> Option<u64> {
        if !self.config.settings_durable {
            return None;
        }
        let id = self.pending_reads.number();
        self.out.setting_writes.push(SettingWrite { id, kind, name: Bytes::copy_from_slice(name.as_bytes()), value });
        Some(id)
    }

    // ----- admin text ---------------------------------------------------

    /// Admin `cron …`.
    pub(crate) fn admin_cron(&mut self, conn: ConnId, cmd: CronCommand) {
        let name_of = |raw: &Bytes| String::from_utf8_lossy(raw).into_owned();
        let (result, change) = match cmd {
            CronCommand::List => {
                let listing = cron_listing(&self.cron_entries());
                self.send(conn, Out::Text(listing));
                return;
            }
            CronCommand::Run(name) => {
                let before = self.ledger.last_written();
                let reply = match self.run_cron(&name_of(&name)) {
                    Ok(handle) => {
                        let mut line = b"OK ".to_vec();
                        line.extend_from_slice(&handle);
                        line.push(b'\n');
                        Bytes::from(line)
                    }
                    Err(e) => cron_error_line(&e),
                };
                // Answered once the job's insert is durable, as a
                // JOB_CREATED would be.
                let last = self.ledger.last_written();
                if last == before {
                    self.send(conn, Out::Text(reply));
                } else if let Some(c) = self.conns.get_mut(conn) {
                    self.ledger.reply_after(conn, &mut c.held, last, Out::Text(reply), &mut self.out.sends);
                }
                return;
            }
            CronCommand::Add(json) => {
                let spec = std::str::from_utf8(&json)
                    .map_err(|_| CronError::BadSpec("the entry is not UTF-8 text".into()))
                    .and_then(|text| CronSpec::from_json(text).map_err(CronError::BadSpec));
                (spec.and_then(|spec| self.add_cron(spec)), "cron entry added")
            }
            CronCommand::Remove(name) => (self.remove_cron(&name_of(&name)), "cron entry removed"),
        };
        match result {
            Err(e) => self.send(conn, Out::Text(cron_error_line(&e))),
            Ok(None) => self.send(conn, Out::Text(Bytes::from_static(sprocket_proto::admin::OK))),
            Ok(Some(id)) => {
                let Some(c) = self.conns.get_mut(conn) else { return };
                self.pending_reads.wait(id, ReadWaiter::Conn(conn, ReadPurpose::AdminSetting { change }));
                self.ledger.hold_read(conn, &mut c.held, id);
            }
        }
    }
}

/// `ERR <CODE> <text with + for spaces>`.
pub(crate) fn cron_error_line(e: &CronError) -> Bytes {
    let code = match e {
        CronError::NameTaken { .. } => "CRON_EXISTS",
        CronError::UnknownEntry => "CRON_UNKNOWN",
        CronError::FromFile => "CRON_FROM_FILE",
        CronError::BadSpec(_) => "INVALID_CRON",
        CronError::NotSubmitted(_) => "CRON_NOT_SUBMITTED",
    };
    Bytes::from(format!("ERR {code} {}\r\n", e.to_string().replace([' ', '\r', '\n'], "+")))
}

/// `cron list`: per entry, tab-separated: name, schedule, time zone,
/// function, next run (Unix seconds and ISO 8601 in the entry's zone, `-`
/// when none), source, catch-up, priority, last run (Unix seconds or
/// `-`); then a line with a single dot.
fn cron_listing(entries: &[CronView]) -> Bytes {
    let mut out = Vec::new();
    for e in entries {
        let s = &e.spec;
        let (next, next_iso) = match e.next {
            Some(at) => (at.to_string(), iso_time(at, s.timezone.tz()).unwrap_or_else(|| "-".into())),
            None => ("-".into(), "-".into()),
        };
        let last = e.last.map_or_else(|| "-".to_owned(), |l| l.to_string());
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{next}\t{next_iso}\t{}\t{}\t{}\t{last}",
            s.name,
            s.schedule.as_str(),
            s.timezone.name(),
            s.function.as_str(),
            e.source.as_str(),
            s.catch_up.as_str(),
            s.priority.as_str(),
        );
    }
    out.extend_from_slice(b".\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
