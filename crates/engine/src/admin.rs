//! Admin text commands, with gearmand 1.1.20's exact reply bytes.

use std::fmt::Write as _;

use bytes::Bytes;
use sprocket_proto::admin::{self, AdminCommand, AdminParse};

use crate::engine::Engine;
use crate::job::JobState;
use crate::types::*;

impl Engine {
    /// One admin text line arrived on `conn`.
    pub fn admin_line(&mut self, conn: ConnId, line: &[u8], now: Millis) {
        self.tick(now);
        match admin::parse_line(line) {
            AdminParse::Close => self.close(conn),
            AdminParse::Error(reply) => self.send(conn, Out::Text(reply)),
            AdminParse::Command(cmd) => {
                let reply = self.admin_command(cmd);
                self.send(conn, Out::Text(reply));
            }
        }
    }

    fn admin_command(&mut self, cmd: AdminCommand) -> Bytes {
        match cmd {
            AdminCommand::Workers => self.admin_workers(),
            AdminCommand::Status => self.admin_status(false),
            AdminCommand::PriorityStatus => self.admin_status(true),
            AdminCommand::ShowJobs => self.admin_show_jobs(false),
            AdminCommand::ShowUniqueJobs => self.admin_show_jobs(true),
            AdminCommand::CancelJob(handle) => self.admin_cancel(&handle),
            AdminCommand::CreateFunction(name) => {
                self.function_id(&name);
                Bytes::from_static(admin::OK)
            }
            AdminCommand::DropFunction(name) => self.admin_drop_function(&name),
            AdminCommand::MaxQueue { function, limits } => {
                if let Some(&f) = self.fn_index.get(&function) {
                    if let Some(func) = self.function_mut(f) {
                        func.max_queue = limits;
                    }
                }
                Bytes::from_static(admin::OK)
            }
            AdminCommand::GetPid => admin::ok_value(&self.config.pid.to_string()),
            AdminCommand::Verbose => admin::ok_value(&self.config.verbose),
            AdminCommand::Version => admin::ok_value(&self.config.version),
            AdminCommand::Shutdown { graceful } => {
                self.out.shutdown = Some(if graceful { ShutdownRequest::Graceful } else { ShutdownRequest::Immediate });
                Bytes::from_static(admin::OK)
            }
        }
    }

    fn admin_workers(&self) -> Bytes {
        let mut out = Vec::new();
        for id in self.conn_order.iter().rev() {
            let Some(c) = self.conns.get(id) else { continue };
            out.extend_from_slice(format!("{} {} ", c.fd, c.peer).as_bytes());
            out.extend_from_slice(&c.client_id);
            out.extend_from_slice(b" :");
            for a in &c.abilities {
                if let Some(f) = self.function(a.function) {
                    out.push(b' ');
                    out.extend_from_slice(&f.name);
                }
            }
            out.push(b'\n');
        }
        out.extend_from_slice(b".\n");
        Bytes::from(out)
    }

    /// `status`: name, total, running, workers. `prioritystatus`: name,
    /// queued high, normal, low, workers. Sorted by name for stable output.
    fn admin_status(&self, by_priority: bool) -> Bytes {
        let mut funcs: Vec<_> = self.functions.iter().flatten().collect();
        funcs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = Vec::new();
        for f in funcs {
            out.extend_from_slice(&f.name);
            let mut line = String::new();
            if by_priority {
                let _ = write!(line, "\t{}\t{}\t{}\t{}", f.queued[0], f.queued[1], f.queued[2], f.workers);
            } else {
                let _ = write!(line, "\t{}\t{}\t{}", f.total, f.running, f.workers);
            }
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(b".\n");
        Bytes::from(out)
    }

    fn admin_show_jobs(&self, uniques: bool) -> Bytes {
        let mut jobs: Vec<_> = self.jobs.values().collect();
        jobs.sort_by_key(|j| j.no);
        let mut out = Vec::new();
        for j in jobs {
            if uniques {
                out.extend_from_slice(j.unique_bytes());
            } else {
                out.extend_from_slice(j.handle_bytes());
                // gearmand flags every background job "persisted", queue
                // plugin or not; clients have only ever seen that.
                let persisted = j.background && !j.ignore;
                let line = format!("\t{}\t{}\t{}", j.attempts, u8::from(j.ignore), u8::from(persisted));
                out.extend_from_slice(line.as_bytes());
            }
            out.push(b'\n');
        }
        out.extend_from_slice(b".\n");
        Bytes::from(out)
    }

    /// Cancels a job: its clients get WORK_FAIL and its row is deleted. A
    /// queued job is removed; a running one finishes with nobody listening.
    fn admin_cancel(&mut self, handle: &[u8]) -> Bytes {
        let Some(job_no) = self.job_by_handle(handle) else {
            return Bytes::from_static(admin::ERR_UNKNOWN_JOB);
        };
        self.fail_to_clients(job_no);
        let running = self.jobs.get(&job_no).is_some_and(|j| j.is_running());
        if running {
            // The worker may still finish it, but the job is over: its row
            // goes now, or a crash before the worker ends would bring it back.
            self.delete_row(job_no);
            // Nobody may join a cancelled job (one whose clients merely
            // left can be joined; see `coalesce_target`).
            if let Some((f, unique, data)) = self.jobs.get(&job_no).map(|j| (j.function, j.unique(), j.data())) {
                self.unindex(f, job_no, &unique, data);
            }
            let clients = self.jobs.get_mut(&job_no).map(|j| {
                j.ignore = true;
                std::mem::take(&mut j.clients)
            });
            for c in clients.unwrap_or_default() {
                if let Some(conn) = self.conns.get_mut(&c) {
                    conn.waiting.retain(|&x| x != job_no);
                }
            }
        } else {
            self.end_job(job_no);
        }
        Bytes::from_static(admin::OK)
    }

    /// Drops a function (name matched case-insensitively, as gearmand
    /// does) with its queued jobs, unless workers or running jobs remain.
    fn admin_drop_function(&mut self, name: &[u8]) -> Bytes {
        let found = self
            .functions
            .iter()
            .enumerate()
            .find_map(|(i, f)| f.as_ref().filter(|f| f.name.eq_ignore_ascii_case(name)).map(|_| i as FnId));
        let Some(f) = found else {
            return Bytes::from_static(admin::ERR_FUNCTION_NOT_FOUND);
        };
        let busy = self.function(f).is_some_and(|func| func.workers > 0 || func.running > 0);
        if busy {
            return Bytes::from_static(admin::ERR_FUNCTION_BUSY);
        }
        let mut doomed: Vec<JobNo> = self.jobs.values().filter(|j| j.function == f).map(|j| j.no).collect();
        doomed.sort_unstable();
        for job_no in doomed {
            if self.jobs.get(&job_no).is_some_and(|j| j.state != JobState::Queued && j.state != JobState::Scheduled) {
                continue;
            }
            self.fail_to_clients(job_no);
            self.end_job(job_no);
        }
        if let Some(func) = self.functions.get_mut(f as usize).and_then(Option::take) {
            self.fn_index.remove(&func.name);
        }
        Bytes::from_static(admin::OK)
    }
}
