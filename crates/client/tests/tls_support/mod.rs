//! TLS test fixtures made with the tools users have: certificates made by
//! `openssl` commands (the ones docs/security.md gives), and `stunnel` as
//! the TLS terminator in front of a plain `sprocketd`. Shared by the
//! client library's and the command-line tools' TLS tests.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sprocket_client::{Client, ClientOptions, Job, JobError, TlsConfig, Worker, WorkerOptions};
use sprocket_testkit::process::{run, Background};
use sprocket_testkit::{free_port, require_tool, skip, ServerProcess};

/// The kinds of client key the tests present, each in the PEM form
/// `openssl` writes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA in PKCS#8 (`BEGIN PRIVATE KEY`), `openssl genpkey`'s form.
    RsaPkcs8,
    /// RSA in PKCS#1 (`BEGIN RSA PRIVATE KEY`), `openssl genrsa -traditional`.
    RsaPkcs1,
    /// ECDSA P-256 in SEC1 (`BEGIN EC PRIVATE KEY`), `openssl ecparam -genkey`.
    EcSec1,
    /// Ed25519 in PKCS#8.
    Ed25519,
}

pub const ALL_KEY_KINDS: [KeyKind; 4] = [KeyKind::RsaPkcs8, KeyKind::RsaPkcs1, KeyKind::EcSec1, KeyKind::Ed25519];

impl KeyKind {
    fn stem(self) -> &'static str {
        match self {
            KeyKind::RsaPkcs8 => "client-rsa8",
            KeyKind::RsaPkcs1 => "client-rsa1",
            KeyKind::EcSec1 => "client-ec",
            KeyKind::Ed25519 => "client-ed25519",
        }
    }

    fn genkey_args(self, out: &Path) -> Vec<String> {
        let out = out.display().to_string();
        let args: Vec<&str> = match self {
            KeyKind::RsaPkcs8 => vec!["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &out],
            KeyKind::RsaPkcs1 => vec!["genrsa", "-traditional", "-out", &out, "2048"],
            KeyKind::EcSec1 => vec!["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &out],
            KeyKind::Ed25519 => vec!["genpkey", "-algorithm", "ed25519", "-out", &out],
        };
        args.into_iter().map(String::from).collect()
    }

    /// The PEM header the key file must have, to prove the form tested.
    pub fn pem_header(self) -> &'static str {
        match self {
            KeyKind::RsaPkcs8 | KeyKind::Ed25519 => "-----BEGIN PRIVATE KEY-----",
            KeyKind::RsaPkcs1 => "-----BEGIN RSA PRIVATE KEY-----",
            KeyKind::EcSec1 => "-----BEGIN EC PRIVATE KEY-----",
        }
    }
}

