//! "Does this server answer?" checks for tools that refuse to start
//! without one. Over plain TCP an accepted connection is enough (as
//! before TLS existed); over TLS the check also makes one ECHO round trip,
//! because with TLS 1.3 a server that refuses the client certificate says
//! so only after the handshake, with its first record.

use std::io::{Read, Write};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sprocket_proto::{Decoder, Frame, Magic, PacketType, Request, Response};

use crate::addr::ServerAddr;
use crate::conn;
use crate::error::{Error, Result};
use crate::tls::{self, TlsConfig};
use crate::transport;

/// What the ECHO round trip sends.
const PROBE: &[u8] = b"sprocket probe";

/// Checks that `addr` accepts a connection within `connect_timeout` and,
/// with `tls`, that a TLS session with it carries a request and its answer.
pub async fn probe(addr: &ServerAddr, tls: Option<&TlsConfig>, connect_timeout: Duration) -> Result<()> {
    let Some(config) = tls else {
        return transport::connect(addr, None, connect_timeout).await.map(drop);
    };
    let (mut reader, mut writer) = conn::open(addr, Some(config), connect_timeout).await?;
    writer.queue(&Request::EchoReq { data: Bytes::from_static(PROBE) });
    let limit = config.handshake_timeout();
    let round_trip = async {
        writer.flush().await?;
        reader.read().await
    };
    match tokio::time::timeout(limit, round_trip).await {
        Err(_) => Err(Error::Timeout { what: "ECHO_RES", after: limit }),
        Ok(Err(e)) => Err(e),
        Ok(Ok(Response::EchoRes { .. })) => Ok(()),
        Ok(Ok(other)) => Err(Error::Protocol(format!("{addr} answered ECHO_REQ with {}", other.packet_type().name()))),
    }
}

/// [`probe`] without an async runtime, for a check before a process forks
/// into the background (a runtime's threads must not exist then), so that
/// its error is still seen. Each address the host resolves to gets
/// `connect_timeout`; each read or write of the TLS session the handshake
/// limit.
pub fn probe_blocking(addr: &ServerAddr, tls: Option<&TlsConfig>, connect_timeout: Duration) -> Result<()> {
    let tcp = transport::connect_tcp_blocking(addr, connect_timeout)?;
    let Some(config) = tls else { return Ok(()) };
    let mut session = transport::handshake_blocking(addr, config, tcp)?;
    let lost = |e: std::io::Error| Error::ConnectionLost { addr: addr.to_string(), message: tls::describe(&e) };
    let mut request = BytesMut::new();
    Request::EchoReq { data: Bytes::from_static(PROBE) }.encode(&mut request);
    session.write_all(&request).and_then(|()| session.flush()).map_err(lost)?;
    let mut buf = BytesMut::new();
    let mut decoder = Decoder::default();
    let mut chunk = [0u8; 1024];
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(Frame::Packet { magic: Magic::Res, kind: PacketType::EchoRes, .. })) => break,
            Ok(Some(_)) => return Err(Error::Protocol(format!("{addr} did not answer ECHO_REQ with ECHO_RES"))),
            Err(e) if e.recoverable() => continue,
            Err(e) => return Err(Error::Protocol(format!("from {addr}: {e}"))),
            Ok(None) => {}
        }
        let n = session.read(&mut chunk).map_err(lost)?;
        if n == 0 {
            return Err(Error::ConnectionLost { addr: addr.to_string(), message: "closed by the server".into() });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    session.conn.send_close_notify();
    let _ = session.flush();
    Ok(())
}
