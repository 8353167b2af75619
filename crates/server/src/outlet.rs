//! The write side of a connection, shared by the engine task and the
//! connection's writer task.
//!
//! The engine task writes replies straight to the socket with a
//! non-blocking `try_write`: no task hand-off, no thread wake-up on the
//! common path. Only what the socket does not take at once is queued for
//! the writer task, which waits for the socket to drain. While anything is
//! queued or being written, new output queues behind it, so the bytes of a
//! connection always leave in the order the engine produced them.
//!
//! It also carries the connection's flow control: the reader stops taking
//! requests while too many it handed over wait for the engine, or while
//! too much output waits for the peer (see [`Outlet::room`]).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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

/// Most request weight a connection's reader may hand to the engine before
/// the engine has handled it (see [`weight`](crate::event::Inbound::weight)):
/// 4096 binary requests (a deeply pipelining client's turns stay large, so
/// its replies go out in few writes), or 4 admin lines, whose replies
/// (`status`, `show jobs`) can be far larger than the lines themselves.
pub const MAX_UNHANDLED: usize = 4096;
/// A connection with more output than this waiting for its peer is not
/// read from until the peer has taken some: a peer that sends requests and
/// never reads the replies is paused by TCP itself (and, holding this
/// much, cut off if it takes nothing for the stall timeout) instead of
/// making the server produce replies without end.
pub const READ_PAUSE: usize = STALLED_BACKLOG;
/// Most request weight whose replies the engine may hold for a connection
/// while they wait for the store: 65,536 binary requests (a client with
/// thousands of background submits in flight commits them in large
/// batches), or 64 admin lines queued behind a submit.
pub const MAX_HELD: usize = 16 * MAX_UNHANDLED;

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

/// The output waiting for all peers together (`--max-total-reply-backlog`).
///
/// Each peer's own limit bounds what one slow reader can hold; this bounds
/// what many of them hold at once. Once the total is over the limit, a
/// peer that already has more than [`TOTAL_CUT_MIN`] waiting and is given
/// more is disconnected, so the peers that hold the memory are the ones
/// shed, while one with a reply or two waiting is never cut off for what
/// others hold.
#[derive(Debug)]
pub struct TotalBacklog {
    /// Most bytes waiting across peers (`usize::MAX`: no limit).
    limit: usize,
    waiting: AtomicUsize,
}

/// Below this much of its own output waiting, a peer is never cut off for
/// the total.
pub const TOTAL_CUT_MIN: usize = 1 << 20;

impl TotalBacklog {
    /// `limit` from the flag: `None` picks the default (a quarter of the
    /// memory the process may use), `Some(0)` means no limit.
    pub fn new(limit: Option<u64>) -> TotalBacklog {
        let limit = match limit {
            Some(0) => usize::MAX,
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => default_total_backlog(),
        };
        TotalBacklog { limit, waiting: AtomicUsize::new(0) }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes waiting for all peers now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    fn over_with(&self, more: usize) -> bool {
        self.waiting().saturating_add(more) > self.limit
    }

    /// Moves a peer's share from `was` to `now` bytes.
    fn recount(&self, was: usize, now: usize) {
        if now > was {
            self.waiting.fetch_add(now - was, Ordering::Relaxed);
        } else if was > now {
            self.waiting.fetch_sub(was - now, Ordering::Relaxed);
        }
    }
}

/// A quarter of the memory this process may use: the machine's, or the
/// control group's limit when that is lower (a container).
fn default_total_backlog() -> usize {
    const FALLBACK: u64 = 4 << 30;
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| mem_total_kib(&m))
        .map(|kib| kib.saturating_mul(1024))
        .unwrap_or(FALLBACK);
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    usize::try_from(machine.min(cgroup) / 4).unwrap_or(usize::MAX)
}

/// `MemTotal` from /proc/meminfo, in KiB.
fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
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

impl State {
    fn unsent(&self) -> usize {
        self.backlog.len() + self.in_flight
    }
}

/// The socket an outlet writes to: plain TCP, or TLS over it. A plain
/// write is the socket's own `try_write`, behind one match.
pub enum Wire {
    Plain(OwnedWriteHalf),
    Tls(crate::tls_wire::TlsWire),
}

