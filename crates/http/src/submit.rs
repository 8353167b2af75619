//! Submitting a job over HTTP: the web port connects to the server's own
//! Gearman port as a client, like any other, so the engine handles the job
//! exactly as one submitted there (coalescing, queue limits, the store).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sprocket_proto::{Decoder, Frame, Priority, Request, Response, SubmitMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One job to submit.
pub(crate) struct Submission {
    pub function: Bytes,
    pub unique: Bytes,
    pub data: Bytes,
    pub priority: Priority,
    pub background: bool,
    /// Ask for WORK_EXCEPTION (OPTION_REQ exceptions) instead of the
    /// WORK_FAIL a client that did not ask gets for an exception.
    pub exceptions: bool,
}

/// How a submitted job went.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A background job was queued.
    Queued { handle: Bytes },
    /// A foreground job ended with WORK_COMPLETE.
    Completed { handle: Bytes, result: Bytes },
    /// A foreground job ended with WORK_FAIL.
    Failed { handle: Bytes },
    /// A foreground job ended with WORK_EXCEPTION.
    Exception { handle: Bytes, exception: Bytes },
    /// A foreground job did not end within the wait limit; it goes on
    /// with nobody waiting for its result.
    StillRunning { handle: Bytes },
}

/// Why a job could not be submitted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    /// The Gearman port answered ERROR (a full queue, too large a job).
    #[error("the server refused the job: {code}: {text}")]
    Refused { code: String, text: String },
    /// The Gearman port could not be reached or broke off.
    #[error("cannot reach the server's Gearman port {addr}: {detail}")]
    Unreachable { addr: SocketAddr, detail: String },
    /// No JOB_CREATED within the time limit (a store that does not commit).
    #[error("the server did not acknowledge the job within {0:?}")]
    NotAcknowledged(Duration),
}

/// Submits `job` to the Gearman port at `addr`. A background job returns
/// once the server acknowledged it (after its store commit); a foreground
/// job waits up to `wait` for its result.
pub(crate) async fn submit(
    addr: SocketAddr,
    max_packet_size: u32,
    job: Submission,
    acknowledge_within: Duration,
    wait: Duration,
    on_behalf: (Option<&crate::acl::WebAclHandle>, &crate::acl::Caller),
) -> Result<Outcome, SubmitError> {
    let unreachable = |e: std::io::Error| SubmitError::Unreachable { addr, detail: e.to_string() };
    let (stream, _vouch) = crate::acl::connect_on_behalf(addr, on_behalf.0, on_behalf.1).await.map_err(unreachable)?;
    let mut conn = Conn {
        stream,
        buf: BytesMut::new(),
        // Results may be up to 1 KiB larger than a packet's limit (their
        // handle travels beside them).
        decoder: Decoder::new(max_packet_size.saturating_add(1024)),
    };
    let _ = conn.stream.set_nodelay(true);
    let mode = SubmitMode { priority: job.priority, background: job.background };
    let mut requests = Vec::new();
    if job.exceptions {
        requests.extend_from_slice(&Request::OptionReq { name: Bytes::from_static(b"exceptions") }.to_bytes());
    }
    let submit = Request::SubmitJob { mode, function: job.function, unique: job.unique, data: job.data };
    requests.extend_from_slice(&submit.to_bytes());
    conn.stream.write_all(&requests).await.map_err(unreachable)?;
    if job.exceptions {
        match tokio::time::timeout(acknowledge_within, conn.next()).await {
            Err(_) => return Err(SubmitError::NotAcknowledged(acknowledge_within)),
            Ok(Err(e)) => return Err(unreachable(e)),
            Ok(Ok(Response::OptionRes { .. })) => {}
            Ok(Ok(Response::Error { code, text })) => return Err(refused(&code, &text)),
            Ok(Ok(other)) => return Err(unreachable(std::io::Error::other(format!("unexpected answer {other:?}")))),
        }
    }
    let handle = match tokio::time::timeout(acknowledge_within, conn.next()).await {
        Err(_) => return Err(SubmitError::NotAcknowledged(acknowledge_within)),
        Ok(Err(e)) => return Err(unreachable(e)),
        Ok(Ok(Response::JobCreated { handle })) => handle,
        Ok(Ok(Response::Error { code, text })) => return Err(refused(&code, &text)),
        Ok(Ok(other)) => return Err(unreachable(std::io::Error::other(format!("unexpected answer {other:?}")))),
    };
    if job.background {
        return Ok(Outcome::Queued { handle });
    }
    let result = tokio::time::timeout(wait, async {
        let mut collected = BytesMut::new();
        loop {
            match conn.next().await? {
                // Partial results: WORK_COMPLETE's data is what follows.
                Response::WorkData { data, .. } => collected.extend_from_slice(&data),
                Response::WorkComplete { data, .. } => {
                    collected.extend_from_slice(&data);
                    return Ok(Outcome::Completed { handle: handle.clone(), result: collected.freeze() });
                }
                Response::WorkFail { .. } => return Ok(Outcome::Failed { handle: handle.clone() }),
                Response::WorkException { data, .. } => {
                    return Ok(Outcome::Exception { handle: handle.clone(), exception: data })
                }
                _ => {}
            }
        }
    })
    .await;
    match result {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(e)) => Err(unreachable(e)),
        Err(_) => Ok(Outcome::StillRunning { handle }),
    }
}

fn refused(code: &[u8], text: &[u8]) -> SubmitError {
    SubmitError::Refused {
        code: String::from_utf8_lossy(code).into_owned(),
        text: String::from_utf8_lossy(text).into_owned(),
    }
}

struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl Conn {
    async fn next(&mut self) -> std::io::Result<Response> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Frame::Packet { kind, body, .. })) => {
                    return Response::parse(kind, body).map_err(|e| std::io::Error::other(e.to_string()))
                }
                Ok(Some(Frame::Text(_))) => continue,
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
            }
        }
    }
}
