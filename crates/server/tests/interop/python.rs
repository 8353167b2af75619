//! pygearman (PyPI, the maintained Python 3 fork of python-gearman) against
//! the server under test: GearmanClient (foreground, background,
//! wait_until_complete=False, get_job_status), GearmanWorker, and
//! GearmanAdminClient (ping_server sends binary ECHO_REQ on the text
//! connection; get_status, get_workers, send_maxqueue, get_version).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::wait_for_workers;
use sprocket_testkit::{interop_dir, require_tool, ServerProcess};

fn python_ready() -> bool {
    if !require_tool("python3") {
        return false;
    }
    let out = run(Command::new("python3").args(["-c", "import gearman.admin_client"]), b"", Duration::from_secs(20));
    if !out.success() {
        sprocket_testkit::skip("python module gearman (pip install pygearman) not installed");
        return false;
    }
    true
}

fn script() -> std::path::PathBuf {
    interop_dir().join("python/pygearman_scenarios.py")
}

fn scenario(mode: &str, prefix: &str) {
    if !python_ready() {
        return;
    }
    let Some(srv) = ServerProcess::under_test(Path::new(env!("CARGO_BIN_EXE_sprocketd")), &[]) else { return };
    let addr = format!("127.0.0.1:{}", srv.port);
    let mut cmd = Command::new("python3");
    cmd.arg(script()).args(["worker", &addr, prefix]);
    let worker = Background::spawn("pygearman worker", &mut cmd);
    wait_for_workers(srv.port, &format!("{prefix}_rev"), 1);
    wait_for_workers(srv.port, &format!("{prefix}_slow"), 1);

    let mut cmd = Command::new("python3");
    cmd.arg(script()).args([mode, &addr, prefix]);
    let out = run(&mut cmd, b"", Duration::from_secs(60));
    assert!(
        out.success() && out.stdout_text().contains("PASS"),
        "pygearman {mode} against {}: {}\n--- worker ---\n{}",
        srv.name,
        out.describe(),
        worker.output()
    );
}

#[test]
fn pygearman_client_foreground_background_and_status() {
    scenario("client", "pyc");
}

#[test]
fn pygearman_admin_client() {
    scenario("admin", "pya");
}
