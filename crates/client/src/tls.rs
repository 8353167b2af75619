//! TLS settings for connections to job servers: which certificate
//! authorities to trust, the client certificate to present, and the time
//! a handshake may take.
//!
//! The server's certificate is always verified: against the CA file when
//! one is given, otherwise against the operating system's trust store. The
//! name checked is the host part of the server address (an IP address is
//! matched against the certificate's IP address entries).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::error::{Error, Result};

/// How long a TLS handshake may take unless the builder says otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Ready-to-use TLS settings for a [`Client`](crate::Client) or
/// [`Worker`](crate::Worker) (see [`ClientOptions::tls`](crate::ClientOptions::tls)).
/// Cheap to clone: the parsed configuration is shared.
///
/// ```no_run
/// use sprocket_client::{Client, ClientOptions, TlsConfig};
/// let tls = TlsConfig::builder()
///     .ca_file("/etc/sprocket/ca.pem")
///     .client_certificate("/etc/sprocket/client.pem", "/etc/sprocket/client.key")
///     .build()?;
/// let client = Client::with_options("jobs.example.org:4730", ClientOptions { tls: Some(tls), ..Default::default() })?;
/// # Ok::<(), sprocket_client::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    rustls: Arc<ClientConfig>,
    handshake_timeout: Duration,
    /// Where the trusted CAs came from, for Debug output.
    roots: String,
    client_certificate: Option<PathBuf>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("roots", &self.roots)
            .field("client_certificate", &self.client_certificate)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl TlsConfig {
    /// Starts a configuration: without further settings it trusts the
    /// operating system's CAs and presents no client certificate.
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder { ca_file: None, client_certificate: None, handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT }
    }

    /// The limit for one TLS handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    pub(crate) fn rustls(&self) -> Arc<ClientConfig> {
        self.rustls.clone()
    }
}

/// Collects the TLS settings; [`TlsConfigBuilder::build`] reads the files.
#[derive(Debug, Clone)]
pub struct TlsConfigBuilder {
    ca_file: Option<PathBuf>,
    client_certificate: Option<(PathBuf, PathBuf)>,
    handshake_timeout: Duration,
}

impl TlsConfigBuilder {
    /// Trust only the CA certificates in this PEM file (one or more), not
    /// the operating system's.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Present this certificate (PEM; the file may hold the chain after it)
    /// with this private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC; RSA,
    /// ECDSA and Ed25519 keys) when the server asks for one.
    pub fn client_certificate(mut self, certificate: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_certificate = Some((certificate.into(), key.into()));
        self
    }

    /// The limit for one TLS handshake (after the TCP connection is open).
    pub fn handshake_timeout(mut self, limit: Duration) -> Self {
        self.handshake_timeout = limit;
        self
    }

    /// Reads the files and builds the configuration; a file that cannot
    /// be read or holds nothing usable is an [`Error::TlsSetup`].
    pub fn build(self) -> Result<TlsConfig> {
        let (roots, described) = match &self.ca_file {
            Some(path) => (roots_from_file(path)?, format!("CA file {}", path.display())),
            None => (system_roots()?, "the system's trust store".to_string()),
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::TlsSetup(format!("TLS versions: {e}")))?
            .with_root_certificates(roots);
        let config = match &self.client_certificate {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates_from_file(cert, "client certificate")?;
                let key_der = private_key_from_file(key)?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    let why = match &e {
                        rustls::Error::InvalidCertificate(c) => describe_certificate(c, "this certificate"),
                        other => other.to_string(),
                    };
                    Error::TlsSetup(format!("client certificate {} with key {}: {why}", cert.display(), key.display()))
                })?
            }
        };
        Ok(TlsConfig {
            rustls: Arc::new(config),
            handshake_timeout: self.handshake_timeout,
            roots: described,
            client_certificate: self.client_certificate.map(|(cert, _)| cert),
        })
    }
}

fn certificates_from_file(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let unreadable = |e: &dyn fmt::Display| Error::TlsSetup(format!("cannot read {what} file {}: {e}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(&e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))?;
    if certs.is_empty() {
        return Err(Error::TlsSetup(format!(
            "{what} file {} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")",
            path.display()
        )));
    }
    Ok(certs)
}

fn roots_from_file(path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates_from_file(path, "CA")? {
        roots
            .add(cert)
            .map_err(|e| Error::TlsSetup(format!("CA file {}: unusable certificate: {e}", path.display())))?;
    }
    Ok(roots)
}

fn private_key_from_file(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no unencrypted PEM private key found (PKCS#8, RSA or EC; encrypted keys are not supported)".to_string()
            }
            other => other.to_string(),
        };
        Error::TlsSetup(format!("cannot read private key file {}: {why}", path.display()))
    })
}

/// The operating system's CA certificates (on Debian, /etc/ssl/certs as
/// kept by ca-certificates; SSL_CERT_FILE and SSL_CERT_DIR override it).
/// Certificates the system store holds but rustls cannot parse are
/// skipped, as a browser would; an empty store is an error, since nothing
/// could then be verified.
fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "skipped part of the system's trust store");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "system CA certificates rustls cannot use");
    }
    if added == 0 {
        let why = found.errors.first().map(|e| format!(": {e}")).unwrap_or_default();
        return Err(Error::TlsSetup(format!(
            "no CA certificates found in the system's trust store{why}; give a CA file"
        )));
    }
    Ok(roots)
}

/// Words for a failed handshake or a TLS error on an open connection,
/// naming the usual causes; the underlying error is kept in the text.
pub(crate) fn describe(e: &std::io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return e.to_string();
    };
    match tls {
        rustls::Error::InvalidCertificate(c) => {
            format!("certificate verify failed: {}", describe_certificate(c, "the server's certificate"))
        }
        rustls::Error::AlertReceived(alert) => format!(
            "the server refused the TLS session (alert {alert:?}; a server that requires a client certificate \
             sends this when none or an untrusted one was presented)"
        ),
        rustls::Error::InvalidMessage(m) => {
            format!("the server does not speak TLS here (it sent something that is not a TLS record: {m:?})")
        }
        other => other.to_string(),
    }
}

fn describe_certificate(c: &CertificateError, whose: &str) -> String {
    match c {
        CertificateError::UnknownIssuer => {
            format!("unknown issuer ({whose} is not signed by a trusted CA)")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("{whose} has expired ({c})")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("{whose} is not valid yet ({c})")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("{whose} does not name this host ({c})")
        }
        // webpki's reason is wrapped in an opaque error; its name is the
        // only handle on it. `openssl x509 -req` without any extension
        // writes such version 1 certificates.
        other if format!("{other:?}").contains("UnsupportedCertVersion") => format!(
            "an X.509 version 1 certificate (one without extensions), which is not accepted: \
             sign it with at least one extension, such as a subjectAltName ({other})"
        ),
        other => other.to_string(),
    }
}
