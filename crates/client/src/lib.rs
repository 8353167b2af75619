//! `sprocket-client`: an async (tokio) Gearman client and worker library.
//!
//! It speaks the Gearman binary protocol to `sprocketd` or to gearmand,
//! over one or several servers:
//!
//! * [`Client`]: foreground jobs with their result and a stream of
//!   WORK_DATA / WORK_WARNING / WORK_STATUS events, background jobs,
//!   priorities, unique ids, epoch (scheduled) jobs, batches, status
//!   queries, echo and options.
//! * Job records of sprocketd: [`Client::record`] (a job's record by
//!   handle, also after it ended), [`Client::records`] (ended jobs by
//!   function, state and time) and [`Client::attach`] (a job's events and
//!   result by handle, replayed once it has ended).
//! * [`Worker`]: async handlers per function, a concurrency limit,
//!   progress reports from inside a handler, graceful stop.
//!
//! Jobs are spread over the servers; a server that cannot be reached is
//! skipped and tried again later with exponential backoff, and so is one
//! that stops answering (submissions then move on to the next server:
//! delivery is at-least-once, see [`ClientOptions::response_timeout`]).
//! Every wait has a time limit (see [`ClientOptions`] and [`WorkerOptions`]).
//!
//! Connections may use TLS ([`TlsConfig`], set in the `tls` field of the
//! options): the server's certificate is always verified, and a client
//! certificate can be presented.
//!
//! ```no_run
//! use sprocket_client::{Client, Job, JobError, Worker};
//!
//! # async fn demo() -> sprocket_client::Result<()> {
//! let worker = Worker::new("127.0.0.1:4730")?
//!     .register("reverse", |job: Job| async move {
//!         let mut v = job.payload().to_vec();
//!         v.reverse();
//!         Ok::<_, JobError>(v)
//!     })
//!     .spawn()?;
//!
//! let client = Client::new("127.0.0.1:4730")?;
//! assert_eq!(&client.submit("reverse", "Rasmus").await?[..], b"sumsaR");
//! worker.shutdown().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod addr;
pub mod admin;
mod backoff;
mod client;
mod conn;
mod error;
mod job;
mod probe;
mod tls;
mod transport;
mod worker;

pub use addr::{IntoServers, ServerAddr, DEFAULT_PORT};
pub use admin::Admin;
pub use bytes::Bytes;
pub use client::{
    BatchResult, Client, ClientOptions, JobStream, RecordFilter, RECORDS_FUNCTION, RECORD_FUNCTION, RESULT_FUNCTION,
};
pub use error::{Error, Result};
pub use job::{JobEvent, JobHandle, JobRequest, JobStatus, Priority, Unique, UniqueStatus};
pub use probe::{probe, probe_blocking};
/// The job record types ([`Record`], [`RecordState`] and the rest), from
/// the `sprocket-records` crate.
pub use sprocket_records as records;
pub use sprocket_records::{Record, RecordState};
pub use tls::{TlsConfig, TlsConfigBuilder, DEFAULT_HANDSHAKE_TIMEOUT};
pub use transport::{connect, ServerStream};
pub use worker::{HandlerFuture, Job, JobError, Worker, WorkerHandle, WorkerOptions, WorkerStats};
