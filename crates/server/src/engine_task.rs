//! The single task that owns the engine. It drains every waiting event
//! before flushing, so replies to many connections go out in few writes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sprocket_engine::{ConnId, Engine, FastMap, Millis, Out, PersistOp, ShutdownRequest};
use sprocket_store::writer::WriterHandle;
use sprocket_store::{Completion, JobKey, RecordRow, StoreOp, StoredJob};
use tokio::sync::{mpsc, oneshot, watch};

use std::sync::Arc;

use bytes::BytesMut;

use crate::control::{Control, SettingError};
use crate::ended_jobs::EndedJobs;
use crate::event::{Event, Inbound};
use crate::outlet::Outlet;
use crate::record_reader::{ReaderJob, ReaderReply};

/// Most events handled before the outbox is flushed.
const MAX_EVENTS_PER_FLUSH: usize = 4096;
/// Most request weight (see `Inbound::weight`) handled before the outbox is
/// flushed and signals and timers are looked at again: many connections
/// each sending admin lines with large replies must not keep the engine
/// from writing, or from stopping, for long.
const MAX_WEIGHT_PER_FLUSH: usize = 64 * crate::event::ADMIN_WEIGHT;
/// A turn that handled this much (an admin line, or 1024 binary requests)
/// yields to the runtime's I/O polling before the next.
const HEAVY_TURN: usize = crate::event::ADMIN_WEIGHT;

/// The wall clock in Unix milliseconds, the engine's time.
pub fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
}

/// Converts an engine store operation into the store's own type; `None`
/// for a record that cannot be a row (logged; its job ends unrecorded).
pub fn to_store_op(op: PersistOp) -> Option<StoreOp> {
    Some(match op {
        PersistOp::Insert { function, unique, priority, data, when } => {
            StoreOp::Insert(StoredJob { function, unique, priority, data, when })
        }
        PersistOp::Delete { function, unique } => StoreOp::Delete(JobKey { function, unique }),
        PersistOp::Record { record, row_unique } => match RecordRow::new(&record, &row_unique) {
            Ok(row) => StoreOp::Record(row),
            Err(e) => {
                tracing::warn!(error = %e, "a job record cannot be stored");
                return None;
            }
        },
    })
}

/// The task that owns the engine: it takes connections' events, the
/// store's commit reports, the passing of time and requests on the control
/// channel, and writes the engine's replies out.
pub struct EngineTask {
    /// Told after every turn, for `--busy-poll`.
    activity: crate::busy_poll::Activity,
    engine: Engine,
    events: mpsc::UnboundedReceiver<Event>,
    /// Queries and commands from inside the process (see
    /// [`crate::control`]); `None` once every sender is gone.
    control: Option<mpsc::Receiver<Control>>,
    writer: Option<WriterHandle>,
    completions: Option<mpsc::UnboundedReceiver<Completion>>,
    /// Set to Some(request) when the server must stop (signal or admin).
    shutdown: watch::Receiver<Option<ShutdownRequest>>,
    /// Tells the listener to stop accepting.
    stop_accepting: watch::Sender<bool>,
    /// Reused encoding buffer.
    scratch: BytesMut,
    /// Reused by `flush`: where each connection first appears in the outbox.
    first_seen: FastMap<ConnId, usize>,
    /// A shutdown asked for by an admin command, not yet acted on.
    requested: Option<ShutdownRequest>,
    /// Peers that half-closed while replies were held for the store: they
    /// are closed once those replies are out.
    half_closed: Vec<ConnId>,
    /// Request weight handled for connections whose replies the engine
    /// holds until the store commits (a JOB_CREATED, and whatever follows
    /// it on that connection), told to the connection's outlet until those
    /// replies are released: held replies count against the reader's
    /// allowance as unsent output does, so a client pipelining requests
    /// behind a submit cannot pile up replies in the engine while the store
    /// is slow or hung (see `outlet::MAX_HELD`).
    withheld: FastMap<ConnId, usize>,
    /// The job log and the history, fed with the jobs the engine reports
    /// ended.
    ended_jobs: EndedJobs,
    /// The store's record reader: reads of ended records and handle blocks
    /// the engine asks for, and their answers.
    reader: Option<(mpsc::UnboundedSender<ReaderJob>, mpsc::UnboundedReceiver<ReaderReply>)>,
    /// Record queries waiting for the store's reader, and the job duration
    /// histograms, for control queries.
    side: crate::control::TaskSide,
    /// Pauses and resumes asked for through the command channel, waiting
    /// for their settings' writes, by write id.
    setting_waiters: FastMap<u64, oneshot::Sender<Result<(), SettingError>>>,
    /// The engine produced more output during a flush: flush again.
    flush_later: bool,
    /// When each submission was read, until its JOB_CREATED is written.
    submits: crate::telemetry::SubmitClock,
}

