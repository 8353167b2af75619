//! The command-line tools over TLS: `sprocket submit/work/admin/record/
//! records/wait` with the --ssl-* flags, and the `gearman -S` /
//! `gearadmin -S` drop-ins with
//! libgearman's variables, against stunnel (a third-party TLS server) in
//! front of a real `sprocketd`, with certificates made by `openssl`.
//! Failures must be clear and give a non-zero exit status.

mod common;
#[path = "../../client/tests/tls_support/mod.rs"]
mod tls_support;

use std::path::Path;
use std::process::Command;

use common::{sprocket, wait_workers, Tool, LIMIT};
use sprocket_testkit::process::{run, Background, RunOutput};
use sprocket_testkit::ServerProcess;
use tls_support::{prerequisites, KeyKind, Pki, Stunnel, StunnelSetup};

/// libgearman's variables, cleared in every run unless a test sets them.
const TLS_VARIABLES: [&str; 3] = ["GEARMAND_CA_CERTIFICATE", "GEARMAN_CLIENT_PEM", "GEARMAN_CLIENT_KEY"];

fn plain_tunnel(pki: &Pki, backend: u16) -> Stunnel {
    Stunnel::start(
        &StunnelSetup { cert: &pki.server_cert(), key: &pki.server_key(), require_client_cert_from: None },
        backend,
    )
}

/// A command with the server variables and libgearman's TLS variables
/// removed, then `env` set.
fn command(program: &Path, args: &[&str], env: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).env_remove("GEARMAN_SERVER").env_remove("GEARMAN_SERVERS");
    for v in TLS_VARIABLES {
        cmd.env_remove(v);
    }
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd
}

fn sp(args: &[&str], env: &[(&str, &Path)]) -> RunOutput {
    run(&mut command(&sprocket(), args, env), b"", LIMIT)
}

/// `gearman` or `gearadmin`: the sprocket binary under that name.
fn dropin(name: &str, args: &[&str], env: &[(&str, &Path)]) -> RunOutput {
    run(&mut command(&Tool::Ours.path(name), args, env), b"", LIMIT)
}

fn code(out: &RunOutput) -> Option<i32> {
    out.status.and_then(|s| s.code())
}

/// A `sprocket work` worker answering `upper` with `tr a-z A-Z`.
fn upper_worker(srv: &ServerProcess, tunnel: &Stunnel, tls_args: &[&str]) -> Background {
    let addr = tunnel.addr();
    let mut args = vec!["work", "-s", &addr, "-f", "upper"];
    args.extend_from_slice(tls_args);
    args.extend_from_slice(&["--", "tr", "a-z", "A-Z"]);
    let worker = Background::spawn("sprocket work over TLS", &mut command(&sprocket(), &args, &[]));
    wait_workers(srv, "upper", 1);
    worker
}

