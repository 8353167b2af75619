//! Servers the library tests run against: Debian's gearmand and, when it
//! has been built, our sprocketd. Every scenario runs on each.
#![allow(dead_code)]

use std::path::PathBuf;

use sprocket_testkit::ServerProcess;

/// sprocketd built next to this test binary, or `$SPROCKETD_BIN`.
pub fn sprocketd_bin() -> Option<PathBuf> {
    sprocket_testkit::find_workspace_bin("sprocketd")
}

/// One fresh server of each kind available (see `every_server`).
pub fn servers() -> Vec<ServerProcess> {
    sprocket_testkit::every_server()
}

/// A port with nothing listening (bound, read, closed).
pub fn dead_addr() -> String {
    format!("127.0.0.1:{}", sprocket_testkit::free_port())
}
