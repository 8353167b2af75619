//! Worker processes as seed 003 drives them: a pid file, daemon mode, and
//! SIGTERM that stops the worker after its current job.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{run_tool, servers, wait_workers, Tool};

fn read_pid(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    // kill -0: does the process exist?
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn daemon_worker_with_pidfile_stops_after_its_job_on_sigterm() {
    for srv in servers() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("worker.pid");
        // islandora_job_start_worker: start a detached worker with a pid file.
        let start = run_tool(
            Tool::Ours,
            "gearman",
            srv.port,
            &["-w", "-d", "-i", pidfile.to_str().unwrap(), "-f", "slow", "--", "sh", "-c", "sleep 1; cat"],
            b"",
        );
        assert!(start.success(), "daemon start: {}", start.describe());
        let t0 = Instant::now();
        let pid = loop {
            if let Some(p) = read_pid(&pidfile) {
                break p;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "no pid file");
            std::thread::sleep(Duration::from_millis(20));
        };
        wait_workers(&srv, "slow", 1);
        // A job is running when the stop request comes…
        let port = srv.port;
        let client = std::thread::spawn(move || run_tool(Tool::Real, "gearman", port, &["-f", "slow", "payload"], b""));
        let t1 = Instant::now();
        while !srv.admin("status").contains("slow\t1\t1\t") {
            assert!(t1.elapsed() < Duration::from_secs(10), "job never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        // islandora_job_stop_worker: read the pid file and kill the worker.
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        // …and still completes.
        let out = client.join().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "payload", "{}: {}", srv.name, out.describe());
        let t2 = Instant::now();
        while alive(pid) {
            assert!(t2.elapsed() < Duration::from_secs(10), "worker {pid} did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!pidfile.exists(), "pid file removed on exit");
    }
}
