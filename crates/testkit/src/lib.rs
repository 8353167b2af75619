//! Test support shared by every crate's integration tests: free ports,
//! starting and stopping real `sprocketd` / `gearmand` processes, and the
//! project's rule for missing tools (print `SKIPPED:`; fail under CI=true).
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod databases;
pub mod differential;
pub mod process;
pub mod status;
pub mod wire;

/// The repository's `tests/interop` directory (third-party client scripts).
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Which server `SPROCKET_TEST_SERVER` selects: `"gearmand"` or `"sprocketd"`.
pub fn server_under_test_name() -> &'static str {
    match std::env::var("SPROCKET_TEST_SERVER").as_deref() {
        Ok("gearmand") => "gearmand",
        _ => "sprocketd",
    }
}

/// True when running under CI (`CI=true`), where nothing may be skipped.
pub fn under_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// Reports a missing prerequisite. Returns normally (the caller then
/// returns from the test) outside CI; panics under CI so the run fails.
pub fn skip(why: &str) {
    if under_ci() {
        panic!("required for CI but missing: {why}");
    }
    println!("SKIPPED: {why}");
    eprintln!("SKIPPED: {why}");
}

/// Finds an executable on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

/// Checks a tool is present, or reports it via [`skip`] and returns false.
pub fn require_tool(tool: &str) -> bool {
    if which(tool).is_some() || Path::new(tool).is_file() {
        true
    } else {
        skip(&format!("`{tool}` not installed"));
        false
    }
}

/// Checks that Perl and its Gearman::Client / Gearman::Worker modules
/// (Debian libgearman-client-perl) are installed, or reports via [`skip`].
pub fn require_perl_gearman() -> bool {
    if !require_tool("perl") {
        return false;
    }
    let out = process::run(
        Command::new("perl").args(["-MGearman::Client", "-MGearman::Worker", "-e1"]),
        b"",
        Duration::from_secs(20),
    );
    if !out.success() {
        skip("Perl Gearman::Client (libgearman-client-perl) not installed");
        return false;
    }
    true
}

/// Checks that PHP and its gearman extension (Debian php-cli, php-gearman)
/// are installed, or reports via [`skip`].
pub fn require_php_gearman() -> bool {
    if !require_tool("php") {
        return false;
    }
    let out = process::run(
        Command::new("php").args(["-r", "exit(extension_loaded('gearman') ? 0 : 1);"]),
        b"",
        Duration::from_secs(20),
    );
    if !out.success() {
        skip("php-gearman extension not loaded");
        return false;
    }
    true
}

/// A TCP port that was free a moment ago on 127.0.0.1, and that this
/// process has not handed out before: tests run in parallel, and the
/// kernel may offer a just-released port to the next caller.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = l.local_addr().expect("local addr").port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Locates a binary of this workspace built in the same target directory
/// as the running test (`target/<profile>/<name>`). `cargo test --workspace`
/// builds every package's binaries before running any test.
pub fn workspace_bin(name: &str) -> PathBuf {
    find_workspace_bin(name).unwrap_or_else(|| {
        panic!(
            "{name} not built; run `cargo build --workspace` or `cargo test --workspace` (looked in target/<profile>)"
        )
    })
}

