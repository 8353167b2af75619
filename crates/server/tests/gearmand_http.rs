//! gearmand's HTTP protocol (`-r http --http-port PORT`) against the real
//! sprocketd binary, driven with curl: jobs answered by Debian's `gearman`
//! worker, background handles, coalescing by unique key, partial results,
//! failures and bad requests.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{sprocketd, wait_for_port};
use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::{wait_for_status, wait_for_workers};
use sprocket_testkit::wire::{kind, Conn};
use sprocket_testkit::{free_port, require_tool, ServerProcess};

/// A sprocketd serving `-r http` on a free port, plus `extra`.
fn server_with_http(extra: &[&str]) -> (ServerProcess, u16) {
    let http = free_port();
    let port_flag = format!("--http-port={http}");
    let mut args = vec!["-r", "http", port_flag.as_str()];
    args.extend_from_slice(extra);
    let server = ServerProcess::sprocketd(sprocketd(), &args);
    wait_for_port(http);
    (server, http)
}

/// One HTTP answer as curl saw it.
struct Answer {
    status: u16,
    /// Header lines, names in lower case.
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Runs curl with `args` and returns its answer (headers through -D).
fn curl(args: &[&str]) -> Answer {
    let head = tempfile_path("head");
    let out = run(
        Command::new("curl").args(["-s", "-S", "-D", &head, "-w", "\n%{http_code}"]).args(args),
        b"",
        Duration::from_secs(30),
    );
    assert!(out.success(), "curl {args:?}: {}", out.describe());
    let text = out.stdout_text();
    let (body, code) = text.rsplit_once('\n').expect("status code line");
    let head_text = std::fs::read_to_string(&head).expect("curl's header file");
    let _ = std::fs::remove_file(&head);
    let headers = head_text
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim_end().to_string()))
        .collect();
    Answer { status: code.trim().parse().expect("status code"), headers, body: body.to_string() }
}

fn tempfile_path(stem: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("sprocket-http-test-{}-{stem}-{n}", std::process::id())).display().to_string()
}

/// Debian's `gearman` as a worker of `function` that reverses its input.
fn rev_worker(port: u16, function: &str) -> Background {
    Background::spawn(
        "gearman -w",
        Command::new("gearman").args(["-w", "-h", "127.0.0.1", "-p", &port.to_string(), "-f", function, "--", "rev"]),
    )
}

#[test]
fn foreground_job_is_answered_with_the_workers_result() {
    if !require_tool("curl") || !require_tool("gearman") {
        return;
    }
    let (server, http) = server_with_http(&[]);
    let _worker = rev_worker(server.port, "hx_rev");
    wait_for_workers(server.port, "hx_rev", 1);
    let url = format!("http://127.0.0.1:{http}/hx_rev");
    for method in ["POST", "PUT"] {
        let got = curl(&["-X", method, "--data-binary", "hello", &url]);
        assert_eq!(got.status, 200, "{method}: {}", got.body);
        assert_eq!(got.body, "olleh", "{method}");
        assert_eq!(got.header("x-gearman-command"), Some("WORK_COMPLETE"), "{method}");
        let handle = got.header("x-gearman-job-handle").expect("a job handle header");
        assert!(handle.starts_with("H:"), "{handle}");
        assert_eq!(got.header("content-length"), Some("5"));
    }
    // GET sends an empty workload, as gearmand's does; `rev` of nothing
    // is nothing.
    let got = curl(&[&url]);
    assert_eq!((got.status, got.body.as_str()), (200, ""));
    assert_eq!(got.header("x-gearman-command"), Some("WORK_COMPLETE"));
    // HEAD runs the job too and answers its handle without a body.
    let got = curl(&["-I", &url]);
    assert_eq!(got.status, 200);
    assert!(got.header("x-gearman-job-handle").is_some(), "{:?}", got.headers);
    // HEAD on the root is gearmand's ping: no job.
    let got = curl(&["-I", &format!("http://127.0.0.1:{http}/")]);
    assert_eq!(got.status, 200);
    assert_eq!(got.header("x-gearman-job-handle"), None);
}

