//! Real databases for the queue-store tests: the shared local services
//! (PostgreSQL 5432, MariaDB 3306, Redis 6379), reached through their own
//! command-line clients, and PRIVATE instances on free ports that a test may
//! stop and start without disturbing anybody else.
//!
//! Every external command runs under a time limit ([`crate::process::run`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::process::{run, RunOutput};
use crate::{free_port, skip, which};

/// How long one client command (psql, mysql, redis-cli) may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(20);

/// A name no other test (or concurrent test run) uses: `<stem>_<pid>_<n>_<nanos>`,
/// lower case so PostgreSQL's folding of unquoted names does not matter.
pub fn unique_name(stem: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{stem}_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos % 100_000).to_lowercase()
}

/// A directory removed (with its contents) when dropped. `world_open`
/// makes it usable by the `postgres`/`mysql` users a private server runs as.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(stem: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(&format!("sprocket-{stem}")));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Polls `ready` every 50 ms until it holds; false after `limit`.
pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if ready() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn client(cmd: &mut Command) -> RunOutput {
    run(cmd, b"", CLIENT_LIMIT)
}

/// psql against `127.0.0.1:port`, database `db`, user postgres; returns
/// the unaligned, tuples-only output, or Err with stderr.
pub fn psql_at(port: u16, db: &str, sql: &str) -> Result<String, String> {
    let out = client(Command::new("psql").args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "postgres",
        "-d",
        db,
        "-v",
        "ON_ERROR_STOP=1",
        "-tAc",
        sql,
    ]));
    if out.success() {
        Ok(out.stdout_text())
    } else {
        Err(out.describe())
    }
}

/// psql on the shared PostgreSQL, database `test`.
pub fn psql(sql: &str) -> Result<String, String> {
    psql_at(5432, "test", sql)
}

/// mysql (batch mode, no column names) against `127.0.0.1:port` as root.
pub fn mysql_at(port: u16, db: &str, sql: &str) -> Result<String, String> {
    let out = client(Command::new("mysql").args([
        "-h",
        "127.0.0.1",
        "-P",
        &port.to_string(),
        "-u",
        "root",
        "--connect-timeout=5",
        db,
        "-N",
        "-B",
        "-e",
        sql,
    ]));
    if out.success() {
        Ok(out.stdout_text())
    } else {
        Err(out.describe())
    }
}

/// mysql on the shared MariaDB, database `test`.
pub fn mysql(sql: &str) -> Result<String, String> {
    mysql_at(3306, "test", sql)
}

/// redis-cli against `127.0.0.1:port`; returns stdout (raw replies).
pub fn redis_cli_at(port: u16, args: &[&str]) -> String {
    redis_cli_auth(port, None, args)
}

/// Like [`redis_cli_at`], sending AUTH `password` first when there is one.
pub fn redis_cli_auth(port: u16, password: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(password) = password {
        cmd.args(["-a", password, "--no-auth-warning"]);
    }
    client(cmd.args(args)).stdout_text()
}

/// redis-cli on the shared Redis.
pub fn redis_cli(args: &[&str]) -> String {
    redis_cli_at(6379, args)
}

/// The keys matching `pattern` (walked with SCAN, as sprocketd does).
pub fn redis_keys_at(port: u16, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> =
        redis_cli_at(port, &["--scan", "--pattern", pattern]).lines().map(str::to_string).collect();
    keys.sort();
    keys
}

/// Deletes every key matching `pattern`.
pub fn redis_delete_at(port: u16, pattern: &str) {
    for k in redis_keys_at(port, pattern) {
        redis_cli_at(port, &["DEL", &k]);
    }
}

/// The shared local services a test can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    Postgres,
    Mysql,
    Redis,
}

/// True when the shared service answers; otherwise reports it with
/// [`skip`] (which fails the test under CI=true) and returns false.
pub fn shared_available(service: Shared) -> bool {
    let tool = match service {
        Shared::Postgres => "psql",
        Shared::Mysql => "mysql",
        Shared::Redis => "redis-cli",
    };
    if which(tool).is_none() {
        skip(&format!("`{tool}` not installed"));
        return false;
    }
    let up = match service {
        Shared::Postgres => psql("SELECT 1").is_ok(),
        Shared::Mysql => mysql("SELECT 1").is_ok(),
        Shared::Redis => redis_cli(&["PING"]).trim() == "PONG",
    };
    if !up {
        skip(&format!("shared {service:?} is not running on localhost"));
    }
    up
}

