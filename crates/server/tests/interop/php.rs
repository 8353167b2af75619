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
use sprocket_testkit::{interop_dir, require_php_gearman, ServerProcess};

fn server() -> Option<ServerProcess> {
    if !require_php_gearman() {
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

/// A PHP worker that overruns its CAN_DO_TIMEOUT limit, a second one asleep
/// in PRE_SLEEP, and a PHP client waiting in doNormal(): how the client's
/// job ends (its output line).
fn overrun_job(srv: &ServerProcess, function: &str) -> String {
    let script = interop_dir().join("php/timeout_worker.php");
    let port = srv.port.to_string();
    let mut slow = Background::spawn(
        "php slow worker",
        Command::new("php").arg(&script).args(["127.0.0.1", &port, function, "1", "3000", "slow"]),
    );
    wait_for_workers(srv.port, function, 1);
    let client_port = port.clone();
    let client_function = function.to_string();
    let client = std::thread::spawn(move || {
        let mut cmd = Command::new("php");
        cmd.arg(interop_dir().join("php/timeout_client.php")).args(["127.0.0.1", &client_port, &client_function]);
        run(&mut cmd, b"", Duration::from_secs(30))
    });
    slow.wait_for_line("JOB ", Duration::from_secs(10));
    let mut fast = Background::spawn(
        "php fast worker",
        Command::new("php").arg(&script).args(["127.0.0.1", &port, function, "0", "0", "fast"]),
    );
    wait_for_workers(srv.port, function, 2);
    let out = client.join().expect("client thread");
    let logs = format!("--- slow ---\n{}\n--- fast ---\n{}", slow.output(), fast.output());
    slow.stop();
    fast.stop();
    assert!(out.success(), "client against {}: {}\n{logs}", srv.name, out.describe());
    format!("{}\n{logs}", out.stdout_text())
}

/// gearmand 1.1.20 requeues a job whose worker overran its CAN_DO_TIMEOUT,
/// and so does sprocketd by default: the sleeping second worker is woken,
/// runs it, and the PHP client gets that worker's result.
#[test]
fn php_worker_over_its_time_limit_loses_the_job_to_another_worker() {
    let Some(srv) = server() else { return };
    let started = std::time::Instant::now();
    let out = overrun_job(&srv, "tmo_requeue");
    assert!(out.starts_with("RESULT fast\n"), "against {}: {out}", srv.name);
    assert!(started.elapsed() >= Duration::from_secs(1), "not before the 1 s limit");
}

/// `--timeout-action fail`: the same overrun fails the job, and the PHP
/// client gets GEARMAN_WORK_FAIL (sprocketd's option; gearmand has none).
#[test]
fn php_worker_over_its_time_limit_fails_the_job_with_timeout_action_fail() {
    if sprocket_testkit::server_under_test_name() == "gearmand" || !require_php_gearman() {
        return;
    }
    let srv = ServerProcess::sprocketd(Path::new(env!("CARGO_BIN_EXE_sprocketd")), &["--timeout-action", "fail"]);
    let out = overrun_job(&srv, "tmo_fail");
    assert!(out.starts_with("FAIL\n"), "{out}");
}

/// A PHP worker for `function` (no time limit, no work time) that has
/// registered and gone to sleep in PRE_SLEEP.
fn php_worker_asleep(srv: &ServerProcess, function: &str) -> Background {
    let script = interop_dir().join("php/timeout_worker.php");
    let worker = Background::spawn(
        "php worker",
        Command::new("php").arg(&script).args(["127.0.0.1", &srv.port.to_string(), function, "0", "0", "done"]),
    );
    wait_for_workers(srv.port, function, 1);
    std::thread::sleep(Duration::from_millis(300)); // let it send PRE_SLEEP
    worker
}

/// An epoch job submitted for two seconds ahead reaches a PHP worker that
/// is asleep in PRE_SLEEP when it becomes due, not before (sprocketd only:
/// gearmand never wakes the sleeping worker, see
/// differential/sprocket_fixes.rs).
#[test]
fn php_worker_asleep_in_pre_sleep_is_woken_for_an_epoch_job_when_it_is_due() {
    if sprocket_testkit::server_under_test_name() == "gearmand" {
        return;
    }
    let Some(srv) = server() else { return };
    let mut worker = php_worker_asleep(&srv, "epoch_php");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut client = sprocket_testkit::wire::Conn::connect(srv.port);
    let submitted = std::time::Instant::now();
    client.send_req(
        sprocket_testkit::wire::kind::SUBMIT_JOB_EPOCH,
        &[b"epoch_php", b"e1", (now + 2).to_string().as_bytes(), b"later"],
    );
    client.expect_packet("JOB_CREATED");
    worker.wait_for_line("JOB ", Duration::from_secs(8));
    let after = submitted.elapsed();
    worker.stop();
    assert!(after >= Duration::from_millis(900), "run before its time: {after:?}");
}

/// A SUBMIT_JOB_SCHED job (`* * * * *`: the next whole minute) reaches a
/// PHP worker asleep in PRE_SLEEP at that minute, not before (sprocketd
/// only: gearmand refuses SUBMIT_JOB_SCHED). Cron fields have a one-minute
/// grain, so this test waits up to a minute.
#[test]
fn php_worker_asleep_in_pre_sleep_is_woken_for_a_sched_job_at_its_minute() {
    if sprocket_testkit::server_under_test_name() == "gearmand" {
        return;
    }
    let Some(srv) = server() else { return };
    let mut worker = php_worker_asleep(&srv, "sched_php");
    let unix_now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64());
    let mut client = sprocket_testkit::wire::Conn::connect(srv.port);
    let submitted = unix_now().unwrap_or(0.0);
    let star: &[u8] = b"*";
    client.send_req(
        sprocket_testkit::wire::kind::SUBMIT_JOB_SCHED,
        &[b"sched_php", b"s1", star, star, star, star, star, b"at the minute"],
    );
    client.expect_packet("JOB_CREATED");
    worker.wait_for_line("JOB ", Duration::from_secs(75));
    let ran = unix_now().unwrap_or(0.0);
    worker.stop();
    let minute = (submitted / 60.0).floor() * 60.0 + 60.0;
    assert!(ran >= minute, "ran at {ran:.1}, before the next minute {minute}");
    assert!(ran < minute + 5.0, "ran at {ran:.1}, long after its minute {minute}");
}
