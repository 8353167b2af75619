//! Resource limits and dropping root (`-f`, `-u`).

use std::path::PathBuf;

use crate::error::ProcessError;

/// Raises RLIMIT_NOFILE to `n` (and the hard limit if allowed).
pub fn set_fd_limit(n: u64) -> Result<(), ProcessError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(ProcessError::ReadFdLimit)?;
    let new_hard = hard.max(n);
    setrlimit(Resource::RLIMIT_NOFILE, n, new_hard)
        .or_else(|_| setrlimit(Resource::RLIMIT_NOFILE, n.min(hard), hard))
        .map_err(|error| ProcessError::FdLimit { limit: n, error })
}

/// Without `-f`, raises the soft RLIMIT_NOFILE to the hard limit: the
/// soft limit is often 1024 (systemd's default for services, most shells),
/// far below what a job server with thousands of clients needs, while the
/// hard limit allows more. Returns the soft limit in force afterwards.
pub fn raise_fd_soft_limit() -> nix::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    // Beyond this, nothing is gained and some kernels refuse the value.
    const CEILING: u64 = 1 << 20;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let wanted = hard.min(CEILING);
    if wanted <= soft {
        return Ok(soft);
    }
    setrlimit(Resource::RLIMIT_NOFILE, wanted, hard)?;
    Ok(wanted)
}

/// Switches to `user` (group first).
pub fn switch_user(name: &str) -> Result<(), ProcessError> {
    use nix::unistd::{initgroups, setgid, setuid};
    let user = lookup_user(name)?;
    let step = |step: String| move |error| ProcessError::SwitchUser { step, error };
    // Root's supplementary groups must go too, or the process keeps them.
    let c_name = std::ffi::CString::new(name).map_err(|_| ProcessError::BadUserName(name.to_string()))?;
    initgroups(&c_name, user.gid).map_err(step(format!("initgroups for {name}")))?;
    setgid(user.gid).map_err(step("setgid".into()))?;
    setuid(user.uid).map_err(step(format!("setuid to {name}")))?;
    Ok(())
}

fn lookup_user(name: &str) -> Result<nix::unistd::User, ProcessError> {
    nix::unistd::User::from_name(name)
        .map_err(ProcessError::UserLookup)?
        .ok_or_else(|| ProcessError::NoSuchUser(name.to_string()))
}

/// Before `--user` drops root: gives `user` the files sprocketd keeps
/// using or recreating afterwards (the log file it reopens on SIGHUP, the
/// pid file, the queue database with its -wal/-shm files and the data
/// directory they are created in), as gearmand's files belong to its user.
/// Paths that do not exist are skipped; a failure is returned per path.
pub fn hand_over(user: &str, paths: &[PathBuf]) -> Result<Vec<String>, ProcessError> {
    let user = lookup_user(user)?;
    let mut failures = Vec::new();
    for path in paths.iter().filter(|p| p.exists()) {
        if let Err(e) = nix::unistd::chown(path.as_path(), Some(user.uid), Some(user.gid)) {
            failures.push(format!("{}: {e}", path.display()));
        }
    }
    Ok(failures)
}
