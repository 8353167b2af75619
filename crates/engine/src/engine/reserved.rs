//! The reserved functions `sprocket.*`, which the server answers itself so
//! that any Gearman client, unchanged, can read job records:
//!
//! - `sprocket.result` with a handle attaches the caller to that job: a live
//!   job as if the caller had coalesced onto it; an ended one by replaying
//!   its record as the packets a foreground client would have seen.
//! - `sprocket.record` with a handle answers the record as JSON.
//! - `sprocket.records` with a JSON filter answers matching ended records as
//!   a JSON array.
//!
//! Also the admin commands `record` and `records`. Records the engine does
//! not hold are read from the store by the server ([`RecordRead`]); the
//! connection's later replies wait behind the answer, so they stay in order.

use std::borrow::Cow;

use bytes::Bytes;
use sprocket_proto::Response;
use sprocket_records::{replay, Record, RecordFilter, RecordState, ReplayPacket};

use super::dispatch::Submit;
use crate::engine::Engine;
use crate::hash::FastSet;
use crate::records::{ReadPurpose, ReadWaiter};
use crate::types::*;

/// The prefix of the server's own function names.
pub(crate) const RESERVED_PREFIX: &[u8] = b"sprocket.";

/// The text of the exception for a handle with no job or record.
const UNKNOWN_JOB: &[u8] = b"unknown job";

/// Why `sprocket.result` cannot answer for a job that ended but whose
/// final record the store does not hold yet.
const END_NOT_STORED: &str = "the end of this job is not stored yet";

/// Whether `handle` could be a job handle, and so can be named in a reply:
/// short printable ASCII. Anything else is answered under a new handle.
pub(super) fn plausible_handle(handle: &[u8]) -> bool {
    !handle.is_empty() && handle.len() <= MAX_HANDLE && handle.iter().all(u8::is_ascii_graphic)
}

impl Engine {
    /// A submission to a `sprocket.*` function.
    pub(super) fn reserved_submit(&mut self, conn: ConnId, s: Submit) {
        if s.background {
            self.send_packet(
                conn,
                Response::error(
                    "RESERVED_FUNCTION",
                    "sprocket.* functions are answered by the server and must be submitted as foreground jobs",
                ),
            );
            return;
        }
        match &s.function[..] {
            b"sprocket.result" => self.attach_to_result(conn, s.data),
            b"sprocket.record" => self.record_as_json(conn, s.data),
            b"sprocket.records" => self.search_as_json(conn, &s.data),
            _ => self.send_packet(
                conn,
                Response::error(
                    "UNKNOWN_FUNCTION",
                    "the server has no such sprocket.* function (sprocket.result, sprocket.record, sprocket.records)",
                ),
            ),
        }
    }

    /// Whether `conn` may read jobs of `function` (see
    /// [`Engine::set_read_guard`]).
    fn may_read(&self, conn: ConnId, function: &[u8]) -> bool {
        self.conns.get(conn).and_then(|c| c.read_guard.as_ref()).is_none_or(|guard| guard.allows(function))
    }

    /// The refusal of a read of a job of `function`, when `conn` may not
    /// read it.
    fn read_refusal(&self, conn: ConnId, function: &[u8]) -> Option<Out> {
        if self.may_read(conn, function) {
            return None;
        }
        let function = String::from_utf8_lossy(function);
        tracing::info!(%function, "ACL: a read of another function's job record refused");
        Some(Out::Packet(Response::Error {
            code: Bytes::from_static(b"PERMISSION_DENIED"),
            text: Bytes::from(format!("this identity may not read the records of {function:?} jobs")),
        }))
    }

