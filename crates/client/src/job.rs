//! What a client sends (a job request) and what it gets back (events, status).

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
pub use sprocket_proto::Priority;

use crate::addr::ServerAddr;

/// A job handle assigned by the server, such as `H:myhost:42`, and the
/// server that assigned it.
///
/// Handles are only unique per server: two servers on one host both hand
/// out `H:host:1`. A handle this library received remembers its server, so
/// [`crate::Client::status`] asks that one; a handle built from bytes alone
/// (e.g. read back from a database) has none, and status then asks every
/// server in turn. Two handles are equal when bytes and server are.
///
/// ```
/// use sprocket_client::{JobHandle, ServerAddr};
/// let h = JobHandle::from("H:host:1");
/// assert_eq!(h.to_string(), "H:host:1");
/// assert_eq!(h.as_bytes(), b"H:host:1");
/// assert!(h.server().is_none());
/// let at = h.with_server(ServerAddr::new("10.0.0.1", 4730));
/// assert_eq!(at.server().map(|s| s.port), Some(4730));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobHandle(pub Bytes, Option<ServerAddr>);

impl JobHandle {
    /// The raw bytes of the handle.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The server that issued the handle, when known.
    pub fn server(&self) -> Option<&ServerAddr> {
        self.1.as_ref()
    }

    /// The same handle, marked as issued by `server` (for handles stored
    /// with their server and read back).
    pub fn with_server(self, server: ServerAddr) -> JobHandle {
        JobHandle(self.0, Some(server))
    }

    /// A handle issued by `server`.
    pub(crate) fn issued(bytes: Bytes, server: &ServerAddr) -> JobHandle {
        JobHandle(bytes, Some(server.clone()))
    }
}

impl fmt::Display for JobHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl From<&str> for JobHandle {
    fn from(s: &str) -> JobHandle {
        JobHandle(Bytes::copy_from_slice(s.as_bytes()), None)
    }
}

impl From<String> for JobHandle {
    fn from(s: String) -> JobHandle {
        JobHandle(Bytes::from(s), None)
    }
}

impl From<Bytes> for JobHandle {
    fn from(b: Bytes) -> JobHandle {
        JobHandle(b, None)
    }
}

/// How the unique id of a job is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Unique {
    /// libgearman's rule: a fresh UUID for background jobs, empty for
    /// foreground ones (which then never coalesce).
    #[default]
    Auto,
    /// No unique id at all.
    Empty,
    /// This exact id: jobs of the same function with the same id coalesce.
    Key(Bytes),
}

/// One job to submit: function, payload and options.
///
/// ```
/// use sprocket_client::{JobRequest, Priority};
/// let job = JobRequest::new("reverse", "Rasmus").priority(Priority::High).unique("r-1");
/// assert_eq!(job.function(), b"reverse");
/// ```
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub(crate) function: Bytes,
    pub(crate) payload: Bytes,
    pub(crate) unique: Unique,
    pub(crate) priority: Priority,
    pub(crate) epoch: Option<u64>,
    pub(crate) timeout: Option<Duration>,
}

impl JobRequest {
    /// A normal-priority job with an automatic unique id.
    pub fn new(function: impl Into<Bytes>, payload: impl Into<Bytes>) -> JobRequest {
        JobRequest {
            function: function.into(),
            payload: payload.into(),
            unique: Unique::Auto,
            priority: Priority::Normal,
            epoch: None,
            timeout: None,
        }
    }

    /// Sets the priority (high, normal, low).
    pub fn priority(mut self, priority: Priority) -> JobRequest {
        self.priority = priority;
        self
    }

    /// Sets the unique id: submissions of the same function with the same
    /// id share one job on the server.
    pub fn unique(mut self, unique: impl Into<Bytes>) -> JobRequest {
        self.unique = Unique::Key(unique.into());
        self
    }

    /// Chooses how the unique id is generated.
    pub fn unique_mode(mut self, unique: Unique) -> JobRequest {
        self.unique = unique;
        self
    }

    /// Runs the job not before this Unix time (seconds); SUBMIT_JOB_EPOCH.
    /// Epoch jobs are always background jobs at normal priority.
    pub fn at_epoch(mut self, epoch: u64) -> JobRequest {
        self.epoch = Some(epoch);
        self
    }

    /// Runs the job not before this time (see [`JobRequest::at_epoch`]).
    pub fn at(self, when: SystemTime) -> JobRequest {
        let secs = when.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        self.at_epoch(secs)
    }

    /// Limits how long a foreground submission waits for the result
    /// (overrides [`crate::ClientOptions::job_timeout`]).
    pub fn timeout(mut self, limit: Duration) -> JobRequest {
        self.timeout = Some(limit);
        self
    }

    /// The function name.
    pub fn function(&self) -> &[u8] {
        &self.function
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The unique key to send on the wire for this job.
    pub(crate) fn wire_unique(&self, background: bool) -> Bytes {
        match &self.unique {
            Unique::Key(k) => k.clone(),
            Unique::Empty => Bytes::new(),
            Unique::Auto if background => Bytes::from(uuid::Uuid::new_v4().to_string()),
            Unique::Auto => Bytes::new(),
        }
    }

    /// The key used to pick a server, so equal uniques meet on one server.
    pub(crate) fn routing_key(&self) -> Option<&[u8]> {
        match &self.unique {
            Unique::Key(k) if !k.is_empty() => Some(k),
            _ => None,
        }
    }
}

/// Something a worker reported about a foreground job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// The server accepted the job (JOB_CREATED).
    Created(JobHandle),
    /// WORK_DATA: a partial result.
    Data(Bytes),
    /// WORK_WARNING.
    Warning(Bytes),
    /// WORK_STATUS: progress as numerator / denominator.
    Status {
        /// Work done.
        numerator: u64,
        /// Work in all.
        denominator: u64,
    },
    /// WORK_COMPLETE with the result; the last event.
    Complete(Bytes),
    /// WORK_FAIL; the last event.
    Failed,
    /// WORK_EXCEPTION with its payload; the last event.
    Exception(Bytes),
}

impl JobEvent {
    /// True for the events that end a job.
    pub fn is_final(&self) -> bool {
        matches!(self, JobEvent::Complete(_) | JobEvent::Failed | JobEvent::Exception(_))
    }

    /// The progress in percent for a status event (0 when the denominator is 0).
    pub fn percent(&self) -> Option<u64> {
        match self {
            JobEvent::Status { numerator, denominator } => {
                Some(if *denominator == 0 { 0 } else { numerator.saturating_mul(100) / denominator })
            }
            _ => None,
        }
    }
}

/// The answer to GET_STATUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// The handle asked about.
    pub handle: JobHandle,
    /// The server knows the job (queued or running). False once it finished.
    pub known: bool,
    /// A worker is running it.
    pub running: bool,
    /// Last WORK_STATUS numerator.
    pub numerator: u64,
    /// Last WORK_STATUS denominator.
    pub denominator: u64,
}

/// The answer to GET_STATUS_UNIQUE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueStatus {
    /// The unique id asked about.
    pub unique: Bytes,
    /// The server knows a job with this unique id.
    pub known: bool,
    /// A worker is running it.
    pub running: bool,
    /// Last WORK_STATUS numerator.
    pub numerator: u64,
    /// Last WORK_STATUS denominator.
    pub denominator: u64,
    /// Number of foreground clients waiting on it.
    pub clients: u64,
}
