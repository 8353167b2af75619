//! Private database servers that a test may kill and restart without
//! disturbing the shared services on 5432/3306/6379.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sprocket_testkit::{free_port, skip};

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "{what} not ready within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `redis-server` on a free port, with an append-only file fsynced at
/// every write so its data survives our kill -9.
pub struct PrivateRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    password: Option<String>,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Option<PrivateRedis> {
        Self::start_with_password(None)
    }

    /// Starts one that requires AUTH with `password`.
    pub fn start_with_password(password: Option<&str>) -> Option<PrivateRedis> {
        if !sprocket_testkit::require_tool("redis-server") {
            return None;
        }
        let mut r = PrivateRedis {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            password: password.map(str::to_string),
            child: None,
        };
        r.restart();
        Some(r)
    }

    /// Starts (again) on the same port and directory.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(self.password.iter().flat_map(|p| ["--requirepass".to_string(), p.clone()]))
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let port = self.port.to_string();
        wait_for("private redis", Duration::from_secs(10), || {
            Command::new("redis-cli")
                .args(["-p", &port])
                .args(self.password.iter().flat_map(|p| ["-a".to_string(), p.clone(), "--no-auth-warning".to_string()]))
                .arg("PING")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
                .unwrap_or(false)
        });
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL cluster made with initdb in a temp directory, on a free
/// port, run as the `postgres` user when we are root (PostgreSQL refuses
/// to run as root).
pub struct PrivatePostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bindir: PathBuf,
    as_postgres: bool,
}

fn pg_bindir() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.join("initdb").is_file());
    from_pg_config.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

/// initdb needs a working `/dev/null`. A test elsewhere that handed
/// `/dev/null` to a program that deletes its pid file on exit once replaced
/// it with a regular file; put the device back (root only) rather than fail
/// for someone else's reason.
fn ensure_dev_null() {
    use std::os::unix::fs::FileTypeExt;
    let ok = std::fs::metadata("/dev/null").map(|m| m.file_type().is_char_device()).unwrap_or(false);
    if !ok && nix::unistd::geteuid().is_root() {
        eprintln!("WARNING: /dev/null is not a device; recreating it");
        let _ = std::fs::remove_file("/dev/null");
        let _ = Command::new("mknod").args(["-m", "666", "/dev/null", "c", "1", "3"]).status();
    }
}

impl PrivatePostgres {
    pub fn start() -> Option<PrivatePostgres> {
        ensure_dev_null();
        let Some(bindir) = pg_bindir() else {
            skip("PostgreSQL server binaries (initdb, pg_ctl) not installed");
            return None;
        };
        let as_postgres = nix::unistd::geteuid().is_root();
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = PrivatePostgres { port: free_port(), dir, bindir, as_postgres };
        if as_postgres {
            let ok = Command::new("chown").arg("postgres:postgres").arg(pg.dir.path()).status().map(|s| s.success());
            assert_eq!(ok.ok(), Some(true), "chown temp dir to postgres");
        }
        let data = pg.data_dir();
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
        pg.restart();
        Some(pg)
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let bin = self.bindir.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let out = cmd.args(args).current_dir(self.dir.path()).output().expect("run postgres tool");
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn conninfo(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }

    /// Starts (again) and waits until it accepts connections.
    pub fn restart(&self) {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        let log = self.dir.path().join("log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data_dir(), "-o", &opts, "-l", &log, "-w", "-t", "60", "start"]);
    }

    /// Stops like a crash: no checkpoint, connections cut.
    pub fn kill(&self) {
        self.run("pg_ctl", &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let bin = self.bindir.join("pg_ctl");
        let data = self.data_dir();
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let _ = cmd.args(["-D", &data, "-m", "immediate", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}