    /// `sprocket.result`: attach to the live job, or replay its record.
    fn attach_to_result(&mut self, conn: ConnId, handle: Bytes) {
        let live = self.job_by_handle(&handle).filter(|&no| self.jobs.get(no).is_some_and(|j| !j.ended));
        if let Some(job_no) = live {
            let function = self.jobs.get(job_no).map(|j| self.functions.name_of(j.function)).unwrap_or_default();
            if let Some(refusal) = self.read_refusal(conn, &function) {
                self.send(conn, refusal);
                return;
            }
            self.attach(conn, job_no, false);
            return;
        }
        let exceptions = self.exceptions_on(conn);
        if let Some(refusal) = self.ended_records.get(&handle).and_then(|r| self.read_refusal(conn, r.function())) {
            self.send(conn, refusal);
            return;
        }
        if let Some(record) = self.ended_records.get(&handle) {
            let answer = result_answer(Some(record), &handle, exceptions, &self.fresh_handle_text());
            self.send_all(conn, answer);
            return;
        }
        if self.ended_records.in_store() && plausible_handle(&handle) {
            self.read_for_conn(conn, ReadPurpose::Result { handle: handle.clone() }, RecordQuery::Handle(handle));
            return;
        }
        let fresh = self.fresh_handle();
        self.send_all(conn, result_answer(None, &handle, exceptions, &fresh));
    }

    /// `sprocket.record`: the record as JSON under a new handle.
    fn record_as_json(&mut self, conn: ConnId, handle: Bytes) {
        let function = match self.live_record(&handle) {
            Some(record) => Some(Bytes::copy_from_slice(record.function())),
            None => self.ended_records.get(&handle).map(|r| Bytes::copy_from_slice(r.function())),
        };
        if let Some(refusal) = function.and_then(|f| self.read_refusal(conn, &f)) {
            self.send(conn, refusal);
            return;
        }
        let reply_handle = self.fresh_handle();
        if let Some(record) = self.live_record(&handle) {
            let answer = json_answer(Some(&record), &reply_handle, self.exceptions_on(conn));
            self.send_all(conn, answer);
            return;
        }
        if let Some(record) = self.ended_records.get(&handle) {
            let answer = json_answer(Some(record), &reply_handle, self.exceptions_on(conn));
            self.send_all(conn, answer);
            return;
        }
        if self.ended_records.in_store() && plausible_handle(&handle) {
            self.read_for_conn(conn, ReadPurpose::RecordJson { reply_handle }, RecordQuery::Handle(handle));
            return;
        }
        let answer = json_answer(None, &reply_handle, self.exceptions_on(conn));
        self.send_all(conn, answer);
    }

    /// `sprocket.records`: ended records matching a JSON filter.
    fn search_as_json(&mut self, conn: ConnId, payload: &[u8]) {
        let reply_handle = self.fresh_handle();
        let filter = match RecordFilter::from_json(payload) {
            Ok(filter) => filter,
            Err(e) => {
                let answer = failure(&reply_handle, e.to_string().as_bytes(), self.exceptions_on(conn));
                self.send_all(conn, vec![created(&reply_handle), answer]);
                return;
            }
        };
        if self.ended_records.in_store() {
            self.read_for_conn(conn, ReadPurpose::SearchJson { reply_handle }, RecordQuery::Search(filter));
            return;
        }
        let mut found = self.ended_records.search(&filter);
        // Records of functions the connection may not read are left out, as
        // if they did not exist.
        found.retain(|r| self.may_read(conn, r.function()));
        self.send_all(conn, search_json_answer(Ok(&found), &reply_handle, self.exceptions_on(conn)));
    }

    /// Admin `record HANDLE`.
    pub(crate) fn admin_record(&mut self, conn: ConnId, handle: Bytes) {
        let found = self.live_record(&handle).or_else(|| self.ended_records.get(&handle).map(Cow::Borrowed));
        if let Some(record) = found {
            let text = Bytes::from(sprocket_records::text::admin_record(&record));
            self.send(conn, Out::Text(text));
            return;
        }
        if self.ended_records.in_store() && plausible_handle(&handle) {
            self.read_for_conn(conn, ReadPurpose::AdminRecord, RecordQuery::Handle(handle));
            return;
        }
        self.send(conn, Out::Text(Bytes::from_static(b"ERR UNKNOWN_JOB\r\n")));
    }

