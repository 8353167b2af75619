//! Pause, resume and purge per function through the real binaries: a
//! third-party worker (Debian's `gearman -w`, which sleeps with PRE_SLEEP
//! between jobs) gets nothing of a paused function and is woken by the
//! resume; the pause outlives a restart of the default SQLite store; a
//! purge fails the foreground clients waiting (ours and Debian's
//! `gearman`) and answers how many it removed; `sprocket pause|resume|purge` drive the same commands.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{b, durable_server, DataDir, Gear};
use sprocket_proto::{Priority, Request, Response, SubmitMode};
use sprocket_testkit::process::{run, Background};
use sprocket_testkit::{free_port, require_tool};

const LIMIT: Duration = Duration::from_secs(20);

/// `gearman -h 127.0.0.1 -p PORT args…` (Debian's gearman-tools).
fn gearman(port: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new("gearman");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args);
    cmd
}

/// A `gearman -w` worker upper-casing jobs of `function`, registered.
fn upper_worker(port: u16, function: &str) -> Background {
    let worker = Background::spawn("gearman -w", &mut gearman(port, &["-w", "-f", function, "--", "tr", "a-z", "A-Z"]));
    wait_status(port, function, |_, _, workers| workers >= 1, "the worker registers");
    // libgearman asks for a job, hears NO_JOB and sleeps with PRE_SLEEP
    // right after registering; give it the moment to get there.
    std::thread::sleep(Duration::from_millis(300));
    worker
}

/// `function`'s (total, running, workers) in `status`.
fn status_of(port: u16, function: &str) -> Option<(u64, u64, u64)> {
    let status = sprocket_testkit::admin(port, "status");
    status.lines().find_map(|line| {
        let cols: Vec<&str> = line.split('\t').collect();
        match cols[..] {
            [name, total, running, workers] if name == function => {
                Some((total.parse().ok()?, running.parse().ok()?, workers.parse().ok()?))
            }
            _ => None,
        }
    })
}