/// Like [`workspace_bin`], but `None` when the binary is not built.
/// `$<NAME>_BIN` (e.g. `SPROCKETD_BIN`) overrides the location.
pub fn find_workspace_bin(name: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(format!("{}_BIN", name.to_uppercase().replace('-', "_"))) {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<test-exe>
    let bin = exe.parent().and_then(Path::parent)?.join(name);
    bin.is_file().then_some(bin)
}

/// One fresh server of each kind available: Debian's gearmand and the
/// workspace's sprocketd. A missing one is reported with [`skip`] (a
/// failure under CI=true); `SPROCKET_TEST_SERVER=gearmand|sprocketd`
/// restricts the list to one kind.
pub fn every_server() -> Vec<ServerProcess> {
    let only = std::env::var("SPROCKET_TEST_SERVER").ok();
    let mut out = Vec::new();
    if only.as_deref() != Some("sprocketd") {
        if let Some(g) = ServerProcess::gearmand(&[]) {
            out.push(g);
        }
    }
    if only.as_deref() != Some("gearmand") {
        match find_workspace_bin("sprocketd") {
            Some(bin) => out.push(ServerProcess::sprocketd(&bin, &[])),
            None => skip("sprocketd not built (build sprocket-server or set SPROCKETD_BIN) for this scenario"),
        }
    }
    out
}

/// A server process started for a test; killed when dropped.
pub struct ServerProcess {
    pub port: u16,
    pub child: Child,
    pub name: String,
    /// A data directory made for this server, removed when it is dropped.
    scratch: Option<PathBuf>,
}

impl ServerProcess {
    /// Starts `bin args…`, which must listen on `port`, and waits until the
    /// port accepts connections (at most 20 s).
    pub fn start(name: &str, bin: &Path, args: &[String], port: u16) -> ServerProcess {
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("SPROCKET_TEST_VERBOSE").is_some() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut server = ServerProcess { port, child, name: name.to_string(), scratch: None };
        server.wait_ready(Duration::from_secs(20));
        server
    }

    /// Starts `sprocketd` on a free port plus `extra` flags. Unless `extra`
    /// picks a queue, the queue is in memory, or with
    /// `SPROCKET_TEST_QUEUE=default` sprocketd's own default (durable
    /// SQLite, in a scratch data directory), so that any suite can be run
    /// against the configuration users get out of the box.
    pub fn sprocketd(bin: &Path, extra: &[&str]) -> ServerProcess {
        let port = free_port();
        let mut args = vec!["--port".to_string(), port.to_string(), "--listen".into(), "127.0.0.1".into()];
        let mut scratch = None;
        if !extra.iter().any(|a| a.starts_with("-q") || a.starts_with("--queue-type")) {
            if std::env::var("SPROCKET_TEST_QUEUE").as_deref() == Ok("default") {
                let dir = std::env::temp_dir().join(format!("sprocket-test-data-{}-{port}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                args.push("--data-dir".into());
                args.push(dir.display().to_string());
                scratch = Some(dir);
            } else {
                args.push("--queue-type=builtin".into());
            }
        }
        // The web port's default address is one per host: tests that want
        // a web port give their own free one.
        if !extra.iter().any(|a| a.starts_with("--web-listen")) {
            args.push("--web-listen=none".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut server = ServerProcess::start("sprocketd", bin, &args, port);
        server.scratch = scratch;
        server
    }

    /// Starts Debian's gearmand on a free port, or returns None (after
    /// [`skip`]) when it is not installed.
    pub fn gearmand(extra: &[&str]) -> Option<ServerProcess> {
        let bin = ["/usr/sbin/gearmand", "/usr/bin/gearmand"].iter().map(PathBuf::from).find(|p| p.is_file());
        let Some(bin) = bin else {
            skip("gearmand (Debian gearman-job-server) not installed");
            return None;
        };
        let port = free_port();
        let mut args = vec![
            "--port".to_string(),
            port.to_string(),
            "--listen".into(),
            "127.0.0.1".into(),
            "--log-file".into(),
            "none".into(),
            "--pid-file".into(),
            std::env::temp_dir().join(format!("gearmand-test-{port}.pid")).display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Some(ServerProcess::start("gearmand", &bin, &args, port))
    }

    /// The server under test, chosen by `SPROCKET_TEST_SERVER` (`sprocketd`
    /// by default, or `gearmand` to run the same scenario on the reference).
    pub fn under_test(sprocketd_bin: &Path, extra: &[&str]) -> Option<ServerProcess> {
        match std::env::var("SPROCKET_TEST_SERVER").as_deref() {
            Ok("gearmand") => ServerProcess::gearmand(extra),
            _ => Some(ServerProcess::sprocketd(sprocketd_bin, extra)),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits until the port answers and the process answering is ours:
    /// tests start servers in parallel, and a port that was free when
    /// chosen may meanwhile have been taken by another test's process.
    fn wait_ready(&mut self, limit: Duration) {
        let start = Instant::now();
        loop {
            if self.answers_as_ours() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited before listening on port {}: {status}", self.name, self.port);
            }
            assert!(start.elapsed() < limit, "{} did not listen on port {} within {limit:?}", self.name, self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True when `getpid` on the port answers with this child's pid.
    fn answers_as_ours(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        s.set_read_timeout(Some(Duration::from_secs(2))).ok();
        if s.write_all(b"getpid\r\n").is_err() {
            return false;
        }
        let mut reply = Vec::new();
        let mut buf = [0u8; 64];
        while !reply.contains(&b'\n') {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&reply).trim() == format!("OK {}", self.child.id())
    }

    /// Sends SIGKILL and waits.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `limit` for exit; returns the exit code.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends one admin text command and reads the reply: up to the `.` line
    /// for listings, else one line.
    pub fn admin(&self, command: &str) -> String {
        admin(self.port, command)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Sends one admin text command to `127.0.0.1:port` and returns the reply.
/// A reply is complete at a line that is `.` (listings) or at the first
/// line for one-line replies (`OK…`, `ERR…`).
pub fn admin(port: u16, command: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect for admin");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(format!("{command}\r\n").as_bytes()).expect("send admin command");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        let first_line_done = text.contains('\n');
        let one_liner = text.starts_with("OK") || text.starts_with("ERR");
        if (one_liner && first_line_done) || text == ".\n" || text.ends_with("\n.\n") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
