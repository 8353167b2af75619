//! The `gearman` and `gearadmin` command-line tools (Debian gearman-tools
//! 1.1.20, built on libgearman) against the server under test
//! (`SPROCKET_TEST_SERVER=gearmand` runs the same scenarios on the reference).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::{wait_for_workers, wait_until_drained};
use sprocket_testkit::{interop_dir, require_tool, ServerProcess};

const LIMIT: Duration = Duration::from_secs(30);

fn server() -> Option<ServerProcess> {
    if !require_tool("gearman") {
        return None;
    }
    ServerProcess::under_test(Path::new(env!("CARGO_BIN_EXE_sprocketd")), &[])
}

/// `gearman -h 127.0.0.1 -p PORT args…`
fn gearman(port: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new("gearman");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args);
    cmd
}

/// The seed's command line exactly as written (no -h/-p): the server is
/// given through `GEARMAN_SERVER`, which libgearman's CLI reads instead.
fn seed_command(port: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new("gearman");
    cmd.args(args).env("GEARMAN_SERVER", format!("127.0.0.1:{port}"));
    cmd
}

/// Seed 000 (Media Cloud) verbatim: a `wc -l` worker, a foreground job that
/// prints the line count of /etc/group, and a background job of /etc/passwd.
#[test]
fn seed000_wc_worker_foreground_and_background() {
    let Some(srv) = server() else { return };
    let port = srv.port;
    let _worker =
        Background::spawn("gearman -w -f wc -- wc -l", &mut seed_command(port, &["-w", "-f", "wc", "--", "wc", "-l"]));
    wait_for_workers(port, "wc", 1);

    let group = std::fs::read("/etc/group").expect("read /etc/group");
    let lines = group.iter().filter(|b| **b == b'\n').count();
    let out = run(&mut seed_command(port, &["-f", "wc"]), &group, LIMIT);
    assert!(out.success(), "gearman -f wc < /etc/group failed: {}", out.describe());
    assert_eq!(out.stdout_text(), format!("{lines}\n"), "line count of /etc/group: {}", out.describe());

    let passwd = std::fs::read("/etc/passwd").expect("read /etc/passwd");
    let out = run(&mut seed_command(port, &["-b", "-f", "wc"]), &passwd, LIMIT);
    assert!(out.success(), "gearman -b -f wc < /etc/passwd failed: {}", out.describe());
    assert_eq!(out.stdout_text(), "", "a background submit prints nothing: {}", out.describe());
    // The worker picks the background job up and the queue drains.
    wait_until_drained(port, "wc");

    // The same through -h/-p.
    let out = run(&mut gearman(port, &["-f", "wc"]), &group, LIMIT);
    assert_eq!(out.stdout_text(), format!("{lines}\n"), "{}", out.describe());
}

/// Seed 004: `gearman -f reverse Rasmus` against a worker (php-gearman)
/// that reports WORK_STATUS 1/10 … 10/10 prints the progress, then the
/// result. stdbuf keeps the CLI's progress lines (stdio) and result
/// (write(2)) in the order a terminal shows.
#[test]
fn seed004_reverse_progress_then_result() {
    if !require_tool("php") || !require_tool("stdbuf") {
        return;
    }
    let Some(srv) = server() else { return };
    let port = srv.port;
    let script = interop_dir().join("php/worker.php");
    let mut cmd = Command::new("php");
    cmd.arg(&script).args(["127.0.0.1", &port.to_string(), "seed004", "10", "reverse"]);
    let _worker = Background::spawn("php worker.php", &mut cmd);
    wait_for_workers(port, "reverse", 1);

    let mut cmd = Command::new("stdbuf");
    cmd.args(["-o0", "gearman", "-f", "reverse", "Rasmus"]).env("GEARMAN_SERVER", format!("127.0.0.1:{port}"));
    let out = run(&mut cmd, b"", LIMIT);
    assert!(out.success(), "gearman -f reverse Rasmus: {}", out.describe());
    let mut want = String::new();
    for i in 1..=10 {
        want.push_str(&format!("{}% Complete\n", i * 10));
    }
    want.push_str("sumsaR");
    assert_eq!(out.stdout_text(), want, "{}", out.describe());
}

