//! Shared helpers: servers (gearmand and sprocketd), the real tools and
//! ours (sprocket linked as `gearman` / `gearadmin`), workers and runs.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sprocket_testkit::process::{run, Background, RunOutput};
use sprocket_testkit::{skip, ServerProcess};

pub const LIMIT: Duration = Duration::from_secs(20);

/// The sprocket binary built for these tests.
pub fn sprocket() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sprocket"))
}

/// A directory holding `gearman` and `gearadmin` symlinks to sprocket.
pub fn our_bin_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("temp dir");
        for name in ["gearman", "gearadmin"] {
            std::os::unix::fs::symlink(sprocket(), d.path().join(name)).expect("symlink");
        }
        d
    })
    .path()
}

/// Which implementation of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Real,
    Ours,
}

impl Tool {
    pub fn path(self, name: &str) -> PathBuf {
        match self {
            Tool::Real => PathBuf::from("/usr/bin").join(name),
            Tool::Ours => our_bin_dir().join(name),
        }
    }
}

/// True when Debian's gearman-tools are installed (else SKIPPED).
pub fn have_real_tools() -> bool {
    if Path::new("/usr/bin/gearman").is_file() && Path::new("/usr/bin/gearadmin").is_file() {
        return true;
    }
    skip("gearman-tools (/usr/bin/gearman, /usr/bin/gearadmin) not installed");
    false
}

/// sprocketd built next to our binary, or `$SPROCKETD_BIN`.
pub fn sprocketd_bin() -> Option<PathBuf> {
    sprocket_testkit::find_workspace_bin("sprocketd")
}

/// One fresh server of each available kind (gearmand, sprocketd).
pub fn servers() -> Vec<ServerProcess> {
    sprocket_testkit::every_server()
}

/// Runs `tool name args…` against `port` with `stdin`.
pub fn run_tool<S: AsRef<OsStr>>(tool: Tool, name: &str, port: u16, args: &[S], stdin: &[u8]) -> RunOutput {
    let mut cmd = Command::new(tool.path(name));
    cmd.args(["-p", &port.to_string()]).args(args).env_remove("GEARMAN_SERVER").env_remove("GEARMAN_SERVERS");
    run(&mut cmd, stdin, LIMIT)
}

/// Starts a gearman(1)-style worker (`-w`) of either implementation.
/// `function` is the name as the server's `status` shows it (lossy text).
pub fn start_worker<S: AsRef<OsStr>>(tool: Tool, srv: &ServerProcess, args: &[S], function: &str) -> Background {
    let mut cmd = Command::new(tool.path("gearman"));
    cmd.args(["-w", "-p", &srv.port.to_string()]).args(args).env_remove("GEARMAN_SERVER").env_remove("GEARMAN_SERVERS");
    let bg = Background::spawn(&format!("{tool:?} gearman worker"), &mut cmd);
    wait_workers(srv, function, 1);
    bg
}

/// Waits until `function` has at least `n` registered workers.
pub fn wait_workers(srv: &ServerProcess, function: &str, n: u64) {
    let start = Instant::now();
    loop {
        let status = srv.admin("status");
        let count = status
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.len() == 4 && f[0] == function).then(|| f[3].parse::<u64>().unwrap_or(0))
            })
            .next()
            .unwrap_or(0);
        if count >= n {
            return;
        }
        assert!(start.elapsed() < LIMIT, "{}: no worker for {function}: {status}", srv.name);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replaces job handles (`H:host:N`) so runs can be compared.
pub fn normalise_handles(text: &str) -> String {
    text.split('\n')
        .map(|line| match line.find("H:") {
            Some(i) => format!("{}H:<handle>", &line[..i]),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
