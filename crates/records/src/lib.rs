//! Job records for sprocketd: what happened to each job, kept after it
//! ended, and a per-function history of how jobs end.
//!
//! Nothing here does I/O or reads a clock: times are Unix milliseconds
//! passed in, so the engine and the stores decide when things happen and
//! tests control time.
//!
//! * [`state`]: [`RecordState`] (queued, running, complete, failed,
//!   exception, cancelled, timeout, dropped, dead; retrying reserved),
//!   [`AttemptEnd`] and [`Outcome`].
//! * [`record`]: [`Record`] and the events that change it — started by a
//!   worker, WORK_DATA, WORK_WARNING, WORK_STATUS, an attempt that ended
//!   without a result, the end of the job — with the per-record byte limit
//!   ([`Limits`], `--record-max-bytes`) applied in one place.
//! * [`json`]: the JSON form (`sprocket.record`, `sprocket record --json`,
//!   the HTTP API) through `serde`; byte strings are text when UTF-8, else
//!   a `_base64` field.
//! * [`stored`]: the compact, versioned binary form for a database column.
//! * [`text`]: admin `record` / `records` text, the job log line, escaping.
//! * [`replay`](mod@replay): the packets `sprocket.result` sends for an ended job.
//! * [`history`] (with [`histogram`]): per-function counts and percentiles
//!   over the last minute, hour and day, with snapshots that survive a
//!   restart.
//! * [`filter`]: [`RecordFilter`], what a search of ended records wants.
//! * [`memory`]: retention rules and the bounded in-memory store used with
//!   `-q builtin`.
//!
//! A queued job's record is 48 bytes plus one allocation for its handle,
//! function and unique; details of runs are allocated when the job first
//! starts or ends. docs/records.md describes the model for operators.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod duration;
pub mod filter;
pub mod histogram;
pub mod history;
pub mod json;
pub mod memory;
pub mod record;
pub mod replay;
pub mod state;
pub mod stored;
pub mod text;

pub use duration::{parse_duration, BadDuration};
pub use filter::{FilterError, RecordFilter};
pub use history::{Counts, History, HistorySnapshot, HistoryView, Percentiles, Series, SeriesSlot, Window, WindowView};
pub use memory::{MemoryRecords, Retention};
pub use record::{Attempt, Chunk, ChunkKind, Limits, Record, RecordEnded, Status, Truncation, Worker};
pub use replay::{replay, ReplayPacket};
pub use state::{AttemptEnd, Outcome, RecordState};
