//! Searching ended jobs by their error text, and the dead-letter commands,
//! against the real sprocketd on `-q sqlite` and `-q builtin`: jobs ended
//! with WORK_EXCEPTION by a php-gearman worker (submitted by a PHP client),
//! then `sprocket records --error`, `sprocket dead` and `sprocket purge
//! --dead`, and the admin text commands `records {JSON}`, `dead` and
//! `purge dead` over a plain admin connection.
//!
//! No job becomes dead yet (retries with dead letters come with the retry
//! policies), so these check that dead jobs are listed and purged by the
//! right filter (none here) and that nothing else is touched; the store
//! tests make dead records directly and purge them on every backend.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Instant;

use common::{sprocket, LIMIT};
use serde_json::Value;
use sprocket_testkit::process::{run, Background, RunOutput};
use sprocket_testkit::status::wait_for_workers;
use sprocket_testkit::{interop_dir, require_php_gearman, ServerProcess};

fn sp(args: &[&str]) -> RunOutput {
    let mut cmd = Command::new(sprocket());
    cmd.args(args).env_remove("GEARMAN_SERVER");
    run(&mut cmd, b"", LIMIT)
}

/// sprocketd with the durable SQLite queue in a directory of its own, or
/// with the in-memory queue, keeping dead records 45 days.
fn server(sqlite: Option<&std::path::Path>) -> Option<ServerProcess> {
    let bin = common::sprocketd_bin()?;
    let mut args = vec!["--dead-retention", "45d"];
    let dir;
    match sqlite {
        Some(path) => {
            dir = path.display().to_string();
            args.extend(["--queue-type=sqlite", "--data-dir", &dir]);
        }
        None => args.extend(["-q", "builtin"]),
    }
    Some(ServerProcess::sprocketd(&bin, &args))
}

/// The interop suite's PHP worker: `<prefix>_fail` sends the exception
/// `boom: <workload>` and returns GEARMAN_WORK_EXCEPTION.
fn php_worker(port: u16, prefix: &str) -> Background {
    let mut cmd = Command::new("php");
    cmd.arg(interop_dir().join("php/worker.php")).args(["127.0.0.1", &port.to_string(), prefix]);
    let worker = Background::spawn("php worker.php", &mut cmd);
    wait_for_workers(port, &format!("{prefix}_fail"), 1);
    worker
}

