//! Shared by the `store_*` tests: one queue store per backend on a real
//! database, submitting jobs with every field, and draining them back
//! through a worker in hand-out order.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sprocket_proto::{Priority, Request, Response, SubmitMode};
use sprocket_testkit::databases::{self, Shared, SharedTable, TempDir};
use sprocket_testkit::ServerProcess;

use crate::common::{b, sprocketd, Gear};

/// Where a test's queue lives: a private SQLite file, or a private table /
/// key prefix on one of the shared services (dropped afterwards).
pub enum Backend {
    Sqlite { dir: TempDir, table: String },
    Shared(SharedTable),
}

impl Backend {
    /// A fresh store on `kind` ("sqlite", "postgres", "mysql", "redis"), or
    /// None after `SKIPPED:` when the service is missing.
    pub fn new(kind: &str, stem: &str) -> Option<Backend> {
        let shared = match kind {
            "sqlite" => {
                if !sprocket_testkit::require_tool("sqlite3") {
                    return None;
                }
                return Some(Backend::Sqlite { dir: TempDir::new(stem), table: databases::unique_name(stem) });
            }
            "postgres" => Shared::Postgres,
            "mysql" => Shared::Mysql,
            "redis" => Shared::Redis,
            other => panic!("unknown backend {other}"),
        };
        SharedTable::new(shared, stem).map(Backend::Shared)
    }

    pub fn sqlite_path(&self) -> String {
        match self {
            Backend::Sqlite { dir, .. } => dir.path().join("queue.db").display().to_string(),
            Backend::Shared(_) => panic!("not an sqlite backend"),
        }
    }

    /// The table name or Redis prefix.
    pub fn name(&self) -> &str {
        match self {
            Backend::Sqlite { table, .. } => table,
            Backend::Shared(t) => &t.name,
        }
    }

    /// sprocketd's queue flags for this store, in gearmand's spelling.
    pub fn flags(&self) -> Vec<String> {
        match self {
            Backend::Sqlite { table, .. } => vec![
                "--queue-type=libsqlite3".into(),
                format!("--libsqlite3-db={}", self.sqlite_path()),
                format!("--libsqlite3-table={table}"),
            ],
            Backend::Shared(t) => match t.service {
                Shared::Postgres => vec![
                    "--queue-type=postgres".into(),
                    "--libpq-conninfo=host=127.0.0.1 port=5432 user=postgres dbname=test".into(),
                    format!("--libpq-table={}", t.name),
                ],
                Shared::Mysql => vec![
                    "--queue-type=mysql".into(),
                    "--mysql-host=127.0.0.1".into(),
                    "--mysql-port=3306".into(),
                    "--mysql-user=root".into(),
                    "--mysql-db=test".into(),
                    format!("--mysql-table={}", t.name),
                ],
                Shared::Redis => vec![
                    "--queue-type=redis".into(),
                    "--redis-server=127.0.0.1".into(),
                    "--redis-port=6379".into(),
                    format!("--redis-prefix={}", t.name),
                ],
            },
        }
    }

    /// How many jobs are stored right now (rows, or Redis keys).
    pub fn count(&self) -> usize {
        match self {
            Backend::Sqlite { table, .. } => {
                let out = sprocket_testkit::process::run(
                    std::process::Command::new("sqlite3")
                        .arg(self.sqlite_path())
                        .arg(format!("PRAGMA busy_timeout=5000; SELECT COUNT(*) FROM \"{table}\"")),
                    b"",
                    Duration::from_secs(20),
                );
                assert!(out.success(), "sqlite3 count: {}", out.describe());
                out.stdout_text().lines().last().unwrap_or("").trim().parse().expect("row count")
            }
            Backend::Shared(t) => t.count(),
        }
    }

    /// Waits until [`count`](Self::count) is `n`; panics after `limit`.
    pub fn wait_count(&self, n: usize, limit: Duration, what: &str) {
        let mut last = usize::MAX;
        let ok = databases::wait_until(limit, || {
            last = self.count();
            last == n
        });
        assert!(ok, "{what}: {} store holds {last} jobs, wanted {n} (after {limit:?})", self.name());
    }

    /// Starts sprocketd on this store (plus `extra` flags).
    pub fn start(&self, extra: &[&str]) -> ServerProcess {
        let mut args: Vec<String> = self.flags();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ServerProcess::sprocketd(sprocketd(), &args)
    }
}

/// One background job with every field the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub function: String,
    pub unique: String,
    pub data: Vec<u8>,
    pub priority: Priority,
    /// 0 = run now; otherwise SUBMIT_JOB_EPOCH.
    pub epoch: i64,
}

impl Job {
    pub fn new(function: &str, unique: &str, data: &[u8], priority: Priority) -> Job {
        Job { function: function.into(), unique: unique.into(), data: data.to_vec(), priority, epoch: 0 }
    }

    pub fn request(&self) -> Request {
        if self.epoch != 0 {
            Request::SubmitJobEpoch {
                function: b(&self.function),
                unique: b(&self.unique),
                epoch: b(&self.epoch.to_string()),
                data: Bytes::copy_from_slice(&self.data),
            }
        } else {
            Request::SubmitJob {
                mode: SubmitMode { priority: self.priority, background: true },
                function: b(&self.function),
                unique: b(&self.unique),
                data: Bytes::copy_from_slice(&self.data),
            }
        }
    }
}

