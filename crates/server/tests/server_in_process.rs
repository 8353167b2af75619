//! A server started in-process with `Server::start` on port 0, driven over
//! real TCP with the testkit's wire helpers, and read and commanded through
//! its typed channel into the engine task (what an HTTP API will use).

use std::net::SocketAddr;
use std::time::Duration;

use sprocket_engine::{CommandError, Config as EngineConfig, JobFilter, JobStatus, PersistMode, ShutdownRequest};
use sprocket_server::{EngineLink, ListenConfig, RunError, Server, ServerConfig, Stopper};
use sprocket_testkit::wire::{kind, Conn};

/// A server running on its own thread and runtime, as it would beside an
/// application's other work.
struct InProcess {
    addrs: Vec<SocketAddr>,
    link: EngineLink,
    stopper: Stopper,
    server: Option<std::thread::JoinHandle<Result<(), RunError>>>,
    /// The test's own runtime, for awaiting the link's answers.
    rt: tokio::runtime::Runtime,
}

impl InProcess {
    fn start() -> InProcess {
        InProcess::start_with(None)
    }

    /// A server writing its jobs to `store`.
    fn start_with(store: Option<sprocket_store::StoreConfig>) -> InProcess {
        let persist = if store.is_some() { PersistMode::Immediate } else { PersistMode::None };
        let engine = EngineConfig {
            persist,
            handle_prefix: "H:inproc".into(),
            version: sprocket_server::version_string(),
            ..EngineConfig::default()
        };
        let mut config =
            ServerConfig::new(engine, ListenConfig { host: Some("127.0.0.1".into()), port: 0, backlog: 64 });
        config.busy_poll = Some(0);
        config.store = store;
        let (tx, rx) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let handle = Server::start(config).await.expect("server starts");
                tx.send((handle.local_addrs().to_vec(), handle.link(), handle.stopper())).expect("test waits");
                handle.wait().await
            })
        });
        let (addrs, link, stopper) = rx.recv_timeout(Duration::from_secs(10)).expect("server started");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        InProcess { addrs, link, stopper, server: Some(server), rt }
    }

    fn port(&self) -> u16 {
        self.addrs[0].port()
    }

    fn ask<T>(&self, answer: impl std::future::Future<Output = Result<T, sprocket_server::Stopped>>) -> T {
        self.rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), answer).await })
            .expect("the engine task answers within 5 s")
            .expect("the server runs")
    }

    /// Waits for the server thread to end; its result.
    fn join(&mut self, limit: Duration) -> Result<(), RunError> {
        let server = self.server.take().expect("joined once");
        let deadline = std::time::Instant::now() + limit;
        while !server.is_finished() {
            assert!(std::time::Instant::now() < deadline, "server still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        server.join().expect("server thread")
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if self.server.is_some() {
            self.stopper.stop(ShutdownRequest::Immediate);
        }
    }
}

/// Submits a background job and returns its handle.
fn submit_bg(client: &mut Conn, function: &str, unique: &str, data: &str) -> Vec<u8> {
    client.send_req(kind::SUBMIT_JOB_BG, &[function.as_bytes(), unique.as_bytes(), data.as_bytes()]);
    let created = client.expect_packet("JOB_CREATED");
    assert_eq!(created.kind, kind::JOB_CREATED, "{created:?}");
    created.body
}

#[test]
fn reports_the_addresses_it_listens_on() {
    let server = InProcess::start();
    assert!(!server.addrs.is_empty());
    for addr in &server.addrs {
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        assert_ne!(addr.port(), 0, "the port the system chose, not 0");
    }
    let mut admin = Conn::connect(server.port());
    let reply = admin.admin_raw(b"version\n");
    assert_eq!(String::from_utf8_lossy(&reply), format!("OK {}\n", sprocket_server::version_string()));
}

#[test]
fn the_query_channel_sees_jobs_and_workers() {
    let server = InProcess::start();
    let mut worker = Conn::connect(server.port());
    worker.send_req(kind::SET_CLIENT_ID, &[b"w-one"]);
    worker.send_req(kind::CAN_DO, &[b"resize"]);
    let mut client = Conn::connect(server.port());
    let handle = submit_bg(&mut client, "resize", "img-7", "payload");
    // The worker's requests went before the submit on another connection;
    // an echo on the worker's own connection makes sure they were handled.
    worker.send_req(kind::ECHO_REQ, &[b"sync"]);
    assert_eq!(worker.expect_packet("ECHO_RES").kind, kind::ECHO_RES);

    let functions = server.ask(server.link.functions());
    assert_eq!(functions.len(), 1, "{functions:?}");
    let f = &functions[0];
    assert_eq!((&f.name[..], f.total, f.running, f.queued, f.workers), (&b"resize"[..], 1, 0, [0, 1, 0], 1));

    let workers = server.ask(server.link.workers());
    let w = workers.iter().find(|w| &w.client_id[..] == b"w-one").expect("the worker is listed");
    assert_eq!(w.functions, vec![bytes::Bytes::from_static(b"resize")]);
    assert!(w.running.is_empty());
    assert_eq!(workers.len(), 2, "the client is listed too, as gearmand's `workers` does: {workers:?}");

    let jobs = server.ask(server.link.jobs(JobFilter::default()));
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let j = &jobs[0];
    assert_eq!(&j.handle[..], &handle[..]);
    assert_eq!((&j.unique[..], &j.function[..], j.background), (&b"img-7"[..], &b"resize"[..], true));
    assert_eq!(j.status, JobStatus::Queued);
    let filtered = JobFilter { function: Some(bytes::Bytes::from_static(b"other")), ..JobFilter::default() };
    assert!(server.ask(server.link.jobs(filtered)).is_empty());

    // The worker takes the job: the views follow.
    worker.send_req(kind::GRAB_JOB, &[]);
    let assigned = worker.expect_packet("JOB_ASSIGN");
    assert_eq!(assigned.kind, kind::JOB_ASSIGN, "{assigned:?}");
    let job = server.ask(server.link.job(handle.clone())).expect("the job exists");
    assert!(matches!(job.status, JobStatus::Running { .. }), "{job:?}");
    let w = server.ask(server.link.workers()).into_iter().find(|w| &w.client_id[..] == b"w-one").unwrap();
    assert_eq!(w.running, vec![bytes::Bytes::from(handle.clone())]);
    let info = server.ask(server.link.server_info());
    assert_eq!((info.jobs, info.connections, info.functions), (1, 2, 1));
    assert_eq!(info.version, sprocket_server::version_string());

    // The admin text protocol renders the same views.
    let mut admin = Conn::connect(server.port());
    assert_eq!(admin.admin_raw(b"status\n"), b"resize\t1\t1\t1\n.\n");

    worker.send_req(kind::WORK_COMPLETE, &[&handle, b"done"]);
    worker.send_req(kind::ECHO_REQ, &[b"sync"]);
    assert_eq!(worker.expect_packet("ECHO_RES").kind, kind::ECHO_RES);
    assert_eq!(server.ask(server.link.job(handle)), None, "a finished job is gone");
}

#[test]
fn a_job_is_cancelled_through_the_command_channel() {
    let server = InProcess::start();
    let mut waiting = Conn::connect(server.port());
    waiting.send_req(kind::SUBMIT_JOB, &[b"slow", b"", b"data"]);
    let created = waiting.expect_packet("JOB_CREATED");
    assert_eq!(created.kind, kind::JOB_CREATED);
    let handle = created.body;

    assert_eq!(server.ask(server.link.cancel(handle.clone())), Ok(()));
    let failed = waiting.expect_packet("WORK_FAIL for the cancelled job");
    assert_eq!((failed.kind, &failed.body), (kind::WORK_FAIL, &handle));
    assert!(server.ask(server.link.jobs(JobFilter::default())).is_empty());
    assert_eq!(server.ask(server.link.cancel(handle)), Err(CommandError::UnknownJob));

    let mut admin = Conn::connect(server.port());
    assert_eq!(admin.admin_raw(b"status\n"), b"slow\t0\t0\t0\n.\n");
    assert!(server.ask(server.link.max_queue(&b"slow"[..], [1, 2, 3])), "slow exists");
    assert!(!server.ask(server.link.max_queue(&b"unknown"[..], [1, 2, 3])), "unknown does not");
    let slow = server.ask(server.link.functions()).into_iter().next().unwrap();
    assert_eq!(slow.max_queue, [1, 2, 3]);
    assert_eq!(server.ask(server.link.drop_function(&b"SLOW"[..])), Ok(()));
    assert_eq!(server.ask(server.link.drop_function(&b"slow"[..])), Err(CommandError::FunctionNotFound));
}

#[test]
fn shuts_down_cleanly_and_stops_listening() {
    let mut server = InProcess::start();
    let port = server.port();
    let mut client = Conn::connect(port);
    let handle = submit_bg(&mut client, "left", "", "x");
    assert!(server.ask(server.link.job(handle)).is_some());

    server.ask(server.link.shutdown(false));
    server.join(Duration::from_secs(10)).expect("a clean stop");
    assert!(client.closed_within(Duration::from_secs(5)), "connections are closed");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the listener is closed");
    let stopped = server.rt.block_on(server.link.functions());
    assert_eq!(stopped, Err(sprocket_server::Stopped), "a stopped server answers no query");
}

#[test]
fn a_graceful_stop_waits_for_the_last_job() {
    let mut server = InProcess::start();
    let mut client = Conn::connect(server.port());
    let handle = submit_bg(&mut client, "last", "", "x");
    let mut worker = Conn::connect(server.port());
    worker.send_req(kind::CAN_DO, &[b"last"]);
    // Accepted and registered before the listener closes.
    worker.send_req(kind::ECHO_REQ, &[b"sync"]);
    assert_eq!(worker.expect_packet("ECHO_RES").kind, kind::ECHO_RES);

    server.stopper.stop(ShutdownRequest::Graceful);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!server.server.as_ref().unwrap().is_finished(), "a job is still queued");
    assert_eq!(server.ask(server.link.server_info()).jobs, 1);

    worker.send_req(kind::GRAB_JOB, &[]);
    assert_eq!(worker.expect_packet("JOB_ASSIGN").kind, kind::JOB_ASSIGN);
    worker.send_req(kind::WORK_COMPLETE, &[&handle, b""]);
    server.join(Duration::from_secs(10)).expect("a clean stop once the job is done");
}

#[test]
fn a_durable_server_answers_once_the_store_has_the_job() {
    let mut server = InProcess::start_with(Some(sprocket_store::StoreConfig::Memory));
    let mut client = Conn::connect(server.port());
    let handle = submit_bg(&mut client, "kept", "k1", "x");
    let job = server.ask(server.link.job(handle)).expect("the job exists");
    assert!(job.stored, "the job has a store row: {job:?}");
    assert_eq!(server.ask(server.link.server_info()).unconfirmed_inserts, 0, "JOB_CREATED waited for the commit");
    server.stopper.stop(ShutdownRequest::Immediate);
    server.join(Duration::from_secs(10)).expect("the writer closes cleanly");
}
