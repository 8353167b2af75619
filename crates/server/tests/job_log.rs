//! The job log (`--job-log`, `--job-log-results`) and the per-function
//! history (`--history`, admin `history`) through the real sprocketd, with
//! Debian's `gearman` tool as client and as workers: one that completes
//! jobs (`cat`), one that takes 300 ms (`sleep`), one that fails them
//! (`false`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sprocket_testkit::databases::{wait_until, TempDir};
use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::wait_for_workers;
use sprocket_testkit::{admin, free_port, require_tool, ServerProcess};

const LIMIT: Duration = Duration::from_secs(30);

fn sprocketd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sprocketd"))
}

/// sprocketd on `port` with the default SQLite queue in `data`, plus `extra`.
fn start(port: u16, data: &Path, extra: &[&str]) -> ServerProcess {
    let mut args: Vec<String> =
        ["--port", &port.to_string(), "--listen", "127.0.0.1", "--data-dir"].iter().map(|s| s.to_string()).collect();
    args.push(data.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    ServerProcess::start("sprocketd", sprocketd(), &args, port)
}

fn gearman(port: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new("gearman");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args);
    cmd
}

/// A `gearman -w` worker for `function` running `command`.
fn worker(port: u16, function: &str, command: &[&str]) -> Background {
    let mut args = vec!["-w", "-f", function, "--"];
    args.extend_from_slice(command);
    let worker = Background::spawn(&format!("gearman -w -f {function}"), &mut gearman(port, &args));
    wait_for_workers(port, function, 1);
    worker
}

/// The job log's lines, each parsed as JSON (a line that is not JSON fails
/// the test).
fn log_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"))).collect()
}

fn wait_for_lines(path: &Path, n: usize) -> Vec<Value> {
    let reached = wait_until(LIMIT, || log_lines(path).len() >= n);
    let lines = log_lines(path);
    assert!(reached, "expected {n} job log lines in {}, got {lines:#?}", path.display());
    lines
}

/// Runs the jobs every test here uses: three completed (two foreground, one
/// background) by `ok`, one failed by `bad`, one of 300 ms by `slow`.
fn run_jobs(port: u16) {
    for (args, expect_ok) in [
        (&["-f", "ok", "-u", "u-1", "hello"][..], true),
        (&["-f", "ok", "hello again"][..], true),
        (&["-b", "-f", "ok", "-u", "bg-1", "in the background"][..], true),
        (&["-f", "bad", "x"][..], false),
        (&["-f", "slow", "-u", "s-1", "s"][..], true),
    ] {
        let out = run(&mut gearman(port, args), b"", LIMIT);
        assert_eq!(out.success(), expect_ok, "gearman {args:?}: {}", out.describe());
    }
}

fn workers(port: u16) -> Vec<Background> {
    vec![
        worker(port, "ok", &["cat"]),
        worker(port, "bad", &["false"]),
        worker(port, "slow", &["sh", "-c", "sleep 0.3; cat"]),
    ]
}

fn by_unique<'a>(lines: &'a [Value], unique: &str) -> &'a Value {
    lines.iter().find(|l| l["unique"] == unique).unwrap_or_else(|| panic!("no line for {unique}: {lines:#?}"))
}

fn history_line(reply: &str, function: &str, window: &str) -> Vec<String> {
    reply
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.len() == 16 && f[0] == function && f[1] == window)
        .unwrap_or_else(|| panic!("no {function} {window} line in {reply:?}"))
}

