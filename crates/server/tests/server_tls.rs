//! TLS on sprocketd's own ports (`--ssl`, `--ssl-port`), driven by
//! third-party TLS peers: `openssl s_client` carrying raw Gearman packets,
//! Python's `ssl` module, Debian's `gearman` CLI, php-gearman and Perl's
//! Gearman::Client through `stunnel` in client mode, and the Rust client.
//! Certificates are made by the `openssl` commands docs/security.md gives
//! (the client tests' fixtures). Also the bad input: plaintext to a TLS
//! port, TLS to a plain one, missing files, client certificates from the
//! wrong CA or none, stalled handshakes, and a SIGHUP reload.

mod common;
#[path = "../../client/tests/tls_support/mod.rs"]
mod tls_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sprocket_client::{Client, ClientOptions, TlsConfig};
use sprocket_testkit::databases::wait_until;
use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::wait_for_workers;
use sprocket_testkit::{free_port, interop_dir, require_tool, ServerProcess};
use tls_support::{client, trusting, upper_worker, KeyKind, Pki};

/// A sprocketd whose Gearman port speaks TLS only; killed when dropped.
struct TlsServer {
    port: u16,
    process: Background,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    /// `sprocketd --ssl` with the test CA's server certificate, plus
    /// `extra` flags; waits until the port accepts connections.
    fn start(pki: &Pki, extra: &[&str]) -> TlsServer {
        TlsServer::start_with_files(&pki.server_cert(), &pki.server_key(), extra)
    }

