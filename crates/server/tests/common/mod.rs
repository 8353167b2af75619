//! A blocking Gearman connection for the server's own tests, built on
//! sprocket-proto's encoder and decoder.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sprocket_proto::{Decoder, Frame, Priority, Request, Response, SubmitMode};

pub fn sprocketd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sprocketd"))
}

/// Waits until something listens on loopback `port` (a web or HTTP port
/// a server opens after its Gearman port), for up to 10 s.
pub fn wait_for_port(port: u16) {
    let start = std::time::Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "port {port} never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The certificate and key a test server presents, and the CA its clients'
/// certificates must come from.
pub struct TlsFiles<'a> {
    pub certificate: &'a Path,
    pub key: &'a Path,
    pub ca: &'a Path,
}

/// Arguments for a sprocketd with a TLS port (`tls_port`) beside its plain
/// one, the ACL file `acl` (written into `dir` as `acl.ini`) and an INFO
/// log in `dir/sprocketd.log` (read back with [`server_log`]).
pub fn acl_server_args(tls: &TlsFiles, dir: &Path, acl: &str, tls_port: u16) -> Vec<String> {
    let file = dir.join("acl.ini");
    std::fs::write(&file, acl).expect("write the ACL");
    let path = |p: &Path| p.display().to_string();
    vec![
        "--ssl-port".into(),
        tls_port.to_string(),
        "--ssl-certificate".into(),
        path(tls.certificate),
        "--ssl-key".into(),
        path(tls.key),
        "--ssl-ca-file".into(),
        path(tls.ca),
        "--acl-file".into(),
        path(&file),
        "--verbose".into(),
        "INFO".into(),
        "--log-file".into(),
        path(&dir.join("sprocketd.log")),
    ]
}

/// The log of a server started with [`acl_server_args`] in `dir`.
pub fn server_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("sprocketd.log")).unwrap_or_default()
}

/// A sprocketd with a web port on a free loopback port, plus `extra`;
/// returns the server and the web port, once it answers.
pub fn server_with_web(extra: &[&str]) -> (sprocket_testkit::ServerProcess, u16) {
    let web = sprocket_testkit::free_port();
    let listen = format!("--web-listen=127.0.0.1:{web}");
    let mut args = vec![listen.as_str()];
    args.extend_from_slice(extra);
    let server = sprocket_testkit::ServerProcess::sprocketd(sprocketd(), &args);
    wait_for_port(web);
    (server, web)
}

/// Resident memory of a process, in KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub struct Gear {
    pub stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl Gear {
    pub fn connect(port: u16) -> std::io::Result<Gear> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(Gear { stream, buf: BytesMut::new(), decoder: Decoder::default() })
    }

    /// Wraps a connection made elsewhere (with options `connect` does not set).
    pub fn from_stream(stream: TcpStream) -> Gear {
        Gear { stream, buf: BytesMut::new(), decoder: Decoder::default() }
    }

    pub fn send(&mut self, req: &Request) -> std::io::Result<()> {
        self.stream.write_all(&req.to_bytes())
    }

    pub fn recv(&mut self) -> std::io::Result<Response> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Frame::Packet { kind, body, .. })) => {
                    return Response::parse(kind, body).map_err(|e| std::io::Error::other(e.to_string()))
                }
                Ok(Some(Frame::Text(t))) => {
                    return Err(std::io::Error::other(format!("unexpected text {t:?}")));
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
            let mut chunk = [0u8; 65536];
            // A signal to the test process (a child database stopped or
            // ended by another test) interrupts a blocking read; it is not
            // an answer from the server.
            let n = match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn call(&mut self, req: &Request) -> std::io::Result<Response> {
        self.send(req)?;
        self.recv()
    }

    pub fn submit_bg(&mut self, f: &str, unique: &str, data: &str) -> std::io::Result<Response> {
        self.call(&Request::SubmitJob {
            mode: SubmitMode { priority: Priority::Normal, background: true },
            function: b(f),
            unique: b(unique),
            data: b(data),
        })
    }

    /// Grabs one job with GRAB_JOB_UNIQ: (handle, unique, data).
    pub fn grab(&mut self) -> std::io::Result<Option<(Bytes, Bytes, Bytes)>> {
        match self.call(&Request::GrabJobUniq)? {
            Response::JobAssignUniq { handle, unique, data, .. } => Ok(Some((handle, unique, data))),
            Response::NoJob => Ok(None),
            other => Err(std::io::Error::other(format!("unexpected {other:?}"))),
        }
    }
}

/// A data directory of one test's own (`sprocket-<name>-<pid>` in the
/// temporary directory), removed afterwards.
pub struct DataDir(pub std::path::PathBuf);

impl DataDir {
    pub fn new(name: &str) -> DataDir {
        let dir = std::env::temp_dir().join(format!("sprocket-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the data directory");
        DataDir(dir)
    }

    /// A file in it.
    pub fn file(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// sprocketd on `port` with its default durable store (SQLite) in `data`,
/// no web port, plus `extra` flags.
pub fn durable_server(port: u16, data: &Path, extra: &[&str]) -> sprocket_testkit::ServerProcess {
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--listen",
        "127.0.0.1",
        "--web-listen=none",
        "--data-dir",
        &data.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    sprocket_testkit::ServerProcess::start("sprocketd", sprocketd(), &args, port)
}
