//! The glue of gearmand's HTTP protocol module (`-r http`): its port,
//! bound on the `--listen` address like gearmand's, and where its jobs go.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use sprocket_http::{GearmandHttpConfig, GearmandHttpListener};

use crate::flags::Flags;

/// Binds the `--http-port` when the flags ask for `-r http`. `gearman`
/// is the server's bound Gearman addresses; the jobs go to the first.
pub(crate) fn bind(flags: &Flags, gearman: &[SocketAddr]) -> Result<Option<GearmandHttpListener>, String> {
    if flags.protocol.as_deref() != Some("http") {
        return Ok(None);
    }
    let Some(first) = gearman.first() else {
        return Err("-r http needs the Gearman port, and none is bound".into());
    };
    let config = GearmandHttpConfig {
        gearman: crate::web::reachable(*first),
        max_packet_size: flags.max_packet_size,
        wait: Duration::from_secs(flags.http_wait),
    };
    let port = flags.http_port;
    let candidates: Vec<SocketAddr> = match &flags.listen {
        Some(host) => (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve --listen {host} for the --http-port: {e}"))?
            .collect(),
        // Every interface: one dual-stack socket where IPv6 exists,
        // IPv4 alone where it does not.
        None => vec![
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port),
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
        ],
    };
    let mut last_error = None;
    for addr in candidates {
        match GearmandHttpListener::bind(addr, config.clone()) {
            Ok(listener) => return Ok(Some(listener)),
            Err(e) => last_error = Some(format!("cannot listen on {addr} for -r http (--http-port): {e}")),
        }
    }
    Err(last_error.unwrap_or_else(|| "--listen resolves to no address for the --http-port".into()))
}
