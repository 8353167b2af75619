//! Which jobs get a record (`--records=none|background|all`), and the
//! in-memory records of `-q builtin`, bounded by `--record-max-count`.

use std::process::Command;

use bytes::Bytes;
use sprocket_proto::{Priority, Request, Response, SubmitMode};
use sprocket_testkit::free_port;
use sprocket_testkit::process::run;
use sprocket_testkit::status::wait_until_drained;

use crate::common::{b, Gear};
use crate::support::{
    ask, builtin_server, job_ended, read_result, record_json, sqlite_file, sqlite_server, submit_bg, wait_record_state,
    work_one, End, Sent, Worker, LIMIT,
};

/// A foreground job of `function` run by a worker thread; its handle once
/// the client got WORK_COMPLETE.
fn foreground_job(port: u16, function: &'static str) -> Bytes {
    let worker = std::thread::spawn(move || {
        let mut w = Worker::new(port, function);
        let (handle, _) = w.grab();
        w.finish(&handle, &[Sent::Data(b"fg data".to_vec())], &End::Complete(b"fg result".to_vec()));
    });
    let mut c = Gear::connect(port).expect("client connects");
    let reply = c.call(&Request::SubmitJob {
        mode: SubmitMode { priority: Priority::Normal, background: false },
        function: b(function),
        unique: b("fg"),
        data: b("x"),
    });
    let Ok(Response::JobCreated { handle }) = reply else { panic!("foreground submit: {reply:?}") };
    loop {
        match c.recv().expect("foreground answer") {
            Response::WorkComplete { data, .. } => {
                assert_eq!(&data[..], b"fg result");
                break;
            }
            Response::WorkData { .. } => {}
            other => panic!("foreground job: {other:?}"),
        }
    }
    worker.join().expect("worker thread");
    handle
}

#[test]
fn records_none_keeps_no_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let srv = sqlite_server(port, dir.path(), &["--records=none"]);
    let handle = submit_bg(port, "none", "n", b"w");
    assert_eq!(work_one(port, "none", &[Sent::Data(b"d".to_vec())], &End::Complete(b"r".to_vec())), handle);
    wait_until_drained(port, "none");
    let replay = read_result(srv.port, &handle);
    assert!(matches!(replay.packets[..], [Response::WorkFail { .. }]), "{replay:?}");
    assert_eq!(replay.handle, handle, "the failure names the handle asked for");
    match ask(port, "sprocket.result", &handle, true).packets.last() {
        Some(Response::WorkException { data, .. }) => assert_eq!(&data[..], b"unknown job"),
        other => panic!("sprocket.result with exceptions: {other:?}"),
    }
    assert_eq!(record_json(port, &handle), None);
    let out = run(
        Command::new("sqlite3").arg(sqlite_file(dir.path(), port)).arg("SELECT COUNT(*) FROM sprocket_records"),
        b"",
        LIMIT,
    );
    // The table may exist (the schema is the same); it holds nothing.
    if out.success() {
        assert_eq!(out.stdout_text().trim(), "0", "{}", out.describe());
    }
}

#[test]
fn records_all_keeps_foreground_jobs_too_and_background_does_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(free_port(), dir.path(), &["--records=all"]);
    let handle = foreground_job(srv.port, "fg_all");
    let record = wait_record_state(srv.port, &handle, "complete");
    assert_eq!(record["background"], false, "{record}");
    assert_eq!(record["result"], "fg result");
    let replay = read_result(srv.port, &handle);
    assert_eq!(replay.data(), vec![b"fg data".to_vec()]);
    assert_eq!(replay.result().as_deref(), Some(&b"fg result"[..]));

    // The default, `background`: no record of a foreground job.
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(free_port(), dir.path(), &[]);
    let handle = foreground_job(srv.port, "fg_default");
    assert_eq!(record_json(srv.port, &handle), None);
    assert!(read_result(srv.port, &handle).result().is_none());
}

#[test]
fn builtin_queue_keeps_records_in_memory_bounded_by_max_count() {
    let srv = builtin_server(&["--record-max-count", "2"]);
    let port = srv.port;
    let handles: Vec<Bytes> = (0..3u32)
        .map(|i| {
            let result = format!("result {i}").into_bytes();
            job_ended(port, "mem", &format!("m{i}"), &[Sent::Status(i, 3)], &End::Complete(result), "complete")
        })
        .collect();
    assert!(read_result(port, &handles[0]).result().is_none(), "the oldest of 3 records is dropped at 2");
    assert_eq!(record_json(port, &handles[0]), None);
    for (i, h) in handles.iter().enumerate().skip(1) {
        let replay = read_result(port, h);
        assert_eq!(replay.result(), Some(format!("result {i}").into_bytes()));
        assert_eq!(replay.statuses(), vec![format!("{i}/3")]);
    }
    let found = ask(port, "sprocket.records", br#"{"function":"mem"}"#, false).result().expect("search result");
    let found: serde_json::Value = serde_json::from_slice(&found).expect("JSON array");
    let mut listed: Vec<&str> = found.as_array().expect("array").iter().filter_map(|r| r["handle"].as_str()).collect();
    listed.sort();
    let mut want: Vec<String> = handles[1..].iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect();
    want.sort();
    assert_eq!(listed, want);
}