#[test]
fn background_job_answers_its_handle_which_clients_can_follow() {
    if !require_tool("curl") || !require_tool("gearman") {
        return;
    }
    let (server, http) = server_with_http(&[]);
    let url = format!("http://127.0.0.1:{http}/hx_bg");
    let got = curl(&["-X", "POST", "-H", "X-Gearman-Background: true", "--data-binary", "later", &url]);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body, "");
    assert_eq!(got.header("x-gearman-command"), Some("JOB_CREATED"));
    let handle = got.header("x-gearman-job-handle").expect("a job handle header").to_string();
    // The handle is the server's: GET_STATUS knows the queued job.
    let mut client = Conn::connect(server.port);
    client.send_req(kind::GET_STATUS, &[handle.as_bytes()]);
    let status = client.expect_packet("STATUS_RES");
    assert_eq!(status.kind, kind::STATUS_RES, "{status:?}");
    assert_eq!(status.fields()[1], b"1", "known: {status:?}");
    // A worker runs it; sprocket.result then gives its result by handle.
    let mut worker = Background::spawn(
        "gearman -w",
        Command::new("gearman")
            .args(["-w", "-h", "127.0.0.1", "-p", &server.port.to_string()])
            .args(["-f", "hx_bg", "-c", "1", "--", "rev"]),
    );
    wait_for_status(server.port, "hx_bg", Duration::from_secs(15), "the job done", |s| s.total == 0);
    worker.stop();
    let out = run(
        Command::new("gearman")
            .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-f", "sprocket.result"])
            .arg(&handle),
        b"",
        Duration::from_secs(15),
    );
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout_text().trim_end(), "retal", "{}", out.describe());
}

#[test]
fn priority_header_orders_background_jobs() {
    if !require_tool("curl") {
        return;
    }
    let (server, http) = server_with_http(&[]);
    let url = format!("http://127.0.0.1:{http}/hx_prio");
    for (priority, data) in [("low", "l"), ("normal", "n"), ("HIGH", "h")] {
        let unique = format!("X-Gearman-Unique: {data}");
        let priority = format!("X-Gearman-Priority: {priority}");
        let got =
            curl(&["-X", "POST", "-H", "X-Gearman-Background: TRUE", "-H", &priority, "-H", &unique, "-d", data, &url]);
        assert_eq!(got.status, 200, "{}", got.body);
    }
    let mut worker = Conn::connect(server.port);
    worker.send_req(kind::CAN_DO, &[b"hx_prio"]);
    let mut order = Vec::new();
    for _ in 0..3 {
        worker.send_req(kind::GRAB_JOB, &[]);
        let assign = worker.expect_packet("JOB_ASSIGN");
        assert_eq!(assign.kind, kind::JOB_ASSIGN, "{assign:?}");
        order.push(String::from_utf8_lossy(&assign.fields_n(3)[2]).into_owned());
    }
    assert_eq!(order, ["h", "n", "l"]);
}

