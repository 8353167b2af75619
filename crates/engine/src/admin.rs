//! Admin text commands, with gearmand 1.1.20's exact reply bytes.

use std::fmt::Write as _;

use bytes::Bytes;
use sprocket_proto::admin::{self, AdminCommand, AdminParse};

use crate::engine::Engine;
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
                self.set_queue_limits(&function, limits);
                Bytes::from_static(admin::OK)
            }
            AdminCommand::GetPid => admin::ok_value(&self.config().pid.to_string()),
            AdminCommand::Verbose => admin::ok_value(&self.config().verbose),
            AdminCommand::Version => admin::ok_value(&self.config().version),
            AdminCommand::Shutdown { graceful } => {
                self.outbox().shutdown =
                    Some(if graceful { ShutdownRequest::Graceful } else { ShutdownRequest::Immediate });
                Bytes::from_static(admin::OK)
            }
        }
    }

    fn admin_workers(&self) -> Bytes {
        let mut out = Vec::new();
        for (_, c) in self.conn_table().in_arrival_order().rev() {
            out.extend_from_slice(format!("{} {} ", c.fd, c.peer).as_bytes());
            out.extend_from_slice(&c.client_id);
            out.extend_from_slice(b" :");
            for a in &c.abilities {
                if let Some(f) = self.function(a.function) {
                    out.push(b' ');
                    out.extend_from_slice(f.name());
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
        let mut funcs: Vec<_> = self.function_table().iter().collect();
        funcs.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        for f in funcs {
            out.extend_from_slice(f.name());
            let mut line = String::new();
            if by_priority {
                let queued = f.queued();
                let _ = write!(line, "\t{}\t{}\t{}\t{}", queued[0], queued[1], queued[2], f.workers());
            } else {
                let _ = write!(line, "\t{}\t{}\t{}", f.total(), f.running(), f.workers());
            }
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(b".\n");
        Bytes::from(out)
    }

    fn admin_show_jobs(&self, uniques: bool) -> Bytes {
        let mut jobs: Vec<_> = self.job_table().iter().collect();
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
        self.cancel(job_no);
        Bytes::from_static(admin::OK)
    }

    /// Drops a function (name matched case-insensitively, as gearmand
    /// does) with its queued jobs, unless workers or running jobs remain.
    fn admin_drop_function(&mut self, name: &[u8]) -> Bytes {
        let Some(f) = self.function_table().find_ignore_case(name) else {
            return Bytes::from_static(admin::ERR_FUNCTION_NOT_FOUND);
        };
        let busy = self.function(f).is_some_and(|func| func.workers() > 0 || func.running() > 0);
        if busy {
            return Bytes::from_static(admin::ERR_FUNCTION_BUSY);
        }
        self.remove_function(f);
        Bytes::from_static(admin::OK)
    }
}
