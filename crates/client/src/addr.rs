//! Server addresses: `host`, `host:port`, `[v6]:port`, lists separated by commas.

use std::fmt;

use crate::error::{Error, Result};

/// The port Gearman servers listen on by default.
pub const DEFAULT_PORT: u16 = 4730;

/// One job server address.
///
/// ```
/// use sprocket_client::ServerAddr;
/// let a: ServerAddr = "example.org".parse().unwrap();
/// assert_eq!(a.port, 4730);
/// let b: ServerAddr = "127.0.0.1:4731".parse().unwrap();
/// assert_eq!(b.to_string(), "127.0.0.1:4731");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerAddr {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl ServerAddr {
    /// Builds an address from its parts.
    pub fn new(host: impl Into<String>, port: u16) -> ServerAddr {
        ServerAddr { host: host.into(), port }
    }

    /// Parses a comma-separated list (`GEARMAN_SERVER` style); empty items are ignored.
    ///
    /// ```
    /// use sprocket_client::ServerAddr;
    /// let list = ServerAddr::parse_list("a:1, b").unwrap();
    /// assert_eq!(list.len(), 2);
    /// assert_eq!(list[1].port, 4730);
    /// ```
    pub fn parse_list(text: &str) -> Result<Vec<ServerAddr>> {
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect()
    }

    /// `host:port` as accepted by `TcpStream::connect`.
    pub fn socket_string(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.socket_string())
    }
}

impl std::str::FromStr for ServerAddr {
    type Err = Error;

    fn from_str(s: &str) -> Result<ServerAddr> {
        let bad = |reason: &str| Error::InvalidAddress { addr: s.to_string(), reason: reason.to_string() };
        let s = s.trim();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
            match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None if after.is_empty() => (host, None),
                None => return Err(bad("junk after ']'")),
            }
        } else if s.matches(':').count() > 1 {
            (s, None) // a bare IPv6 address
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("port must be 1..65535"))?,
        };
        Ok(ServerAddr { host: host.to_string(), port })
    }
}

/// Anything that can be turned into a list of server addresses: a string
/// (comma-separated), a `ServerAddr`, or a collection of either.
pub trait IntoServers {
    /// Converts to addresses, checking each.
    fn into_servers(self) -> Result<Vec<ServerAddr>>;
}

impl IntoServers for &str {
    fn into_servers(self) -> Result<Vec<ServerAddr>> {
        ServerAddr::parse_list(self)
    }
}

impl IntoServers for String {
    fn into_servers(self) -> Result<Vec<ServerAddr>> {
        ServerAddr::parse_list(&self)
    }
}

impl IntoServers for ServerAddr {
    fn into_servers(self) -> Result<Vec<ServerAddr>> {
        Ok(vec![self])
    }
}

impl IntoServers for Vec<ServerAddr> {
    fn into_servers(self) -> Result<Vec<ServerAddr>> {
        Ok(self)
    }
}

impl<const N: usize> IntoServers for [&str; N] {
    fn into_servers(self) -> Result<Vec<ServerAddr>> {
        let mut all = Vec::new();
        for s in self {
            all.extend(ServerAddr::parse_list(s)?);
        }
        Ok(all)
    }
}

impl IntoServers for &[String] {
    fn into_servers(self) -> Result<Vec<ServerAddr>> {
        let mut all = Vec::new();
        for s in self {
            all.extend(ServerAddr::parse_list(s)?);
        }
        Ok(all)
    }
}

impl IntoServers for Vec<String> {
    fn into_servers(self) -> Result<Vec<ServerAddr>> {
        self.as_slice().into_servers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!("h".parse::<ServerAddr>().unwrap(), ServerAddr::new("h", 4730));
        assert_eq!("h:1".parse::<ServerAddr>().unwrap(), ServerAddr::new("h", 1));
        assert_eq!("[::1]:5".parse::<ServerAddr>().unwrap(), ServerAddr::new("::1", 5));
        assert_eq!("::1".parse::<ServerAddr>().unwrap(), ServerAddr::new("::1", 4730));
        assert!("h:0".parse::<ServerAddr>().is_err());
        assert!("h:x".parse::<ServerAddr>().is_err());
        assert!(":1".parse::<ServerAddr>().is_err());
        assert_eq!(ServerAddr::parse_list("a,,b:2").unwrap().len(), 2);
    }
}