/// A worker running a command (`tr a-z A-Z`), a client with two workloads,
/// `-P` prefixes, `-s` (empty workload), and `-n` line mode on the worker
/// side, as documented in gearman-reference.md §6.1.
#[test]
fn cli_worker_command_and_client_modes() {
    let Some(srv) = server() else { return };
    let port = srv.port;
    let _up = Background::spawn("gearman -w -f up", &mut gearman(port, &["-w", "-f", "up", "--", "tr", "a-z", "A-Z"]));
    let _fail = Background::spawn("gearman -w -f false", &mut gearman(port, &["-w", "-f", "false", "--", "false"]));
    wait_for_workers(port, "up", 1);
    wait_for_workers(port, "false", 1);

    let out = run(&mut gearman(port, &["-f", "up", "hello world"]), b"", LIMIT);
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout_text(), "HELLO WORLD");

    let out = run(&mut gearman(port, &["-P", "-f", "up", "abc"]), b"", LIMIT);
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout_text(), "up: ABC");

    let out = run(&mut gearman(port, &["-f", "up"]), b"from stdin\n", LIMIT);
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout_text(), "FROM STDIN\n");

    // A command exiting non-zero makes the worker send WORK_FAIL: the client
    // prints "Job failed" and exits 1.
    let out = run(&mut gearman(port, &["-f", "false", "x"]), b"", LIMIT);
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains("Job failed"), "{}", out.describe());

    // Unique key: two background submissions with the same -u coalesce.
    let _ = run(&mut gearman(port, &["-b", "-u", "same", "-f", "nobody_does_this", "a"]), b"", LIMIT);
    let out = run(&mut gearman(port, &["-v", "-b", "-u", "same", "-f", "nobody_does_this", "a"]), b"", LIMIT);
    assert!(out.success(), "{}", out.describe());
    let st = sprocket_testkit::status::function_status(port, "nobody_does_this").expect("function listed");
    assert_eq!(st.total, 1, "two -u same submissions coalesced into one job");
}

/// gearadmin's operations against a server with a worker and queued jobs.
#[test]
fn gearadmin_operations() {
    if !require_tool("gearadmin") {
        return;
    }
    let Some(srv) = server() else { return };
    let port = srv.port;
    let ps = port.to_string();
    let gearadmin = |args: &[&str]| {
        let mut cmd = Command::new("gearadmin");
        cmd.args(["-h", "127.0.0.1", "-p", &ps]).args(args);
        run(&mut cmd, b"", LIMIT)
    };
    let _w = Background::spawn("gearman -w -f adm_fn", &mut gearman(port, &["-w", "-f", "adm_fn", "--", "cat"]));
    wait_for_workers(port, "adm_fn", 1);
    for _ in 0..2 {
        let out = run(&mut gearman(port, &["-b", "-f", "adm_queued", "x"]), b"", LIMIT);
        assert!(out.success(), "{}", out.describe());
    }

    let out = gearadmin(&["--status"]);
    assert!(out.success(), "{}", out.describe());
    let text = out.stdout_text();
    assert!(text.contains("adm_fn\t0\t0\t1\n"), "--status:\n{text}");
    assert!(text.contains("adm_queued\t2\t0\t0\n"), "--status:\n{text}");
    assert!(text.ends_with(".\n"), "--status ends with a dot line:\n{text}");

    let out = gearadmin(&["--priority-status"]);
    assert!(out.stdout_text().contains("adm_queued\t0\t2\t0\t0\n"), "{}", out.describe());

    let out = gearadmin(&["--workers"]);
    assert!(out.stdout_text().lines().any(|l| l.ends_with(" 127.0.0.1 - : adm_fn")), "{}", out.describe());

    let out = gearadmin(&["--getpid"]);
    let pid: u32 = out.stdout_text().trim().parse().unwrap_or_else(|_| panic!("--getpid: {}", out.describe()));
    assert_eq!(pid, srv.child.id(), "--getpid is the server's pid");

    let out = gearadmin(&["--server-version"]);
    assert!(out.success() && !out.stdout_text().trim().is_empty(), "{}", out.describe());

    let out = gearadmin(&["--create-function", "adm_created"]);
    assert_eq!(out.stdout_text(), "OK\n", "{}", out.describe());
    let out = gearadmin(&["--drop-function", "adm_created"]);
    assert_eq!(out.stdout_text(), "OK\n", "{}", out.describe());
    let out = gearadmin(&["--drop-function", "adm_created"]);
    assert!(out.stderr_text().contains("Error: function not found"), "{}", out.describe());

    let out = gearadmin(&["--show-jobs"]);
    assert_eq!(out.stdout_text().lines().filter(|l| l.starts_with("H:")).count(), 2, "{}", out.describe());
    let handle = out.stdout_text().lines().next().and_then(|l| l.split('\t').next()).unwrap_or_default().to_string();
    let out = gearadmin(&["--cancel-job", &handle]);
    assert_eq!(out.stdout_text(), "OK\n", "{}", out.describe());
    let out = gearadmin(&["--cancel-job", "H:nosuch:1"]);
    assert!(out.stderr_text().contains("Error: UNKNOWN_JOB"), "{}", out.describe());
}
