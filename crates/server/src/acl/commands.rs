//! The `acl` admin commands, as geard has them:
//!
//! * `acl list`: one line per section, `name\tregister=…\tinvoke=…\tgrant=…\tadmin=…`,
//!   then `.`;
//! * `acl grant <verb> <identity> [<pattern>]`, verb `register` or `invoke`
//!   (with a pattern), `grant`, or `admin` (with `read` or `write`);
//! * `acl revoke <verb> <identity>`, verb `register`, `invoke`, `grant`,
//!   `admin` or `all`;
//! * `acl self-revoke <verb>`: the same for the connection's own section.
//!
//! `acl grant` and `acl revoke` also take the identity first (`acl grant
//! worker-1 register build:.*`). All but giving up one's own rights need
//! `grant = true`.

use bytes::Bytes;

use super::access::{admin_error, permission_denied, Access};
use super::rules::{AdminLevel, Entry, Pattern};

const VERBS: &[&str] = &["register", "invoke", "grant", "admin", "all"];

/// Runs one `acl …` line; the reply text.
pub fn run(access: &mut Access, line: &[u8]) -> Bytes {
    let Ok(line) = std::str::from_utf8(line) else {
        return admin_error("INVALID_ARGUMENTS", "acl commands must be UTF-8 text");
    };
    let (words, rest) = words(line.trim(), 4);
    let may_grant = access.section().is_some_and(|(_, entry)| entry.grant);
    let own = access.section().map(|(name, _)| name);
    let refused = |what: &str| {
        tracing::info!(identity = %access.label(), command = %line.trim(), "ACL: acl command refused");
        permission_denied(&format!("identity {:?} may not {what} (it needs grant = true)", access.label()))
    };
    match words.get(1).map(|w| w.to_ascii_lowercase()).as_deref() {
        Some("list") if words.len() == 2 => {
            if !may_grant {
                return refused("list the ACL");
            }
            list(access)
        }
        Some("grant") if words.len() >= 4 => {
            if !may_grant {
                return refused("change the ACL");
            }
            let Some((verb, identity)) = verb_and_identity(words[2], words[3]) else {
                return unknown_verb();
            };
            let reply = grant(access, verb, identity, rest.trim());
            log_change(access, line, &reply);
            reply
        }
        Some("revoke") if words.len() == 4 && rest.is_empty() => {
            let Some((verb, identity)) = verb_and_identity(words[2], words[3]) else {
                return unknown_verb();
            };
            // Giving up one's own rights needs no right, as in geard.
            if !may_grant && own.as_deref() != Some(identity) {
                return refused("change the ACL");
            }
            let reply = revoke(access, verb, identity);
            log_change(access, line, &reply);
            reply
        }
        Some("self-revoke") if words.len() == 3 => {
            let Some(own) = own else {
                return admin_error("UNABLE", "this connection has no ACL section");
            };
            if !VERBS.contains(&words[2].to_ascii_lowercase().as_str()) {
                return unknown_verb();
            }
            let reply = revoke(access, &words[2].to_ascii_lowercase(), &own);
            log_change(access, line, &reply);
            reply
        }
        _ => admin_error(
            "INVALID_ARGUMENTS",
            "use: acl list | acl grant <verb> <identity> [<pattern>] | acl revoke <verb> <identity> | acl self-revoke <verb>",
        ),
    }
}

fn unknown_verb() -> Bytes {
    admin_error("UNKNOWN_ACL_VERB", "the verbs are register, invoke, grant, admin (and all, for revoke)")
}

fn log_change(access: &Access, line: &str, reply: &Bytes) {
    if reply.starts_with(b"OK") {
        tracing::info!(identity = %access.label(), command = %line.trim(), "ACL changed");
    }
}

/// Up to `n` whitespace-separated words, and what follows them.
fn words(line: &str, n: usize) -> (Vec<&str>, &str) {
    let mut words = Vec::new();
    let mut rest = line;
    while words.len() < n {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        words.push(&rest[..end]);
        rest = &rest[end..];
    }
    (words, rest.trim_start())
}

