//! One job's record and the events that change it.
//!
//! The engine forwards what happens to a job — assigned to a worker,
//! WORK_DATA, WORK_WARNING, WORK_STATUS, an attempt that ended without a
//! result, the end of the job — and the record applies the per-record byte
//! limit itself, so every caller gets the same truncation rules.

use std::sync::Arc;

use bytes::Bytes;
use sprocket_proto::Priority;

use crate::state::{AttemptEnd, Outcome, RecordState};

/// Default of `--record-max-bytes`: 1 MiB of payload per record.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 20;

/// How many attempts a record lists in detail (the most recent ones). The
/// attempt *count* is always exact; the list is bounded so that a job that
/// loses its worker again and again (`--job-retries 0` never gives up) has
/// a record of bounded size.
pub const MAX_KEPT_ATTEMPTS: usize = 16;

/// The per-record payload limit (`--record-max-bytes`).
///
/// The payload is what the worker sent: the data and warning chunks, and
/// the result (WORK_COMPLETE) or exception text (WORK_EXCEPTION). The rules:
///
/// * Chunks may use at most half of `max_bytes`, in arrival order. The
///   chunk that crosses that half is kept cut to the room left (and marked
///   `cut`); later chunks are counted but not kept.
/// * The result or exception text may use everything the kept chunks left,
///   so at least half of `max_bytes`, all of it when there were no chunks.
///   Beyond that it is kept cut to its first bytes.
///
/// Whenever anything was cut or left out, [`Record::truncation`] says how
/// much arrived, so the kept and received sizes can be compared.
/// Handle, function, unique and worker identities are never cut and do not
/// count: they are bounded by the protocol limits (handle 255 bytes, unique
/// 64 KiB, the maximum packet size) and by [`MAX_KEPT_ATTEMPTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most payload bytes one record keeps.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_bytes: DEFAULT_MAX_BYTES }
    }
}

impl Limits {
    /// Most bytes the data and warning chunks together may keep.
    pub fn chunk_budget(self) -> u64 {
        self.max_bytes / 2
    }
}

/// The worker connection an attempt ran on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Worker {
    /// Its SET_CLIENT_ID (`-` when it never set one, as the admin `workers`
    /// command shows it).
    pub client_id: Bytes,
    /// Its peer address, as the admin `workers` command shows it.
    pub peer: Arc<str>,
}

/// One assignment of the job to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Who ran it.
    pub worker: Worker,
    /// When the job was assigned (Unix milliseconds).
    pub started: u64,
    /// When and how it ended; `None` while the worker still holds the job.
    pub ended: Option<(u64, AttemptEnd)>,
}

/// Which packet a chunk came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkKind {
    /// WORK_DATA.
    Data,
    /// WORK_WARNING.
    Warning,
}

impl ChunkKind {
    /// `data` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Data => "data",
            ChunkKind::Warning => "warning",
        }
    }
}

/// The payload of one WORK_DATA or WORK_WARNING packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    kind: ChunkKind,
    bytes: Box<[u8]>,
    cut: bool,
}

impl Chunk {
    pub(crate) fn new(kind: ChunkKind, bytes: Box<[u8]>, cut: bool) -> Chunk {
        Chunk { kind, bytes, cut }
    }

    /// Which packet it came in.
    pub fn kind(&self) -> ChunkKind {
        self.kind
    }

    /// The kept bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether only the first bytes were kept (the byte limit was reached
    /// inside this chunk).
    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

/// The last WORK_STATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    /// Its numerator.
    pub numerator: u32,
    /// Its denominator.
    pub denominator: u32,
}

/// What arrived when a record's payload was cut (see [`Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Data and warning chunks that arrived, kept or not.
    pub chunks_received: u64,
    /// Their bytes.
    pub chunk_bytes_received: u64,
    /// The full length of the result or exception text, when it was cut.
    pub result_bytes_received: Option<u64>,
}

/// A record was asked to change after its job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the job has ended ({0}); its record no longer changes")]
pub struct RecordEnded(pub RecordState);

