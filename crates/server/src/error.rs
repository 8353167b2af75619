//! Why a server could not start or stopped abnormally. Each message is
//! complete on its own (it names its cause), since `sprocketd` prints it
//! as the one line an operator sees.

use std::path::PathBuf;

use sprocket_store::StoreError;

/// Why [`crate::Server::prepare`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The queue store could not be opened (a database that cannot be
    /// reached, a file that cannot be created).
    #[error("cannot open the queue store: {0}")]
    OpenStore(StoreError),
    /// The store opened but its rows could not be read back.
    #[error("failed to reload queue from {store}: {error}")]
    Replay {
        /// Which store.
        store: String,
        /// What went wrong.
        error: StoreError,
    },
    /// `-L` names a host that does not resolve.
    #[error("cannot resolve --listen {host}: {error}")]
    Resolve {
        /// The host as given.
        host: String,
        /// The resolver's answer.
        error: std::io::Error,
    },
    /// A TLS certificate, key or CA file is missing or unusable.
    #[error("{0}")]
    Tls(crate::tls::TlsError),
    /// The ACL file (`--acl-file`) cannot be read or used.
    #[error("{0}")]
    Acl(crate::acl::AclFileError),
    /// The policy file (`--policy-file`) cannot be read or used.
    #[error("{0}")]
    PolicyFile(crate::policy_file::PolicyFileError),
    /// No address could be bound.
    #[error("cannot listen on port {port}: {}", error.as_ref().map(ToString::to_string).unwrap_or_default())]
    Listen {
        /// The port.
        port: u16,
        /// The last bind error, if any address was tried.
        error: Option<std::io::Error>,
    },
    /// `--job-log` names a file that cannot be opened for appending.
    #[error("cannot open the job log: {0}")]
    JobLog(std::io::Error),
}

/// Why a running server stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The engine task panicked or was cancelled.
    #[error("engine task failed: {0}")]
    EngineTask(tokio::task::JoinError),
}

/// Why the `sprocketd` process could not do its part (see
/// [`crate::process`]).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// `-d`: the process could not detach.
    #[error("cannot detach: {step}: {error}")]
    Detach {
        /// Which step failed: `pipe` or `fork`.
        step: &'static str,
        /// The system's answer.
        error: std::io::Error,
    },
    /// The async runtime could not be built.
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
    /// `-f`: the descriptor limit could not be set.
    #[error("cannot set file-descriptor limit to {limit}: {error}")]
    FdLimit {
        /// The limit asked for.
        limit: u64,
        /// The system's answer.
        error: nix::Error,
    },
    /// The descriptor limit could not be read.
    #[error("{0}")]
    ReadFdLimit(nix::Error),
    /// `-P` names something other than a regular file.
    #[error("pid file {} exists and is not a regular file", .0.display())]
    PidFileNotAFile(PathBuf),
    /// `-P`: the pid file could not be written.
    #[error("cannot write pid file {}: {error}", path.display())]
    PidFileWrite {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// `-u` names a user that cannot be looked up.
    #[error("{0}")]
    UserLookup(nix::Error),
    /// `-u` names no user.
    #[error("no such user {0:?}")]
    NoSuchUser(String),
    /// `-u` names a user that no C string can hold.
    #[error("bad user name {0:?}")]
    BadUserName(String),
    /// Dropping root failed at one of its steps.
    #[error("{step}: {error}")]
    SwitchUser {
        /// Which step, e.g. `setuid to nobody`.
        step: String,
        /// The system's answer.
        error: nix::Error,
    },
    /// The web port (`--web-listen`, `--web-token`) could not start.
    #[error("{0}")]
    Web(String),
}

/// Anything that ends `sprocketd` with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The flags describe no server that can run.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// The server could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The server stopped abnormally.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A process-level step failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

impl Error {
    /// The exit status `sprocketd` ends with: 1 for every error, as
    /// gearmand does (0 is for success, `--help` and `--version`).
    pub fn exit_code(&self) -> i32 {
        1
    }
}
