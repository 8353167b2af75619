//! TLS on the Gearman port: the certificate files, the rustls
//! configuration made from them (reloaded on SIGHUP), and the handshake of
//! each new connection, which runs in the connection's own task under a
//! time limit. Only a connection whose handshake succeeded is announced to
//! the engine, so stalled or failed handshakes cost the engine nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;

use crate::connection::{self, Handoff};

/// gearmand's default files (its `<sysconfdir>` is /etc on Debian).
pub const DEFAULT_CERTIFICATE: &str = "/etc/ssl/certs/gearmand.pem";
pub const DEFAULT_KEY: &str = "/etc/ssl/certs/gearmand.key";
pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/gearmand-ca.pem";

/// Where TLS is offered and with which files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The server's certificate (PEM; its chain may follow it).
    pub certificate: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates a client certificate must be signed by (read only
    /// when `verify_clients` is set).
    pub ca_file: PathBuf,
    /// Require a client certificate signed by `ca_file`.
    pub verify_clients: bool,
    /// How long a new connection has to finish its handshake.
    pub handshake_timeout: Duration,
    /// `--ssl`: the Gearman port itself speaks TLS only.
    pub on_main_port: bool,
    /// `--ssl-port`: a TLS port beside the Gearman port.
    pub extra_port: Option<u16>,
}

/// Why the TLS configuration could not be made; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the TLS {what} {}: {error}", path.display())]
    Read {
        /// Which file it is (`certificate file (--ssl-certificate)`, …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's answer.
        error: std::io::Error,
    },
    /// A file holds nothing usable.
    #[error("the TLS {what} {} {problem}", path.display())]
    Content {
        /// Which file it is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// rustls refused the certificate and key together (a key that does
    /// not belong to the certificate, say).
    #[error("the TLS certificate {} and key {} do not make a usable server identity: {error}", certificate.display(), key.display())]
    Pair {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' answer.
        error: rustls::Error,
    },
}

const CERTIFICATE: &str = "certificate file (--ssl-certificate)";
const KEY: &str = "key file (--ssl-key)";
const CA_FILE: &str = "CA file (--ssl-ca-file)";

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read { what, path: path.to_path_buf(), error })
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let content = |problem: String| TlsError::Content { what, path: path.to_path_buf(), problem };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(content("holds no certificate (no BEGIN CERTIFICATE block)".into()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(KEY, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Content {
        what: KEY,
        path: path.to_path_buf(),
        problem: format!("holds no usable private key: {e}"),
    })
}

/// Whether a port asks its clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientCertificates {
    /// Never (no `--ssl-verify-clients`, no ACL).
    NotAsked,
    /// Required and verified against the CA file (the Gearman ports with
    /// `--ssl-verify-clients` or an ACL).
    Required,
    /// Verified when presented, not required (the web port with
    /// `--web-tls`: a browser usually has none and then signs in with the
    /// web token instead).
    Optional,
}

