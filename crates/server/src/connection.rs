//! One reader task per TCP connection: it frames and parses packets
//! (binary or admin text, decided per frame) and forwards them to the
//! engine task. Replies go out through the connection's [`Outlet`].

use std::sync::Arc;

use bytes::BytesMut;
use sprocket_engine::{ConnId, Out};
use sprocket_proto::{DecodeError, Decoder, Frame, Magic, Request, Response};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::event::{Event, Inbound};
use crate::outlet::{Outlet, Wire};
use crate::tls_wire::{TlsSource, TlsWire};

/// Read buffer: small at first so idle connections cost little; a busy
/// connection grows it to `READ_CHUNK`, a large packet beyond.
const READ_START: usize = 2 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// Most frames forwarded to the engine in one event.
const MAX_FRAMES_PER_EVENT: usize = 1024;

pub struct ConnSettings {
    pub max_packet_size: u32,
    pub backlog: crate::outlet::BacklogLimits,
    /// Output waiting for all peers together.
    pub total_backlog: Arc<crate::outlet::TotalBacklog>,
    /// Bytes in and out of every connection, for `/metrics`.
    pub traffic: Arc<crate::telemetry::Traffic>,
    /// The access control list (`--acl-file`); `None`: everything is allowed.
    pub acl: Option<Arc<crate::acl::AclStore>>,
}

/// Where a connection's reader gets its bytes: the socket itself, or a
/// TLS session's plaintext. A type parameter of [`serve`], so the plain
/// path is the socket's own read, with nothing in between.
pub trait Source: Send + 'static {
    /// The bytes read are what the peer sent on the wire, so a TLS
    /// handshake there means a TLS client on a plain port.
    const ON_THE_WIRE: bool;

    /// Reads into `buf`'s spare room; 0 at the end. Must be cancel-safe.
    fn read_into(&mut self, buf: &mut BytesMut) -> impl std::future::Future<Output = std::io::Result<usize>> + Send;

    /// Whether the read left records of the connection's own to send (TLS
    /// alerts and the like).
    fn wants_write(&self) -> bool {
        false
    }
}

impl Source for OwnedReadHalf {
    const ON_THE_WIRE: bool = true;

    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        self.read_buf(buf).await
    }
}

impl Source for TlsSource {
    const ON_THE_WIRE: bool = false;

    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        TlsSource::read_into(self, buf).await
    }

    fn wants_write(&self) -> bool {
        TlsSource::wants_write(self)
    }
}

/// What the accept loop hands to a connection's task besides its socket.
pub struct Handoff {
    pub conn: ConnId,
    pub events: mpsc::UnboundedSender<Event>,
    pub settings: Arc<ConnSettings>,
    /// Its place under `--max-connections`, held until it ends.
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Dropped when it ends (see `server::finish`).
    pub flushed: mpsc::Sender<()>,
}

/// Runs a plain connection until either side closes it.
pub async fn run(
    stream: TcpStream,
    conn: ConnId,
    events: mpsc::UnboundedSender<Event>,
    settings: Arc<ConnSettings>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    flushed: mpsc::Sender<()>,
) {
    let (fd, peer, peer_addr) = describe(&stream);
    let (rd, wr) = stream.into_split();
    let handoff = Handoff { conn, events, settings, permit, flushed };
    // A plain connection is known by its address (the ACL's `net:`
    // sections), unless it is the web port's own, made for a web client.
    let vouched = match (&handoff.settings.acl, peer_addr) {
        (Some(store), Some(addr)) => store.vouched(addr),
        _ => None,
    };
    let identity = match (vouched, peer_addr.map(|a| a.ip())) {
        (Some(crate::acl::Vouched::Operator), _) => None,
        (Some(crate::acl::Vouched::Section(name)), _) => Some(crate::acl::Identity::Section(name)),
        (None, Some(ip)) => Some(crate::acl::Identity::Address(ip)),
        (None, None) => Some(crate::acl::Identity::Nobody),
    };
    serve(rd, Wire::Plain(wr), fd, peer, identity, handoff).await;
}

/// Runs a TLS connection whose handshake is done until either side
/// closes it.
pub async fn run_tls(
    stream: TcpStream,
    session: rustls::ServerConnection,
    identity: crate::acl::Identity,
    handoff: Handoff,
) {
    let (fd, peer, _) = describe(&stream);
    let (rd, wr) = stream.into_split();
    let session = Arc::new(std::sync::Mutex::new(session));
    let identity = Some(identity);
    serve(TlsSource::new(rd, session.clone()), Wire::Tls(TlsWire::new(wr, session)), fd, peer, identity, handoff).await;
}

