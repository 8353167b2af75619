//! Reading an ACL file: the INI dialect geard reads with Python's
//! configparser, so that a geard file works unchanged. One section per
//! identity (`[worker-1]`, or `[net:10.0.0.0/8]` for plaintext peers),
//! `key = value` or `key: value` lines, `#` and `;` comment lines,
//! indented lines continuing the previous value. Keys are case-blind.

use std::path::{Path, PathBuf};

use super::rules::{Acl, AdminLevel, Entry, Pattern, NETWORK_PREFIX};

/// Why an ACL file cannot be used; names the file and, for content, the
/// line.
#[derive(Debug, thiserror::Error)]
pub enum AclFileError {
    #[error("cannot read the ACL file {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("ACL file {} line {line}: {problem}", path.display())]
    Content { path: PathBuf, line: usize, problem: String },
}

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<Acl, AclFileError> {
    let text = std::fs::read_to_string(path).map_err(|error| AclFileError::Read { path: path.to_path_buf(), error })?;
    parse(&text).map_err(|(line, problem)| AclFileError::Content { path: path.to_path_buf(), line, problem })
}

/// A section being read: its name, the line it starts on, its keys so far.
struct Section {
    name: String,
    line: usize,
    keys: Vec<Key>,
}

struct Key {
    name: String,
    line: usize,
    value: String,
}

/// Parses the text of an ACL file; an error gives the line (from 1) and
/// what is wrong there.
pub fn parse(text: &str) -> Result<Acl, (usize, String)> {
    let mut sections: Vec<Section> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = trimmed.len() != line.len();
        if indented {
            // A continuation of the value above, as configparser reads it.
            if let Some(key) = sections.last_mut().and_then(|s| s.keys.last_mut()) {
                key.value.push('\n');
                key.value.push_str(trimmed);
                continue;
            }
        }
        if let Some(inner) = trimmed.strip_prefix('[') {
            let name = inner
                .strip_suffix(']')
                .filter(|n| !n.is_empty())
                .ok_or_else(|| (number, format!("{trimmed:?} is not a section header such as [worker-1]")))?;
            if name == "DEFAULT" {
                return Err((number, "a [DEFAULT] section is not supported: give each identity its keys".into()));
            }
            if let Some(first) = sections.iter().find(|s| s.name == name) {
                return Err((number, format!("section [{name}] appears twice (first on line {})", first.line)));
            }
            sections.push(Section { name: name.to_string(), line: number, keys: Vec::new() });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err((number, "a key before the first section: each identity's keys go under [identity]".into()));
        };
        let split = trimmed
            .find(['=', ':'])
            .ok_or_else(|| (number, format!("{trimmed:?} is neither a section header nor a key = value line")))?;
        let name = trimmed[..split].trim().to_ascii_lowercase();
        let value = trimmed[split + 1..].trim().to_string();
        if name.is_empty() {
            return Err((number, "a value without a key".into()));
        }
        if let Some(first) = section.keys.iter().find(|k| k.name == name) {
            return Err((
                number,
                format!("key {name:?} appears twice in [{}] (first on line {})", section.name, first.line),
            ));
        }
        section.keys.push(Key { name, line: number, value });
    }
    let mut acl = Acl::default();
    for section in sections {
        let mut entry = Entry::default();
        for key in &section.keys {
            let bad = |problem: String| (key.line, problem);
            match key.name.as_str() {
                // An empty pattern grants nothing, as in geard.
                "register" => entry.register = pattern(&key.value).map_err(bad)?,
                "invoke" => entry.invoke = pattern(&key.value).map_err(bad)?,
                "grant" => entry.grant = boolean(&key.value).map_err(bad)?,
                "admin" => {
                    entry.admin = Some(
                        AdminLevel::parse(&key.value)
                            .ok_or_else(|| bad(format!("admin must be read or write, not {:?}", key.value)))?,
                    )
                }
                "web_token" => entry.web_token = Some(web_token(&section.name, &key.value, &acl).map_err(bad)?),
                other => {
                    return Err(bad(format!(
                        "unknown key {other:?} in [{}]: the keys are register, invoke, grant, admin and web_token",
                        section.name
                    )))
                }
            }
        }
        acl.insert(&section.name, entry).map_err(|problem| (section.line, problem))?;
    }
    Ok(acl)
}

/// A `web_token`: the secret itself, or a file holding it when it starts
/// with `/` (read as `--web-token` reads its file). Network sections take
/// none (a peer's address already names them), and no two sections share
/// one, since a token must name a single identity.
fn web_token(section: &str, value: &str, acl: &Acl) -> Result<sprocket_http::Token, String> {
    if section.starts_with(NETWORK_PREFIX) {
        return Err(format!("[{section}] is a network section: web_token is for named identities"));
    }
    let token =
        sprocket_http::Token::load(value).map_err(|e| format!("web_token: {}", e).replace("--web-token", "token"))?;
    if let Some(other) = acl
        .entries()
        .find_map(|(name, e)| e.web_token.as_ref().filter(|t| t.same_secret(&token)).map(|_| name.to_string()))
    {
        return Err(format!("[{section}] has the same web_token as [{other}]: a token must name one identity"));
    }
    Ok(token)
}