impl Wire {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(wr) => wr.try_write(buf),
            Wire::Tls(tls) => tls.try_write(buf),
        }
    }

    async fn writable(&self) -> io::Result<()> {
        match self {
            Wire::Plain(wr) => wr.writable().await,
            Wire::Tls(tls) => tls.writable().await,
        }
    }

    /// Bytes taken by `try_write` that still wait to reach the socket
    /// (only TLS records, which rustls holds until the socket takes them).
    fn has_pending(&self) -> bool {
        match self {
            Wire::Plain(_) => false,
            Wire::Tls(tls) => tls.has_pending(),
        }
    }

    fn shutdown(&self) {
        match self {
            // Half-close so the peer sees EOF after the last reply.
            Wire::Plain(wr) => {
                let _ = socket2::SockRef::from(wr.as_ref()).shutdown(std::net::Shutdown::Write);
            }
            Wire::Tls(tls) => tls.shutdown(),
        }
    }
}

pub struct Outlet {
    wr: Wire,
    limits: BacklogLimits,
    total: Arc<TotalBacklog>,
    state: Mutex<State>,
    wake: Notify,
    /// Signalled once the write side is shut down or broken, so the
    /// connection's reader can finish.
    done: Notify,
    /// Flow control for the reader: weight of requests handed to the
    /// engine and not yet handled.
    unhandled: AtomicUsize,
    /// Weight of handled requests whose replies the engine holds for the
    /// store.
    held: AtomicUsize,
    /// The state's unsent output as last counted, readable without the
    /// lock: what the reader checks, and this peer's share of the
    /// [`TotalBacklog`].
    unsent: AtomicUsize,
    /// The reader waits for room; whoever makes room wakes it.
    reader_waiting: std::sync::atomic::AtomicBool,
    room_made: Notify,
    /// Counts the bytes written, for `/metrics`.
    traffic: Arc<crate::telemetry::Traffic>,
}

impl Outlet {
    pub fn new(
        wr: Wire,
        limits: BacklogLimits,
        total: Arc<TotalBacklog>,
        traffic: Arc<crate::telemetry::Traffic>,
    ) -> Outlet {
        Outlet {
            traffic,
            wr,
            limits,
            total,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            done: Notify::new(),
            unhandled: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            unsent: AtomicUsize::new(0),
            reader_waiting: std::sync::atomic::AtomicBool::new(false),
            room_made: Notify::new(),
        }
    }

    /// The wire's `try_write`, counting what it took.
    fn write_counted(&self, buf: &[u8]) -> io::Result<usize> {
        let written = self.wr.try_write(buf);
        if let Ok(n) = written {
            self.traffic.sent(n);
        }
        written
    }

    /// Brings this peer's share of the total up to date.
    fn recount(&self, st: &mut State) {
        let now = st.unsent();
        let was = self.unsent.swap(now, Ordering::SeqCst);
        self.total.recount(was, now);
        if now <= READ_PAUSE {
            self.wake_reader();
        }
    }

    /// How much request weight the reader may still hand over now.
    pub fn intake_room(&self) -> usize {
        if self.unsent.load(Ordering::SeqCst) > READ_PAUSE || self.held.load(Ordering::SeqCst) > MAX_HELD {
            return 0;
        }
        MAX_UNHANDLED.saturating_sub(self.unhandled.load(Ordering::SeqCst))
    }

    /// The reader handed `weight` of requests to the engine.
    pub fn forwarded(&self, weight: usize) {
        self.unhandled.fetch_add(weight, Ordering::SeqCst);
    }

    /// The engine handled `weight` of this connection's requests.
    pub fn handled(&self, weight: usize) {
        self.unhandled.fetch_sub(weight, Ordering::SeqCst);
        self.wake_reader();
    }

    /// The engine holds the replies to `weight` of handled requests until
    /// the store commits.
    pub fn holding(&self, weight: usize) {
        self.held.fetch_add(weight, Ordering::SeqCst);
    }

    /// The engine released the replies it held for `weight` of requests.
    pub fn released(&self, weight: usize) {
        self.held.fetch_sub(weight, Ordering::SeqCst);
        self.wake_reader();
    }

    fn wake_reader(&self) {
        if self.reader_waiting.load(Ordering::SeqCst) {
            self.room_made.notify_one();
        }
    }

    /// Waits until the reader may hand over more requests: the engine has
    /// handled some of those it holds, and the peer has not left too much
    /// output unread.
    pub async fn room(&self) {
        loop {
            self.reader_waiting.store(true, Ordering::SeqCst);
            // Checked after saying so: room made in between is not missed
            // (and a stale wake-up only costs a second look).
            if self.intake_room() > 0 {
                self.reader_waiting.store(false, Ordering::SeqCst);
                return;
            }
            self.room_made.notified().await;
        }
    }

