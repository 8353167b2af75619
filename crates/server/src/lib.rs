//! sprocketd: tokio glue around the sans-I/O engine.
//!
//! [`Server::start`] is the one entry point: it replays the store into the
//! engine, binds the listeners, and starts one task that owns the
//! [`sprocket_engine::Engine`], a reader task per connection (with a
//! writer task only while its socket is full), and the store's
//! group-commit writer. The [`ServerHandle`] it returns reports the local
//! addresses, stops the server, and carries a typed query and command
//! channel into the engine task ([`EngineLink`]). The `sprocketd` binary
//! adds what belongs to a process ([`process`]): flags, detaching, the pid
//! file, the user switch, signals and logging.
#![deny(unsafe_code)]

mod acl;
mod busy_poll;
mod config;
mod connection;
mod control;
pub mod ended_jobs;
mod engine_task;
mod error;
mod event;
mod http_protocol;
mod telemetry;
// The flags' doc comments are clap's --help text, shown verbatim, where
// placeholders such as `<hostname>` are plain text rather than HTML.
#[allow(rustdoc::invalid_html_tags)]
pub mod flags;
mod listener;
mod logging;
mod outlet;
pub mod policy_file;
pub mod process;
mod record_reader;
mod server;
mod store_config;
mod tls;
mod tls_identity;
mod tls_wire;
mod web;

pub use acl::{AclFileError, AclReloader};
pub use config::{ConfigError, ConnectionLimits, Keepalive, ListenConfig, ServerConfig};
pub use control::{Command, EngineLink, Query, SettingError, Stopped};
pub use ended_jobs::{EndedJobsConfig, JobLogTarget};
pub use error::{Error, ProcessError, RunError, StartError};
pub use server::{Server, ServerHandle, Stopper};
pub use telemetry::TimingsCopy;
pub use tls::{CertificateReloader, TlsError, TlsSettings};

/// The version reported by `version`: gearmand's protocol level, then ours.
pub fn version_string() -> String {
    format!("1.1.20+sprocket.{}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    /// The engine names the store rows of jobs without a unique of their
    /// own with this prefix, and the store recognises such rows by it at
    /// replay; the store may not depend on the engine, so the two copies
    /// are tied here, where both are in reach.
    #[test]
    fn engine_and_store_agree_on_the_generated_unique_prefix() {
        assert_eq!(sprocket_engine::GENERATED_UNIQUE_PREFIX, sprocket_store::GENERATED_UNIQUE_PREFIX);
    }
}
