//! The default durable store: background jobs that got JOB_CREATED survive
//! `kill -9` and a restart.

use crate::{common, store_support};

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::{b, sprocketd, Gear};
use sprocket_proto::{Request, Response};
use sprocket_testkit::ServerProcess;
use store_support::{load_then_kill, run_all_queued};

/// Starts sprocketd with its default durable store in `data_dir`, on
/// `port` (the default store keeps one queue file per port).
fn start_on(port: u16, data_dir: &Path, extra: &[&str]) -> ServerProcess {
    let mut args: Vec<String> = ["--queue-type=sqlite", "--data-dir", data_dir.to_str().unwrap(), "-L", "127.0.0.1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--port".to_string(), port.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    ServerProcess::start("sprocketd", sprocketd(), &args, port)
}

fn start(data_dir: &Path, extra: &[&str]) -> ServerProcess {
    start_on(sprocket_testkit::free_port(), data_dir, extra)
}

/// Runs every queued job of `f` once, returning the uniques seen.
fn drain(port: u16, f: &str) -> Vec<String> {
    run_all_queued(port, &[f]).into_iter().map(|r| r.unique).collect()
}

#[test]
fn default_store_keeps_background_jobs_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path(), &[]);
    let mut c = Gear::connect(s.port).unwrap();
    for i in 0..20 {
        assert!(matches!(
            c.submit_bg("keep", &format!("k{i}"), &format!("data{i}")).unwrap(),
            Response::JobCreated { .. }
        ));
    }
    // A foreground job is never written.
    c.send(&Request::SubmitJob {
        mode: sprocket_proto::SubmitMode { priority: sprocket_proto::Priority::Normal, background: false },
        function: b("keep"),
        unique: b("fg"),
        data: b("x"),
    })
    .unwrap();
    assert!(matches!(c.recv().unwrap(), Response::JobCreated { .. }));
    let port = s.port;
    s.kill9();
    assert!(dir.path().join(format!("sprocket-{port}.db")).exists(), "default store file in --data-dir");

    let mut s2 = start_on(port, dir.path(), &[]);
    assert_eq!(s2.admin("status"), "keep\t20\t0\t0\n.\n");
    let mut seen = drain(s2.port, "keep");
    seen.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    want.sort();
    assert_eq!(seen, want);
    // SIGTERM flushes the pending deletes before exiting.
    assert_eq!(s2.terminate(Duration::from_secs(10)), Some(0));
    // Completed jobs are deleted: a third start finds nothing.
    let s3 = start_on(port, dir.path(), &[]);
    assert_eq!(s3.admin("status"), ".\n");
}

/// A background job submitted with unique `-` (which coalesces on equal
/// data) is stored under a generated key, as two of them would otherwise
/// share one row; after a restart it is a `-` job again: a new `-`
/// submission with its data joins it, and its worker sees the `-`.
#[test]
fn dash_jobs_still_coalesce_on_their_data_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path(), &[]);
    let mut c = Gear::connect(s.port).unwrap();
    for data in ["same data", "other data"] {
        assert!(matches!(c.submit_bg("dash", "-", data).unwrap(), Response::JobCreated { .. }));
    }
    let port = s.port;
    s.kill9();

    let s2 = start_on(port, dir.path(), &[]);
    let mut c = Gear::connect(s2.port).unwrap();
    for data in ["same data", "other data"] {
        assert!(matches!(c.submit_bg("dash", "-", data).unwrap(), Response::JobCreated { .. }));
    }
    assert_eq!(s2.admin("status"), "dash\t2\t0\t0\n.\n", "both joined the replayed jobs");
    let mut seen = run_all_queued(s2.port, &["dash"]);
    seen.sort_by(|a, b| a.data.cmp(&b.data));
    let got: Vec<(&str, &[u8])> = seen.iter().map(|r| (r.unique.as_str(), &r.data[..])).collect();
    assert_eq!(got, vec![("-", &b"other data"[..]), ("-", &b"same data"[..])]);
}

#[test]
fn builtin_queue_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ServerProcess::sprocketd(sprocketd(), &["-q", "builtin", "--data-dir", dir.path().to_str().unwrap()]);
    let mut c = Gear::connect(s.port).unwrap();
    assert!(matches!(c.submit_bg("gone", "u", "d").unwrap(), Response::JobCreated { .. }));
    s.kill9();
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(files.is_empty(), "nothing written: {files:?}");
}