fn pattern(value: &str) -> Result<Option<Pattern>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    Pattern::new(value).map(Some)
}

/// configparser's booleans.
fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(format!("grant must be true or false (or yes/no, on/off, 1/0), not {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::rules::Identity;
    use super::*;

    /// The example in geard's documentation, as its users have it.
    const GEARD_EXAMPLE: &str = "[my_worker]\nregister=.*\n\n[my_client]\ninvoke=.*\n\n[my_node_manager]\ngrant=True\n";

    fn entry<'a>(acl: &'a Acl, name: &str) -> &'a Entry {
        acl.get(name).unwrap_or_else(|| panic!("section {name} missing"))
    }

    #[test]
    fn geards_example_file_is_read_as_geard_reads_it() {
        let acl = parse(GEARD_EXAMPLE).expect("geard's example parses");
        let worker = entry(&acl, "my_worker");
        assert!(worker.may_register(b"anything") && !worker.may_invoke(b"anything") && !worker.grant);
        let client = entry(&acl, "my_client");
        assert!(client.may_invoke(b"anything") && !client.may_register(b"anything") && !client.grant);
        let manager = entry(&acl, "my_node_manager");
        assert!(manager.grant && !manager.may_invoke(b"x") && !manager.may_register(b"x"));
        assert_eq!(manager.admin, None);
        assert_eq!(acl.entries().count(), 3);
    }

    #[test]
    fn configparser_syntax_is_accepted() {
        let text = "# comment\n; another\n[worker-1]\n  Register : build:.*  \nGRANT = off\nadmin=Read\n\n\
                    [client]\ninvoke = build:linux|\n  build:mac\n[net:127.0.0.0/8]\ninvoke=.*\nadmin = write\n\
                    [net:::1/128]\nregister=\n";
        let acl = parse(text).expect("parses");
        let worker = entry(&acl, "worker-1");
        assert!(worker.may_register(b"build:x") && !worker.grant);
        assert_eq!(worker.admin, Some(AdminLevel::Read));
        // A continued value joins its lines with a newline, as configparser does.
        assert_eq!(entry(&acl, "client").invoke.as_ref().map(|p| p.source()), Some("build:linux|\nbuild:mac"));
        assert!(entry(&acl, "net:::1/128").is_empty());
        let local = acl.section_of(&Identity::Address("127.0.0.1".parse().unwrap())).expect("loopback");
        assert_eq!(local.0, "net:127.0.0.0/8");
        assert!(acl.section_of(&Identity::Address("::1".parse().unwrap())).is_some());
    }

    #[test]
    fn mistakes_name_their_line() {
        let line = |text: &str| parse(text).expect_err("must be refused");
        assert_eq!(line("register=.*\n").0, 1);
        let (n, why) = line("[a]\ninvoke=.*\n[b]\ninvoke=(\n");
        assert_eq!(n, 4);
        assert!(why.contains("invalid regular expression"), "{why}");
        let (n, why) = line("[a]\ninvoek=.*\n");
        assert_eq!(n, 2);
        assert!(why.contains("unknown key \"invoek\""), "{why}");
        assert!(line("[a]\ngrant=maybe\n").1.contains("grant must be"));
        assert!(line("[a]\nadmin=all\n").1.contains("admin must be"));
        let (n, why) = line("[a]\n\n[a]\n");
        assert_eq!(n, 3);
        assert!(why.contains("twice"));
        assert!(line("[a]\ninvoke=.*\ninvoke=x\n").1.contains("twice"));
        assert_eq!(line("[a]\njust words\n").0, 2);
        assert_eq!(line("[net:10.1.0.0/8]\n").0, 1);
        assert_eq!(line("[unclosed\n").0, 1);
        assert!(line("[DEFAULT]\n").1.contains("DEFAULT"));
    }

    /// The example in docs/security.md parses and means what the page says.
    #[test]
    fn the_documented_example_parses() {
        let page = include_str!("../../../../docs/security.md");
        let section = page.split("## Access control").nth(1).expect("the ACL section");
        let example = section.split("```ini\n").nth(1).and_then(|s| s.split("```").next()).expect("the ini example");
        let acl = parse(example).expect("the documented example parses");
        let worker = entry(&acl, "build-worker");
        assert!(worker.may_register(b"build:linux") && !worker.may_invoke(b"build:linux"));
        let frontend = entry(&acl, "ci-frontend");
        assert!(frontend.may_invoke(b"deploy") && frontend.may_invoke(b"build:x") && !frontend.may_invoke(b"deployx"));
        assert_eq!(frontend.admin, Some(AdminLevel::Read));
        assert!(entry(&acl, "ops").grant);
        assert!(acl.section_of(&Identity::Address("::1".parse().unwrap())).is_some());
    }

    #[test]
    fn an_empty_file_denies_everything() {
        let acl = parse("").expect("empty is valid");
        assert!(acl.section_of(&Identity::Certificate("anyone".into())).is_none());
    }
}
