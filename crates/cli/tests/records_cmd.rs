//! `sprocket record`, `sprocket records` and `sprocket wait` against the
//! real sprocketd (gearmand keeps no records, so these run on sprocketd
//! only), with workers from the client library.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{sprocket, wait_workers, LIMIT};
use sprocket_client::{Job, JobError, Record, RecordState, Worker, WorkerHandle};
use sprocket_testkit::process::{run, RunOutput};
use sprocket_testkit::ServerProcess;

fn sp(args: &[&str]) -> RunOutput {
    let mut cmd = Command::new(sprocket());
    cmd.args(args).env_remove("GEARMAN_SERVER");
    run(&mut cmd, b"", LIMIT)
}

fn code(out: &RunOutput) -> Option<i32> {
    out.status.and_then(|s| s.code())
}

/// A fresh sprocketd, or `None` (reported as SKIPPED) when it is not built.
fn sprocketd() -> Option<ServerProcess> {
    match common::sprocketd_bin() {
        Some(bin) => Some(ServerProcess::sprocketd(&bin, &[])),
        None => {
            sprocket_testkit::skip("sprocketd not built (build sprocket-server or set SPROCKETD_BIN)");
            None
        }
    }
}

/// Workers for `report` (data, a warning, status, bytes that are not
/// UTF-8, then a result), `fails` (WORK_FAIL) and `throws`
/// (WORK_EXCEPTION), on their own runtime, kept alive with it.
struct Workers {
    handle: Option<WorkerHandle>,
    rt: tokio::runtime::Runtime,
}

impl Workers {
    fn start(srv: &ServerProcess) -> Workers {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let addr = srv.addr();
        let handle = rt.block_on(async move {
            Worker::new(addr.as_str())
                .expect("worker")
                .register("report", |job: Job| async move {
                    job.data("one")?;
                    job.warning("careful")?;
                    job.status(1, 2)?;
                    job.data(&b"\xff\x00"[..])?;
                    job.status(2, 2)?;
                    Ok::<_, JobError>(bytes::Bytes::from_static(b"done\xff"))
                })
                .register("fails", |_job: Job| async move { Err::<&str, _>(JobError::Fail) })
                .register("throws", |_job: Job| async move { Err::<&str, _>(JobError::exception("disk\non fire")) })
                .spawn()
                .expect("spawn the workers")
        });
        for function in ["report", "fails", "throws"] {
            wait_workers(srv, function, 1);
        }
        Workers { handle: Some(handle), rt }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = self.rt.block_on(handle.shutdown());
        }
    }
}

/// Submits a background job with `sprocket submit -b` and returns its handle.
fn submit_background(addr: &str, function: &str) -> String {
    let out = sp(&["submit", "-s", addr, "-b", function, "payload"]);
    assert!(out.success(), "{}", out.describe());
    let handle = out.stdout_text().trim().to_owned();
    assert!(handle.starts_with("H:"), "{}", out.describe());
    handle
}

