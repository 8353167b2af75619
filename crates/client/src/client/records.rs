//! Job records kept by sprocketd: a job's record by handle, a listing of
//! ended jobs, and attaching to a job by handle to get its events and
//! result.
//!
//! All three are ordinary foreground submissions to functions sprocketd
//! reserves (`sprocket.result`, `sprocket.record`, `sprocket.records`),
//! so nothing new goes over the wire and any Gearman client can do the
//! same. A server without records (gearmand, or sprocketd before records)
//! treats them as jobs of a function nobody serves: a lookup then waits
//! for the response timeout and fails with [`Error::Timeout`], and an
//! attachment is [`Error::UnknownJob`] (the server answers under a handle
//! of its own).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use sprocket_proto::{Priority, Request, SubmitMode};
use sprocket_records::{Record, RecordState};
use tokio::sync::mpsc;

use super::{moves_on, Client, JobStream};
use crate::error::{Error, Result};
use crate::job::{JobEvent, JobHandle};

/// The reserved function that attaches a caller to a job by handle.
pub const RESULT_FUNCTION: &str = "sprocket.result";
/// The reserved function that answers a job's record as JSON.
pub const RECORD_FUNCTION: &str = "sprocket.record";
/// The reserved function that answers a listing of ended jobs' records.
pub const RECORDS_FUNCTION: &str = "sprocket.records";

/// The exception text sprocketd sends for a handle it has no record of.
const UNKNOWN_JOB: &[u8] = b"unknown job";
/// How the exception text starts when sprocketd cannot use a records filter.
const BAD_FILTER: &[u8] = b"bad record filter";

/// A reserved function answered with an exception other than "unknown
/// job", such as its records being unreadable just now.
fn reserved_refusal(function: &str, text: &[u8]) -> Error {
    Error::Server { code: function.to_owned(), text: String::from_utf8_lossy(text).into_owned() }
}

/// Which ended jobs [`Client::records`] lists. Every condition is
/// optional; the records that meet all of the given ones are listed,
/// newest end first.
///
/// It is sent to the server as the JSON object
/// `{"function", "state", "since_ms", "until_ms", "error", "limit"}`
/// (fields left unset are left out).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use sprocket_client::{RecordFilter, RecordState};
/// let filter = RecordFilter::new()
///     .function("resize")
///     .state(RecordState::Failed)
///     .since(SystemTime::now() - Duration::from_secs(3600))
///     .limit(20);
/// assert_eq!(filter.limit, Some(20));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordFilter {
    /// Only jobs of this function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Only jobs that ended in this state. The listing holds ended jobs
    /// only, so a live state (`queued`, `running`, `retrying`) matches none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<RecordState>,
    /// Only jobs that ended at or after this time (Unix milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// Only jobs that ended before this time (Unix milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// Only jobs whose error text (the exception text) contains this,
    /// without regard to case. Not empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// At most this many records, from 1 to [`RecordFilter::MAX_LIMIT`];
    /// `None` is the server's default, [`RecordFilter::DEFAULT_LIMIT`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl RecordFilter {
    /// How many records a listing holds when no limit is given.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// The largest limit the server accepts.
    pub const MAX_LIMIT: u32 = 10_000;

    /// A filter that matches every ended job (up to the default limit).
    pub fn new() -> RecordFilter {
        RecordFilter::default()
    }

    /// Only jobs of `function`.
    pub fn function(mut self, function: impl Into<String>) -> RecordFilter {
        self.function = Some(function.into());
        self
    }

    /// Only jobs that ended in `state`.
    pub fn state(mut self, state: RecordState) -> RecordFilter {
        self.state = Some(state);
        self
    }

    /// Only jobs that ended at or after `time`.
    pub fn since(mut self, time: SystemTime) -> RecordFilter {
        self.since_ms = Some(unix_ms(time));
        self
    }

    /// Only jobs that ended before `time`.
    pub fn until(mut self, time: SystemTime) -> RecordFilter {
        self.until_ms = Some(unix_ms(time));
        self
    }

    /// Only jobs whose error text contains `text`, case aside.
    pub fn error(mut self, text: impl Into<String>) -> RecordFilter {
        self.error = Some(text.into());
        self
    }

    /// Only dead jobs (dead letters): what `sprocket dead` lists.
    pub fn dead(self) -> RecordFilter {
        self.state(RecordState::Dead)
    }

    /// At most `limit` records (1 to [`RecordFilter::MAX_LIMIT`]).
    pub fn limit(mut self, limit: u32) -> RecordFilter {
        self.limit = Some(limit);
        self
    }

    /// The number of records the listing holds at most.
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(RecordFilter::DEFAULT_LIMIT)
    }

    /// Refuses a filter the server would refuse, before anything is sent.
    fn check(&self) -> Result<()> {
        if let Some(limit) = self.limit {
            if !(1..=RecordFilter::MAX_LIMIT).contains(&limit) {
                return Err(Error::InvalidArgument(format!(
                    "a records limit must be from 1 to {}, not {limit}",
                    RecordFilter::MAX_LIMIT
                )));
            }
        }
        if self.error.as_deref() == Some("") {
            return Err(Error::InvalidArgument("a records filter's error text cannot be empty".into()));
        }
        if let (Some(since), Some(until)) = (self.since_ms, self.until_ms) {
            if since > until {
                return Err(Error::InvalidArgument(format!(
                    "a records filter's since ({since}) is after its until ({until})"
                )));
            }
        }
        Ok(())
    }

    /// The JSON object sent as the payload of `sprocket.records`.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and a unit enum always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// Unix milliseconds of `time`. A time before 1970 becomes 0: no job ended
