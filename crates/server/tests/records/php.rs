//! Seed 004 ("Playing with Gearman") with php-gearman, as its author asked:
//! a background worker's `sendData()` and `sendStatus()` are no longer
//! dropped. A separate, later PHP process reads them, and the result, with
//! `setDataCallback`, `setStatusCallback`, `setCompleteCallback`,
//! `addTask('sprocket.result', $handle)` and `runTasks()`; and a reader
//! that attaches while the job still runs gets everything live.

use std::process::Command;

use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::{wait_for_workers, wait_until_drained};
use sprocket_testkit::{interop_dir, require_php_gearman};

use crate::support::{sqlite_server, wait_record_state, LIMIT};

/// The seed-004-style PHP worker for `function`, sleeping `sleep_ms` at
/// the start of each job; returns once it has registered.
pub fn php_worker(port: u16, function: &str, sleep_ms: u32) -> Background {
    let mut cmd = Command::new("php");
    cmd.arg(interop_dir().join("php/records_worker.php")).args([
        "127.0.0.1",
        &port.to_string(),
        function,
        &sleep_ms.to_string(),
    ]);
    let worker = Background::spawn("php records_worker.php", &mut cmd);
    wait_for_workers(port, function, 1);
    worker
}

/// A background job submitted by a PHP process of its own
/// (addTaskBackground + runTasks); its handle.
pub fn php_submit(port: u16, function: &str, workload: &str) -> String {
    let mut cmd = Command::new("php");
    cmd.arg(interop_dir().join("php/records_submit.php")).args(["127.0.0.1", &port.to_string(), function, workload]);
    let out = run(&mut cmd, b"", LIMIT);
    assert!(out.success(), "php background submit: {}", out.describe());
    let text = out.stdout_text();
    text.lines()
        .find_map(|l| l.strip_prefix("HANDLE "))
        .unwrap_or_else(|| panic!("no handle printed: {}", out.describe()))
        .to_string()
}

/// What the PHP reader's callbacks saw, one line each, for `handle`.
pub fn php_read(port: u16, handle: &str) -> Vec<String> {
    let mut cmd = Command::new("php");
    cmd.arg(interop_dir().join("php/records_read.php")).args(["127.0.0.1", &port.to_string(), handle]);
    let out = run(&mut cmd, b"", LIMIT);
    assert!(out.success(), "php sprocket.result reader: {}", out.describe());
    out.stdout_text().lines().map(str::to_string).collect()
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn seed004_php_reads_a_background_jobs_data_status_and_result_later() {
    if !require_php_gearman() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(sprocket_testkit::free_port(), dir.path(), &[]);
    let mut worker = php_worker(srv.port, "reverse", 0);
    let handle = php_submit(srv.port, "reverse", "Rasmus");
    wait_until_drained(srv.port, "reverse");
    wait_record_state(srv.port, handle.as_bytes(), "complete");
    // The worker is gone: what the reader gets can only come from the record.
    worker.stop();

    let seen = php_read(srv.port, &handle);
    // A replay gives the chunks in arrival order, then the last status,
    // then the result, all under the job's own handle.
    assert_eq!(
        seen,
        lines(&[
            &format!("CREATED {handle}"),
            "DATA chunk one",
            "WARNING careful",
            "DATA chunk two",
            "STATUS 2/2",
            "COMPLETE sumsaR",
            "DONE",
        ]),
        "worker output:\n{}",
        worker.output()
    );
    // Reading does not use the record up: a second reader gets the same.
    assert_eq!(php_read(srv.port, &handle), seen);
}

#[test]
fn seed004_php_attaches_to_a_running_background_job_and_gets_it_live() {
    if !require_php_gearman() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(sprocket_testkit::free_port(), dir.path(), &[]);
    // The worker sleeps 2 s before its first packet: the reader attaches
    // meanwhile.
    let mut worker = php_worker(srv.port, "reverse_slow", 2000);
    let handle = php_submit(srv.port, "reverse_slow", "ABC123");
    worker.wait_for_line(&format!("JOB {handle}"), LIMIT);
    let seen = php_read(srv.port, &handle);
    let output = worker.output();
    // Live: every status, not only the last one a replay would give.
    assert_eq!(
        seen,
        lines(&[
            &format!("CREATED {handle}"),
            "DATA chunk one",
            "STATUS 1/2",
            "WARNING careful",
            "DATA chunk two",
            "STATUS 2/2",
            "COMPLETE 321CBA",
            "DONE",
        ]),
        "worker output:\n{output}"
    );
}