/// Submits `job` as a background job and insists on JOB_CREATED.
pub fn submit(g: &mut Gear, job: &Job) {
    match g.call(&job.request()) {
        Ok(Response::JobCreated { .. }) => {}
        other => panic!("submit {job:?}: expected JOB_CREATED, got {other:?}"),
    }
}

/// A job a worker received: (function, unique, data).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ran {
    pub function: String,
    pub unique: String,
    pub data: Vec<u8>,
}

/// A worker for `functions` that runs (WORK_COMPLETE) every job it can grab
/// until `want` jobs ran or `limit` passed, in hand-out order. Between
/// NO_JOBs it polls, so future epoch jobs are picked up when they are due.
pub fn run_jobs(port: u16, functions: &[&str], want: usize, limit: Duration) -> Vec<Ran> {
    let mut w = Gear::connect(port).expect("worker connects");
    for f in functions {
        w.send(&Request::CanDo { function: b(f) }).expect("CAN_DO");
    }
    let start = Instant::now();
    let mut ran = Vec::new();
    while ran.len() < want && start.elapsed() < limit {
        match w.call(&Request::GrabJobUniq).expect("GRAB_JOB_UNIQ") {
            Response::JobAssignUniq { handle, function, unique, data } => {
                ran.push(Ran {
                    function: String::from_utf8_lossy(&function).into_owned(),
                    unique: String::from_utf8_lossy(&unique).into_owned(),
                    data: data.to_vec(),
                });
                w.send(&Request::WorkComplete { handle, data: b("done") }).expect("WORK_COMPLETE");
            }
            Response::NoJob => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("worker got {other:?}"),
        }
    }
    ran
}

/// Grabs and completes jobs of `functions` until NO_JOB.
pub fn run_all_queued(port: u16, functions: &[&str]) -> Vec<Ran> {
    let mut w = Gear::connect(port).expect("worker connects");
    for f in functions {
        w.send(&Request::CanDo { function: b(f) }).expect("CAN_DO");
    }
    let mut ran = Vec::new();
    loop {
        match w.call(&Request::GrabJobUniq).expect("GRAB_JOB_UNIQ") {
            Response::JobAssignUniq { handle, function, unique, data } => {
                ran.push(Ran {
                    function: String::from_utf8_lossy(&function).into_owned(),
                    unique: String::from_utf8_lossy(&unique).into_owned(),
                    data: data.to_vec(),
                });
                w.send(&Request::WorkComplete { handle, data: b("done") }).expect("WORK_COMPLETE");
            }
            Response::NoJob => return ran,
            other => panic!("worker got {other:?}"),
        }
    }
}

/// What a load run saw: the uniques whose JOB_CREATED reached a client,
/// and those answered with ERROR.
pub struct Load {
    pub acked: HashSet<String>,
    pub refused: HashSet<String>,
}

/// What a submitting thread does when a submit is answered with ERROR.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Stop submitting (any answer but JOB_CREATED ends the thread).
    Stop,
    /// Record the unique as refused, pause 5 ms and go on (a database
    /// outage); any other answer still ends the thread.
    Retry,
}

/// Threads submitting background jobs of one function (uniques `c<t>-<i>`)
/// as fast as they can, until [`SubmitLoad::finish`].
pub struct SubmitLoad {
    acked: Arc<Mutex<HashSet<String>>>,
    refused: Arc<Mutex<HashSet<String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl SubmitLoad {
    pub fn start(port: u16, function: &str, connections: usize, on_error: OnError) -> SubmitLoad {
        let acked = Arc::new(Mutex::new(HashSet::new()));
        let refused = Arc::new(Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..connections)
            .map(|t| {
                let (acked, refused, stop) = (acked.clone(), refused.clone(), stop.clone());
                let function = function.to_string();
                std::thread::spawn(move || {
                    let Ok(mut c) = Gear::connect(port) else { return };
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let unique = format!("c{t}-{i}");
                        match c.submit_bg(&function, &unique, "payload of a crash test") {
                            Ok(Response::JobCreated { .. }) => {
                                acked.lock().expect("acked lock").insert(unique);
                            }
                            Ok(Response::Error { .. }) if on_error == OnError::Retry => {
                                refused.lock().expect("refused lock").insert(unique);
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            _ => break,
                        }
                    }
                })
            })
            .collect();
        SubmitLoad { acked, refused, stop, threads }
    }

    /// How many submits were acknowledged so far.
    pub fn acked_count(&self) -> usize {
        self.acked.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Stops the threads (each ends after its current submit) and reports.
    pub fn finish(self) -> Load {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let acked = self.acked.lock().expect("acked lock").clone();
        let refused = self.refused.lock().expect("refused lock").clone();
        Load { acked, refused }
    }
}

/// `connections` threads submit background jobs of `function` (uniques
/// `c<t>-<i>`) as fast as they can; after `run_for`, `kill` runs (the
/// server is killed), and the threads stop at their first failed submit.
pub fn load_then_kill(port: u16, function: &str, connections: usize, run_for: Duration, kill: impl FnOnce()) -> Load {
    let load = SubmitLoad::start(port, function, connections, OnError::Stop);
    std::thread::sleep(run_for);
    kill();
    load.finish()
}

/// The seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
