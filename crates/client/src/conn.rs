//! A framed connection: writes requests, reads responses. Used by both the
//! client's connection task and the worker's session loop.

use std::time::Duration;

use bytes::BytesMut;
use sprocket_proto::{Decoder, Frame, Magic, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::addr::ServerAddr;
use crate::error::{Error, Result};
use crate::tls::{self, TlsConfig};
use crate::transport::{self, ReadSide, WriteSide};

/// The reading half: a buffer plus the protocol decoder.
pub(crate) struct PacketReader {
    half: ReadSide,
    buf: BytesMut,
    decoder: Decoder,
    addr: String,
}

impl PacketReader {
    pub(crate) fn new(half: ReadSide, addr: String) -> PacketReader {
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
            let n = self.half.read_buf(&mut self.buf).await.map_err(|e| self.lost(tls::describe(&e)))?;
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
    half: WriteSide,
    buf: BytesMut,
    addr: String,
}

impl PacketWriter {
    pub(crate) fn new(half: WriteSide, addr: String) -> PacketWriter {
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
        let lost = |e: std::io::Error| Error::ConnectionLost { addr: self.addr.clone(), message: tls::describe(&e) };
        self.half.write_all(&data).await.map_err(lost)?;
        // A no-op on TCP; a TLS session may hold the last record until flushed.
        self.half.flush().await.map_err(lost)
    }
}

/// Connects (with TLS when `tls` is given) and splits into reader and writer.
pub(crate) async fn open(
    addr: &ServerAddr,
    tls: Option<&TlsConfig>,
    limit: Duration,
) -> Result<(PacketReader, PacketWriter)> {
    let stream = transport::connect(addr, tls, limit).await?;
    let (r, w) = stream.into_split();
    let name = addr.to_string();
    Ok((PacketReader::new(r, name.clone()), PacketWriter::new(w, name)))
}