/// A field too long for a record (lengths are kept in 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field} of {len} bytes is too long for a job record")]
pub struct FieldTooLong {
    /// Which field.
    pub field: &'static str,
    /// Its length.
    pub len: usize,
}

/// The record of one job: its identity and, once it has run or ended, what
/// happened to it.
///
/// Times are Unix milliseconds given by the caller. A queued record is kept
/// small — one allocation for handle, function and unique, nothing else —
/// because every background job has one; everything about runs lives in a
/// second allocation made when the job first starts or ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Handle, function and unique back to back.
    ids: Box<[u8]>,
    handle_len: u32,
    function_len: u32,
    submitted: u64,
    priority: Priority,
    background: bool,
    state: RecordState,
    run: Option<Box<Run>>,
}

/// Everything that exists only once a job has started or ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) attempts: u32,
    pub(crate) first_started: Option<u64>,
    pub(crate) finished: Option<u64>,
    pub(crate) attempt_log: Vec<Attempt>,
    pub(crate) chunks: Vec<Chunk>,
    pub(crate) chunks_received: u64,
    pub(crate) chunk_bytes_received: u64,
    pub(crate) chunk_bytes_kept: u64,
    pub(crate) status: Option<Status>,
    pub(crate) result: Option<Box<[u8]>>,
    pub(crate) error: Option<Box<[u8]>>,
    pub(crate) result_bytes_received: Option<u64>,
}

fn len32(field: &'static str, bytes: &[u8]) -> Result<u32, FieldTooLong> {
    u32::try_from(bytes.len()).map_err(|_| FieldTooLong { field, len: bytes.len() })
}

impl Record {
    /// The record of a job just submitted: state `queued`.
    pub fn new(
        handle: &[u8],
        function: &[u8],
        unique: &[u8],
        priority: Priority,
        background: bool,
        submitted: u64,
    ) -> Result<Record, FieldTooLong> {
        let handle_len = len32("handle", handle)?;
        let function_len = len32("function", function)?;
        len32("unique", unique)?;
        let ids = [handle, function, unique].concat().into_boxed_slice();
        Ok(Record {
            ids,
            handle_len,
            function_len,
            submitted,
            priority,
            background,
            state: RecordState::Queued,
            run: None,
        })
    }

    /// Puts decoded parts together (the storage and JSON decoders).
    /// `queued` is a record made by [`Record::new`]; `run` is left out
    /// when it holds nothing, as for a record that never started.
    pub(crate) fn from_parts(queued: Record, state: RecordState, run: Run) -> Record {
        let run = (run != Run::default()).then(|| Box::new(run));
        Record { state, run, ..queued }
    }

    fn run_mut(&mut self) -> &mut Run {
        self.run.get_or_insert_with(Box::default)
    }

    fn check_live(&self) -> Result<(), RecordEnded> {
        if self.state.is_final() {
            Err(RecordEnded(self.state))
        } else {
            Ok(())
        }
    }

    // ---- events --------------------------------------------------------

    /// The job was assigned to `worker` at `now`: a new attempt begins. An
    /// attempt still open (the caller never said how it ended) is closed as
    /// [`AttemptEnd::Interrupted`].
    pub fn started(&mut self, worker: Worker, now: u64) -> Result<(), RecordEnded> {
        self.check_live()?;
        self.state = RecordState::Running;
        let run = self.run_mut();
        close_open_attempt(run, AttemptEnd::Interrupted, now);
        run.attempts = run.attempts.saturating_add(1);
        run.first_started.get_or_insert(now);
        if run.attempt_log.len() == MAX_KEPT_ATTEMPTS {
            run.attempt_log.remove(0);
        }
        // Most jobs run once: grow the list one attempt at a time rather
        // than by doubling (a first push would make room for four).
        run.attempt_log.reserve_exact(1);
        run.attempt_log.push(Attempt { worker, started: now, ended: None });
        Ok(())
    }

