//! The client and worker over TLS, against stunnel (a third-party TLS
//! server) in front of a real `sprocketd`, with certificates made by
//! `openssl` commands. Also the failures: an untrusted, expired or
//! wrong-name certificate, a server that requires a client certificate,
//! a server that does not speak TLS, and one that never answers.

mod common;
mod tls_support;

use std::net::TcpListener;

use std::time::{Duration, Instant};

use sprocket_client::{Client, Error, JobRequest, TlsConfig};
use tls_support::{
    client, prerequisites, sprocketd, trusting, upper_worker, KeyKind, Pki, Stunnel, StunnelSetup, ALL_KEY_KINDS,
};

/// The error text of a submission that must fail, with its time.
async fn failed_submission(client: &Client) -> (String, Duration) {
    let start = Instant::now();
    let result = client.submit("upper", "secret payload").await;
    let took = start.elapsed();
    match result {
        Ok(r) => panic!("the submission succeeded: {r:?}"),
        Err(e) => {
            eprintln!("expected failure after {took:?}: {e}");
            (e.to_string(), took)
        }
    }
}

#[tokio::test]
async fn client_and_worker_run_a_job_through_stunnel() {
    let Some((pki, srv)) = prerequisites() else { return };
    let tunnel = Stunnel::start(
        &StunnelSetup { cert: &pki.server_cert(), key: &pki.server_key(), require_client_cert_from: None },
        srv.port,
    );
    let worker = upper_worker(&tunnel.addr(), trusting(&pki.ca())).spawn().expect("worker starts");
    // By IP address (checked against the certificate's IP entry) and by
    // name (its DNS entry).
    for addr in [tunnel.addr(), format!("localhost:{}", tunnel.port)] {
        let c = client(&addr, trusting(&pki.ca()));
        let mut events = Vec::new();
        let result = c
            .submit_with(JobRequest::new("upper", "over tls"), |ev| events.push(ev.clone()))
            .await
            .unwrap_or_else(|e| panic!("{addr}: {e}\nstunnel:\n{}", tunnel.log()));
        assert_eq!(&result[..], b"OVER TLS", "{addr}");
        assert!(events.contains(&sprocket_client::JobEvent::Data("working".into())), "{addr}: {events:?}");
        // A background job and its status over the same connection.
        let handle = c.submit_background("nobody", "later").await.expect("background job");
        let status = c.status(&handle).await.expect("status");
        assert!(status.known && !status.running, "{addr}: {status:?}");
    }
    // The worker really is connected through the tunnel: sprocketd sees it.
    let status = srv.admin("status");
    assert!(status.lines().any(|l| l.starts_with("upper\t")), "{status}");
    worker.shutdown().await.expect("worker stops");
}

#[tokio::test]
async fn each_kind_of_client_key_is_accepted_by_a_server_that_requires_one() {
    let Some((pki, srv)) = prerequisites() else { return };
    let ca = pki.ca();
    let tunnel = Stunnel::start(
        &StunnelSetup { cert: &pki.server_cert(), key: &pki.server_key(), require_client_cert_from: Some(&ca) },
        srv.port,
    );
    for kind in ALL_KEY_KINDS {
        let key_text = std::fs::read_to_string(pki.client_key(kind)).expect("key file");
        assert!(key_text.starts_with(kind.pem_header()), "{kind:?} key is in the form tested: {key_text}");
        let tls =
            TlsConfig::builder().ca_file(&ca).client_certificate(pki.client_cert(kind), pki.client_key(kind)).build();
        let tls = tls.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let worker = upper_worker(&tunnel.addr(), tls.clone()).spawn().expect("worker starts");
        let result = client(&tunnel.addr(), tls).submit("upper", format!("{kind:?}")).await;
        let result = result.unwrap_or_else(|e| panic!("{kind:?}: {e}\nstunnel:\n{}", tunnel.log()));
        assert_eq!(result, format!("{kind:?}").to_ascii_uppercase(), "{kind:?}");
        worker.shutdown().await.expect("worker stops");
    }
}

