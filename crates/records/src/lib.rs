//! Job records for sprocketd.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod record;
pub mod state;

pub use record::{Attempt, Chunk, ChunkKind, Limits, Record, RecordEnded, Status, Truncation, Worker};
pub use state::{AttemptEnd, Outcome, RecordState};