/// The socket's descriptor and peer as `workers` shows them, and the
/// peer's address and port; sets TCP_NODELAY.
fn describe(stream: &TcpStream) -> (i64, String, Option<std::net::SocketAddr>) {
    use std::os::fd::AsRawFd;
    let fd = i64::from(stream.as_raw_fd());
    let address = stream.peer_addr().ok();
    let peer = address.map(|a| peer_name(a.ip())).unwrap_or_else(|| "-".into());
    let _ = stream.set_nodelay(true);
    (fd, peer, address)
}

/// The first byte of a TLS handshake record. No Gearman frame starts with
/// it (binary packets start with a zero byte, admin lines with text).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

async fn serve<S: Source>(
    mut rd: S,
    wire: Wire,
    fd: i64,
    peer: String,
    identity: Option<crate::acl::Identity>,
    handoff: Handoff,
) {
    let Handoff { conn, events, settings, permit: _permit, flushed: _flushed } = handoff;
    // Requests are checked here, as they are parsed, so a refused one
    // never reaches the engine; without an ACL there is nothing to check,
    // nor for the web port's connection on behalf of the operator's token
    // (no identity).
    let acl = identity.and_then(|identity| settings.acl.clone().map(|store| (store, identity)));
    let read_guard = acl.as_ref().map(|(store, identity)| store.read_guard(identity.clone()));
    let mut access = acl.map(|(store, identity)| crate::acl::Access::new(store, identity));
    let outlet =
        Arc::new(Outlet::new(wire, settings.backlog, settings.total_backlog.clone(), settings.traffic.clone()));
    if events.send(Event::Connected { conn, fd, peer: peer.clone(), outlet: outlet.clone(), read_guard }).is_err() {
        return;
    }
    let mut writer_done = false;

    let mut decoder = Decoder::new(settings.max_packet_size);
    let mut buf = BytesMut::with_capacity(READ_START);
    let mut first_read = S::ON_THE_WIRE;
    let mut read_at = std::time::Instant::now();
    'read: loop {
        // Hand over what is buffered, as far as the connection's allowance
        // goes (see `Outlet::room`); what does not fit waits in the buffer,
        // and what the peer sends after it waits in the socket.
        loop {
            let room = outlet.intake_room();
            if room == 0 {
                tokio::select! {
                    _ = outlet.room() => continue,
                    _ = outlet.finished() => { writer_done = true; break 'read; }
                }
            }
            let (mut frames, mut weight, mut fatal, mut full) = (Vec::new(), 0, false, false);
            loop {
                if weight >= room || frames.len() >= MAX_FRAMES_PER_EVENT {
                    full = true;
                    break;
                }
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        let mut frame = inbound(frame);
                        if let Some(access) = &mut access {
                            frame = access.check(frame);
                        }
                        weight += frame.weight();
                        frames.push(frame);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(conn, error = %e, "protocol error");
                        let (resp, close) = decode_error_reply(&e);
                        frames.push(Inbound::Error { reply: resp, close });
                        weight += 1;
                        if close {
                            fatal = true;
                            break;
                        }
                    }
                }
            }
            if !frames.is_empty() {
                outlet.forwarded(weight);
                if events.send(Event::Frames { conn, frames, weight, read_at }).is_err() {
                    break 'read;
                }
            }
            if fatal {
                // The engine writes the error, then closes us.
                let _ = tokio::time::timeout(CLOSE_GRACE, outlet.finished()).await;
                discard_rest(&mut rd).await;
                writer_done = true;
                break 'read;
            }
            if !full {
                break;
            }
        }
        if buf.capacity() - buf.len() < 512 {
            let grow = if buf.capacity() < READ_CHUNK { buf.capacity().max(READ_START) } else { READ_CHUNK };
            buf.reserve(grow);
        }
        tokio::select! {
            r = rd.read_into(&mut buf) => match r {
                Ok(0) | Err(_) => break 'read,
                Ok(n) => {
                    read_at = std::time::Instant::now();
                    settings.traffic.received(n);
                    if rd.wants_write() {
                        outlet.flush_wire();
                    }
                    if first_read {
                        first_read = false;
                        if buf.first() == Some(&TLS_HANDSHAKE_RECORD) {
                            // A TLS client on a plain port would otherwise
                            // wait for an answer that never comes; closing
                            // ends its handshake at once.
                            tracing::warn!(conn, %peer, "TLS handshake on a plaintext port; connection closed (TLS is on --ssl-port, or on every port with --ssl)");
                            break 'read;
                        }
                    }
                }
            },
            _ = outlet.finished() => { writer_done = true; break 'read; }
        }
    }
    // The engine answers what was already read, then closes the outlet;
    // the writer finishes once that is written.
    let engine_gone = events.send(Event::Closed { conn }).is_err();
    if !writer_done {
        if engine_gone {
            outlet.close();
        }
        let _ = tokio::time::timeout(CLOSE_GRACE, outlet.finished()).await;
    }
}