/// Under a load of background submits, kill -9 the server, restart it and
/// check that every acknowledged job runs at least once.
fn crash_under_load(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path(), extra);
    let port = s.port;
    let acked = load_then_kill(port, "load", 4, Duration::from_millis(1500), || s.kill9()).acked;
    assert!(acked.len() > 100, "load too small to mean anything: {}", acked.len());

    let s2 = start_on(port, dir.path(), extra);
    let seen = drain(s2.port, "load");
    let seen_set: HashSet<String> = seen.iter().cloned().collect();
    let lost: Vec<_> = acked.difference(&seen_set).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged jobs lost, e.g. {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    let unacked_but_stored = seen_set.difference(&acked).count();
    println!(
        "crash test {extra:?}: {} acknowledged, {} replayed, {} stored but unacknowledged (at-least-once duplicates)",
        acked.len(),
        seen.len(),
        unacked_but_stored
    );
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_job_sync_full() {
    crash_under_load(&[]);
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_job_sync_normal() {
    crash_under_load(&["--sync=normal"]);
}

#[test]
fn servers_on_different_ports_keep_separate_default_queues() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = start(dir.path(), &[]);
    let b = start(dir.path(), &[]);
    let mut c = Gear::connect(a.port).unwrap();
    assert!(matches!(c.submit_bg("mine", "a1", "x").unwrap(), Response::JobCreated { .. }));
    assert_eq!(b.admin("status"), ".\n");
    let port = a.port;
    a.kill9();
    let a2 = start_on(port, dir.path(), &[]);
    assert_eq!(a2.admin("status"), "mine\t1\t0\t0\n.\n");
    assert_eq!(b.admin("status"), ".\n");
}

/// A worker's WORK_COMPLETE that reached the server's socket just before a
/// SIGTERM is acted on: its job's row is deleted, so the job does not run
/// again after the restart. The server is stopped (SIGSTOP) while the
/// result and the signal arrive, so both are waiting when it resumes.
#[test]
fn a_result_sent_just_before_sigterm_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path(), &[]);
    let port = s.port;
    let mut c = Gear::connect(port).unwrap();
    for i in 0..3 {
        assert!(matches!(c.submit_bg("last", &format!("l{i}"), "x").unwrap(), Response::JobCreated { .. }));
    }
    let mut w = Gear::connect(port).unwrap();
    w.send(&Request::CanDo { function: b("last") }).unwrap();
    let handle = match w.call(&Request::GrabJobUniq).unwrap() {
        Response::JobAssignUniq { handle, .. } => handle,
        other => panic!("expected a job, got {other:?}"),
    };
    let pid = s.child.id().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill").args([sig, &pid]).status().map(|st| st.success());
        assert!(matches!(ok, Ok(true)), "kill {sig} {pid}");
    };
    signal("-STOP");
    w.send(&Request::WorkComplete { handle, data: b("done") }).unwrap();
    signal("-TERM");
    signal("-CONT");
    let mut exited = None;
    for _ in 0..500 {
        if let Ok(Some(st)) = s.child.try_wait() {
            exited = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(exited.is_some_and(|st| st.success()), "clean exit on SIGTERM: {exited:?}");
    let s2 = start_on(port, dir.path(), &[]);
    assert_eq!(s2.admin("status"), "last\t2\t0\t0\n.\n", "the completed job came back");
}

/// A stored epoch job that is already due when the server restarts is
/// handed out in its place in the queue, not after every job replayed
/// behind it (the clock was 0 while the store replayed).
#[test]
fn a_due_epoch_job_keeps_its_place_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path(), &[]);
    let port = s.port;
    let mut c = Gear::connect(port).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(matches!(c.submit_bg("order", "first", "1").unwrap(), Response::JobCreated { .. }));
    c.send(&Request::SubmitJobEpoch {
        function: b("order"),
        unique: b("due"),
        epoch: b(&(now - 10).to_string()),
        data: b("2"),
    })
    .unwrap();
    assert!(matches!(c.recv().unwrap(), Response::JobCreated { .. }));
    for u in ["third", "fourth"] {
        assert!(matches!(c.submit_bg("order", u, "x").unwrap(), Response::JobCreated { .. }));
    }
    s.kill9();
    let s2 = start_on(port, dir.path(), &[]);
    assert_eq!(drain(s2.port, "order"), ["first", "due", "third", "fourth"]);
}
