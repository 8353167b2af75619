//! The same read of an ended background job's record from the other
//! third-party clients, unchanged: Perl's Gearman::Client (`do_task` with
//! `on_data` / `on_status`), pygearman (`submit_job`) and Debian's
//! `gearman -f sprocket.result <handle>`; and `gearman -f sprocket.record
//! <handle>` printing the record as JSON.

use std::process::Command;

use bytes::Bytes;
use sprocket_testkit::process::run;
use sprocket_testkit::{interop_dir, require_tool, ServerProcess};

use crate::support::{job_ended, sqlite_server, text, End, Sent, LIMIT};

/// A server on the default SQLite store with one ended job of `function`:
/// data "part one" and "part two", status 3/4, result "the result".
fn server_with_ended_job(dir: &std::path::Path, function: &str) -> (ServerProcess, Bytes) {
    let srv = sqlite_server(sprocket_testkit::free_port(), dir, &[]);
    let sent = [Sent::Data(b"part one".to_vec()), Sent::Status(3, 4), Sent::Data(b"part two".to_vec())];
    let handle = job_ended(srv.port, function, "u1", &sent, &End::Complete(b"the result".to_vec()), "complete");
    (srv, handle)
}

fn python_ready() -> bool {
    if !require_tool("python3") {
        return false;
    }
    let out = run(Command::new("python3").args(["-c", "import gearman"]), b"", LIMIT);
    if !out.success() {
        sprocket_testkit::skip("python module gearman (pip install pygearman) not installed");
        return false;
    }
    true
}

#[test]
fn perl_gearman_client_do_task_on_sprocket_result() {
    if !sprocket_testkit::require_perl_gearman() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (srv, handle) = server_with_ended_job(dir.path(), "perl_read");
    let mut cmd = Command::new("perl");
    cmd.arg(interop_dir().join("perl/result.pl")).args([srv.addr(), text(&handle)]);
    let out = run(&mut cmd, b"", LIMIT);
    assert!(out.success(), "perl result.pl: {}", out.describe());
    assert_eq!(out.stdout_text(), "DATA part one\nDATA part two\nSTATUS 3/4\nCOMPLETE the result\n");

    // An unknown handle: do_task fails.
    let mut cmd = Command::new("perl");
    cmd.arg(interop_dir().join("perl/result.pl")).args([srv.addr(), "H:nohost:424242".to_string()]);
    let out = run(&mut cmd, b"", LIMIT);
    assert!(out.success(), "perl result.pl: {}", out.describe());
    assert_eq!(out.stdout_text(), "FAIL\n");
}

#[test]
fn pygearman_submit_job_on_sprocket_result() {
    if !python_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (srv, handle) = server_with_ended_job(dir.path(), "py_read");
    let mut cmd = Command::new("python3");
    cmd.arg(interop_dir().join("python/result.py")).args([srv.addr(), text(&handle)]);
    let out = run(&mut cmd, b"", LIMIT);
    assert!(out.success(), "python result.py: {}", out.describe());
    assert_eq!(out.stdout_text(), "DATA part one\nDATA part two\nSTATUS 3/4\nCOMPLETE the result\n");

    let mut cmd = Command::new("python3");
    cmd.arg(interop_dir().join("python/result.py")).args([srv.addr(), "H:nohost:424242".to_string()]);
    let out = run(&mut cmd, b"", LIMIT);
    assert!(out.success(), "python result.py: {}", out.describe());
    assert_eq!(out.stdout_text(), "STATE FAILED\n");
}

/// `gearman -h 127.0.0.1 -p PORT args…`
fn gearman(port: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new("gearman");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args);
    cmd
}

#[test]
fn gearman_cli_reads_sprocket_result_and_sprocket_record() {
    if !require_tool("gearman") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(sprocket_testkit::free_port(), dir.path(), &[]);
    // A job with a result only: stdout is the result.
    let plain = job_ended(srv.port, "cli_read", "plain", &[], &End::Complete(b"sumsaR".to_vec()), "complete");
    let out = run(&mut gearman(srv.port, &["-f", "sprocket.result", &text(&plain)]), b"", LIMIT);
    assert!(out.success(), "gearman -f sprocket.result: {}", out.describe());
    // The CLI writes the result as it came, without a line break.
    assert_eq!(out.stdout_text(), "sumsaR", "{}", out.describe());

    // With data chunks and a status: the CLI prints them as it does for a
    // live job (the data, the percentage), then the result.
    let sent = [Sent::Data(b"part one;".to_vec()), Sent::Status(1, 2)];
    let full = job_ended(srv.port, "cli_read", "full", &sent, &End::Complete(b"all done".to_vec()), "complete");
    let out = run(&mut gearman(srv.port, &["-f", "sprocket.result", &text(&full)]), b"", LIMIT);
    assert!(out.success(), "gearman -f sprocket.result: {}", out.describe());
    // (The data and result are written straight out, the percentage line
    // through stdio, so the percentage may come last when piped.)
    let stdout = out.stdout_text();
    assert!(stdout.contains("part one;all done"), "{}", out.describe());
    assert!(stdout.contains("50% Complete\n"), "{}", out.describe());
    assert_eq!(stdout.len(), "part one;all done50% Complete\n".len(), "{}", out.describe());

    // sprocket.record: the record as JSON.
    let out = run(&mut gearman(srv.port, &["-f", "sprocket.record", &text(&full)]), b"", LIMIT);
    assert!(out.success(), "gearman -f sprocket.record: {}", out.describe());
    let record: serde_json::Value =
        serde_json::from_str(out.stdout_text().trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.describe()));
    assert_eq!(record["handle"], text(&full));
    assert_eq!(record["function"], "cli_read");
    assert_eq!(record["unique"], "full");
    assert_eq!(record["state"], "complete");
    assert_eq!(record["background"], true);
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["result"], "all done");
    assert_eq!(record["data"], serde_json::json!([{"seq": 0, "value": "part one;"}]));
    assert_eq!(record["status"], serde_json::json!({"numerator": 1, "denominator": 2}));
    assert_eq!(record["attempt_log"][0]["end"], "completed");
    for field in ["submitted", "started", "finished"] {
        assert!(record[field].as_u64().is_some_and(|t| t > 1_600_000_000_000), "{field}: {record}");
    }

    // An unknown handle: the CLI reports the failure and prints no result.
    let out = run(&mut gearman(srv.port, &["-f", "sprocket.result", "H:nohost:424242"]), b"", LIMIT);
    assert_eq!(out.stdout_text(), "", "{}", out.describe());
}