fn encode(out: &Out, buf: &mut BytesMut) {
    match out {
        Out::Packet(resp) => resp.encode(buf),
        Out::Text(text) => buf.extend_from_slice(text),
    }
}

impl EngineTask {
    /// A task for `engine`, which the store (writer and its commit
    /// reports), if any, has been replayed into.
    pub fn new(
        engine: Engine,
        events: mpsc::UnboundedReceiver<Event>,
        control: mpsc::Receiver<Control>,
        store: Option<(WriterHandle, mpsc::UnboundedReceiver<Completion>)>,
        shutdown: watch::Receiver<Option<ShutdownRequest>>,
        stop_accepting: watch::Sender<bool>,
        activity: crate::busy_poll::Activity,
    ) -> EngineTask {
        let (writer, completions) = store.unzip();
        EngineTask {
            activity,
            engine,
            events,
            control: Some(control),
            writer,
            completions,
            shutdown,
            stop_accepting,
            scratch: BytesMut::with_capacity(64 * 1024),
            first_seen: FastMap::default(),
            requested: None,
            half_closed: Vec::new(),
            withheld: FastMap::default(),
            ended_jobs: EndedJobs::default(),
            reader: None,
            side: Default::default(),
            setting_waiters: FastMap::default(),
            flush_later: false,
            submits: Default::default(),
        }
    }

    /// Counts the time from reading each submission to writing its
    /// JOB_CREATED into `latency`.
    pub fn with_submit_latency(mut self, latency: Arc<crate::telemetry::SubmitLatency>) -> EngineTask {
        self.submits = crate::telemetry::SubmitClock::new(latency);
        self
    }

    /// Sends the engine's reads of records and its requests for handle
    /// numbers to the store's record reader.
    pub fn with_record_reader(
        mut self,
        jobs: mpsc::UnboundedSender<ReaderJob>,
        replies: mpsc::UnboundedReceiver<ReaderReply>,
    ) -> EngineTask {
        self.reader = Some((jobs, replies));
        self
    }

    /// Feeds `ended_jobs` (the job log and the history) from the engine's
    /// reports of ended jobs.
    pub fn with_ended_jobs(mut self, ended_jobs: EndedJobs) -> EngineTask {
        self.ended_jobs = ended_jobs;
        self
    }

