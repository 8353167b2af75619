//! The single task that owns the engine. It drains every waiting event
//! before flushing, so replies to many connections go out in few writes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sprocket_engine::{ConnId, Engine, FastMap, Millis, Out, PersistOp, ShutdownRequest};
use sprocket_store::writer::WriterHandle;
use sprocket_store::{Completion, JobKey, StoreOp, StoredJob};
use tokio::sync::{mpsc, watch};

use crate::event::{ConnCmd, Event, Inbound};

/// Most events handled before the outbox is flushed.
const MAX_EVENTS_PER_FLUSH: usize = 4096;

pub fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
}

/// Converts an engine store operation into the store's own type.
pub fn to_store_op(op: PersistOp) -> StoreOp {
    match op {
        PersistOp::Insert { function, unique, priority, data, when } => {
            StoreOp::Insert(StoredJob { function, unique, priority, data, when })
        }
        PersistOp::Delete { function, unique } => StoreOp::Delete(JobKey { function, unique }),
    }
}

/// Why the engine task stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Shutdown,
}

pub struct EngineTask {
    pub engine: Engine,
    pub events: mpsc::UnboundedReceiver<Event>,
    pub writer: Option<WriterHandle>,
    pub completions: Option<mpsc::UnboundedReceiver<Completion>>,
    /// Set to Some(request) when the server must stop (signal or admin).
    pub shutdown: watch::Receiver<Option<ShutdownRequest>>,
    /// Tells the listener to stop accepting.
    pub stop_accepting: watch::Sender<bool>,
}

impl EngineTask {
    pub async fn run(mut self) -> (Engine, Option<WriterHandle>) {
        let mut conns: FastMap<ConnId, mpsc::UnboundedSender<ConnCmd>> = FastMap::default();
        let mut graceful = false;
        loop {
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
            tokio::select! {
                biased;
                ev = self.events.recv() => {
                    let Some(ev) = ev else { break };
                    self.handle(ev, &mut conns);
                    let mut n = 1;
                    while n < MAX_EVENTS_PER_FLUSH {
                        match self.events.try_recv() {
                            Ok(ev) => self.handle(ev, &mut conns),
                            Err(_) => break,
                        }
                        n += 1;
                    }
                }
                c = completions => {
                    match c {
                        Some(c) => self.engine.stored(c.through, &c.failed, now_ms()),
                        None => self.completions = None,
                    }
                }
                _ = sleep => self.engine.tick(now_ms()),
                changed = self.shutdown.changed() => {
                    if changed.is_err() { break; }
                    let req = *self.shutdown.borrow();
                    match req {
                        Some(ShutdownRequest::Immediate) => break,
                        Some(ShutdownRequest::Graceful) => {
                            graceful = true;
                            let _ = self.stop_accepting.send(true);
                        }
                        None => {}
                    }
                }
            }
            if let Some(req) = self.flush(&mut conns) {
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
        for tx in conns.values() {
            let _ = tx.send(ConnCmd::Close);
        }
        (self.engine, self.writer)
    }

    fn handle(&mut self, ev: Event, conns: &mut FastMap<ConnId, mpsc::UnboundedSender<ConnCmd>>) {
        let now = now_ms();
        match ev {
            Event::Connected { conn, fd, peer, tx } => {
                conns.insert(conn, tx);
                self.engine.connected(conn, fd, peer);
            }
            Event::Frames { conn, frames } => {
                for frame in frames {
                    match frame {
                        Inbound::Request(req) => self.engine.request(conn, req, now),
                        Inbound::Admin(line) => self.engine.admin_line(conn, &line, now),
                        Inbound::Error { reply, close } => self.engine.protocol_error(conn, reply, close, now),
                    }
                }
            }
            Event::Closed { conn } => {
                conns.remove(&conn);
                self.engine.disconnected(conn, now);
            }
        }
    }

    /// Sends out everything the engine produced; returns a shutdown request.
    fn flush(&mut self, conns: &mut FastMap<ConnId, mpsc::UnboundedSender<ConnCmd>>) -> Option<ShutdownRequest> {
        let out = self.engine.take_outbox();
        if let Some(writer) = &self.writer {
            for (seq, op) in out.persist {
                writer.submit(seq, to_store_op(op));
            }
        }
        let mut grouped: Vec<(ConnId, Vec<Out>)> = Vec::new();
        let mut index: FastMap<ConnId, usize> = FastMap::default();
        for (conn, o) in out.sends {
            match index.get(&conn) {
                Some(&i) => grouped[i].1.push(o),
                None => {
                    index.insert(conn, grouped.len());
                    grouped.push((conn, vec![o]));
                }
            }
        }
        for (conn, outs) in grouped {
            if let Some(tx) = conns.get(&conn) {
                let _ = tx.send(ConnCmd::Send(outs));
            }
        }
        for conn in out.close {
            if let Some(tx) = conns.get(&conn) {
                let _ = tx.send(ConnCmd::Close);
            }
        }
        out.shutdown
    }
}
