//! Durable storage of background jobs.
//!
//! The engine never touches a database: it emits [`StoreOp`]s, numbered
//! with a sequence number, and the server forwards them to a
//! writer task ([`writer::spawn`]) that group-commits them through a [`Store`]
//! backend and reports [`Completion`]s back, in sequence order.
//!
//! Rows use gearmand's table layouts, so a table written by gearmand is
//! replayed by sprocketd and the usual operator SQL keeps working.
//! What sprocketd keeps beside them is versioned and migrated by
//! [`schema`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use bytes::Bytes;
use sprocket_proto::Priority;
use thiserror::Error;

mod config;
mod ident;
mod netops;
mod op;
mod record_row;
mod rows;
mod textkey;

pub mod memory;
pub mod mysql;
pub mod postgres;
pub mod redis;
pub mod schema;
pub mod sqlite;
pub mod writer;

pub use config::{open, StoreConfig, SyncMode};
pub use op::{StoreOp, MAX_RECORDS_KEPT_WHILE_DOWN};
pub use record_row::{QueuedHandle, RecordFilter, RecordRow, RecordRowError};
pub use sprocket_records::memory::ExpiryCutoffs;
pub use sprocket_records::{Record, RecordState};

/// Handle numbers reserved at a time: a block lasts long, so giving out a
/// handle never waits for the database.
pub const HANDLE_BLOCK: u64 = 1_000_000;

/// One persisted background job, as gearmand's queue plugins store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJob {
    /// The function a worker asks for.
    pub function: Bytes,
    /// The row's unique key. For jobs submitted without a coalescing
    /// unique, the engine supplies a generated key (see
    /// `GENERATED_UNIQUE_PREFIX`) so rows never collide.
    pub unique: Bytes,
    /// The queue the job is replayed into.
    pub priority: Priority,
    /// The workload, as submitted.
    pub data: Bytes,
    /// Unix seconds before which the job may not run; 0 means now.
    pub when: i64,
}

/// Rows are keyed by (function, unique), as in every gearmand plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobKey {
    /// The job's function.
    pub function: Bytes,
    /// The job's unique key, as stored (generated for jobs without one).
    pub unique: Bytes,
}

impl StoredJob {
    /// The key of the job's row.
    pub fn key(&self) -> JobKey {
        JobKey { function: self.function.clone(), unique: self.unique.clone() }
    }
}

/// Prefix of the unique keys the engine generates for jobs that have no
/// coalescing unique of their own (empty or `-`). On replay a row whose
/// unique starts with this is restored with an empty unique, or with `-`
/// when the engine's key says the job had it (it ends in `:-`).
pub const GENERATED_UNIQUE_PREFIX: &[u8] = b"~sprocket:";

/// Store failures. `Unavailable` means the database could not be reached
/// (the writer reconnects with backoff); `Rejected` means the database
/// refused the data itself.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be reached, or stopped answering; the
    /// operation may be tried again on a new connection.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database refused the data itself (a value its columns cannot
    /// hold); trying again would fail the same way.
    #[error("store rejected the operation: {0}")]
    Rejected(String),
    /// The settings or the table cannot be used (a bad flag, a table in
    /// use by another server, a schema newer than this build); the server
    /// does not start.
    #[error("bad configuration: {0}")]
    Config(String),
    /// A stored row cannot be read back.
    #[error("corrupt row in store: {0}")]
    Corrupt(String),
}

/// The store's results, failing with a [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A storage backend. Implementations live in their own modules.
#[async_trait::async_trait]
pub trait Store: Send {
    /// Short name for logs, e.g. `sqlite:/var/lib/sprocket/queue.db`.
    fn describe(&self) -> String;

    /// Reads every stored job, to be replayed at start-up. Tolerates
    /// duplicates and rows written by gearmand (NULL data, missing epoch).
    async fn load(&mut self) -> Result<Vec<StoredJob>>;