    /// A WORK_DATA chunk.
    pub fn data(&mut self, bytes: &[u8], limits: Limits) -> Result<(), RecordEnded> {
        self.chunk(ChunkKind::Data, bytes, limits)
    }

    /// A WORK_WARNING chunk.
    pub fn warning(&mut self, bytes: &[u8], limits: Limits) -> Result<(), RecordEnded> {
        self.chunk(ChunkKind::Warning, bytes, limits)
    }

    fn chunk(&mut self, kind: ChunkKind, bytes: &[u8], limits: Limits) -> Result<(), RecordEnded> {
        self.check_live()?;
        let run = self.run_mut();
        let len = bytes.len() as u64;
        // Once a chunk was cut or left out nothing more is kept, so that
        // the kept chunks are always the first ones that arrived.
        let intact = run.chunks_received == run.chunks.len() as u64 && run.chunk_bytes_received == run.chunk_bytes_kept;
        run.chunks_received = run.chunks_received.saturating_add(1);
        run.chunk_bytes_received = run.chunk_bytes_received.saturating_add(len);
        let room = limits.chunk_budget().saturating_sub(run.chunk_bytes_kept);
        if !intact || room == 0 && len > 0 {
            return Ok(());
        }
        let keep = len.min(room) as usize;
        run.chunks.push(Chunk::new(kind, bytes[..keep].into(), keep < bytes.len()));
        run.chunk_bytes_kept += keep as u64;
        Ok(())
    }

    /// A WORK_STATUS: only the last one is kept.
    pub fn status(&mut self, numerator: u32, denominator: u32) -> Result<(), RecordEnded> {
        self.check_live()?;
        self.run_mut().status = Some(Status { numerator, denominator });
        Ok(())
    }

    /// The current attempt ended without ending the job (the worker was
    /// lost or timed out and the job went back to its queue, or the server
    /// restarted): the record is `queued` again.
    pub fn attempt_ended(&mut self, end: AttemptEnd, now: u64) -> Result<(), RecordEnded> {
        self.check_live()?;
        self.state = RecordState::Queued;
        if let Some(run) = self.run.as_mut() {
            close_open_attempt(run, end, now);
        }
        Ok(())
    }

    /// The job ended at `now`. An attempt still open is closed as the
    /// outcome says ([`Outcome::attempt_end`]); the result or exception text
    /// is kept within `limits`.
    pub fn ended(&mut self, outcome: Outcome<'_>, now: u64, limits: Limits) -> Result<(), RecordEnded> {
        self.check_live()?;
        self.state = outcome.state();
        let run = self.run_mut();
        close_open_attempt(run, outcome.attempt_end(), now);
        run.finished = Some(now);
        let payload = match outcome {
            Outcome::Complete(result) => Some((result, &mut run.result)),
            Outcome::Exception(text) | Outcome::Dead(Some(text)) => Some((text, &mut run.error)),
            _ => None,
        };
        if let Some((bytes, slot)) = payload {
            let room = limits.max_bytes.saturating_sub(run.chunk_bytes_kept);
            let keep = (bytes.len() as u64).min(room) as usize;
            *slot = Some(bytes[..keep].into());
            if keep < bytes.len() {
                run.result_bytes_received = Some(bytes.len() as u64);
            }
        }
        Ok(())
    }

    /// A copy without the data and warning chunks and the result (the
    /// exception text stays): what a report of the job's end needs, for the
    /// cost of the record's identity and attempts rather than its payload.
    pub fn without_payload(&self) -> Record {
        let run = self.run.as_ref().map(|run| {
            Box::new(Run {
                attempts: run.attempts,
                first_started: run.first_started,
                finished: run.finished,
                attempt_log: run.attempt_log.clone(),
                chunks: Vec::new(),
                chunks_received: 0,
                chunk_bytes_received: 0,
                chunk_bytes_kept: 0,
                status: run.status,
                result: None,
                error: run.error.clone(),
                result_bytes_received: None,
            })
        });
        Record { ids: self.ids.clone(), run, ..*self }
    }

