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

/// A TCP relay to a server that can go silent the way a dead host or a
/// broken proxy does: after [`SilentProxy::go_silent`] the server side of
/// every current connection is closed while the client side stays open and
/// never answers. Connections made afterwards are relayed normally.
pub struct SilentProxy {
    pub port: u16,
    generation: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    accept: tokio::task::JoinHandle<()>,
}

impl SilentProxy {
    /// Starts relaying from a fresh port to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> SilentProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let generation = std::sync::Arc::new(tokio::sync::watch::channel(0u64).0);
        let gen = generation.clone();
        let accept = tokio::spawn(async move {
            // Silenced client sockets are kept here, open and unread.
            let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = tokio::net::TcpStream::connect(&upstream).await else { continue };
                tokio::spawn(relay(down, up, gen.subscribe(), kept.clone()));
            }
        });
        SilentProxy { port, generation, accept }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Silences every connection open now.
    pub fn go_silent(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for SilentProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(
    mut down: tokio::net::TcpStream,
    mut up: tokio::net::TcpStream,
    mut generation: tokio::sync::watch::Receiver<u64>,
    kept: std::sync::Arc<std::sync::Mutex<Vec<tokio::net::TcpStream>>>,
) {
    let born = *generation.borrow_and_update();
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => return,
        _ = generation.wait_for(|g| *g > born) => {}
    }
    drop(up);
    kept.lock().unwrap_or_else(|e| e.into_inner()).push(down);
}
