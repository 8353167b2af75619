//! What the records tests share: sprocketd started with explicit queue
//! flags (so a test means the same whatever `SPROCKET_TEST_QUEUE` says),
//! readers of `sprocket.result` and `sprocket.record` over raw packets, and
//! a worker that ends one job with chosen data, status and result.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use sprocket_proto::{Priority, Request, Response, SubmitMode};
use sprocket_testkit::process::run;
use sprocket_testkit::ServerProcess;

use crate::common::{b, sprocketd, Gear};

/// How long a test waits for something that should take well under a second.
pub const LIMIT: Duration = Duration::from_secs(15);

/// sprocketd with the default durable store, SQLite in `data_dir` (one
/// queue file per port there, so a restart must use the same `port`).
pub fn sqlite_server(port: u16, data_dir: &Path, extra: &[&str]) -> ServerProcess {
    let mut args: Vec<String> = vec![
        "--port".into(),
        port.to_string(),
        "--listen".into(),
        "127.0.0.1".into(),
        "--queue-type=sqlite".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--web-listen=none".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    ServerProcess::start("sprocketd", sprocketd(), &args, port)
}

/// sprocketd with the in-memory queue (`-q builtin`), records in memory.
pub fn builtin_server(extra: &[&str]) -> ServerProcess {
    let mut args = vec!["-q", "builtin"];
    args.extend_from_slice(extra);
    ServerProcess::sprocketd(sprocketd(), &args)
}

/// The SQLite queue file of a `sqlite_server` on `port`.
pub fn sqlite_file(data_dir: &Path, port: u16) -> std::path::PathBuf {
    data_dir.join(format!("sprocket-{port}.db"))
}

/// The stored state of `handle`'s record in a SQLite queue file, read with
/// the sqlite3 tool (None when there is no row).
pub fn sqlite_record_state(file: &Path, handle: &[u8]) -> Option<String> {
    let handle = String::from_utf8_lossy(handle).replace('\'', "''");
    let out = run(
        Command::new("sqlite3")
            .arg(file)
            .arg(format!("PRAGMA busy_timeout=5000; SELECT state FROM sprocket_records WHERE handle = '{handle}'")),
        b"",
        LIMIT,
    );
    assert!(out.success(), "sqlite3 record state: {}", out.describe());
    let state = out.stdout_text().lines().last().unwrap_or("").trim().to_string();
    (!state.is_empty()).then_some(state)
}

/// Waits until the record of `handle` is stored in `file` in `state`.
pub fn wait_sqlite_state(file: &Path, handle: &[u8], state: &str) {
    let mut last = None;
    let ok = sprocket_testkit::databases::wait_until(LIMIT, || {
        last = sqlite_record_state(file, handle);
        last.as_deref() == Some(state)
    });
    assert!(ok, "record of {} stored as {last:?}, wanted {state}", String::from_utf8_lossy(handle));
}

/// Submits a background job and returns its handle.
pub fn submit_bg(port: u16, function: &str, unique: &str, data: &[u8]) -> Bytes {
    let mut c = Gear::connect(port).expect("client connects");
    let reply = c.call(&Request::SubmitJob {
        mode: SubmitMode { priority: Priority::Normal, background: true },
        function: b(function),
        unique: b(unique),
        data: Bytes::copy_from_slice(data),
    });
    match reply {
        Ok(Response::JobCreated { handle }) => handle,
        other => panic!("background submit of {function}/{unique}: expected JOB_CREATED, got {other:?}"),
    }
}

/// Submits a foreground job to one of the server's `sprocket.*` functions
/// and reads the answer: JOB_CREATED's handle, then every packet up to and
/// including the first WORK_COMPLETE, WORK_FAIL or WORK_EXCEPTION.
pub fn ask(port: u16, function: &str, payload: &[u8], exceptions: bool) -> Replay {
    let mut c = Gear::connect(port).expect("reader connects");
    if exceptions {
        match c.call(&Request::OptionReq { name: b("exceptions") }) {
            Ok(Response::OptionRes { .. }) => {}
            other => panic!("OPTION_REQ exceptions: {other:?}"),
        }
    }
    let reply = c.call(&Request::SubmitJob {
        mode: SubmitMode { priority: Priority::Normal, background: false },
        function: b(function),
        unique: Bytes::new(),
        data: Bytes::copy_from_slice(payload),
    });
    let handle = match reply {
        Ok(Response::JobCreated { handle }) => handle,
        other => panic!("{function} {}: expected JOB_CREATED, got {other:?}", String::from_utf8_lossy(payload)),
    };
    let mut packets = Vec::new();
    loop {
        let p = c.recv().unwrap_or_else(|e| panic!("{function}: reading the answer after {packets:?}: {e}"));
        let last =
            matches!(p, Response::WorkComplete { .. } | Response::WorkFail { .. } | Response::WorkException { .. });
        packets.push(p);
        if last {
            return Replay { handle, packets };
        }
    }
}

/// `sprocket.result` of `handle`.
pub fn read_result(port: u16, handle: &[u8]) -> Replay {
    ask(port, "sprocket.result", handle, false)
}

/// What a `sprocket.*` call answered.
#[derive(Debug)]
pub struct Replay {
    /// The handle of JOB_CREATED.
    pub handle: Bytes,
    /// The packets after it, the last one ending the job.
    pub packets: Vec<Response>,
}

impl Replay {
    /// The WORK_DATA payloads, in order.
    pub fn data(&self) -> Vec<Vec<u8>> {
        self.packets
            .iter()
            .filter_map(|p| match p {
                Response::WorkData { data, .. } => Some(data.to_vec()),
                _ => None,
            })
            .collect()
    }

    /// The WORK_WARNING payloads, in order.
    pub fn warnings(&self) -> Vec<Vec<u8>> {
        self.packets
            .iter()
            .filter_map(|p| match p {
                Response::WorkWarning { data, .. } => Some(data.to_vec()),
                _ => None,
            })
            .collect()
    }

    /// The WORK_STATUS packets as `n/d`, in order.
    pub fn statuses(&self) -> Vec<String> {
        self.packets
            .iter()
            .filter_map(|p| match p {
                Response::WorkStatus { numerator, denominator, .. } => {
                    Some(format!("{}/{}", String::from_utf8_lossy(numerator), String::from_utf8_lossy(denominator)))
                }
                _ => None,
            })
            .collect()
    }

    /// WORK_COMPLETE's payload, or None when the answer was a failure.
    pub fn result(&self) -> Option<Vec<u8>> {
        match self.packets.last() {
            Some(Response::WorkComplete { data, .. }) => Some(data.to_vec()),
            _ => None,
        }
    }

    /// Whether every packet names the handle of JOB_CREATED.
    pub fn all_under_created_handle(&self) -> bool {
        self.packets.iter().all(|p| match p {
            Response::WorkData { handle, .. }
            | Response::WorkWarning { handle, .. }
            | Response::WorkStatus { handle, .. }
            | Response::WorkComplete { handle, .. }
            | Response::WorkFail { handle }
            | Response::WorkException { handle, .. } => *handle == self.handle,
            _ => false,
        })
    }
}

/// `sprocket.record` of `handle` parsed, or None when the server answered
/// WORK_FAIL (no such record).
pub fn record_json(port: u16, handle: &[u8]) -> Option<Value> {
    let answer = ask(port, "sprocket.record", handle, false);
    match answer.packets.last() {
        Some(Response::WorkComplete { data, .. }) => {
            Some(serde_json::from_slice(data).unwrap_or_else(|e| panic!("record JSON {data:?}: {e}")))
        }
        Some(Response::WorkFail { .. }) => None,
        other => panic!("sprocket.record: {other:?}"),
    }
}

/// Waits until `handle`'s record (read through `sprocket.record`) is in
/// `state`, and returns it.
pub fn wait_record_state(port: u16, handle: &[u8], state: &str) -> Value {
    let start = Instant::now();
    loop {
        let record = record_json(port, handle);
        if let Some(r) = record.as_ref().filter(|r| r["state"] == state) {
            return r.clone();
        }
        assert!(
            start.elapsed() < LIMIT,
            "record of {} never became {state}: {record:?}",
            String::from_utf8_lossy(handle)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a worker sends for a job before its end, in this order.
#[derive(Debug, Clone)]
pub enum Sent {
    Data(Vec<u8>),
    Warning(Vec<u8>),
    Status(u32, u32),
}

/// How a worker ends a job.
#[derive(Debug, Clone)]
pub enum End {
    Complete(Vec<u8>),
    Fail,
    Exception(Vec<u8>),
}

/// A worker connection that registered `function`.
pub struct Worker {
    pub gear: Gear,
}

impl Worker {
    pub fn new(port: u16, function: &str) -> Worker {
        let mut gear = Gear::connect(port).expect("worker connects");
        gear.send(&Request::CanDo { function: b(function) }).expect("CAN_DO");
        Worker { gear }
    }

    /// Grabs the next job (polling until one is there): (handle, data).
    pub fn grab(&mut self) -> (Bytes, Bytes) {
        let start = Instant::now();
        loop {
            match self.gear.call(&Request::GrabJobUniq).expect("GRAB_JOB_UNIQ") {
                Response::JobAssignUniq { handle, data, .. } => return (handle, data),
                Response::NoJob => {
                    assert!(start.elapsed() < LIMIT, "no job reached the worker within {LIMIT:?}");
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => panic!("worker got {other:?}"),
            }
        }
    }

    /// Sends `sent` and then `end` for the job `handle`.
    pub fn finish(&mut self, handle: &Bytes, sent: &[Sent], end: &End) {
        for s in sent {
            let req = match s {
                Sent::Data(d) => Request::WorkData { handle: handle.clone(), data: Bytes::copy_from_slice(d) },
                Sent::Warning(d) => Request::WorkWarning { handle: handle.clone(), data: Bytes::copy_from_slice(d) },
                Sent::Status(n, d) => Request::WorkStatus {
                    handle: handle.clone(),
                    numerator: Bytes::from(n.to_string()),
                    denominator: Bytes::from(d.to_string()),
                },
            };
            self.gear.send(&req).expect("send WORK_*");
        }
        let req = match end {
            End::Complete(d) => Request::WorkComplete { handle: handle.clone(), data: Bytes::copy_from_slice(d) },
            End::Fail => Request::WorkFail { handle: handle.clone() },
            End::Exception(d) => Request::WorkException { handle: handle.clone(), data: Bytes::copy_from_slice(d) },
        };
        self.gear.send(&req).expect("send the job's end");
    }
}

/// Runs the next job of `function` with `sent` and `end` on a new worker
/// connection; returns the job's handle.
pub fn work_one(port: u16, function: &str, sent: &[Sent], end: &End) -> Bytes {
    let mut w = Worker::new(port, function);
    let (handle, _) = w.grab();
    w.finish(&handle, sent, end);
    handle
}

/// A background job of `function` submitted and run to `end` after
/// `sent`; returns its handle once its record says it ended as `state`.
pub fn job_ended(port: u16, function: &str, unique: &str, sent: &[Sent], end: &End, state: &str) -> Bytes {
    let handle = submit_bg(port, function, unique, b"workload");
    let ran = work_one(port, function, sent, end);
    assert_eq!(ran, handle, "the worker ran the job just submitted");
    wait_record_state(port, &handle, state);
    handle
}

/// The bytes as text for messages and line-based tool output.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
