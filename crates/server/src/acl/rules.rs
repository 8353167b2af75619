//! The access control list itself: one entry per identity, each with the
//! functions it may register and invoke, whether it may change the list,
//! and what admin commands it may use.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A function-name pattern: a regular expression that must match the
/// whole name. (geard anchors its patterns at the start only; a whole
/// match never allows more than geard would, and `build` cannot then
/// quietly allow `buildbot-secrets` too.)
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: regex::bytes::Regex,
}

impl Pattern {
    /// Compiles `source`; the error is the regex crate's explanation.
    pub fn new(source: &str) -> Result<Pattern, String> {
        let regex = regex::bytes::Regex::new(&format!("^(?:{source})$")).map_err(|e| match e {
            regex::Error::Syntax(text) => format!("invalid regular expression {source:?}: {text}"),
            other => format!("invalid regular expression {source:?}: {other}"),
        })?;
        Ok(Pattern { source: source.to_string(), regex })
    }

    pub fn matches(&self, name: &[u8]) -> bool {
        self.regex.is_match(name)
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// What admin text commands an identity may use (see
/// [`super::admin_class`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdminLevel {
    /// Commands that only look.
    Read,
    /// Every command, those that change or stop things too.
    Write,
}

impl AdminLevel {
    pub fn parse(value: &str) -> Option<AdminLevel> {
        match value.to_ascii_lowercase().as_str() {
            "read" => Some(AdminLevel::Read),
            "write" => Some(AdminLevel::Write),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AdminLevel::Read => "read",
            AdminLevel::Write => "write",
        }
    }
}

/// One identity's rights. Absent keys grant nothing.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// Functions it may register (CAN_DO, CAN_DO_TIMEOUT).
    pub register: Option<Pattern>,
    /// Functions it may submit jobs to.
    pub invoke: Option<Pattern>,
    /// It may change the list at run time (`acl grant`, `acl revoke`).
    pub grant: bool,
    /// The admin commands it may use.
    pub admin: Option<AdminLevel>,
    /// The secret that names this identity on the web port (`web_token`),
    /// for clients without a certificate.
    pub web_token: Option<sprocket_http::Token>,
}

impl Entry {
    /// Grants nothing at all (geard drops such entries on revoke). One
    /// with a `web_token` still names who holds it, and stays.
    pub fn is_empty(&self) -> bool {
        self.register.is_none()
            && self.invoke.is_none()
            && !self.grant
            && self.admin.is_none()
            && self.web_token.is_none()
    }

    pub fn may_register(&self, function: &[u8]) -> bool {
        self.register.as_ref().is_some_and(|p| p.matches(function))
    }

    pub fn may_invoke(&self, function: &[u8]) -> bool {
        self.invoke.as_ref().is_some_and(|p| p.matches(function))
    }
}

/// The prefix of a section that names a source network rather than a
/// certificate.
pub const NETWORK_PREFIX: &str = "net:";

/// An IPv4 or IPv6 network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `a.b.c.d/n` or `x:y::z/n`. Host bits must be zero, so that
    /// a typo such as `10.1.2.3/8` is caught instead of widening a rule.
    pub fn parse(text: &str) -> Result<Network, String> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("network {text:?} lacks its prefix length (as in 10.0.0.0/8)"))?;
        let address: IpAddr =
            address.parse().map_err(|_| format!("network {text:?}: {address:?} is not an IP address"))?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(|| format!("network {text:?}: the prefix length must be a number from 0 to {bits}"))?;
        let network = Network { address, prefix };
        if network.masked(address) != address_bits(address) {
            return Err(format!("network {text:?} has host bits set after the first {prefix} bits"));
        }
        Ok(network)
    }

    fn masked(&self, address: IpAddr) -> u128 {
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let host_bits = bits - u32::from(self.prefix);
        let mask = if host_bits >= 128 { 0 } else { u128::MAX << host_bits };
        address_bits(address) & mask
    }

    /// Whether `peer` is in this network. IPv4 clients of a dual-stack
    /// socket (`::ffff:a.b.c.d`) count as IPv4.
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = unmapped(peer);
        peer.is_ipv4() == self.address.is_ipv4() && self.masked(peer) == address_bits(self.address)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

fn address_bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub fn unmapped(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
        v4 => v4,
    }
}

/// Who a connection is, for the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The name in its client certificate.
    Certificate(String),
    /// A plaintext connection: its peer's address.
    Address(IpAddr),
    /// A TLS connection whose certificate names no one.
    Nobody,
    /// The section named, whichever it is: the web port's own connection
    /// to submit or requeue for a web client that identity was found for.
    Section(String),
}

/// The whole list. Cheap to clone (entries are shared), so a change at
/// run time builds a new list and swaps it in.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    entries: BTreeMap<String, Arc<Entry>>,
    /// The `net:` sections, most specific (longest prefix) first.
    networks: Vec<(Network, String)>,
}

