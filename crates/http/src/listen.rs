//! `--web-listen`: where the web port listens, or `none`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The web port's documented default: 127.0.0.1:4780 (gearmand's own HTTP
/// protocol plugin uses 8080, and 4730 is the Gearman port).
pub const DEFAULT_WEB_PORT: u16 = 4780;

/// Where the web port listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebListen {
    /// No web port (`--web-listen none`).
    Off,
    /// This address. `explicit` is false for the default, which is given
    /// up with a log line when taken (a second sprocketd on the host)
    /// instead of stopping start-up.
    At {
        /// The address.
        addr: SocketAddr,
        /// Given on the command line rather than the default.
        explicit: bool,
    },
}

/// A `--web-listen` value that is not `ADDR:PORT` or `none`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid --web-listen {0:?}: give ADDR:PORT (an IP address, [IPv6]:PORT, or localhost:PORT), or none to turn \
     the web port off"
)]
pub struct WebListenError(pub String);

impl WebListen {
    /// The default: loopback on [`DEFAULT_WEB_PORT`].
    pub fn default_address() -> WebListen {
        WebListen::At { addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_WEB_PORT), explicit: false }
    }

    /// Reads a `--web-listen` value; `None` (flag not given) is the default.
    pub fn parse(value: Option<&str>) -> Result<WebListen, WebListenError> {
        let Some(value) = value else { return Ok(WebListen::default_address()) };
        let trimmed = value.trim();
        if trimmed.eq_ignore_ascii_case("none") {
            return Ok(WebListen::Off);
        }
        let addr = match trimmed.strip_prefix("localhost:") {
            Some(port) => port.parse::<u16>().ok().map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p)),
            None => trimmed.parse::<SocketAddr>().ok(),
        };
        addr.map(|addr| WebListen::At { addr, explicit: true }).ok_or_else(|| WebListenError(value.to_string()))
    }

    /// Listens only where no other host can connect.
    pub fn is_loopback(&self) -> bool {
        match self {
            WebListen::Off => true,
            WebListen::At { addr, .. } => addr.ip().is_loopback(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_none_and_the_default() {
        assert_eq!(WebListen::parse(None).unwrap(), WebListen::default_address());
        assert_eq!(WebListen::parse(Some("none")).unwrap(), WebListen::Off);
        let at = |s: &str| match WebListen::parse(Some(s)).unwrap() {
            WebListen::At { addr, explicit } => (addr.to_string(), explicit),
            WebListen::Off => panic!("{s} parsed as none"),
        };
        assert_eq!(at("0.0.0.0:8000"), ("0.0.0.0:8000".into(), true));
        assert_eq!(at("[::1]:9"), ("[::1]:9".into(), true));
        assert_eq!(at("localhost:4781"), ("127.0.0.1:4781".into(), true));
        for bad in ["", "4780", "host:1", "1.2.3.4", "1.2.3.4:99999", "localhost:x"] {
            assert!(WebListen::parse(Some(bad)).is_err(), "{bad:?} accepted");
        }
        assert!(WebListen::parse(Some("127.0.0.2:1")).unwrap().is_loopback());
        assert!(!WebListen::parse(Some("0.0.0.0:1")).unwrap().is_loopback());
        assert!(!WebListen::parse(Some("[::]:1")).unwrap().is_loopback());
    }
}
