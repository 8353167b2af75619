//! The Gearman job engine of sprocketd, without I/O.
//!
//! [`Engine`] owns functions, queues, jobs and connections. The server
//! feeds it events — a connection opened or closed, a request packet, an
//! admin line, the store's commit report, the passing of time — and after
//! each batch drains the [`Outbox`]: packets for connections, store
//! operations, connections to close. Time is always an argument, so
//! scheduled jobs and time limits are deterministic under test.
//!
//! The engine's state can also be read as typed views ([`views`]) and
//! changed by typed operator commands ([`Engine::cancel_job`] and the
//! like): the admin text protocol renders gearmand's bytes from them, and
//! the server answers its query channel with them.
//!
//! Semantics follow gearmand 1.1.20 (see `shared/gearman-reference.md`),
//! with its documented bugs fixed where clients cannot depend on them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod coalesce;
mod commands;
mod conn;
pub use conn::ReadGuard;
pub mod cron;
mod engine;
mod function;
mod handles;
pub mod hash;
mod job;
mod jobs;
mod ledger;
mod outcome;
pub mod policy;
mod records;
mod timers;
pub mod types;
mod unique_index;
pub mod views;

pub use commands::CommandError;
pub use engine::dead::{dead_filter, dead_only, PurgeStart};
pub use engine::Engine;
pub use function::FunctionCounters;
pub use hash::FastMap;
pub use outcome::{AttemptEnd, Failure, Outcome};
pub use sprocket_records::{Record, RecordFilter, RecordState};
pub use types::*;
pub use views::{FunctionView, JobFilter, JobStatus, JobView, ServerInfo, WorkerView};
