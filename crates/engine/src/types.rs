//! Identifiers, configuration and the effects the engine hands back.

use bytes::Bytes;
use sprocket_proto::{Priority, Response};

/// A connection, numbered by the server.
pub type ConnId = u64;

/// A job's number: the `n` of its handle `<prefix>:<n>`. Never reused
/// within one process.
pub type JobNo = u64;

/// Index of a function in the engine's function table.
pub type FnId = u32;

/// Wall-clock time in Unix milliseconds. The engine has no clock of its
/// own: every event carries the time.
pub type Millis = u64;

/// How background jobs are persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistMode {
    /// Nothing is written (gearmand's `builtin` queue).
    None,
    /// Every background job is written before its JOB_CREATED is sent.
    Immediate,
    /// Nothing is written while running; the queue is dumped at shutdown
    /// (gearmand's sqlite `--store-queue-on-shutdown`).
    OnShutdown,
}

/// What to do when a CAN_DO_TIMEOUT limit expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutAction {
    /// The job fails and its clients get WORK_FAIL (what the protocol
    /// document describes; `--timeout-action fail`).
    Fail,
    /// The job goes back to the tail of its queue, counting as an attempt
    /// for `--job-retries`, and its clients are told nothing: gearmand
    /// 1.1.20's behaviour (without its stale timer bug), so the default.
    Retry,
}

/// Engine settings; all limits are explicit.
#[derive(Debug, Clone)]
pub struct Config {
    /// Handle prefix without the trailing colon, e.g. `H:myhost`.
    pub handle_prefix: String,
    /// Most attempts before a job is dropped; 0 means unlimited.
    pub job_retries: u32,
    /// NOOPs sent per newly queued job; 0 wakes every sleeping worker.
    pub worker_wakeup: u32,
    /// Rotate a worker's functions after each hand-out (`-R`).
    pub round_robin: bool,
    /// New connections start with exceptions enabled (`--exceptions`).
    pub exceptions_default: bool,
    /// How background jobs are persisted.
    pub persist: PersistMode,
    /// What to do when a CAN_DO_TIMEOUT limit expires.
    pub timeout_action: TimeoutAction,
    /// Queue limit applied to functions when they are created; 0 = none.
    pub default_max_queue: u32,
    /// Most jobs in the whole server (queued + running); 0 = none.
    pub max_jobs: usize,
    /// Reported by the `version` admin command.
    pub version: String,
    /// Reported by `getpid`.
    pub pid: u32,
    /// Reported by `verbose` (FATAL … DEBUG).
    pub verbose: String,
    /// Distinguishes this server run in generated store keys.
    pub instance_id: u64,
    /// A background submit the store has not confirmed within this many
    /// milliseconds gets an error; 0 waits for ever.
    pub store_timeout_ms: u64,
    /// Put the final record of every job that ends in [`Outbox::ended`]
    /// (for the job log and the history). Off, only the jobs that
    /// [`RecordsConfig::mode`] covers carry a record.
    pub report_ended_jobs: bool,
    /// Put the final record of the jobs that have one anyway (those
    /// [`RecordsConfig::mode`] covers) in [`Outbox::ended`], without giving
    /// other jobs one (the web port's duration histograms).
    pub report_recorded_jobs: bool,
    /// Keep the data chunks and the result in the records reported in
    /// [`Outbox::ended`] (`--job-log-results`); otherwise they are left out
    /// of the copy.
    pub report_payloads: bool,
    /// Job records: which jobs have one, their byte limit, and where
    /// ended ones are kept.
    pub records: RecordsConfig,
    /// The first handle number to give out; with a store that keeps
    /// records, the start of a block reserved in the store, so that a
    /// handle never names two jobs, also across restarts.
    pub first_handle: JobNo,
    /// Handle numbers per reserved block (0: nothing is reserved); the
    /// engine asks for the next block in [`Outbox::wants_handles`].
    pub handle_block: u64,
    /// Operator settings (paused functions) are kept in the store: a
    /// change is handed to the server in [`Outbox::setting_writes`] and
    /// the operator is answered once it is durable. Off (`-q builtin`),
    /// they live in memory only and are answered at once.
    pub settings_durable: bool,
}

/// Which jobs get a record (`--records`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordsMode {
    /// No job has one.
    #[default]
    None,
    /// Background jobs (and foreground jobs a background submission joined).
    Background,
    /// Every job.
    All,
}

impl RecordsMode {
    /// Whether a job submitted so gets a record.
    pub fn covers(self, background: bool) -> bool {
        match self {
            RecordsMode::None => false,
            RecordsMode::Background => background,
            RecordsMode::All => true,
        }
    }
}