    /// Like [`Store::load`], handing the jobs to `sink` a part at a time
    /// where the backend can read them so, which keeps a large queue from
    /// being held twice in memory during a replay; returns how many.
    async fn load_each(&mut self, sink: &mut (dyn FnMut(Vec<StoredJob>) + Send)) -> Result<usize> {
        let jobs = self.load().await?;
        let n = jobs.len();
        sink(jobs);
        Ok(n)
    }

    /// Applies a batch atomically where the backend can (one transaction).
    /// Inserts of an existing key replace the row (replay may re-insert).
    async fn apply(&mut self, ops: &[StoreOp]) -> Result<()>;

    /// Re-establishes a lost connection.
    async fn reconnect(&mut self) -> Result<()>;

    /// How many connections the writer commits on when the operator did not
    /// say: 1 unless more measured faster for the backend.
    fn preferred_streams(&self) -> usize {
        1
    }

    /// Opens one more connection to the same table, so that the writer can
    /// have several commits in flight at once (see `writer`); `None` for a
    /// backend with a single writer (SQLite) or that gains nothing from it.
    async fn open_another(&mut self) -> Result<Option<Box<dyn Store>>> {
        Ok(None)
    }

    /// Whether a few clients' small commits should wait for the clients of
    /// the commit before, when those come back quickly, so that they share
    /// one commit instead of taking turns (the writer's regrouping). Worth
    /// it where a commit is a database server's own flush; an embedded
    /// store whose commits share the machine's CPU with the clients may
    /// do better with the turns.
    fn regroups(&self) -> bool {
        true
    }

    /// Whether the store's work is blocking calls (an embedded database)
    /// rather than network I/O. The writer then runs on a thread of its
    /// own and calls [`Store::run_inline`], so each commit runs on that
    /// thread directly instead of being handed to a thread pool and back.
    fn blocks(&self) -> bool {
        false
    }

    /// From now on, do blocking work on the calling thread. Only called on
    /// a thread that nothing else needs (see [`Store::blocks`]).
    fn run_inline(&mut self) {}

    /// Opens a connection beside this one for what is not the writer's:
    /// reading records, expiring them and reserving handle numbers. Off the
    /// writer's path, so a slow search never delays a commit.
    async fn open_reader(&mut self) -> Result<Option<Box<dyn Store>>> {
        self.open_another().await
    }

    /// Whether the backend keeps job records: its [`Store::apply`] writes
    /// [`StoreOp::Record`] and the record methods below work. Every
    /// backend here does; the defaults below answer for one that does not
    /// (a `Config` error), and the engine should not send it records.
    fn keeps_records(&self) -> bool {
        false
    }

    /// The record of `handle`, if it is kept. Off the hot path: a query.
    async fn load_record(&mut self, handle: &[u8]) -> Result<Option<Record>> {
        let _ = handle;
        Err(no_records(&self.describe()))
    }

    /// The records of several handles at once (`None` for each not kept),
    /// in the order asked: a reader answering many clients at once pays
    /// one round of overhead instead of one per handle.
    async fn load_records(&mut self, handles: &[Bytes]) -> Result<Vec<Option<Record>>> {
        let mut found = Vec::with_capacity(handles.len());
        for handle in handles {
            found.push(self.load_record(handle).await?);
        }
        Ok(found)
    }

    /// Ended records matching `filter`'s function, state and end time,
    /// newest end first (then the greater handle), at most `filter.limit`.
    /// Its error text may be left unchecked: the SQL backends cannot read
    /// it inside the encoded body, so the server's record reader pages
    /// through with [`RecordFilter::without_record_check`] and checks each
    /// record; backends that decode every record they look at anyway
    /// (memory, Redis) check it themselves.
    async fn search_records(&mut self, filter: &RecordFilter) -> Result<Vec<Record>> {
        let _ = filter;
        Err(no_records(&self.describe()))
    }

