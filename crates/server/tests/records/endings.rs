//! How jobs end, as records and readers see it: a reader attached to a
//! queued job gets everything live once a worker runs it, and leaving does
//! not cancel the background job; a failed job replays WORK_FAIL; a job
//! whose workers are lost `--job-retries` times is recorded `dropped` with
//! each lost attempt; an ended job stays unknown to GET_STATUS, as in
//! gearmand.

use std::time::Duration;

use sprocket_proto::{Request, Response};
use sprocket_testkit::free_port;

use crate::common::Gear;
use crate::support::{
    ask, job_ended, read_result, record_json, sqlite_server, submit_bg, wait_record_state, End, Sent, Worker, LIMIT,
};

#[test]
fn readers_attached_to_a_queued_job_get_it_live_and_leaving_does_not_cancel_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(free_port(), dir.path(), &[]);
    let port = srv.port;
    let handle = submit_bg(port, "later", "q1", b"w");
    // One reader leaves before the job runs; two wait for it.
    let mut leaver = Gear::connect(port).expect("reader connects");
    leaver
        .send(&Request::SubmitJob {
            mode: sprocket_proto::SubmitMode { priority: sprocket_proto::Priority::Normal, background: false },
            function: crate::common::b("sprocket.result"),
            unique: bytes::Bytes::new(),
            data: handle.clone(),
        })
        .expect("attach");
    assert!(matches!(leaver.recv(), Ok(Response::JobCreated { .. })));
    drop(leaver);
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let handle = handle.clone();
            std::thread::spawn(move || read_result(port, &handle))
        })
        .collect();
    // Wait until exactly the two readers are attached (GET_STATUS_UNIQUE
    // counts a job's waiting clients): the leaver is gone, the job is not.
    let mut probe = Gear::connect(port).expect("probe connects");
    let mut last = None;
    let attached = sprocket_testkit::databases::wait_until(LIMIT, || {
        last = Some(probe.call(&Request::GetStatusUnique { unique: crate::common::b("q1") }).expect("status"));
        matches!(last, Some(Response::StatusResUnique { known: true, running: false, clients: 2, .. }))
    });
    assert!(attached, "two readers attached to the queued job: {last:?}");
    let sent = [Sent::Status(1, 3), Sent::Data(b"live".to_vec()), Sent::Status(3, 3)];
    let mut w = Worker::new(port, "later");
    let (h, _) = w.grab();
    assert_eq!(h, handle, "the job was not cancelled when a reader left");
    w.finish(&h, &sent, &End::Complete(b"done".to_vec()));
    for reader in readers {
        let replay = reader.join().expect("reader thread");
        assert_eq!(replay.handle, handle);
        assert_eq!(replay.statuses(), vec!["1/3", "3/3"], "live: every status");
        assert_eq!(replay.data(), vec![b"live".to_vec()]);
        assert_eq!(replay.result().as_deref(), Some(&b"done"[..]));
    }
}

#[test]
fn failed_and_dropped_jobs_are_recorded_and_replayed_as_failures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(free_port(), dir.path(), &["--job-retries", "2"]);
    let port = srv.port;

    let failed = job_ended(port, "ends", "f", &[Sent::Data(b"partial".to_vec())], &End::Fail, "failed");
    let replay = read_result(port, &failed);
    assert_eq!(replay.data(), vec![b"partial".to_vec()]);
    assert!(matches!(replay.packets.last(), Some(Response::WorkFail { .. })), "{replay:?}");

    // Two workers take the job and vanish: with --job-retries 2 it is dropped.
    let dropped = submit_bg(port, "ends", "d", b"w");
    for _ in 0..2 {
        let mut w = Worker::new(port, "ends");
        let (h, _) = w.grab();
        assert_eq!(h, dropped);
        drop(w);
        std::thread::sleep(Duration::from_millis(100));
    }
    let record = wait_record_state(port, &dropped, "dropped");
    assert_eq!(record["attempts"], 2, "{record}");
    let ends: Vec<&str> = record["attempt_log"]
        .as_array()
        .expect("attempt_log")
        .iter()
        .map(|a| a["end"].as_str().expect("each attempt ended"))
        .collect();
    assert_eq!(ends, ["worker_lost", "worker_lost"], "{record}");
    let replay = read_result(port, &dropped);
    assert!(matches!(replay.packets[..], [Response::WorkFail { .. }]), "{replay:?}");
    // Also for a client that asked for exceptions: a dropped job had none.
    let with = ask(port, "sprocket.result", &dropped, true);
    assert!(matches!(with.packets[..], [Response::WorkFail { .. }]), "{with:?}");
}