#[test]
fn same_unique_header_coalesces_into_one_job() {
    if !require_tool("curl") {
        return;
    }
    let (server, http) = server_with_http(&["--http-wait=10"]);
    let url = format!("http://127.0.0.1:{http}/hx_same");
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || curl(&["-X", "POST", "-H", "X-Gearman-Unique: u1", "-d", "x", &url]))
        })
        .collect();
    // Both requests wait on one job: the queue holds one, and the clients
    // are two.
    wait_for_status(server.port, "hx_same", Duration::from_secs(15), "one queued job", |s| s.total == 1);
    let start = Instant::now();
    loop {
        let clients = sprocket_testkit::admin(server.port, "workers");
        if clients.lines().filter(|l| l.contains(" : ") || l.ends_with(" :")).count() >= 3 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "two HTTP clients never connected:\n{clients}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut worker = Conn::connect(server.port);
    worker.send_req(kind::CAN_DO, &[b"hx_same"]);
    worker.send_req(kind::GRAB_JOB, &[]);
    let assign = worker.expect_packet("JOB_ASSIGN");
    assert_eq!(assign.kind, kind::JOB_ASSIGN, "{assign:?}");
    let handle = assign.fields()[0].clone();
    worker.send_req(kind::WORK_COMPLETE, &[&handle, b"shared"]);
    for caller in callers {
        let got = caller.join().expect("curl thread");
        assert_eq!((got.status, got.body.as_str()), (200, "shared"));
        assert_eq!(got.header("x-gearman-job-handle").map(str::as_bytes), Some(handle.as_slice()));
    }
}

/// What gearmand's plugin garbles or loses (partial data, status and
/// warnings before the end, a failure) arrives whole.
#[test]
fn partial_results_status_and_failure_are_answered_whole() {
    if !require_tool("curl") {
        return;
    }
    let (server, http) = server_with_http(&[]);
    let mut worker = Conn::connect(server.port);
    worker.send_req(kind::CAN_DO, &[b"hx_parts"]);
    let url = format!("http://127.0.0.1:{http}/hx_parts");
    let caller = {
        let url = url.clone();
        std::thread::spawn(move || curl(&["-X", "POST", "-d", "in", &url]))
    };
    let handle = grab(&mut worker, server.port);
    worker.send_req(kind::WORK_DATA, &[&handle, b"part1-"]);
    worker.send_req(kind::WORK_STATUS, &[&handle, b"1", b"2"]);
    worker.send_req(kind::WORK_WARNING, &[&handle, b"careful"]);
    worker.send_req(kind::WORK_DATA, &[&handle, b"part2-"]);
    worker.send_req(kind::WORK_COMPLETE, &[&handle, b"end"]);
    let got = caller.join().expect("curl thread");
    assert_eq!((got.status, got.body.as_str()), (200, "part1-part2-end"));
    assert_eq!(got.header("x-gearman-command"), Some("WORK_COMPLETE"));

    let exception_caller = {
        let url = url.clone();
        std::thread::spawn(move || curl(&["-X", "POST", "-H", "X-Gearman-Unique: exc", "-d", "in", &url]))
    };
    let handle = grab(&mut worker, server.port);
    worker.send_req(kind::WORK_EXCEPTION, &[&handle, b"it broke"]);
    let got = exception_caller.join().expect("curl thread");
    assert_eq!((got.status, got.body.as_str()), (500, "it broke"));
    assert_eq!(got.header("x-gearman-command"), Some("WORK_EXCEPTION"));

    let caller = std::thread::spawn(move || curl(&["-X", "POST", "-d", "in", &url]));
    let handle = grab(&mut worker, server.port);
    worker.send_req(kind::WORK_FAIL, &[&handle]);
    let got = caller.join().expect("curl thread");
    assert_eq!(got.status, 500, "{}", got.body);
    assert_eq!(got.header("x-gearman-command"), Some("WORK_FAIL"));
    assert_eq!(got.header("x-gearman-job-handle").map(str::as_bytes), Some(handle.as_slice()), "the whole handle");
}

/// Grabs the next job, waiting for one to be queued.
fn grab(worker: &mut Conn, port: u16) -> Vec<u8> {
    wait_for_status(port, "hx_parts", Duration::from_secs(15), "a queued job", |s| s.total > s.running);
    worker.send_req(kind::GRAB_JOB, &[]);
    let assign = worker.expect_packet("JOB_ASSIGN");
    assert_eq!(assign.kind, kind::JOB_ASSIGN, "{assign:?}");
    assign.fields()[0].clone()
}

