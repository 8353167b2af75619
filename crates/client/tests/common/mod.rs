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

/// Kills `srv` and starts the same kind of server again on the same port,
/// as an operator restarting it would. Connections to the old process see
/// their peer close.
pub fn restart(srv: &mut ServerProcess, pid_dir: &std::path::Path) -> ServerProcess {
    let port = srv.port;
    srv.kill9();
    let mut args = vec!["--port".to_string(), port.to_string(), "--listen".into(), "127.0.0.1".into()];
    let bin = if srv.name == "gearmand" {
        // Never /dev/null as the pid file: gearmand deletes its pid file at exit.
        let pid = pid_dir.join(format!("gearmand-{port}.pid")).display().to_string();
        args.extend(["--log-file".into(), "none".into(), "--pid-file".into(), pid]);
        PathBuf::from("/usr/sbin/gearmand")
    } else {
        args.push("--queue-type=builtin".into());
        sprocketd_bin().expect("sprocketd was running, so it is built")
    };
    ServerProcess::start(&srv.name, &bin, &args, port)
}
