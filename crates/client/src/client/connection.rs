//! One client connection as a task. Requests are written in order and
//! answers are matched the way libgearman does it: JOB_CREATED, ERROR,
//! STATUS_RES, ECHO_RES and OPTION_RES pair with the oldest request still
//! waiting, and WORK_* packets are routed by job handle.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use sprocket_proto::{Request, Response};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::addr::ServerAddr;
use crate::conn::{PacketReader, PacketWriter};
use crate::error::{Error, Result};
use crate::job::{JobEvent, JobHandle};

/// What to do with the answer to a request.
pub(crate) enum Reply {
    /// A submission: JOB_CREATED (or ERROR) goes to `created`; for a
    /// foreground job the later WORK_* packets go to `events`.
    Submit { created: oneshot::Sender<Result<JobHandle>>, events: Option<mpsc::UnboundedSender<JobEvent>> },
    /// Any other request with exactly one answer packet.
    Single(oneshot::Sender<Result<Response>>),
    /// A request the server never answers (SET_CLIENT_ID).
    NoAnswer,
}

/// A request for the connection task.
pub(crate) struct Command {
    pub(crate) request: Request,
    pub(crate) reply: Reply,
}

/// Sending side of a running connection task, which can also close it.
#[derive(Clone)]
pub(crate) struct CommandSender {
    tx: mpsc::UnboundedSender<Command>,
    close: Arc<Notify>,
    /// Why the connection ended, once it has: a request sent too late
    /// (say, right after a TLS handshake the server then rejects) can
    /// report the real cause instead of a bare "closed".
    ended: Arc<OnceLock<Error>>,
}

impl CommandSender {
    /// Queues a command; false when the connection has ended (the
    /// command is then dropped, and its waiter sees the channel closed).
    pub(crate) fn send(&self, cmd: Command) -> bool {
        self.tx.send(cmd).is_ok()
    }

    /// The error that ended the connection, once it has ended with one.
    pub(crate) fn failure(&self) -> Option<Error> {
        self.ended.get().cloned()
    }

    /// True once the connection task has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// True when both send to the same connection.
    pub(crate) fn same(&self, other: &CommandSender) -> bool {
        self.tx.same_channel(&other.tx)
    }

    /// Closes the connection now: every request waiting on it fails with
    /// `why`, and a late answer from the server can no longer arrive.
    pub(crate) fn close(&self) {
        self.close.notify_one();
    }
}

/// Starts the task for an open connection.
pub(crate) fn spawn(reader: PacketReader, writer: PacketWriter, server: ServerAddr) -> CommandSender {
    let (tx, rx) = mpsc::unbounded_channel();
    let close = Arc::new(Notify::new());
    let ended = Arc::new(OnceLock::new());
    tokio::spawn(run(reader, writer, rx, close.clone(), ended.clone(), server));
    CommandSender { tx, close, ended }
}

struct State {
    /// The server, recorded in every handle it issues.
    server: ServerAddr,
    pending: VecDeque<Reply>,
    /// Foreground jobs by handle, with the callers waiting on each.
    jobs: HashMap<Bytes, Waiters>,
}

/// The callers on this connection waiting on one job: several when
/// submissions with the same unique id coalesced. The server (gearmand and
/// sprocketd alike) sends every event once per submission, so with n
/// callers each packet arrives n times in a row; handing the copies out in
/// turn gives every caller exactly one.
#[derive(Default)]
struct Waiters {
    /// Callers in submission order. One that went away keeps its place so
    /// that its copies are swallowed rather than doubled to another.
    list: Vec<mpsc::UnboundedSender<JobEvent>>,
    /// Who gets the next copy.
    turn: usize,
}

