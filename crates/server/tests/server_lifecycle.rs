//! sprocketd as a process: flags, pid file, daemon mode, signals,
//! shutdown commands, limits.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{b, sprocketd, Gear};
use sprocket_proto::{Request, Response};
use sprocket_testkit::{free_port, ServerProcess};

fn wait_gone(path: &std::path::Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits up to `limit` for `child` to exit: its status, or None if it is
/// still running.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn unknown_flag_is_a_clear_error() {
    let out = Command::new(sprocketd()).arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--frobnicate"), "{err}");
}

#[test]
fn unknown_queue_type_and_bad_verbose_are_errors() {
    let out = Command::new(sprocketd()).args(["-q", "nosuch", "-p", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown queue type"));
    let out = Command::new(sprocketd()).args(["--verbose", "LOUD"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn check_args_accepts_a_gearmand_params_line() {
    let out = Command::new(sprocketd())
        .args([
            "--listen=127.0.0.1",
            "--queue-type",
            "Postgres",
            "--libpq-table=queue",
            "--verbose",
            "DEBUG",
            "--check-args",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn missing_database_at_start_is_a_clear_error() {
    let err = start_with_a_redis_that_is_not_there(&[]);
    assert!(err.contains("queue store"), "{err}");
}

/// Starts sprocketd (plus `extra` flags) on a Redis port nobody listens
/// on, checks it exits 1, and returns what it printed on stderr.
fn start_with_a_redis_that_is_not_there(extra: &[&str]) -> String {
    let dead = free_port();
    let out = Command::new(sprocketd())
        .args(extra)
        .args(["-p", &free_port().to_string(), "-q", "redis", "--redis-port", &dead.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn pid_file_written_and_removed_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("s.pid");
    let mut s = ServerProcess::sprocketd(sprocketd(), &["--pid-file", pid.to_str().unwrap()]);
    let text = std::fs::read_to_string(&pid).unwrap();
    assert_eq!(text.trim(), s.child.id().to_string());
    assert_eq!(s.admin("getpid"), format!("OK {}\n", s.child.id()));
    assert_eq!(s.terminate(Duration::from_secs(10)), Some(0));
    assert!(wait_gone(&pid, Duration::from_secs(2)));
}

#[test]
fn daemon_mode_detaches_and_stops_by_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("d.pid");
    let port = free_port();
    let status = Command::new(sprocketd())
        .args(["-d", "-q", "builtin", "-L", "127.0.0.1", "-p", &port.to_string(), "--pid-file", pid.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success(), "parent exits 0 once the daemon is ready");
    let daemon_pid = std::fs::read_to_string(&pid).unwrap().trim().to_string();
    assert_eq!(sprocket_testkit::admin(port, "getpid"), format!("OK {daemon_pid}\n"));
    Command::new("kill").args(["-TERM", &daemon_pid]).status().unwrap();
    assert!(wait_gone(&pid, Duration::from_secs(10)), "daemon removed its pid file on exit");
}

#[test]
fn admin_shutdown_stops_the_server() {
    let mut s = ServerProcess::sprocketd(sprocketd(), &[]);
    assert_eq!(s.admin("shutdown"), "OK\r\n");
    assert!(wait_exit(&mut s.child, Duration::from_secs(10)).is_some(), "still running");
}

#[test]
fn graceful_shutdown_waits_for_jobs_and_refuses_new_connections() {
    let mut s = ServerProcess::sprocketd(sprocketd(), &[]);
    let mut client = Gear::connect(s.port).unwrap();
    assert!(matches!(client.submit_bg("g", "u", "d").unwrap(), Response::JobCreated { .. }));
    let mut worker = Gear::connect(s.port).unwrap();
    worker.send(&Request::CanDo { function: b("g") }).unwrap();
    assert_eq!(s.admin("shutdown graceful"), "OK\r\n");
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.child.try_wait().unwrap().is_none(), "a job is still queued");
    assert!(std::net::TcpStream::connect(("127.0.0.1", s.port)).is_err(), "listener closed");
    let (handle, ..) = worker.grab().unwrap().expect("job");
    worker.send(&Request::WorkComplete { handle, data: b("") }).unwrap();
    assert!(wait_exit(&mut s.child, Duration::from_secs(10)).is_some(), "did not exit after the last job");
}

#[test]
fn connection_limit_refuses_extra_connections_and_keeps_serving() {
    let s = ServerProcess::sprocketd(sprocketd(), &["--max-connections", "2"]);
    // Let the start-up probe's connection finish releasing its slot.
    std::thread::sleep(Duration::from_millis(300));
    let mut a = Gear::connect(s.port).unwrap();
    let mut bconn = Gear::connect(s.port).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut c = Gear::connect(s.port).unwrap();
    c.stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let third = c.call(&Request::EchoReq { data: b("x") });
    let refused = third.is_err();
    assert!(refused, "third connection must be closed");
    assert_eq!(a.call(&Request::EchoReq { data: b("a") }).unwrap(), Response::EchoRes { data: b("a") });
    assert_eq!(bconn.call(&Request::EchoReq { data: b("b") }).unwrap(), Response::EchoRes { data: b("b") });
}

#[test]
fn packet_size_limit_is_enforced_with_an_error() {
    let s = ServerProcess::sprocketd(sprocketd(), &["--max-packet-size", "1024"]);
    let mut c = Gear::connect(s.port).unwrap();
    let big = "x".repeat(2000);
    match c.call(&Request::EchoReq { data: b(&big) }).unwrap() {
        Response::Error { code, .. } => assert_eq!(code, b("ARGUMENT_TOO_LARGE")),
        other => panic!("{other:?}"),
    }
    let mut d = Gear::connect(s.port).unwrap();
    assert_eq!(d.call(&Request::EchoReq { data: b("ok") }).unwrap(), Response::EchoRes { data: b("ok") });
}

#[test]
fn gearmand_port_environment_variable_is_honoured() {
    let port = free_port();
    let mut child = Command::new(sprocketd())
        .args(["-q", "builtin", "-L", "127.0.0.1"])
        .env("GEARMAND_PORT", port.to_string())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut ok = false;
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(mut g) = Gear::connect(port) {
            ok = g.call(&Request::EchoReq { data: b("p") }).is_ok();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok);
}

/// The soft and hard "Max open files" of a running process.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let mut fields = line["Max open files".len()..].split_whitespace();
    (fields.next().unwrap().to_string(), fields.next().unwrap().to_string())
}

/// Runs sprocketd through `sh -c "<limit>; exec sprocketd …"` and returns
/// its open-files limits once it answers.
fn limits_when_started_with(limit: &str, extra: &str) -> (String, String) {
    let port = free_port();
    let script = format!("{limit} && exec {} -q builtin -L 127.0.0.1 -p {port} {extra}", sprocketd().display());
    let mut child = Command::new("sh").args(["-c", &script]).stderr(std::process::Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while Gear::connect(port).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "sprocketd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let limits = open_files_limits(child.id());
    let _ = child.kill();
    let _ = child.wait();
    limits
}

#[test]
fn soft_file_descriptor_limit_is_raised_to_the_hard_limit() {
    // Started the way shells and systemd often start it: a low soft limit.
    let (soft, hard) = limits_when_started_with("ulimit -Sn 256", "");
    assert_ne!(soft, "256", "soft limit left at 256 (hard {hard})");
    assert!(hard == "unlimited" || soft == hard || soft == "1048576", "soft {soft}, hard {hard}");
    // An explicit -f is obeyed as given.
    let (soft, _) = limits_when_started_with("ulimit -Sn 256", "-f 512");
    assert_eq!(soft, "512");
}

/// `workers` as an admin client on `addr` sees it (its own line included).
fn workers_seen_from(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"workers\r\n").unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !reply.ends_with(b".\n") {
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before the end of the reply");
        reply.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(reply).unwrap()
}

#[test]
fn default_listener_shows_ipv4_clients_as_gearmand_does() {
    // No -L: one dual-stack socket, where IPv4 peers arrive IPv4-mapped.
    let port = free_port();
    let args: Vec<String> = ["-q", "builtin", "-p", &port.to_string()].iter().map(|s| s.to_string()).collect();
    let _s = ServerProcess::start("sprocketd", sprocketd(), &args, port);
    let v4 = workers_seen_from(([127, 0, 0, 1], port).into());
    assert!(v4.lines().any(|l| l.split(' ').nth(1) == Some("127.0.0.1")), "IPv4 peer shown as: {v4:?}");
    assert!(!v4.contains("::ffff:"), "IPv4-mapped address leaked: {v4:?}");
    // Where the host has IPv6 loopback, IPv6 peers keep their address.
    if std::net::TcpStream::connect(("::1", port)).is_ok() {
        let v6 = workers_seen_from((std::net::Ipv6Addr::LOCALHOST, port).into());
        assert!(v6.lines().any(|l| l.split(' ').nth(1) == Some("::1")), "IPv6 peer shown as: {v6:?}");
    }
}

#[test]
fn half_closed_peer_still_gets_its_replies() {
    use std::io::{Read, Write};
    let s = ServerProcess::sprocketd(sprocketd(), &[]);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"create function half\r\nstatus\r\n").unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "OK\r\nhalf\t0\t0\t0\n.\n");
}

#[test]
fn half_closed_submitter_gets_every_job_created_from_the_durable_queue() {
    // JOB_CREATED waits for the commit; a client that half-closes right
    // after submitting still gets them all, as from the in-memory queue.
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_string_lossy().to_string();
    let port = free_port();
    let args: Vec<String> =
        ["-L", "127.0.0.1", "-p", &port.to_string(), "--data-dir", &data_dir].iter().map(|s| s.to_string()).collect();
    let s = ServerProcess::start("sprocketd", sprocketd(), &args, port);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mode = sprocket_proto::SubmitMode { priority: sprocket_proto::Priority::Normal, background: true };
    let mut burst = Vec::new();
    for i in 0..200 {
        let req = Request::SubmitJob { mode, function: b("half"), unique: b(&format!("u{i}")), data: b("d") };
        burst.extend_from_slice(&req.to_bytes());
    }
    conn.write_all(&burst).unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut replies = Vec::new();
    conn.read_to_end(&mut replies).unwrap();
    let mut buf = bytes::BytesMut::from(&replies[..]);
    let mut decoder = sprocket_proto::Decoder::default();
    let mut created = 0;
    while let Ok(Some(sprocket_proto::Frame::Packet { kind, .. })) = decoder.decode(&mut buf) {
        assert_eq!(kind, sprocket_proto::PacketType::JobCreated);
        created += 1;
    }
    assert_eq!(created, 200);
    assert!(s.admin("status").contains("half\t200\t0\t0"), "{}", s.admin("status"));
}

#[test]
fn pid_file_must_be_a_regular_file() {
    let port = free_port();
    let out = Command::new(sprocketd())
        .args(["-q", "builtin", "-L", "127.0.0.1", "-p", &port.to_string(), "--pid-file", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
    assert!(std::fs::metadata("/dev/null").map(|m| !m.file_type().is_file()).unwrap_or(false));
}

#[test]
fn slow_reader_gets_every_reply_in_order_and_others_are_served() {
    let s = ServerProcess::sprocketd(sprocketd(), &[]);
    let port = s.port;
    let mut slow = Gear::connect(port).unwrap();
    // 24 MiB of echoes queued before reading anything: the socket fills,
    // the rest waits in the server's backlog.
    let writer = {
        let mut w = slow.stream.try_clone().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            for i in 0..48u8 {
                let payload = vec![i; 512 * 1024];
                w.write_all(&Request::EchoReq { data: payload.into() }.to_bytes()).unwrap();
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let mut other = Gear::connect(port).unwrap();
    assert_eq!(other.call(&Request::EchoReq { data: b("alive") }).unwrap(), Response::EchoRes { data: b("alive") });
    for i in 0..48u8 {
        match slow.recv().unwrap() {
            Response::EchoRes { data } => {
                assert_eq!(data.len(), 512 * 1024);
                assert!(data.iter().all(|&x| x == i), "reply {i} out of order");
            }
            other => panic!("{other:?}"),
        }
    }
    writer.join().unwrap();
}

#[test]
fn user_flag_hands_files_to_the_user_and_drops_root_groups() {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("NOTE: not root; --user cannot be exercised here");
        return;
    }
    let Some(nobody) = nix::unistd::User::from_name("nobody").ok().flatten() else {
        panic!("no user 'nobody' on this machine");
    };
    let dir = std::env::temp_dir().join(format!("sprocket-user-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["run", "log"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    // Reachable for nobody, as /run and /var/log are.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (pid_file, log_file, data) = (dir.join("run/s.pid"), dir.join("log/s.log"), dir.join("data"));
    let port = free_port();
    let args: Vec<String> = [
        "-p",
        &port.to_string(),
        "-L",
        "127.0.0.1",
        "--user",
        "nobody",
        "--verbose",
        "INFO",
        "--data-dir",
        &data.display().to_string(),
        "--pid-file",
        &pid_file.display().to_string(),
        "--log-file",
        &log_file.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let s = ServerProcess::start("sprocketd", sprocketd(), &args, port);
    let db = data.join(format!("sprocket-{port}.db"));
    for path in [&pid_file, &log_file, &data, &db] {
        let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(meta.uid(), nobody.uid.as_raw(), "{} belongs to nobody", path.display());
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid_line.split_whitespace().skip(1).all(|u| u == nobody.uid.to_string()), "{uid_line}");
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert!(!groups.split_whitespace().skip(1).any(|g| g == "0"), "root's group kept: {groups}");
    // The durable queue is writable by the user.
    let mut g = Gear::connect(port).expect("connect");
    let reply = g.call(&Request::SubmitJob {
        mode: sprocket_proto::SubmitMode { priority: sprocket_proto::Priority::Normal, background: true },
        function: b("as_nobody"),
        unique: b(""),
        data: b("x"),
    });
    assert!(matches!(reply, Ok(Response::JobCreated { .. })), "{reply:?}");
    // SIGHUP reopens the log file as the user.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.child.id() as i32), nix::sys::signal::Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(!log.contains("cannot reopen"), "{log}");
    // run/ is root's, so the user cannot remove the pid file at exit: the
    // start-up log says so, and the file is emptied instead of left
    // naming a process that is gone.
    assert!(log.contains("will be emptied, not removed, at exit"), "{log}");
    let mut s = s;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(wait_exit(&mut s.child, Duration::from_secs(10)).is_some(), "SIGTERM not acted on");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), "", "stale pid left in the pid file");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The syslog messages a server sends until it says it is listening (or
/// the socket's read timeout passes).
fn syslog_until_listening(syslogd: &std::os::unix::net::UnixDatagram) -> Vec<String> {
    let mut messages = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = syslogd.recv(&mut buf) {
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = msg.contains("listening");
        messages.push(msg);
        if done {
            break;
        }
    }
    messages
}

#[test]
fn syslog_flag_sends_log_lines_to_the_syslog_socket() {
    let dir = std::env::temp_dir().join(format!("sprocket-syslog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket_path = dir.join("log");
    let syslogd = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    syslogd.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let port = free_port();
    let mut child = Command::new(sprocketd())
        .args(["-q", "builtin", "-L", "127.0.0.1", "-p", &port.to_string(), "--syslog", "--verbose", "INFO"])
        .env("SPROCKET_SYSLOG_SOCKET", &socket_path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let messages = syslog_until_listening(&syslogd);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let listening = messages.iter().find(|m| m.contains("listening")).unwrap_or_else(|| panic!("{messages:?}"));
    // Facility user (1), severity info (6): <14>.
    assert!(listening.starts_with(&format!("<14>sprocketd[{}]: ", child.id())), "{listening}");
}

#[test]
fn second_server_on_the_same_queue_file_stops_with_a_clear_error() {
    // Same port on two loopback addresses, same data dir: both would pick
    // sprocket-<port>.db, and the second would replay and run the first
    // one's jobs again.
    let dir = sprocket_testkit::databases::TempDir::new("lock");
    let data_dir = dir.path().to_string_lossy().to_string();
    let port = free_port();
    let args = |addr: &str| -> Vec<String> {
        ["-L", addr, "-p", &port.to_string(), "--data-dir", &data_dir].iter().map(|s| s.to_string()).collect()
    };
    let first = ServerProcess::start("sprocketd", sprocketd(), &args("127.0.0.1"), port);
    let mut second = Command::new(sprocketd())
        .args(args("127.0.0.2"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let Some(status) = wait_exit(&mut second, Duration::from_secs(10)) else {
        let _ = second.kill();
        let _ = second.wait();
        panic!("a second sprocketd started on the first one's queue file");
    };
    assert_eq!(status.code(), Some(1), "second server must not run");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("in use by another sprocketd") && err.contains("--data-dir"), "{err}");
    // The first server is untouched; once it stops, the file is free again.
    let mut c = Gear::connect(port).expect("connect to the first server");
    c.send(&Request::EchoReq { data: b("still here") }).expect("send");
    assert!(matches!(c.recv().expect("echo"), Response::EchoRes { .. }));
    drop(c);
    drop(first);
    let again = ServerProcess::start("sprocketd", sprocketd(), &args("127.0.0.1"), port);
    drop(again);
}

#[test]
fn detached_server_logs_to_syslog_and_prints_start_up_failures() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("log");
    let syslogd = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    syslogd.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let pid = dir.path().join("d.pid");
    let port = free_port();
    // No --log-file, no --syslog: the detached server's lines go to syslog.
    let status = Command::new(sprocketd())
        .args(["-d", "-q", "builtin", "-L", "127.0.0.1", "-p", &port.to_string(), "--pid-file", pid.to_str().unwrap()])
        .args(["--verbose", "INFO"])
        .env("SPROCKET_SYSLOG_SOCKET", &socket_path)
        .status()
        .unwrap();
    assert!(status.success());
    let daemon_pid = std::fs::read_to_string(&pid).unwrap().trim().to_string();
    let seen = syslog_until_listening(&syslogd);
    Command::new("kill").args(["-TERM", &daemon_pid]).status().unwrap();
    assert!(wait_gone(&pid, Duration::from_secs(10)), "daemon removed its pid file on exit");
    let listening = seen.iter().find(|m| m.contains("listening")).unwrap_or_else(|| panic!("{seen:?}"));
    assert!(listening.starts_with(&format!("<14>sprocketd[{daemon_pid}]: ")), "{listening}");

    // A detached server that cannot start says why on the terminal it was
    // started from, and the parent exits 1.
    let err = start_with_a_redis_that_is_not_there(&["-d"]);
    assert!(err.contains("cannot open the queue store"), "{err}");
}

#[test]
fn graceful_shutdown_without_connections_keeps_durable_jobs_and_says_what_memory_loses() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("s.log");
    let log_arg = log.to_string_lossy().to_string();
    let wait_stopped = |s: &mut ServerProcess| {
        let stopped = wait_exit(&mut s.child, Duration::from_secs(10));
        assert!(stopped.is_some(), "graceful shutdown with no connection left hung");
    };
    let queue_one = |port: u16| {
        let mut client = Gear::connect(port).unwrap();
        assert!(matches!(client.submit_bg("g", "kept", "d").unwrap(), Response::JobCreated { .. }));
    };

    // In memory: the job cannot survive; the log says so.
    let mut s = ServerProcess::sprocketd(sprocketd(), &["-q", "builtin", "--log-file", &log_arg]);
    queue_one(s.port);
    Command::new("kill").args(["-USR1", &s.child.id().to_string()]).status().unwrap();
    wait_stopped(&mut s);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("lost") && text.contains("jobs=1"), "{text}");

    // Durable: the job is kept and runs after the next start.
    let data = dir.path().join("data");
    let data_arg = data.to_string_lossy().to_string();
    let port = free_port();
    let args: Vec<String> =
        ["-L", "127.0.0.1", "-p", &port.to_string(), "--data-dir", &data_arg].iter().map(|s| s.to_string()).collect();
    let mut s = ServerProcess::start("sprocketd", sprocketd(), &args, port);
    queue_one(port);
    Command::new("kill").args(["-USR1", &s.child.id().to_string()]).status().unwrap();
    wait_stopped(&mut s);
    let _again = ServerProcess::start("sprocketd", sprocketd(), &args, port);
    let mut worker = Gear::connect(port).unwrap();
    worker.send(&Request::CanDo { function: b("g") }).unwrap();
    let (_, _, data) = worker.grab().unwrap().expect("the queued job after the restart");
    assert_eq!(&data[..], b"d");
}

/// A foreground job on `port` whose worker streams `chunks` WORK_DATA
/// packets of 1 MiB, then completes: returns the client (submitted, not yet
/// read from) and the worker (done sending).
fn streamed_job(port: u16, function: &str, chunks: usize) -> (Gear, Gear) {
    let mut worker = Gear::connect(port).unwrap();
    worker.send(&Request::CanDo { function: b(function) }).unwrap();
    let mut client = Gear::connect(port).unwrap();
    let mode = sprocket_proto::SubmitMode { priority: sprocket_proto::Priority::Normal, background: false };
    client.send(&Request::SubmitJob { mode, function: b(function), unique: b(""), data: b("go") }).unwrap();
    assert!(matches!(client.recv().unwrap(), Response::JobCreated { .. }));
    let (handle, ..) = worker.grab().unwrap().expect("the job");
    let chunk = bytes::Bytes::from(vec![b'x'; 1 << 20]);
    for _ in 0..chunks {
        if worker.send(&Request::WorkData { handle: handle.clone(), data: chunk.clone() }).is_err() {
            break;
        }
    }
    let _ = worker.send(&Request::WorkComplete { handle, data: b("end") });
    (client, worker)
}

/// Reads `client`'s replies until WORK_COMPLETE; returns the WORK_DATA bytes.
fn read_stream(client: &mut Gear, pause_every: Duration) -> std::io::Result<usize> {
    let mut got = 0;
    loop {
        match client.recv()? {
            Response::WorkData { data, .. } => {
                got += data.len();
                std::thread::sleep(pause_every);
            }
            Response::WorkComplete { .. } => return Ok(got),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn client_reading_a_stream_slower_than_the_worker_writes_gets_all_of_it() {
    // 100 MiB of WORK_DATA, more than a peer may leave unread for long:
    // the worker writes it at once, the client reads it a little at a time.
    let s = ServerProcess::sprocketd(sprocketd(), &[]);
    let writer = std::thread::spawn({
        let port = s.port;
        move || streamed_job(port, "stream", 100)
    });
    std::thread::sleep(Duration::from_millis(200));
    let (mut client, _worker) = writer.join().unwrap();
    assert_eq!(read_stream(&mut client, Duration::from_millis(2)).expect("whole stream"), 100 << 20);
}

#[test]
fn peer_over_the_reply_backlog_or_stalled_is_cut_off_and_others_are_served() {
    // Over --max-reply-backlog (8 MiB here): cut off at once.
    let s = ServerProcess::sprocketd(sprocketd(), &["--max-packet-size", "2097152", "--max-reply-backlog", "8388608"]);
    let (mut client, _worker) = streamed_job(s.port, "big", 20);
    std::thread::sleep(Duration::from_millis(300));
    assert!(read_stream(&mut client, Duration::ZERO).is_err(), "a peer 20 MiB behind must be cut off");
    let mut other = Gear::connect(s.port).unwrap();
    assert!(matches!(other.call(&Request::EchoReq { data: b("ok") }).unwrap(), Response::EchoRes { .. }));
    drop(s);

    // Within the limit but taking nothing (over 64 MiB waiting): cut off
    // after the stall timeout (shortened here), however much it may hold.
    let port = free_port();
    let args: Vec<String> =
        ["-q", "builtin", "-L", "127.0.0.1", "-p", &port.to_string()].iter().map(|s| s.to_string()).collect();
    std::env::set_var("SPROCKET_STALL_TIMEOUT_MS", "500");
    let s = ServerProcess::start("sprocketd", sprocketd(), &args, port);
    std::env::remove_var("SPROCKET_STALL_TIMEOUT_MS");
    let (mut client, _worker) = streamed_job(s.port, "stall", 100);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(read_stream(&mut client, Duration::ZERO).is_err(), "a peer that stopped reading must be cut off");
    let mut other = Gear::connect(s.port).unwrap();
    assert!(matches!(other.call(&Request::EchoReq { data: b("ok") }).unwrap(), Response::EchoRes { .. }));
}

#[test]
fn output_waiting_for_all_peers_together_is_capped() {
    // Each peer may hold 64 MiB, all of them together only 8 MiB: a peer
    // that leaves 30 MiB unread is cut off for the total alone.
    let s = ServerProcess::sprocketd(
        sprocketd(),
        &["--max-packet-size", "2097152", "--max-reply-backlog", "67108864", "--max-total-reply-backlog", "8388608"],
    );
    let (mut hog, _worker) = streamed_job(s.port, "hog", 30);
    std::thread::sleep(Duration::from_millis(300));
    assert!(read_stream(&mut hog, Duration::ZERO).is_err(), "a peer holding more than the total must be cut off");
    // What the cut-off peer held no longer counts: another peer may leave
    // 4 MiB waiting (over the 1 MiB below which nobody is cut) and then
    // read all of it.
    let (mut modest, _worker) = streamed_job(s.port, "modest", 4);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_stream(&mut modest, Duration::ZERO).expect("whole stream"), 4 << 20);
    let mut other = Gear::connect(s.port).unwrap();
    assert!(matches!(other.call(&Request::EchoReq { data: b("ok") }).unwrap(), Response::EchoRes { .. }));
}

#[test]
fn peer_pipelining_admin_lines_without_reading_is_paused_not_fed() {
    use std::io::Write;
    // 20,000 functions make each `status` reply about 440 KB; a peer that
    // sends `status` lines as fast as it can and reads nothing asked for
    // gigabytes within seconds before reading was paused.
    let mut s = ServerProcess::sprocketd(sprocketd(), &["-q", "builtin"]);
    let mut worker = Gear::connect(s.port).unwrap();
    for i in 0..20_000 {
        worker.send(&Request::CanDo { function: b(&format!("function_{i:06}")) }).unwrap();
    }
    assert!(matches!(worker.call(&Request::EchoReq { data: b("sync") }).unwrap(), Response::EchoRes { .. }));
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], s.port)).into()).unwrap();
    let mut flood: std::net::TcpStream = sock.into();
    flood.set_nonblocking(true).unwrap();
    let lines = b"status\n".repeat(1000);
    let started = Instant::now();
    let mut peak = 0;
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(3) {
        match flood.write(&lines) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("flood connection failed: {e}"),
        }
        peak = peak.max(common::rss_kib(s.child.id()));
        assert!(peak < 400 * 1024, "sprocketd grew to {peak} KiB for a peer that reads nothing");
        if started.elapsed().as_millis() % 500 < 20 {
            let asked = Instant::now();
            assert!(s.admin("version").starts_with("OK "));
            slowest = slowest.max(asked.elapsed());
        }
    }
    // About 40 ms alone; generous, as CI runs many servers at once on two cores.
    assert!(slowest < Duration::from_secs(1), "other connections waited {slowest:?} for an answer");
    eprintln!("slowest answer to another connection during the flood: {slowest:?}");
    // A signal is acted on while the peer's lines wait.
    let pid = s.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(wait_exit(&mut s.child, Duration::from_secs(5)).is_some(), "SIGTERM not acted on during the flood");
    drop(flood);
}

#[test]
fn job_just_within_the_packet_limit_can_be_echoed_back() {
    // The result carries the handle as well as the workload, so it is a
    // little larger than the submission; it must not cut the worker off.
    let s = ServerProcess::sprocketd(sprocketd(), &["--max-packet-size", "4096"]);
    let workload = "w".repeat(4096 - "echo".len() - 2);
    let mut client = Gear::connect(s.port).unwrap();
    let mode = sprocket_proto::SubmitMode { priority: sprocket_proto::Priority::Normal, background: false };
    client.send(&Request::SubmitJob { mode, function: b("echo"), unique: b(""), data: b(&workload) }).unwrap();
    assert!(matches!(client.recv().unwrap(), Response::JobCreated { .. }));
    let mut worker = Gear::connect(s.port).unwrap();
    worker.send(&Request::CanDo { function: b("echo") }).unwrap();
    let (handle, _, data) = worker.grab().unwrap().expect("the job");
    worker.send(&Request::WorkComplete { handle, data }).unwrap();
    match client.recv().unwrap() {
        Response::WorkComplete { data, .. } => assert_eq!(data.len(), workload.len()),
        other => panic!("expected the echoed result, got {other:?}"),
    }
}

#[test]
fn client_that_writes_a_whole_oversized_packet_still_reads_the_error() {
    // Many clients write a packet completely before reading. The server
    // must not reset the connection under them (closing with their bytes
    // unread would), or the ERROR is lost.
    use std::io::{Read, Write};
    let s = ServerProcess::sprocketd(sprocketd(), &["--max-packet-size", "1024"]);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let big = Request::EchoReq { data: bytes::Bytes::from(vec![b'x'; 8 << 20]) }.to_bytes();
    conn.write_all(&big).expect("the server reads the oversized packet to its end instead of resetting");
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).expect("ERROR then EOF, no reset");
    let mut buf = bytes::BytesMut::from(&reply[..]);
    match sprocket_proto::Decoder::default().decode(&mut buf) {
        Ok(Some(sprocket_proto::Frame::Packet { kind, body, .. })) => {
            assert_eq!(kind, sprocket_proto::PacketType::Error);
            assert!(body.starts_with(b"ARGUMENT_TOO_LARGE"), "{body:?}");
        }
        other => panic!("expected an ERROR packet, got {other:?}"),
    }
}

/// CPU time (user + system, in clock ticks) a process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn busy_polling_stops_when_the_server_goes_idle() {
    // A long window makes a poller that never stops show up clearly.
    let s = ServerProcess::sprocketd(sprocketd(), &["-q", "builtin", "--busy-poll", "20000"]);
    let mut client = Gear::connect(s.port).unwrap();
    for i in 0..200 {
        let data = bytes::Bytes::from(format!("ping {i}"));
        assert_eq!(client.call(&Request::EchoReq { data: data.clone() }).unwrap(), Response::EchoRes { data });
    }
    // The window (20 ms) passes; from then on an idle server sleeps.
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(s.child.id());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(s.child.id()) - before;
    assert!(used <= 3, "an idle sprocketd used {used} ticks of CPU in one second");
    // And it still answers at once after sleeping.
    assert_eq!(client.call(&Request::EchoReq { data: b("late") }).unwrap(), Response::EchoRes { data: b("late") });
}

#[test]
fn busy_polling_is_off_by_default_with_one_cpu_to_run_on() {
    if sprocket_testkit::which("taskset").is_none() {
        sprocket_testkit::skip("taskset(1) not installed: one-CPU default not checked");
        return;
    }
    let line_of = |pin_to_one_cpu: bool, extra: &[&str], needle: &str| {
        let port = free_port().to_string();
        let mut cmd = if pin_to_one_cpu {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(sprocketd());
            c
        } else {
            Command::new(sprocketd())
        };
        cmd.args(["-q", "builtin", "-L", "127.0.0.1", "-p", &port, "--verbose", "INFO"]).args(extra);
        let mut server = sprocket_testkit::process::Background::spawn("sprocketd", &mut cmd);
        server.wait_for_line(needle, Duration::from_secs(10));
        server.stop();
    };
    line_of(true, &[], "busy polling off: only one CPU to run on");
    // Asked for explicitly, it polls even on one CPU.
    line_of(true, &["--busy-poll", "20"], "busy polling after activity micros=20");
    line_of(false, &["--busy-poll", "0"], "busy polling off (--busy-poll 0)");
    let out = Command::new(sprocketd()).args(["--busy-poll", "2000000"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a window over one second is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--busy-poll"));
    if std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) >= 2 {
        line_of(false, &[], "busy polling after activity micros=50");
    }
}

#[test]
fn mistyped_admin_shutdown_is_refused_and_the_server_keeps_running() {
    let mut s = ServerProcess::sprocketd(sprocketd(), &[]);
    for line in ["shutdown gracefull", "shutdown now", "shutdown graceful please"] {
        assert!(s.admin(line).starts_with("ERR INVALID_ARGUMENTS "), "{line}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.child.try_wait().unwrap().is_none(), "a mistyped shutdown stopped the server");
    assert!(s.admin("version").starts_with("OK "));
    assert_eq!(s.admin("shutdown"), "OK\r\n");
    assert!(wait_exit(&mut s.child, Duration::from_secs(10)).is_some(), "still running");
}

#[test]
fn signals_during_start_up_are_caught_not_fatal() {
    // A large table to replay keeps the server starting for a while; a
    // SIGHUP (a log rotation) in that time used to kill it.
    let Some(sqlite3) = sprocket_testkit::which("sqlite3") else {
        sprocket_testkit::skip("sqlite3 not installed: start-up signals not checked");
        return;
    };
    let dir = std::env::temp_dir().join(format!("sprocket-startup-signals-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("q.db");
    let fill = "CREATE TABLE gearman_queue (unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB, \
                when_to_run INTEGER, PRIMARY KEY (unique_key, function_name)); \
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000) \
                INSERT INTO gearman_queue SELECT 'u' || i, 'f', 1, 'data', 0 FROM n;";
    assert!(Command::new(sqlite3).arg(&db).arg(fill).status().unwrap().success());
    let port = free_port();
    let mut child = Command::new(sprocketd())
        .args(["-p", &port.to_string(), "-L", "127.0.0.1", "-q", "libsqlite3", "--libsqlite3-db"])
        .arg(&db)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "SIGHUP during start-up killed the server");
        assert!(started.elapsed() < Duration::from_secs(60), "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sprocket_testkit::admin(port, "status").starts_with("f\t400000\t"), "replayed queue");
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(wait_exit(&mut child, Duration::from_secs(10)).is_some(), "SIGTERM after start-up not acted on");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn running_out_of_descriptors_is_logged_once_and_recovered_from() {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("sprocket-emfile-{}-{port}.log", std::process::id()));
    let script = format!(
        "ulimit -n 64 && exec {} -q builtin -L 127.0.0.1 -p {port} --verbose WARNING --log-file {}",
        sprocketd().display(),
        log.display()
    );
    let mut child = Command::new("sh").args(["-c", &script]).stderr(std::process::Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while Gear::connect(port).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "sprocketd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // More connections than descriptors: the kernel queues the rest, and
    // accepting fails until some close.
    let crowd: Vec<std::net::TcpStream> =
        (0..100).filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok()).collect();
    std::thread::sleep(Duration::from_millis(1500));
    drop(crowd);
    let mut late = None;
    while late.is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "no connection accepted after descriptors were freed");
        late = Gear::connect(port).ok();
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut late = late.unwrap();
    assert!(matches!(late.call(&Request::EchoReq { data: b("back") }).unwrap(), Response::EchoRes { .. }));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let failures = text.lines().filter(|l| l.contains("accept failed")).count();
    assert_eq!(failures, 1, "one line for 1.5 s of failing accepts, not one per retry:\n{text}");
    assert!(text.contains("accepting connections again"), "{text}");
}

/// Waits until `port` answers an ECHO (at most 10 s).
fn answers_on(port: u16) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(mut g) = Gear::connect(port) {
            return g.call(&Request::EchoReq { data: b("p") }).is_ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A config file written the way people write them: comment lines,
/// comments after a flag, quoted values. Its flags apply, and a flag given
/// again on the command line takes the command line's value, as with
/// gearmand, instead of stopping the server.
#[test]
fn config_file_comments_and_command_line_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let (file_port, cli_port) = (free_port(), free_port());
    let conf = dir.path().join("sprocketd.conf");
    std::fs::write(
        &conf,
        format!(
            "# the port we listen on\n--port {file_port}   # overridden below\n\
             --listen '127.0.0.1'\n# memory only: this is a test\n-q builtin\n--verbose WARNING\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(sprocketd())
        .arg(format!("--config-file={}", conf.display()))
        .args(["--port", &cli_port.to_string(), "--verbose", "ERROR"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let up = answers_on(cli_port);
    let file_port_free = std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(up, "not listening on the command line's port: {}", String::from_utf8_lossy(&out.stderr));
    assert!(file_port_free, "the config file's port was used although the command line gave another");
}

/// An unfinished quote in the config file is named, with its line.
#[test]
fn config_file_with_an_unfinished_quote_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sprocketd.conf");
    std::fs::write(&conf, "-q builtin\n--mysql-password 'oops\n").unwrap();
    let out = Command::new(sprocketd()).arg(format!("--config-file={}", conf.display())).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sprocketd.conf") && err.contains("quote"), "{err}");
}

/// `--help` describes every flag, under headings that say which are
/// gearmand's compatibility options.
#[test]
fn help_describes_every_flag() {
    let out = Command::new(sprocketd()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for heading in [
        "gearmand options:",
        "TLS (gearmand's flags",
        "gearmand compatibility: HTTP protocol",
        "gearmand compatibility: SQLite queue",
        "gearmand compatibility: PostgreSQL queue",
        "gearmand compatibility: MySQL/MariaDB queue",
        "gearmand compatibility: Redis queue",
        "gearmand compatibility: libdrizzle",
        "Sprocket's own options:",
    ] {
        assert!(help.contains(heading), "no {heading:?} in:\n{help}");
    }
    // Each flag line is followed by its description (clap puts it on the
    // same line or, for long ones, on the next line, indented further).
    let lines: Vec<&str> = help.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if !(t.starts_with("--") || (t.starts_with('-') && t.len() > 1)) {
            continue;
        }
        let described_here = t.split("  ").filter(|s| !s.trim().is_empty()).count() > 1;
        let next_is_text = lines.get(i + 1).is_some_and(|n| {
            let n = n.trim_start();
            !n.is_empty() && !n.starts_with('-') && !n.ends_with(':')
        });
        assert!(described_here || next_is_text, "no description for {t:?}");
    }
}

/// A handle prefix that would make handles of 64 bytes or more is refused
/// at start instead of producing cut handles.
#[test]
fn over_long_handle_prefix_is_refused() {
    let prefix = "P".repeat(43);
    let out = Command::new(sprocketd())
        .args(["-q", "builtin", "-p", &free_port().to_string(), "--job-handle-prefix", &prefix])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--job-handle-prefix") && err.contains("at most 42"), "{err}");
}