/// A background job submitted by a PHP client; its handle.
fn php_submit(port: u16, function: &str, workload: &str) -> String {
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

/// Waits until `sprocket record` shows the job ended in `state`.
fn wait_state(addr: &str, handle: &str, state: &str) {
    let start = Instant::now();
    loop {
        let out = sp(&["record", "-s", addr, handle, "--json"]);
        if out.success() {
            let record: Value = serde_json::from_str(out.stdout_text().trim()).expect("record JSON");
            if record["state"] == state {
                return;
            }
        }
        assert!(start.elapsed() < LIMIT, "job {handle} never ended {state}: {}", out.describe());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The handles `sprocket <args> --json` lists.
fn listed(addr: &str, args: &[&str]) -> BTreeSet<String> {
    let mut all = vec![args[0], "-s", addr, "--json"];
    all.extend_from_slice(&args[1..]);
    let out = sp(&all);
    assert!(out.success(), "sprocket {all:?}: {}", out.describe());
    let records: Vec<Value> = serde_json::from_str(out.stdout_text().trim()).expect("a JSON array");
    records.iter().map(|r| r["handle"].as_str().expect("handle").to_string()).collect()
}

/// One admin line's answer: a listing up to its `.` line, or one line.
fn admin(port: u16, line: &str) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("admin connects");
    conn.set_read_timeout(Some(LIMIT)).expect("timeout");
    conn.write_all(format!("{line}\r\n").as_bytes()).expect("send");
    let mut reader = BufReader::new(conn);
    let mut answer = String::new();
    loop {
        let mut l = String::new();
        assert!(reader.read_line(&mut l).expect("read") > 0, "connection closed after {answer:?}");
        answer.push_str(&l);
        if l == ".\n" || l.starts_with("OK") || l.starts_with("ERR") {
            return answer;
        }
    }
}

fn set<const N: usize>(handles: [&str; N]) -> BTreeSet<String> {
    handles.iter().map(|h| h.to_string()).collect()
}

fn error_text_and_dead_commands(sqlite: bool) {
    if !require_php_gearman() {
        return;
    }
    let dir = tempfile::tempdir().expect("data dir");
    let Some(srv) = server(sqlite.then_some(dir.path())) else { return };
    let (port, addr) = (srv.port, srv.addr());
    let _worker = php_worker(port, "errtext");
    let full = php_submit(port, "errtext_fail", "Disk FULL on sda");
    let again = php_submit(port, "errtext_fail", "disk full again");
    let network = php_submit(port, "errtext_fail", "network down");
    let fine = php_submit(port, "errtext_reverse", "disk full but fine");
    for h in [&full, &again, &network] {
        wait_state(&addr, h, "exception");
    }
    wait_state(&addr, &fine, "complete");

    // Case aside, exactly the jobs whose exception text holds the words;
    // a result with them is not an error text.
    assert_eq!(listed(&addr, &["records", "--error", "DISK full"]), set([&full, &again]));
    assert_eq!(listed(&addr, &["records", "--error", "boom: network"]), set([&network]));
    assert_eq!(listed(&addr, &["records", "--error", "disk", "--state", "exception", "-n", "1"]), set([&again]));
    assert!(listed(&addr, &["records", "--error", "no such words"]).is_empty());
    assert!(listed(&addr, &["records", "--error", "disk", "-f", "errtext_reverse"]).is_empty());
    let table = sp(&["records", "-s", &addr, "--error", "disk full"]);
    assert!(table.success(), "{}", table.describe());
    let text = table.stdout_text();
    assert!(text.contains(&full) && text.contains(&again) && !text.contains(&network), "{text}");
    let empty = sp(&["records", "-s", &addr, "--error", ""]);
    assert_eq!(empty.status.and_then(|s| s.code()), Some(2), "an empty text is a usage error: {}", empty.describe());

    // The admin command takes the same JSON filter, spaces and all.
    let list = admin(port, r#"records {"function": "errtext_fail", "error": "disk FULL"}"#);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(lines[0].starts_with(&again) && lines[1].starts_with(&full), "newest first: {list}");

    // No job is dead: the dead list is empty and purging it removes nothing.
    assert!(listed(&addr, &["dead"]).is_empty());
    assert!(listed(&addr, &["dead", "--error", "disk", "-f", "errtext_fail", "--since", "1h"]).is_empty());
    assert_eq!(admin(port, "dead"), ".\n");
    assert_eq!(admin(port, r#"dead {"error": "disk"}"#), ".\n");
    assert!(admin(port, r#"dead {"state": "exception"}"#).starts_with("ERR INVALID_ARGUMENTS"));
    assert_eq!(admin(port, "purge dead errtext_fail"), "OK 0\n");
    assert_eq!(admin(port, "purge dead"), "OK 0\n");
    let purge = sp(&["purge", "-s", &addr, "--dead"]);
    assert!(purge.success(), "{}", purge.describe());
    assert_eq!(purge.stdout_text().trim(), "0");
    let purge = sp(&["purge", "-s", &addr, "--dead", "-f", "errtext_fail"]);
    assert_eq!(purge.stdout_text().trim(), "0", "{}", purge.describe());
    let nothing = sp(&["purge", "-s", &addr]);
    assert_eq!(nothing.status.and_then(|s| s.code()), Some(2), "say what to purge: {}", nothing.describe());
    assert_eq!(
        listed(&addr, &["records", "--error", "disk full"]),
        set([&full, &again]),
        "purging dead jobs keeps the others"
    );
}

#[test]
fn php_exceptions_are_found_by_error_text_on_sqlite() {
    error_text_and_dead_commands(true);
}

#[test]
fn php_exceptions_are_found_by_error_text_on_builtin() {
    error_text_and_dead_commands(false);
}