#[test]
fn bad_requests_get_clear_errors() {
    if !require_tool("curl") {
        return;
    }
    let (_server, http) = server_with_http(&["--max-packet-size=1000", "--http-wait=1"]);
    let root = format!("http://127.0.0.1:{http}/");
    let got = curl(&["-X", "POST", "-d", "x", &root]);
    assert_eq!(got.status, 404);
    assert!(got.body.contains("function"), "{}", got.body);
    let got = curl(&["-X", "DELETE", &format!("{root}f")]);
    assert_eq!(got.status, 405);
    assert!(got.body.contains("POST"), "{}", got.body);
    let big = "x".repeat(2000);
    let got = curl(&["-X", "POST", "--data-binary", &big, &format!("{root}hx_big")]);
    assert_eq!(got.status, 413);
    assert!(got.body.contains("--max-packet-size"), "{}", got.body);
    // Chunked, so the size is only known while reading.
    let got =
        curl(&["-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", &big, &format!("{root}hx_big")]);
    assert_eq!(got.status, 413, "{}", got.body);
    // The Gearman port's own refusals of the input: a unique key over
    // gearmand's 64 bytes, a background job for a server function.
    let long_unique = format!("X-Gearman-Unique: {}", "u".repeat(65));
    let got = curl(&["-X", "POST", "-H", &long_unique, "-d", "x", &format!("{root}hx_u")]);
    assert_eq!(got.status, 400, "{}", got.body);
    assert!(got.body.contains("Unique value too large"), "{}", got.body);
    let got = curl(&["-X", "POST", "-H", "X-Gearman-Background: true", "-d", "x", &format!("{root}sprocket.result")]);
    assert_eq!(got.status, 400, "{}", got.body);
    // No worker: the wait limit passes and the job goes on.
    let got = curl(&["-X", "POST", "-d", "x", &format!("{root}hx_nobody")]);
    assert_eq!(got.status, 504, "{}", got.body);
    assert!(got.header("x-gearman-job-handle").is_some());
    // TRACE echoes the request instead of hanging.
    let got = curl(&["-X", "TRACE", &format!("{root}f")]);
    assert_eq!(got.status, 200);
    assert!(got.body.starts_with("TRACE /f "), "{}", got.body);
}

#[test]
fn a_full_server_answers_503() {
    if !require_tool("curl") {
        return;
    }
    let (_server, http) = server_with_http(&["--max-jobs=1"]);
    let url = format!("http://127.0.0.1:{http}/hx_full");
    let background = ["-X", "POST", "-H", "X-Gearman-Background: true"];
    let got = curl(&[&background[..], &["-H", "X-Gearman-Unique: a", "-d", "a", &url]].concat());
    assert_eq!(got.status, 200, "{}", got.body);
    let got = curl(&[&background[..], &["-H", "X-Gearman-Unique: b", "-d", "b", &url]].concat());
    assert_eq!(got.status, 503, "{}", got.body);
    assert!(got.body.contains("QUEUE_ERROR"), "{}", got.body);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    if !require_tool("curl") {
        return;
    }
    let (_server, http) = server_with_http(&[]);
    let url = format!("http://127.0.0.1:{http}/hx_keep");
    let out = run(
        Command::new("curl").args(["-s", "-v", "-H", "X-Gearman-Background: true", "-d", "a", &url, "-d", "b", &url]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.success(), "{}", out.describe());
    assert!(out.stderr_text().contains("Re-using existing connection"), "{}", out.describe());
}

#[test]
fn unknown_protocol_module_and_ssl_are_refused_at_start() {
    for (args, expected) in
        [(&["-r", "ftp"][..], "unknown protocol module"), (&["-r", "http", "--ssl"][..], "--ssl-port")]
    {
        let out = run(Command::new(sprocketd()).args(args).arg("--check-args"), b"", Duration::from_secs(10));
        assert!(!out.success(), "{args:?} accepted");
        assert!(out.stderr_text().contains(expected), "{args:?}: {}", out.describe());
    }
}
