//! Detaching (`-d`) and the pid file (`-P`).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use crate::error::ProcessError;

/// The write end of the pipe the waiting parent reads; writing one byte
/// tells it the daemon is ready.
pub struct ReadyPipe(File);

impl ReadyPipe {
    /// Tells the waiting parent that the server is up, and lets go of the
    /// terminal: until now standard error was kept, so that a start-up
    /// failure is printed where `sprocketd -d` was typed.
    pub fn ready(mut self) {
        redirect_to_null(&[2]);
        let _ = self.0.write_all(b"1");
    }
}

/// Forks; the parent waits until the child says it is ready (exit 0) or
/// dies first (exit 1). Must run before any thread is started.
pub fn daemonize() -> Result<ReadyPipe, ProcessError> {
    let detach = |step| move |errno: nix::Error| ProcessError::Detach { step, error: errno.into() };
    let (rd, wr) = nix::unistd::pipe().map_err(detach("pipe"))?;
    match fork().map_err(detach("fork"))? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            // Fails only for a process group leader, which a child just
            // forked is not.
            let _ = nix::unistd::setsid();
            redirect_to_null(&[0, 1]);
            Ok(ReadyPipe(File::from(wr)))
        }
        nix::unistd::ForkResult::Parent { .. } => {
            drop(wr);
            let mut byte = [0u8; 1];
            let ok = File::from(rd).read(&mut byte).map(|n| n == 1).unwrap_or(false);
            std::process::exit(if ok { 0 } else { 1 });
        }
    }
}

/// The one unsafe call of the process side: fork(2) is unsafe in a process
/// with other threads, since only the calling thread goes on in the child.
#[allow(unsafe_code)]
fn fork() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: called from `main` before the runtime or any other thread
    // exists (see `daemonize`), so the child has the whole process.
    unsafe { nix::unistd::fork() }
}

/// Points the given standard descriptors at /dev/null.
fn redirect_to_null(fds: &[RawFd]) {
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for &fd in fds {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
}

/// A pid file removed when dropped.
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes this process's id to `path`, which must be a regular file if
    /// it exists.
    pub fn create(path: &Path) -> Result<PidFile, ProcessError> {
        if std::fs::metadata(path).map(|m| !m.file_type().is_file()).unwrap_or(false) {
            return Err(ProcessError::PidFileNotAFile(path.to_path_buf()));
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|error| ProcessError::PidFileWrite { path: path.to_path_buf(), error })?;
        Ok(PidFile(path.to_path_buf()))
    }

    /// Warns at start when the file could not be removed at exit: its
    /// directory is not writable by the user the server now runs as.
    pub fn check_removable(&self) {
        let dir = match self.0.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
            tracing::warn!(
                "pid file {}: its directory is not writable by this user, so the file will be emptied, \
                 not removed, at exit (give the user a directory of its own, as /run/gearman)",
                self.0.display()
            );
        }
    }
}

impl Drop for PidFile {
    /// Removes the file only if it is still ours: a regular file holding
    /// our pid (never a device such as `/dev/null`, nor a file another
    /// process has taken over).
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.0).map(|m| m.file_type().is_file()).unwrap_or(false)
            && std::fs::read_to_string(&self.0).map(|t| t.trim() == std::process::id().to_string()).unwrap_or(false);
        if !ours {
            return;
        }
        match std::fs::remove_file(&self.0) {
            Ok(()) => {}
            // After `-u`, the directory may not let the user remove the
            // file (it was written as root); it was handed to the user, so
            // it can still be emptied, which tells init scripts and
            // monitors that no server runs under that pid.
            Err(e) => match std::fs::write(&self.0, b"") {
                Ok(()) => tracing::warn!("cannot remove pid file {} ({e}); emptied it instead", self.0.display()),
                Err(e2) => tracing::warn!("cannot remove pid file {} ({e}) nor empty it ({e2})", self.0.display()),
            },
        }
    }
}