/// After a fatal error the peer may still be sending (the rest of a packet
/// over the size limit, say). Closing with its bytes unread would reset the
/// connection, and a peer that writes a whole packet before reading would
/// lose the ERROR sent to it; so what it sends is read and dropped for a
/// moment first, within a bound.
async fn discard_rest<S: Source>(rd: &mut S) {
    const LIMIT: usize = 256 * 1024 * 1024;
    let mut sink = BytesMut::with_capacity(READ_CHUNK);
    let mut dropped = 0;
    let drain = async {
        while dropped < LIMIT {
            sink.clear();
            sink.reserve(READ_CHUNK);
            match rd.read_into(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => dropped += n,
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_GRACE, drain).await;
}

/// How long a peer that caused a fatal error may keep sending before it is closed.
const DISCARD_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The peer address as `workers` shows it. The default listener is one
/// dual-stack IPv6 socket, on which IPv4 clients arrive as `::ffff:a.b.c.d`;
/// gearmand listens on separate IPv4 and IPv6 sockets and shows them as
/// `a.b.c.d`, and tools that parse `workers` expect that.
fn peer_name(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        std::net::IpAddr::V4(v4) => v4.to_string(),
    }
}

/// How long a closing connection may take to write its last replies.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Turns a decoded frame into what the engine consumes.
fn inbound(frame: Frame) -> Inbound {
    match frame {
        Frame::Text(line) => Inbound::Admin(line),
        Frame::Packet { magic: Magic::Res, .. } => Inbound::Error {
            reply: Out::Packet(Response::error("INVALID_MAGIC", "Request magic expected")),
            close: false,
        },
        Frame::Packet { magic: Magic::Req, kind, body } => match Request::parse(kind, body) {
            Ok(req) => Inbound::Request(req),
            Err(sprocket_proto::ParseError::NotARequest(_)) => Inbound::Error {
                reply: Out::Packet(Response::error("INVALID_COMMAND", "Command not expected")),
                close: false,
            },
            Err(sprocket_proto::ParseError::MissingSeparator(_)) => Inbound::Error {
                reply: Out::Packet(Response::error("INVALID_PACKET", "Packet is missing an argument separator")),
                close: false,
            },
        },
    }
}

/// The reply for a framing error, and whether the connection must close.
fn decode_error_reply(e: &DecodeError) -> (Out, bool) {
    match e {
        DecodeError::BadMagic(_) => (Out::Packet(Response::error("INVALID_MAGIC", "Bad packet magic")), true),
        // Type 5 is a gap in the protocol's numbering; gearmand answers it
        // like any request type it does not take.
        DecodeError::UnknownType(5) => (Out::Packet(Response::error("INVALID_COMMAND", "Command not expected")), false),
        DecodeError::UnknownType(_) => (Out::Packet(Response::error("INVALID_COMMAND", "Unknown packet type")), false),
        DecodeError::TooLarge { .. } => {
            (Out::Packet(Response::error("ARGUMENT_TOO_LARGE", "Packet exceeds the server's maximum size")), true)
        }
        DecodeError::LineTooLong(_) => (Out::Text(bytes::Bytes::from_static(b"ERR LINE_TOO_LONG\r\n")), true),
    }
}

#[cfg(test)]
mod tests {
    use super::peer_name;

    #[test]
    fn ipv4_clients_of_the_dual_stack_listener_show_as_ipv4() {
        assert_eq!(peer_name("::ffff:127.0.0.1".parse().unwrap()), "127.0.0.1");
        assert_eq!(peer_name("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(peer_name("127.0.0.1".parse().unwrap()), "127.0.0.1");
        assert_eq!(peer_name("::1".parse().unwrap()), "::1");
        assert_eq!(peer_name("2001:db8::7".parse().unwrap()), "2001:db8::7");
    }
}