    /// Runs until the server stops; hands back the engine and the store
    /// writer for what remains to be stored.
    pub async fn run(mut self) -> (Engine, Option<WriterHandle>) {
        let mut conns: FastMap<ConnId, Arc<Outlet>> = FastMap::default();
        let mut graceful = false;
        loop {
            let mut turn_weight = 0;
            let deadline = self.engine.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => {
                        let wait = at.saturating_sub(now_ms());
                        tokio::time::sleep(Duration::from_millis(wait.max(1))).await
                    }
                    None => std::future::pending().await,
                }
            };
            let completions = async {
                match self.completions.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let control = async {
                match self.control.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let reader_reply = async {
                match self.reader.as_mut() {
                    Some((_, rx)) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                // First, so that a flood of requests cannot hold off a
                // signal or an admin shutdown.
                changed = self.shutdown.changed() => {
                    if changed.is_err() { break; }
                    let req = *self.shutdown.borrow();
                    match req {
                        Some(ShutdownRequest::Immediate) => {
                            self.take_last_requests(&mut conns).await;
                            break;
                        }
                        Some(ShutdownRequest::Graceful) => {
                            graceful = true;
                            let _ = self.stop_accepting.send(true);
                        }
                        None => {}
                    }
                }
                // Before the connections' events, so that a flood of
                // requests cannot hold off a query; an empty channel costs
                // one poll per turn, nothing per event.
                request = control => match request {
                    Some(request) => {
                        self.engine.tick(now_ms());
                        if let Some((id, waiter)) = crate::control::serve(&mut self.engine, request, &mut self.side, &mut self.ended_jobs) {
                            self.setting_waiters.insert(id, waiter);
                        }
                    }
                    None => self.control = None,
                },
                ev = self.events.recv() => {
                    let Some(ev) = ev else {
                        // The listener is closed and the last connection
                        // is gone: nothing queued can run any more.
                        if graceful {
                            self.report_left_behind();
                        }
                        break;
                    };
                    if let Some(w) = &self.writer {
                        self.engine.set_store_down(!w.is_healthy());
                    }
                    let weight = self.handle(ev, &mut conns);
                    turn_weight = self.handle_waiting(&mut conns, weight, 1);
                }
                reply = reader_reply => match reply {
                    Some(ReaderReply::Read { id, result }) => self.engine.record_read_done(id, result, now_ms()),
                    Some(ReaderReply::Handles(first)) => self.engine.add_handle_block(first),
                    Some(ReaderReply::Setting { id, result }) => self.setting_written(id, result),
                    Some(ReaderReply::Purge { id, result }) => self.engine.record_purge_done(id, result, now_ms()),
                    None => self.reader = None,
                },
                c = completions => {
                    match c {
                        Some(c) => self.engine.stored(c.through, &c.failed, now_ms()),
                        None => self.completions = None,
                    }
                }
                _ = sleep => self.engine.tick(now_ms()),
            }
            self.flush(&mut conns);
            if std::mem::take(&mut self.flush_later) {
                self.flush(&mut conns);
            }
            self.close_released(&mut conns);
            self.give_back_withheld(&conns);
            self.activity.touch();
            if turn_weight >= HEAVY_TURN {
                // Let the runtime look at the sockets before the next
                // turn. While the engine and a busy connection's reader
                // keep waking each other, the scheduler polls for I/O only
                // every few dozen task polls, and after turns of admin
                // replies that took milliseconds each, a new connection or
                // another client's request waited hundreds of them.
                tokio::task::yield_now().await;
            }
            if let Some(req) = self.requested.take() {
                match req {
                    ShutdownRequest::Immediate => break,
                    ShutdownRequest::Graceful => {
                        graceful = true;
                        let _ = self.stop_accepting.send(true);
                    }
                }
            }
            if graceful && self.engine.job_count() == 0 {
                tracing::info!("graceful shutdown: no jobs left");
                break;
            }
        }
        let _ = self.stop_accepting.send(true);
        self.flush(&mut conns);
        for outlet in conns.values() {
            outlet.close();
        }
        self.ended_jobs.close(now_ms());
        (self.engine, self.writer)
    }

    /// Before an immediate stop, handles what peers already sent: a worker's
    /// WORK_COMPLETE that reached the socket just before the SIGTERM would
    /// otherwise be lost, and its job stored and run again. The readers get
    /// a turn of the runtime to read what their sockets hold; what they
    /// read after that (bounded, so a flood cannot delay the stop) is
    /// handled.
    async fn take_last_requests(&mut self, conns: &mut FastMap<ConnId, Arc<Outlet>>) {
        for _ in 0..2 {
            tokio::task::yield_now().await;
        }
        self.handle_waiting(conns, 0, 0);
        self.flush(conns);
    }

    /// Handles the events already waiting, continuing a turn that has
    /// handled `events` events of `weight` so far, until the turn's limits
    /// ([`MAX_EVENTS_PER_FLUSH`], [`MAX_WEIGHT_PER_FLUSH`]); returns the
    /// turn's weight.
    fn handle_waiting(
        &mut self,
        conns: &mut FastMap<ConnId, Arc<Outlet>>,
        mut weight: usize,
        mut events: usize,
    ) -> usize {
        while events < MAX_EVENTS_PER_FLUSH && weight < MAX_WEIGHT_PER_FLUSH {
            match self.events.try_recv() {
                Ok(ev) => weight += self.handle(ev, conns),
                Err(_) => break,
            }
            events += 1;
        }
        weight
    }

    /// A graceful shutdown ends early when no connection is left that could
    /// run the jobs still queued (gearmand would wait for ever); says what
    /// becomes of them.
    fn report_left_behind(&self) {
        let left = self.engine.job_count();
        if left == 0 {
            return;
        }
        if self.writer.is_some() {
            tracing::info!(
                jobs = left,
                "graceful shutdown: no connection is left; the queued jobs stay in the store for the next start"
            );
        } else {
            // At the default level (ERROR, as gearmand's): jobs are lost.
            tracing::error!(
                jobs = left,
                "graceful shutdown: no connection is left; the jobs queued in memory (-q builtin) are lost"
            );
        }
    }

    /// Handles one event; returns the weight of the requests it carried.
    fn handle(&mut self, ev: Event, conns: &mut FastMap<ConnId, Arc<Outlet>>) -> usize {
        let now = now_ms();
        match ev {
            Event::Connected { conn, fd, peer, outlet, read_guard } => {
                conns.insert(conn, outlet);
                self.engine.connected(conn, fd, peer);
                if read_guard.is_some() {
                    self.engine.set_read_guard(conn, read_guard);
                }
            }
            Event::Frames { conn, frames, weight, read_at } => {
                for frame in frames {
                    match frame {
                        Inbound::Request(req) => {
                            // A submission is told by the JOB_CREATED it is
                            // promised; its time ends when that is written.
                            let promised = self.engine.job_created_promised();
                            self.engine.request(conn, req, now);
                            let more = self.engine.job_created_promised().wrapping_sub(promised);
                            if more > 0 {
                                self.submits.submitted(conn, read_at, more);
                            }
                        }
                        Inbound::Admin(line) if crate::ended_jobs::is_history_command(&line) => {
                            let reply = self.ended_jobs.admin_history(now);
                            self.engine.admin_reply(conn, reply, now);
                        }
                        Inbound::Admin(line) => self.engine.admin_line(conn, &line, now),
                        Inbound::Error { reply, close } => self.engine.protocol_error(conn, reply, close, now),
                        Inbound::Answer(reply) => self.engine.protocol_error(conn, reply, false, now),
                        Inbound::GuardedStatus { request, guard } => {
                            // An unknown job is answered as usual (not
                            // known): that tells nothing about anyone's job.
                            let function = match &request {
                                sprocket_proto::Request::GetStatus { handle } => {
                                    self.engine.job_view(handle).map(|job| job.function)
                                }
                                sprocket_proto::Request::GetStatusUnique { unique } => {
                                    self.engine.function_of_unique(unique)
                                }
                                _ => None,
                            };
                            match function.and_then(|f| guard.refusal(&f)) {
                                Some(reply) => self.engine.protocol_error(conn, reply, false, now),
                                None => self.engine.request(conn, request, now),
                            }
                        }
                        Inbound::GuardedCancel { handle, guard } => {
                            // An unknown job is answered as usual (UNKNOWN_JOB).
                            let function = self.engine.job_view(&handle).map(|job| job.function);
                            match function.and_then(|f| guard.cancel_refusal(&f)) {
                                Some(reply) => self.engine.admin_reply(conn, reply, now),
                                None => {
                                    let mut line = b"cancel job ".to_vec();
                                    line.extend_from_slice(&handle);
                                    self.engine.admin_line(conn, &line, now)
                                }
                            }
                        }
                    }
                }
                if let Some(outlet) = conns.get(&conn) {
                    outlet.handled(weight);
                    // Replies are held only for a store's commits.
                    if self.writer.is_some() && self.engine.holds_replies(conn) {
                        outlet.holding(weight);
                        *self.withheld.entry(conn).or_default() += weight;
                    }
                }
                return weight;
            }
            Event::Closed { conn } => {
                // Answer what the peer sent before it half-closed.
                self.flush(conns);
                if self.engine.holds_replies(conn) {
                    // JOB_CREATEDs still wait for their commit: a client
                    // that submitted and then half-closed gets them, as it
                    // would from the in-memory queue.
                    self.half_closed.push(conn);
                } else {
                    self.close_connection(conn, conns, now);
                }
            }
        }
        1
    }

    /// Gives their allowance back to readers whose held replies are out.
    fn give_back_withheld(&mut self, conns: &FastMap<ConnId, Arc<Outlet>>) {
        if self.withheld.is_empty() {
            return;
        }
        let engine = &self.engine;
        self.withheld.retain(|conn, weight| {
            if engine.holds_replies(*conn) {
                return true;
            }
            if let Some(outlet) = conns.get(conn) {
                outlet.released(*weight);
            }
            false
        });
    }

    fn close_connection(&mut self, conn: ConnId, conns: &mut FastMap<ConnId, Arc<Outlet>>, now: u64) {
        self.withheld.remove(&conn);
        self.submits.closed(conn);
        if let Some(outlet) = conns.remove(&conn) {
            outlet.close();
        }
        self.engine.disconnected(conn, now);
    }

    /// Closes the half-closed peers whose held replies have gone out.
    fn close_released(&mut self, conns: &mut FastMap<ConnId, Arc<Outlet>>) {
        if self.half_closed.is_empty() {
            return;
        }
        let (released, waiting): (Vec<ConnId>, Vec<ConnId>) =
            std::mem::take(&mut self.half_closed).into_iter().partition(|c| !self.engine.holds_replies(*c));
        self.half_closed = waiting;
        let now = now_ms();
        for conn in released {
            self.close_connection(conn, conns, now);
        }
        self.flush(conns);
    }

    /// A setting's write is done (or failed): whoever waits for it hears.
    fn setting_written(&mut self, id: u64, result: Result<(), String>) {
        if let Some(waiter) = self.setting_waiters.remove(&id) {
            let _ = waiter.send(result.clone().map_err(SettingError::NotSaved));
        }
        self.engine.setting_write_done(id, result, now_ms());
    }

    /// Sends out everything the engine produced; a shutdown request is
    /// kept in `requested` for the main loop.
    fn flush(&mut self, conns: &mut FastMap<ConnId, Arc<Outlet>>) {
        let out = self.engine.take_outbox();
        if let Some(writer) = &self.writer {
            for (seq, op) in out.persist {
                if let Some(op) = to_store_op(op) {
                    writer.submit(seq, op);
                }
            }
        }
        if let Some((jobs, _)) = &self.reader {
            for read in out.record_reads {
                let _ = jobs.send(ReaderJob::Read(read));
            }
            if out.wants_handles {
                let _ = jobs.send(ReaderJob::ReserveHandles);
            }
            for write in out.setting_writes {
                let _ = jobs.send(ReaderJob::Setting(write));
            }
            for purge in out.record_purges {
                let _ = jobs.send(ReaderJob::Purge(purge));
            }
        } else if !out.setting_writes.is_empty() || !out.record_purges.is_empty() {
            // Settings are only asked to be durable when a reader was
            // opened; without one (it ended), the change stays in memory,
            // and the answers saying so go out with a second flush. A purge
            // cannot be done at all, and its answer says so.
            for write in out.setting_writes {
                self.setting_written(write.id, Err("the store's reader connection is gone".into()));
            }
            for purge in out.record_purges {
                let gone = Err("the store's reader connection is gone".to_string());
                self.engine.record_purge_done(purge.id, gone, now_ms());
            }
            self.flush_later = true;
        }
        // Encode each connection's replies into one buffer and write it
        // straight to the socket; sends are in order per connection.
        let mut i = 0;
        let mut sends = out.sends;
        // Gather each connection's replies into one write, keeping their
        // order, and write to connections in the order the engine first
        // answered them: what a request caused first goes out first (a
        // worker's WORK_COMPLETE reaches its client before the NO_JOB for
        // the worker's next GRAB_JOB; a new job's NOOPs go out before the
        // submitter's JOB_CREATED). Each write costs a system call, so on a
        // round trip the order is latency.
        if sends.len() > 1 {
            let first_seen = &mut self.first_seen;
            first_seen.clear();
            for (n, (conn, _)) in sends.iter().enumerate() {
                first_seen.entry(*conn).or_insert(n);
            }
            // Stable: each connection's replies keep their order.
            sends.sort_by_cached_key(|(conn, _)| first_seen.get(conn).copied().unwrap_or(usize::MAX));
            if first_seen.capacity() > 64 * 1024 {
                *first_seen = FastMap::default();
            }
        }
        while i < sends.len() {
            let conn = sends[i].0;
            self.scratch.clear();
            while i < sends.len() && sends[i].0 == conn {
                encode(&sends[i].1, &mut self.scratch);
                i += 1;
            }
            if let Some(outlet) = conns.get(&conn) {
                outlet.send(&mut self.scratch);
            }
        }
        if self.scratch.capacity() > 4 * 1024 * 1024 {
            self.scratch = BytesMut::new();
        }
        if !out.created.is_empty() {
            self.submits.answered(&out.created, std::time::Instant::now());
        }
        for conn in out.close {
            if let Some(outlet) = conns.get(&conn) {
                outlet.close();
            }
        }
        if out.shutdown.is_some() {
            self.requested = out.shutdown;
        }
        if !out.retried.is_empty() {
            self.ended_jobs.retried(&out.retried, now_ms());
        }
        if !out.ended.is_empty() {
            for record in &out.ended {
                self.side.timings.ended(record);
            }
            self.ended_jobs.take(out.ended, now_ms());
        }
        for read in out.control_reads {
            self.side.waiting.answer(read);
        }
        for purge in out.control_purges {
            self.side.purged(purge);
        }
    }
}
