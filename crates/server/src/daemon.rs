//! Process matters: detaching (`-d`), the pid file, the file-descriptor
//! limit, and dropping privileges (`-u`).
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

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
pub fn daemonize() -> Result<ReadyPipe, String> {
    let mut fds = [0i32; 2];
    // SAFETY: plain pipe(2) into a local array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the descriptors were just created and are owned here only.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: called before the tokio runtime or any other thread exists.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            drop(rd);
            // SAFETY: setsid has no memory-safety preconditions.
            unsafe { libc::setsid() };
            redirect_to_null(&[0, 1]);
            Ok(ReadyPipe(File::from(wr)))
        }
        _child => {
            drop(wr);
            let mut byte = [0u8; 1];
            let ok = File::from(rd).read(&mut byte).map(|n| n == 1).unwrap_or(false);
            std::process::exit(if ok { 0 } else { 1 });
        }
    }
}

fn redirect_to_null(fds: &[i32]) {
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        for &fd in fds {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// A pid file removed when dropped.
pub struct PidFile(PathBuf);

impl PidFile {
    pub fn create(path: &Path) -> Result<PidFile, String> {
        if std::fs::metadata(path).map(|m| !m.file_type().is_file()).unwrap_or(false) {
            return Err(format!("pid file {} exists and is not a regular file", path.display()));
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write pid file {}: {e}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
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

impl PidFile {
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

/// Raises RLIMIT_NOFILE to `n` (and the hard limit if allowed).
pub fn set_fd_limit(n: u64) -> Result<(), String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    let new_hard = hard.max(n);
    setrlimit(Resource::RLIMIT_NOFILE, n, new_hard)
        .or_else(|_| setrlimit(Resource::RLIMIT_NOFILE, n.min(hard), hard))
        .map_err(|e| format!("cannot set file-descriptor limit to {n}: {e}"))
}

/// Without `-f`, raises the soft RLIMIT_NOFILE to the hard limit: the
/// soft limit is often 1024 (systemd's default for services, most shells),
/// far below what a job server with thousands of clients needs, while the
/// hard limit allows more. Returns the soft limit in force afterwards.
pub fn raise_fd_soft_limit() -> Result<u64, String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    // Beyond this, nothing is gained and some kernels refuse the value.
    const CEILING: u64 = 1 << 20;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    let wanted = hard.min(CEILING);
    if wanted <= soft {
        return Ok(soft);
    }
    setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).map_err(|e| e.to_string())?;
    Ok(wanted)
}

/// Switches to `user` (group first).
pub fn switch_user(name: &str) -> Result<(), String> {
    use nix::unistd::{initgroups, setgid, setuid};
    let user = lookup_user(name)?;
    // Root's supplementary groups must go too, or the process keeps them.
    let c_name = std::ffi::CString::new(name).map_err(|_| format!("bad user name {name:?}"))?;
    initgroups(&c_name, user.gid).map_err(|e| format!("initgroups for {name}: {e}"))?;
    setgid(user.gid).map_err(|e| format!("setgid: {e}"))?;
    setuid(user.uid).map_err(|e| format!("setuid to {name}: {e}"))?;
    Ok(())
}

fn lookup_user(name: &str) -> Result<nix::unistd::User, String> {
    nix::unistd::User::from_name(name).map_err(|e| e.to_string())?.ok_or_else(|| format!("no such user {name:?}"))
}

/// Before `--user` drops root: gives `user` the files sprocketd keeps
/// using or recreating afterwards (the log file it reopens on SIGHUP, the
/// pid file, the queue database with its -wal/-shm files and the data
/// directory they are created in), as gearmand's files belong to its user.
/// Paths that do not exist are skipped; a failure is returned per path.
pub fn hand_over(user: &str, paths: &[PathBuf]) -> Result<Vec<String>, String> {
    let user = lookup_user(user)?;
    let mut failures = Vec::new();
    for path in paths.iter().filter(|p| p.exists()) {
        if let Err(e) = nix::unistd::chown(path.as_path(), Some(user.uid), Some(user.gid)) {
            failures.push(format!("{}: {e}", path.display()));
        }
    }
    Ok(failures)
}
