//! A small driver around the engine for tests: connections by number,
//! requests in, responses out per connection.
#![allow(dead_code)]

use std::collections::HashMap;

use bytes::Bytes;
use sprocket_engine::{
    Config, ConnId, ControlPurge, ControlRead, Engine, Millis, Out, PersistOp, Record, RecordPurge, RecordRead,
    SettingWrite,
};
use sprocket_proto::{Priority, Request, Response, SubmitMode};

pub struct Bed {
    pub engine: Engine,
    pub now: Millis,
    pub inbox: HashMap<ConnId, Vec<Out>>,
    pub persisted: Vec<(u64, PersistOp)>,
    pub closed: Vec<ConnId>,
    /// Ended-job reports, when the config asks for them.
    pub ended: Vec<Record>,
    /// Reads of records the engine asked for, not yet answered.
    pub reads: Vec<RecordRead>,
    /// Whether the engine asked for another block of handles.
    pub wants_handles: bool,
    /// Answers to record reads that control queries started.
    pub control_reads: Vec<ControlRead>,
    /// Setting writes the engine asked for, not yet reported.
    pub settings: Vec<SettingWrite>,
    /// Purges of records the engine asked for, not yet reported.
    pub purges: Vec<RecordPurge>,
    /// Answers to purges that control commands started.
    pub control_purges: Vec<ControlPurge>,
    next: ConnId,
}

pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

impl Bed {
    pub fn new(config: Config) -> Bed {
        Bed {
            engine: Engine::new(config),
            now: 1_800_000_000_000,
            inbox: HashMap::new(),
            persisted: Vec::new(),
            closed: Vec::new(),
            ended: Vec::new(),
            reads: Vec::new(),
            wants_handles: false,
            control_reads: Vec::new(),
            settings: Vec::new(),
            purges: Vec::new(),
            control_purges: Vec::new(),
            next: 1,
        }
    }

    pub fn default() -> Bed {
        Bed::new(Config { handle_prefix: "H:test".into(), ..Config::default() })
    }

    pub fn connect(&mut self) -> ConnId {
        let id = self.next;
        self.next += 1;
        self.engine.connected(id, id as i64 + 10, "127.0.0.1".into());
        id
    }

    fn drain(&mut self) {
        let out = self.engine.take_outbox();
        for (c, o) in out.sends {
            self.inbox.entry(c).or_default().push(o);
        }
        self.persisted.extend(out.persist);
        self.closed.extend(out.close);
        self.ended.extend(out.ended);
        self.reads.extend(out.record_reads);
        self.wants_handles |= out.wants_handles;
        self.control_reads.extend(out.control_reads);
        self.settings.extend(out.setting_writes);
        self.purges.extend(out.record_purges);
        self.control_purges.extend(out.control_purges);
    }

    pub fn send(&mut self, conn: ConnId, req: Request) {
        self.engine.request(conn, req, self.now);
        self.drain();
    }

    pub fn admin(&mut self, conn: ConnId, line: &str) -> String {
        self.engine.admin_line(conn, line.as_bytes(), self.now);
        self.drain();
        let outs = self.take(conn);
        let mut s = String::new();
        for o in outs {
            if let Out::Text(t) = o {
                s.push_str(&String::from_utf8_lossy(&t));
            }
        }
        s
    }

    pub fn disconnect(&mut self, conn: ConnId) {
        self.engine.disconnected(conn, self.now);
        self.drain();
        self.inbox.remove(&conn);
    }

    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.engine.tick(self.now);
        self.drain();
    }

    /// Answers the engine's read `id` of records.
    pub fn answer_read(&mut self, id: u64, result: Result<Vec<Record>, String>) {
        self.engine.record_read_done(id, result, self.now);
        self.drain();
    }

    /// Reports the engine's purge `id` done (or failed).
    pub fn purge_done(&mut self, id: u64, result: Result<u64, String>) {
        self.engine.record_purge_done(id, result, self.now);
        self.drain();
    }

    /// Reports the engine's setting write `id` done (or failed).
    pub fn setting_done(&mut self, id: u64, result: Result<(), String>) {
        self.engine.setting_write_done(id, result, self.now);
        self.drain();
    }

    /// The admin text `conn` received since the last take.
    pub fn text(&mut self, conn: ConnId) -> String {
        let mut s = String::new();
        for o in self.take(conn) {
            if let Out::Text(t) = o {
                s.push_str(&String::from_utf8_lossy(&t));
            }
        }
        s
    }

    pub fn stored(&mut self, through: u64, failed: &[u64]) {
        self.engine.stored(through, failed, self.now);
        self.drain();
    }

    /// All packets received by `conn` since the last take.
    pub fn take(&mut self, conn: ConnId) -> Vec<Out> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    pub fn packets(&mut self, conn: ConnId) -> Vec<Response> {
        self.take(conn)
            .into_iter()
            .filter_map(|o| match o {
                Out::Packet(p) => Some(p),
                Out::Text(_) => None,
            })
            .collect()
    }

    pub fn submit(
        &mut self,
        conn: ConnId,
        f: &str,
        unique: &str,
        data: &str,
        priority: Priority,
        background: bool,
    ) -> Bytes {
        self.send(
            conn,
            Request::SubmitJob {
                mode: SubmitMode { priority, background },
                function: b(f),
                unique: b(unique),
                data: b(data),
            },
        );
        match self.packets(conn).pop() {
            Some(Response::JobCreated { handle }) => handle,
            other => panic!("expected JOB_CREATED, got {other:?}"),
        }
    }

    pub fn fg(&mut self, conn: ConnId, f: &str, unique: &str, data: &str) -> Bytes {
        self.submit(conn, f, unique, data, Priority::Normal, false)
    }

    pub fn bg(&mut self, conn: ConnId, f: &str, unique: &str, data: &str) -> Bytes {
        self.submit(conn, f, unique, data, Priority::Normal, true)
    }

    pub fn worker(&mut self, f: &[&str]) -> ConnId {
        let w = self.connect();
        for name in f {
            self.send(w, Request::CanDo { function: b(name) });
        }
        w
    }

    /// GRAB_JOB_UNIQ; returns (handle, function, unique, data) or None.
    pub fn grab(&mut self, w: ConnId) -> Option<(Bytes, Bytes, Bytes, Bytes)> {
        self.send(w, Request::GrabJobUniq);
        match self.packets(w).pop() {
            Some(Response::JobAssignUniq { handle, function, unique, data }) => Some((handle, function, unique, data)),
            Some(Response::NoJob) => None,
            other => panic!("expected JOB_ASSIGN_UNIQ or NO_JOB, got {other:?}"),
        }
    }
}
