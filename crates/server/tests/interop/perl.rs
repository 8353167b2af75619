//! Perl Gearman::Client / Gearman::Worker (Debian libgearman-client-perl
//! 2.004) against the server under test: do_task with on_status,
//! dispatch_background + get_status, task sets. The worker's false-value
//! and die() cases, where Sprocket deliberately differs from gearmand, are
//! in differential/sprocket_fixes.rs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::wait_for_workers;
use sprocket_testkit::{interop_dir, ServerProcess};

/// Starts a Perl worker for `prefix` and waits until it has registered.
pub fn perl_worker(port: u16, prefix: &str) -> Background {
    let mut cmd = Command::new("perl");
    cmd.arg(interop_dir().join("perl/worker.pl")).args([&format!("127.0.0.1:{port}"), prefix]);
    let w = Background::spawn("perl worker.pl", &mut cmd);
    wait_for_workers(port, &format!("{prefix}_rev"), 1);
    w
}

fn perl_client(port: u16, prefix: &str, scenarios: &[&str], worker: &Background) {
    let mut cmd = Command::new("perl");
    cmd.arg(interop_dir().join("perl/client.pl")).arg(format!("127.0.0.1:{port}")).arg(prefix).args(scenarios);
    let out = run(&mut cmd, b"", Duration::from_secs(60));
    assert!(
        out.success() && out.stdout_text().contains("PASS"),
        "perl client {scenarios:?}: {}\n--- worker ---\n{}",
        out.describe(),
        worker.output()
    );
}

fn server() -> Option<ServerProcess> {
    if !sprocket_testkit::require_perl_gearman() {
        return None;
    }
    ServerProcess::under_test(Path::new(env!("CARGO_BIN_EXE_sprocketd")), &[])
}

#[test]
fn perl_do_task_with_status() {
    let Some(srv) = server() else { return };
    let w = perl_worker(srv.port, "pdo");
    perl_client(srv.port, "pdo", &["do_task"], &w);
}

#[test]
fn perl_dispatch_background_and_get_status() {
    let Some(srv) = server() else { return };
    let w = perl_worker(srv.port, "pbg");
    perl_client(srv.port, "pbg", &["background"], &w);
}

#[test]
fn perl_task_set() {
    let Some(srv) = server() else { return };
    let w = perl_worker(srv.port, "pts");
    perl_client(srv.port, "pts", &["taskset"], &w);
}
