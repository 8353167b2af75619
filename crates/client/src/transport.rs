//! The byte stream to a job server: plain TCP, or TLS over TCP. Everything
//! above this module reads and writes bytes and does not care which.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::addr::ServerAddr;
use crate::error::{Error, Result};
use crate::tls::{self, TlsConfig};

/// An open connection to a job server, encrypted or not.
///
/// Reads and writes bytes ([`AsyncRead`] + [`AsyncWrite`]); open one with
/// [`connect`]. Useful for protocols beside the binary one, such as the
/// admin text protocol.
pub enum ServerStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, after a completed handshake.
    Tls(Box<TlsStream<TcpStream>>),
}

impl std::fmt::Debug for ServerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerStream::Plain(_) => "ServerStream::Plain",
            ServerStream::Tls(_) => "ServerStream::Tls",
        })
    }
}

/// Opens a TCP connection to `addr` within `connect_timeout`, then, with
/// `tls`, completes a TLS handshake within the configuration's handshake
/// limit, verifying the server's certificate for the address's host.
/// A failed handshake is an [`Error::Tls`]; nothing falls back to plain TCP.
pub async fn connect(addr: &ServerAddr, tls: Option<&TlsConfig>, connect_timeout: Duration) -> Result<ServerStream> {
    let tcp = connect_tcp(addr, connect_timeout).await?;
    match tls {
        None => Ok(ServerStream::Plain(tcp)),
        Some(config) => handshake(addr, config, tcp).await.map(|s| ServerStream::Tls(Box::new(s))),
    }
}

async fn handshake(addr: &ServerAddr, config: &TlsConfig, tcp: TcpStream) -> Result<TlsStream<TcpStream>> {
    let failed = |message: String| Error::Tls { addr: addr.to_string(), message };
    // An IP address (v4 or v6) becomes an IP name, checked against the
    // certificate's IP address entries; anything else a DNS name.
    let name = ServerName::try_from(addr.host.clone())
        .map_err(|e| failed(format!("{:?} cannot be checked against a certificate: {e}", addr.host)))?;
    let connector = TlsConnector::from(config.rustls());
    let limit = config.handshake_timeout();
    match tokio::time::timeout(limit, connector.connect(name, tcp)).await {
        Err(_) => {
            Err(failed(format!("handshake timed out after {limit:?} (is the server speaking TLS on this port?)")))
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Err(failed(
            "the server closed the connection during the handshake (is it speaking TLS on this port?)".into(),
        )),
        Ok(Err(e)) => Err(failed(tls::describe(&e))),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// The blocking counterpart of [`connect`]'s handshake, for checks made
/// before a process forks (no runtime may exist then). The socket keeps
/// the handshake's limit as its read and write timeout.
pub(crate) fn handshake_blocking(
    addr: &ServerAddr,
    config: &TlsConfig,
    mut tcp: std::net::TcpStream,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    let failed = |message: String| Error::Tls { addr: addr.to_string(), message };
    let name = ServerName::try_from(addr.host.clone())
        .map_err(|e| failed(format!("{:?} cannot be checked against a certificate: {e}", addr.host)))?;
    let limit = config.handshake_timeout();
    let timeouts = tcp.set_read_timeout(Some(limit)).and_then(|()| tcp.set_write_timeout(Some(limit)));
    timeouts.map_err(|e| failed(e.to_string()))?;
    let mut session = rustls::ClientConnection::new(config.rustls(), name).map_err(|e| failed(e.to_string()))?;
    while session.is_handshaking() {
        match session.complete_io(&mut tcp) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(failed(format!(
                    "handshake timed out after {limit:?} (is the server speaking TLS on this port?)"
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(failed(
                    "the server closed the connection during the handshake (is it speaking TLS on this port?)".into(),
                ))
            }
            Err(e) => return Err(failed(tls::describe(&e))),
        }
    }
    Ok(rustls::StreamOwned::new(session, tcp))
}

/// Opens a blocking TCP connection to `addr`, trying each address its
/// host resolves to with `limit`.
pub(crate) fn connect_tcp_blocking(addr: &ServerAddr, limit: Duration) -> Result<std::net::TcpStream> {
    use std::net::ToSocketAddrs;
    let target = addr.socket_string();
    let unreachable = |message: String| Error::Connect { addr: target.clone(), message };
    let resolved = target.to_socket_addrs().map_err(|e| unreachable(e.to_string()))?;
    let mut last = unreachable("the host name resolves to no address".into());
    for ip in resolved {
        match std::net::TcpStream::connect_timeout(&ip, limit) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = unreachable(e.to_string()),
        }
    }
    Err(last)
}

/// Opens a TCP connection with a time limit and TCP_NODELAY.
async fn connect_tcp(addr: &ServerAddr, limit: Duration) -> Result<TcpStream> {
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

impl ServerStream {
    /// Splits into halves that can be used from different tasks. Plain TCP
    /// splits without a lock; a TLS session is one state machine, so its
    /// halves share it behind tokio's split lock.
    pub(crate) fn into_split(self) -> (ReadSide, WriteSide) {
        match self {
            ServerStream::Plain(s) => {
                let (r, w) = s.into_split();
                (ReadSide::Plain(r), WriteSide::Plain(w))
            }
            ServerStream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadSide::Tls(r), WriteSide::Tls(w))
            }
        }
    }
}

/// The reading half of a [`ServerStream`].
pub(crate) enum ReadSide {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<TcpStream>>),
}

/// The writing half of a [`ServerStream`].
pub(crate) enum WriteSide {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

impl AsyncRead for ServerStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_write(cx, data),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for ReadSide {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadSide::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ReadSide::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteSide {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteSide::Plain(s) => Pin::new(s).poll_write(cx, data),
            WriteSide::Tls(s) => Pin::new(s).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteSide::Plain(s) => Pin::new(s).poll_flush(cx),
            WriteSide::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteSide::Plain(s) => Pin::new(s).poll_shutdown(cx),
            WriteSide::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
