//! Access control (`--acl-file`) with a real sprocketd: identities from
//! client certificates (made by the test CA's openssl commands) on a TLS
//! port and from the source network on the plain port; register and
//! invoke rights, admin read and write, `acl` commands changing live
//! connections' rights, SIGHUP reloads (a broken file keeps the rules in
//! force), and Debian's gearman CLI through stunnel refused with an ERROR.

mod common;

use common::server_log as log;
#[path = "../../client/tests/tls_support/mod.rs"]
mod tls_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use common::b;
use sprocket_proto::{Decoder, Frame, Priority, Request, Response, SubmitMode};
use sprocket_testkit::databases::wait_until;
use sprocket_testkit::process::run;
use sprocket_testkit::{free_port, require_tool, ServerProcess};
use tls_support::Pki;

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// A blocking Gearman connection, plain or TLS, speaking binary packets
/// and admin lines.
struct Peer {
    stream: Box<dyn Stream>,
    buf: BytesMut,
    decoder: Decoder,
}

impl Peer {
    fn plain(port: u16) -> Peer {
        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Peer { stream: Box::new(tcp), buf: BytesMut::new(), decoder: Decoder::default() }
    }

    /// A TLS connection presenting the test CA's certificate for `cn`.
    fn tls(pki: &Pki, port: u16, cn: &str) -> Peer {
        Peer::tls_as(pki, port, Some(cn))
    }

    /// A TLS connection with the test CA's certificate for `cn`, or
    /// without a client certificate.
    fn tls_as(pki: &Pki, port: u16, cn: Option<&str>) -> Peer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(pki.ca()).expect("CA")).expect("CA is a trust anchor");
        let builder =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_root_certificates(roots);
        let config = match cn {
            Some(cn) => {
                let (cert, key) = pki.named_client(cn);
                let chain = vec![CertificateDer::from_pem_file(&cert).expect("client certificate")];
                let key = PrivateKeyDer::from_pem_file(&key).expect("client key");
                builder.with_client_auth_cert(chain, key).expect("client certificate and key")
            }
            None => builder.with_no_client_auth(),
        };
        let session = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .expect("session");
        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Peer {
            stream: Box::new(rustls::StreamOwned::new(session, tcp)),
            buf: BytesMut::new(),
            decoder: Decoder::default(),
        }
    }

    fn send(&mut self, requests: &[Request]) {
        let bytes: Vec<u8> = requests.iter().flat_map(|r| r.to_bytes().to_vec()).collect();
        self.stream.write_all(&bytes).expect("send");
        self.stream.flush().expect("flush");
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk).expect("read a reply");
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    fn recv(&mut self) -> Response {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Frame::Packet { kind, body, .. })) => return Response::parse(kind, body).expect("a response"),
                Ok(Some(Frame::Text(t))) => panic!("unexpected text {t:?}"),
                Ok(None) => self.fill(),
                Err(e) => panic!("bad reply: {e}"),
            }
        }
    }

    fn call(&mut self, request: Request) -> Response {
        self.send(&[request]);
        self.recv()
    }

    /// One admin command's reply: a line, or a listing up to `.`.
    fn admin(&mut self, command: &str) -> String {
        self.stream.write_all(format!("{command}\r\n").as_bytes()).expect("send admin");
        self.stream.flush().expect("flush");
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            let one_liner = text.starts_with("OK") || text.starts_with("ERR");
            let end = if one_liner { text.find('\n').map(|i| i + 1) } else { listing_end(&text) };
            if let Some(end) = end {
                let _ = self.buf.split_to(end);
                return text[..end].to_string();
            }
            self.fill();
        }
    }
}

fn listing_end(text: &str) -> Option<usize> {
    if text.starts_with(".\n") {
        return Some(2);
    }
    text.find("\n.\n").map(|i| i + 3)
}

fn submit(function: &str, background: bool) -> Request {
    Request::SubmitJob {
        mode: SubmitMode { priority: Priority::Normal, background },
        function: b(function),
        unique: b(""),
        data: b("payload"),
    }
}

fn can_do(function: &str) -> Request {
    Request::CanDo { function: b(function) }
}

