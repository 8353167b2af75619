//! Admin text commands, with gearmand 1.1.20's exact reply bytes, rendered
//! from the typed views (`views.rs`) and command results (`commands.rs`).

use std::io::Write as _;

use bytes::Bytes;
use sprocket_proto::admin::{self, AdminCommand, AdminParse};

use crate::commands::CommandError;
use crate::engine::Engine;
use crate::types::*;
use crate::views::{FunctionView, JobFilter, JobView, WorkerView};

impl Engine {
    /// One admin text line arrived on `conn`.
    pub fn admin_line(&mut self, conn: ConnId, line: &[u8], now: Millis) {
        self.tick(now);
        match admin::parse_line(line) {
            AdminParse::Close => self.close(conn),
            AdminParse::Error(reply) => self.send(conn, Out::Text(reply)),
            AdminParse::Command(AdminCommand::Record(handle)) => self.admin_record(conn, handle),
            AdminParse::Command(AdminCommand::Records { function, state, limit }) => {
                self.admin_records(conn, function, state, limit)
            }
            AdminParse::Command(AdminCommand::Pause(name)) => self.admin_set_paused(conn, &name, true),
            AdminParse::Command(AdminCommand::Resume(name)) => self.admin_set_paused(conn, &name, false),
            AdminParse::Command(AdminCommand::PurgeQueued(name)) => self.admin_purge_queued(conn, &name),
            AdminParse::Command(AdminCommand::Policy) => self.admin_policy_list(conn),
            AdminParse::Command(AdminCommand::PolicySet { pattern, json }) => {
                self.admin_policy_change(conn, &pattern, Some(&json))
            }
            AdminParse::Command(AdminCommand::PolicyClear(pattern)) => self.admin_policy_change(conn, &pattern, None),
            AdminParse::Command(AdminCommand::Requeue(handle)) => self.admin_requeue(conn, &handle),
            AdminParse::Command(AdminCommand::RequeueFunction(name)) => self.admin_requeue_function(conn, &name),
            AdminParse::Command(AdminCommand::PurgeDead(function)) => self.admin_purge_dead(conn, function),
            AdminParse::Command(AdminCommand::RecordsJson(json)) => self.admin_records_json(conn, Some(json), false),
            AdminParse::Command(AdminCommand::Dead(json)) => self.admin_records_json(conn, json, true),
            AdminParse::Command(AdminCommand::Cron(cmd)) => self.admin_cron(conn, cmd),
            AdminParse::Command(cmd) => {
                let reply = self.admin_command(cmd);
                self.send(conn, Out::Text(reply));
            }
        }
    }

    /// Sends `reply` to `conn` as the answer to an admin line the server
    /// answered itself (such as `history`), in order with the engine's own
    /// replies to that connection.
    pub fn admin_reply(&mut self, conn: ConnId, reply: Bytes, now: Millis) {
        self.tick(now);
        self.send(conn, Out::Text(reply));
    }

    fn admin_command(&mut self, cmd: AdminCommand) -> Bytes {
        match cmd {
            AdminCommand::Workers => text::workers(&self.workers_view()),
            AdminCommand::Status => text::status(&self.functions_view()),
            AdminCommand::PriorityStatus => text::priority_status(&self.functions_view()),
            AdminCommand::ShowJobs => text::show_jobs(self.job_views(&JobFilter::default())),
            AdminCommand::ShowUniqueJobs => text::show_unique_jobs(self.job_views(&JobFilter::default())),
            AdminCommand::CancelJob(handle) => text::command_result(self.cancel_job(&handle)),
            AdminCommand::CreateFunction(name) => {
                self.create_function(&name);
                Bytes::from_static(admin::OK)
            }
            AdminCommand::DropFunction(name) => text::command_result(self.drop_function(&name)),
            AdminCommand::MaxQueue { function, limits } => {
                // gearmand answers OK for a function it does not know.
                self.set_max_queue(&function, limits);
                Bytes::from_static(admin::OK)
            }
            AdminCommand::GetPid => admin::ok_value(&self.config().pid.to_string()),
            AdminCommand::Verbose => admin::ok_value(&self.config().verbose),
            AdminCommand::Version => admin::ok_value(&self.config().version),
            AdminCommand::Shutdown { graceful } => {
                self.request_shutdown(if graceful { ShutdownRequest::Graceful } else { ShutdownRequest::Immediate });
                Bytes::from_static(admin::OK)
            }
            // Answered by `admin_line` itself, as they may have to wait for
            // the store.
            AdminCommand::Record(_)
            | AdminCommand::Records { .. }
            | AdminCommand::Pause(_)
            | AdminCommand::Resume(_)
            | AdminCommand::PurgeQueued(_)
            | AdminCommand::Policy
            | AdminCommand::PolicySet { .. }
            | AdminCommand::PolicyClear(_)
            | AdminCommand::Requeue(_)
            | AdminCommand::RequeueFunction(_)
            | AdminCommand::PurgeDead(_)
            | AdminCommand::RecordsJson(_)
            | AdminCommand::Dead(_)
            | AdminCommand::Cron(_) => Bytes::from_static(b"ERR UNKNOWN_ERROR\r\n"),
        }
    }
}

