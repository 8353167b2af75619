//! Pausing, resuming and purging one function, for operators stopping a
//! flood of failing jobs: a paused function's jobs keep queueing (durably,
//! as ever) but no worker is handed one or woken for one; resuming hands
//! them out again and wakes the sleeping workers; purging ends its queued
//! and scheduled jobs (not those a worker runs) through the one end of
//! every job, as [`Outcome::Purged`].
//!
//! Paused functions outlive a restart when the store keeps settings
//! ([`Config::settings_durable`]): each change is handed to the server as
//! a [`SettingWrite`], and an admin connection's `OK` waits, in order with
//! its other replies, until the server reports the write durable.

use bytes::Bytes;

use super::reserved::RESERVED_PREFIX;
use crate::commands::CommandError;
use crate::engine::Engine;
use crate::outcome::Outcome;
use crate::records::{ReadPurpose, ReadWaiter};
use crate::types::*;

impl Engine {
    /// Marks `name` paused as the store kept it, at start-up before the
    /// replay: nothing is written back and nobody is woken.
    pub fn restore_paused(&mut self, name: &Bytes) {
        self.function_id(name);
        self.functions.set_paused(name, true);
    }

    /// Pauses or resumes function `name` in memory, at once, and asks for
    /// the setting to be made durable. Returns the id of that write, to
    /// wait for (`None` when settings are not kept in the store).
    pub(crate) fn set_paused(&mut self, name: &[u8], paused: bool) -> Result<Option<u64>, CommandError> {
        if name.starts_with(RESERVED_PREFIX) {
            return Err(CommandError::ReservedFunction);
        }
        if paused {
            // Made if unknown, so that it shows as paused and its first
            // jobs already wait.
            self.function_id(&Bytes::copy_from_slice(name));
        } else if self.functions.id_of(name).is_none() && !self.functions.name_paused(name) {
            return Err(CommandError::FunctionNotFound);
        }
        if self.functions.set_paused(name, paused) {
            let function = String::from_utf8_lossy(name);
            tracing::info!(%function, "{}", if paused { "function paused by an operator" } else { "function resumed" });
        }
        if !paused {
            if let Some(f) = self.functions.id_of(name) {
                if self.has_runnable(f) {
                    self.wake_workers(f);
                }
            }
        }
        if !self.config.settings_durable {
            return Ok(None);
        }
        let id = self.pending_reads.number();
        let value = paused.then(|| format!("{{\"since_ms\":{}}}", self.now));
        self.out.setting_writes.push(SettingWrite {
            id,
            kind: PAUSED_SETTING,
            name: Bytes::copy_from_slice(name),
            value,
        });
        Ok(Some(id))
    }

    /// Ends the queued and scheduled jobs of function `name` (oldest
    /// first; running ones are left to their workers) as purged: their
    /// clients get WORK_FAIL and their rows are deleted. Returns how many.
    pub(crate) fn purge(&mut self, name: &[u8]) -> Result<usize, CommandError> {
        let f = self.functions.id_of(name).ok_or(CommandError::FunctionNotFound)?;
        let mut doomed: Vec<JobNo> =
            self.jobs.iter().filter(|j| j.function == f && !j.is_running()).map(|j| j.no).collect();
        doomed.sort_unstable();
        for &job_no in &doomed {
            self.finish_job(job_no, Outcome::Purged);
        }
        let function = String::from_utf8_lossy(name);
        tracing::info!(%function, jobs = doomed.len(), "queued jobs purged by an operator");
        Ok(doomed.len())
    }

    /// Admin `pause NAME` / `resume NAME`: `OK` once the change is durable.
    pub(crate) fn admin_set_paused(&mut self, conn: ConnId, name: &[u8], paused: bool) {
        match self.set_paused(name, paused) {
            Err(e) => self.send(conn, Out::Text(crate::admin::command_error_line(e))),
            Ok(None) => self.send(conn, Out::Text(Bytes::from_static(sprocket_proto::admin::OK))),
            Ok(Some(id)) => self.answer_when_saved(conn, id, if paused { "paused" } else { "resumed" }),
        }
    }

    /// Answers admin connection `conn` once setting write `id` is durable
    /// (or has failed), in order with its other replies; `change` says
    /// what the command did.
    pub(super) fn answer_when_saved(&mut self, conn: ConnId, id: u64, change: &'static str) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        self.pending_reads.wait(id, ReadWaiter::Conn(conn, ReadPurpose::AdminSetting { change }));
        self.ledger.hold_read(conn, &mut c.held, id);
    }

    /// Admin `purge queued NAME`: `OK <n>` once the deletes of the purged
    /// jobs' rows are handled by the store, so that a crash after the
    /// answer does not bring them back.
    pub(crate) fn admin_purge_queued(&mut self, conn: ConnId, name: &[u8]) {
        let before = self.ledger.last_written();
        let reply = match self.purge(name) {
            Ok(n) => sprocket_proto::admin::ok_value(&n.to_string()),
            Err(e) => crate::admin::command_error_line(e),
        };
        self.reply_when_written(conn, before, reply);
    }

    /// Answers `conn` with `reply` once everything written since `before`
    /// (the latest store operation when the command began) is durable.
    pub(super) fn reply_when_written(&mut self, conn: ConnId, before: u64, reply: Bytes) {
        let last = self.ledger.last_written();
        if last == before {
            self.send(conn, Out::Text(reply));
            return;
        }
        let Some(c) = self.conns.get_mut(conn) else { return };
        self.ledger.reply_after(conn, &mut c.held, last, Out::Text(reply), &mut self.out.sends);
    }

    /// The server made (or failed to make) setting write `id` durable, as
    /// [`Outbox::setting_writes`] asked. An admin connection waiting for it
    /// gets its answer, in order with its other replies. A failed write
    /// leaves the change in force in memory, unsaved: the answer says so.
    pub fn setting_write_done(&mut self, id: u64, result: Result<(), String>, now: Millis) {
        self.tick(now);
        if let Err(e) = &result {
            tracing::warn!(error = %e, "an operator setting could not be saved in the store");
        }
        let Some(ReadWaiter::Conn(conn, purpose)) = self.pending_reads.finish(id).map(|read| read.waiter) else {
            return;
        };
        let ReadPurpose::AdminSetting { change } = purpose else { return };
        let answer = match result {
            Ok(()) => Bytes::from_static(sprocket_proto::admin::OK),
            Err(e) => Bytes::from(format!(
                "ERR SETTING_NOT_SAVED {}\r\n",
                format!("{change} until the server restarts, but not saved: {e}").replace([' ', '\r', '\n'], "+")
            )),
        };
        let Some(c) = self.conns.get_mut(conn) else { return };
        c.held.answer_read(id, vec![Out::Text(answer)]);
        self.release_held(&Default::default());
    }
}