#[tokio::test]
async fn a_server_that_requires_a_client_certificate_refuses_none_or_an_untrusted_one() {
    let Some((pki, srv)) = prerequisites() else { return };
    let ca = pki.ca();
    let tunnel = Stunnel::start(
        &StunnelSetup { cert: &pki.server_cert(), key: &pki.server_key(), require_client_cert_from: Some(&ca) },
        srv.port,
    );
    let without = trusting(&ca);
    let untrusted = TlsConfig::builder()
        .ca_file(&ca)
        .client_certificate(pki.wrong_client_cert(), pki.wrong_client_key())
        .build()
        .expect("loads");
    for (what, tls) in [("no certificate", without), ("a certificate from another CA", untrusted)] {
        let (message, took) = failed_submission(&client(&tunnel.addr(), tls)).await;
        assert!(message.contains(&tunnel.addr()), "{what}: {message}");
        assert!(message.contains("refused the TLS session"), "{what}: {message}");
        assert!(took < Duration::from_secs(15), "{what}: took {took:?}");
    }
    // The start-up checks see the refusal too, with and without a runtime;
    // with a trusted certificate they pass.
    let server = tunnel.addr().parse().unwrap();
    let limit = Duration::from_secs(5);
    let e = sprocket_client::probe(&server, Some(&trusting(&ca)), limit).await.unwrap_err();
    assert!(e.to_string().contains("refused the TLS session"), "{e}");
    let e = sprocket_client::probe_blocking(&server, Some(&trusting(&ca)), limit).unwrap_err();
    assert!(e.to_string().contains("refused the TLS session"), "{e}");
    let with_cert = TlsConfig::builder()
        .ca_file(&ca)
        .client_certificate(pki.client_cert(KeyKind::EcSec1), pki.client_key(KeyKind::EcSec1))
        .build()
        .unwrap();
    sprocket_client::probe(&server, Some(&with_cert), limit).await.expect("async check passes");
    sprocket_client::probe_blocking(&server, Some(&with_cert), limit).expect("blocking check passes");
    // Nothing reached sprocketd.
    let status = srv.admin("status");
    assert!(!status.contains("upper"), "{status}");
}

#[tokio::test]
async fn tls_1_2_with_a_required_client_certificate() {
    let Some((pki, srv)) = prerequisites() else { return };
    let ca = pki.ca();
    let setup = StunnelSetup { cert: &pki.server_cert(), key: &pki.server_key(), require_client_cert_from: Some(&ca) };
    let tunnel = Stunnel::start_with(&setup, srv.port, "sslVersionMax = TLSv1.2\n");
    let tls = TlsConfig::builder()
        .ca_file(&ca)
        .client_certificate(pki.client_cert(KeyKind::RsaPkcs1), pki.client_key(KeyKind::RsaPkcs1))
        .build()
        .unwrap();
    let worker = upper_worker(&tunnel.addr(), tls.clone()).spawn().expect("worker starts");
    let result = client(&tunnel.addr(), tls).submit("upper", "twelve").await;
    assert_eq!(result.unwrap_or_else(|e| panic!("{e}\nstunnel:\n{}", tunnel.log())), "TWELVE");
    worker.shutdown().await.expect("worker stops");
    // Under TLS 1.2 the refusal comes within the handshake itself.
    let direct =
        sprocket_client::connect(&tunnel.addr().parse().unwrap(), Some(&trusting(&ca)), Duration::from_secs(5)).await;
    match direct {
        Err(Error::Tls { message, .. }) => assert!(message.contains("refused the TLS session"), "{message}"),
        other => panic!("expected a refused handshake: {other:?}"),
    }
}

