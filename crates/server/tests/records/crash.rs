//! Records and `kill -9` on the default SQLite store: an ended job's record
//! is there after the restart; the end of a job is its queue row's delete
//! and its final record in one commit, so a job killed around its end is
//! either queued again or recorded as ended, never neither; and a job a
//! worker held at the kill is queued again under the same handle, its
//! record showing the interrupted attempt.

use std::collections::BTreeSet;

use bytes::Bytes;
use sprocket_testkit::free_port;

use crate::support::{
    job_ended, read_result, record_json, sqlite_file, sqlite_server, submit_bg, wait_record_state, wait_sqlite_state,
    End, Sent, Worker,
};

#[test]
fn an_ended_jobs_record_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut srv = sqlite_server(port, dir.path(), &[]);
    let sent = [Sent::Data(b"kept".to_vec()), Sent::Status(1, 1)];
    let handle = job_ended(port, "crash_end", "e1", &sent, &End::Complete(b"survived".to_vec()), "complete");
    // On disk, not only in the server's memory.
    wait_sqlite_state(&sqlite_file(dir.path(), port), &handle, "complete");
    let before = record_json(port, &handle).expect("record before the kill");
    srv.kill9();

    let srv = sqlite_server(port, dir.path(), &[]);
    let replay = read_result(srv.port, &handle);
    assert_eq!(replay.handle, handle);
    assert_eq!(replay.data(), vec![b"kept".to_vec()]);
    assert_eq!(replay.statuses(), vec!["1/1"]);
    assert_eq!(replay.result().as_deref(), Some(&b"survived"[..]));
    assert_eq!(record_json(srv.port, &handle), Some(before));
    // Handles go on from a block the first run never used: a new job's
    // handle names no earlier job.
    let fresh = submit_bg(srv.port, "crash_end", "e2", b"new");
    assert_ne!(fresh, handle);
    assert_eq!(read_result(srv.port, &handle).result().as_deref(), Some(&b"survived"[..]));
}

/// Jobs are ended as fast as a worker can, and the server is killed right
/// after the last WORK_COMPLETE left the worker: whatever the commit had
/// reached, after the restart each job is either recorded complete or
/// queued again (and then runs, and is recorded).
#[test]
fn a_job_killed_around_its_end_is_queued_again_or_recorded_never_neither() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut srv = sqlite_server(port, dir.path(), &[]);
    let handles: Vec<Bytes> = (0..40).map(|i| submit_bg(port, "crash_race", &format!("r{i}"), b"w")).collect();
    wait_sqlite_state(&sqlite_file(dir.path(), port), handles.last().expect("jobs"), "queued");
    let mut w = Worker::new(port, "crash_race");
    for _ in &handles {
        let (h, _) = w.grab();
        w.finish(&h, &[Sent::Data(b"d".to_vec())], &End::Complete(b"first run".to_vec()));
    }
    srv.kill9();

    let srv = sqlite_server(port, dir.path(), &[]);
    let mut recorded = BTreeSet::new();
    for h in &handles {
        match record_json(srv.port, h) {
            Some(r) if r["state"] == "complete" => {
                assert_eq!(r["result"], "first run");
                recorded.insert(h.clone());
            }
            Some(r) => assert_eq!(r["state"], "queued", "{r}"),
            None => panic!("job {h:?} is neither queued nor recorded after the kill"),
        }
    }
    // The rest run again under their own handles.
    let mut rerun = BTreeSet::new();
    let mut w = Worker::new(srv.port, "crash_race");
    for _ in 0..handles.len() - recorded.len() {
        let (h, _) = w.grab();
        w.finish(&h, &[], &End::Complete(b"second run".to_vec()));
        rerun.insert(h);
    }
    let all: BTreeSet<Bytes> = recorded.union(&rerun).cloned().collect();
    assert_eq!(
        all,
        handles.iter().cloned().collect(),
        "every job exactly once: recorded {recorded:?}, rerun {rerun:?}"
    );
    for h in &rerun {
        wait_record_state(srv.port, h, "complete");
    }
    println!("{} of {} jobs were recorded before the kill", recorded.len(), handles.len());
}

#[test]
fn a_job_running_at_kill_9_is_queued_again_with_its_handle_and_its_lost_attempt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut srv = sqlite_server(port, dir.path(), &[]);
    let handle = submit_bg(port, "crash_run", "held", b"work");
    // The worker takes the job and holds it (it never answers).
    let mut holder = Worker::new(port, "crash_run");
    let (held, _) = holder.grab();
    assert_eq!(held, handle);
    // The record of the start is on disk before the kill.
    wait_sqlite_state(&sqlite_file(dir.path(), port), &handle, "running");
    srv.kill9();
    drop(holder);

    let srv = sqlite_server(port, dir.path(), &[]);
    let queued = record_json(srv.port, &handle).expect("record after the restart");
    assert_eq!(queued["state"], "queued", "{queued}");
    let mut w = Worker::new(srv.port, "crash_run");
    let (again, data) = w.grab();
    assert_eq!(again, handle, "the job keeps its handle across the restart");
    assert_eq!(&data[..], b"work");
    w.finish(&again, &[Sent::Data(b"second".to_vec())], &End::Complete(b"done at last".to_vec()));
    let record = wait_record_state(srv.port, &handle, "complete");
    assert_eq!(record["attempts"], 2, "{record}");
    let log = record["attempt_log"].as_array().expect("attempt_log");
    assert_eq!(log.len(), 2, "{record}");
    assert_eq!(log[0]["end"], "interrupted", "{record}");
    assert_eq!(log[1]["end"], "completed", "{record}");
    assert_eq!(record["result"], "done at last");
    assert_eq!(read_result(srv.port, &handle).result().as_deref(), Some(&b"done at last"[..]));
}

/// A record whose job's queue row is gone (here deleted by hand, as an
/// operator's SQL or an insert reported failed that landed after all would
/// leave it) is ended as `dropped` at the next start, so that it expires
/// like any other instead of naming a queued job for ever.
#[test]
fn a_queued_record_without_its_row_is_ended_as_dropped_at_the_next_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut srv = sqlite_server(port, dir.path(), &[]);
    let handle = submit_bg(port, "orphan", "o1", b"w");
    let file = sqlite_file(dir.path(), port);
    wait_sqlite_state(&file, &handle, "queued");
    srv.kill9();
    let out = sprocket_testkit::process::run(
        std::process::Command::new("sqlite3")
            .arg(&file)
            .arg("PRAGMA busy_timeout=5000; DELETE FROM gearman_queue WHERE function_name = 'orphan'"),
        b"",
        std::time::Duration::from_secs(20),
    );
    assert!(out.success(), "sqlite3: {}", out.describe());
    let srv = sqlite_server(port, dir.path(), &[]);
    wait_sqlite_state(&file, &handle, "dropped");
    let record = record_json(srv.port, &handle).expect("the record is kept");
    assert_eq!(record["state"], "dropped");
}
