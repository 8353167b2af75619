//! `sprocket` subcommands: submit, status, work, admin (tables and JSON).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{servers, sprocket, wait_workers, LIMIT};
use sprocket_testkit::process::{run, Background, RunOutput};

fn sp(args: &[&str], stdin: &[u8]) -> RunOutput {
    let mut cmd = Command::new(sprocket());
    cmd.args(args).env_remove("GEARMAN_SERVER");
    run(&mut cmd, stdin, LIMIT)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn submit_work_status_admin() {
    for srv in servers() {
        let addr = srv.addr();
        let mut cmd = Command::new(sprocket());
        cmd.args([
            "work",
            "-s",
            &addr,
            "-f",
            "upper",
            "-c",
            "2",
            "--count",
            "4",
            "--id",
            "upper-worker",
            "--",
            "tr",
            "a-z",
            "A-Z",
        ]);
        let mut worker = Background::spawn("sprocket work", &mut cmd);
        wait_workers(&srv, "upper", 1);
        let out = sp(&["admin", "-s", &addr, "--json", "workers"], b"");
        let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
        assert!(v.as_array().unwrap().iter().any(|w| w["id"] == "upper-worker"), "{v}");

        let out = sp(&["submit", "-s", &addr, "upper", "hello"], b"");
        assert!(out.success(), "{}", out.describe());
        assert_eq!(text(&out.stdout), "HELLO");

        let out = sp(&["submit", "-s", &addr, "upper"], b"from stdin");
        assert_eq!(text(&out.stdout), "FROM STDIN");

        let out = sp(&["submit", "-s", &addr, "--json", "upper", "a", "b"], b"");
        let lines: Vec<serde_json::Value> =
            text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["result"], "A");
        assert_eq!(lines[1]["result"], "B");

        let out = sp(&["submit", "-s", &addr, "-b", "nobody", "later"], b"");
        assert!(out.success());
        let handle = text(&out.stdout).trim().to_string();
        assert!(!handle.is_empty());
        let out = sp(&["status", "-s", &addr, "--json", &handle], b"");
        let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
        assert_eq!(v[0]["known"], true, "{}", out.describe());

        let out = sp(&["admin", "-s", &addr, "status"], b"");
        assert!(text(&out.stdout).starts_with("FUNCTION"), "{}", out.describe());
        assert!(text(&out.stdout).contains("nobody"));
        let out = sp(&["admin", "-s", &addr, "--json", "jobs"], b"");
        let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
        assert!(v.as_array().unwrap().iter().any(|j| j["handle"] == handle.as_str()), "{v}");
        let out = sp(&["admin", "-s", &addr, "cancel", &handle], b"");
        assert!(out.success(), "{}", out.describe());
        let out = sp(&["admin", "-s", &addr, "cancel", "H:nowhere:99"], b"");
        assert_eq!(out.status.and_then(|s| s.code()), Some(1));
        assert!(text(&out.stderr).contains("UNKNOWN_JOB"));
        let out = sp(&["admin", "-s", &addr, "version"], b"");
        assert!(out.success() && !text(&out.stdout).trim().is_empty());

        let out = sp(&["submit", "-s", &addr, "--timeout", "0.3", "nobody", "x"], b"");
        assert_eq!(out.status.and_then(|s| s.code()), Some(1));
        assert!(text(&out.stderr).contains("timed out"), "{}", out.describe());

        // Four jobs ran (hello, stdin, a, b): --count 4 ends the worker.
        let start = std::time::Instant::now();
        while worker.running() {
            assert!(start.elapsed() < Duration::from_secs(10), "worker should stop after --count");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn progress_lines_when_not_a_terminal() {
    for srv in servers() {
        let addr = srv.addr();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let w = rt.block_on(async {
            sprocket_client::Worker::new(addr.as_str())
                .unwrap()
                .register("prog", |job: sprocket_client::Job| async move {
                    job.status(1, 2)?;
                    job.status(2, 2)?;
                    Ok::<_, sprocket_client::JobError>("done")
                })
                .spawn()
                .unwrap()
        });
        wait_workers(&srv, "prog", 1);
        let out = sp(&["submit", "-s", &addr, "prog", "x"], b"");
        assert_eq!(text(&out.stdout), "done");
        assert_eq!(text(&out.stderr), "50% Complete\n100% Complete\n");
        // On a terminal a progress bar replaces the lines.
        if sprocket_testkit::which("script").is_some() {
            let line = format!("{} submit -s {addr} prog x", sprocket().display());
            let out = run(Command::new("script").args(["-qec", &line, "/dev/null"]), b"", LIMIT);
            let tty = text(&out.stdout);
            assert!(tty.contains("done"), "{}", out.describe());
            assert!(!tty.contains("% Complete"), "a bar, not lines, on a terminal: {tty:?}");
        }
        rt.block_on(w.shutdown()).unwrap();
    }
}

#[test]
fn bad_input_gets_clear_errors() {
    let dead = format!("127.0.0.1:{}", sprocket_testkit::free_port());
    let out = sp(&["submit", "-s", &dead, "f", "x"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1));
    assert!(text(&out.stderr).contains("Connection refused"), "{}", out.describe());
    let out = sp(&["submit", "--bogus"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(2));
    let out = sp(&["work", "-s", &dead], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(2), "missing -f: {}", out.describe());
    let out = sp(&["work", "-s", &dead, "-f", "x", "--", "/nonexistent/prog"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1));
    assert!(text(&out.stderr).contains("cannot execute"), "{}", out.describe());
    let out = sp(&["admin", "-s", &dead, "status"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1));
    assert!(text(&out.stderr).contains("cannot connect"), "{}", out.describe());
    let out = sp(&["submit", "-s", "host:notaport", "f", "x"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1));
    assert!(text(&out.stderr).contains("invalid server address"), "{}", out.describe());
    // A worker with no server to talk to says so and stops, rather than
    // retrying in silence (it looked like one waiting for jobs), also
    // before detaching with -d.
    for extra in [&[][..], &["-d"][..]] {
        let mut args = vec!["work", "-s", &dead, "-f", "x"];
        args.extend_from_slice(extra);
        let out = sp(&args, b"");
        assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.describe());
        assert!(text(&out.stderr).contains("no job server answers"), "{}", out.describe());
    }
    let out = sp(&["work", "-s", &dead, "-f", ""], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.describe());
    assert!(text(&out.stderr).contains("cannot be empty"), "{}", out.describe());
}

/// WORK_DATA reaches the output with several payloads and in JSON, not
/// only when one job streams it straight out.
#[test]
fn work_data_is_kept_with_several_jobs_and_in_json() {
    for srv in servers() {
        let addr = srv.addr();
        let mut cmd = Command::new(sprocket());
        cmd.args(["work", "-s", &addr, "-f", "lines", "-n", "--", "sh", "-c", "echo a; echo b"]);
        let _worker = Background::spawn("sprocket work", &mut cmd);
        wait_workers(&srv, "lines", 1);
        let out = sp(&["submit", "-s", &addr, "lines", "x"], b"");
        assert_eq!(text(&out.stdout), "a\nb\n", "{}", out.describe());
        let out = sp(&["submit", "-s", &addr, "lines", "x", "y"], b"");
        assert_eq!(text(&out.stdout), "a\nb\na\nb\n", "{}", out.describe());
        let out = sp(&["submit", "-s", &addr, "--json", "lines", "x"], b"");
        let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
        assert_eq!(v["data"], "a\nb\n", "{v}");
    }
}

/// `sprocket bench` builds the runtime its --threads asks for, outside the
/// CLI's own, and reports in JSON; a dead server and a bad thread count
/// are clear errors.
#[test]
fn bench_subcommand_runs_with_its_own_runtime() {
    for srv in servers() {
        let addr = srv.addr();
        for threads in ["1", "2"] {
            let out = sp(
                &[
                    "bench",
                    "roundtrip",
                    "--server",
                    &addr,
                    "-c",
                    "2",
                    "-w",
                    "2",
                    "-n",
                    "300",
                    "--threads",
                    threads,
                    "--json",
                ],
                b"",
            );
            assert!(out.success(), "--threads {threads}: {}", out.describe());
            let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
            assert_eq!(v["mode"], "roundtrip", "{v}");
            assert_eq!(v["jobs"], 300, "{v}");
        }
    }
    let dead = format!("127.0.0.1:{}", sprocket_testkit::free_port());
    let out = sp(&["bench", "submit-bg", "--server", &dead, "-n", "10"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1));
    assert!(text(&out.stderr).contains("cannot connect"), "{}", out.describe());
    let out = sp(&["bench", "submit-bg", "--threads", "0"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1));
    assert!(text(&out.stderr).contains("--threads"), "{}", out.describe());
}

/// Usage errors exit 2: an empty function name for `submit` (no worker can
/// register it, so the job would only wait) and a wrong count of maxqueue
/// limits. A cancel across several servers succeeds when the server that
/// owns the handle cancels it (the others' UNKNOWN_JOB is expected), and
/// fails only when no server knows the job.
#[test]
fn usage_errors_and_cancel_across_servers() {
    let dead = format!("127.0.0.1:{}", sprocket_testkit::free_port());
    let out = sp(&["submit", "-s", &dead, "", "x"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(2), "{}", out.describe());
    assert!(text(&out.stderr).contains("cannot be empty"), "{}", out.describe());
    let out = sp(&["admin", "-s", &dead, "maxqueue", "f", "1", "2"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(2), "{}", out.describe());

    let all = servers();
    if all.len() < 2 {
        return; // gearmand missing: every_server already said SKIPPED
    }
    let list = format!("{},{}", all[0].addr(), all[1].addr());
    let out = sp(&["submit", "-s", &all[1].addr(), "-b", "cx", "x"], b"");
    assert!(out.success(), "{}", out.describe());
    let handle = text(&out.stdout).trim().to_string();
    let out = sp(&["admin", "-s", &list, "cancel", &handle], b"");
    assert!(out.success(), "cancel on the owning server: {}", out.describe());
    assert!(text(&out.stdout).contains("OK"), "{}", out.describe());
    let out = sp(&["admin", "-s", &list, "cancel", "H:nowhere:1"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.describe());
    assert!(text(&out.stderr).contains("no server knows job"), "{}", out.describe());
}

/// `sprocket admin history` against sprocketd with `--history`: two jobs
/// completed and one failed by `gearman -w` workers show in the table and
/// in the JSON, in every window.
#[test]
fn admin_history_table_and_json() {
    if !sprocket_testkit::require_tool("gearman") {
        return;
    }
    let Some(bin) = common::sprocketd_bin() else {
        sprocket_testkit::skip("sprocketd not built (cargo build --workspace)");
        return;
    };
    let srv = sprocket_testkit::ServerProcess::sprocketd(&bin, &["-q", "builtin", "--history"]);
    let addr = srv.addr();
    let port = srv.port.to_string();
    let gearman = |args: &[&str]| {
        let mut cmd = Command::new("gearman");
        cmd.args(["-h", "127.0.0.1", "-p", &port]).args(args);
        cmd
    };
    let _ok = Background::spawn("gearman -w -f ok", &mut gearman(&["-w", "-f", "ok", "--", "cat"]));
    let _bad = Background::spawn("gearman -w -f bad", &mut gearman(&["-w", "-f", "bad", "--", "false"]));
    wait_workers(&srv, "ok", 1);
    wait_workers(&srv, "bad", 1);
    for (args, ok) in [(&["-f", "ok", "a"][..], true), (&["-f", "ok", "b"][..], true), (&["-f", "bad", "c"][..], false)]
    {
        let out = run(&mut gearman(args), b"", LIMIT);
        assert_eq!(out.success(), ok, "gearman {args:?}: {}", out.describe());
    }

    let out = sp(&["admin", "-s", &addr, "history"], b"");
    assert!(out.success(), "{}", out.describe());
    let table = text(&out.stdout);
    assert!(table.starts_with("FUNCTION  WINDOW  COMPLETED  FAILED"), "{table}");
    let rows: Vec<Vec<&str>> = table.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 6, "two functions, three windows: {table}");
    assert!(rows.iter().any(|r| r[..4] == ["bad", "minute", "0", "1"]), "{table}");
    assert!(rows.iter().any(|r| r[..4] == ["ok", "day", "2", "0"]), "{table}");

    let out = sp(&["admin", "-s", &addr, "--json", "history"], b"");
    assert!(out.success(), "{}", out.describe());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ok_hour = json
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["function"] == "ok" && r["window"] == "hour"))
        .unwrap_or_else(|| panic!("no ok/hour object: {json}"));
    assert_eq!((&ok_hour["completed"], &ok_hour["failed"]), (&2.into(), &0.into()), "{ok_hour}");
    assert!(ok_hour["run_time_ms"]["p99"].as_u64().is_some(), "{ok_hour}");
    assert!(ok_hour["queue_wait_ms"]["p50"].as_u64().is_some(), "{ok_hour}");
}
