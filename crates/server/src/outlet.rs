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
    writer_running: bool,
    close: bool,
    broken: bool,
    /// Shut down after the last byte.
    finished: bool,
}

pub struct Outlet {
    wr: OwnedWriteHalf,
    state: Mutex<State>,
    wake: Notify,
    /// Signalled once the write side is shut down or broken, so the
    /// connection's reader can finish.
    done: Notify,
}

impl Outlet {
    pub fn new(wr: OwnedWriteHalf) -> Outlet {
        Outlet { wr, state: Mutex::new(State::default()), wake: Notify::new(), done: Notify::new() }
    }

    /// Waits until the outlet is closed (after its last byte) or broken.
    pub async fn finished(&self) {
        loop {
            let notified = self.done.notified();
            if self.state.lock().map(|st| st.broken || st.finished).unwrap_or(true) {
                return;
            }
            notified.await;
        }
    }

    /// Starts the writer task for a backlog (only connections whose peer
    /// reads slower than we write ever get one).
    fn start_writer(self: &std::sync::Arc<Self>, st: &mut State) {
        if !st.writer_running {
            st.writer_running = true;
            let me = self.clone();
            tokio::spawn(async move { me.run_writer().await });
        }
    }

    /// Writes `data` now if the socket takes it, else queues it.
    pub fn send(self: &std::sync::Arc<Self>, data: &[u8]) {
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
                        self.done.notify_waiters();
                        return;
                    }
                }
            }
        }
        if st.backlog.len() + rest.len() > MAX_BACKLOG {
            tracing::warn!(queued = st.backlog.len(), "peer is not reading its replies; closing the connection");
            st.broken = true;
            drop(st);
            self.done.notify_waiters();
            return;
        }
        st.backlog.extend_from_slice(rest);
        self.start_writer(&mut st);
        drop(st);
        self.wake.notify_one();
    }

    /// Closes the connection once everything queued is written.
    pub fn close(self: &std::sync::Arc<Self>) {
        let Ok(mut st) = self.state.lock() else { return };
        st.close = true;
        if st.backlog.is_empty() && !st.writing {
            if !st.finished && !st.broken {
                st.finished = true;
                self.shutdown();
            }
            drop(st);
            self.done.notify_waiters();
            return;
        }
        self.start_writer(&mut st);
        drop(st);
        self.wake.notify_one();
    }

    /// The writer task: drains the backlog whenever the socket can take
    /// more, until it is empty (then exits) or the outlet is closed.
    async fn run_writer(&self) {
        loop {
            let taken = {
                let Ok(mut st) = self.state.lock() else { return };
                if st.broken {
                    st.writer_running = false;
                    drop(st);
                    self.done.notify_waiters();
                    return;
                }
                if st.backlog.is_empty() {
                    st.writing = false;
                    st.writer_running = false;
                    if st.close && !st.finished {
                        st.finished = true;
                        self.shutdown();
                        drop(st);
                        self.done.notify_waiters();
                    }
                    // Drained: the engine writes directly again.
                    return;
                }
                st.writing = true;
                st.backlog.split()
            };
            if self.write_all(&taken).await.is_err() {
                if let Ok(mut st) = self.state.lock() {
                    st.broken = true;
                    st.writer_running = false;
                }
                self.done.notify_waiters();
                return;
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
