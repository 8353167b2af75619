//! Job records for sprocketd.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod histogram;
pub mod history;
pub mod json;
pub mod memory;
pub mod record;
pub mod state;
pub mod stored;
pub mod text;

pub use record::{Attempt, Chunk, ChunkKind, Limits, Record, RecordEnded, Status, Truncation, Worker};
pub use state::{AttemptEnd, Outcome, RecordState};
