//! The list as the web port asks it: the identity of a web request (its
//! certificate's name, a section's `web_token`, or the `net:` section of a
//! plaintext peer) with its rights, read from the list in force, and the
//! record of the web port's own connections to the Gearman port.

use std::net::SocketAddr;
use std::sync::Arc;

use sprocket_http::{Credentials, Invoke, Via, Vouch, WebAcl, WebGrant};

use super::rules::{AdminLevel, Entry, Identity};
use super::{normalized, AclStore, Vouched};

/// The server's list behind the web port's [`WebAcl`].
pub struct WebAccess(pub Arc<AclStore>);

impl WebAcl for WebAccess {
    fn identify(&self, credentials: &Credentials<'_>) -> Option<WebGrant> {
        let acl = self.0.snapshot();
        if let Some(name) = credentials.certificate {
            let identity = Identity::Certificate(name.to_string());
            return Some(match acl.section_of(&identity) {
                Some((section, entry)) => grant(section, Via::Certificate, entry),
                None => WebGrant {
                    name: name.to_string(),
                    via: Via::Certificate,
                    known: false,
                    read: false,
                    write: false,
                    invoke: None,
                },
            });
        }
        if let Some(secret) = credentials.token {
            // A token the list does not know identifies no one: the
            // request is refused rather than given its address's rights.
            return acl.section_by_token(secret).map(|(section, entry)| grant(section, Via::Token, entry));
        }
        if credentials.tls {
            // As on the Gearman port: `net:` sections are for plaintext.
            return None;
        }
        acl.section_of(&Identity::Address(credentials.peer)).map(|(section, entry)| grant(section, Via::Network, entry))
    }

    fn vouch(&self, local: SocketAddr, section: Option<&str>) -> Vouch {
        let who = match section {
            None => Vouched::Operator,
            Some(name) => Vouched::Section(name.to_string()),
        };
        let local = normalized(local);
        if let Ok(mut vouched) = self.0.vouched.lock() {
            vouched.insert(local, who);
        }
        Vouch(Some(Box::new(Unvouch { store: Arc::clone(&self.0), local })))
    }
}

fn grant(section: &str, via: Via, entry: &Arc<Entry>) -> WebGrant {
    let invoke = entry.invoke.as_ref().map(|pattern| {
        let entry = Arc::clone(entry);
        Invoke { pattern: pattern.source().to_string(), matches: Arc::new(move |f: &[u8]| entry.may_invoke(f)) }
    });
    WebGrant {
        name: section.to_string(),
        via,
        known: true,
        read: entry.admin.is_some(),
        write: entry.admin == Some(AdminLevel::Write),
        invoke,
    }
}

/// Ends a record of the web port's connection when the exchange is over.
struct Unvouch {
    store: Arc<AclStore>,
    local: SocketAddr,
}

impl Drop for Unvouch {
    fn drop(&mut self) {
        if let Ok(mut vouched) = self.store.vouched.lock() {
            vouched.remove(&self.local);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials<'a>(certificate: Option<&'a str>, token: Option<&'a str>, tls: bool) -> Credentials<'a> {
        Credentials { certificate, token, peer: "127.0.0.1".parse().unwrap(), tls }
    }

    fn access(text: &str) -> WebAccess {
        WebAccess(Arc::new(AclStore::from_text(text)))
    }

    #[test]
    fn certificate_then_token_then_network() {
        let web = access(
            "[net:127.0.0.0/8]\nadmin = read\n[ops]\nadmin = write\n[ci]\nweb_token = s3cret\ninvoke = build:.*\n",
        );
        let ops = web.identify(&credentials(Some("ops"), Some("s3cret"), true)).expect("ops");
        assert_eq!((ops.name.as_str(), ops.via, ops.read, ops.write), ("ops", Via::Certificate, true, true));
        let ci = web.identify(&credentials(None, Some("s3cret"), true)).expect("ci");
        assert_eq!((ci.name.as_str(), ci.via, ci.read), ("ci", Via::Token, false));
        let invoke = ci.invoke.expect("invoke");
        assert!((invoke.matches)(b"build:x") && !(invoke.matches)(b"deploy"));
        assert!(
            web.identify(&credentials(None, Some("wrong"), false)).is_none(),
            "an unknown token got the network's rights"
        );
        let net = web.identify(&credentials(None, None, false)).expect("loopback");
        assert_eq!((net.name.as_str(), net.via, net.write), ("net:127.0.0.0/8", Via::Network, false));
        assert!(web.identify(&credentials(None, None, true)).is_none(), "a network section applied to TLS");
        let stranger = web.identify(&credentials(Some("stranger"), None, true)).expect("named");
        assert!(!stranger.known && !stranger.read);
    }

    #[test]
    fn the_web_ports_connections_act_for_whom_it_vouched_while_the_claim_lives() {
        let web = access("[ci]\ninvoke = x\n");
        let local: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:40001".parse().unwrap();
        assert_eq!(web.0.vouched(local), None);
        let claim = web.vouch(local, Some("ci"));
        assert_eq!(web.0.vouched(mapped), Some(Vouched::Section("ci".into())));
        assert_eq!(web.0.vouched("127.0.0.1:40002".parse().unwrap()), None);
        let operator = web.vouch("127.0.0.1:40003".parse().unwrap(), None);
        assert_eq!(web.0.vouched("127.0.0.1:40003".parse().unwrap()), Some(Vouched::Operator));
        drop(claim);
        drop(operator);
        assert_eq!(web.0.vouched(local), None);
        assert!(web.0.vouched.lock().unwrap().is_empty());
    }

    #[test]
    fn web_tokens_name_one_named_section_each() {
        use super::super::file::parse;
        assert!(parse("[a]\nweb_token = x\n[b]\nweb_token = x\n").unwrap_err().1.contains("same web_token as [a]"));
        assert!(parse("[net:10.0.0.0/8]\nweb_token = x\n").unwrap_err().1.contains("network section"));
        assert!(parse("[a]\nweb_token =\n").is_err());
        assert!(parse("[a]\nweb_token = /nonexistent/token\n").unwrap_err().1.contains("/nonexistent/token"));
        // A geard file (no web_token) reads as before.
        assert!(parse("[w]\nregister = a\ninvoke = b\ngrant = no\nadmin = read\n").is_ok());
    }
}