    /// Admin `records FUNCTION [STATE] [LIMIT]`.
    pub(crate) fn admin_records(&mut self, conn: ConnId, function: Bytes, state: Option<Bytes>, limit: Option<Bytes>) {
        let state = match state.map(|s| String::from_utf8_lossy(&s).parse::<RecordState>()).transpose() {
            Ok(state) => state,
            Err(_) => {
                self.send(conn, Out::Text(Bytes::from_static(b"ERR INVALID_ARGUMENTS unknown+job+state\r\n")));
                return;
            }
        };
        let limit = match limit {
            None => sprocket_records::filter::DEFAULT_SEARCH_LIMIT,
            Some(text) => match std::str::from_utf8(&text).ok().and_then(|t| t.parse::<usize>().ok()) {
                Some(n) if (1..=sprocket_records::filter::MAX_SEARCH_LIMIT).contains(&n) => n,
                _ => {
                    self.send(
                        conn,
                        Out::Text(Bytes::from_static(b"ERR INVALID_ARGUMENTS limit+must+be+1+to+10000\r\n")),
                    );
                    return;
                }
            },
        };
        let filter = RecordFilter { function: Some(function), state, limit, ..Default::default() };
        self.admin_search(conn, filter);
    }

    /// Answers an admin search (`records`, `dead`) with the record list.
    pub(super) fn admin_search(&mut self, conn: ConnId, filter: RecordFilter) {
        if self.ended_records.in_store() {
            self.read_for_conn(conn, ReadPurpose::AdminSearch, RecordQuery::Search(filter));
            return;
        }
        let found = self.ended_records.search(&filter);
        self.send(conn, Out::Text(Bytes::from(sprocket_records::text::admin_record_list(&found))));
    }

    /// The server read what [`Outbox::record_reads`] asked for: the records
    /// found, or why the store could not be read. The answer goes out in its
    /// place among the connection's replies.
    pub fn record_read_done(&mut self, id: u64, result: Result<Vec<Record>, String>, now: Millis) {
        self.tick(now);
        let Some(read) = self.pending_reads.finish(id) else { return };
        let result = match (&read.search, result) {
            (Some(asked), Ok(found)) => Ok(self.ended_records.with_unconfirmed(found, asked)),
            (_, result) => result,
        };
        let (conn, purpose) = match read.waiter {
            ReadWaiter::Conn(conn, purpose) => (conn, purpose),
            ReadWaiter::Control => {
                self.out.control_reads.push(ControlRead { id, result });
                return;
            }
        };
        if matches!(purpose, ReadPurpose::AdminRequeue { .. }) {
            self.requeue_read_done(conn, id, purpose, result);
            return;
        }
        let Some(exceptions) = self.conns.get(conn).map(|c| c.exceptions) else { return };
        // What the connection may not read: a refusal for one record, or
        // left out of a search.
        let refusal = match (&purpose, &result) {
            (ReadPurpose::Result { .. } | ReadPurpose::RecordJson { .. }, Ok(found)) => {
                found.first().and_then(|r| self.read_refusal(conn, r.function()))
            }
            _ => None,
        };
        let result = match (&purpose, result) {
            (ReadPurpose::SearchJson { .. }, Ok(mut found)) => {
                found.retain(|r| self.may_read(conn, r.function()));
                Ok(found)
            }
            (_, result) => result,
        };
        let answer = match (&purpose, &result) {
            _ if refusal.is_some() => refusal.into_iter().collect(),
            // The store has the job's record from before its end, and the
            // engine no longer has the job (it would have attached the
            // caller): the job ended and its final record is not written
            // yet (a database outage keeps it until the database is back).
            // The job is not unknown; its end is not readable yet.
            (ReadPurpose::Result { handle }, Ok(found)) if found.first().is_some_and(|r| !r.state().is_final()) => {
                vec![created(handle), failure(handle, unavailable(END_NOT_STORED).as_bytes(), exceptions)]
            }
            (ReadPurpose::Result { handle }, Ok(found)) => {
                result_answer(found.first(), handle, exceptions, &self.fresh_handle_text())
            }
            (ReadPurpose::Result { handle }, Err(e)) => {
                let reply = if plausible_handle(handle) { handle.clone() } else { self.fresh_handle_text() };
                vec![created(&reply), failure(&reply, unavailable(e).as_bytes(), exceptions)]
            }
            (ReadPurpose::RecordJson { reply_handle }, Ok(found)) => {
                json_answer(found.first(), reply_handle, exceptions)
            }
            (ReadPurpose::SearchJson { reply_handle, .. }, Ok(found)) => {
                search_json_answer(Ok(found), reply_handle, exceptions)
            }
            (ReadPurpose::RecordJson { reply_handle } | ReadPurpose::SearchJson { reply_handle, .. }, Err(e)) => {
                vec![created(reply_handle), failure(reply_handle, unavailable(e).as_bytes(), exceptions)]
            }
            (ReadPurpose::AdminRecord, Ok(found)) => vec![Out::Text(match found.first() {
                Some(record) => Bytes::from(sprocket_records::text::admin_record(record)),
                None => Bytes::from_static(b"ERR UNKNOWN_JOB\r\n"),
            })],
            (ReadPurpose::AdminSearch, Ok(found)) => {
                vec![Out::Text(Bytes::from(sprocket_records::text::admin_record_list(found)))]
            }
            // A setting's write is answered by `setting_write_done`; a read
            // reported under its id is a server bug, answered so that the
            // connection does not wait for ever.
            (ReadPurpose::AdminSetting { .. } | ReadPurpose::AdminRequeue { .. } | ReadPurpose::AdminPurge, _) => {
                vec![Out::Text(Bytes::from_static(b"ERR UNKNOWN_ERROR\r\n"))]
            }
            (ReadPurpose::AdminRecord | ReadPurpose::AdminSearch, Err(e)) => {
                vec![Out::Text(Bytes::from(format!(
                    "ERR RECORDS_UNAVAILABLE {}\r\n",
                    e.replace([' ', '\r', '\n'], "+")
                )))]
            }
        };
        let Some(c) = self.conns.get_mut(conn) else { return };
        c.held.answer_read(id, answer);
        self.release_held(&FastSet::default());
    }