#[test]
fn every_ended_job_is_one_json_line_and_counts_in_a_history_kept_across_a_restart() {
    if !require_tool("gearman") {
        return;
    }
    let data = TempDir::new("job-log");
    let log = data.path().join("jobs.log");
    let port = free_port();
    let log_arg = log.display().to_string();
    let mut server = start(port, data.path(), &["--job-log", &log_arg, "--history"]);
    let _workers = workers(port);
    run_jobs(port);
    let lines = wait_for_lines(&log, 5);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    for line in &lines {
        let time = line["time"].as_str().expect("time");
        assert!(time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        assert!(line["handle"].as_str().is_some_and(|h| h.starts_with("H:")), "{line}");
        assert_eq!(line["attempts"], 1, "{line}");
        assert_eq!((&line["worker_id"], &line["worker_peer"]), (&Value::from("-"), &Value::from("127.0.0.1")));
        assert!(line["error"].is_null(), "{line}");
        assert!(line.get("result").is_none(), "results only with --job-log-results: {line}");
        let wait = line["queue_wait_ms"].as_u64().expect("queue wait");
        let run = line["run_time_ms"].as_u64().expect("run time");
        assert!(wait < 10_000 && run < 10_000, "{line}");
    }
    let completed: Vec<_> = lines.iter().filter(|l| l["state"] == "complete").collect();
    assert_eq!(completed.len(), 4, "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l["state"] == "failed" && l["function"] == "bad").count(), 1, "{lines:#?}");
    assert_eq!(by_unique(&lines, "u-1")["function"], "ok");
    assert_eq!(by_unique(&lines, "bg-1")["state"], "complete");
    let slow = by_unique(&lines, "s-1");
    assert!(slow["run_time_ms"].as_u64().unwrap() >= 300, "the slow worker sleeps 300 ms: {slow}");

    let check_history = |reply: &str| {
        assert!(reply.ends_with(".\n"), "{reply:?}");
        for window in ["minute", "hour", "day"] {
            let ok = history_line(reply, "ok", window);
            assert_eq!(&ok[2..9], ["3", "0", "0", "0", "0", "0", "0"], "{reply}");
            let bad = history_line(reply, "bad", window);
            assert_eq!(&bad[2..9], ["0", "1", "0", "0", "0", "0", "0"], "{reply}");
            let slow = history_line(reply, "slow", window);
            // One sample: every run percentile is that run time, within the
            // histogram's 12.5 %.
            let run_p50: u64 = slow[12].parse().expect("run p50");
            assert!((262..5_000).contains(&run_p50), "{reply}");
            assert_eq!((&slow[13], &slow[14]), (&slow[12], &slow[12]), "{reply}");
        }
    };
    let before = server.admin("history");
    check_history(&before);

    assert_eq!(server.terminate(LIMIT), Some(0), "sprocketd stops on SIGTERM");
    assert!(data.path().join(format!("sprocket-{port}-history.json")).is_file());
    // Restarted without the (now no-op) --history flag: the history is on
    // by default and comes back from its snapshot.
    let server = start(port, data.path(), &[]);
    let after = server.admin("history");
    check_history(&after);
    assert_eq!(before, after, "the history is the same after a restart");
}

#[test]
fn results_only_with_job_log_results_and_sighup_reopens_the_file() {
    if !require_tool("gearman") {
        return;
    }
    let data = TempDir::new("job-log-results");
    let log: PathBuf = data.path().join("jobs.log");
    let port = free_port();
    let log_arg = log.display().to_string();
    let server =
        start(port, data.path(), &["-q", "builtin", "--job-log", &log_arg, "--job-log-results", "--no-history"]);
    let _worker = worker(port, "ok", &["cat"]);
    let out = run(&mut gearman(port, &["-f", "ok", "-u", "first", "hello"]), b"", LIMIT);
    assert!(out.success(), "{}", out.describe());
    let lines = wait_for_lines(&log, 1);
    assert_eq!((&lines[0]["unique"], &lines[0]["result"]), (&Value::from("first"), &Value::from("hello")));

    // What logrotate does: rename, then SIGHUP.
    let rotated = data.path().join("jobs.log.1");
    std::fs::rename(&log, &rotated).expect("rename the job log");
    let hup = Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().expect("kill -HUP");
    assert!(hup.success());
    assert!(wait_until(LIMIT, || log.is_file()), "the job log is reopened under its name after SIGHUP");
    let out = run(&mut gearman(port, &["-f", "ok", "-u", "second", "again"]), b"", LIMIT);
    assert!(out.success(), "{}", out.describe());
    let lines = wait_for_lines(&log, 1);
    assert_eq!(
        (lines.len(), &lines[0]["unique"], &lines[0]["result"]),
        (1, &Value::from("second"), &Value::from("again"))
    );
    let old = log_lines(&rotated);
    assert_eq!((old.len(), &old[0]["unique"]), (1, &Value::from("first")), "the rotated file keeps its line");
    // With --no-history, admin history says so rather than answering empty.
    assert!(admin(port, "history").starts_with("ERR HISTORY_OFF"));
}

#[test]
fn a_job_log_that_cannot_be_opened_stops_the_start_with_its_path() {
    let port = free_port().to_string();
    let out = run(
        Command::new(sprocketd()).args([
            "--port",
            &port,
            "-q",
            "builtin",
            "--log-file",
            "stderr",
            "--job-log",
            "/nonexistent-dir/jobs.log",
        ]),
        b"",
        LIMIT,
    );
    assert!(!out.success(), "{}", out.describe());
    assert!(out.stderr_text().contains("cannot open the job log: /nonexistent-dir/jobs.log"), "{}", out.describe());
}