/// The error line of a refused command.
pub(crate) fn command_error_line(e: CommandError) -> Bytes {
    text::command_result(Err(e))
}

/// gearmand's text renderings of the views.
mod text {
    use super::*;

    /// Every listing ends with a line holding a single dot.
    const END: &[u8] = b".\n";

    /// `workers`: `fd peer client-id : f1 f2…` per connection.
    pub(super) fn workers(workers: &[WorkerView]) -> Bytes {
        let mut out = Vec::new();
        for w in workers {
            let _ = write!(out, "{} {} ", w.fd, w.peer);
            out.extend_from_slice(&w.client_id);
            out.extend_from_slice(b" :");
            for f in &w.functions {
                out.push(b' ');
                out.extend_from_slice(f);
            }
            out.push(b'\n');
        }
        out.extend_from_slice(END);
        Bytes::from(out)
    }

    /// `status`: name, total, running, workers; sorted by name.
    pub(super) fn status(functions: &[FunctionView]) -> Bytes {
        let mut out = Vec::new();
        for f in functions {
            out.extend_from_slice(&f.name);
            let _ = writeln!(out, "\t{}\t{}\t{}", f.total, f.running, f.workers);
        }
        out.extend_from_slice(END);
        Bytes::from(out)
    }

    /// `prioritystatus`: name, queued high, normal, low, workers.
    pub(super) fn priority_status(functions: &[FunctionView]) -> Bytes {
        let mut out = Vec::new();
        for f in functions {
            out.extend_from_slice(&f.name);
            let _ = writeln!(out, "\t{}\t{}\t{}\t{}", f.queued[0], f.queued[1], f.queued[2], f.workers);
        }
        out.extend_from_slice(END);
        Bytes::from(out)
    }

    /// `show jobs`: handle, attempts, ignored, persisted.
    pub(super) fn show_jobs(jobs: impl Iterator<Item = JobView>) -> Bytes {
        let mut out = Vec::new();
        for j in jobs {
            out.extend_from_slice(&j.handle);
            let _ = writeln!(out, "\t{}\t{}\t{}", j.attempts, u8::from(j.ignored), u8::from(j.shown_as_persisted()));
        }
        out.extend_from_slice(END);
        Bytes::from(out)
    }

    /// `show unique jobs`: one unique per line.
    pub(super) fn show_unique_jobs(jobs: impl Iterator<Item = JobView>) -> Bytes {
        let mut out = Vec::new();
        for j in jobs {
            out.extend_from_slice(&j.unique);
            out.push(b'\n');
        }
        out.extend_from_slice(END);
        Bytes::from(out)
    }

    /// `OK`, or gearmand's error line for a refused command.
    pub(super) fn command_result(result: Result<(), CommandError>) -> Bytes {
        Bytes::from_static(match result {
            Ok(()) => admin::OK,
            Err(CommandError::UnknownJob) => admin::ERR_UNKNOWN_JOB,
            Err(CommandError::FunctionNotFound) => admin::ERR_FUNCTION_NOT_FOUND,
            Err(CommandError::FunctionBusy) => admin::ERR_FUNCTION_BUSY,
            Err(CommandError::ReservedFunction) => admin::ERR_RESERVED_FUNCTION,
        })
    }
}