/// Waits until `sprocket record --json` shows the job ended; returns the record.
fn ended(addr: &str, handle: &str) -> Record {
    let start = Instant::now();
    loop {
        let out = sp(&["record", "-s", addr, "--json", handle]);
        if out.success() {
            let record: Record = serde_json::from_slice(&out.stdout).expect("the JSON form of a record");
            if record.state().is_final() {
                return record;
            }
        }
        assert!(start.elapsed() < LIMIT, "job {handle} did not end: {}", out.describe());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn record_shows_an_ended_job_as_escaped_text_and_as_json() {
    let Some(srv) = sprocketd() else { return };
    let addr = srv.addr();
    let _workers = Workers::start(&srv);
    let handle = submit_background(&addr, "report");
    let record = ended(&addr, &handle);
    assert_eq!(record.state(), RecordState::Complete);
    assert_eq!(record.result(), Some(&b"done\xff"[..]));

    let out = sp(&["record", "-s", &addr, &handle]);
    assert!(out.success(), "{}", out.describe());
    let text = out.stdout_text();
    for line in [
        format!("handle      {handle}\n"),
        "function    report\n".to_owned(),
        "state       complete\n".to_owned(),
        "attempts    1\n".to_owned(),
        "background  yes\n".to_owned(),
        "status      2/2\n".to_owned(),
        "result      \"done\\xff\"\n".to_owned(),
        "error       -\n".to_owned(),
        "data        \"one\"\nwarnings    \"careful\"\ndata        \"\\xff\\0\"\n".to_owned(),
    ] {
        assert!(text.contains(&line), "{line:?} missing in\n{text}");
    }
    for key in ["unique", "submitted", "started", "finished"] {
        let line = text.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in\n{text}"));
        assert!(!line.ends_with(" -"), "{line}");
    }

    // JSON: the record's serde form, bytes that are not UTF-8 in base64.
    let out = sp(&["record", "-s", &addr, "--json", &handle]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["handle"], handle.as_str());
    assert_eq!(json["state"], "complete");
    assert_eq!(json["result"], serde_json::Value::Null);
    assert_eq!(json["result_base64"], "ZG9uZf8=");
    assert_eq!(json["data"][1]["value_base64"], "/wA=");
    assert_eq!(json["warnings"][0]["value"], "careful");
    assert_eq!(json["attempts"], 1);

    // Unknown handles: a message naming the handle, exit status 1.
    for args in [vec!["record", "-s", &addr, "H:nowhere:99"], vec!["record", "-s", &addr, "--json", "H:nowhere:99"]] {
        let out = sp(&args);
        assert_eq!(code(&out), Some(1), "{}", out.describe());
        assert!(out.stderr_text().contains("no record of job H:nowhere:99"), "{}", out.describe());
        assert!(out.stdout.is_empty(), "{}", out.describe());
    }
}

#[test]
fn records_lists_ended_jobs_by_function_state_age_and_limit() {
    let Some(srv) = sprocketd() else { return };
    let addr = srv.addr();
    let _workers = Workers::start(&srv);
    let handles: Vec<String> = ["report", "fails", "throws", "report"]
        .iter()
        .map(|function| {
            let handle = submit_background(&addr, function);
            ended(&addr, &handle);
            handle
        })
        .collect();

    // With a durable store the listing is read from the store, where a
    // job's final record lands with the next group commit: a moment after
    // `record` (answered from the server's memory) shows the end.
    let start = Instant::now();
    let out = loop {
        let out = sp(&["records", "-s", &addr]);
        assert!(out.success(), "{}", out.describe());
        if out.stdout_text().lines().count() > handles.len() || start.elapsed() > LIMIT {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "a header and one line per record:\n{text}");
    assert!(lines[0].starts_with("HANDLE") && lines[0].contains("FINISHED"), "{text}");
    let listed: Vec<&str> = lines[1..].iter().map(|l| l.split_whitespace().next().unwrap_or("")).collect();
    let newest_first: Vec<&str> = handles.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first, "{text}");
    let fields: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&fields[1..4], ["throws", "exception", "1"], "{text}");

    let json = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["records", "-s", &addr, "--json"];
        all.extend_from_slice(args);
        let out = sp(&all);
        assert!(out.success(), "{}", out.describe());
        serde_json::from_slice(&out.stdout).expect("a JSON array")
    };
    let reports = json(&["--function", "report"]);
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r["function"] == "report" && r["state"] == "complete"));
    let failed = json(&["--state", "failed"]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["handle"], handles[1].as_str());
    let thrown = json(&["--state", "exception", "--since", "1h"]);
    assert_eq!(thrown[0]["error"], "disk\non fire");
    assert_eq!(json(&["--limit", "1"])[0]["handle"], handles[3].as_str());
    assert!(json(&["--function", "nobody"]).is_empty());
    // Every record in the JSON array reads back as a record.
    let out = sp(&["records", "-s", &addr, "--json"]);
    let records: Vec<Record> = serde_json::from_slice(&out.stdout).expect("records");
    assert_eq!(records.len(), 4);
}