    /// Gives up on the peer: what waits for it is dropped and uncounted.
    fn break_off(&self, st: &mut State) {
        st.broken = true;
        st.backlog = BytesMut::new();
        st.in_flight = 0;
        self.recount(st);
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
                match self.write_counted(rest) {
                    Ok(n) if n == rest.len() => {
                        if self.wr.has_pending() {
                            // TLS records the socket did not take yet.
                            self.start_writer(&mut st);
                            drop(st);
                            self.wake.notify_one();
                        }
                        return;
                    }
                    Ok(0) => break,
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.break_off(&mut st);
                        drop(st);
                        self.done.notify_waiters();
                        return;
                    }
                }
            }
        }
        let queued = st.unsent();
        let unsent = rest.len();
        if queued.saturating_add(unsent) > self.limits.hard {
            tracing::warn!(
                queued,
                limit = self.limits.hard,
                "output waiting for a peer would exceed --max-reply-backlog; closing the connection"
            );
            self.break_off(&mut st);
            drop(st);
            self.done.notify_waiters();
            return;
        }
        if queued.saturating_add(unsent) > TOTAL_CUT_MIN && self.total.over_with(unsent) {
            tracing::warn!(
                queued,
                all_peers = self.total.waiting(),
                limit = self.total.limit(),
                "output waiting for all peers would exceed --max-total-reply-backlog; closing this connection, \
                 one of those holding the most"
            );
            self.break_off(&mut st);
            drop(st);
            self.done.notify_waiters();
            return;
        }
        if st.backlog.is_empty() {
            st.backlog = data.split_off(total - unsent);
        } else {
            st.backlog.extend_from_slice(rest);
        }
        data.clear();
        self.recount(&mut st);
        self.start_writer(&mut st);
        drop(st);
        self.wake.notify_one();
    }

    /// Closes the connection once everything queued is written.
    pub fn close(self: &std::sync::Arc<Self>) {
        let Ok(mut st) = self.state.lock() else { return };
        st.close = true;
        if st.backlog.is_empty() && !st.writing && !self.wr.has_pending() {
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
                    self.break_off(&mut st);
                    drop(st);
                    self.done.notify_waiters();
                    return;
                }
                // TLS records the socket has not taken yet go out (with
                // an empty batch) before the writer is done or closes.
                if st.backlog.is_empty() && !self.wr.has_pending() {
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
                    st.writer_running = false;
                    self.break_off(&mut st);
                }
                self.done.notify_waiters();
                return;
            }
        }
    }

    /// Writes `buf`. A peer that has taken nothing for the stall timeout
    /// while more than `limits.stalled` bytes wait for it ends the write
    /// with an error of kind `TimedOut`. Returns once the wire holds
    /// nothing more of its own either (TLS records).
    async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() || self.wr.has_pending() {
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
            if buf.is_empty() {
                // Waiting for the wire to take its pending records was all.
                continue;
            }
            match self.write_counted(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    if let Ok(mut st) = self.state.lock() {
                        st.in_flight = buf.len();
                        self.recount(&mut st);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn shutdown(&self) {
        self.wr.shutdown();
    }

    /// Sends what the wire holds of its own (a TLS session's alerts or
    /// key-update answers, made while reading): by the writer task, which
    /// queues it behind any replies still waiting.
    pub fn flush_wire(self: &std::sync::Arc<Self>) {
        let Ok(mut st) = self.state.lock() else { return };
        if st.broken || st.finished || !self.wr.has_pending() {
            return;
        }
        self.start_writer(&mut st);
        drop(st);
        self.wake.notify_one();
    }
}

impl Drop for Outlet {
    fn drop(&mut self) {
        self.total.recount(*self.unsent.get_mut(), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_size_is_read_from_meminfo() {
        let meminfo = "MemTotal:       24573440 kB\nMemFree:        1000 kB\n";
        assert_eq!(mem_total_kib(meminfo), Some(24_573_440));
        assert_eq!(mem_total_kib("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn total_limit_follows_the_flag() {
        assert_eq!(TotalBacklog::new(Some(0)).limit(), usize::MAX);
        assert_eq!(TotalBacklog::new(Some(8 << 20)).limit(), 8 << 20);
        let default = TotalBacklog::new(None).limit();
        assert!((1 << 20..usize::MAX).contains(&default), "default {default}");
    }

    #[test]
    fn shares_are_moved_and_compared_with_the_limit() {
        let total = TotalBacklog::new(Some(100));
        total.recount(0, 60);
        total.recount(0, 30);
        assert_eq!(total.waiting(), 90);
        assert!(!total.over_with(10));
        assert!(total.over_with(11));
        total.recount(60, 0);
        assert_eq!(total.waiting(), 30);
    }
}