    // ---- reading -------------------------------------------------------

    /// The job handle.
    pub fn handle(&self) -> &[u8] {
        &self.ids[..self.handle_len as usize]
    }

    /// The function name.
    pub fn function(&self) -> &[u8] {
        &self.ids[self.handle_len as usize..][..self.function_len as usize]
    }

    /// The unique id (empty when the client gave none).
    pub fn unique(&self) -> &[u8] {
        &self.ids[self.handle_len as usize + self.function_len as usize..]
    }

    /// The priority it was submitted with.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Whether it was submitted as a background job.
    pub fn is_background(&self) -> bool {
        self.background
    }

    /// Where the job is.
    pub fn state(&self) -> RecordState {
        self.state
    }

    /// When it was submitted.
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// When a worker first took it.
    pub fn first_started(&self) -> Option<u64> {
        self.run.as_ref()?.first_started
    }

    /// When it ended.
    pub fn finished(&self) -> Option<u64> {
        self.run.as_ref()?.finished
    }

    /// How many times a worker took it.
    pub fn attempts(&self) -> u32 {
        self.run.as_ref().map_or(0, |run| run.attempts)
    }

    /// The most recent attempts (at most [`MAX_KEPT_ATTEMPTS`]), oldest
    /// first.
    pub fn attempt_log(&self) -> &[Attempt] {
        self.run.as_ref().map_or(&[], |run| &run.attempt_log)
    }

    /// The worker of the latest attempt.
    pub fn last_worker(&self) -> Option<&Worker> {
        self.attempt_log().last().map(|attempt| &attempt.worker)
    }

    /// Kept data and warning chunks in arrival order.
    pub fn chunks(&self) -> &[Chunk] {
        self.run.as_ref().map_or(&[], |run| &run.chunks)
    }

    /// The last WORK_STATUS.
    pub fn status_numbers(&self) -> Option<Status> {
        self.run.as_ref()?.status
    }

    /// The result of WORK_COMPLETE (possibly cut, see [`Record::truncation`]).
    pub fn result(&self) -> Option<&[u8]> {
        self.run.as_ref()?.result.as_deref()
    }

    /// The text of WORK_EXCEPTION (possibly cut, see [`Record::truncation`]).
    pub fn error(&self) -> Option<&[u8]> {
        self.run.as_ref()?.error.as_deref()
    }

    /// Payload bytes kept: chunks, result and exception text.
    pub fn payload_bytes(&self) -> u64 {
        self.run.as_ref().map_or(0, |run| {
            let end = run.result.as_ref().or(run.error.as_ref()).map_or(0, |bytes| bytes.len() as u64);
            run.chunk_bytes_kept + end
        })
    }

    /// What arrived, when anything was cut or left out.
    pub fn truncation(&self) -> Option<Truncation> {
        let run = self.run.as_ref()?;
        let chunks_cut =
            run.chunks_received != run.chunks.len() as u64 || run.chunk_bytes_received != run.chunk_bytes_kept;
        (chunks_cut || run.result_bytes_received.is_some()).then_some(Truncation {
            chunks_received: run.chunks_received,
            chunk_bytes_received: run.chunk_bytes_received,
            result_bytes_received: run.result_bytes_received,
        })
    }

    /// Time from submission to the first start. A clock that stepped back
    /// gives 0, never a negative time.
    pub fn queue_wait(&self) -> Option<u64> {
        Some(self.first_started()?.saturating_sub(self.submitted))
    }

    /// How long the latest attempt ran: from its start to its end (or to
    /// the end of the job).
    pub fn run_time(&self) -> Option<u64> {
        let attempt = self.attempt_log().last()?;
        let end = attempt.ended.map(|(at, _)| at).or(self.finished())?;
        Some(end.saturating_sub(attempt.started))
    }
}

fn close_open_attempt(run: &mut Run, end: AttemptEnd, now: u64) {
    if let Some(attempt) = run.attempt_log.last_mut() {
        if attempt.ended.is_none() {
            attempt.ended = Some((now, end));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