/// geard's order (`register worker-1`), else identity first.
fn verb_and_identity<'a>(first: &'a str, second: &'a str) -> Option<(&'static str, &'a str)> {
    let verb = |word: &str| VERBS.iter().copied().find(|v| v.eq_ignore_ascii_case(word));
    match (verb(first), verb(second)) {
        (Some(v), _) => Some((v, second)),
        (None, Some(v)) => Some((v, first)),
        (None, None) => None,
    }
}

fn grant(access: &Access, verb: &str, identity: &str, argument: &str) -> Bytes {
    let needs_argument = matches!(verb, "register" | "invoke" | "admin");
    if needs_argument == argument.is_empty() {
        return admin_error(
            "INVALID_ARGUMENTS",
            if needs_argument {
                "give the pattern (admin: read or write)"
            } else {
                "grant grant takes nothing after the identity"
            },
        );
    }
    let result = (|| -> Result<(), String> {
        let change: Box<dyn FnOnce(&mut Entry)> = match verb {
            "register" => {
                let p = Pattern::new(argument)?;
                Box::new(move |e| e.register = Some(p))
            }
            "invoke" => {
                let p = Pattern::new(argument)?;
                Box::new(move |e| e.invoke = Some(p))
            }
            "grant" => Box::new(|e| e.grant = true),
            "admin" => {
                let level = AdminLevel::parse(argument).ok_or("admin is read or write")?;
                Box::new(move |e| e.admin = Some(level))
            }
            _ => return Err("all is for acl revoke".into()),
        };
        access.store().change(|acl| {
            let mut entry = acl.get(identity).map(|e| Entry::clone(e)).unwrap_or_default();
            change(&mut entry);
            acl.insert(identity, entry)
        })
    })();
    match result {
        Ok(()) => Bytes::from_static(sprocket_proto::admin::OK),
        Err(why) => admin_error("UNABLE", &why),
    }
}

fn revoke(access: &Access, verb: &str, identity: &str) -> Bytes {
    let result = access.store().change(|acl| {
        let Some(entry) = acl.get(identity) else { return Ok(()) };
        let mut entry = Entry::clone(entry);
        match verb {
            "register" => entry.register = None,
            "invoke" => entry.invoke = None,
            "grant" => entry.grant = false,
            "admin" => entry.admin = None,
            // The web_token stays: it still names who holds it (a web
            // request is then refused for lacking rights, not as unknown).
            _ => entry = Entry { web_token: entry.web_token.take(), ..Entry::default() },
        }
        // A section left granting nothing goes, as in geard.
        if entry.is_empty() {
            acl.remove(identity);
            Ok(())
        } else {
            acl.insert(identity, entry)
        }
    });
    match result {
        Ok(()) => Bytes::from_static(sprocket_proto::admin::OK),
        Err(why) => admin_error("UNABLE", &why),
    }
}

/// geard's listing (Python's None, True and False included, so scripts
/// written for it read ours), with our admin field last.
fn list(access: &Access) -> Bytes {
    let acl = access.store().snapshot();
    let mut out = String::new();
    let shown = |p: &Option<Pattern>| p.as_ref().map_or("None".to_string(), |p| p.source().replace('\n', "\\n"));
    for (name, entry) in acl.entries() {
        out.push_str(&format!(
            "{name}\tregister={}\tinvoke={}\tgrant={}\tadmin={}\n",
            shown(&entry.register),
            shown(&entry.invoke),
            if entry.grant { "True" } else { "False" },
            entry.admin.map_or("None", AdminLevel::name),
        ));
    }
    out.push_str(".\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_the_rest() {
        assert_eq!(words("acl grant register w  a b", 4), (vec!["acl", "grant", "register", "w"], "a b"));
        assert_eq!(words("acl list", 4), (vec!["acl", "list"], ""));
    }

    #[test]
    fn both_word_orders_are_understood() {
        assert_eq!(verb_and_identity("register", "w"), Some(("register", "w")));
        assert_eq!(verb_and_identity("w", "INVOKE"), Some(("invoke", "w")));
        assert_eq!(verb_and_identity("w", "x"), None);
    }
}