/// A table (SQL) or key prefix (Redis) on a shared service that only one
/// test uses; dropped, with sprocketd's `sprocket_meta` row and the job
/// records and handle counter kept for it, when this value is dropped —
/// also when the test panics.
pub struct SharedTable {
    pub service: Shared,
    pub name: String,
}

impl SharedTable {
    /// A fresh name on `service`, or None after [`skip`] when it is down.
    pub fn new(service: Shared, stem: &str) -> Option<SharedTable> {
        shared_available(service).then(|| SharedTable { service, name: unique_name(stem) })
    }

    /// Number of stored jobs: rows in the table, or keys under the prefix.
    pub fn count(&self) -> usize {
        let n = &self.name;
        match self.service {
            Shared::Postgres => psql(&format!("SELECT COUNT(*) FROM \"{n}\"")),
            Shared::Mysql => mysql(&format!("SELECT COUNT(*) FROM `{n}`")),
            Shared::Redis => return redis_keys_at(6379, &format!("{n}-*")).len(),
        }
        .unwrap_or_else(|e| panic!("count rows of {n}: {e}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("count rows of {n}: {e}"))
    }
}

impl Drop for SharedTable {
    fn drop(&mut self) {
        let n = &self.name;
        match self.service {
            Shared::Postgres => {
                let _ = psql(&format!("DROP TABLE IF EXISTS \"{n}\""));
                let _ = psql(&format!("DELETE FROM sprocket_meta WHERE queue_table = '{n}'"));
                let _ = psql(&format!("DELETE FROM sprocket_records WHERE namespace = '{n}'"));
                let _ = psql(&format!("DELETE FROM sprocket_handles WHERE namespace = '{n}'"));
                let _ = psql(&format!("DELETE FROM sprocket_settings WHERE namespace = '{n}'"));
            }
            Shared::Mysql => {
                let _ = mysql(&format!("DROP TABLE IF EXISTS `{n}`"));
                let _ = mysql(&format!("DELETE FROM sprocket_meta WHERE queue_table = '{n}'"));
                let _ = mysql(&format!("DELETE FROM sprocket_records WHERE namespace = '{n}'"));
                let _ = mysql(&format!("DELETE FROM sprocket_handles WHERE namespace = '{n}'"));
                let _ = mysql(&format!("DELETE FROM sprocket_settings WHERE namespace = '{n}'"));
            }
            Shared::Redis => {
                redis_delete_at(6379, &format!("{n}-*"));
                // The Redis store's side hashes (see its module docs).
                redis_delete_at(6379, &format!("sprocket-side:{n}-*"));
                // The key layout's version, a field per prefix.
                let _ = redis_cli(&["HDEL", "sprocket_meta", n]);
                // Job records (`sprocket_rec*:<length>:<prefix>…`) and the
                // prefix's handle counter.
                // Operator settings (`sprocket_set:<length>:<prefix>:<kind>`) too.
                for kind in ["sprocket_rec", "sprocket_rec_ended", "sprocket_rec_live", "sprocket_set"] {
                    redis_delete_at(6379, &format!("{kind}:*:{n}*"));
                }
                let _ = redis_cli(&["HDEL", "sprocket_handles", n, &format!("{n}-")]);
            }
        }
    }
}

/// The key patterns of the job records sprocketd keeps in Redis under
/// `prefix` (see the Redis store's module docs): the record hashes, and
/// the sets of ended and of live handles.
pub fn redis_record_keys(prefix: &str) -> [String; 3] {
    let tagged = format!("{}:{prefix}", prefix.len());
    [format!("sprocket_rec:{tagged}:*"), format!("sprocket_rec_ended:{tagged}"), format!("sprocket_rec_live:{tagged}")]
}

/// Runs `program args` as `user` when we are root (the database servers
/// refuse to run as root), otherwise as ourselves.
fn as_user(user: &str, program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", user, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    // /proc/self belongs to the effective user; this avoids unsafe libc calls.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

fn chown(path: &Path, owner: &str) {
    if is_root() {
        let out = client(Command::new("chown").arg("-R").arg(owner).arg(path));
        assert!(out.success(), "chown {owner} {}: {}", path.display(), out.describe());
    }
}

/// A PostgreSQL cluster made with `initdb` in a temp directory and run
/// with `pg_ctl` on a free port (as the `postgres` user when we are root).
pub struct PrivatePostgres {
    pub port: u16,
    dir: TempDir,
    bindir: PathBuf,
}

/// The newest Debian-style `/usr/lib/postgresql/<version>/bin`, else what
/// `pg_config --bindir` names (other layouts), if it holds initdb and pg_ctl.
fn pg_bindir() -> Option<PathBuf> {
    let has_tools = |p: &PathBuf| p.join("initdb").is_file() && p.join("pg_ctl").is_file();
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| dir.flatten().map(|e| e.path().join("bin")).filter(has_tools).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().or_else(|| {
        which("pg_config")?;
        let out = client(Command::new("pg_config").arg("--bindir"));
        Some(PathBuf::from(out.stdout_text().trim())).filter(|p| out.success() && has_tools(p))
    })
}

/// initdb and pg_ctl need a working `/dev/null`. Some other program run by
/// the test suites (one given `/dev/null` as a file it later replaces) has
/// turned it into a regular file before; put the device back (root only)
/// rather than fail for someone else's reason.
fn ensure_dev_null() {
    use std::os::unix::fs::FileTypeExt;
    let ok = std::fs::metadata("/dev/null").map(|m| m.file_type().is_char_device()).unwrap_or(false);
    if !ok && is_root() {
        eprintln!("WARNING: /dev/null is not a device; recreating it");
        let _ = std::fs::remove_file("/dev/null");
        let _ = run(Command::new("mknod").args(["-m", "666", "/dev/null", "c", "1", "3"]), b"", CLIENT_LIMIT);
    }
}

impl PrivatePostgres {
    /// Creates and starts one, or returns None after [`skip`].
    pub fn start() -> Option<PrivatePostgres> {
        ensure_dev_null();
        let Some(bindir) = pg_bindir() else {
            skip("PostgreSQL server binaries (initdb, pg_ctl) not installed");
            return None;
        };
        if which("psql").is_none() {
            skip("`psql` not installed");
            return None;
        }
        let dir = TempDir::new("pg");
        chown(dir.path(), "postgres:postgres");
        let pg = PrivatePostgres { port: free_port(), dir, bindir };
        let data = pg.data_dir();
        pg.tool("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
        pg.start_again();
        Some(pg)
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn tool(&self, tool: &str, args: &[&str]) {
        let out = run(
            as_user("postgres", &self.bindir.join(tool)).args(args).current_dir(self.dir.path()),
            b"",
            Duration::from_secs(90),
        );
        assert!(out.success(), "{tool} {args:?}: {}", out.describe());
    }

    /// A libpq connection string for it (database `postgres`).
    pub fn conninfo(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }

    /// SQL through psql.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        psql_at(self.port, "postgres", sql)
    }

    /// Starts it (again) and waits until it accepts connections.
    pub fn start_again(&self) {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        let log = self.dir.path().join("log").display().to_string();
        self.tool("pg_ctl", &["-D", &self.data_dir(), "-o", &opts, "-l", &log, "-w", "-t", "60", "start"]);
    }

    /// Stops it fast (`-m fast`: connections are cut, data is kept).
    pub fn stop(&self) {
        self.tool("pg_ctl", &["-D", &self.data_dir(), "-m", "fast", "-w", "-t", "60", "stop"]);
    }

    /// Stops it like a crash (`-m immediate`: no checkpoint, connections
    /// cut; the next start recovers committed data from the WAL).
    pub fn kill(&self) {
        self.tool("pg_ctl", &["-D", &self.data_dir(), "-m", "immediate", "-w", "-t", "60", "stop"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = run(
            as_user("postgres", &self.bindir.join("pg_ctl")).args(["-D", &data, "-m", "immediate", "-w", "stop"]),
            b"",
            Duration::from_secs(30),
        );
    }
}

/// `redis-server` on a free port with an append-only file fsynced at every
/// write, so what it acknowledged survives its own stop (a SIGKILL).
pub struct PrivateRedis {
    pub port: u16,
    dir: TempDir,
    password: Option<String>,
    server: Option<crate::process::Background>,
}

impl PrivateRedis {
    /// Starts one, or returns None after [`skip`].
    pub fn start() -> Option<PrivateRedis> {
        Self::launch(None)
    }

    /// Starts one that requires AUTH with `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> Option<PrivateRedis> {
        Self::launch(Some(password))
    }

    fn launch(password: Option<&str>) -> Option<PrivateRedis> {
        if which("redis-server").is_none() || which("redis-cli").is_none() {
            skip("`redis-server`/`redis-cli` not installed");
            return None;
        }
        let mut r = PrivateRedis {
            port: free_port(),
            dir: TempDir::new("redis"),
            password: password.map(str::to_string),
            server: None,
        };
        r.start_again();
        Some(r)
    }

    /// Starts it (again) on the same port and directory; waits for PONG.
    pub fn start_again(&mut self) {
        let server = crate::process::Background::spawn(
            "redis-server",
            Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
                .args(["--appendonly", "yes", "--appendfsync", "always"])
                .args(self.password.iter().flat_map(|p| ["--requirepass", p.as_str()]))
                .arg("--dir")
                .arg(self.dir.path()),
        );
        self.server = Some(server);
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(15), || self.cli(&["PING"]).trim() == "PONG"),
            "private redis-server on {port} did not answer PING:\n{}",
            self.server.as_ref().map(|s| s.output()).unwrap_or_default()
        );
    }

    /// Stops it (SIGKILL of its process group; the AOF keeps the data).
    pub fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.stop();
        }
    }

    /// redis-cli against it (authenticating when it has a password).
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli_auth(self.port, self.password.as_deref(), args)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A MariaDB server made with `mariadb-install-db` in a temp directory and
/// run on a free port; root has no password, database `test` exists.
pub struct PrivateMariadb {
    pub port: u16,
    dir: TempDir,
    server: Option<crate::process::Background>,
}

impl PrivateMariadb {
    /// Creates and starts one, or returns None after [`skip`].
    pub fn start() -> Option<PrivateMariadb> {
        ensure_dev_null();
        let install = ["mariadb-install-db", "mysql_install_db"].into_iter().find_map(which);
        let daemon = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"].into_iter().map(PathBuf::from).find(|p| p.is_file());
        let (Some(install), Some(_)) = (install, daemon) else {
            skip("MariaDB server (mariadb-install-db, mariadbd) not installed");
            return None;
        };
        if which("mysql").is_none() {
            skip("`mysql` client not installed");
            return None;
        }
        let m = PrivateMariadb { port: free_port(), dir: TempDir::new("mariadb"), server: None };
        chown(m.dir.path(), "mysql:mysql");
        // Two bootstraps at once can collide inside mariadb-install-db
        // (seen once under load); tests in one binary take turns.
        static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
        let out = run(
            Command::new(install).args([
                "--no-defaults",
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                &format!("--datadir={}", m.data_dir()),
            ]),
            b"",
            Duration::from_secs(120),
        );
        assert!(out.success(), "mariadb-install-db: {}", out.describe());
        let mut m = m;
        m.start_again();
        mysql_at(m.port, "mysql", "CREATE DATABASE IF NOT EXISTS test").expect("create database test");
        Some(m)
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Starts it (again) and waits until it answers.
    pub fn start_again(&mut self) {
        let daemon = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .expect("mariadbd");
        let server = crate::process::Background::spawn(
            "mariadbd",
            Command::new(daemon).args([
                "--no-defaults".to_string(),
                "--user=mysql".to_string(),
                format!("--datadir={}", self.data_dir()),
                format!("--port={}", self.port),
                "--bind-address=127.0.0.1".to_string(),
                format!("--socket={}/mysqld.sock", self.dir.path().display()),
                format!("--pid-file={}/mysqld.pid", self.dir.path().display()),
                "--skip-log-bin".to_string(),
                "--innodb-buffer-pool-size=16M".to_string(),
                "--skip-name-resolve".to_string(),
            ]),
        );
        self.server = Some(server);
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(60), || mysql_at(port, "mysql", "SELECT 1").is_ok()),
            "private mariadbd on {port} did not answer:\n{}",
            self.server.as_ref().map(|s| s.output()).unwrap_or_default()
        );
    }

    /// Stops it (SIGKILL: InnoDB recovers committed data at the next start).
    pub fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.stop();
        }
    }

    /// SQL through the mysql client, database `test`.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        mysql_at(self.port, "test", sql)
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        self.stop();
    }
}
