//! Shared helpers for the store's integration tests: the local database
//! services, unique table names, sample jobs with awkward bytes, cleanup.
#![allow(dead_code)]

pub mod private;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use sprocket_proto::Priority;
use sprocket_store::{JobKey, Store, StoreConfig, StoreOp, StoredJob, SyncMode};

pub const PG_CONNINFO: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";
pub const MYSQL_HOST: &str = "127.0.0.1";
pub const MYSQL_PORT: u16 = 3306;
pub const REDIS_PORT: u16 = 6379;

/// A name no other test (or test run) uses: `<stem>_<pid>_<n>_<nanos>`.
pub fn unique_name(stem: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{stem}_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos % 100_000)
}

pub fn job(function: &[u8], unique: &[u8], priority: Priority, data: &[u8], when: i64) -> StoredJob {
    StoredJob {
        function: Bytes::copy_from_slice(function),
        unique: Bytes::copy_from_slice(unique),
        priority,
        data: Bytes::copy_from_slice(data),
        when,
    }
}

pub fn key(function: &[u8], unique: &[u8]) -> JobKey {
    JobKey { function: Bytes::copy_from_slice(function), unique: Bytes::copy_from_slice(unique) }
}

/// Jobs whose names and data exercise every awkward byte pattern.
/// `short` keeps every stored value within gearmand's VARCHAR(64) unique
/// even after escaping (for tables gearmand created).
pub fn odd_jobs(short: bool) -> Vec<StoredJob> {
    let all_bytes: Vec<u8> = (0u8..=255).collect();
    let mut v = vec![
        job(b"plain", b"u1", Priority::Normal, b"hello", 0),
        job(b"my-func", b"r-5", Priority::High, b"hyphens", 0),
        job(b"my-func", b"6f1e0c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6", Priority::Low, b"uuid unique", 0),
        job(b"it's \"quoted\"", b"'; DROP TABLE x; --", Priority::Low, b"quotes", 0),
        job("crab \u{1F980} fn".as_bytes(), "\u{1F600}ü".as_bytes(), Priority::Normal, "\u{1F980}".as_bytes(), 0),
        job(&[0xff, 0xfe, 0x00, 0x01], &[0x00, 0x00, 0x00], Priority::High, &[0x00, 0xff], 0),
        job(b"nul\0inside", b"a\0b", Priority::Normal, b"data\0with\0nuls", 0),
        job(b"empty-unique", b"", Priority::Normal, b"x", 0),
        job(b"empty-data", b"e1", Priority::Low, b"", 0),
        job(b"%~marker", b"%~u", Priority::Normal, b"%", 0),
        job(b"percent%", b"100%", Priority::Normal, b"%41", 0),
        job(b"epoch", b"later", Priority::Normal, b"scheduled", 4_102_444_800),
        job(b"epoch", b"soon", Priority::Normal, b"scheduled", 1_900_000_000),
        job(b"back\\slash", b"star*?[x]", Priority::High, b"globby", 0),
        job(b"plain", b"~sprocket:generated-1", Priority::Normal, b"generated unique", 0),
        job(b"big", b"u", Priority::Normal, &vec![0xAB; 300_000], 0),
    ];
    if !short {
        v.push(job(&all_bytes, &all_bytes[..64], Priority::Normal, &all_bytes, 0));
        v.push(job(b"long-unique", &[b'x'; 64], Priority::Normal, b"64-byte unique", 0));
    }
    v
}

/// Sorts jobs by key so two loads can be compared.
pub fn sorted(mut jobs: Vec<StoredJob>) -> Vec<StoredJob> {
    jobs.sort_by(|a, b| (&a.function, &a.unique).cmp(&(&b.function, &b.unique)));
    jobs
}

pub fn inserts(jobs: &[StoredJob]) -> Vec<StoreOp> {
    jobs.iter().cloned().map(StoreOp::Insert).collect()
}

