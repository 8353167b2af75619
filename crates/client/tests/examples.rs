//! The seed-004 example programs run against real servers: the reverse
//! worker, its client, and the background submit with a status poll.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::servers;
use sprocket_testkit::process::{run, Background};

/// `cargo test` builds the examples next to the test binaries.
fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("examples").join(name);
    if bin.is_file() {
        Some(bin)
    } else {
        sprocket_testkit::skip(&format!("example {name} not built (run `cargo test -p sprocket-client`)"));
        None
    }
}

#[test]
fn reverse_worker_client_and_background_status() {
    let (Some(worker), Some(client), Some(bg)) =
        (example("reverse_worker"), example("reverse_client"), example("background_status"))
    else {
        return;
    };
    for srv in servers() {
        let mut cmd = Command::new(&worker);
        cmd.arg(srv.addr()).env("SPROCKET_STEP_MS", "1");
        let mut w = Background::spawn("reverse_worker example", &mut cmd);
        w.wait_for_line("Waiting for job...", Duration::from_secs(10));
        let out = run(Command::new(&client).arg(srv.addr()), b"", Duration::from_secs(20));
        assert!(out.success(), "{}", out.describe());
        let text = out.stdout_text();
        assert!(text.contains("ABC123: 100% Complete"), "{text}");
        assert!(text.contains("done: 321CBA") && text.contains("done: 654FED"), "{text}");
        let out = run(Command::new(&bg).arg(srv.addr()), b"", Duration::from_secs(20));
        assert!(out.success(), "{}", out.describe());
        assert!(out.stdout_text().ends_with("both jobs finished\n"), "{}", out.describe());
        w.wait_for_line("Result: 654FED", Duration::from_secs(10));
        w.stop();
    }
}