#[test]
fn bad_arguments_are_usage_errors_with_a_clear_message() {
    // Refused before any server is asked, so no server is needed.
    let cases: [(&[&str], &str); 5] = [
        (&["records", "--since", "5x"], "\"5x\" is not a duration"),
        (&["records", "--since", "0s"], "is zero"),
        (&["records", "--state", "done"], "unknown job state \"done\""),
        (&["records", "--state", "running"], "records lists ended jobs only"),
        (&["wait", "--timeout", "soon", "H:x:1"], "\"soon\" is not a duration"),
    ];
    for (args, message) in cases {
        let out = sp(args);
        assert_eq!(code(&out), Some(2), "{args:?}: {}", out.describe());
        assert!(out.stderr_text().contains(message), "{args:?}: {}", out.describe());
    }
    let out = sp(&["records", "--limit", "10001"]);
    assert_eq!(code(&out), Some(2), "{}", out.describe());
    // The help lists wait's exit statuses.
    let out = sp(&["wait", "--help"]);
    assert!(out.stdout_text().contains("3  --timeout passed before the job ended"), "{}", out.describe());
}

#[test]
fn wait_prints_data_then_the_result_and_exits_by_outcome() {
    let Some(srv) = sprocketd() else { return };
    let addr = srv.addr();
    let _workers = Workers::start(&srv);

    // Complete: WORK_DATA then the result on stdout, raw; warnings on stderr.
    let handle = submit_background(&addr, "report");
    ended(&addr, &handle);
    let out = sp(&["wait", "-s", &addr, "--progress", "none", &handle]);
    assert_eq!(code(&out), Some(0), "{}", out.describe());
    assert_eq!(out.stdout, b"one\xff\x00done\xff");
    assert_eq!(out.stderr_text(), "warning: careful\n");

    let handle = submit_background(&addr, "fails");
    ended(&addr, &handle);
    let out = sp(&["wait", "-s", &addr, &handle]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains(&format!("job {handle} failed")), "{}", out.describe());

    let handle = submit_background(&addr, "throws");
    ended(&addr, &handle);
    let out = sp(&["wait", "-s", &addr, &handle]);
    assert_eq!(code(&out), Some(2), "{}", out.describe());
    assert!(out.stderr_text().contains("ended with an exception: disk\\non fire"), "{}", out.describe());
    assert!(out.stdout.is_empty(), "{}", out.describe());

    let out = sp(&["wait", "-s", &addr, "H:nowhere:77"]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains("no job H:nowhere:77"), "{}", out.describe());
}

#[test]
fn wait_follows_a_queued_job_gives_up_on_timeout_and_names_a_cancelled_one() {
    let Some(srv) = sprocketd() else { return };
    let addr = srv.addr();

    // Nobody serves `report` yet: the wait times out, and the job goes on.
    let handle = submit_background(&addr, "report");
    let started = Instant::now();
    let out = sp(&["wait", "-s", &addr, "--timeout", "300ms", &handle]);
    assert_eq!(code(&out), Some(3), "{}", out.describe());
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(out.stderr_text().contains("stopped waiting"), "{}", out.describe());

    // A wait started while the job is queued gets its result once a worker comes.
    let waiting = {
        let addr = addr.clone();
        let handle = handle.clone();
        std::thread::spawn(move || sp(&["wait", "-s", &addr, "--progress", "none", &handle]))
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiting.is_finished(), "the wait must not end before the job");
    let workers = Workers::start(&srv);
    let out = waiting.join().expect("the waiting thread");
    assert_eq!(code(&out), Some(0), "{}", out.describe());
    assert_eq!(out.stdout, b"one\xff\x00done\xff");
    drop(workers);

    // A queued job cancelled by an operator.
    let handle = submit_background(&addr, "nobody");
    let out = sp(&["admin", "-s", &addr, "cancel", &handle]);
    assert!(out.success(), "{}", out.describe());
    let out = sp(&["wait", "-s", &addr, &handle]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains(&format!("job {handle} was cancelled")), "{}", out.describe());

    // No server: status 4, not a job outcome.
    let nowhere = format!("127.0.0.1:{}", sprocket_testkit::free_port());
    let out = sp(&["wait", "-s", &nowhere, &handle]);
    assert_eq!(code(&out), Some(4), "{}", out.describe());
}