/// The ERROR packet's code and text, or a panic naming what came instead.
fn error(response: Response) -> (String, String) {
    match response {
        Response::Error { code, text } => {
            (String::from_utf8_lossy(&code).into_owned(), String::from_utf8_lossy(&text).into_owned())
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
}

fn is_job_created(response: &Response) -> bool {
    matches!(response, Response::JobCreated { .. })
}

/// sprocketd with a plain port and a TLS port, the ACL in `acl` (written
/// to a file kept in `dir`), logging at INFO to `dir/sprocketd.log`.
/// Returns the server and its TLS port.
fn start(pki: &Pki, dir: &Path, acl: &str) -> (ServerProcess, u16) {
    let tls_port = free_port();
    let (certificate, key, ca) = (pki.server_cert(), pki.server_key(), pki.ca());
    let tls = common::TlsFiles { certificate: &certificate, key: &key, ca: &ca };
    let args = common::acl_server_args(&tls, dir, acl, tls_port);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (ServerProcess::sprocketd(common::sprocketd(), &args), tls_port)
}

/// The readiness check of the test kit uses `getpid` on the plain port,
/// so every ACL here lets loopback read.
const LOOPBACK_READS: &str = "[net:127.0.0.0/8]\nadmin = read\n";

#[test]
fn a_worker_identity_registers_but_may_not_submit_and_a_client_the_reverse() {
    let Some(pki) = Pki::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let acl = format!(
        "[worker-1]\nregister = build:.*\n\n[client-1]\ninvoke = build:.*\n\n[deployer]\ninvoke = deploy\n\n{LOOPBACK_READS}"
    );
    let (srv, tls_port) = start(pki, dir.path(), &acl);

    let mut worker = Peer::tls(pki, tls_port, "worker-1");
    // A refused CAN_DO answers ERROR and registers nothing; replies stay
    // in order with the others (the echo comes after the ERROR).
    worker.send(&[can_do("deploy"), Request::EchoReq { data: b("after") }]);
    let (code, text) = error(worker.recv());
    assert_eq!(code, "PERMISSION_DENIED");
    assert_eq!(text, r#"identity "worker-1" may not register "deploy""#);
    assert_eq!(worker.recv(), Response::EchoRes { data: b("after") });
    worker.send(&[can_do("build:linux")]);
    // Registered: the plain port's status shows one worker for build:linux only.
    assert!(
        wait_until(Duration::from_secs(5), || srv.admin("status").contains("build:linux\t0\t0\t1")),
        "{}",
        srv.admin("status")
    );
    assert!(!srv.admin("status").contains("deploy"), "a refused CAN_DO registered: {}", srv.admin("status"));
    // The worker may not submit, even to the functions it registers.
    let (code, text) = error(worker.call(submit("build:linux", true)));
    assert_eq!(code, "PERMISSION_DENIED");
    assert_eq!(text, r#"identity "worker-1" may not submit "build:linux""#);

    let mut client = Peer::tls(pki, tls_port, "client-1");
    let handle = match client.call(submit("build:linux", true)) {
        Response::JobCreated { handle } => handle,
        other => panic!("the client may submit build:*, got {other:?}"),
    };
    // Its status: to identities that may invoke the job's function only.
    assert!(matches!(
        client.call(Request::GetStatus { handle: handle.clone() }),
        Response::StatusRes { known: true, .. }
    ));
    let mut deployer = Peer::tls(pki, tls_port, "deployer");
    let (_, text) = error(deployer.call(Request::GetStatus { handle: handle.clone() }));
    assert_eq!(text, r#"identity "deployer" may not ask for the status of a "build:linux" job"#);
    let (_, text) = error(worker.call(Request::GetStatus { handle: handle.clone() }));
    assert!(text.contains("may invoke no function"), "{text}");
    // The same by unique id.
    let unique_job = Request::SubmitJob {
        mode: SubmitMode { priority: Priority::Normal, background: true },
        function: b("build:mac"),
        unique: b("acl-unique"),
        data: b("payload"),
    };
    let mac_handle = match client.call(unique_job) {
        Response::JobCreated { handle } => handle,
        other => panic!("expected JOB_CREATED, got {other:?}"),
    };
    let by_unique = || Request::GetStatusUnique { unique: b("acl-unique") };
    assert!(matches!(client.call(by_unique()), Response::StatusResUnique { known: true, .. }));
    let (_, text) = error(deployer.call(by_unique()));
    assert_eq!(text, r#"identity "deployer" may not ask for the status of a "build:mac" job"#);
    // An unknown handle is answered as usual.
    assert!(matches!(deployer.call(Request::GetStatus { handle: b("H:nowhere:1") }), Response::StatusRes { .. }));
    let (_, text) = error(client.call(submit("deploy", true)));
    assert_eq!(text, r#"identity "client-1" may not submit "deploy""#);
    let (_, text) = error(client.call(can_do("build:linux")));
    assert_eq!(text, r#"identity "client-1" may not register "build:linux""#);
    // Asked twice, answered the same from the connection's memory.
    let (_, again) = error(client.call(can_do("build:linux")));
    assert_eq!(again, text);

    // The worker gets the client's job and completes it.
    match worker.call(Request::GrabJobUniq) {
        Response::JobAssignUniq { function, data, .. } => {
            assert_eq!(&function[..], b"build:linux");
            assert_eq!(&data[..], b"payload");
        }
        other => panic!("expected the job, got {other:?}"),
    }
    worker.send(&[Request::WorkComplete { handle: handle.clone(), data: b("built") }]);

    // Reading records through the server's own functions: an identity
    // reads the jobs of the functions it may invoke, and no others.
    let read = |function: &str, data: &[u8]| Request::SubmitJob {
        mode: SubmitMode { priority: Priority::Normal, background: false },
        function: b(function),
        unique: b(""),
        data: bytes::Bytes::copy_from_slice(data),
    };
    assert!(
        wait_until(Duration::from_secs(5), || srv.admin("status").contains("build:linux\t0\t0\t1")),
        "the job ended"
    );
    assert!(is_job_created(&client.call(read("sprocket.result", &handle))));
    assert_eq!(client.recv(), Response::WorkComplete { handle: handle.clone(), data: b("built") });
    let (code, text) = error(deployer.call(read("sprocket.result", &handle)));
    assert_eq!(code, "PERMISSION_DENIED");
    assert_eq!(text, r#"this identity may not read the records of "build:linux" jobs"#);
    let (_, text) = error(deployer.call(read("sprocket.record", &handle)));
    assert_eq!(text, r#"this identity may not read the records of "build:linux" jobs"#);
    let (_, text) = error(worker.call(read("sprocket.record", &handle)));
    assert!(text.contains("may invoke no function"), "{text}");
    // A search lists only what the identity may read.
    let search = |peer: &mut Peer| -> String {
        assert!(is_job_created(&peer.call(read("sprocket.records", br#"{"function":"build:linux"}"#))));
        match peer.recv() {
            Response::WorkComplete { data, .. } => String::from_utf8_lossy(&data).into_owned(),
            other => panic!("expected the search's answer, got {other:?}"),
        }
    };
    assert!(search(&mut client).contains(&String::from_utf8_lossy(&handle).into_owned()), "client-1 reads its job");
    assert_eq!(search(&mut deployer), "[]", "deployer may not read build:linux jobs");

    // Cancelling without admin = write: an identity may cancel the jobs of
    // the functions it may invoke (geard's rule), and no others.
    let mac = String::from_utf8_lossy(&mac_handle).into_owned();
    let refused = deployer.admin(&format!("cancel job {mac}"));
    assert!(
        refused.starts_with("ERR PERMISSION_DENIED identity+\"deployer\"+may+not+cancel+a+\"build:mac\"+job"),
        "{refused}"
    );
    assert!(worker.admin(&format!("cancel job {mac}")).starts_with("ERR PERMISSION_DENIED "), "no invoke at all");
    assert!(srv.admin("status").contains("build:mac\t1\t"), "still queued: {}", srv.admin("status"));
    assert_eq!(client.admin(&format!("cancel job {mac}")), "OK\r\n");
    assert!(srv.admin("status").contains("build:mac\t0\t"), "cancelled: {}", srv.admin("status"));
    assert_eq!(client.admin("cancel job H:nowhere:1"), "ERR UNKNOWN_JOB\r\n");
    // A name neither in the ACL: nothing at all.
    let mut stranger = Peer::tls(pki, tls_port, "stranger");
    let (_, text) = error(stranger.call(submit("build:linux", true)));
    assert_eq!(text, r#"identity "stranger" may not submit "build:linux""#);
    assert!(stranger.admin("status").starts_with("ERR PERMISSION_DENIED "));
    let log = log(dir.path());
    assert!(log.contains("ACL: may not register"), "refusals are not logged: {log}");

    // The ACL file alone (no --ssl-verify-clients) makes TLS clients show
    // a certificate: without one, nothing is answered.
    let mut anonymous = Peer::tls_as(pki, tls_port, None);
    let echo = Request::EchoReq { data: b("anyone?") }.to_bytes();
    let sent = anonymous.stream.write_all(&echo).and_then(|()| anonymous.stream.flush());
    let mut reply = [0u8; 64];
    let answered = sent.is_ok() && matches!(anonymous.stream.read(&mut reply), Ok(n) if n > 0);
    assert!(!answered, "a TLS client without a certificate was served");
}

#[test]
fn admin_read_and_write_levels_and_a_plaintext_loopback_identity() {
    let Some(pki) = Pki::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let acl = "[net:127.0.0.0/8]\nadmin = read\ninvoke = local:.*\nregister = local:.*\n\n\
               [ops]\nadmin = write\n\n[net:10.0.0.0/8]\nadmin = write\n";
    let (srv, tls_port) = start(pki, dir.path(), acl);

    // Loopback plaintext: reads yes, writes no, unknown commands count as writes.
    let mut local = Peer::plain(srv.port);
    assert!(local.admin("status").ends_with(".\n"));
    assert!(local.admin("version").starts_with("OK "));
    assert!(local.admin("show jobs").ends_with(".\n"));
    for command in [
        "maxqueue local:x 5",
        "shutdown",
        "drop function local:x",
        "pause local:job",
        "purge queued local:job",
        "frobnicate",
    ] {
        let reply = local.admin(command);
        assert_eq!(
            reply, "ERR PERMISSION_DENIED identity+\"net:127.0.0.0/8\"+needs+admin+=+write+for+this+command\r\n",
            "{command}"
        );
    }
    // `cancel job` without admin = write is checked against the job's
    // function (the loopback section may invoke local:*): a job no one has
    // is answered as usual.
    assert_eq!(local.admin("cancel job H:x:1"), "ERR UNKNOWN_JOB\r\n");
    // The server is still up, and the connection still answers in order.
    assert!(local.admin("getpid").starts_with("OK "));
    // The loopback section's register and invoke rights.
    assert!(is_job_created(&local.call(submit("local:job", true))));
    let (_, text) = error(local.call(submit("remote:job", true)));
    assert_eq!(text, r#"identity "net:127.0.0.0/8" may not submit "remote:job""#);
    local.send(&[can_do("local:work"), can_do("remote:work"), Request::EchoReq { data: b("x") }]);
    let (_, text) = error(local.recv());
    assert!(text.contains("may not register \"remote:work\""), "{text}");
    assert_eq!(local.recv(), Response::EchoRes { data: b("x") });

    // A certificate with admin = write may change things.
    let mut ops = Peer::tls(pki, tls_port, "ops");
    assert_eq!(ops.admin("maxqueue local:x 5"), "OK\r\n");
    assert!(ops.admin("pause local:job").starts_with("OK"));
    assert!(ops.admin("resume local:job").starts_with("OK"));
    assert!(ops.admin("status").ends_with(".\n"));
    // It may not submit (no invoke key).
    let (code, _) = error(ops.call(submit("local:job", true)));
    assert_eq!(code, "PERMISSION_DENIED");
}

#[test]
fn grants_at_run_time_reach_live_connections_and_need_grant_rights() {
    let Some(pki) = Pki::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let acl = format!("[manager]\ngrant = true\n\n[client-1]\ninvoke = build:.*\n\n{LOOPBACK_READS}");
    let (srv, tls_port) = start(pki, dir.path(), &acl);
    let mut client = Peer::tls(pki, tls_port, "client-1");
    let mut manager = Peer::tls(pki, tls_port, "manager");
    error(client.call(submit("deploy", true)));

    // geard's word order, then ours (identity first).
    assert_eq!(manager.admin("acl grant invoke client-1 deploy|build:.*"), "OK\r\n");
    assert!(is_job_created(&client.call(submit("deploy", true))), "the grant did not reach the live connection");
    assert_eq!(manager.admin("acl grant client-1 admin read"), "OK\r\n");
    assert!(client.admin("status").ends_with(".\n"));
    assert_eq!(manager.admin("acl grant register worker-2 build:.*"), "OK\r\n");
    let list = manager.admin("acl list");
    assert!(list.contains("client-1\tregister=None\tinvoke=deploy|build:.*\tgrant=False\tadmin=read\n"), "{list}");
    assert!(list.contains("manager\tregister=None\tinvoke=None\tgrant=True\tadmin=None\n"), "{list}");
    assert!(list.contains("worker-2\tregister=build:.*\tinvoke=None\tgrant=False\tadmin=None\n"), "{list}");
    assert!(list.ends_with("\n.\n"), "{list}");

    // A plaintext network section, changed for a live connection.
    let mut plain = Peer::plain(srv.port);
    error(plain.call(submit("plain:x", true)));
    assert_eq!(manager.admin("acl grant invoke net:127.0.0.0/8 plain:.*"), "OK\r\n");
    assert!(is_job_created(&plain.call(submit("plain:x", true))));
    assert!(plain.admin("status").ends_with(".\n"), "the section's other keys were lost");
    assert!(manager.admin("acl grant invoke net:127.0.0.1/8 x").starts_with("ERR UNABLE "));

    assert_eq!(manager.admin("acl revoke invoke client-1"), "OK\r\n");
    error(client.call(submit("deploy", true)));
    error(client.call(submit("build:x", true)));
    // A bad pattern changes nothing.
    assert!(manager.admin("acl grant invoke client-1 (").starts_with("ERR UNABLE "));
    assert!(manager.admin("acl grant frob client-1 x").starts_with("ERR UNKNOWN_ACL_VERB"));

    // Without grant rights: no listing, no granting; but one may give up
    // one's own rights.
    for command in ["acl list", "acl grant invoke client-1 .*", "acl revoke grant manager"] {
        assert!(client.admin(command).starts_with("ERR PERMISSION_DENIED "), "{command}");
    }
    assert_eq!(client.admin("acl self-revoke admin"), "OK\r\n");
    assert!(client.admin("status").starts_with("ERR PERMISSION_DENIED "));
    // The plain port's loopback identity has no grant right either.
    assert!(srv.admin("acl list").starts_with("ERR PERMISSION_DENIED "));
}

#[test]
fn sighup_reloads_the_file_and_a_broken_file_keeps_the_rules_in_force() {
    let Some(pki) = Pki::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (srv, tls_port) = start(pki, dir.path(), &format!("[client-1]\ninvoke = old\n\n{LOOPBACK_READS}"));
    let mut client = Peer::tls(pki, tls_port, "client-1");
    assert!(is_job_created(&client.call(submit("old", true))));
    let hup = || {
        let status = Command::new("kill").args(["-HUP", &srv.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    };
    let file = dir.path().join("acl.ini");
    std::fs::write(&file, format!("[client-1]\ninvoke = new\n\n{LOOPBACK_READS}")).unwrap();
    hup();
    assert!(wait_until(Duration::from_secs(10), || log(dir.path()).contains("ACL reloaded")), "{}", log(dir.path()));
    // The open connection follows the new rules.
    assert!(is_job_created(&client.call(submit("new", true))));
    error(client.call(submit("old", true)));

    std::fs::write(&file, format!("[client-1]\ninvoke = everything\n{LOOPBACK_READS}\n[broken\n")).unwrap();
    hup();
    assert!(
        wait_until(Duration::from_secs(10), || log(dir.path()).contains("ACL not reloaded")),
        "{}",
        log(dir.path())
    );
    let log = log(dir.path());
    assert!(log.contains(&format!("ACL file {} line 6", file.display())), "the file and line are not named: {log}");
    assert!(is_job_created(&client.call(submit("new", true))), "a broken file changed the rules");
    error(client.call(submit("everything", true)));
}

#[test]
fn a_broken_acl_file_stops_start_up_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acl.ini");
    std::fs::write(&file, "[worker]\nregister = build:(\n").unwrap();
    let port = free_port().to_string();
    let out = run(
        Command::new(common::sprocketd())
            .args(["-q", "builtin", "-L", "127.0.0.1", "-p", &port, "--acl-file"])
            .arg(&file),
        b"",
        Duration::from_secs(20),
    );
    assert!(!out.success(), "started with a broken ACL file");
    let text = out.describe();
    assert!(text.contains(&format!("ACL file {} line 2", file.display())), "{text}");
    assert!(text.contains("invalid regular expression"), "{text}");
}

/// Debian's `gearman` CLI (libgearman) through stunnel with a client
/// certificate, submitting to a function its identity may not invoke:
/// refused with the ERROR, and the function it may invoke still works.
#[test]
fn the_gearman_cli_through_stunnel_is_refused_with_an_error() {
    let Some(pki) = Pki::get() else { return };
    if !tls_support::have_stunnel() || !require_tool("gearman") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let acl = "[cli-user]\ninvoke = allowed\n\n[net:127.0.0.0/8]\nadmin = read\nregister = allowed\n";
    let (srv, tls_port) = start(pki, dir.path(), acl);
    let (cert, key) = pki.named_client("cli-user");
    let (tunnel, _stunnel, _conf) = stunnel_client(pki, tls_port, &cert, &key);
    let through = tunnel.to_string();
    // A worker for `allowed` on the plain port (loopback may register it).
    let _worker = sprocket_testkit::process::Background::spawn(
        "gearman -w",
        Command::new("gearman").args([
            "-h",
            "127.0.0.1",
            "-p",
            &srv.port.to_string(),
            "-w",
            "-f",
            "allowed",
            "--",
            "rev",
        ]),
    );
    sprocket_testkit::status::wait_for_workers(srv.port, "allowed", 1);
    let out = run(
        Command::new("gearman").args(["-h", "127.0.0.1", "-p", &through, "-f", "allowed"]),
        b"abc",
        Duration::from_secs(30),
    );
    assert_eq!(out.stdout_text().trim(), "cba", "{}", out.describe());
    let out = run(
        Command::new("gearman").args(["-h", "127.0.0.1", "-p", &through, "-f", "forbidden"]),
        b"abc",
        Duration::from_secs(30),
    );
    // The C tool reports the ERROR on stderr (and exits 0, as it does for
    // every server error); without the ACL it would wait for a worker.
    let text = out.describe();
    assert!(!out.stdout_text().contains("cba"), "the forbidden submission ran: {text}");
    assert!(text.contains(r#"PERMISSION_DENIED:identity "cli-user" may not submit "forbidden""#), "{text}");
    assert!(log(dir.path()).contains("ACL: may not submit"), "{}", log(dir.path()));
}

/// stunnel in client mode: plaintext on a local port, TLS with the given
/// client certificate to `tls_port`.
fn stunnel_client(
    pki: &Pki,
    tls_port: u16,
    cert: &Path,
    key: &Path,
) -> (u16, sprocket_testkit::process::Background, tempfile::NamedTempFile) {
    for _ in 0..5 {
        let port = free_port();
        let conf = format!(
            "foreground = yes\npid =\n\n[gearman]\nclient = yes\naccept = 127.0.0.1:{port}\n\
             connect = 127.0.0.1:{tls_port}\nCAfile = {}\nverifyChain = yes\ncheckHost = localhost\n\
             cert = {}\nkey = {}\n",
            pki.ca().display(),
            cert.display(),
            key.display()
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), conf).unwrap();
        let mut process =
            sprocket_testkit::process::Background::spawn("stunnel (client)", Command::new("stunnel").arg(file.path()));
        if wait_until(Duration::from_secs(15), || TcpStream::connect(("127.0.0.1", port)).is_ok()) {
            return (port, process, file);
        }
        process.stop();
    }
    panic!("stunnel would not start");
}