#[test]
fn an_ended_job_stays_unknown_to_get_status_as_in_gearmand() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(free_port(), dir.path(), &[]);
    let port = srv.port;
    let handle = job_ended(port, "st", "s", &[Sent::Status(5, 10)], &End::Complete(b"r".to_vec()), "complete");
    let mut c = Gear::connect(port).expect("client connects");
    match c.call(&Request::GetStatus { handle: handle.clone() }) {
        Ok(Response::StatusRes { known, running, numerator, denominator, .. }) => {
            assert_eq!((known, running, numerator, denominator), (false, false, 0, 0));
        }
        other => panic!("GET_STATUS: {other:?}"),
    }
    // While its record still says how it went.
    assert_eq!(record_json(port, &handle).expect("record")["status"]["numerator"], 5);
}

/// A background submission that joins a foreground job already running
/// (same function and unique) gets the job's handle, and so the job's
/// record is kept as a background job's would be.
#[test]
fn a_background_submission_joining_a_running_foreground_job_gets_its_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(free_port(), dir.path(), &[]);
    let port = srv.port;
    let mut fg = Gear::connect(port).expect("client connects");
    let reply = fg.call(&Request::SubmitJob {
        mode: sprocket_proto::SubmitMode { priority: sprocket_proto::Priority::Normal, background: false },
        function: crate::common::b("joined"),
        unique: crate::common::b("same"),
        data: crate::common::b("w"),
    });
    let Ok(Response::JobCreated { handle }) = reply else { panic!("foreground submit: {reply:?}") };
    let mut w = Worker::new(port, "joined");
    let (h, _) = w.grab();
    assert_eq!(h, handle);
    let bg = submit_bg(port, "joined", "same", b"w");
    assert_eq!(bg, handle, "the background submission joined the running job");
    w.finish(&h, &[Sent::Data(b"shared".to_vec())], &End::Complete(b"for both".to_vec()));
    loop {
        match fg.recv().expect("foreground answer") {
            Response::WorkComplete { data, .. } => {
                assert_eq!(&data[..], b"for both");
                break;
            }
            Response::WorkData { .. } => {}
            other => panic!("foreground client: {other:?}"),
        }
    }
    let record = wait_record_state(port, &handle, "complete");
    assert_eq!(record["result"], "for both", "{record}");
    assert_eq!(read_result(port, &handle).result().as_deref(), Some(&b"for both"[..]));
}

/// The same join, and then `kill -9` while the job runs: the background
/// submitter was acknowledged, so after the restart the job is queued
/// again under its handle and its record is there.
#[test]
fn a_background_submission_joining_a_running_foreground_job_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut srv = sqlite_server(port, dir.path(), &[]);
    let mut fg = Gear::connect(port).expect("client connects");
    let reply = fg.call(&Request::SubmitJob {
        mode: sprocket_proto::SubmitMode { priority: sprocket_proto::Priority::Normal, background: false },
        function: crate::common::b("joined_kill"),
        unique: crate::common::b("same"),
        data: crate::common::b("w"),
    });
    let Ok(Response::JobCreated { handle }) = reply else { panic!("foreground submit: {reply:?}") };
    let mut w = Worker::new(port, "joined_kill");
    assert_eq!(w.grab().0, handle);
    assert_eq!(submit_bg(port, "joined_kill", "same", b"w"), handle);
    crate::support::wait_sqlite_state(&crate::support::sqlite_file(dir.path(), port), &handle, "running");
    srv.kill9();
    drop(w);

    let srv = sqlite_server(port, dir.path(), &[]);
    let mut w = Worker::new(srv.port, "joined_kill");
    let (h, _) = w.grab();
    assert_eq!(h, handle, "the acknowledged job runs again under its handle");
    w.finish(&h, &[], &End::Complete(b"after the restart".to_vec()));
    let record = wait_record_state(srv.port, &handle, "complete");
    assert_eq!(record["attempt_log"][0]["end"], "interrupted", "{record}");
}