/// A CA, a server certificate for 127.0.0.1 and localhost, an expired one,
/// client certificates of every key kind, and a second CA with a server
/// and a client certificate of its own (trusted by nobody).
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Made once per test binary; `None` (after SKIPPED, or a failure
    /// under CI) when openssl is missing.
    pub fn get() -> Option<&'static Pki> {
        static PKI: OnceLock<Option<Pki>> = OnceLock::new();
        PKI.get_or_init(|| require_tool("openssl").then(Pki::make)).as_ref()
    }

    fn make() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki { dir };
        pki.make_ca("ca", "Sprocket Test CA");
        pki.make_ca("wrong-ca", "Some Other CA");
        pki.make_request(
            "server",
            &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "localhost",
            true,
        );
        pki.sign("ca", "server", "server");
        pki.sign_expired("ca", "server", "expired");
        // Names 127.0.0.1 only: reached as localhost, its name does not match.
        pki.make_request(
            "ip-only",
            &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "127.0.0.1",
            true,
        );
        pki.sign("ca", "ip-only", "ip-only");
        pki.make_request(
            "wrong-server",
            &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "localhost",
            true,
        );
        pki.sign("wrong-ca", "wrong-server", "wrong-server");
        for kind in ALL_KEY_KINDS {
            let key = pki.path(&format!("{}.key", kind.stem()));
            pki.openssl(&kind.genkey_args(&key));
            pki.request_for_key(kind.stem(), "test-client", false);
            pki.sign("ca", kind.stem(), kind.stem());
        }
        pki.make_request(
            "wrong-client",
            &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "intruder",
            false,
        );
        pki.sign("wrong-ca", "wrong-client", "wrong-client");
        // Signed by the right CA, but valid only for a day in 2020.
        pki.make_request(
            "expired-client",
            &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "late-client",
            false,
        );
        pki.sign_expired("ca", "expired-client", "expired-client");
        // Signed without any extension: an X.509 version 1 certificate.
        pki.openssl(&words("req -new -key client-ec.key -out v1-client.csr -subj /CN=old-style"));
        pki.openssl(&words(
            "x509 -req -in v1-client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -out v1-client.pem",
        ));
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }
    pub fn wrong_ca(&self) -> PathBuf {
        self.path("wrong-ca.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.path("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.path("server.key")
    }
    pub fn ip_only_cert(&self) -> PathBuf {
        self.path("ip-only.pem")
    }
    pub fn ip_only_key(&self) -> PathBuf {
        self.path("ip-only.key")
    }
    pub fn expired_cert(&self) -> PathBuf {
        self.path("expired.pem")
    }
    pub fn wrong_server_cert(&self) -> PathBuf {
        self.path("wrong-server.pem")
    }
    pub fn wrong_server_key(&self) -> PathBuf {
        self.path("wrong-server.key")
    }
    pub fn client_cert(&self, kind: KeyKind) -> PathBuf {
        self.path(&format!("{}.pem", kind.stem()))
    }
    pub fn client_key(&self, kind: KeyKind) -> PathBuf {
        self.path(&format!("{}.key", kind.stem()))
    }
    /// An X.509 version 1 client certificate, for the EC client key.
    pub fn v1_client_cert(&self) -> PathBuf {
        self.path("v1-client.pem")
    }
    /// A client certificate the test CA signed that expired in 2020.
    pub fn expired_client_cert(&self) -> PathBuf {
        self.path("expired-client.pem")
    }
    pub fn expired_client_key(&self) -> PathBuf {
        self.path("expired-client.key")
    }
    pub fn wrong_client_cert(&self) -> PathBuf {
        self.path("wrong-client.pem")
    }
    pub fn wrong_client_key(&self) -> PathBuf {
        self.path("wrong-client.key")
    }

    /// A client certificate (EC key) whose common name is `cn`, signed by
    /// the test CA; made on first use. The ACL tests give each identity
    /// one. Returns (certificate, key).
    pub fn named_client(&self, cn: &str) -> (PathBuf, PathBuf) {
        // One at a time: signing rewrites the CA's serial file.
        static SIGNING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = SIGNING.lock().unwrap_or_else(|e| e.into_inner());
        let stem = format!("named-{cn}");
        let (cert, key) = (self.path(&format!("{stem}.pem")), self.path(&format!("{stem}.key")));
        if !cert.exists() {
            self.make_request(
                &stem,
                &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                cn,
                false,
            );
            self.sign("ca", &stem, &stem);
        }
        (cert, key)
    }

    fn openssl(&self, args: &[String]) {
        let out = run(Command::new("openssl").args(args).current_dir(self.dir.path()), b"", Duration::from_secs(60));
        assert!(out.success(), "openssl {args:?} failed: {}", out.describe());
    }

    fn make_ca(&self, stem: &str, cn: &str) {
        let args = format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -keyout {stem}.key -out {stem}.pem"
        );
        let mut args: Vec<String> = args.split(' ').map(String::from).collect();
        args.extend(["-subj".into(), format!("/CN={cn}")]);
        self.openssl(&args);
    }

    fn make_request(&self, stem: &str, genkey: &[&str], cn: &str, server: bool) {
        let mut args: Vec<String> = genkey.iter().map(|s| s.to_string()).collect();
        args.extend(["-out".into(), format!("{stem}.key")]);
        self.openssl(&args);
        self.request_for_key(stem, cn, server);
    }

    fn request_for_key(&self, stem: &str, cn: &str, server: bool) {
        let mut args: Vec<String> = vec![
            "req".into(),
            "-new".into(),
            "-key".into(),
            format!("{stem}.key"),
            "-out".into(),
            format!("{stem}.csr"),
            "-subj".into(),
            format!("/CN={cn}"),
        ];
        // An extension makes the signed certificate X.509 version 3 (a
        // certificate without one is version 1, which rustls refuses).
        let extension = if stem == "ip-only" {
            "subjectAltName=IP:127.0.0.1".to_string()
        } else if server {
            "subjectAltName=IP:127.0.0.1,DNS:localhost".to_string()
        } else {
            format!("subjectAltName=DNS:{cn}")
        };
        args.extend(["-addext".into(), extension]);
        self.openssl(&args);
    }

    fn sign(&self, ca: &str, request: &str, out: &str) {
        let args = format!(
            "x509 -req -in {request}.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial -days 365 -copy_extensions copy -out {out}.pem"
        );
        self.openssl(&args.split(' ').map(String::from).collect::<Vec<_>>());
    }

    /// A certificate valid for one day in 2020 (`openssl x509` cannot
    /// back-date, `openssl ca` can).
    fn sign_expired(&self, ca: &str, request: &str, out: &str) {
        let conf = "[ca]\ndefault_ca = test_ca\n[test_ca]\ndatabase = index.txt\nnew_certs_dir = .\n\
                    serial = ca-serial\ndefault_md = sha256\npolicy = any_name\ncopy_extensions = copy\n\
                    [any_name]\ncommonName = supplied\n";
        std::fs::write(self.path("ca.cnf"), conf).expect("write ca.cnf");
        std::fs::write(self.path("index.txt"), "").expect("write index.txt");
        std::fs::write(self.path("ca-serial"), "1000\n").expect("write ca-serial");
        let args = format!(
            "ca -config ca.cnf -batch -notext -cert {ca}.pem -keyfile {ca}.key -in {request}.csr -out {out}.pem \
             -startdate 20200101000000Z -enddate 20200102000000Z"
        );
        self.openssl(&args.split_whitespace().map(String::from).collect::<Vec<_>>());
    }
}