    /// Deletes up to `batch_limit` records that ended before the cutoff of
    /// their kind (`cutoffs.dead_before` for dead records,
    /// `cutoffs.before` for the others; Unix ms), oldest first within a
    /// state, in short transactions; returns how many. Called again while
    /// it returns `batch_limit`, so that no call holds the database for
    /// long.
    async fn expire_records(&mut self, cutoffs: ExpiryCutoffs, batch_limit: usize) -> Result<usize> {
        let _ = (cutoffs, batch_limit);
        Err(no_records(&self.describe()))
    }

    /// Deletes up to `batch_limit` ended records matching `filter`'s
    /// function, state and end time (its limit aside), in one short
    /// transaction; returns how many. An operator's purge (`purge dead`)
    /// calls it again while it returns `batch_limit`, so that a large purge
    /// never holds the database for long. A filter with an error text is
    /// refused (`Rejected`): the text is inside the encoded body, which the
    /// database cannot read.
    async fn purge_records(&mut self, filter: &RecordFilter, batch_limit: usize) -> Result<usize> {
        let _ = (filter, batch_limit);
        Err(no_records(&self.describe()))
    }

    /// The handles of the jobs whose records are not ended yet, with their
    /// queue rows' keys, so that a replay gives each queued job the handle
    /// it had. A key with no handle here (a row gearmand wrote) gets a new
    /// handle.
    async fn queued_handles(&mut self) -> Result<Vec<QueuedHandle>> {
        Err(no_records(&self.describe()))
    }

    /// Reserves `block` handle numbers and returns the first: numbers
    /// `first .. first + block` are this server's to give out, and no later
    /// reservation (also after a restart) returns any of them. Durable
    /// before it returns. Numbers start at 1.
    async fn reserve_handles(&mut self, block: u64) -> Result<u64> {
        let _ = block;
        Err(no_records(&self.describe()))
    }

    /// Every setting of `kind` (such as `paused`) kept for this queue, in
    /// no particular order. Settings are what operators change at run time
    /// and expect to find again after a restart; they live beside the
    /// queue, in the table `sprocket_settings` (see [`schema`]). A backend
    /// that keeps no records keeps no settings either.
    async fn load_settings(&mut self, kind: &str) -> Result<Vec<Setting>> {
        let _ = kind;
        Err(no_records(&self.describe()))
    }

    /// Sets `name` of `kind` to `value`, replacing what was there; durable
    /// before it returns.
    async fn put_setting(&mut self, kind: &str, name: &[u8], value: &str) -> Result<()> {
        let _ = (kind, name, value);
        Err(no_records(&self.describe()))
    }

    /// Removes `name` of `kind` (nothing to do when it is not set); durable
    /// before it returns.
    async fn delete_setting(&mut self, kind: &str, name: &[u8]) -> Result<()> {
        let _ = (kind, name);
        Err(no_records(&self.describe()))
    }
}

/// One operator setting as the store keeps it: its name within its kind
/// (a function's name, byte for byte) and its value (text, JSON where it
/// has structure).
pub type Setting = (Bytes, String);

/// The refusal of a purge by error text (see [`Store::purge_records`]).
pub(crate) fn check_purge_filter(filter: &RecordFilter) -> Result<()> {
    if filter.error.is_some() {
        return Err(StoreError::Rejected("a purge of records cannot select by error text".into()));
    }
    if filter.unique.is_some() {
        return Err(StoreError::Rejected("a purge of records cannot select by unique".into()));
    }
    Ok(())
}

/// The final states, each expired by its own cutoff (see
/// [`Store::expire_records`]).
pub(crate) fn final_states() -> impl Iterator<Item = RecordState> {
    RecordState::ALL.into_iter().filter(|s| s.is_final())
}

/// The error of a record method on a backend that does not keep records.
fn no_records(store: &str) -> StoreError {
    StoreError::Config(format!("{store} does not keep job records"))
}

/// What the writer reports after trying to make a run of operations durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Every operation with a sequence number up to and including this one
    /// has been handled.
    pub through: u64,
    /// Sequence numbers of inserts in that range that could NOT be made
    /// durable (the database was unavailable or refused them). Their
    /// submitters must get an ERROR, never a JOB_CREATED.
    pub failed: Vec<u64>,
}