/// How the engine keeps job records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordsConfig {
    /// Which jobs have one.
    pub mode: RecordsMode,
    /// The per-record byte limit (`--record-max-bytes`).
    pub limits: sprocket_records::Limits,
    /// Records are written to the store ([`PersistOp::Record`]) and the
    /// server reads ended ones back from it ([`Outbox::record_reads`]).
    /// Otherwise the engine keeps ended records in memory, within
    /// `retention`.
    pub durable: bool,
    /// How long ended records are kept, and (in memory) how many.
    pub retention: sprocket_records::Retention,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            handle_prefix: "H:localhost".into(),
            job_retries: 0,
            worker_wakeup: 0,
            round_robin: false,
            exceptions_default: false,
            persist: PersistMode::None,
            timeout_action: TimeoutAction::Retry,
            default_max_queue: 0,
            max_jobs: 0,
            version: "1.1.20".into(),
            pid: 0,
            verbose: "ERROR".into(),
            instance_id: 0,
            store_timeout_ms: 60_000,
            report_ended_jobs: false,
            report_recorded_jobs: false,
            report_payloads: false,
            records: RecordsConfig::default(),
            first_handle: 1,
            handle_block: 0,
            settings_durable: false,
        }
    }
}

/// One thing to write to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// A binary protocol response.
    Packet(Response),
    /// Raw admin text reply bytes.
    Text(Bytes),
}

/// A change to the persistent store, numbered by `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistOp {
    /// Write a background job's row.
    Insert {
        /// The job's function name.
        function: Bytes,
        /// The row's key within the function: the job's unique, or a key
        /// generated for a job without one (see [`GENERATED_UNIQUE_PREFIX`]).
        unique: Bytes,
        /// The job's priority.
        priority: Priority,
        /// The job's data (its workload).
        data: Bytes,
        /// Unix seconds before which the job may not run; 0 for at once.
        when: i64,
    },
    /// Write a job's record (replacing the record of its handle): when it
    /// is submitted, each time a worker takes it, and when it ends, just
    /// before its row's delete, so that both land in the same commit.
    Record {
        /// The record as it is now.
        record: Box<sprocket_records::Record>,
        /// The key of the job's queue row (empty when it has none), so
        /// that a replay finds the job's handle.
        row_unique: Bytes,
    },
    /// Remove the row written under this function and key.
    Delete {
        /// The job's function name.
        function: Bytes,
        /// The row's key, as in the Insert that wrote it.
        unique: Bytes,
    },
}

/// How the server should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownRequest {
    /// Stop now (`shutdown`).
    Immediate,
    /// Stop accepting, exit when no jobs remain.
    Graceful,
}

/// Effects accumulated while handling events; the server drains it after
/// every batch of events.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Packets and text for connections, in the order they must be written
    /// per connection.
    pub sends: Vec<(ConnId, Out)>,
    /// Store operations with strictly increasing sequence numbers.
    pub persist: Vec<(u64, PersistOp)>,
    /// Connections to close after their pending output is written.
    pub close: Vec<ConnId>,
    /// The JOB_CREATED answers to submissions among `sends`, in the order
    /// they are sent per connection: `true` for a JOB_CREATED, `false` for
    /// one that became an ERROR because its insert failed. Each matches a
    /// submission for which [`crate::Engine::job_created_promised`] rose.
    pub created: Vec<(ConnId, bool)>,
    /// An operator asked the server to stop.
    pub shutdown: Option<ShutdownRequest>,
    /// Final records of jobs that ended, when [`Config::report_ended_jobs`]
    /// is set.
    pub ended: Vec<sprocket_records::Record>,
    /// Functions of the failed attempts a policy retried, one entry per
    /// attempt, when [`Config::report_ended_jobs`] is set (the history
    /// counts them).
    pub retried: Vec<Bytes>,
    /// Ended records the engine needs from the store: answer each with
    /// [`crate::Engine::record_read_done`].
    pub record_reads: Vec<RecordRead>,
    /// Ended records to delete in the store (an operator's purge): answer
    /// each with [`crate::Engine::record_purge_done`] once the deletes are
    /// committed.
    pub record_purges: Vec<RecordPurge>,
    /// Answers to the record reads that control queries started
    /// ([`crate::Engine::lookup_record`], [`crate::Engine::search_records`]).
    pub control_reads: Vec<ControlRead>,
    /// Answers to the purges that control commands started
    /// ([`crate::Engine::purge_dead_records`]).
    pub control_purges: Vec<ControlPurge>,
    /// The engine has used half of its handle numbers: reserve another
    /// block and hand it over with [`crate::Engine::add_handle_block`].
    pub wants_handles: bool,
    /// Operator settings to make durable (when
    /// [`Config::settings_durable`]): report each with
    /// [`crate::Engine::setting_write_done`].
    pub setting_writes: Vec<SettingWrite>,
}