    fn start_with_files(cert: &Path, key: &Path, extra: &[&str]) -> TlsServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("sprocketd.log");
        for _ in 0..5 {
            let _ = std::fs::remove_file(&log);
            let port = free_port();
            let mut cmd = Command::new(common::sprocketd());
            cmd.args(["-q", "builtin", "-L", "127.0.0.1", "-p", &port.to_string(), "--ssl", "--verbose", "INFO"])
                .arg("--ssl-certificate")
                .arg(cert)
                .arg("--ssl-key")
                .arg(key)
                .arg("--log-file")
                .arg(&log)
                .args(extra);
            let mut process = Background::spawn("sprocketd --ssl", &mut cmd);
            let start = Instant::now();
            while process.running() && start.elapsed() < Duration::from_secs(20) {
                let listening = std::fs::read_to_string(&log).unwrap_or_default().contains("sprocketd listening");
                if listening && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return TlsServer { port, process, log, _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!(
                "sprocketd --ssl did not come up on {port}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            process.stop();
        }
        panic!("sprocketd --ssl would not start");
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The bytes of a packet of `magic` and `kind` carrying `data`.
fn packet(magic: &[u8; 4], kind: u32, data: &[u8]) -> Vec<u8> {
    let mut packet = magic.to_vec();
    packet.extend(kind.to_be_bytes());
    packet.extend((data.len() as u32).to_be_bytes());
    packet.extend_from_slice(data);
    packet
}

/// ECHO_REQ carrying `data`.
fn echo_req(data: &[u8]) -> Vec<u8> {
    packet(b"\0REQ", 16, data)
}

/// The ECHO_RES the server answers `echo_req(data)` with.
fn echo_res(data: &[u8]) -> Vec<u8> {
    packet(b"\0RES", 17, data)
}

/// `openssl s_client` to `port` trusting `ca`, sending `input` and keeping
/// its input open for `wait`; returns (success, stdout, stderr).
fn s_client(port: u16, ca: &Path, extra: &[&str], input: &[u8], wait: Duration) -> (bool, Vec<u8>, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-quiet", "-verify_return_error", "-CAfile"])
        .arg(ca)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("openssl s_client starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(input);
    // The reply arrives while stdin is still open (s_client stops reading
    // the connection once its input ends).
    let start = Instant::now();
    while start.elapsed() < wait {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let limit = Instant::now();
    while limit.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("s_client output");
    (out.status.success(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_rust_client_and_worker_run_a_job_on_a_tls_only_port() {
    let Some(pki) = Pki::get() else { return };
    // One runtime thread (the default), and connections spread over two.
    for threads in ["1", "2"] {
        let srv = TlsServer::start(pki, &["-t", threads]);
        let worker = upper_worker(&srv.addr(), trusting(&pki.ca())).spawn().expect("worker starts");
        let client = client(&srv.addr(), trusting(&pki.ca()));
        let result = client.submit("upper", "over tls").await.expect("job runs over TLS");
        assert_eq!(&result[..], b"OVER TLS");
        // Large payloads cross many TLS records each way, and fill the
        // sockets, so replies wait for the writer task.
        let big = "x".repeat(3 * 1024 * 1024);
        for _ in 0..3 {
            let result = client.submit("upper", big.clone()).await.expect("large job runs over TLS");
            assert_eq!(result.len(), big.len(), "-t {threads}");
            assert!(result.iter().all(|b| *b == b'X'));
        }
        worker.stop();
    }
}

#[test]
fn openssl_s_client_carries_raw_gearman_packets_over_tls_1_2_and_1_3() {
    let Some(pki) = Pki::get() else { return };
    let srv = TlsServer::start(pki, &[]);
    for version in ["-tls1_2", "-tls1_3"] {
        let mut input = echo_req(b"hello over tls");
        input.extend(b"version\n");
        let (_, out, err) = s_client(srv.port, &pki.ca(), &[version], &input, Duration::from_secs(2));
        assert!(contains(&out, &echo_res(b"hello over tls")), "{version}: no ECHO_RES in {out:?}; stderr: {err}");
        assert!(contains(&out, b"OK 1.1.20+sprocket"), "{version}: admin version not answered: {out:?}; {err}");
    }
    // A client that does not trust the CA gives up on the server.
    let (ok, out, err) = s_client(srv.port, &pki.wrong_ca(), &[], &echo_req(b"x"), Duration::from_millis(500));
    assert!(!ok && out.is_empty(), "an untrusted server certificate was accepted: {out:?} {err}");
}

#[test]
fn pythons_ssl_module_echoes_through_the_tls_port() {
    let Some(pki) = Pki::get() else { return };
    if !require_tool("python3") {
        return;
    }
    let srv = TlsServer::start(pki, &[]);
    let script = r#"
import socket, ssl, struct, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        data = b"from python"
        s.sendall(b"\0REQ" + struct.pack(">II", 16, len(data)) + data)
        reply = b""
        while len(reply) < 12 + len(data):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        magic, kind, size = struct.unpack(">4sII", reply[:12])
        assert (magic, kind, reply[12:12 + size]) == (b"\0RES", 17, data), reply
        print(s.version(), "ECHO OK")
"#;
    let out = run(
        Command::new("python3").args(["-c", script, &srv.port.to_string()]).arg(pki.ca()),
        b"",
        Duration::from_secs(30),
    );
    assert!(out.success() && out.stdout_text().contains("ECHO OK"), "{}", out.describe());
}

#[test]
fn plaintext_on_the_tls_only_port_is_closed_and_nothing_hangs() {
    let Some(pki) = Pki::get() else { return };
    let srv = TlsServer::start(pki, &["--ssl-handshake-timeout", "2"]);
    // A plaintext admin command and a plaintext binary packet: closed at
    // once, with no Gearman answer.
    for request in [b"status\n".to_vec(), echo_req(b"plain")] {
        let mut s = TcpStream::connect(("127.0.0.1", srv.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&request).expect("write");
        let start = Instant::now();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(start.elapsed() < Duration::from_secs(2), "the plaintext client was not closed promptly");
        assert!(!contains(&got, b"\0RES") && !contains(&got, b"\n."), "a plaintext request was answered: {got:?}");
    }
    assert!(srv.log().contains("TLS handshake failed"), "{}", srv.log());
}

#[test]
fn a_tls_port_beside_the_plain_one_and_tls_to_the_plain_port_fails_fast() {
    let Some(pki) = Pki::get() else { return };
    let (srv, tls_port) = server_with_tls_port(pki, false);
    // Plaintext on the Gearman port, as before.
    assert!(srv.admin("version").starts_with("OK 1.1.20+sprocket"));
    // TLS on the other.
    let (_, out, err) = s_client(tls_port, &pki.ca(), &[], &echo_req(b"beside"), Duration::from_secs(2));
    assert!(contains(&out, &echo_res(b"beside")), "no ECHO_RES on --ssl-port: {out:?} {err}");
    // A TLS client on the plain port is closed at once rather than left
    // waiting for a ServerHello.
    let start = Instant::now();
    let (ok, out, err) = s_client(srv.port, &pki.ca(), &[], &echo_req(b"x"), Duration::from_millis(200));
    assert!(!ok && out.is_empty(), "TLS on the plain port: {out:?} {err}");
    assert!(start.elapsed() < Duration::from_secs(5), "TLS on the plain port took {:?}", start.elapsed());
    // And the plain port still works.
    assert!(srv.admin("version").starts_with("OK 1.1.20+sprocket"));
}

/// Runs sprocketd with `args` and `env`, which must fail to start; returns
/// its stderr.
fn failed_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let port = free_port().to_string();
    let mut cmd = Command::new(common::sprocketd());
    cmd.args(["-q", "builtin", "-L", "127.0.0.1", "-p", &port]).args(args);
    for k in ["GEARMAND_SERVER_PEM", "GEARMAND_SERVER_KEY", "GEARMAND_CA_CERTIFICATE"] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd, b"", Duration::from_secs(20));
    assert!(!out.success(), "sprocketd started with {args:?} {env:?}: {}", out.describe());
    out.stderr_text()
}

#[test]
fn missing_or_bad_files_stop_start_up_naming_the_file() {
    let Some(pki) = Pki::get() else { return };
    let cert = pki.server_cert().display().to_string();
    let key = pki.server_key().display().to_string();
    let err = failed_start(&["--ssl", "--ssl-certificate", "/nonexistent/server.pem", "--ssl-key", &key], &[]);
    assert!(err.contains("/nonexistent/server.pem") && err.contains("--ssl-certificate"), "{err}");
    let err = failed_start(&["--ssl", "--ssl-certificate", &cert, "--ssl-key", "/nonexistent/server.key"], &[]);
    assert!(err.contains("/nonexistent/server.key") && err.contains("--ssl-key"), "{err}");
    // A certificate where the key should be: no key in it.
    let err = failed_start(&["--ssl", "--ssl-certificate", &cert, "--ssl-key", &cert], &[]);
    assert!(err.contains(&cert) && err.contains("private key"), "{err}");
    // A key that does not belong to the certificate.
    let other_key = pki.wrong_server_key().display().to_string();
    let err = failed_start(&["--ssl", "--ssl-certificate", &cert, "--ssl-key", &other_key], &[]);
    assert!(err.contains(&other_key), "{err}");
    // --ssl-port alone needs the files too; gearmand's variables name them.
    let port = free_port().to_string();
    let err = failed_start(&["--ssl-port", &port], &[("GEARMAND_SERVER_PEM", "/nonexistent/env.pem")]);
    assert!(err.contains("/nonexistent/env.pem"), "the environment's file is not named: {err}");
    let err =
        failed_start(&["--ssl"], &[("GEARMAND_SERVER_PEM", &cert), ("GEARMAND_SERVER_KEY", "/nonexistent/env.key")]);
    assert!(err.contains("/nonexistent/env.key"), "{err}");
    // Without flags or variables, gearmand's default paths are named.
    let err = failed_start(&["--ssl"], &[]);
    assert!(err.contains("/etc/ssl/certs/gearmand.pem"), "{err}");
    // Client verification needs a readable CA file.
    let err = failed_start(
        &[
            "--ssl",
            "--ssl-certificate",
            &cert,
            "--ssl-key",
            &key,
            "--ssl-verify-clients",
            "--ssl-ca-file",
            "/nonexistent/ca.pem",
        ],
        &[],
    );
    assert!(err.contains("/nonexistent/ca.pem") && err.contains("--ssl-ca-file"), "{err}");
    // And it needs TLS somewhere.
    let err = failed_start(&["--ssl-verify-clients"], &[]);
    assert!(err.contains("--ssl-verify-clients"), "{err}");
}

#[test]
fn the_environment_names_the_files_when_the_flags_do_not() {
    let Some(pki) = Pki::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let port = free_port();
    let mut cmd = Command::new(common::sprocketd());
    cmd.args(["-q", "builtin", "-L", "127.0.0.1", "-p", &port.to_string(), "--ssl", "--verbose", "INFO", "--log-file"])
        .arg(&log)
        .env("GEARMAND_SERVER_PEM", pki.server_cert())
        .env("GEARMAND_SERVER_KEY", pki.server_key());
    let mut process = Background::spawn("sprocketd --ssl (environment)", &mut cmd);
    let started = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("sprocketd listening")
    });
    assert!(started, "did not start: {}", process.output());
    let (_, out, err) = s_client(port, &pki.ca(), &[], &echo_req(b"env"), Duration::from_secs(2));
    assert!(contains(&out, &echo_res(b"env")), "{out:?} {err}");
    process.stop();
}

fn refused(addr: &str, tls: TlsConfig) -> bool {
    let options = ClientOptions {
        tls: Some(tls),
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(5),
        job_timeout: Some(Duration::from_secs(5)),
        ..ClientOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let c = Client::with_options(addr, options).expect("client");
        let result = tokio::time::timeout(Duration::from_secs(15), c.echo("refused?")).await;
        matches!(result, Ok(Err(_)))
    })
}

#[test]
fn client_certificates_are_required_and_their_name_is_the_identity() {
    let Some(pki) = Pki::get() else { return };
    let ca = pki.ca().display().to_string();
    let srv = TlsServer::start(pki, &["--ssl-verify-clients", "--ssl-ca-file", &ca]);
    // With a certificate the CA signed: served.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let with_cert = TlsConfig::builder()
            .ca_file(pki.ca())
            .client_certificate(pki.client_cert(KeyKind::EcSec1), pki.client_key(KeyKind::EcSec1))
            .build()
            .expect("client TLS config");
        let worker = upper_worker(&srv.addr(), with_cert.clone()).spawn().expect("worker starts");
        let result = client(&srv.addr(), with_cert).submit("upper", "mutual").await.expect("job with client certs");
        assert_eq!(&result[..], b"MUTUAL");
        worker.stop();
    });
    let log = srv.log();
    assert!(log.contains("TLS client connected") && log.contains("identity=test-client"), "{log}");

    // No certificate, or one from another CA: refused.
    assert!(refused(&srv.addr(), trusting(&pki.ca())), "a client without a certificate was served");
    let wrong = TlsConfig::builder()
        .ca_file(pki.ca())
        .client_certificate(pki.wrong_client_cert(), pki.wrong_client_key())
        .build()
        .expect("client TLS config");
    assert!(refused(&srv.addr(), wrong), "a client with another CA's certificate was served");
    // openssl s_client with the other CA's certificate: no answer either.
    let (_, out, _) = s_client(
        srv.port,
        &pki.ca(),
        &[
            "-cert",
            &pki.wrong_client_cert().display().to_string(),
            "-key",
            &pki.wrong_client_key().display().to_string(),
        ],
        &echo_req(b"x"),
        Duration::from_secs(1),
    );
    assert!(!contains(&out, b"\0RES"), "a wrong-CA client certificate was accepted");
    assert!(srv.log().contains("TLS handshake failed"), "{}", srv.log());

    // A certificate the right CA signed that has expired: refused, by our
    // client and by openssl s_client alike, and the log says why.
    let expired = TlsConfig::builder()
        .ca_file(pki.ca())
        .client_certificate(pki.expired_client_cert(), pki.expired_client_key())
        .build()
        .expect("client TLS config");
    assert!(refused(&srv.addr(), expired), "a client with an expired certificate was served");
    let (_, out, _) = s_client(
        srv.port,
        &pki.ca(),
        &[
            "-cert",
            &pki.expired_client_cert().display().to_string(),
            "-key",
            &pki.expired_client_key().display().to_string(),
        ],
        &echo_req(b"late"),
        Duration::from_secs(1),
    );
    assert!(!contains(&out, b"\0RES"), "an expired client certificate was accepted");
    let log = srv.log();
    assert!(log.to_ascii_lowercase().contains("expired"), "the log does not say the certificate expired: {log}");
}

#[test]
fn a_client_that_stops_mid_handshake_is_dropped_after_the_limit() {
    let Some(pki) = Pki::get() else { return };
    let srv = TlsServer::start(pki, &["--ssl-handshake-timeout", "1"]);
    let mut silent = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    let mut half = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    // The first bytes of a ClientHello record, then nothing.
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]).unwrap();
    let start = Instant::now();
    for s in [&mut silent, &mut half] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(700) && took < Duration::from_secs(5), "dropped after {took:?}");
    assert!(srv.log().contains("TLS handshake not finished in time"), "{}", srv.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_stalled_handshakes_do_not_delay_a_working_client() {
    let Some(pki) = Pki::get() else { return };
    let srv = TlsServer::start(pki, &["--ssl-handshake-timeout", "60"]);
    let c = client(&srv.addr(), trusting(&pki.ca()));
    c.echo("warm-up").await.expect("echo");
    let port = srv.port;
    // Half connect and send nothing, half send the start of a ClientHello.
    let stalled = tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        for i in 0..1000 {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connection {i}: {e}"));
            if i % 2 == 1 {
                let _ = s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
            }
            held.push(s);
        }
        held
    });
    let mut slowest = Duration::ZERO;
    let mut trips = 0;
    while !stalled.is_finished() || trips < 50 {
        let start = Instant::now();
        let reply = tokio::time::timeout(Duration::from_secs(10), c.echo(format!("trip {trips}")))
            .await
            .expect("echo within 10 s")
            .expect("echo");
        assert_eq!(reply, format!("trip {trips}").as_bytes());
        slowest = slowest.max(start.elapsed());
        trips += 1;
    }
    let held = stalled.await.expect("connector");
    assert_eq!(held.len(), 1000);
    // While all thousand wait in their handshakes, a new TLS client is
    // served too.
    let fresh = client(&srv.addr(), trusting(&pki.ca()));
    for i in 0..20 {
        let start = Instant::now();
        fresh.echo(format!("fresh {i}")).await.expect("echo");
        slowest = slowest.max(start.elapsed());
    }
    eprintln!("{trips} round trips while 1000 handshakes stalled; slowest {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "a round trip took {slowest:?}");
    drop(held);
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_it_when_the_new_files_are_bad() {
    let Some(pki) = Pki::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::copy(pki.server_cert(), &cert).unwrap();
    std::fs::copy(pki.server_key(), &key).unwrap();
    let srv = TlsServer::start_with_files(&cert, &key, &[]);
    let served_trusting = |ca: &Path| {
        let (_, out, _) = s_client(srv.port, ca, &[], &echo_req(b"which"), Duration::from_secs(1));
        contains(&out, &echo_res(b"which"))
    };
    assert!(served_trusting(&pki.ca()));
    assert!(!served_trusting(&pki.wrong_ca()));
    // Replace the files with a certificate from the other CA, then SIGHUP.
    std::fs::copy(pki.wrong_server_cert(), &cert).unwrap();
    std::fs::copy(pki.wrong_server_key(), &key).unwrap();
    let hup = || {
        let status = Command::new("kill").args(["-HUP", &srv.process.id().to_string()]).status().expect("kill");
        assert!(status.success());
    };
    hup();
    assert!(
        wait_until(Duration::from_secs(10), || srv.log().contains("TLS certificate and key reloaded")),
        "{}",
        srv.log()
    );
    assert!(served_trusting(&pki.wrong_ca()), "new connections do not see the new certificate");
    assert!(!served_trusting(&pki.ca()));
    // A broken key: the reload is refused and logged, the files in use stay.
    std::fs::write(&key, "not a key\n").unwrap();
    hup();
    assert!(wait_until(Duration::from_secs(10), || srv.log().contains("TLS files not reloaded")), "{}", srv.log());
    assert!(srv.log().contains(&key.display().to_string()), "the bad file is not named: {}", srv.log());
    assert!(served_trusting(&pki.wrong_ca()), "the server stopped serving TLS after a bad reload");
}

/// stunnel in client mode: plaintext on a local port, TLS to `tls_port`,
/// verifying the server against the test CA and presenting `client_cert`.
fn stunnel_client(
    pki: &Pki,
    tls_port: u16,
    client_cert: Option<(PathBuf, PathBuf)>,
) -> (u16, Background, tempfile::NamedTempFile) {
    for _ in 0..5 {
        let port = free_port();
        let mut conf = format!(
            "foreground = yes\npid =\n\n[gearman]\nclient = yes\naccept = 127.0.0.1:{port}\n\
             connect = 127.0.0.1:{tls_port}\nCAfile = {}\nverifyChain = yes\ncheckHost = localhost\n",
            pki.ca().display()
        );
        if let Some((cert, key)) = &client_cert {
            conf.push_str(&format!("cert = {}\nkey = {}\n", cert.display(), key.display()));
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), conf).unwrap();
        let mut process = Background::spawn("stunnel (client)", Command::new("stunnel").arg(file.path()));
        let start = Instant::now();
        while process.running() && start.elapsed() < Duration::from_secs(15) {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (port, process, file);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        process.stop();
    }
    panic!("stunnel would not start");
}

/// sprocketd with a plain Gearman port (the tests' admin look-ups use it)
/// and a TLS port beside it, maybe requiring client certificates.
fn server_with_tls_port(pki: &Pki, verify_clients: bool) -> (ServerProcess, u16) {
    let tls_port = free_port();
    let port = tls_port.to_string();
    let cert = pki.server_cert().display().to_string();
    let key = pki.server_key().display().to_string();
    let ca = pki.ca().display().to_string();
    let mut args = vec!["--ssl-port", &port, "--ssl-certificate", &cert, "--ssl-key", &key];
    if verify_clients {
        args.extend(["--ssl-verify-clients", "--ssl-ca-file", &ca]);
    }
    (ServerProcess::sprocketd(common::sprocketd(), &args), tls_port)
}

#[test]
fn debian_gearman_cli_php_and_perl_through_stunnel_with_and_without_client_certificates() {
    let Some(pki) = Pki::get() else { return };
    if !tls_support::have_stunnel() || !require_tool("gearman") || !require_tool("php") {
        return;
    }
    if !sprocket_testkit::require_perl_gearman() {
        return;
    }
    for verify_clients in [false, true] {
        let (srv, tls_port) = server_with_tls_port(pki, verify_clients);
        let cert = (pki.client_cert(KeyKind::RsaPkcs8), pki.client_key(KeyKind::RsaPkcs8));
        let (tunnel, _stunnel, _conf) = stunnel_client(pki, tls_port, Some(cert));
        let through = tunnel.to_string();
        let label = if verify_clients { "with --ssl-verify-clients" } else { "without client verification" };

        // gearman -w and gearman -f through the tunnel.
        let _cli_worker = Background::spawn(
            "gearman -w",
            Command::new("gearman").args([
                "-h",
                "127.0.0.1",
                "-p",
                &through,
                "-w",
                "-f",
                "tls_tr",
                "--",
                "tr",
                "a-z",
                "A-Z",
            ]),
        );
        wait_for_workers(srv.port, "tls_tr", 1);
        let out = run(
            Command::new("gearman").args(["-h", "127.0.0.1", "-p", &through, "-f", "tls_tr"]),
            b"through stunnel",
            Duration::from_secs(30),
        );
        assert_eq!(out.stdout_text(), "THROUGH STUNNEL", "gearman CLI {label}: {}", out.describe());

        // php-gearman's worker, called by the gearman CLI through the tunnel.
        let mut php = Command::new("php");
        php.arg(interop_dir().join("php/worker.php")).args(["127.0.0.1", &through, "tlsphp", "1"]);
        let _php_worker = Background::spawn("php worker.php", &mut php);
        wait_for_workers(srv.port, "tlsphp_reverse", 1);
        let out = run(
            Command::new("gearman").args(["-h", "127.0.0.1", "-p", &through, "-f", "tlsphp_reverse", "Rasmus"]),
            b"",
            Duration::from_secs(30),
        );
        assert!(out.stdout_text().contains("sumsaR"), "php worker {label}: {}", out.describe());

        // Perl Gearman::Client and Gearman::Worker through the tunnel.
        let mut perl = Command::new("perl");
        perl.arg(interop_dir().join("perl/worker.pl")).args([&format!("127.0.0.1:{through}"), "tlsperl"]);
        let perl_worker = Background::spawn("perl worker.pl", &mut perl);
        wait_for_workers(srv.port, "tlsperl_rev", 1);
        let out = run(
            Command::new("perl").arg(interop_dir().join("perl/client.pl")).args([
                &format!("127.0.0.1:{through}"),
                "tlsperl",
                "do_task",
            ]),
            b"",
            Duration::from_secs(60),
        );
        assert!(
            out.success() && out.stdout_text().contains("PASS"),
            "perl client {label}: {}\n{}",
            out.describe(),
            perl_worker.output()
        );

        if verify_clients {
            // The same tunnel without a client certificate: refused.
            let (bare, _stunnel, _conf) = stunnel_client(pki, tls_port, None);
            let out = run(
                Command::new("gearman").args(["-h", "127.0.0.1", "-p", &bare.to_string(), "-f", "tls_tr"]),
                b"no certificate",
                Duration::from_secs(30),
            );
            assert!(
                !out.stdout_text().contains("NO CERTIFICATE"),
                "a client without a certificate was served: {}",
                out.describe()
            );
        }
    }
}

#[test]
fn a_slow_tls_reader_gets_every_reply_in_order() {
    let Some(pki) = Pki::get() else { return };
    if !require_tool("python3") {
        return;
    }
    let srv = TlsServer::start(pki, &[]);
    // 200 echoes of 64 KiB each (12.8 MB of replies) sent before reading
    // any, then read slowly: the replies queue behind the socket and the
    // TLS records rustls holds, and must arrive whole and in order.
    let script = r#"
import socket, ssl, struct, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        for i in range(200):
            data = (b"%05d" % i) * (65536 // 5)
            s.sendall(b"\0REQ" + struct.pack(">II", 16, len(data)) + data)
        time.sleep(1)
        buf = b""
        for i in range(200):
            want = (b"%05d" % i) * (65536 // 5)
            while len(buf) < 12 + len(want):
                chunk = s.recv(16384)
                if not chunk:
                    sys.exit("closed after %d replies" % i)
                buf += chunk
                time.sleep(0.0005)
            magic, kind, size = struct.unpack(">4sII", buf[:12])
            assert (magic, kind, buf[12:12 + size]) == (b"\0RES", 17, want), i
            buf = buf[12 + size:]
        print("ALL IN ORDER")
"#;
    let out = run(
        Command::new("python3").args(["-c", script, &srv.port.to_string()]).arg(pki.ca()),
        b"",
        Duration::from_secs(120),
    );
    assert!(out.success() && out.stdout_text().contains("ALL IN ORDER"), "{}", out.describe());
}

/// `curl ARGS… URL` (a third-party HTTPS client): (exit status, body).
fn curl(args: &[&str], url: &str) -> (bool, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10"]).args(args).arg(url);
    let out = run(&mut cmd, b"", Duration::from_secs(20));
    (out.success(), format!("{}{}", out.stdout_text(), out.stderr_text()))
}

#[test]
fn the_web_port_speaks_https_with_the_servers_certificate_and_asks_for_but_does_not_require_a_client_one() {
    let Some(pki) = Pki::get() else { return };
    if !require_tool("curl") {
        return;
    }
    let web_port = free_port();
    let listen = format!("127.0.0.1:{web_port}");
    let ca = pki.ca().display().to_string();
    let srv =
        TlsServer::start(pki, &["--web-tls", "--web-listen", &listen, "--ssl-verify-clients", "--ssl-ca-file", &ca]);
    assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", web_port)).is_ok()), "web port");
    let url = format!("https://127.0.0.1:{web_port}/api/v1/server");
    let (ok, body) = curl(&["--cacert", &ca], &url);
    assert!(ok, "curl over HTTPS without a client certificate: {body}\n{}", srv.log());
    let info: serde_json::Value = serde_json::from_str(&body).expect("server info as JSON");
    assert!(info["version"].as_str().is_some_and(|v| v.contains("sprocket")), "{info}");
    // With a client certificate signed by the CA.
    let (cert, key) =
        (pki.client_cert(KeyKind::EcSec1).display().to_string(), pki.client_key(KeyKind::EcSec1).display().to_string());
    let (ok, body) = curl(&["--cacert", &ca, "--cert", &cert, "--key", &key], &url);
    assert!(ok, "curl with a client certificate: {body}");
    // A certificate from another CA is refused in the handshake.
    let (wrong_cert, wrong_key) =
        (pki.wrong_client_cert().display().to_string(), pki.wrong_client_key().display().to_string());
    let (ok, body) = curl(&["--cacert", &ca, "--cert", &wrong_cert, "--key", &wrong_key], &url);
    assert!(!ok, "a client certificate of another CA was accepted: {body}");
    // Plain HTTP to the TLS port gets no HTTP answer, and curl must verify the server.
    let (ok, _) = curl(&[], &format!("http://127.0.0.1:{web_port}/api/v1/server"));
    assert!(!ok, "plain HTTP answered on the --web-tls port");
    let (ok, body) = curl(&[], &url);
    assert!(!ok, "curl trusted the test CA without --cacert: {body}");
}

#[test]
fn web_tls_without_a_web_port_is_refused_at_start_up() {
    let Some(pki) = Pki::get() else { return };
    let mut cmd = Command::new(common::sprocketd());
    cmd.args(["-q", "builtin", "-p", &free_port().to_string(), "--web-tls", "--web-listen", "none"])
        .arg("--ssl-certificate")
        .arg(pki.server_cert())
        .arg("--ssl-key")
        .arg(pki.server_key());
    let out = run(&mut cmd, b"", Duration::from_secs(20));
    assert!(!out.success());
    assert!(out.stderr_text().contains("--web-tls needs a web port"), "{}", out.describe());
}
