//! Process chores for long-running workers: pid files, daemon mode and
//! stop signals.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A pid file that is removed when dropped (on a normal or signalled exit).
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes our pid to `path`, replacing an older file.
    pub fn create(path: &Path) -> anyhow::Result<PidFile> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        std::fs::write(&path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write pid file {}", path.display()))?;
        Ok(PidFile { path })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only remove it if it is still ours: a new worker may have taken the name.
        if let Ok(text) = std::fs::read_to_string(&self.path) {
            if text.trim() == std::process::id().to_string() {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Detaches from the terminal: fork, setsid, stdio to /dev/null. Must run
/// before the tokio runtime starts (forking a multi-threaded process is
/// unsafe). The working directory is kept so relative paths still work.
pub fn daemonize() -> anyhow::Result<()> {
    nix::unistd::daemon(true, false).context("cannot become a daemon")?;
    Ok(())
}

/// Resolves when SIGTERM, SIGINT or SIGHUP arrives.
pub async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    tokio::select! {
        _ = recv(&mut term) => {}
        _ = recv(&mut int) => {}
        _ = recv(&mut hup) => {}
    }
}
