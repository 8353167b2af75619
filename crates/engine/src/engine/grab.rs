//! Handing jobs to workers, and sleeping / waking them.

use bytes::Bytes;
use sprocket_proto::Response;

use super::dispatch::GrabKind;
use crate::engine::Engine;
use crate::job::JobState;
use crate::jobs::JobTable;
use crate::types::*;

/// Whether queue entry `no` of function `f` is a job a worker may take.
fn is_runnable(jobs: &JobTable, no: JobNo, f: FnId) -> bool {
    jobs.get(no).is_some_and(|j| j.state() == JobState::Queued && j.function == f)
}

impl Engine {
    /// GRAB_JOB*: the next job of the worker's functions, or NO_JOB.
    pub(super) fn grab(&mut self, conn: ConnId, kind: GrabKind) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        c.grabbing();
        let order: Vec<(usize, FnId)> = c.abilities.iter().map(|a| a.function).enumerate().collect();
        let mut found = None;
        for (pos, f) in order {
            if let Some(job_no) = self.take_runnable(f) {
                found = Some((pos, job_no));
                break;
            }
        }
        let Some((pos, job_no)) = found else {
            self.send_packet(conn, Response::NoJob);
            return;
        };
        if self.config.round_robin {
            if let Some(c) = self.conns.get_mut(conn) {
                if pos < c.abilities.len() {
                    let a = c.abilities.remove(pos);
                    c.abilities.push(a);
                }
            }
        }
        self.assign(conn, job_no, kind);
    }

    /// Pops the next runnable job of a function: highest non-empty
    /// priority first, FIFO within it. Stale queue entries are dropped.
    /// Nothing is taken from a paused function.
    fn take_runnable(&mut self, f: FnId) -> Option<JobNo> {
        let jobs = &self.jobs;
        let func = self.functions.get_mut(f).filter(|func| !func.is_paused())?;
        func.pop_runnable(|no| is_runnable(jobs, no, f))
    }

    /// True when the function has a job a worker could take now (never
    /// while it is paused).
    pub(super) fn has_runnable(&self, f: FnId) -> bool {
        let Some(func) = self.functions.get(f).filter(|func| !func.is_paused()) else { return false };
        func.has_runnable(|no| is_runnable(&self.jobs, no, f))
    }

    fn assign(&mut self, conn: ConnId, job_no: JobNo, kind: GrabKind) {
        let can_do_timeout = self
            .jobs
            .get(job_no)
            .and_then(|j| self.conns.get(conn)?.abilities.iter().find(|a| a.function == j.function))
            .and_then(|a| a.timeout_ms);
        // The shorter of the worker's CAN_DO_TIMEOUT and its policy's limit.
        let timeout = match (can_do_timeout, self.policy_timeout_ms(job_no)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let now = self.now;
        self.record_started(job_no, conn);
        let Some(job) = self.jobs.get_mut(job_no) else { return };
        job.set_state(JobState::Running(conn));
        job.assignment = job.assignment.wrapping_add(1);
        let assignment = job.assignment;
        let (f, p) = (job.function, job.priority);
        let handle = job.handle();
        let data = job.data();
        let unique = job.unique();
        let reducer = Bytes::copy_from_slice(job.reducer());
        let function = match self.functions.get_mut(f) {
            Some(func) => {
                func.job_assigned(p);
                func.name().clone()
            }
            None => Bytes::new(),
        };
        if let Some(c) = self.conns.get_mut(conn) {
            c.running.push(job_no);
        }
        if let Some(ms) = timeout {
            self.timers.limit_attempt(now.saturating_add(ms), job_no, assignment);
        }
        let resp = match kind {
            GrabKind::Plain => Response::JobAssign { handle, function, data },
            GrabKind::All if !reducer.is_empty() => Response::JobAssignAll { handle, function, unique, reducer, data },
            GrabKind::Uniq | GrabKind::All => Response::JobAssignUniq { handle, function, unique, data },
        };
        self.send_packet(conn, resp);
    }

    /// PRE_SLEEP: a NOOP at once if there is work, otherwise the worker is
    /// listed as a sleeper of each of its functions.
    pub(super) fn pre_sleep(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(conn) else { return };
        let functions: Vec<FnId> = c.abilities.iter().map(|a| a.function).collect();
        let already_sleeping = c.is_asleep();
        if functions.iter().any(|&f| self.has_runnable(f)) {
            if let Some(c) = self.conns.get_mut(conn) {
                c.noop_sent();
            }
            self.send_packet(conn, Response::Noop);
            return;
        }
        if let Some(c) = self.conns.get_mut(conn) {
            c.fall_asleep();
        }
        if already_sleeping {
            return;
        }
        let mut seen = Vec::with_capacity(functions.len());
        for f in functions {
            if seen.contains(&f) {
                continue;
            }
            seen.push(f);
            self.add_sleeper(f, conn);
        }
    }

    /// Lists `conn` as sleeping on `f` (see [`Function::add_sleeper`]).
    ///
    /// [`Function::add_sleeper`]: crate::function::Function::add_sleeper
    pub(super) fn add_sleeper(&mut self, f: FnId, conn: ConnId) {
        let conns = &self.conns;
        let Some(func) = self.functions.get_mut(f) else { return };
        func.add_sleeper(conn, |id| conns.get(id).is_some_and(|c| c.wakeable_for(f)));
    }

    /// New work for `f`: NOOP its sleeping workers (all of them, or at most
    /// `--worker-wakeup` of them), oldest sleeper first. Nobody is woken
    /// for a paused function: there is nothing they could take.
    pub(super) fn wake_workers(&mut self, f: FnId) {
        if self.functions.is_paused(f) {
            return;
        }
        let limit = self.config.worker_wakeup as usize;
        let mut woken = 0;
        loop {
            if limit > 0 && woken >= limit {
                break;
            }
            let Some(func) = self.functions.get_mut(f) else { return };
            let Some(conn) = func.pop_sleeper() else { break };
            let Some(c) = self.conns.get_mut(conn) else { continue };
            if !c.wakeable_for(f) {
                continue;
            }
            c.noop_sent();
            woken += 1;
            self.send_packet(conn, Response::Noop);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sprocket_proto::{Priority, Request, SubmitMode};

    use crate::{Config, Engine};

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn sleepers_of(e: &Engine, name: &str) -> usize {
        let f = e.functions.id_of(name.as_bytes()).expect("function");
        e.functions.get(f).map_or(0, |func| func.sleeper_entries())
    }

    #[test]
    fn sleepers_of_an_idle_function_stay_bounded() {
        let mut e = Engine::new(Config::default());
        let (client, worker) = (1, 2);
        e.connected(client, 11, "c".into());
        e.connected(worker, 12, "w".into());
        for name in ["busy", "idle"] {
            e.request(worker, Request::CanDo { function: b(name) }, 0);
        }
        let mode = SubmitMode { priority: Priority::Normal, background: true };
        for i in 0..1000 {
            // Sleep, get woken by work for the busy function, take it.
            e.request(worker, Request::PreSleep, 0);
            e.request(client, Request::SubmitJob { mode, function: b("busy"), unique: b(""), data: b("x") }, 0);
            e.request(worker, Request::GrabJob, 0);
            let handle = e
                .take_outbox()
                .sends
                .into_iter()
                .find_map(|(_, out)| match out {
                    crate::Out::Packet(sprocket_proto::Response::JobAssign { handle, .. }) => Some(handle),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("round {i}: no job assigned"));
            e.request(worker, Request::WorkComplete { handle, data: b("") }, 0);
            // A polling worker: GRAB_JOB, NO_JOB, PRE_SLEEP, time out, again.
            e.request(worker, Request::GrabJob, 0);
            e.request(worker, Request::PreSleep, 0);
            e.request(worker, Request::GrabJob, 0);
            let _ = e.take_outbox();
        }
        assert!(sleepers_of(&e, "idle") <= 2 + 16, "idle function lists {} sleepers", sleepers_of(&e, "idle"));
        // Still woken by work for the idle function.
        e.request(worker, Request::PreSleep, 0);
        let _ = e.take_outbox();
        e.request(client, Request::SubmitJob { mode, function: b("idle"), unique: b(""), data: b("y") }, 0);
        let noops = e
            .take_outbox()
            .sends
            .into_iter()
            .filter(|(c, out)| *c == worker && matches!(out, crate::Out::Packet(sprocket_proto::Response::Noop)))
            .count();
        assert_eq!(noops, 1, "the sleeping worker is woken once");
    }
}