#[test]
fn sprocket_submit_work_and_admin_over_tls() {
    let Some((pki, srv)) = prerequisites() else { return };
    let tunnel = plain_tunnel(pki, srv.port);
    let addr = tunnel.addr();
    let ca = pki.ca();
    let ca_arg = ca.to_str().expect("utf-8 temp path");
    let _worker = upper_worker(&srv, &tunnel, &["--ssl-ca", ca_arg]);

    let out = sp(&["submit", "-s", &addr, "--ssl-ca", ca_arg, "upper", "over tls"], &[]);
    assert_eq!(code(&out), Some(0), "{}\nstunnel:\n{}", out.describe(), tunnel.log());
    assert_eq!(out.stdout_text().trim_end(), "OVER TLS", "{}", out.describe());

    // --ssl with the CA from libgearman's variable.
    let out = sp(&["submit", "-s", &addr, "--ssl", "upper", "from env"], &[("GEARMAND_CA_CERTIFICATE", &ca)]);
    assert_eq!(out.stdout_text().trim_end(), "FROM ENV", "{}", out.describe());

    let out = sp(&["admin", "-s", &addr, "--ssl-ca", ca_arg, "status"], &[]);
    assert_eq!(code(&out), Some(0), "{}", out.describe());
    assert!(out.stdout_text().contains("upper"), "{}", out.describe());
    let out = sp(&["admin", "-s", &addr, "--ssl-ca", ca_arg, "--json", "workers"], &[]);
    assert!(out.stdout_text().contains("\"upper\""), "{}", out.describe());

    // The variables only name files: without a flag the connection is
    // plain TCP, which the TLS port refuses.
    let out = sp(&["admin", "-s", &addr, "version"], &[("GEARMAND_CA_CERTIFICATE", &ca)]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
}

#[test]
fn sprocket_record_records_and_wait_over_tls() {
    let Some((pki, srv)) = prerequisites() else { return };
    let tunnel = plain_tunnel(pki, srv.port);
    let addr = tunnel.addr();
    let ca = pki.ca();
    let ca_arg = ca.to_str().expect("utf-8 temp path");
    let _worker = upper_worker(&srv, &tunnel, &["--ssl-ca", ca_arg]);

    let out = sp(&["submit", "-s", &addr, "--ssl-ca", ca_arg, "-b", "upper", "kept"], &[]);
    assert_eq!(code(&out), Some(0), "{}", out.describe());
    let handle = out.stdout_text().trim().to_owned();
    let out = sp(&["wait", "-s", &addr, "--ssl-ca", ca_arg, "--timeout", "20s", &handle], &[]);
    assert_eq!(code(&out), Some(0), "{}\nstunnel:\n{}", out.describe(), tunnel.log());
    assert_eq!(out.stdout_text(), "KEPT", "{}", out.describe());
    let out = sp(&["record", "-s", &addr, "--ssl-ca", ca_arg, &handle], &[]);
    assert_eq!(code(&out), Some(0), "{}", out.describe());
    assert!(out.stdout_text().contains("result      \"KEPT\"\n"), "{}", out.describe());
    // The listing may lag a moment behind with a durable store.
    let start = std::time::Instant::now();
    loop {
        let out = sp(&["records", "-s", &addr, "--ssl-ca", ca_arg, "--json"], &[]);
        assert_eq!(code(&out), Some(0), "{}", out.describe());
        if out.stdout_text().contains(&handle) {
            break;
        }
        assert!(start.elapsed() < LIMIT, "{handle} never listed: {}", out.describe());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // A CA that did not sign the server's certificate: refused, and for
    // `wait` that is "no answer" (4), not an outcome of the job.
    let other = pki.wrong_ca();
    let other_arg = other.to_str().expect("utf-8 temp path");
    let out = sp(&["wait", "-s", &addr, "--ssl-ca", other_arg, &handle], &[]);
    assert_eq!(code(&out), Some(4), "{}", out.describe());
    assert!(out.stderr_text().contains("TLS with"), "{}", out.describe());
    let out = sp(&["record", "-s", &addr, "--ssl-ca", other_arg, &handle], &[]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains("TLS with"), "{}", out.describe());
}

#[test]
fn gearman_and_gearadmin_dash_s_use_libgearman_variables() {
    let Some((pki, srv)) = prerequisites() else { return };
    let tunnel = plain_tunnel(pki, srv.port);
    let port = tunnel.port.to_string();
    let ca = pki.ca();
    let env: &[(&str, &Path)] = &[("GEARMAND_CA_CERTIFICATE", &ca)];
    let mut worker_cmd = command(
        &Tool::Ours.path("gearman"),
        &["-S", "-w", "-h", "127.0.0.1", "-p", &port, "-f", "upper", "--", "tr", "a-z", "A-Z"],
        env,
    );
    let _worker = Background::spawn("gearman -S -w", &mut worker_cmd);
    wait_workers(&srv, "upper", 1);

    // By name (localhost, the gearman default host) and by address.
    for host in ["localhost", "127.0.0.1"] {
        let out = dropin("gearman", &["-S", "-h", host, "-p", &port, "-f", "upper", "hello"], env);
        assert_eq!(code(&out), Some(0), "{host}: {}\nstunnel:\n{}", out.describe(), tunnel.log());
        assert_eq!(out.stdout_text(), "HELLO", "{host}: {}", out.describe());
    }
    for flag in ["-S", "--ssl"] {
        let out = dropin("gearadmin", &[flag, "-h", "127.0.0.1", "-p", &port, "--status"], env);
        assert_eq!(code(&out), Some(0), "{flag}: {}", out.describe());
        assert!(out.stdout_text().contains("upper\t"), "{flag}: {}", out.describe());
        assert!(out.stderr_text().is_empty(), "no warning any more: {}", out.describe());
    }
    // Without -S the drop-ins talk plain TCP, which the TLS port refuses.
    let out = dropin("gearman", &["-h", "127.0.0.1", "-p", &port, "-t", "3000", "-f", "upper", "x"], env);
    assert_ne!(code(&out), Some(0), "{}", out.describe());
}

#[test]
fn a_required_client_certificate_from_flags_or_variables() {
    let Some((pki, srv)) = prerequisites() else { return };
    let ca = pki.ca();
    let tunnel = Stunnel::start(
        &StunnelSetup { cert: &pki.server_cert(), key: &pki.server_key(), require_client_cert_from: Some(&ca) },
        srv.port,
    );
    let addr = tunnel.addr();
    let port = tunnel.port.to_string();
    let (cert, key) = (pki.client_cert(KeyKind::RsaPkcs8), pki.client_key(KeyKind::RsaPkcs8));
    let (ca_arg, cert_arg, key_arg) = (ca.to_str().unwrap(), cert.to_str().unwrap(), key.to_str().unwrap());
    let with_cert = ["--ssl-ca", ca_arg, "--ssl-cert", cert_arg, "--ssl-key", key_arg];
    let _worker = upper_worker(&srv, &tunnel, &with_cert);

    let mut args = vec!["submit", "-s", &addr];
    args.extend_from_slice(&with_cert);
    args.extend_from_slice(&["upper", "with cert"]);
    let out = sp(&args, &[]);
    assert_eq!(out.stdout_text().trim_end(), "WITH CERT", "{}\nstunnel:\n{}", out.describe(), tunnel.log());

    let env: &[(&str, &Path)] =
        &[("GEARMAND_CA_CERTIFICATE", &ca), ("GEARMAN_CLIENT_PEM", &cert), ("GEARMAN_CLIENT_KEY", &key)];
    let out = dropin("gearman", &["-S", "-h", "127.0.0.1", "-p", &port, "-f", "upper", "libgearman"], env);
    assert_eq!(out.stdout_text(), "LIBGEARMAN", "{}", out.describe());
    let out = dropin("gearadmin", &["-S", "-h", "127.0.0.1", "-p", &port, "--workers"], env);
    assert!(out.stdout_text().contains("upper"), "{}", out.describe());

    // Without a certificate: refused, clearly, with a failure status.
    let out = sp(&["submit", "-s", &addr, "--ssl-ca", ca_arg, "upper", "x"], &[]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains("refused the TLS session"), "{}", out.describe());
    let out = dropin("gearman", &["-S", "-h", "127.0.0.1", "-p", &port, "-f", "upper", "x"], &env[..1]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains("refused the TLS session"), "{}", out.describe());
    // A worker without one refuses to start (the check makes a round trip,
    // as TLS 1.3 refuses a missing certificate only after the handshake),
    // also before detaching with -d.
    for extra in [&[][..], &["-d"][..]] {
        let mut args = vec!["work", "-s", &addr, "--ssl-ca", ca_arg, "-f", "upper"];
        args.extend_from_slice(extra);
        let out = sp(&args, &[]);
        assert_eq!(code(&out), Some(1), "{extra:?}: {}", out.describe());
        assert!(out.stderr_text().contains("refused the TLS session"), "{extra:?}: {}", out.describe());
        let mut args = vec!["-S", "-w", "-h", "127.0.0.1", "-p", &port, "-f", "upper"];
        args.extend_from_slice(extra);
        let out = dropin("gearman", &args, &env[..1]);
        assert_eq!(code(&out), Some(1), "gearman {args:?}: {}", out.describe());
        assert!(out.stderr_text().contains("refused the TLS session"), "gearman {args:?}: {}", out.describe());
    }
    // A certificate without its key is a usage problem, found before connecting.
    let out = sp(&["submit", "-s", &addr, "--ssl-cert", cert_arg, "upper", "x"], &[]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains("needs its private key"), "{}", out.describe());
    let out = dropin("gearadmin", &["-S", "-p", &port, "--status"], &env[..2]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains("needs its private key"), "{}", out.describe());
}

#[test]
fn untrusted_expired_and_plaintext_servers_fail_clearly() {
    let Some((pki, srv)) = prerequisites() else { return };
    let tunnel = plain_tunnel(pki, srv.port);
    let expired = Stunnel::start(
        &StunnelSetup { cert: &pki.expired_cert(), key: &pki.server_key(), require_client_cert_from: None },
        srv.port,
    );
    let (addr, port) = (tunnel.addr(), tunnel.port.to_string());
    let wrong = pki.wrong_ca();
    let wrong_arg = wrong.to_str().unwrap();
    let ca = pki.ca();
    let unknown = "certificate verify failed: unknown issuer";

    let out = sp(&["submit", "-s", &addr, "--ssl-ca", wrong_arg, "upper", "x"], &[]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains(unknown), "{}", out.describe());
    assert!(out.stderr_text().contains(&addr), "names the server: {}", out.describe());
    let out = sp(&["admin", "-s", &addr, "--ssl-ca", wrong_arg, "status"], &[]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains(unknown), "{}", out.describe());
    // A worker refuses to start, also before detaching with -d.
    for extra in [&[][..], &["-d"][..]] {
        let mut args = vec!["work", "-s", &addr, "--ssl-ca", wrong_arg, "-f", "upper"];
        args.extend_from_slice(extra);
        let out = sp(&args, &[]);
        assert_eq!(code(&out), Some(1), "{extra:?}: {}", out.describe());
        assert!(out.stderr_text().contains(unknown), "{extra:?}: {}", out.describe());
    }
    let env: &[(&str, &Path)] = &[("GEARMAND_CA_CERTIFICATE", &wrong)];
    for args in [
        &["-S", "-h", "127.0.0.1", "-p", &port, "-f", "upper", "x"][..],
        &["-S", "-w", "-h", "127.0.0.1", "-p", &port, "-f", "upper"][..],
        &["-S", "-w", "-d", "-h", "127.0.0.1", "-p", &port, "-f", "upper"][..],
    ] {
        let out = dropin("gearman", args, env);
        assert_eq!(code(&out), Some(1), "gearman {args:?}: {}", out.describe());
        assert!(out.stderr_text().contains(unknown), "gearman {args:?}: {}", out.describe());
    }
    let out = dropin("gearadmin", &["-S", "-h", "127.0.0.1", "-p", &port, "--status"], env);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains(unknown), "{}", out.describe());

    let out = sp(&["submit", "-s", &expired.addr(), "--ssl-ca", ca.to_str().unwrap(), "upper", "x"], &[]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains("certificate has expired"), "{}", out.describe());

    // A plain sprocketd port: the client says it is not TLS and sends
    // nothing. (sprocketd closes a connection that opens with a TLS
    // handshake on a plain port at once, so the client sees the close;
    // another plain server may answer with bytes that are not TLS.)
    let not_tls = |out: &RunOutput| {
        let err = out.stderr_text();
        err.contains("does not speak TLS") || err.contains("is it speaking TLS on this port?")
    };
    let out = sp(&["admin", "-s", &srv.addr(), "--ssl-ca", ca.to_str().unwrap(), "status"], &[]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(not_tls(&out), "{}", out.describe());
    let out = sp(&["submit", "-s", &srv.addr(), "--ssl-ca", ca.to_str().unwrap(), "upper", "x"], &[]);
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(not_tls(&out), "{}", out.describe());
    let status = srv.admin("status");
    assert!(!status.contains("upper"), "no job reached sprocketd: {status}");
}

#[test]
fn gearman_dash_t_limits_the_handshake_too() {
    let Some(pki) = Pki::get() else { return };
    // Accepts the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let ca = pki.ca();
    let start = std::time::Instant::now();
    let out = dropin(
        "gearman",
        &["-S", "-t", "700", "-h", "127.0.0.1", "-p", &port, "-f", "f", "x"],
        &[("GEARMAND_CA_CERTIFICATE", &ca)],
    );
    let took = start.elapsed();
    assert_eq!(code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr_text().contains("handshake timed out after 700ms"), "{}", out.describe());
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    drop(held.join());
}