    /// Asks the server to read records, holding `conn`'s later replies
    /// behind the answer.
    pub(super) fn read_for_conn(&mut self, conn: ConnId, purpose: ReadPurpose, query: RecordQuery) {
        if !self.conns.contains(conn) {
            return;
        }
        let id = self.start_read(ReadWaiter::Conn(conn, purpose), query);
        let Some(c) = self.conns.get_mut(conn) else { return };
        self.ledger.hold_read(conn, &mut c.held, id);
    }

    /// Numbers a read of the store for `waiter` and asks the server for it;
    /// a search keeps what it needs to list the jobs that end meanwhile.
    pub(super) fn start_read(&mut self, waiter: ReadWaiter, query: RecordQuery) -> u64 {
        let search = match &query {
            RecordQuery::Search(filter) => Some(self.ended_records.search_asked(filter.clone())),
            RecordQuery::Handle(_) => None,
        };
        let id = self.pending_reads.start(waiter, search);
        self.out.record_reads.push(RecordRead { id, query });
        id
    }

    /// The record of a live job with this handle.
    pub(super) fn live_record(&self, handle: &[u8]) -> Option<Cow<'_, Record>> {
        let job = self.jobs.get(self.job_by_handle(handle)?)?;
        if let Some(record) = job.extra.as_ref().and_then(|e| e.record.as_deref()) {
            return Some(Cow::Borrowed(record));
        }
        // A queued job's record is made when a worker first takes it; until
        // then it is what the job says.
        if !self.carries_record(job.background) {
            return None;
        }
        self.record_of_job(job).map(Cow::Owned)
    }

    fn exceptions_on(&self, conn: ConnId) -> bool {
        self.conns.get(conn).is_some_and(|c| c.exceptions)
    }

    fn send_all(&mut self, conn: ConnId, outs: Vec<Out>) {
        for out in outs {
            self.send(conn, out);
        }
    }

    /// A handle of its own for a reply that is not a job's (a record as
    /// JSON, a search): a number no job will have.
    fn fresh_handle(&mut self) -> Bytes {
        let no = self.new_job_no();
        self.jobs.jump_to(no.saturating_add(1));
        Bytes::from(format!("{}:{no}", self.config.handle_prefix))
    }

    /// The handle a reply about an unknown job goes out under when the
    /// handle asked for cannot be echoed: the prefix with number 0, which
    /// no job has.
    fn fresh_handle_text(&self) -> Bytes {
        Bytes::from(format!("{}:0", self.config.handle_prefix))
    }
}