impl Acl {
    /// Adds a section; `name` may be a `net:` one, whose network must
    /// parse.
    pub fn insert(&mut self, name: &str, entry: Entry) -> Result<(), String> {
        if let Some(cidr) = name.strip_prefix(NETWORK_PREFIX) {
            let network = Network::parse(cidr)?;
            if !self.networks.iter().any(|(_, n)| n == name) {
                self.networks.push((network, name.to_string()));
                self.networks.sort_by(|a, b| b.0.prefix().cmp(&a.0.prefix()).then_with(|| a.1.cmp(&b.1)));
            }
        }
        self.entries.insert(name.to_string(), Arc::new(entry));
        Ok(())
    }

    pub fn remove(&mut self, name: &str) {
        self.entries.remove(name);
        self.networks.retain(|(_, n)| n != name);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Entry>> {
        self.entries.get(name)
    }

    /// The entries by name, in name order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(name, entry)| (name.as_str(), entry.as_ref()))
    }

    /// The section an identity falls under: a certificate's name (never a
    /// `net:` section, whatever the certificate says), or the most
    /// specific network holding the peer's address.
    pub fn section_of(&self, identity: &Identity) -> Option<(&str, &Arc<Entry>)> {
        match identity {
            Identity::Certificate(name) if !name.starts_with(NETWORK_PREFIX) => {
                self.entries.get_key_value(name.as_str()).map(|(k, v)| (k.as_str(), v))
            }
            Identity::Address(peer) => {
                let (_, name) = self.networks.iter().find(|(network, _)| network.contains(*peer))?;
                self.entries.get_key_value(name.as_str()).map(|(k, v)| (k.as_str(), v))
            }
            Identity::Section(name) => self.entries.get_key_value(name.as_str()).map(|(k, v)| (k.as_str(), v)),
            _ => None,
        }
    }

    /// The section whose `web_token` is `secret`. Every section with a
    /// token is compared (each in constant time), so the time taken does
    /// not tell which one came close.
    pub fn section_by_token(&self, secret: &str) -> Option<(&str, &Arc<Entry>)> {
        let mut found = None;
        for (name, entry) in &self.entries {
            if entry.web_token.as_ref().is_some_and(|t| t.matches(secret)) && found.is_none() {
                found = Some((name.as_str(), entry));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_names() {
        let p = Pattern::new("build:.*").expect("valid");
        assert!(p.matches(b"build:linux"));
        assert!(p.matches(b"build:"));
        assert!(!p.matches(b"xbuild:linux"));
        let p = Pattern::new("build|test").expect("valid");
        assert!(p.matches(b"build") && p.matches(b"test"));
        assert!(!p.matches(b"builder") && !p.matches(b"tester"));
        assert!(Pattern::new("(unclosed").unwrap_err().contains("invalid regular expression"));
    }

    #[test]
    fn networks_parse_and_match() {
        let n = Network::parse("127.0.0.0/8").expect("valid");
        assert!(n.contains("127.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!n.contains("128.0.0.1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        let n = Network::parse("::1/128").expect("valid");
        assert!(n.contains("::1".parse().unwrap()));
        assert!(!n.contains("::2".parse().unwrap()));
        let all = Network::parse("0.0.0.0/0").expect("valid");
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(Network::parse("::/0").expect("valid").contains("2001:db8::1".parse().unwrap()));
        assert!(Network::parse("10.1.2.3/8").unwrap_err().contains("host bits"));
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("10.0.0.0").is_err());
        assert!(Network::parse("example/8").is_err());
    }

    #[test]
    fn the_most_specific_network_wins_and_certificates_cannot_claim_one() {
        let mut acl = Acl::default();
        acl.insert("net:127.0.0.0/8", Entry { grant: true, ..Entry::default() }).unwrap();
        acl.insert("net:127.0.0.1/32", Entry::default()).unwrap();
        acl.insert("net:0.0.0.0/0", Entry::default()).unwrap();
        let section = |id: Identity| acl.section_of(&id).map(|(name, _)| name.to_string());
        assert_eq!(section(Identity::Address("127.0.0.1".parse().unwrap())).as_deref(), Some("net:127.0.0.1/32"));
        assert_eq!(section(Identity::Address("127.0.0.2".parse().unwrap())).as_deref(), Some("net:127.0.0.0/8"));
        assert_eq!(section(Identity::Address("10.0.0.2".parse().unwrap())).as_deref(), Some("net:0.0.0.0/0"));
        assert_eq!(section(Identity::Address("::1".parse().unwrap())), None);
        assert_eq!(section(Identity::Certificate("net:127.0.0.0/8".into())), None);
        assert_eq!(section(Identity::Nobody), None);
    }
}
