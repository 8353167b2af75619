//! Routes each request to its handler.

use bytes::Bytes;
use sprocket_proto::response::parse_decimal;
use sprocket_proto::{Priority, Request, Response};

use crate::conn::Ability;
use crate::engine::Engine;
use crate::outcome::AttemptEnd;
use crate::types::*;

/// Which packet a grab is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GrabKind {
    /// GRAB_JOB: JOB_ASSIGN.
    Plain,
    /// GRAB_JOB_UNIQ: JOB_ASSIGN_UNIQ.
    Uniq,
    /// GRAB_JOB_ALL: JOB_ASSIGN_ALL when the job has a reducer.
    All,
}

impl Engine {
    /// Handles one request from `conn`.
    pub(super) fn dispatch(&mut self, conn: ConnId, req: Request) {
        match req {
            Request::CanDo { function } => self.can_do(conn, &function, None),
            Request::CanDoTimeout { function, timeout } => {
                if timeout.len() > MAX_TIMEOUT_FIELD {
                    self.send_packet(conn, Response::error("ARGUMENT_TOO_LARGE", "Timeout value too large"));
                    return;
                }
                let ms = parse_signed(&timeout);
                let limit = if ms <= 0 { None } else { Some((ms as u64).max(1000)) };
                self.can_do(conn, &function, limit);
            }
            Request::CantDo { function } => self.cant_do(conn, &function),
            Request::ResetAbilities => self.reset_abilities(conn),
            Request::PreSleep => self.pre_sleep(conn),
            Request::GrabJob => self.grab(conn, GrabKind::Plain),
            Request::GrabJobUniq => self.grab(conn, GrabKind::Uniq),
            Request::GrabJobAll => self.grab(conn, GrabKind::All),
            Request::SubmitJob { mode, function, unique, data } => self.submit(
                conn,
                Submit {
                    function,
                    unique,
                    data,
                    priority: mode.priority,
                    background: mode.background,
                    ..Submit::default()
                },
            ),
            Request::SubmitJobEpoch { function, unique, epoch, data } => match parse_epoch(&epoch) {
                Some(when) => {
                    self.submit(conn, Submit { function, unique, data, when, background: true, ..Submit::default() })
                }
                None => self.send_packet(conn, Response::error("INVALID_ARGUMENT", "Epoch value out of range")),
            },
            Request::SubmitJobSched { function, unique, schedule, data } => {
                match crate::cron::next_run(&schedule, self.now_secs()) {
                    Ok(when) => self
                        .submit(conn, Submit { function, unique, data, when, background: true, ..Submit::default() }),
                    Err(why) => self.send_packet(
                        conn,
                        Response::Error { code: Bytes::from_static(b"INVALID_ARGUMENT"), text: Bytes::from(why) },
                    ),
                }
            }
            Request::SubmitReduceJob { background, function, unique, reducer, data, .. } => {
                self.submit(conn, Submit { function, unique, data, background, reducer, ..Submit::default() })
            }
            Request::WorkStatus { handle, numerator, denominator } => {
                self.work_status(conn, handle, numerator, denominator)
            }
            Request::WorkComplete { handle, data } => self.work_complete(conn, handle, data),
            Request::WorkFail { handle } => self.work_fail(conn, handle),
            Request::WorkException { handle, data } => self.work_exception(conn, handle, data),
            Request::WorkData { handle, data } => self.work_forward(conn, handle, data, false),
            Request::WorkWarning { handle, data } => self.work_forward(conn, handle, data, true),
            Request::GetStatus { handle } => self.get_status(conn, handle),
            Request::GetStatusUnique { unique } => self.get_status_unique(conn, unique),
            Request::EchoReq { data } => self.send_packet(conn, Response::EchoRes { data }),
            Request::SetClientId { id } => {
                if let Some(c) = self.conns.get_mut(conn) {
                    let keep = id.len().min(MAX_CLIENT_ID);
                    c.client_id =
                        if keep == 0 { Bytes::from_static(b"-") } else { Bytes::copy_from_slice(&id[..keep]) };
                }
            }
            Request::OptionReq { name } => {
                if name.len() <= MAX_OPTION && name.eq_ignore_ascii_case(b"exceptions") {
                    if let Some(c) = self.conns.get_mut(conn) {
                        c.exceptions = true;
                    }
                    self.send_packet(conn, Response::OptionRes { name });
                } else {
                    self.send_packet(conn, Response::error("UNKNOWN_OPTION", "Server does not recognize given option"));
                }
            }
            Request::AllYours => self.send_packet(conn, Response::error("INVALID_COMMAND", "Command not expected")),
        }
    }

    fn can_do(&mut self, conn: ConnId, name: &Bytes, timeout_ms: Option<u64>) {
        if name.starts_with(super::reserved::RESERVED_PREFIX) {
            self.send_packet(
                conn,
                Response::error(
                    "RESERVED_FUNCTION",
                    "sprocket.* functions are the server's own; a worker cannot register them",
                ),
            );
            return;
        }
        let f = self.function_id(name);
        if let Some(func) = self.functions.get_mut(f) {
            func.worker_added();
        }
        let Some(c) = self.conns.get_mut(conn) else { return };
        c.abilities.insert(0, Ability { function: f, timeout_ms });
        // A sleeping worker that learns a new function must hear about
        // work for it too.
        if c.is_asleep() {
            self.add_sleeper(f, conn);
            if self.has_runnable(f) {
                self.wake_workers(f);
            }
        }
    }

    fn cant_do(&mut self, conn: ConnId, name: &[u8]) {
        let Some(f) = self.functions.id_of(name) else { return };
        let Some(c) = self.conns.get_mut(conn) else { return };
        let before = c.abilities.len();
        c.abilities.retain(|a| a.function != f);
        let removed = before - c.abilities.len();
        let give_back: Vec<JobNo> = c.running.clone();
        if let Some(func) = self.functions.get_mut(f) {
            func.workers_removed(removed);
        }
        for job_no in give_back {
            if self.jobs.get(job_no).is_some_and(|j| j.function == f) {
                self.end_attempt(job_no, AttemptEnd::WorkerLost);
            }
        }
    }

    fn reset_abilities(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        let abilities = std::mem::take(&mut c.abilities);
        let running = std::mem::take(&mut c.running);
        for a in abilities {
            if let Some(func) = self.functions.get_mut(a.function) {
                func.workers_removed(1);
            }
        }
        for job_no in running {
            self.end_attempt(job_no, AttemptEnd::WorkerLost);
        }
    }
}

/// What a SUBMIT_* asks for.
#[derive(Debug, Default)]
pub(super) struct Submit {
    pub function: Bytes,
    pub unique: Bytes,
    pub data: Bytes,
    pub priority: Priority,
    pub background: bool,
    /// Unix seconds before which it may not run; 0 = now.
    pub when: i64,
    pub reducer: Bytes,
}

/// strtol-like: optional sign, leading digits; garbage gives 0.
fn parse_signed(b: &[u8]) -> i64 {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let n = parse_decimal(digits).min(i64::MAX as u64) as i64;
    if neg {
        -n
    } else {
        n
    }
}

/// strtoll-like epoch; `None` when the digits overflow.
fn parse_epoch(b: &[u8]) -> Option<i64> {
    let digits: Vec<u8> = b.iter().copied().skip_while(|c| *c == b' ').take_while(u8::is_ascii_digit).collect();
    if digits.is_empty() {
        return Some(0);
    }
    std::str::from_utf8(&digits).ok()?.parse::<i64>().ok()
}