impl Waiters {
    /// Delivers one packet's event; true when nobody waits any more.
    fn deliver(&mut self, event: JobEvent) -> bool {
        if event.is_final() {
            // Every caller must learn the end even if the server sent it
            // only once; the later copies find no waiter and are dropped.
            for tx in &self.list {
                let _ = tx.send(event.clone());
            }
            return true;
        }
        if let Some(tx) = self.list.get(self.turn % self.list.len().max(1)) {
            let _ = tx.send(event);
        }
        self.turn = (self.turn + 1) % self.list.len().max(1);
        self.list.iter().all(|tx| tx.is_closed())
    }
}

async fn run(
    mut reader: PacketReader,
    mut writer: PacketWriter,
    mut rx: mpsc::UnboundedReceiver<Command>,
    close: Arc<Notify>,
    ended: Arc<OnceLock<Error>>,
    server: ServerAddr,
) {
    let addr = server.to_string();
    let mut state = State { server, pending: VecDeque::new(), jobs: HashMap::new() };
    let mut accepting = true;
    let failure = loop {
        if !accepting && state.pending.is_empty() && state.jobs.is_empty() {
            return;
        }
        tokio::select! {
            cmd = rx.recv(), if accepting => match cmd {
                None => accepting = false,
                Some(first) => {
                    // Batch every command already waiting into one write.
                    let mut next = Some(first);
                    while let Some(cmd) = next {
                        writer.queue(&cmd.request);
                        if !matches!(cmd.reply, Reply::NoAnswer) {
                            state.pending.push_back(cmd.reply);
                        }
                        next = rx.try_recv().ok();
                    }
                    if let Err(e) = writer.flush().await {
                        break e;
                    }
                }
            },
            _ = close.notified() => {
                break Error::ConnectionLost { addr: addr.clone(), message: "closed: the server stopped answering".into() }
            }
            resp = reader.read() => match resp {
                Ok(resp) => {
                    if let Err(e) = state.dispatch(resp) {
                        break e;
                    }
                }
                Err(e) => break e,
            },
        }
    };
    tracing::debug!(server = %addr, error = %failure, "client connection closed");
    let _ = ended.set(failure.clone());
    state.fail_all(&failure);
    // Refuse whatever was queued behind the failure.
    rx.close();
    while let Ok(cmd) = rx.try_recv() {
        fail_reply(cmd.reply, &failure);
    }
}

fn fail_reply(reply: Reply, error: &Error) {
    match reply {
        Reply::Submit { created, .. } => {
            let _ = created.send(Err(error.clone()));
        }
        Reply::Single(tx) => {
            let _ = tx.send(Err(error.clone()));
        }
        Reply::NoAnswer => {}
    }
}

/// gearmand 1.1.20 appends a NUL to the handle of a WORK_FAIL it makes from a
/// WORK_EXCEPTION for a client without exceptions.
fn clean_handle(handle: &Bytes) -> Bytes {
    match handle.iter().position(|&b| b == 0) {
        Some(i) => handle.slice(..i),
        None => handle.clone(),
    }
}

