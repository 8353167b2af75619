//! `--web-token`: the secret a web client must present, as a Bearer token
//! or as the password of HTTP Basic authentication (any user name), and
//! the check that write requests come from the server's own pages rather
//! than from another site.

use axum::http::{header, HeaderMap};
use base64::Engine as _;

/// The web port's secret.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// A `--web-token` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file named could not be read.
    #[error("cannot read the --web-token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The token (or the file) is empty.
    #[error("the --web-token is empty{}", if .0.is_empty() { String::new() } else { format!(" (file {})", .0) })]
    Empty(String),
}

impl Token {
    /// The token given on the command line, or read from the file it
    /// names when it starts with `/` (so the secret stays out of `ps`);
    /// the file's trailing line break is not part of it.
    pub fn load(arg: &str) -> Result<Token, TokenError> {
        let (secret, source) = if arg.starts_with('/') {
            let text =
                std::fs::read_to_string(arg).map_err(|source| TokenError::Read { path: arg.to_string(), source })?;
            (text.trim_end_matches(['\r', '\n']).to_string(), arg.to_string())
        } else {
            (arg.to_string(), String::new())
        };
        if secret.is_empty() {
            return Err(TokenError::Empty(source));
        }
        Ok(Token(secret))
    }

    /// The request carries this token, as `Authorization: Bearer TOKEN` or
    /// `Authorization: Basic base64(user:TOKEN)`.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        presented(headers).is_some_and(|secret| self.matches(&secret))
    }

    /// Both tokens are the same secret.
    pub fn same_secret(&self, other: &Token) -> bool {
        self.matches(&other.0)
    }

    /// `secret` is this token (compared in constant time).
    pub fn matches(&self, secret: &str) -> bool {
        same_bytes(secret.as_bytes(), self.0.as_bytes())
    }
}

/// The secret a request presents: a Bearer token, or the password of
/// HTTP Basic authentication (any user name).
pub(crate) fn presented(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let colon = decoded.iter().position(|&b| b == b':')?;
        return String::from_utf8(decoded[colon + 1..].to_vec()).ok();
    }
    None
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell an attacker how much of a guess was right.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a write request looks like it came from another site: a browser
/// names the page that sent it in `Origin` (or at least `Referer`), and
/// that page must be on this server (same host and port as `Host`).
/// Requests without either header come from programs, not from a page.
pub(crate) fn cross_site(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    for name in [header::ORIGIN, header::REFERER] {
        if let Some(value) = headers.get(&name) {
            let value = value.to_str().unwrap_or("");
            let authority = value.split_once("://").map(|(_, rest)| rest.split('/').next().unwrap_or("")).unwrap_or("");
            if host.is_empty() || !authority.eq_ignore_ascii_case(host) {
                return Some(format!("{name} {value:?} is not this server ({host:?})"));
            }
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_and_basic_with_any_user_are_admitted() {
        let t = Token::load("s3cret").unwrap();
        assert!(t.admits(&headers(&[(header::AUTHORIZATION, "Bearer s3cret")])));
        // "ops:s3cret" and ":s3cret"
        assert!(t.admits(&headers(&[(header::AUTHORIZATION, "Basic b3BzOnMzY3JldA==")])));
        assert!(t.admits(&headers(&[(header::AUTHORIZATION, "basic OnMzY3JldA==")])));
        for bad in ["Bearer s3cre", "Bearer s3cret2", "s3cret", "Basic !!!", "Basic czNjcmV0", "Digest x"] {
            assert!(!t.admits(&headers(&[(header::AUTHORIZATION, bad)])), "{bad} admitted");
        }
        assert!(!t.admits(&HeaderMap::new()));
        assert!(Token::load("").is_err());
    }

    #[test]
    fn token_file_is_read_without_its_line_break() {
        let dir = std::env::temp_dir().join(format!("sprocket-http-token-{}", std::process::id()));
        std::fs::write(&dir, "from-file\n").unwrap();
        let t = Token::load(dir.to_str().unwrap()).unwrap();
        assert!(t.admits(&headers(&[(header::AUTHORIZATION, "Bearer from-file")])));
        std::fs::write(&dir, "\n").unwrap();
        assert!(matches!(Token::load(dir.to_str().unwrap()), Err(TokenError::Empty(_))));
        std::fs::remove_file(&dir).unwrap();
        assert!(matches!(Token::load("/nonexistent/token"), Err(TokenError::Read { .. })));
    }

    #[test]
    fn pages_of_other_sites_are_cross_site() {
        let own = headers(&[(header::HOST, "127.0.0.1:4780"), (header::ORIGIN, "http://127.0.0.1:4780")]);
        assert_eq!(cross_site(&own), None);
        let other = headers(&[(header::HOST, "127.0.0.1:4780"), (header::ORIGIN, "https://evil.example")]);
        assert!(cross_site(&other).is_some());
        let referer = headers(&[(header::HOST, "127.0.0.1:4780"), (header::REFERER, "http://evil.example/a")]);
        assert!(cross_site(&referer).is_some());
        let null_origin = headers(&[(header::HOST, "127.0.0.1:4780"), (header::ORIGIN, "null")]);
        assert!(cross_site(&null_origin).is_some());
        assert_eq!(cross_site(&headers(&[(header::HOST, "127.0.0.1:4780")])), None);
    }
}
