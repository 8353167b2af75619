//! The TLS files the command-line tools take: from flags, else from the
//! environment variables libgearman reads (`GEARMAND_CA_CERTIFICATE`,
//! `GEARMAN_CLIENT_PEM`, `GEARMAN_CLIENT_KEY`). The variables only name
//! files; as with libgearman, TLS itself is switched on by a flag.

use std::path::PathBuf;
use std::time::Duration;

use sprocket_client::TlsConfig;

/// libgearman's variable for the CA file that signs the server's certificate.
pub const CA_VARIABLE: &str = "GEARMAND_CA_CERTIFICATE";
/// libgearman's variable for the client certificate.
pub const CERTIFICATE_VARIABLE: &str = "GEARMAN_CLIENT_PEM";
/// libgearman's variable for the client certificate's private key.
pub const KEY_VARIABLE: &str = "GEARMAN_CLIENT_KEY";

/// Which files to use once TLS is on; `None` where nothing was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificates to trust; without one, the system's.
    pub ca: Option<PathBuf>,
    /// The client certificate to present.
    pub certificate: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// The files named by libgearman's variables (an empty one counts as unset).
    pub fn from_environment() -> TlsFiles {
        TlsFiles { ca: variable(CA_VARIABLE), certificate: variable(CERTIFICATE_VARIABLE), key: variable(KEY_VARIABLE) }
    }

    /// Each file given here, else the one from `fallback`.
    pub fn or(self, fallback: TlsFiles) -> TlsFiles {
        TlsFiles {
            ca: self.ca.or(fallback.ca),
            certificate: self.certificate.or(fallback.certificate),
            key: self.key.or(fallback.key),
        }
    }

    /// Reads the files into a TLS configuration. A certificate without a
    /// key (or the reverse) is an error rather than a session without one:
    /// a server that requires a client certificate would refuse it later
    /// with a far less helpful message.
    pub fn load(&self) -> Result<TlsConfig, String> {
        self.load_with_handshake_limit(None)
    }

    /// [`TlsFiles::load`] with a limit for each handshake other than the
    /// library's default.
    pub fn load_with_handshake_limit(&self, limit: Option<Duration>) -> Result<TlsConfig, String> {
        let mut builder = TlsConfig::builder();
        if let Some(limit) = limit {
            builder = builder.handshake_timeout(limit);
        }
        if let Some(ca) = &self.ca {
            builder = builder.ca_file(ca);
        }
        builder = match (&self.certificate, &self.key) {
            (Some(cert), Some(key)) => builder.client_certificate(cert, key),
            (None, None) => builder,
            (Some(cert), None) => {
                return Err(format!(
                    "a client certificate ({}) needs its private key (--ssl-key or {KEY_VARIABLE})",
                    cert.display()
                ))
            }
            (None, Some(key)) => {
                return Err(format!(
                    "a private key ({}) needs its client certificate (--ssl-cert or {CERTIFICATE_VARIABLE})",
                    key.display()
                ))
            }
        };
        builder.build().map_err(|e| e.to_string())
    }
}

fn variable(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let files = TlsFiles { certificate: Some("client.pem".into()), ..TlsFiles::default() };
        let e = files.load().unwrap_err();
        assert!(e.contains("needs its private key"), "{e}");
        let files = TlsFiles { key: Some("client.key".into()), ..TlsFiles::default() };
        assert!(files.load().unwrap_err().contains("needs its client certificate"));
    }

    #[test]
    fn flags_win_over_the_environment_file_by_file() {
        let flags = TlsFiles { ca: Some("flag-ca.pem".into()), ..TlsFiles::default() };
        let env = TlsFiles { ca: Some("env-ca.pem".into()), certificate: Some("env.pem".into()), key: None };
        let both = flags.or(env);
        assert_eq!(both.ca, Some(PathBuf::from("flag-ca.pem")));
        assert_eq!(both.certificate, Some(PathBuf::from("env.pem")));
    }

    #[test]
    fn a_missing_ca_file_is_named_in_the_error() {
        let files = TlsFiles { ca: Some("/nonexistent/ca.pem".into()), ..TlsFiles::default() };
        let e = files.load().unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
