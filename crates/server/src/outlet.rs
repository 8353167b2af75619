//! The write side of a connection, shared by the engine task and the
//! connection's writer task.
//!
//! The engine task writes replies straight to the socket with a
//! non-blocking `try_write`: no task hand-off, no thread wake-up on the
//! common path. Only what the socket does not take at once is queued for
//! the writer task, which waits for the socket to drain. While anything is
//! queued or being written, new output queues behind it, so the bytes of a
//! connection always leave in the order the engine produced them.

use std::io;
use std::sync::Mutex;

use bytes::BytesMut;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// Most bytes queued for a peer that does not read; beyond this the
/// connection is closed rather than letting memory grow without bound.
pub const MAX_BACKLOG: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct State {
    backlog: BytesMut,
    /// The writer task holds bytes taken from the backlog.
    writing: bool,
    close: bool,
    broken: bool,
}

pub struct Outlet {
    wr: OwnedWriteHalf,
    state: Mutex<State>,
    wake: Notify,
}

impl Outlet {
    pub fn new(wr: OwnedWriteHalf) -> Outlet {
        Outlet { wr, state: Mutex::new(State::default()), wake: Notify::new() }
    }

    /// Writes `data` now if the socket takes it, else queues it.
    pub fn send(&self, data: &[u8]) {
        let Ok(mut st) = self.state.lock() else { return };
        if st.close || st.broken {
            return;
        }
        let mut rest = data;
        if st.backlog.is_empty() && !st.writing {
            loop {
                match self.wr.try_write(rest) {
                    Ok(n) if n == rest.len() => return,
                    Ok(0) => break,
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        st.broken = true;
                        drop(st);
                        self.wake.notify_one();
                        return;
                    }
                }
            }
        }
        if st.backlog.len() + rest.len() > MAX_BACKLOG {
            tracing::warn!(queued = st.backlog.len(), "peer is not reading its replies; closing the connection");
            st.broken = true;
        } else {
            st.backlog.extend_from_slice(rest);
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Closes the connection once everything queued is written.
    pub fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.close = true;
        }
        self.wake.notify_one();
    }

    /// The writer task: drains the backlog whenever the socket can take
    /// more, until closed or broken.
    pub async fn run_writer(&self) {
        loop {
            let taken = {
                let Ok(mut st) = self.state.lock() else { return };
                if st.broken {
                    return;
                }
                if st.backlog.is_empty() {
                    st.writing = false;
                    if st.close {
                        drop(st);
                        self.shutdown();
                        return;
                    }
                    None
                } else {
                    st.writing = true;
                    Some(st.backlog.split())
                }
            };
            match taken {
                None => self.wake.notified().await,
                Some(buf) => {
                    if self.write_all(&buf).await.is_err() {
                        if let Ok(mut st) = self.state.lock() {
                            st.broken = true;
                        }
                        return;
                    }
                }
            }
        }
    }

    async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            self.wr.writable().await?;
            match self.wr.try_write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn shutdown(&self) {
        // Half-close so the peer sees EOF after the last reply.
        let sock = socket2::SockRef::from(self.wr.as_ref());
        let _ = sock.shutdown(std::net::Shutdown::Write);
    }

    /// True once the writer gave up (peer gone, or too far behind).
    pub fn is_broken(&self) -> bool {
        self.state.lock().map(|st| st.broken).unwrap_or(true)
    }
}
