//! Servers the library tests run against: Debian's gearmand and, when it
//! has been built, our sprocketd. Every scenario runs on each.
#![allow(dead_code)]

use std::path::PathBuf;

use sprocket_testkit::{skip, ServerProcess};

/// Where sprocketd was built, if it was: `$SPROCKETD_BIN`, else next to
/// this test binary (`target/<profile>/sprocketd`).
pub fn sprocketd_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SPROCKETD_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("sprocketd");
    bin.is_file().then_some(bin)
}

/// One fresh server of each kind available. gearmand missing or sprocketd
/// not built are reported with `SKIPPED:` (a failure under CI=true).
/// `SPROCKET_TEST_SERVER=gearmand|sprocketd` restricts the list.
pub fn servers() -> Vec<ServerProcess> {
    let only = std::env::var("SPROCKET_TEST_SERVER").ok();
    let mut out = Vec::new();
    if only.as_deref() != Some("sprocketd") {
        if let Some(g) = ServerProcess::gearmand(&[]) {
            out.push(g);
        }
    }
    if only.as_deref() != Some("gearmand") {
        match sprocketd_bin() {
            Some(bin) => out.push(ServerProcess::sprocketd(&bin, &[])),
            None => skip("sprocketd not built (build sprocket-server or set SPROCKETD_BIN) for this scenario"),
        }
    }
    out
}

/// A port with nothing listening (bound, read, closed).
pub fn dead_addr() -> String {
    format!("127.0.0.1:{}", sprocket_testkit::free_port())
}