/// Waits until `function`'s status satisfies `ok`.
fn wait_status(port: u16, function: &str, ok: impl Fn(u64, u64, u64) -> bool, what: &str) {
    let start = Instant::now();
    loop {
        if let Some((total, running, workers)) = status_of(port, function) {
            if ok(total, running, workers) {
                return;
            }
        }
        assert!(start.elapsed() < LIMIT, "{what}: status is {:?}", sprocket_testkit::admin(port, "status"));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` to exit; its stdout.
fn finish(child: &mut std::process::Child, what: &str) -> (bool, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for the client") {
            let mut out = String::new();
            if let Some(mut stdout) = child.stdout.take() {
                let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
            }
            return (status.success(), out);
        }
        assert!(start.elapsed() < LIMIT, "{what} did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_paused_functions_job_waits_while_the_worker_sleeps_and_resume_wakes_it() {
    if !require_tool("gearman") {
        return;
    }
    let data = DataDir::new("pause-wake");
    let port = free_port();
    let srv = durable_server(port, &data.0, &[]);
    let _worker = upper_worker(port, "pz_wake");
    assert_eq!(srv.admin("pause pz_wake"), "OK\r\n");

    let mut client = gearman(port, &["-f", "pz_wake", "hello"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start gearman -f");
    wait_status(port, "pz_wake", |total, _, _| total == 1, "the job is queued");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status_of(port, "pz_wake"), Some((1, 0, 1)), "not handed out while paused");
    assert!(client.try_wait().expect("client").is_none(), "the client still waits");

    let resumed = Instant::now();
    assert_eq!(srv.admin("resume pz_wake"), "OK\r\n");
    let (ok, out) = finish(&mut client, "the foreground client");
    assert!(ok, "the client succeeds after resume");
    assert_eq!(out, "HELLO");
    // Woken by a NOOP, not by polling: libgearman's worker waits for one.
    assert!(resumed.elapsed() < Duration::from_secs(3), "took {:?}", resumed.elapsed());
}

#[test]
fn the_pause_survives_a_restart_of_the_default_sqlite_store() {
    if !require_tool("gearman") {
        return;
    }
    let data = DataDir::new("pause-restart");
    let port = free_port();
    let mut srv = durable_server(port, &data.0, &[]);
    assert_eq!(srv.admin("pause pz_restart"), "OK\r\n");
    let out = run(&mut gearman(port, &["-b", "-f", "pz_restart", "kept"]), b"", LIMIT);
    assert!(out.success(), "{}", out.describe());
    // The pause was durable before its OK: even kill -9 keeps it.
    srv.kill9();
    drop(srv);

    let srv = durable_server(port, &data.0, &[]);
    assert_eq!(status_of(port, "pz_restart"), Some((1, 0, 0)), "the job and the function are back");
    let _worker = upper_worker(port, "pz_restart");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(status_of(port, "pz_restart"), Some((1, 0, 1)), "still paused after the restart");

    assert_eq!(srv.admin("resume pz_restart"), "OK\r\n");
    wait_status(port, "pz_restart", |total, _, _| total == 0, "the job runs after resume");
    // Resumed durably too: a second restart does not pause it again.
    drop(srv);
    let srv = durable_server(port, &data.0, &[]);
    let _worker = upper_worker(port, "pz_restart");
    let out = run(&mut gearman(port, &["-f", "pz_restart", "again"]), b"", LIMIT);
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout_text(), "AGAIN");
    drop(srv);
}

#[test]
fn purge_fails_the_waiting_foreground_clients_and_answers_how_many() {
    if !require_tool("gearman") {
        return;
    }
    let data = DataDir::new("pause-purge");
    let port = free_port();
    let srv = durable_server(port, &data.0, &[]);
    assert_eq!(srv.admin("pause pz_purge"), "OK\r\n");
    let mut client = Gear::connect(port).expect("connect");
    let submit = |background| Request::SubmitJob {
        mode: SubmitMode { priority: Priority::Normal, background },
        function: b("pz_purge"),
        unique: b(""),
        data: b("x"),
    };
    client.send(&submit(false)).expect("submit");
    let Ok(Response::JobCreated { handle }) = client.recv() else { panic!("no JOB_CREATED") };
    let mut bg = Gear::connect(port).expect("connect");
    for _ in 0..2 {
        bg.send(&submit(true)).expect("submit");
        assert!(matches!(bg.recv(), Ok(Response::JobCreated { .. })));
    }
    // Debian's gearman client waits for a job of its own.
    let mut waiting = gearman(port, &["-f", "pz_purge", "y"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start gearman -f");
    wait_status(port, "pz_purge", |total, _, _| total == 4, "the gearman client's job is queued");
    assert_eq!(srv.admin("purge queued pz_purge"), "OK 4\n");
    assert_eq!(client.recv().expect("the client hears"), Response::WorkFail { handle });
    let (ok, _) = finish(&mut waiting, "gearman -f");
    let mut stderr = String::new();
    if let Some(mut e) = waiting.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert!(!ok && stderr.contains("Job failed"), "gearman reports the failure: {stderr:?}");
    assert_eq!(status_of(port, "pz_purge"), Some((0, 0, 0)));
    assert_eq!(srv.admin("purge queued pz_purge"), "OK 0\n");
    assert_eq!(srv.admin("purge queued no_such_function"), "ERR function not found\r\n");
    // The purged background jobs' rows are gone: a restart brings nothing back.
    drop(srv);
    let srv = durable_server(port, &data.0, &[]);
    assert_eq!(status_of(port, "pz_purge"), Some((0, 0, 0)), "still paused, and empty");
    drop(srv);
}

#[test]
fn the_sprocket_command_pauses_resumes_and_purges() {
    let Some(cli) = sprocket_testkit::find_workspace_bin("sprocket") else {
        sprocket_testkit::skip("the sprocket binary is not built (cargo build -p sprocket-cli)");
        return;
    };
    let data = DataDir::new("pause-cli");
    let port = free_port();
    let srv = durable_server(port, &data.0, &[]);
    let servers = format!("127.0.0.1:{port}");
    let sprocket = |args: &[&str]| {
        let mut cmd = Command::new(&cli);
        cmd.args(args).args(["-s", &servers]);
        run(&mut cmd, b"", LIMIT)
    };
    let out = sprocket(&["pause", "pz_cli"]);
    assert!(out.success(), "{}", out.describe());
    let mut bg = Gear::connect(port).expect("connect");
    for _ in 0..4 {
        bg.send(&Request::SubmitJob {
            mode: SubmitMode { priority: Priority::Low, background: true },
            function: b("pz_cli"),
            unique: b(""),
            data: b("x"),
        })
        .expect("submit");
        assert!(matches!(bg.recv(), Ok(Response::JobCreated { .. })));
    }
    let out = sprocket(&["purge", "--queued", "--function", "pz_cli"]);
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout_text(), "4\n");
    let out = sprocket(&["resume", "pz_cli"]);
    assert!(out.success(), "{}", out.describe());

    let out = sprocket(&["resume", "pz_never_seen"]);
    assert!(!out.success());
    assert!(out.stderr_text().contains("cannot resume pz_never_seen: function not found"), "{}", out.describe());
    let out = sprocket(&["pause", "sprocket.result"]);
    assert!(!out.success());
    assert!(out.stderr_text().contains("RESERVED_FUNCTION"), "{}", out.describe());
    let out = sprocket(&["purge", "--function", "pz_cli"]);
    assert!(!out.success(), "--queued is required: {}", out.describe());
    drop(srv);
}