/// The kind of setting that marks a paused function (its name is the
/// function's).
pub const PAUSED_SETTING: &str = "paused";

/// The kind of setting that holds an operator's run-time policy (its name
/// is the pattern, its value the policy's JSON).
pub const POLICY_SETTING: &str = "policy";

/// A change to one operator setting the engine asks the server to make
/// durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingWrite {
    /// Names the write in [`crate::Engine::setting_write_done`].
    pub id: u64,
    /// The setting's kind, such as [`PAUSED_SETTING`].
    pub kind: &'static str,
    /// Its name within the kind (a function's name).
    pub name: Bytes,
    /// The new value (text, JSON where it has structure), or `None` to
    /// remove the setting.
    pub value: Option<String>,
}

/// A read of ended records the engine asks the server for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRead {
    /// Names the read in [`crate::Engine::record_read_done`].
    pub id: u64,
    /// What to read.
    pub query: RecordQuery,
}

/// A deletion of ended records the engine asks the server for: every
/// record matching the filter's function, state and end time (its limit
/// and error text aside), in small batches, each its own short
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPurge {
    /// Names the purge in [`crate::Engine::record_purge_done`].
    pub id: u64,
    /// Which ended records go.
    pub filter: sprocket_records::RecordFilter,
}

/// The answer to a purge a control query started: how many records were
/// deleted, or why the store could not do it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPurge {
    /// The id [`crate::Engine::purge_dead_records`] gave.
    pub id: u64,
    /// How many records went.
    pub result: Result<u64, String>,
}

/// The answer to a record read a control query started: the records found,
/// or why the store could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRead {
    /// The id [`RecordLookup::Reading`] gave.
    pub id: u64,
    /// What the read found.
    pub result: Result<Vec<sprocket_records::Record>, String>,
}

/// What a control query for records gets at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordLookup {
    /// The engine had the answer.
    Ready(Vec<sprocket_records::Record>),
    /// The records are being read from the store: the answer comes in
    /// [`Outbox::control_reads`] under this id.
    Reading(u64),
}

/// What a [`RecordRead`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordQuery {
    /// The record of one handle.
    Handle(Bytes),
    /// Ended records matching a filter.
    Search(sprocket_records::RecordFilter),
}

impl Outbox {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.sends.is_empty()
            && self.persist.is_empty()
            && self.close.is_empty()
            && self.shutdown.is_none()
            && self.ended.is_empty()
            && self.retried.is_empty()
            && self.record_reads.is_empty()
            && self.record_purges.is_empty()
            && self.control_reads.is_empty()
            && self.control_purges.is_empty()
            && self.setting_writes.is_empty()
            && !self.wants_handles
    }
}

/// A job to replay from the store at start-up.
#[derive(Debug, Clone)]
pub struct ReplayJob {
    /// The job's function name.
    pub function: Bytes,
    /// The row's key, as stored: the job's unique, a generated key (see
    /// [`GENERATED_UNIQUE_PREFIX`]), or another row's key such as
    /// gearmand's `-`.
    pub unique: Bytes,
    /// The job's priority.
    pub priority: Priority,
    /// The job's data.
    pub data: Bytes,
    /// Unix seconds before which the job may not run; 0 for at once.
    pub when: i64,
    /// The job's record from before the restart, when the store kept one:
    /// the job gets its handle back, and its record goes on.
    pub record: Option<sprocket_records::Record>,
}

/// Longest unique id accepted (gearmand's limit).
pub const MAX_UNIQUE: usize = 64;
/// Longest client id kept (longer ones are cut, as in gearmand).
pub const MAX_CLIENT_ID: usize = 127;
/// Longest handle accepted in GET_STATUS.
pub const MAX_HANDLE: usize = 64;
/// Longest OPTION_REQ name.
pub const MAX_OPTION: usize = 63;
/// Longest CAN_DO_TIMEOUT timeout field.
pub const MAX_TIMEOUT_FIELD: usize = 20;
/// Prefix of unique keys generated for persisted jobs without a unique of
/// their own, so store rows never collide (same as sprocket-store's).
pub const GENERATED_UNIQUE_PREFIX: &[u8] = b"~sprocket:";