/// Asserts two job lists hold the same jobs, with a readable diff.
pub fn assert_same_jobs(got: Vec<StoredJob>, want: Vec<StoredJob>) {
    let got = sorted(got);
    let want = sorted(want);
    if got != want {
        let show = |j: &StoredJob| {
            format!(
                "{:?}/{:?} p{} when {} data {} bytes",
                String::from_utf8_lossy(&j.function),
                String::from_utf8_lossy(&j.unique),
                j.priority.code(),
                j.when,
                j.data.len()
            )
        };
        for j in &want {
            if !got.contains(j) {
                eprintln!("missing or different: {}", show(j));
            }
        }
        for j in &got {
            if !want.contains(j) {
                eprintln!("unexpected: {}", show(j));
            }
        }
        panic!("loaded {} jobs, wanted {}", got.len(), want.len());
    }
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

/// Runs SQL on the shared PostgreSQL with psql; true on success.
pub fn psql(sql: &str) -> bool {
    quiet(Command::new("psql").args([
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        "test",
        "-v",
        "ON_ERROR_STOP=1",
        "-qc",
        sql,
    ]))
}

/// Runs SQL on the shared PostgreSQL and returns its unaligned output.
pub fn psql_out(sql: &str) -> String {
    let out = Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tAc", sql]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

/// Runs SQL on the shared MariaDB (database `test`).
pub fn mysql(sql: &str) -> bool {
    quiet(Command::new("mysql").args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "test", "-e", sql]))
}

pub fn mysql_out(sql: &str) -> String {
    let out = Command::new("mysql")
        .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "test", "-N", "-B", "-e", sql])
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

/// Runs one redis-cli command on the shared Redis.
pub fn redis_cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", "6379"]).args(args).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

/// Which shared service a [`Scratch`] lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
    Redis,
}

/// A private table (or Redis prefix, or SQLite file) for one test, removed
/// when dropped — also when the test panics.
pub struct Scratch {
    pub backend: Backend,
    pub name: String,
    pub dir: Option<tempfile::TempDir>,
}

impl Scratch {
    /// Creates the scratch space, or returns None after `SKIPPED:` when the
    /// service is not running (a failure under CI=true).
    pub fn new(backend: Backend, stem: &str) -> Option<Scratch> {
        let name = unique_name(stem);
        let ok = match backend {
            Backend::Sqlite => true,
            Backend::Postgres => psql("SELECT 1"),
            Backend::Mysql => mysql("SELECT 1"),
            Backend::Redis => redis_cli(&["PING"]).trim() == "PONG",
        };
        if !ok {
            sprocket_testkit::skip(&format!("{backend:?} is not running on localhost"));
            return None;
        }
        let dir = (backend == Backend::Sqlite).then(|| tempfile::tempdir().expect("temp dir"));
        Some(Scratch { backend, name, dir })
    }

    pub fn sqlite_path(&self) -> std::path::PathBuf {
        self.dir.as_ref().expect("sqlite scratch has a dir").path().join("queue.db")
    }

    /// The configuration sprocketd would get for this scratch space.
    pub fn config(&self) -> StoreConfig {
        match self.backend {
            Backend::Sqlite => {
                StoreConfig::Sqlite { path: self.sqlite_path(), table: self.name.clone(), sync: SyncMode::Full }
            }
            Backend::Postgres => StoreConfig::Postgres { conninfo: PG_CONNINFO.into(), table: self.name.clone() },
            Backend::Mysql => StoreConfig::Mysql {
                host: MYSQL_HOST.into(),
                port: MYSQL_PORT,
                user: "root".into(),
                password: String::new(),
                db: "test".into(),
                table: self.name.clone(),
            },
            Backend::Redis => StoreConfig::Redis {
                host: "127.0.0.1".into(),
                port: REDIS_PORT,
                password: None,
                prefix: self.name.clone(),
            },
        }
    }

    pub async fn open(&self) -> Box<dyn Store> {
        match sprocket_store::open(&self.config()).await {
            Ok(s) => s,
            Err(e) => panic!("cannot open {:?} store {}: {e}", self.backend, self.name),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let n = &self.name;
        match self.backend {
            Backend::Sqlite => {}
            Backend::Postgres => {
                psql(&format!("DROP TABLE IF EXISTS \"{n}\"; DELETE FROM sprocket_meta WHERE queue_table = '{n}'"));
            }
            Backend::Mysql => {
                mysql(&format!("DROP TABLE IF EXISTS `{n}`; DELETE FROM sprocket_meta WHERE queue_table = '{n}'"));
            }
            Backend::Redis => {
                redis_cli(&[
                    "EVAL",
                    "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do n = n + redis.call('DEL', k) end return n",
                    "0",
                    &format!("{n}-*"),
                ]);
            }
        }
    }
}