/// before 1970, so as a bound it selects exactly the same records.
fn unix_ms(time: SystemTime) -> u64 {
    let since_epoch = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// A foreground submission of `payload` to a reserved function.
fn reserved_request(function: &'static str, payload: Bytes) -> Request {
    Request::SubmitJob {
        mode: SubmitMode { priority: Priority::Normal, background: false },
        function: Bytes::from_static(function.as_bytes()),
        unique: Bytes::new(),
        data: payload,
    }
}

fn check_handle(handle: &JobHandle) -> Result<()> {
    if handle.as_bytes().is_empty() {
        return Err(Error::InvalidArgument("a job handle cannot be empty".into()));
    }
    Ok(())
}

/// What asking the servers one by one about a handle came to, when none of
/// them had the job.
struct NotFound {
    /// Servers that answered that they do not know the job.
    unknown: usize,
    /// Servers that could not be asked (or did not answer), with the error.
    unreachable: Vec<(String, Error)>,
}

impl NotFound {
    fn new() -> NotFound {
        NotFound { unknown: 0, unreachable: Vec::new() }
    }

    /// The job is unknown only when every server said so: one that could
    /// not be asked may be the one that has it. When the only server asked
    /// could not be, its own error says best what happened.
    fn into_error(mut self, handle: &JobHandle) -> Error {
        if self.unreachable.is_empty() && self.unknown > 0 {
            return Error::UnknownJob { handle: handle.to_string() };
        }
        if self.unknown == 0 && self.unreachable.len() == 1 {
            if let Some((_, only)) = self.unreachable.pop() {
                return only;
            }
        }
        let tried: Vec<String> = self.unreachable.iter().map(|(addr, e)| format!("{addr}: {e}")).collect();
        Error::NoServerAvailable { tried: tried.join("; ") }
    }
}

impl Client {
    /// Attaches to the job `handle` names and returns its events, as
    /// [`Client::submit_stream`] does for a job it submits: WORK_DATA,
    /// WORK_WARNING and WORK_STATUS as [`JobEvent`]s, then the final
    /// event (complete, failed or exception).
    ///
    /// This is a foreground submission to sprocketd's reserved function
    /// `sprocket.result` with the handle as payload. For a job that has
    /// ended, the server replays what its record kept: every data and
    /// warning chunk, the last status, then the end. For a job still
    /// queued or running, the caller is attached to it like a client whose
    /// submission coalesced onto it and gets its events as they happen. A
    /// job that ended as cancelled, timed out or dropped ends the stream
    /// with [`JobEvent::Failed`]; [`Client::record`] tells which.
    ///
    /// Which server: the one that issued the handle when it records one of
    /// this client's servers, or the only server. Otherwise the servers
    /// are first asked in turn for the job's record (as
    /// [`Client::record`] does) and the caller is attached on the one that
    /// has it; none having it is [`Error::UnknownJob`].
    ///
    /// A handle the chosen server does not know (never issued, or its
    /// record expired) is [`Error::UnknownJob`] when the server cannot
    /// answer under that handle (it is not short printable text); for any
    /// other handle the server answers under it and the stream ends at once
    /// with [`JobEvent::Exception`] `"unknown job"` (with the exceptions
    /// option, the default) or [`JobEvent::Failed`] (without).
    /// [`Client::record`] returning `None` confirms that the job is unknown.
    ///
    /// The stream has no time limit of its own; wrap the waiting in
    /// `tokio::time::timeout` to give up (the job goes on regardless).
    ///
    /// ```no_run
    /// # async fn demo(client: sprocket_client::Client) -> sprocket_client::Result<()> {
    /// use sprocket_client::{JobEvent, JobHandle};
    /// let handle = client.submit_background("resize", "img-7").await?;
    /// // Later, possibly from another process that only kept the handle:
    /// let mut stream = client.attach(&JobHandle::from(handle.to_string())).await?;
    /// loop {
    ///     match stream.next_event().await? {
    ///         JobEvent::Data(chunk) => println!("data: {chunk:?}"),
    ///         JobEvent::Complete(result) => break println!("result: {result:?}"),
    ///         JobEvent::Failed | JobEvent::Exception(_) => break println!("the job did not complete"),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn attach(&self, handle: &JobHandle) -> Result<JobStream> {
        check_handle(handle)?;
        let candidates = self.handle_order(handle);
        let server = match candidates[..] {
            [only] => only,
            _ => self.server_with_record(handle, &candidates).await?,
        };
        let addr = self.inner.slots[server].addr.to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let created = self.create_on(server, &reserved_request(RESULT_FUNCTION, handle.0.clone()), Some(tx)).await?;
        if created.as_bytes() != handle.as_bytes() {
            // The server answers under a handle of its own only for a
            // handle it cannot name, and so does not know. Dropping `rx`
            // lets the failure that follows go nowhere.
            return Err(Error::UnknownJob { handle: handle.to_string() });
        }
        Ok(JobStream::new(created, rx, addr))
    }

    /// The first of `candidates` that holds a record of the job.
    async fn server_with_record(&self, handle: &JobHandle, candidates: &[usize]) -> Result<usize> {
        let mut not_found = NotFound::new();
        for &i in candidates {
            match self.record_on(i, handle).await {
                Ok(Some(_)) => return Ok(i),
                Ok(None) => not_found.unknown += 1,
                Err(e) if moves_on(&e) => not_found.unreachable.push((self.inner.slots[i].addr.to_string(), e)),
                Err(e) => return Err(e),
            }
        }
        Err(not_found.into_error(handle))
    }

    /// The record of the job `handle` names, or `None` when no server has
    /// one (never issued, or expired after `--record-retention`).
    ///
    /// A queued or running job's record is its live state; an ended job's
    /// record says how it ended and holds its result, data and warning
    /// chunks, last status and attempts (see [`Record`] and
    /// docs/records.md). The servers asked are the one that issued the
    /// handle when it records one of this client's servers, else each in
    /// turn until one has the record; when none has it but some could not
    /// be asked, the answer is an error (that server's own when it is the
    /// only one asked, else [`Error::NoServerAvailable`]) rather than
    /// `None`; a server that cannot read its records just now answers
    /// [`Error::Server`] with the function's name as the code. The answer
    /// is awaited for at most
    /// [`ClientOptions::response_timeout`](crate::ClientOptions::response_timeout).
    ///
    /// ```no_run
    /// # async fn demo(client: sprocket_client::Client, handle: sprocket_client::JobHandle) -> sprocket_client::Result<()> {
    /// match client.record(&handle).await? {
    ///     Some(record) => println!("{} after {} attempts", record.state(), record.attempts()),
    ///     None => println!("no record of {handle}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn record(&self, handle: &JobHandle) -> Result<Option<Record>> {
        check_handle(handle)?;
        let mut not_found = NotFound::new();
        for i in self.handle_order(handle) {
            match self.record_on(i, handle).await {
                Ok(Some(record)) => return Ok(Some(record)),
                Ok(None) => not_found.unknown += 1,
                Err(e) if moves_on(&e) => not_found.unreachable.push((self.inner.slots[i].addr.to_string(), e)),
                Err(e) => return Err(e),
            }
        }
        match not_found.into_error(handle) {
            Error::UnknownJob { .. } => Ok(None),
            other => Err(other),
        }
    }

    /// Asks server `i` for the record of `handle` (`sprocket.record`).
    async fn record_on(&self, i: usize, handle: &JobHandle) -> Result<Option<Record>> {
        let addr = &self.inner.slots[i].addr;
        match self.ask_reserved(i, RECORD_FUNCTION, handle.0.clone()).await? {
            JobEvent::Complete(json) => serde_json::from_slice::<Record>(&json).map(Some).map_err(|e| {
                Error::Protocol(format!("{addr} answered {RECORD_FUNCTION} with a record that does not parse: {e}"))
            }),
            JobEvent::Exception(text) if text != UNKNOWN_JOB => Err(reserved_refusal(RECORD_FUNCTION, &text)),
            // WORK_FAIL, or the exception "unknown job".
            _ => Ok(None),
        }
    }

    /// The records of ended jobs that match `filter`, newest end first, at
    /// most [`RecordFilter::effective_limit`] of them.
    ///
    /// Every server is asked (a foreground submission of the filter as
    /// JSON to sprocketd's reserved function `sprocket.records`) and the
    /// answers are merged by end time. Every server must answer, so that a
    /// listing is never silently missing one server's jobs: one that
    /// cannot be asked fails the call. A filter the server refuses is
    /// [`Error::InvalidArgument`] with the server's reason (a limit out of
    /// range or a `since` after `until` is refused before anything is
    /// sent); a server that cannot read its records just now answers
    /// [`Error::Server`] with the function's name as the code.
    ///
    /// ```no_run
    /// # async fn demo(client: sprocket_client::Client) -> sprocket_client::Result<()> {
    /// use sprocket_client::{RecordFilter, RecordState};
    /// let failed = client.records(&RecordFilter::new().function("resize").state(RecordState::Failed)).await?;
    /// for record in &failed {
    ///     println!("{} failed after {} attempts", String::from_utf8_lossy(record.handle()), record.attempts());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn records(&self, filter: &RecordFilter) -> Result<Vec<Record>> {
        filter.check()?;
        let payload = Bytes::from(filter.to_json());
        let mut all = Vec::new();
        for i in 0..self.inner.slots.len() {
            let addr = self.inner.slots[i].addr.to_string();
            let answer = match self.ask_reserved(i, RECORDS_FUNCTION, payload.clone()).await {
                Ok(JobEvent::Complete(json)) => json,
                Ok(JobEvent::Exception(reason)) if reason.starts_with(BAD_FILTER) => {
                    return Err(Error::InvalidArgument(format!(
                        "{addr} refused the records filter: {}",
                        String::from_utf8_lossy(&reason)
                    )))
                }
                Ok(JobEvent::Exception(reason)) => return Err(reserved_refusal(RECORDS_FUNCTION, &reason)),
                Ok(_) => {
                    return Err(Error::Server {
                        code: RECORDS_FUNCTION.into(),
                        text: format!("{addr} failed the search (no reason is given without the exceptions option)"),
                    })
                }
                // One server: its own error says best what happened.
                Err(e) if moves_on(&e) && self.inner.slots.len() > 1 => {
                    return Err(Error::NoServerAvailable { tried: format!("{addr}: {e}") })
                }
                Err(e) => return Err(e),
            };
            let records = serde_json::from_slice::<Vec<Record>>(&answer).map_err(|e| {
                Error::Protocol(format!("{addr} answered {RECORDS_FUNCTION} with records that do not parse: {e}"))
            })?;
            all.extend(records);
        }
        // Newest end first; a stable sort keeps each server's own order
        // among equal times. Records without an end (none are expected)
        // go last.
        all.sort_by_key(|record| std::cmp::Reverse(record.finished()));
        all.truncate(filter.effective_limit() as usize);
        Ok(all)
    }

    /// The servers to ask about a handle: the one that issued it when it is
    /// one of ours, else all in order.
    fn handle_order(&self, handle: &JobHandle) -> Vec<usize> {
        match handle.server().and_then(|s| self.slot_of(s)) {
            Some(i) => vec![i],
            None => (0..self.inner.slots.len()).collect(),
        }
    }

    /// Submits `payload` to a reserved function on server `i` and returns
    /// the final event, waiting at most the response timeout: the server
    /// answers these at once, from what it holds.
    async fn ask_reserved(&self, i: usize, function: &'static str, payload: Bytes) -> Result<JobEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let created = self.create_on(i, &reserved_request(function, payload), Some(tx)).await?;
        let mut stream = JobStream::new(created, rx, self.inner.slots[i].addr.to_string());
        let after = self.inner.options.response_timeout;
        let final_event = async {
            loop {
                let event = stream.next_event().await?;
                if event.is_final() {
                    return Ok(event);
                }
            }
        };
        let what = if function == RECORD_FUNCTION {
            "the answer to sprocket.record"
        } else {
            "the answer to sprocket.records"
        };
        tokio::time::timeout(after, final_event).await.unwrap_or(Err(Error::Timeout { what, after }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_sends_only_the_conditions_given() {
        assert_eq!(RecordFilter::new().to_json(), "{}");
        let filter = RecordFilter::new().function("resize").state(RecordState::Complete).limit(5);
        assert_eq!(filter.to_json(), r#"{"function":"resize","state":"complete","limit":5}"#);
        let filter = RecordFilter { since_ms: Some(1000), until_ms: Some(2000), ..RecordFilter::default() };
        assert_eq!(filter.to_json(), r#"{"since_ms":1000,"until_ms":2000}"#);
    }

    #[test]
    fn times_become_unix_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_765_111_111_900);
        assert_eq!(RecordFilter::new().since(t).since_ms, Some(1_765_111_111_900));
        let before_1970 = SystemTime::UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(RecordFilter::new().until(before_1970).until_ms, Some(0));
    }

    #[test]
    fn limits_out_of_range_and_reversed_times_are_refused() {
        for bad in [0, RecordFilter::MAX_LIMIT + 1] {
            let err = RecordFilter::new().limit(bad).check().expect_err("limit out of range");
            assert!(err.to_string().contains("from 1 to 10000"), "{err}");
        }
        assert!(RecordFilter::new().limit(RecordFilter::MAX_LIMIT).check().is_ok());
        assert_eq!(RecordFilter::new().effective_limit(), 100);
        let reversed = RecordFilter { since_ms: Some(2), until_ms: Some(1), ..RecordFilter::default() };
        assert!(reversed.check().expect_err("since after until").to_string().contains("after its until"));
    }
}
