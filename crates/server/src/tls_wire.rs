//! A TLS connection after its handshake, as the two halves a plain
//! connection has: a [`TlsSource`] the connection's reader reads plaintext
//! from, and a [`TlsWire`] the outlet writes plaintext to. Both share the
//! rustls session behind a lock, held only while it encrypts or decrypts,
//! never across a wait. The socket itself is split as a plain one is, so
//! the reader waits on the socket, not on the lock.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use rustls::ServerConnection;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Most ciphertext read from the socket at a time.
const RAW_CHUNK: usize = 32 * 1024;

type Session = Arc<Mutex<ServerConnection>>;

fn lock(session: &Session) -> io::Result<MutexGuard<'_, ServerConnection>> {
    session.lock().map_err(|_| io::Error::other("TLS session lock poisoned"))
}

/// The read side: ciphertext from the socket in, plaintext out.
pub struct TlsSource {
    rd: OwnedReadHalf,
    session: Session,
    /// Ciphertext read from the socket and not yet taken by rustls.
    raw: BytesMut,
}

impl TlsSource {
    pub fn new(rd: OwnedReadHalf, session: Session) -> TlsSource {
        TlsSource { rd, session, raw: BytesMut::new() }
    }

    /// Reads plaintext into `buf`: 0 when the peer has closed. Cancel-safe
    /// (the only wait is the socket read, and what it read is kept).
    pub async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            {
                let mut session = lock(&self.session)?;
                // Plaintext already decrypted goes first: rustls takes no
                // more ciphertext while its plaintext buffer is full.
                let state = session.process_new_packets().map_err(io::Error::other)?;
                let ready = state.plaintext_bytes_to_read();
                if ready > 0 {
                    let start = buf.len();
                    buf.resize(start + ready, 0);
                    let n = session.reader().read(&mut buf[start..])?;
                    buf.truncate(start + n);
                    return Ok(n);
                }
                if state.peer_has_closed() {
                    return Ok(0);
                }
                if !self.raw.is_empty() {
                    let mut unread: &[u8] = &self.raw;
                    let taken = session.read_tls(&mut unread)?;
                    if taken == 0 {
                        return Err(io::Error::other("TLS session takes no more input"));
                    }
                    let _ = self.raw.split_to(taken);
                    continue;
                }
            }
            self.raw.reserve(RAW_CHUNK);
            if self.rd.read_buf(&mut self.raw).await? == 0 {
                // The peer closed without a close_notify alert: the end of
                // the connection all the same, as for a plain one.
                return Ok(0);
            }
        }
    }

    /// The session has records of its own to send (an alert, a key
    /// update's answer) after a read.
    pub fn wants_write(&self) -> bool {
        self.session.lock().map(|s| s.wants_write()).unwrap_or(false)
    }
}

/// The write side: plaintext in, ciphertext to the socket, never waiting
/// in [`TlsWire::try_write`], like the plain socket's `try_write`.
pub struct TlsWire {
    tcp: OwnedWriteHalf,
    session: Session,
}

/// `io::Write` onto the socket without waiting: `WouldBlock` when full.
struct NoWait<'a>(&'a OwnedWriteHalf);

impl Write for NoWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsWire {
    pub fn new(tcp: OwnedWriteHalf, session: Session) -> TlsWire {
        TlsWire { tcp, session }
    }

    /// Sends what the session has encrypted, as far as the socket takes it.
    fn send_records(&self, session: &mut ServerConnection) -> io::Result<()> {
        while session.wants_write() {
            match session.write_tls(&mut NoWait(&self.tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Encrypts some of `plain` and sends it as far as the socket takes
    /// it; returns how much of `plain` was taken. `WouldBlock` while
    /// records from before are still unsent, so what waits beyond the
    /// socket is at most one batch (rustls' buffer limit, 64 KiB); the
    /// outlet counts and bounds the rest.
    pub fn try_write(&self, plain: &[u8]) -> io::Result<usize> {
        let mut session = lock(&self.session)?;
        self.send_records(&mut session)?;
        if session.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = session.writer().write(plain)?;
        self.send_records(&mut session)?;
        Ok(n)
    }

    /// Records encrypted but not yet taken by the socket.
    pub fn has_pending(&self) -> bool {
        self.session.lock().map(|s| s.wants_write()).unwrap_or(false)
    }

    /// Waits until the socket has taken every record encrypted so far.
    pub async fn writable(&self) -> io::Result<()> {
        loop {
            {
                let mut session = lock(&self.session)?;
                self.send_records(&mut session)?;
                if !session.wants_write() {
                    return Ok(());
                }
            }
            self.tcp.writable().await?;
        }
    }

    /// Ends the session after the last reply: a close_notify alert (sent
    /// if the socket takes it now), then the socket's write side.
    pub fn shutdown(&self) {
        if let Ok(mut session) = lock(&self.session) {
            session.send_close_notify();
            let _ = self.send_records(&mut session);
        }
        let _ = socket2::SockRef::from(self.tcp.as_ref()).shutdown(std::net::Shutdown::Write);
    }
}
