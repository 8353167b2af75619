//! Raising the open-file limit so that thousands of connections fit.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft RLIMIT_NOFILE towards `wanted` (capped by the hard
/// limit). Failure only means fewer connections can open, which the
/// connect step then reports, so it is not an error here.
pub fn raise_open_files(wanted: usize) {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
    let wanted = wanted as u64;
    if soft >= wanted {
        return;
    }
    let new_soft = wanted.min(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, new_soft, hard).is_err() || new_soft < wanted {
        eprintln!("warning: open-file limit is {new_soft}; {wanted} may be needed (raise `ulimit -n`)");
    }
}
