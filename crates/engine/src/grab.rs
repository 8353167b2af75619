//! Handing jobs to workers, and sleeping / waking them.

use sprocket_proto::Response;

use crate::dispatch::GrabKind;
use crate::engine::Engine;
use crate::job::JobState;
use crate::types::*;

impl Engine {
    pub(crate) fn grab(&mut self, conn: ConnId, kind: GrabKind) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        c.sleeping = false;
        c.noop_sent = false;
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
            if let Some(c) = self.conns.get_mut(&conn) {
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
    fn take_runnable(&mut self, f: FnId) -> Option<JobNo> {
        let func = self.functions.get_mut(f as usize)?.as_mut()?;
        for q in func.queues.iter_mut() {
            while let Some(job_no) = q.pop_front() {
                match self.jobs.get(&job_no) {
                    Some(job) if job.state == JobState::Queued && job.function == f => return Some(job_no),
                    _ => continue,
                }
            }
        }
        None
    }

    /// True when the function has a job a worker could take now.
    pub(crate) fn has_runnable(&self, f: FnId) -> bool {
        let Some(func) = self.function(f) else { return false };
        func.queues
            .iter()
            .flatten()
            .any(|no| self.jobs.get(no).is_some_and(|j| j.state == JobState::Queued && j.function == f))
    }

    fn assign(&mut self, conn: ConnId, job_no: JobNo, kind: GrabKind) {
        let timeout = self
            .jobs
            .get(&job_no)
            .and_then(|j| self.conns.get(&conn)?.abilities.iter().find(|a| a.function == j.function))
            .and_then(|a| a.timeout_ms);
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&job_no) else { return };
        job.state = JobState::Running(conn);
        job.assignment = job.assignment.wrapping_add(1);
        let assignment = job.assignment;
        let (f, p) = (job.function, job.priority);
        let handle = job.handle();
        let data = job.data();
        let unique = job.unique();
        let reducer = bytes::Bytes::copy_from_slice(job.reducer());
        let function = self.function(f).map(|x| x.name.clone()).unwrap_or_default();
        if let Some(func) = self.function_mut(f) {
            func.running += 1;
            func.queued[p.index()] = func.queued[p.index()].saturating_sub(1);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.running.push(job_no);
        }
        if let Some(ms) = timeout {
            self.timeouts.push(std::cmp::Reverse((now + ms, job_no, assignment)));
        }
        let resp = match kind {
            GrabKind::Plain => Response::JobAssign { handle, function, data },
            GrabKind::All if !reducer.is_empty() => Response::JobAssignAll { handle, function, unique, reducer, data },
            GrabKind::Uniq | GrabKind::All => Response::JobAssignUniq { handle, function, unique, data },
        };
        self.send_packet(conn, resp);
    }

    pub(crate) fn pre_sleep(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else { return };
        let functions: Vec<FnId> = c.abilities.iter().map(|a| a.function).collect();
        let already_sleeping = c.sleeping && !c.noop_sent;
        if functions.iter().any(|&f| self.has_runnable(f)) {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.noop_sent = true;
                c.sleeping = false;
            }
            self.send_packet(conn, Response::Noop);
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.sleeping = true;
            c.noop_sent = false;
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

    /// Lists `conn` as sleeping on `f`. Entries go stale (the worker woke
    /// for another function, or left) and are normally dropped when work
    /// for `f` pops them; a function that rarely gets work would keep them
    /// all, one more each time its workers sleep (a worker polling with a
    /// timeout sleeps every few hundred milliseconds). So once the list
    /// holds well over one entry per registered worker, it is compacted to
    /// the workers still asleep on `f`, each once: its length stays
    /// proportional to the workers, at a constant cost per entry.
    pub(crate) fn add_sleeper(&mut self, f: FnId, conn: ConnId) {
        let Some(func) = self.functions.get_mut(f as usize).and_then(Option::as_mut) else { return };
        func.sleepers.push_back(conn);
        if func.sleepers.len() <= 2 * func.workers + 16 {
            return;
        }
        let conns = &self.conns;
        let mut kept = crate::hash::FastSet::default();
        func.sleepers
            .retain(|id| conns.get(id).is_some_and(|c| c.sleeping && !c.noop_sent && c.can_do(f)) && kept.insert(*id));
    }

    /// New work for `f`: NOOP its sleeping workers (all of them, or at most
    /// `--worker-wakeup` of them), oldest sleeper first.
    pub(crate) fn wake_workers(&mut self, f: FnId) {
        let limit = self.config.worker_wakeup as usize;
        let mut woken = 0;
        loop {
            if limit > 0 && woken >= limit {
                break;
            }
            let Some(func) = self.functions.get_mut(f as usize).and_then(Option::as_mut) else { return };
            let Some(conn) = func.sleepers.pop_front() else { break };
            let Some(c) = self.conns.get_mut(&conn) else { continue };
            if !c.sleeping || c.noop_sent || !c.can_do(f) {
                continue;
            }
            c.noop_sent = true;
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
        let f = e.fn_index.get(name.as_bytes()).copied().expect("function");
        e.function(f).map_or(0, |func| func.sleepers.len())
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
