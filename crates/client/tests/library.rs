//! The library against real servers over real sockets: gearmand 1.1.20
//! and sprocketd (when built). Each scenario runs on every server.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{dead_addr, servers};
use futures::StreamExt;
use sprocket_client::{
    Client, ClientOptions, Error, Job, JobError, JobEvent, JobRequest, Priority, Worker, WorkerOptions,
};

fn reverse(b: &[u8]) -> Vec<u8> {
    b.iter().rev().copied().collect()
}

/// The seed-004 reverse worker: ten status reports, then the reversed payload.
fn reverse_worker(addr: &str) -> Worker {
    Worker::new(addr).unwrap().register("reverse", |job: Job| async move {
        for i in 1..=10 {
            job.status(i, 10)?;
        }
        job.data("partial")?;
        job.warning("careful")?;
        Ok::<_, JobError>(reverse(job.payload()))
    })
}

#[tokio::test]
async fn foreground_with_events_in_order() {
    for srv in servers() {
        let w = reverse_worker(&srv.addr()).spawn().unwrap();
        let client = Client::new(srv.addr()).unwrap();
        let mut events = Vec::new();
        let result =
            client.submit_with(JobRequest::new("reverse", "Rasmus"), |ev| events.push(ev.clone())).await.unwrap();
        assert_eq!(&result[..], b"sumsaR", "{}", srv.name);
        assert!(matches!(events[0], JobEvent::Created(_)), "{}: {events:?}", srv.name);
        let pct: Vec<u64> = events.iter().filter_map(JobEvent::percent).collect();
        assert_eq!(pct, (1..=10).map(|i| i * 10).collect::<Vec<_>>(), "{}", srv.name);
        assert!(events.contains(&JobEvent::Data("partial".into())));
        assert!(events.contains(&JobEvent::Warning("careful".into())));
        assert_eq!(events.last(), Some(&JobEvent::Complete("sumsaR".into())));

        // The same through the Stream interface.
        let stream = client.submit_stream(JobRequest::new("reverse", "abc")).await.unwrap();
        let all: Vec<JobEvent> = stream.collect().await;
        assert_eq!(all.last(), Some(&JobEvent::Complete("cba".into())), "{}", srv.name);
        w.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn background_job_and_status_poll() {
    for srv in servers() {
        let client = Client::new(srv.addr()).unwrap();
        let handle = client.submit_background("slow", "x").await.unwrap();
        let st = client.status(&handle).await.unwrap();
        assert!(st.known && !st.running, "{}: {st:?}", srv.name);

        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let w = gated_worker(srv.addr(), "slow", go_rx);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let st = client.status(&handle).await.unwrap();
            if st.running && st.numerator == 6 {
                assert_eq!(st.denominator, 10);
                break;
            }
            assert!(Instant::now() < deadline, "{}: job never reported 6/10: {st:?}", srv.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        go_tx.send(true).unwrap();
        loop {
            let st = client.status(&handle).await.unwrap();
            if !st.known {
                break;
            }
            assert!(Instant::now() < deadline, "{}: job never finished", srv.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        w.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn many_jobs_in_flight_on_one_connection() {
    for srv in servers() {
        let w = Worker::new(srv.addr())
            .unwrap()
            .register("rev", |job: Job| async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                Ok::<_, JobError>(reverse(job.payload()))
            })
            .concurrency(8)
            .spawn()
            .unwrap();
        let client = Client::new(srv.addr()).unwrap();
        let jobs: Vec<JobRequest> = (0..200).map(|i| JobRequest::new("rev", format!("job-{i}"))).collect();
        let results = client.submit_batch(jobs).await;
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.as_ref().unwrap()[..], reverse(format!("job-{i}").as_bytes())[..], "{}", srv.name);
        }
        w.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn batch_reports_each_jobs_error() {
    for srv in servers() {
        let w = Worker::new(srv.addr())
            .unwrap()
            .register("hello", |job: Job| async move {
                match job.payload().as_ref() {
                    b"fail" => Err(JobError::Fail),
                    b"boom" => Err(JobError::exception("boom!")),
                    name => Ok(format!("Hello {}", String::from_utf8_lossy(name))),
                }
            })
            .concurrency(3)
            .spawn()
            .unwrap();
        let client = Client::new(srv.addr()).unwrap();
        let names = ["Will", "fail", "Morgan", "boom", "Matt"];
        let results = client.submit_batch(names.iter().map(|n| JobRequest::new("hello", n.to_string()))).await;
        assert_eq!(&results[0].as_ref().unwrap()[..], b"Hello Will");
        assert!(matches!(results[1], Err(Error::JobFailed { .. })), "{}: {:?}", srv.name, results[1]);
        assert_eq!(&results[2].as_ref().unwrap()[..], b"Hello Morgan");
        match &results[3] {
            Err(Error::JobException { data, .. }) => assert_eq!(&data[..], b"boom!"),
            other => panic!("{}: expected an exception, got {other:?}", srv.name),
        }
        // Without the exceptions option the exception arrives as a failure.
        let plain =
            Client::with_options(srv.addr(), ClientOptions { exceptions: false, ..Default::default() }).unwrap();
        let r = plain.submit("hello", "boom").await;
        assert!(matches!(r, Err(Error::JobFailed { .. })), "{}: {r:?}", srv.name);
        w.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn unique_ids_coalesce() {
    for srv in servers() {
        let runs = Arc::new(AtomicUsize::new(0));
        let runs2 = runs.clone();
        let client = Client::new(srv.addr()).unwrap();
        let a = client.submit_job(JobRequest::new("once", "a").unique("same"));
        let b = client.submit_job(JobRequest::new("once", "b").unique("same"));
        let w = Worker::new(srv.addr())
            .unwrap()
            .register("once", move |job: Job| {
                let runs = runs2.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, JobError>(job.payload().clone())
                }
            })
            .spawn()
            .unwrap();
        let (ra, rb) = tokio::join!(a, b);
        assert_eq!(ra.unwrap(), rb.unwrap(), "{}", srv.name);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{}", srv.name);
        let st = client.status_unique("same").await.unwrap();
        assert!(!st.known, "{}", srv.name);
        w.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn priorities_order_queued_jobs() {
    for srv in servers() {
        let client = Client::new(srv.addr()).unwrap();
        for (p, name) in [(Priority::Low, "low"), (Priority::Normal, "normal"), (Priority::High, "high")] {
            client.submit_background_job(JobRequest::new("prio", name).priority(p)).await.unwrap();
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let w = Worker::new(srv.addr())
            .unwrap()
            .register("prio", move |job: Job| {
                let seen = seen2.clone();
                async move {
                    seen.lock().unwrap().push(String::from_utf8_lossy(job.payload()).into_owned());
                    Ok::<_, JobError>("")
                }
            })
            .max_jobs(3)
            .spawn()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), w.wait()).await.expect("worker stops after 3 jobs").unwrap();
        assert_eq!(*seen.lock().unwrap(), vec!["high", "normal", "low"], "{}", srv.name);
    }
}

#[tokio::test]
async fn epoch_job_in_the_past_runs_and_future_one_waits() {
    for srv in servers() {
        let client = Client::new(srv.addr()).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let future = client.submit_background_job(JobRequest::new("ep", "later").at_epoch(now + 3600)).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let w = Worker::new(srv.addr())
            .unwrap()
            .register("ep", move |job: Job| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(job.payload().clone());
                    Ok::<_, JobError>("")
                }
            })
            .spawn()
            .unwrap();
        client.submit_background_job(JobRequest::new("ep", "now").at_epoch(now.saturating_sub(10))).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        assert_eq!(&got[..], b"now", "{}", srv.name);
        let st = client.status(&future).await.unwrap();
        assert!(st.known && !st.running, "{}: {st:?}", srv.name);
        w.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn echo_options_and_errors() {
    for srv in servers() {
        let client = Client::new(srv.addr()).unwrap();
        assert_eq!(&client.echo("ping").await.unwrap()[..], b"ping");
        assert_eq!(&client.echo("").await.unwrap()[..], b"");
        client.set_option("exceptions").await.unwrap();
        match client.set_option("bogus").await {
            Err(Error::Server { code, .. }) => assert_eq!(code, "UNKNOWN_OPTION", "{}", srv.name),
            other => panic!("{}: {other:?}", srv.name),
        }
        // The connection is still usable after an ERROR.
        assert_eq!(&client.echo("again").await.unwrap()[..], b"again");
        let unknown = client.status(&"H:nowhere:1".into()).await.unwrap();
        assert!(!unknown.known);
        let r = client.submit_job(JobRequest::new("nobody", "x").timeout(Duration::from_millis(300))).await;
        assert!(matches!(r, Err(Error::Timeout { .. })), "{}: {r:?}", srv.name);
        let r = client.submit(&b"bad\0name"[..], "x").await;
        assert!(matches!(r, Err(Error::InvalidArgument(_))));
    }
}

#[tokio::test]
async fn graceful_stop_finishes_the_running_job() {
    for srv in servers() {
        let w = Worker::new(srv.addr())
            .unwrap()
            .register("sleepy", |_job: Job| async move {
                tokio::time::sleep(Duration::from_millis(400)).await;
                Ok::<_, JobError>("finished")
            })
            .spawn()
            .unwrap();
        let client = Client::new(srv.addr()).unwrap();
        let pending = tokio::spawn({
            let c = client.clone();
            async move { c.submit("sleepy", "").await }
        });
        // Let the job start, then ask the worker to stop.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !srv.admin("status").contains("sleepy\t1\t1\t1") {
            assert!(Instant::now() < deadline, "{}: job never started", srv.name);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stats = w.shutdown().await.unwrap();
        assert_eq!(stats.jobs_done, 1);
        assert_eq!(&pending.await.unwrap().unwrap()[..], b"finished", "{}", srv.name);
    }
}

#[tokio::test]
async fn dead_servers_are_skipped_and_jobs_spread() {
    let list = servers();
    if list.is_empty() {
        return;
    }
    let Some(second) = sprocket_testkit::ServerProcess::gearmand(&[]) else { return };
    let first = &list[0];
    let dead = dead_addr();
    let all = format!("{},{},{}", first.addr(), dead, second.addr());
    let per_server = Arc::new(Mutex::new(std::collections::HashMap::<String, usize>::new()));
    let ps = per_server.clone();
    let w = Worker::with_options(
        all.as_str(),
        WorkerOptions { retry_initial: Duration::from_millis(50), ..WorkerOptions::default() },
    )
    .unwrap()
    .register("where", move |job: Job| {
        let ps = ps.clone();
        async move {
            *ps.lock().unwrap().entry(job.server().to_string()).or_default() += 1;
            Ok::<_, JobError>(job.server().to_string())
        }
    })
    .concurrency(4)
    .spawn()
    .unwrap();
    let client = Client::new(all.as_str()).unwrap();
    let start = Instant::now();
    let results = client.submit_batch((0..40).map(|i| JobRequest::new("where", i.to_string()))).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    let counts = per_server.lock().unwrap().clone();
    assert_eq!(counts.len(), 2, "jobs should use both live servers: {counts:?}");
    assert!(!counts.contains_key(&dead));
    w.shutdown().await.unwrap();

    // Only dead servers: a clear error, quickly.
    let nobody = Client::with_options(
        format!("{},{}", dead_addr(), dead_addr()),
        ClientOptions { connect_timeout: Duration::from_secs(1), ..Default::default() },
    )
    .unwrap();
    match nobody.submit("x", "y").await {
        Err(Error::NoServerAvailable { tried }) => assert!(tried.contains("127.0.0.1")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn worker_reconnects_after_server_restart() {
    let Some(mut g) = sprocket_testkit::ServerProcess::gearmand(&[]) else { return };
    let port = g.port;
    let w = Worker::with_options(
        g.addr(),
        WorkerOptions {
            retry_initial: Duration::from_millis(50),
            retry_max: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .unwrap()
    .register("up", |_j: Job| async { Ok::<_, JobError>("yes") })
    .spawn()
    .unwrap();
    let client = Client::new(g.addr()).unwrap();
    assert_eq!(&client.submit("up", "").await.unwrap()[..], b"yes");
    g.kill9();
    drop(g);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bin = std::path::Path::new("/usr/sbin/gearmand");
    // Never /dev/null as the pid file: gearmand deletes its pid file at exit.
    let pid_dir = tempfile::tempdir().unwrap();
    let pid_file = pid_dir.path().join("gearmand.pid").display().to_string();
    let args: Vec<String> =
        ["--port", &port.to_string(), "--listen", "127.0.0.1", "--log-file", "none", "--pid-file", &pid_file]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let _g2 = sprocket_testkit::ServerProcess::start("gearmand", bin, &args, port);
    let fresh = Client::new(format!("127.0.0.1:{port}")).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), fresh.submit("up", "")).await.expect("worker came back");
    assert_eq!(&r.unwrap()[..], b"yes");
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn can_do_timeout_registers_the_function() {
    for srv in servers() {
        let w = Worker::new(srv.addr())
            .unwrap()
            .register_with_timeout("limited", Duration::from_secs(5), |_j: Job| async { Ok::<_, JobError>("ok") })
            .client_id("rust-worker")
            .spawn()
            .unwrap();
        let client = Client::new(srv.addr()).unwrap();
        assert_eq!(&client.submit("limited", "").await.unwrap()[..], b"ok");
        let workers = srv.admin("workers");
        assert!(workers.contains("rust-worker : limited"), "{}: {workers}", srv.name);
        w.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn status_goes_to_the_server_that_owns_the_handle() {
    let list = servers();
    let Some(extra) = sprocket_testkit::ServerProcess::gearmand(&[]) else { return };
    let Some(first) = list.first() else { return };
    let both = format!("{},{}", first.addr(), extra.addr());
    let client = Client::new(both.as_str()).unwrap();
    // Round-robin spreads these over both servers; the client remembers
    // which server created each handle and asks that one.
    let mut handles = Vec::new();
    for i in 0..6 {
        handles.push(client.submit_background_job(JobRequest::new("owned", format!("{i}"))).await.unwrap());
    }
    for h in &handles {
        let st = client.status(h).await.unwrap();
        assert!(st.known, "{h} should be known through its owner");
    }
    // A fresh client does not know the owners and asks each server in turn.
    let fresh = Client::new(both.as_str()).unwrap();
    for h in &handles {
        assert!(fresh.status(h).await.unwrap().known, "{h}");
    }
    let queued: u64 = [first.admin("status"), extra.admin("status")]
        .iter()
        .filter_map(|s| {
            s.lines().find(|l| l.starts_with("owned\t")).map(|l| l.split('\t').nth(1).unwrap().parse::<u64>().unwrap())
        })
        .sum();
    assert_eq!(queued, 6);
    assert!(first.admin("status").contains("owned\t") && extra.admin("status").contains("owned\t"));
}

/// A connection found closed (the server restarted, or closed an idle
/// connection) is reopened at once: it is not a failed attempt to back off from.
#[tokio::test]
async fn requests_after_a_server_restart_reconnect_at_once() {
    let pid_dir = tempfile::tempdir().unwrap();
    for mut srv in servers() {
        let client = Client::new(srv.addr()).unwrap();
        let handle = client.submit_background("restart", "x").await.unwrap();
        assert_eq!(&client.echo("before").await.unwrap()[..], b"before");
        let mut again = common::restart(&mut srv, pid_dir.path());
        // Long enough for the connection task to see the close.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let r = client.echo("after").await;
        assert_eq!(&r.unwrap_or_else(|e| panic!("{}: echo after restart: {e}", srv.name))[..], b"after");
        let _third = common::restart(&mut again, pid_dir.path());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let st = client.status(&handle).await;
        assert!(st.is_ok(), "{}: status after restart: {st:?}", srv.name);
        let r = client.submit_background("restart", "y").await;
        assert!(r.is_ok(), "{}: submit after restart: {r:?}", srv.name);
    }
}

/// A handler that panics while building its future (before any `async`
/// block runs) still fails the job, as a panic inside the future does.
#[tokio::test]
async fn handler_panicking_before_its_future_fails_the_job() {
    for srv in servers() {
        let w = Worker::new(srv.addr())
            .unwrap()
            .register("parse", |job: Job| {
                let n: u32 = std::str::from_utf8(job.payload()).unwrap().parse().unwrap();
                async move { Ok::<_, JobError>((n * 2).to_string()) }
            })
            .spawn()
            .unwrap();
        let client = Client::new(srv.addr()).unwrap();
        let job = |p: &str| JobRequest::new("parse", p.to_string()).timeout(Duration::from_secs(20));
        let r = client.submit_job(job("not a number")).await;
        assert!(matches!(r, Err(Error::JobFailed { .. })), "{}: {r:?}", srv.name);
        // The worker goes on serving.
        assert_eq!(&client.submit_job(job("21")).await.unwrap()[..], b"42", "{}", srv.name);
        w.shutdown().await.unwrap();
    }
}

/// A worker sleeping on a connection that went silent (server host lost
/// power, a proxy dropped the server side) notices through its idle check
/// and reconnects, so new jobs run.
#[tokio::test]
async fn sleeping_worker_notices_a_silent_connection() {
    for srv in servers() {
        let proxy = common::SilentProxy::start(srv.addr()).await;
        let w = Worker::with_options(
            proxy.addr(),
            WorkerOptions {
                idle_check: Duration::from_millis(300),
                response_timeout: Duration::from_secs(1),
                retry_initial: Duration::from_millis(50),
                ..WorkerOptions::default()
            },
        )
        .unwrap()
        .register("alive", |_j: Job| async { Ok::<_, JobError>("yes") })
        .spawn()
        .unwrap();
        let client = Client::new(srv.addr()).unwrap();
        let job = || JobRequest::new("alive", "").timeout(Duration::from_secs(20));
        assert_eq!(&client.submit_job(job()).await.unwrap()[..], b"yes", "{}", srv.name);
        // Let the worker go back to sleep, then cut it off silently.
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.go_silent();
        let r = client.submit_job(job()).await;
        assert_eq!(&r.unwrap_or_else(|e| panic!("{}: job after going silent: {e}", srv.name))[..], b"yes");
        w.shutdown().await.unwrap();
    }
}

/// Sends a signal (`STOP`, `CONT`) to a server process.
fn signal(srv: &sprocket_testkit::ServerProcess, sig: &str) {
    let pid = srv.child.id().to_string();
    let ok = std::process::Command::new("kill").args([&format!("-{sig}"), &pid]).status().unwrap().success();
    assert!(ok, "kill -{sig} {pid}");
}

/// A hung server (here stopped with SIGSTOP) that times out is marked
/// failed and the request moves on to the next server; it is not asked
/// again on every other request.
#[tokio::test]
async fn a_frozen_server_is_failed_over_and_backed_off() {
    let (healthy, frozen) = (servers(), servers());
    for (good, bad) in healthy.iter().zip(&frozen) {
        let limit = Duration::from_secs(2);
        let options = ClientOptions { response_timeout: limit, ..ClientOptions::default() };
        let client = Client::with_options(format!("{},{}", good.addr(), bad.addr()), options).unwrap();
        // Connected to both while they answer.
        assert!(client.echo_all("up").await.iter().all(|(_, r)| r.is_ok()), "{}", good.name);
        signal(bad, "STOP");
        let start = Instant::now();
        let mut results = Vec::new();
        for i in 0..6 {
            results.push(client.submit_background("frozen", i.to_string()).await);
        }
        for _ in 0..4 {
            results.push(client.echo("still").await.map(|_| "echo".into()));
        }
        let took = start.elapsed();
        signal(bad, "CONT");
        assert!(results.iter().all(|r| r.is_ok()), "{}: {results:?}", good.name);
        // One timeout, maybe a second after the backoff; never one per request.
        assert!(took < limit * 4, "{}: took {took:?}", good.name);
        let queued = sprocket_testkit::status::function_status(good.port, "frozen").map(|s| s.total);
        assert_eq!(queued, Some(6), "{}: every job went to the healthy server", good.name);
    }
}

/// Two servers on one host hand out the same handles (`H:host:1` each);
/// a handle remembers the server that issued it and status asks that one.
#[tokio::test]
async fn status_of_colliding_handles_asks_the_issuing_server() {
    let (firsts, seconds) = (servers(), servers());
    for (a, b) in firsts.iter().zip(&seconds) {
        let client = Client::new(format!("{},{}", a.addr(), b.addr())).unwrap();
        // Round-robin from a fresh client: the first job goes to a, the second to b.
        let on_a = client.submit_background("collide", "a").await.unwrap();
        let on_b = client.submit_background("collide", "b").await.unwrap();
        assert_eq!(on_a.as_bytes(), on_b.as_bytes(), "{}: both servers should issue the same handle", a.name);
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let w = gated_worker(b.addr(), "collide", go_rx);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = client.status(&on_b).await.unwrap();
            if st.running && st.numerator == 6 {
                break;
            }
            assert!(Instant::now() < deadline, "{}: b's job never reported 6/10: {st:?}", a.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let st = client.status(&on_a).await.unwrap();
        assert!(st.known && !st.running && st.numerator == 0, "{}: a's job is queued, not b's: {st:?}", a.name);
        go_tx.send(true).unwrap();
        w.shutdown().await.unwrap();
    }
}

/// Two submissions of one unique on one client share a job; the server
/// sends every event once per submission, and each caller sees each event
/// exactly once, the final one included.
#[tokio::test]
async fn coalesced_submissions_on_one_connection_see_each_event_once() {
    for srv in servers() {
        let client = Client::new(srv.addr()).unwrap();
        let job = || JobRequest::new("twice", "x").unique("same-twice");
        let first = client.submit_stream(job()).await.unwrap();
        let second = client.submit_stream(job()).await.unwrap();
        assert_eq!(first.handle(), second.handle(), "{}: the submissions coalesce", srv.name);
        let w = Worker::new(srv.addr())
            .unwrap()
            .register("twice", |job: Job| async move {
                job.data("d1")?;
                job.status(1, 2)?;
                job.warning("w1")?;
                job.data("d2")?;
                Ok::<_, JobError>("done")
            })
            .spawn()
            .unwrap();
        let limit = Duration::from_secs(20);
        let (a, b) = tokio::join!(
            tokio::time::timeout(limit, first.collect::<Vec<_>>()),
            tokio::time::timeout(limit, second.collect::<Vec<_>>())
        );
        let expected = vec![
            JobEvent::Data("d1".into()),
            JobEvent::Status { numerator: 1, denominator: 2 },
            JobEvent::Warning("w1".into()),
            JobEvent::Data("d2".into()),
            JobEvent::Complete("done".into()),
        ];
        assert_eq!(a.expect("first caller finishes"), expected, "{}: first caller", srv.name);
        assert_eq!(b.expect("second caller finishes"), expected, "{}: second caller", srv.name);
        w.shutdown().await.unwrap();
    }
}

/// max_jobs holds over several servers: sessions reserve a run before
/// asking for a job, so a worker never starts more than max_jobs.
#[tokio::test]
async fn max_jobs_holds_over_several_servers() {
    let (firsts, seconds) = (servers(), servers());
    for (a, b) in firsts.iter().zip(&seconds) {
        for srv in [a, b] {
            let client = Client::new(srv.addr()).unwrap();
            for i in 0..2 {
                client.submit_background("counted", i.to_string()).await.unwrap();
            }
        }
        let runs = Arc::new(AtomicUsize::new(0));
        let seen = runs.clone();
        let w = Worker::new(format!("{},{}", a.addr(), b.addr()))
            .unwrap()
            .register("counted", move |_j: Job| {
                let runs = seen.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Long enough for the other session to grab, were it allowed to.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Ok::<_, JobError>("")
                }
            })
            .max_jobs(1)
            .concurrency(4)
            .spawn()
            .unwrap();
        let stats = tokio::time::timeout(Duration::from_secs(20), w.wait()).await.expect("worker stops").unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{}: handler runs", a.name);
        assert_eq!(stats.jobs_done, 1, "{}", a.name);
        let left: u64 = [a, b]
            .iter()
            .filter_map(|s| sprocket_testkit::status::function_status(s.port, "counted").map(|f| f.total))
            .sum();
        assert_eq!(left, 3, "{}: the other jobs stay queued", a.name);
    }
}

/// A worker for `function` whose jobs report 6/10 and then wait until `go`
/// turns true before completing with "done".
fn gated_worker(
    addr: String,
    function: &'static str,
    go_rx: tokio::sync::watch::Receiver<bool>,
) -> sprocket_client::WorkerHandle {
    Worker::new(addr)
        .unwrap()
        .register(function, move |job: Job| {
            let mut go = go_rx.clone();
            async move {
                job.status(6, 10)?;
                let _ = go.wait_for(|g| *g).await;
                Ok::<_, JobError>("done")
            }
        })
        .spawn()
        .unwrap()
}
