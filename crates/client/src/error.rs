//! The library's error type.

use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;

/// Everything that can go wrong talking to a Gearman server.
///
/// Errors are `Clone` so one connection failure can be reported to every
/// request that was waiting on that connection.
///
/// ```
/// use sprocket_client::Error;
/// let e = Error::Timeout { what: "JOB_CREATED", after: std::time::Duration::from_secs(1) };
/// assert!(e.to_string().contains("timed out"));
/// ```
#[derive(Debug, Clone, Error)]
pub enum Error {
    /// A server address could not be parsed.
    #[error("invalid server address {addr:?}: {reason}")]
    InvalidAddress {
        /// The text that was given.
        addr: String,
        /// Why it was refused.
        reason: String,
    },
    /// The client or worker was built without any server.
    #[error("no job server configured")]
    NoServers,
    /// A TCP connection could not be opened.
    #[error("cannot connect to {addr}: {message}")]
    Connect {
        /// The server address.
        addr: String,
        /// The operating system's reason.
        message: String,
    },
    /// The TLS handshake with a server failed (certificate not trusted,
    /// expired or for another name, the server refused ours, or the server
    /// does not speak TLS). The connection is closed; nothing is sent in
    /// plain text instead.
    #[error("TLS with {addr} failed: {message}")]
    Tls {
        /// The server address.
        addr: String,
        /// What went wrong, in words.
        message: String,
    },
    /// The TLS settings cannot be used (a CA, certificate or key file is
    /// missing, unreadable or holds nothing usable).
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    /// Every configured server is down or backing off after a failure.
    #[error("no job server available (tried {tried})")]
    NoServerAvailable {
        /// The addresses that were tried, with the last error of each.
        tried: String,
    },
    /// The connection broke while a request was waiting for its answer.
    #[error("connection to {addr} lost: {message}")]
    ConnectionLost {
        /// The server address.
        addr: String,
        /// What happened.
        message: String,
    },
    /// The server did not answer in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The limit that expired.
        after: Duration,
    },
    /// The server replied with an ERROR packet.
    #[error("server error {code}: {text}")]
    Server {
        /// The error code, e.g. `QUEUE_ERROR`.
        code: String,
        /// The server's text.
        text: String,
    },
    /// The server sent something the protocol does not allow here.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The worker reported WORK_FAIL.
    #[error("job {handle} failed")]
    JobFailed {
        /// The job handle.
        handle: String,
    },
    /// The worker reported WORK_EXCEPTION (only seen with the exceptions option).
    #[error("job {handle} raised an exception: {}", String::from_utf8_lossy(data))]
    JobException {
        /// The job handle.
        handle: String,
        /// The exception payload sent by the worker.
        data: Bytes,
    },
    /// No server knows the job this handle names: it was never issued, or
    /// it ended and its record expired (sprocketd's `--record-retention`).
    #[error("no job {handle} on the server (never issued, or ended and its record expired)")]
    UnknownJob {
        /// The handle asked about.
        handle: String,
    },
    /// A caller-supplied value cannot be sent (e.g. a NUL byte in a function name).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The client or worker was shut down.
    #[error("shut down")]
    Closed,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True when the error came from the network or a server being down,
    /// so trying another server may help.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::Tls { .. } | Error::NoServerAvailable { .. } | Error::ConnectionLost { .. }
        )
    }
}
