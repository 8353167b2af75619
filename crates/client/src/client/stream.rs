//! The events of one foreground job as an async stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::job::{JobEvent, JobHandle};

/// Events of a foreground job after JOB_CREATED: data, warnings, status,
/// then exactly one final event (complete, failed or exception).
///
/// It is a `futures::Stream<Item = JobEvent>`; the stream ends after the
/// final event, or early if the connection is lost (then
/// [`JobStream::next_event`] returns [`Error::ConnectionLost`]).
pub struct JobStream {
    handle: JobHandle,
    rx: mpsc::UnboundedReceiver<JobEvent>,
    server: String,
    done: bool,
    skipped_created: bool,
}

impl JobStream {
    pub(crate) fn new(handle: JobHandle, rx: mpsc::UnboundedReceiver<JobEvent>, server: String) -> JobStream {
        JobStream { handle, rx, server, done: false, skipped_created: false }
    }

    /// The job handle.
    pub fn handle(&self) -> &JobHandle {
        &self.handle
    }

    /// The server running the job.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The next event, or an error when the connection broke before the
    /// job ended, or [`Error::Closed`] after the final event was read.
    pub async fn next_event(&mut self) -> Result<JobEvent> {
        if self.done {
            return Err(Error::Closed);
        }
        loop {
            match self.rx.recv().await {
                Some(JobEvent::Created(_)) if !self.skipped_created => self.skipped_created = true,
                Some(ev) => {
                    self.done = ev.is_final();
                    return Ok(ev);
                }
                None => {
                    self.done = true;
                    return Err(Error::ConnectionLost {
                        addr: self.server.clone(),
                        message: "lost before the job finished".into(),
                    });
                }
            }
        }
    }

    /// Waits for the final event and returns the result (data and warning
    /// events are dropped).
    pub async fn result(mut self) -> Result<Bytes> {
        loop {
            match self.next_event().await? {
                JobEvent::Complete(d) => return Ok(d),
                JobEvent::Failed => return Err(Error::JobFailed { handle: self.handle.to_string() }),
                JobEvent::Exception(data) => return Err(Error::JobException { handle: self.handle.to_string(), data }),
                _ => {}
            }
        }
    }
}

impl Stream for JobStream {
    type Item = JobEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<JobEvent>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(JobEvent::Created(_))) if !self.skipped_created => self.skipped_created = true,
                Poll::Ready(Some(ev)) => {
                    self.done = ev.is_final();
                    return Poll::Ready(Some(ev));
                }
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
