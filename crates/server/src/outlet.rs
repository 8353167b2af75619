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
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// How much unsent output a connection may hold.
///
/// A peer that reads, however slowly, is never cut off below `hard`: a
/// client reading a stream of WORK_DATA over a slow link, or a large `show
/// jobs`, gets all of it, as from gearmand. A peer that has more than
/// `stalled` bytes waiting and takes none of them for `stall_timeout` is
/// treated as not reading and disconnected, so it cannot hold memory for
/// long.
#[derive(Debug, Clone, Copy)]
pub struct BacklogLimits {
    /// Most unsent bytes for any peer (`--max-reply-backlog`; `usize::MAX`
    /// when unlimited).
    pub hard: usize,
    /// Unsent bytes above which a peer must keep reading.
    pub stalled: usize,
    pub stall_timeout: Duration,
}

/// A peer holding more than this must keep taking bytes.
pub const STALLED_BACKLOG: usize = 64 * 1024 * 1024;
/// How long such a peer may take nothing before it is disconnected.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

impl BacklogLimits {
    /// `max_reply_backlog` from the flag (0 = unlimited). It is raised to
    /// twice the largest packet, so that any reply a client may cause fits.
    pub fn new(max_reply_backlog: u64, max_packet_size: u32) -> BacklogLimits {
        let hard = match max_reply_backlog {
            0 => usize::MAX,
            n => usize::try_from(n)
                .unwrap_or(usize::MAX)
                .max((max_packet_size as usize).saturating_mul(2).saturating_add(1 << 20)),
        };
        // Tests shorten the stall timeout rather than wait 30 s.
        let stall_timeout = std::env::var("SPROCKET_STALL_TIMEOUT_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(STALL_TIMEOUT, Duration::from_millis);
        BacklogLimits { hard, stalled: STALLED_BACKLOG.min(hard), stall_timeout }
    }
}

#[derive(Default)]
struct State {
    backlog: BytesMut,
    /// Bytes the writer task has taken from the backlog and not yet written.
    in_flight: usize,
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
    limits: BacklogLimits,
    state: Mutex<State>,
    wake: Notify,
    /// Signalled once the write side is shut down or broken, so the
    /// connection's reader can finish.
    done: Notify,
}

impl Outlet {
    pub fn new(wr: OwnedWriteHalf, limits: BacklogLimits) -> Outlet {
        Outlet { wr, limits, state: Mutex::new(State::default()), wake: Notify::new(), done: Notify::new() }
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

    /// Writes `data` now if the socket takes it, else queues the rest. The
    /// rest is moved, not copied, when nothing else is queued, so a large
    /// reply (a `show jobs` of millions of lines) does not pause in the
    /// middle while it is copied; `data` is left empty either way.
    pub fn send(self: &std::sync::Arc<Self>, data: &mut BytesMut) {
        let Ok(mut st) = self.state.lock() else { return };
        if st.close || st.broken {
            return;
        }
        let total = data.len();
        let mut rest: &[u8] = data;
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
        let queued = st.backlog.len() + st.in_flight;
        if queued.saturating_add(rest.len()) > self.limits.hard {
            tracing::warn!(
                queued,
                limit = self.limits.hard,
                "output waiting for a peer would exceed --max-reply-backlog; closing the connection"
            );
            st.broken = true;
            drop(st);
            self.done.notify_waiters();
            return;
        }
        let unsent = rest.len();
        if st.backlog.is_empty() {
            st.backlog = data.split_off(total - unsent);
        } else {
            st.backlog.extend_from_slice(rest);
        }
        data.clear();
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
                let taken = st.backlog.split();
                st.in_flight = taken.len();
                taken
            };
            if let Err(e) = self.write_all(&taken).await {
                if e.kind() == io::ErrorKind::TimedOut {
                    tracing::warn!(
                        seconds = self.limits.stall_timeout.as_secs(),
                        "peer has not read its replies for a while; closing the connection"
                    );
                }
                if let Ok(mut st) = self.state.lock() {
                    st.broken = true;
                    st.writer_running = false;
                }
                self.done.notify_waiters();
                return;
            }
        }
    }

    /// Writes `buf`. A peer that has taken nothing for the stall timeout
    /// while more than `limits.stalled` bytes wait for it ends the write
    /// with an error of kind `TimedOut`.
    async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            loop {
                match tokio::time::timeout(self.limits.stall_timeout, self.wr.writable()).await {
                    Ok(ready) => break ready?,
                    Err(_) => {
                        // The backlog may have grown during the wait.
                        let waiting = buf.len() + self.state.lock().map(|st| st.backlog.len()).unwrap_or(0);
                        if waiting > self.limits.stalled {
                            return Err(io::ErrorKind::TimedOut.into());
                        }
                    }
                }
            }
            match self.wr.try_write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    if let Ok(mut st) = self.state.lock() {
                        st.in_flight = buf.len();
                    }
                }
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
