//! Shared helpers for the store's integration tests: sample jobs with
//! awkward bytes, comparisons, and a scratch table per test. The databases
//! themselves (shared services, private servers, their command-line
//! clients, unique names) come from `sprocket_testkit::databases`.
#![allow(dead_code)]

use bytes::Bytes;
use sprocket_proto::Priority;
use sprocket_store::{JobKey, Store, StoreConfig, StoreOp, StoredJob, SyncMode};
use sprocket_testkit::databases::{unique_name, Shared, SharedTable, TempDir};

pub const PG_CONNINFO: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";
pub const MYSQL_HOST: &str = "127.0.0.1";
pub const MYSQL_PORT: u16 = 3306;
pub const REDIS_PORT: u16 = 6379;

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

/// Which shared service a [`Scratch`] lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
    Redis,
}

impl Backend {
    /// The shared service it lives in; None for SQLite (a private file).
    fn shared(self) -> Option<Shared> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Shared::Postgres),
            Backend::Mysql => Some(Shared::Mysql),
            Backend::Redis => Some(Shared::Redis),
        }
    }
}

/// A private table (or Redis prefix, or SQLite file) for one test, removed
/// when dropped — also when the test panics.
pub struct Scratch {
    pub backend: Backend,
    pub name: String,
    dir: Option<TempDir>,
    /// Drops the table (or deletes the keys) on the shared service.
    _table: Option<SharedTable>,
}

impl Scratch {
    /// Creates the scratch space, or returns None after `SKIPPED:` when the
    /// service is not running (a failure under CI=true).
    pub fn new(backend: Backend, stem: &str) -> Option<Scratch> {
        Some(match backend.shared() {
            None => Scratch { backend, name: unique_name(stem), dir: Some(TempDir::new(stem)), _table: None },
            Some(service) => {
                let table = SharedTable::new(service, stem)?;
                Scratch { backend, name: table.name.clone(), dir: None, _table: Some(table) }
            }
        })
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