impl State {
    fn dispatch(&mut self, resp: Response) -> Result<()> {
        match resp {
            Response::JobCreated { handle } => match self.pending.pop_front() {
                Some(Reply::Submit { created, events }) => {
                    let issued = JobHandle::issued(handle.clone(), &self.server);
                    if let Some(events) = events {
                        if !events.is_closed() {
                            let _ = events.send(JobEvent::Created(issued.clone()));
                            self.jobs.entry(handle).or_default().list.push(events);
                        }
                    }
                    let _ = created.send(Ok(issued));
                }
                Some(other) => {
                    let e = Error::Protocol("JOB_CREATED received for a request that was not a submission".into());
                    fail_reply(other, &e);
                    return Err(e);
                }
                None => return Err(Error::Protocol("JOB_CREATED without a pending submission".into())),
            },
            Response::Error { code, text } => {
                let e = Error::Server {
                    code: String::from_utf8_lossy(&code).into_owned(),
                    text: String::from_utf8_lossy(&text).into_owned(),
                };
                match self.pending.pop_front() {
                    Some(reply) => fail_reply(reply, &e),
                    None => tracing::warn!(error = %e, "unsolicited ERROR from server"),
                }
            }
            r @ (Response::StatusRes { .. }
            | Response::StatusResUnique { .. }
            | Response::EchoRes { .. }
            | Response::OptionRes { .. }) => match self.pending.pop_front() {
                Some(Reply::Single(tx)) => {
                    let _ = tx.send(Ok(r));
                }
                Some(other) => {
                    let e = Error::Protocol(format!("{} received for a submission", r.packet_type().name()));
                    fail_reply(other, &e);
                    return Err(e);
                }
                None => return Err(Error::Protocol(format!("unexpected {}", r.packet_type().name()))),
            },
            Response::WorkData { handle, data } => self.event(&handle, JobEvent::Data(data)),
            Response::WorkWarning { handle, data } => self.event(&handle, JobEvent::Warning(data)),
            Response::WorkStatus { handle, numerator, denominator } => {
                let (numerator, denominator) = (
                    sprocket_proto::response::parse_decimal(&numerator),
                    sprocket_proto::response::parse_decimal(&denominator),
                );
                self.event(&handle, JobEvent::Status { numerator, denominator })
            }
            Response::WorkComplete { handle, data } => self.event(&handle, JobEvent::Complete(data)),
            Response::WorkFail { handle } => self.event(&clean_handle(&handle), JobEvent::Failed),
            Response::WorkException { handle, data } => self.event(&handle, JobEvent::Exception(data)),
            Response::Noop => {}
            other => {
                return Err(Error::Protocol(format!(
                    "unexpected {} on a client connection",
                    other.packet_type().name()
                )))
            }
        }
        Ok(())
    }

    fn event(&mut self, handle: &Bytes, event: JobEvent) {
        let Some(waiters) = self.jobs.get_mut(handle) else {
            tracing::debug!(handle = %String::from_utf8_lossy(handle), "event for a job nobody waits on");
            return;
        };
        if waiters.deliver(event) {
            self.jobs.remove(handle);
        }
    }

    fn fail_all(&mut self, error: &Error) {
        for reply in self.pending.drain(..) {
            fail_reply(reply, error);
        }
        // Dropping the event senders ends each job's stream; the waiter
        // turns the missing final event into ConnectionLost.
        self.jobs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(rx: &mut mpsc::UnboundedReceiver<JobEvent>) -> Vec<JobEvent> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn a_caller_joining_later_gets_one_copy_of_each_later_event() {
        let mut w = Waiters::default();
        let (a, mut ra) = mpsc::unbounded_channel();
        w.list.push(a);
        assert!(!w.deliver(JobEvent::Data("early".into()))); // one submission: one copy
        let (b, mut rb) = mpsc::unbounded_channel();
        w.list.push(b);
        for _ in 0..2 {
            assert!(!w.deliver(JobEvent::Data("late".into())));
        }
        assert!(w.deliver(JobEvent::Complete("r".into())));
        let late = JobEvent::Data("late".into());
        let done = JobEvent::Complete("r".into());
        assert_eq!(drain(&mut ra), vec![JobEvent::Data("early".into()), late.clone(), done.clone()]);
        assert_eq!(drain(&mut rb), vec![late, done]);
    }

    #[test]
    fn a_caller_gone_keeps_its_turn_so_the_others_get_no_duplicate() {
        let mut w = Waiters::default();
        let (a, ra) = mpsc::unbounded_channel();
        let (b, mut rb) = mpsc::unbounded_channel();
        w.list.extend([a, b]);
        drop(ra);
        for _ in 0..2 {
            assert!(!w.deliver(JobEvent::Warning("w".into())));
        }
        assert_eq!(drain(&mut rb), vec![JobEvent::Warning("w".into())]);
        drop(rb);
        assert!(w.deliver(JobEvent::Data("x".into())), "nobody waits any more");
    }
}
