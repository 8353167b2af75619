//! What a handler receives (the job and a way to report progress) and
//! what it may return as an error.

use bytes::Bytes;
use sprocket_proto::Request;
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// A job handed to a worker function.
///
/// Progress, partial data and warnings go to the waiting client at once:
///
/// ```no_run
/// # async fn handler(job: sprocket_client::Job) -> Result<bytes::Bytes, sprocket_client::JobError> {
/// for i in 1..=10 {
///     job.status(i, 10)?;
/// }
/// job.data("partial")?;
/// Ok(job.payload().iter().rev().copied().collect::<Vec<u8>>().into())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Job {
    pub(crate) handle: Bytes,
    pub(crate) function: Bytes,
    pub(crate) unique: Bytes,
    pub(crate) payload: Bytes,
    pub(crate) out: mpsc::UnboundedSender<Request>,
    pub(crate) server: String,
}

impl Job {
    /// The job handle assigned by the server.
    pub fn handle(&self) -> &[u8] {
        &self.handle
    }

    /// The function name the job was submitted to.
    pub fn function(&self) -> &[u8] {
        &self.function
    }

    /// The unique id given by the client (may be empty).
    pub fn unique(&self) -> &[u8] {
        &self.unique
    }

    /// The workload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The server the job came from.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends WORK_STATUS (progress `numerator / denominator`).
    pub fn status(&self, numerator: u64, denominator: u64) -> Result<()> {
        self.send(Request::WorkStatus {
            handle: self.handle.clone(),
            numerator: Bytes::from(numerator.to_string()),
            denominator: Bytes::from(denominator.to_string()),
        })
    }

    /// Sends WORK_DATA (a partial result).
    pub fn data(&self, data: impl Into<Bytes>) -> Result<()> {
        self.send(Request::WorkData { handle: self.handle.clone(), data: data.into() })
    }

    /// Sends WORK_WARNING.
    pub fn warning(&self, data: impl Into<Bytes>) -> Result<()> {
        self.send(Request::WorkWarning { handle: self.handle.clone(), data: data.into() })
    }

    fn send(&self, req: Request) -> Result<()> {
        self.out.send(req).map_err(|_| Error::ConnectionLost {
            addr: self.server.clone(),
            message: "worker connection closed".into(),
        })
    }
}

/// How a handler reports that a job did not succeed.
///
/// ```
/// use sprocket_client::JobError;
/// let e: JobError = "bad input".into();
/// assert_eq!(e, JobError::Exception("bad input".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Sent as WORK_FAIL.
    Fail,
    /// Sent as WORK_EXCEPTION with this payload (clients without the
    /// exceptions option see a failure).
    Exception(Bytes),
}

impl JobError {
    /// WORK_EXCEPTION with a message.
    pub fn exception(message: impl Into<Bytes>) -> JobError {
        JobError::Exception(message.into())
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Fail => f.write_str("job failed"),
            JobError::Exception(d) => write!(f, "job exception: {}", String::from_utf8_lossy(d)),
        }
    }
}

impl std::error::Error for JobError {}

impl From<&str> for JobError {
    fn from(s: &str) -> JobError {
        JobError::Exception(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for JobError {
    fn from(s: String) -> JobError {
        JobError::Exception(Bytes::from(s))
    }
}

impl From<Error> for JobError {
    fn from(e: Error) -> JobError {
        JobError::Exception(Bytes::from(e.to_string()))
    }
}