#[tokio::test]
async fn an_untrusted_expired_or_misnamed_server_certificate_is_refused_clearly() {
    let Some((pki, srv)) = prerequisites() else { return };
    let untrusted = Stunnel::start(
        &StunnelSetup { cert: &pki.wrong_server_cert(), key: &pki.wrong_server_key(), require_client_cert_from: None },
        srv.port,
    );
    let expired = Stunnel::start(
        &StunnelSetup { cert: &pki.expired_cert(), key: &pki.server_key(), require_client_cert_from: None },
        srv.port,
    );
    let ip_only = Stunnel::start(
        &StunnelSetup { cert: &pki.ip_only_cert(), key: &pki.ip_only_key(), require_client_cert_from: None },
        srv.port,
    );
    let good = Stunnel::start(
        &StunnelSetup { cert: &pki.server_cert(), key: &pki.server_key(), require_client_cert_from: None },
        srv.port,
    );
    let cases = [
        (untrusted.addr(), pki.ca(), "certificate verify failed: unknown issuer"),
        // Our server certificate, but the client trusts another CA.
        (good.addr(), pki.wrong_ca(), "certificate verify failed: unknown issuer"),
        (expired.addr(), pki.ca(), "certificate verify failed: the server's certificate has expired"),
        // That certificate names 127.0.0.1 only, not localhost.
        (format!("localhost:{}", ip_only.port), pki.ca(), "does not name this host"),
    ];
    for (addr, ca, expected) in cases {
        let c = client(&addr, trusting(&ca));
        let (message, _) = failed_submission(&c).await;
        assert!(message.contains(expected), "{addr}: {message}");
        assert!(message.contains(&format!("TLS with {addr} failed")), "{addr}: {message}");
        // The direct error type names TLS, for callers that match on it.
        let direct =
            sprocket_client::connect(&addr.parse().unwrap(), Some(&trusting(&ca)), Duration::from_secs(5)).await;
        assert!(matches!(direct, Err(Error::Tls { .. })), "{addr}: {direct:?}");
    }
    let status = srv.admin("status");
    assert!(!status.contains("upper"), "no job reached the server: {status}");
}

#[tokio::test]
async fn a_plaintext_server_gets_no_plaintext_request() {
    let Some(pki) = Pki::get() else { return };
    let Some(srv) = sprocketd() else { return };
    let tls = TlsConfig::builder().ca_file(pki.ca()).handshake_timeout(Duration::from_secs(3)).build().unwrap();
    let (message, took) = failed_submission(&client(&srv.addr(), tls)).await;
    assert!(message.contains(&format!("TLS with {} failed", srv.addr())), "{message}");
    assert!(message.contains("TLS"), "{message}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // sprocketd never saw a submission: no fallback to plain TCP.
    let status = srv.admin("status");
    assert!(!status.contains("upper"), "{status}");
}

#[tokio::test]
async fn a_handshake_that_never_completes_times_out() {
    let Some(pki) = Pki::get() else { return };
    // Accepts connections and never says anything.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let tls = TlsConfig::builder().ca_file(pki.ca()).handshake_timeout(Duration::from_millis(700)).build().unwrap();
    let start = Instant::now();
    let result = sprocket_client::connect(&addr.parse().unwrap(), Some(&tls), Duration::from_secs(5)).await;
    let took = start.elapsed();
    let message = result.expect_err("no handshake").to_string();
    assert!(message.contains("handshake timed out after 700ms"), "{message}");
    assert!(took >= Duration::from_millis(600) && took < Duration::from_secs(5), "took {took:?}");
    drop(held.join());
}

#[test]
fn unusable_files_are_named_in_the_error() {
    let Some(pki) = Pki::get() else { return };
    let e = TlsConfig::builder().ca_file("/nonexistent/ca.pem").build().unwrap_err();
    assert!(matches!(&e, Error::TlsSetup(m) if m.contains("/nonexistent/ca.pem")), "{e}");
    // A key file given as the CA file: no certificate in it.
    let e = TlsConfig::builder().ca_file(pki.server_key()).build().unwrap_err();
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    // A certificate given as the key.
    let e = TlsConfig::builder()
        .ca_file(pki.ca())
        .client_certificate(pki.client_cert(KeyKind::EcSec1), pki.client_cert(KeyKind::EcSec1))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("private key"), "{e}");
    // A key that does not belong to the certificate.
    let e = TlsConfig::builder()
        .ca_file(pki.ca())
        .client_certificate(pki.client_cert(KeyKind::EcSec1), pki.client_key(KeyKind::Ed25519))
        .build()
        .unwrap_err();
    assert!(matches!(&e, Error::TlsSetup(_)), "{e}");
    // `openssl x509 -req` without any extension: refused, saying why.
    let e = TlsConfig::builder()
        .ca_file(pki.ca())
        .client_certificate(pki.v1_client_cert(), pki.client_key(KeyKind::EcSec1))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("X.509 version 1"), "{e}");
}

#[test]
fn without_a_ca_file_the_system_trust_store_is_used() {
    // Debian's ca-certificates fills it; our test CA is not in it, which
    // the handshake tests above rely on.
    let tls = TlsConfig::builder().build();
    match tls {
        Ok(t) => assert!(format!("{t:?}").contains("system's trust store"), "{t:?}"),
        Err(e) => assert!(e.to_string().contains("system's trust store"), "{e}"),
    }
}