fn created(handle: &Bytes) -> Out {
    Out::Packet(Response::JobCreated { handle: handle.clone() })
}

/// WORK_EXCEPTION with `text` for a client that asked for exceptions,
/// WORK_FAIL otherwise.
fn failure(handle: &Bytes, text: &[u8], exceptions: bool) -> Out {
    Out::Packet(if exceptions {
        Response::WorkException { handle: handle.clone(), data: Bytes::copy_from_slice(text) }
    } else {
        Response::WorkFail { handle: handle.clone() }
    })
}

fn unavailable(e: &str) -> String {
    format!("job records unavailable: {e}")
}

/// What `sprocket.result` answers for an ended job's record, or for a
/// handle with none (`record` None): under the asked handle when it can be
/// named, else under `fallback`.
fn result_answer(record: Option<&Record>, asked: &Bytes, exceptions: bool, fallback: &Bytes) -> Vec<Out> {
    let Some(record) = record else {
        let reply = if plausible_handle(asked) { asked.clone() } else { fallback.clone() };
        return vec![created(&reply), failure(&reply, UNKNOWN_JOB, exceptions)];
    };
    let handle = Bytes::copy_from_slice(record.handle());
    let Some(packets) = replay(record, exceptions) else {
        return vec![created(&handle), failure(&handle, UNKNOWN_JOB, exceptions)];
    };
    let mut out = Vec::with_capacity(packets.len() + 1);
    out.push(created(&handle));
    for packet in packets {
        let handle = handle.clone();
        let resp = match packet {
            ReplayPacket::Data(d) => Response::WorkData { handle, data: Bytes::copy_from_slice(d) },
            ReplayPacket::Warning(d) => Response::WorkWarning { handle, data: Bytes::copy_from_slice(d) },
            ReplayPacket::Status(n, d) => Response::WorkStatus {
                handle,
                numerator: Bytes::from(n.to_string()),
                denominator: Bytes::from(d.to_string()),
            },
            ReplayPacket::Complete(d) => Response::WorkComplete { handle, data: Bytes::copy_from_slice(d) },
            ReplayPacket::Exception(d) => Response::WorkException { handle, data: Bytes::copy_from_slice(d) },
            ReplayPacket::Fail => Response::WorkFail { handle },
        };
        out.push(Out::Packet(resp));
    }
    out
}

/// What `sprocket.record` answers: the record as JSON, or a failure for an
/// unknown handle.
fn json_answer(record: Option<&Record>, reply: &Bytes, exceptions: bool) -> Vec<Out> {
    let last = match record.map(serde_json::to_vec) {
        Some(Ok(json)) => Out::Packet(Response::WorkComplete { handle: reply.clone(), data: Bytes::from(json) }),
        Some(Err(e)) => failure(reply, e.to_string().as_bytes(), exceptions),
        None => failure(reply, UNKNOWN_JOB, exceptions),
    };
    vec![created(reply), last]
}

/// What `sprocket.records` answers: a JSON array of records.
fn search_json_answer(found: Result<&[Record], String>, reply: &Bytes, exceptions: bool) -> Vec<Out> {
    let last = match found.map(|records| serde_json::to_vec(records).map_err(|e| e.to_string())) {
        Ok(Ok(json)) => Out::Packet(Response::WorkComplete { handle: reply.clone(), data: Bytes::from(json) }),
        Ok(Err(e)) | Err(e) => failure(reply, e.as_bytes(), exceptions),
    };
    vec![created(reply), last]
}
