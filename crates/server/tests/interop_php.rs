//! php-gearman (PECL gearman 2.x on libgearman) against the server under
//! test: the reverse worker of seed 004 with status and data callbacks,
//! background tasks with jobStatus, parallel runTasks across two worker
//! processes, and exceptions. The scripts live in tests/interop/php and
//! check their own results (they print `ok - …` lines and exit 1 on failure).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::wait_for_workers;
use sprocket_testkit::{interop_dir, require_tool, ServerProcess};

fn php_ready() -> bool {
    if !require_tool("php") {
        return false;
    }
    let out = run(
        Command::new("php").args(["-r", "exit(extension_loaded('gearman') ? 0 : 1);"]),
        b"",
        Duration::from_secs(20),
    );
    if !out.success() {
        sprocket_testkit::skip("php-gearman extension not loaded");
        return false;
    }
    true
}

fn server() -> Option<ServerProcess> {
    if !php_ready() {
        return None;
    }
    ServerProcess::under_test(Path::new(env!("CARGO_BIN_EXE_sprocketd")), &[])
}

/// Starts `count` reverse workers for `prefix` (step time `step_ms`) and
/// waits until all have registered.
fn workers(srv: &ServerProcess, prefix: &str, step_ms: u32, count: u64) -> Vec<Background> {
    let script = interop_dir().join("php/worker.php");
    let ws = (0..count)
        .map(|i| {
            let mut cmd = Command::new("php");
            cmd.arg(&script).args(["127.0.0.1", &srv.port.to_string(), prefix, &step_ms.to_string()]);
            Background::spawn(&format!("php worker {i}"), &mut cmd)
        })
        .collect();
    wait_for_workers(srv.port, &format!("{prefix}_reverse"), count);
    ws
}

/// Runs a client script and asserts it passed.
fn client(srv: &ServerProcess, script: &str, prefix: &str, ws: &[Background]) -> String {
    let mut cmd = Command::new("php");
    cmd.arg(interop_dir().join("php").join(script)).args(["127.0.0.1", &srv.port.to_string(), prefix]);
    let out = run(&mut cmd, b"", Duration::from_secs(60));
    let worker_logs: Vec<String> = ws.iter().map(|w| w.output()).collect();
    assert!(
        out.success() && out.stdout_text().contains("PASS"),
        "{script} failed against {}: {}\n--- worker output ---\n{}",
        srv.name,
        out.describe(),
        worker_logs.join("\n---\n")
    );
    out.stdout_text()
}

#[test]
fn php_status_data_and_complete_callbacks() {
    let Some(srv) = server() else { return };
    let ws = workers(&srv, "cb", 10, 1);
    client(&srv, "callbacks.php", "cb", &ws);
}

#[test]
fn php_background_task_and_job_status() {
    let Some(srv) = server() else { return };
    // 30 ms steps: long enough for jobStatus to see the job running.
    let ws = workers(&srv, "bg", 30, 1);
    client(&srv, "background.php", "bg", &ws);
}

#[test]
fn php_parallel_run_tasks_on_two_workers() {
    let Some(srv) = server() else { return };
    // 10 x 40 ms per task: two tasks on two workers take ~0.4 s, not ~0.8 s.
    let ws = workers(&srv, "par", 40, 2);
    let out = client(&srv, "parallel.php", "par", &ws);
    // Both workers really took a job.
    let busy = ws.iter().filter(|w| w.lines().iter().any(|l| l.starts_with("JOB "))).count();
    assert_eq!(busy, 2, "both workers ran a job:\n{out}");
}

#[test]
fn php_worker_exception_reaches_exception_callback() {
    let Some(srv) = server() else { return };
    let ws = workers(&srv, "exc", 10, 1);
    client(&srv, "exception.php", "exc", &ws);
}
