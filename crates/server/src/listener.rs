//! Binding the Gearman port and accepting connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::config::{Keepalive, ListenConfig};
use crate::connection::{self, ConnSettings};
use crate::error::StartError;
use crate::event::Event;

/// Binds every address the host resolves to (all interfaces when there is
/// none), retrying for a while if the port is still in use, as gearmand
/// does.
pub async fn bind(listen: &ListenConfig) -> Result<Vec<TcpListener>, StartError> {
    let port = listen.port;
    let addrs: Vec<SocketAddr> = match &listen.host {
        Some(host) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|error| StartError::Resolve { host: host.clone(), error })?
            .collect(),
        None => vec![SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 0], port)), SocketAddr::from(([0, 0, 0, 0], port))],
    };
    let mut listeners = Vec::new();
    let mut last_err = None;
    for addr in addrs {
        match bind_one(addr, listen.backlog).await {
            Ok(l) => listeners.push(l),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "bind failed");
                last_err = Some(e);
            }
        }
        // On dual-stack hosts [::] already covers IPv4.
        if listen.host.is_none() && !listeners.is_empty() {
            break;
        }
    }
    if listeners.is_empty() {
        return Err(StartError::Listen { port, error: last_err });
    }
    Ok(listeners)
}

async fn bind_one(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let mut delay = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    loop {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr) {
            Ok(()) => return socket.listen(backlog.max(1)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && waited < Duration::from_secs(20) => {
                tracing::warn!(%addr, "address in use, retrying");
                tokio::time::sleep(delay).await;
                waited += delay;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Applies the keepalive settings to an accepted socket.
fn apply_keepalive(keepalive: &Keepalive, stream: &tokio::net::TcpStream) {
    let sock = socket2::SockRef::from(stream);
    let _ = sock.set_keepalive(true);
    if !keepalive.enabled {
        return;
    }
    let mut ka = socket2::TcpKeepalive::new();
    if keepalive.idle > 0 {
        ka = ka.with_time(Duration::from_secs(keepalive.idle as u64));
    }
    if keepalive.interval > 0 {
        ka = ka.with_interval(Duration::from_secs(keepalive.interval as u64));
    }
    if keepalive.count > 0 {
        ka = ka.with_retries(keepalive.count as u32);
    }
    let _ = sock.set_tcp_keepalive(&ka);
}

/// Everything an accept loop hands to the connections it starts.
#[derive(Clone)]
pub struct Acceptor {
    /// Where connections send what they read.
    pub events: mpsc::UnboundedSender<Event>,
    /// Limits every connection shares.
    pub settings: Arc<ConnSettings>,
    /// The number the next connection gets.
    pub next_conn: Arc<AtomicU64>,
    /// One permit per open connection (`--max-connections`).
    pub limit: Arc<Semaphore>,
    /// TCP keepalive for accepted sockets.
    pub keepalive: Keepalive,
    /// Becomes true when the server stops accepting.
    pub stop: watch::Receiver<bool>,
    /// Held by every connection until its last reply is written.
    pub flushed: mpsc::Sender<()>,
    /// The TLS configuration, when this port speaks TLS only.
    pub tls: Option<Arc<crate::tls::Certificates>>,
}

/// Accepts connections until told to stop, starting a task for each.
pub async fn accept_loop(listener: TcpListener, acceptor: Acceptor) {
    let Acceptor { events, settings, next_conn, limit, keepalive, mut stop, flushed, tls } = acceptor;
    {
        let mut refused_logged = false;
        let mut accept_errors = AcceptErrorLog::default();
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = stop.changed() => {
                    if *stop.borrow() { return; }
                    continue;
                }
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: back off briefly.
                    accept_errors.failed(&e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            accept_errors.recovered();
            let permit = match limit.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    if !refused_logged {
                        tracing::warn!(%peer, "connection limit reached (--max-connections); refusing connections");
                        refused_logged = true;
                    }
                    drop(stream);
                    continue;
                }
            };
            refused_logged = false;
            apply_keepalive(&keepalive, &stream);
            let conn = next_conn.fetch_add(1, Ordering::Relaxed);
            match &tls {
                None => {
                    tokio::spawn(connection::run(
                        stream,
                        conn,
                        events.clone(),
                        settings.clone(),
                        Some(permit),
                        flushed.clone(),
                    ));
                }
                // The handshake runs in the connection's own task, so a
                // peer that stalls in it holds up no one else.
                Some(certificates) => {
                    let handoff = connection::Handoff {
                        conn,
                        events: events.clone(),
                        settings: settings.clone(),
                        permit: Some(permit),
                        flushed: flushed.clone(),
                    };
                    tokio::spawn(crate::tls::serve(certificates.clone(), stream, handoff));
                }
            }
        }
    }
}

/// Logs failing accepts (out of file descriptors, say) at most once every
/// `ACCEPT_ERROR_LOG_EVERY`, with how many went unlogged, and says when
/// accepting works again after a logged failure: a server out of
/// descriptors retries every 50 ms, and as connections come and go it
/// flaps between failing and accepting; one line per retry was twenty a
/// second.
#[derive(Default)]
struct AcceptErrorLog {
    last_logged: Option<std::time::Instant>,
    unlogged: u64,
    /// A failure was logged and no success since.
    announced: Option<std::time::Instant>,
}

const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

impl AcceptErrorLog {
    fn failed(&mut self, e: &std::io::Error) {
        let now = std::time::Instant::now();
        match self.last_logged {
            Some(at) if now.duration_since(at) < ACCEPT_ERROR_LOG_EVERY => self.unlogged += 1,
            _ => {
                tracing::warn!(error = %e, unlogged_since_last = self.unlogged, "accept failed; retrying every 50 ms");
                self.last_logged = Some(now);
                self.unlogged = 0;
                self.announced.get_or_insert(now);
            }
        }
    }

    fn recovered(&mut self) {
        if let Some(since) = self.announced.take() {
            tracing::warn!(after_ms = since.elapsed().as_millis() as u64, "accepting connections again");
        }
    }
}
