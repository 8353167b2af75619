//! A framed connection: writes requests, reads responses. Used by both the
//! client's connection task and the worker's session loop.

use std::time::Duration;

use bytes::BytesMut;
use sprocket_proto::{Decoder, Frame, Magic, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::addr::ServerAddr;
use crate::error::{Error, Result};

/// Opens a TCP connection with a time limit and TCP_NODELAY.
pub(crate) async fn connect(addr: &ServerAddr, limit: Duration) -> Result<TcpStream> {
    let target = addr.socket_string();
    let stream = match tokio::time::timeout(limit, TcpStream::connect(&target)).await {
        Err(_) => return Err(Error::Connect { addr: target, message: format!("timed out after {limit:?}") }),
        Ok(Err(e)) => return Err(Error::Connect { addr: target, message: e.to_string() }),
        Ok(Ok(s)) => s,
    };
    // Small request/response packets: don't let Nagle delay them.
    let _ = stream.set_nodelay(true);
    // Lets the kernel notice a peer that vanished without closing (host
    // powered off); the workers' idle check notices it sooner.
    let keepalive = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE).with_interval(KEEPALIVE_INTERVAL);
    if let Err(e) = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(server = %target, error = %e, "cannot enable TCP keepalive");
    }
    Ok(stream)
}

/// Quiet time before the first TCP keepalive probe.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Time between unanswered keepalive probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// The reading half: a buffer plus the protocol decoder.
pub(crate) struct PacketReader {
    half: OwnedReadHalf,
    buf: BytesMut,
    decoder: Decoder,
    addr: String,
}

impl PacketReader {
    pub(crate) fn new(half: OwnedReadHalf, addr: String) -> PacketReader {
        PacketReader { half, buf: BytesMut::with_capacity(8192), decoder: Decoder::default(), addr }
    }

    /// Reads the next response packet. Unknown packet types are skipped;
    /// text lines and request packets are protocol errors.
    pub(crate) async fn read(&mut self) -> Result<Response> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Frame::Packet { magic: Magic::Res, kind, body })) => {
                    return Response::parse(kind, body)
                        .map_err(|e| Error::Protocol(format!("bad {} packet from {}: {e}", kind.name(), self.addr)));
                }
                Ok(Some(Frame::Packet { kind, .. })) => {
                    return Err(Error::Protocol(format!("{} sent a request packet ({})", self.addr, kind.name())));
                }
                Ok(Some(Frame::Text(line))) => {
                    return Err(Error::Protocol(format!(
                        "{} sent a text line: {:?}",
                        self.addr,
                        String::from_utf8_lossy(&line)
                    )));
                }
                Err(e) if e.recoverable() => continue,
                Err(e) => return Err(Error::Protocol(format!("from {}: {e}", self.addr))),
                Ok(None) => {}
            }
            let n = self.half.read_buf(&mut self.buf).await.map_err(|e| self.lost(e.to_string()))?;
            if n == 0 {
                return Err(self.lost("closed by the server".into()));
            }
        }
    }

    fn lost(&self, message: String) -> Error {
        Error::ConnectionLost { addr: self.addr.clone(), message }
    }
}

/// The writing half.
pub(crate) struct PacketWriter {
    half: OwnedWriteHalf,
    buf: BytesMut,
    addr: String,
}

impl PacketWriter {
    pub(crate) fn new(half: OwnedWriteHalf, addr: String) -> PacketWriter {
        PacketWriter { half, buf: BytesMut::with_capacity(8192), addr }
    }

    /// Queues a request in the buffer without writing it.
    pub(crate) fn queue(&mut self, req: &Request) {
        req.encode(&mut self.buf);
    }

    /// Writes everything queued so far.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = self.buf.split();
        self.half
            .write_all(&data)
            .await
            .map_err(|e| Error::ConnectionLost { addr: self.addr.clone(), message: e.to_string() })
    }
}

/// Connects and splits into reader and writer.
pub(crate) async fn open(addr: &ServerAddr, limit: Duration) -> Result<(PacketReader, PacketWriter)> {
    let stream = connect(addr, limit).await?;
    let (r, w) = stream.into_split();
    let name = addr.to_string();
    Ok((PacketReader::new(r, name.clone()), PacketWriter::new(w, name)))
}