/// A command line split at spaces (for arguments without any).
fn words(line: &str) -> Vec<String> {
    line.split(' ').map(String::from).collect()
}

/// How stunnel should present itself.
pub struct StunnelSetup<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    /// Require a client certificate signed by this CA (stunnel's
    /// `verifyChain = yes` + `requireCert = yes`, formerly `verify = 2`).
    pub require_client_cert_from: Option<&'a Path>,
}

/// stunnel in server mode, in the foreground, forwarding TLS on `port` to
/// a plain Gearman server. Stopped when dropped.
pub struct Stunnel {
    pub port: u16,
    process: Background,
    _conf: tempfile::NamedTempFile,
}

/// Whether stunnel is installed (else SKIPPED, a failure under CI).
pub fn have_stunnel() -> bool {
    require_tool("stunnel")
}

impl Stunnel {
    /// The configuration docs/security.md shows, for `accept` → `backend`.
    pub fn config(setup: &StunnelSetup<'_>, accept: u16, backend: u16) -> String {
        let mut conf = format!(
            "foreground = yes\npid =\n\n[gearman]\naccept = 127.0.0.1:{accept}\nconnect = 127.0.0.1:{backend}\n\
             cert = {}\nkey = {}\n",
            setup.cert.display(),
            setup.key.display()
        );
        if let Some(ca) = setup.require_client_cert_from {
            conf.push_str(&format!("CAfile = {}\nverifyChain = yes\nrequireCert = yes\n", ca.display()));
        }
        conf
    }

    pub fn start(setup: &StunnelSetup<'_>, backend: u16) -> Stunnel {
        Stunnel::start_with(setup, backend, "")
    }

    /// Like [`Stunnel::start`], with more lines for the service section
    /// (say, `sslVersionMax = TLSv1.2`).
    pub fn start_with(setup: &StunnelSetup<'_>, backend: u16, extra: &str) -> Stunnel {
        // A port free a moment ago may be taken before stunnel binds it:
        // then stunnel exits, and another port is tried.
        for _ in 0..5 {
            let port = free_port();
            let conf = tempfile::NamedTempFile::new().expect("temp file");
            let text = Stunnel::config(setup, port, backend) + extra;
            std::fs::write(conf.path(), text).expect("write stunnel.conf");
            let mut cmd = Command::new("stunnel");
            cmd.arg(conf.path());
            let mut process = Background::spawn("stunnel", &mut cmd);
            let start = Instant::now();
            while process.running() && start.elapsed() < Duration::from_secs(15) {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Stunnel { port, process, _conf: conf };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("stunnel did not come up on {port}:\n{}", process.output());
            process.stop();
        }
        panic!("stunnel would not start");
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// stunnel's log so far (its handshake errors name the cause).
    pub fn log(&self) -> String {
        self.process.output()
    }
}

/// sprocketd with its in-memory queue, or `None` after SKIPPED.
pub fn sprocketd() -> Option<ServerProcess> {
    let Some(bin) = sprocket_testkit::find_workspace_bin("sprocketd") else {
        skip("sprocketd not built (cargo build -p sprocket-server)");
        return None;
    };
    Some(ServerProcess::sprocketd(&bin, &["-q", "builtin"]))
}

/// Everything a TLS scenario needs (certificates, stunnel, a sprocketd
/// behind it), or `None` after SKIPPED.
pub fn prerequisites() -> Option<(&'static Pki, ServerProcess)> {
    let pki = Pki::get()?;
    if !have_stunnel() {
        return None;
    }
    Some((pki, sprocketd()?))
}

/// A TLS configuration that trusts `ca`.
pub fn trusting(ca: &Path) -> TlsConfig {
    TlsConfig::builder().ca_file(ca).build().expect("CA file loads")
}

/// A client of `addr` over TLS, with time limits that keep a failing test short.
pub fn client(addr: &str, tls: TlsConfig) -> Client {
    let options = ClientOptions {
        tls: Some(tls),
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(10),
        job_timeout: Some(Duration::from_secs(20)),
        ..ClientOptions::default()
    };
    Client::with_options(addr, options).expect("client")
}

/// A worker of `addr` over TLS for `upper`: one WORK_DATA, then the
/// payload in upper case.
pub fn upper_worker(addr: &str, tls: TlsConfig) -> Worker {
    let options = WorkerOptions { tls: Some(tls), ..WorkerOptions::default() };
    Worker::with_options(addr, options).expect("worker").register("upper", |job: Job| async move {
        job.data("working")?;
        Ok::<_, JobError>(job.payload().to_ascii_uppercase())
    })
}