/// The rustls configuration the files describe: TLS 1.3 and 1.2, with
/// the aws-lc-rs provider the client library uses too.
fn server_config(settings: &TlsSettings, clients: ClientCertificates) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates(CERTIFICATE, &settings.certificate)?;
    let key = private_key(&settings.key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let pair_error =
        |error| TlsError::Pair { certificate: settings.certificate.clone(), key: settings.key.clone(), error };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(pair_error)?;
    let builder = if clients != ClientCertificates::NotAsked {
        let mut roots = rustls::RootCertStore::empty();
        for ca in certificates(CA_FILE, &settings.ca_file)? {
            roots.add(ca).map_err(|e| TlsError::Content {
                what: CA_FILE,
                path: settings.ca_file.clone(),
                problem: format!("holds a certificate that cannot be a trust anchor: {e}"),
            })?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier =
            if clients == ClientCertificates::Optional { verifier.allow_unauthenticated() } else { verifier };
        let verifier = verifier.build().map_err(|e| TlsError::Content {
            what: CA_FILE,
            path: settings.ca_file.clone(),
            problem: format!("cannot verify clients: {e}"),
        })?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(chain, key).map_err(pair_error)?;
    Ok(Arc::new(config))
}

/// The TLS configuration in use, shared by the accept loops; replaced as a
/// whole on reload, so a handshake sees either the old files or the new.
pub struct Certificates {
    settings: TlsSettings,
    /// The Gearman ports' configuration and the web port's (which asks for
    /// client certificates without requiring one).
    current: RwLock<Configs>,
}

#[derive(Clone)]
struct Configs {
    gearman: Arc<rustls::ServerConfig>,
    web: Arc<rustls::ServerConfig>,
}

fn configs(settings: &TlsSettings) -> Result<Configs, TlsError> {
    let (gearman, web) = if settings.verify_clients {
        (ClientCertificates::Required, ClientCertificates::Optional)
    } else {
        (ClientCertificates::NotAsked, ClientCertificates::NotAsked)
    };
    Ok(Configs { gearman: server_config(settings, gearman)?, web: server_config(settings, web)? })
}

impl Certificates {
    /// Reads the files; an error names the file at fault.
    pub fn load(settings: &TlsSettings) -> Result<Certificates, TlsError> {
        Ok(Certificates { settings: settings.clone(), current: RwLock::new(configs(settings)?) })
    }

    /// Reads the files again (SIGHUP). New files that cannot be used are
    /// logged and the ones in use are kept: a certificate renewal gone
    /// wrong must not take the port down.
    pub fn reload(&self) {
        match configs(&self.settings) {
            Ok(config) => {
                if let Ok(mut current) = self.current.write() {
                    *current = config;
                }
                tracing::info!(certificate = %self.settings.certificate.display(), "TLS certificate and key reloaded");
            }
            Err(e) => tracing::error!("TLS files not reloaded, the previous ones stay in use: {e}"),
        }
    }

    fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.current.read().ok().map(|config| tokio_rustls::TlsAcceptor::from(config.gearman.clone()))
    }

    pub fn handshake_timeout(&self) -> Duration {
        self.settings.handshake_timeout
    }
}

impl sprocket_http::WebTls for Certificates {
    fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.current.read().ok().map(|config| tokio_rustls::TlsAcceptor::from(config.web.clone()))
    }

    fn handshake_timeout(&self) -> Duration {
        self.settings.handshake_timeout
    }

    fn identity(&self, certificate: &[u8]) -> Option<String> {
        crate::tls_identity::common_name_or_dns_name(certificate)
    }
}

/// Reloads the TLS files of a running server; cheap to clone. Does nothing
/// for a server without TLS.
#[derive(Clone, Default)]
pub struct CertificateReloader(pub(crate) Option<Arc<Certificates>>);

impl CertificateReloader {
    /// Reads the certificate, key and CA files again; new connections use
    /// them, open ones keep the session they have.
    pub fn reload(&self) {
        if let Some(certificates) = &self.0 {
            certificates.reload();
        }
    }
}

/// Runs a TLS connection: the handshake (bounded by the handshake
/// timeout), then the connection as a plain one would run.
pub async fn serve(certificates: Arc<Certificates>, stream: TcpStream, handoff: Handoff) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "-".into());
    let Some(acceptor) = certificates.acceptor() else { return };
    let limit = certificates.handshake_timeout();
    let tls = match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::info!(%peer, %error, "TLS handshake failed; connection closed");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, seconds = limit.as_secs_f64(), "TLS handshake not finished in time; connection closed");
            return;
        }
    };
    let (tcp, session) = tls.into_inner();
    let identity = session.peer_certificates().and_then(|chain| chain.first()).and_then(|c| identity(c));
    match &identity {
        Some(name) => tracing::info!(%peer, conn = handoff.conn, identity = %name, "TLS client connected"),
        None => tracing::debug!(%peer, conn = handoff.conn, "TLS client connected"),
    }
    let identity = match identity {
        Some(name) => crate::acl::Identity::Certificate(name),
        None => crate::acl::Identity::Nobody,
    };
    connection::run_tls(tcp, session, identity, handoff).await;
}

/// A client certificate's identity: its subject's common name, or else its
/// first DNS name (subjectAltName).
pub fn identity(cert: &CertificateDer<'_>) -> Option<String> {
    crate::tls_identity::common_name_or_dns_name(cert.as_ref())
}
