//! The dashboard at `/` and its live stream `/api/v1/events`, against the
//! real sprocketd binary: the page in headless Chromium (Debian's chromium
//! and chromium-driver, driven by selenium from `dashboard/drive.py`) with
//! jobs submitted and worked by Debian's `gearman` tool; the stream through
//! curl and a raw socket; the page's files for anything fetched from
//! elsewhere. Screenshots go to `target/dashboard-screenshots/`
//! (`open/`: a server without a token, `token/`: with one).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{b, server_with_web, Gear};
use serde_json::Value;
use sprocket_proto::{Request, Response};
use sprocket_testkit::process::{run, Background};
use sprocket_testkit::{require_tool, skip};

/// `target/dashboard-screenshots/<name>`, emptied.
fn screenshot_dir(name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp has a parent").to_path_buf();
    let dir = target.join("dashboard-screenshots").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// Debian's `gearman` client submits each line of `lines` as a background
/// job of `function`.
fn gearman_submit(port: u16, function: &str, lines: usize) {
    let input: String = (1..=lines).map(|i| format!("job {i}\n")).collect();
    let out = run(
        Command::new("gearman").args(["-h", "127.0.0.1", "-p", &port.to_string(), "-b", "-n", "-f", function]),
        input.as_bytes(),
        Duration::from_secs(30),
    );
    assert!(out.success(), "gearman -b: {}", out.describe());
}

/// Whether Python can drive Chromium: python3 with selenium, chromium and
/// its driver.
fn browser_tools() -> bool {
    for tool in ["python3", "chromium", "chromedriver", "gearman"] {
        if !require_tool(tool) {
            return false;
        }
    }
    let selenium = run(Command::new("python3").args(["-c", "import selenium"]), b"", Duration::from_secs(30));
    if !selenium.success() {
        skip("the Python selenium package is not installed (pip install selenium)");
        return false;
    }
    true
}

/// The browser script, with its stdout lines arriving on a channel.
struct Driver {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Driver {
    fn start(args: &[String]) -> Driver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard/drive.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            // The browser and driver are Debian's, named by path: selenium
            // must not go looking for (or downloading) others.
            .env("SE_OFFLINE", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python3");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Driver { child, lines, seen: Vec::new(), stderr: Some(stderr) }
    }

    /// Waits for a line starting with `marker`; on failure, says why with
    /// the script's error output.
    fn expect(&mut self, marker: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(marker) {
                        return line;
                    }
                }
                Err(_) => self.fail(&format!("no {marker} within {limit:?}")),
            }
        }
    }

    fn tell(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).expect("write to the browser script");
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self.stderr.take().and_then(|t| t.join().ok()).unwrap_or_default();
        panic!("dashboard in Chromium: {why}\nscript printed: {:?}\nscript errors:\n{stderr}", self.seen);
    }

    fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("wait for the browser script");
        if !status.success() {
            self.fail(&format!("the script exited with {status}"));
        }
    }
}

/// Two ended jobs with something to show in their records: `report` lost
/// its first worker, then sent data, a warning and its result; `exception`
/// ended with WORK_EXCEPTION. Returns their handles.
fn jobs_with_records(port: u16) -> (String, String) {
    let handle_of = |r: Response| match r {
        Response::JobCreated { handle } => String::from_utf8(handle.to_vec()).expect("text handle"),
        other => panic!("submit: {other:?}"),
    };
    let mut client = Gear::connect(port).expect("connect");
    let report = handle_of(client.submit_bg("report", "monthly", "march").expect("submit"));
    let exception = handle_of(client.submit_bg("report", "yearly", "2025").expect("submit"));
    {
        let mut lost = Gear::connect(port).expect("connect");
        lost.send(&Request::SetClientId { id: b("flaky-worker") }).expect("send");
        lost.send(&Request::CanDo { function: b("report") }).expect("send");
        lost.grab().expect("grab").expect("the first job");
        // Dropped here: the attempt ends as worker_lost and the job is
        // queued again.
    }
    let mut worker = Gear::connect(port).expect("connect");
    worker.send(&Request::SetClientId { id: b("steady-worker") }).expect("send");
    worker.send(&Request::CanDo { function: b("report") }).expect("send");
    let mut ended = 0;
    while ended < 2 {
        let Some((handle, _, _)) = worker.grab().expect("grab") else {
            // The lost worker's job is not back yet.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if handle == report.as_bytes() {
            worker.send(&Request::WorkData { handle: handle.clone(), data: b("page 1 of 2") }).expect("send");
            worker.send(&Request::WorkWarning { handle: handle.clone(), data: b("low toner") }).expect("send");
            worker.send(&Request::WorkComplete { handle, data: b("report ready") }).expect("send");
        } else {
            worker.send(&Request::WorkException { handle, data: b("out of paper") }).expect("send");
        }
        ended += 1;
    }
    (report, exception)
}

#[test]
fn the_dashboard_in_chromium_shows_queues_live_throughput_and_fits_a_phone() {
    if !browser_tools() {
        return;
    }
    let (server, web) = server_with_web(&[]);
    gearman_submit(server.port, "resize", 40);
    gearman_submit(server.port, "old", 3);
    let mut client = Gear::connect(server.port).expect("connect");
    let lookup = match client.submit_bg("later", "look-me-up", "x").expect("submit") {
        Response::JobCreated { handle } => String::from_utf8(handle.to_vec()).expect("text handle"),
        other => panic!("submit: {other:?}"),
    };
    let (report, exception) = jobs_with_records(server.port);
    let shots = screenshot_dir("open");
    let mut driver = Driver::start(&[
        format!("--record-handle={report}"),
        format!("--exception-handle={exception}"),
        format!("--url=http://127.0.0.1:{web}/"),
        format!("--shots={}", shots.display()),
        "--function=resize".into(),
        "--queued=40".into(),
        format!("--lookup-handle={lookup}"),
        "--lookup-function=later".into(),
        "--lookup-unique=look-me-up".into(),
        "--drop-function=old".into(),
        // The 40 resize jobs and the report, and the report that ended
        // with an exception, in the history chart (on by default).
        "--history-completed=41".into(),
        "--history-exceptions=1".into(),
    ]);
    driver.expect("QUEUED_OK", Duration::from_secs(90));

    // A worker (Debian's gearman in worker mode) works the 40 jobs, about
    // a sixth of a second each, while the page is open.
    let mut worker =
        Background::spawn(
            "gearman -w",
            Command::new("gearman")
                .args(["-w", "-h", "127.0.0.1", "-p", &server.port.to_string(), "-f", "resize"])
                .args(["-c", "40", "--", "sh", "-c", "sleep 0.1; cat"]),
        );
    driver.tell("WORKER_STARTED");
    driver.expect("LIVE_OK", Duration::from_secs(60));
    driver.expect("HISTORY_OK", Duration::from_secs(120));
    driver.expect("LOOKUP_OK", Duration::from_secs(30));
    driver.expect("RECORDS_OK", Duration::from_secs(60));
    driver.expect("DROP_OK", Duration::from_secs(30));
    driver.expect("MAXQUEUE_OK", Duration::from_secs(30));
    driver.expect("PAUSE_OK", Duration::from_secs(30));
    driver.expect("PHONE_OK", Duration::from_secs(60));
    driver.expect("CONSOLE_OK", Duration::from_secs(10));
    driver.finish();
    worker.stop();

    for name in [
        "desktop-queued.png",
        "desktop-working.png",
        "desktop-live.png",
        "lookup.png",
        "lookup-unique.png",
        "recent.png",
        "record.png",
        "drop-confirmation.png",
        "phone.png",
        "phone-record.png",
        "history-hour.png",
        "desktop-history.png",
        "history-week.png",
        "phone-history.png",
    ] {
        let png = std::fs::read(shots.join(name)).unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{name} is not a real screenshot");
    }
    // What the page showed is what the server holds.
    let functions = curl_json(web, "/api/v1/functions");
    let names: Vec<&str> = functions.as_array().expect("array").iter().filter_map(|f| f["name"].as_str()).collect();
    assert!(!names.contains(&"old"), "the dropped function is still there: {names:?}");
    let resize = functions.as_array().expect("array").iter().find(|f| f["name"] == "resize").expect("resize");
    let later = functions.as_array().expect("array").iter().find(|f| f["name"] == "later").expect("later");
    assert_eq!(later["max_queue"]["normal"], 7, "the limit set in the page: {later}");
    assert_eq!(
        (resize["counters"]["submitted"].as_u64(), resize["counters"]["completed"].as_u64()),
        (Some(40), Some(40))
    );
}

#[test]
fn with_a_token_the_signed_in_page_streams_and_its_actions_carry_it() {
    if !browser_tools() {
        return;
    }
    // Without history as well: the page says so in place of the chart.
    let (server, web) = server_with_web(&["--web-token=s3cret", "--no-history"]);
    gearman_submit(server.port, "old", 2);
    let shots = screenshot_dir("token");
    let mut driver = Driver::start(&[
        format!("--url=http://127.0.0.1:{web}/"),
        format!("--shots={}", shots.display()),
        "--drop-function=old".into(),
        "--token=s3cret".into(),
        "--history-off".into(),
    ]);
    driver.expect("DROP_OK", Duration::from_secs(90));
    driver.expect("HISTORY_OFF_OK", Duration::from_secs(30));
    driver.finish();
    let out = run(
        Command::new("curl").args(["-s", "-u", "ops:s3cret", &format!("http://127.0.0.1:{web}/api/v1/functions")]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.stdout_text().trim(), "[]", "the function was not dropped: {}", out.describe());
}

fn curl_json(web: u16, path: &str) -> Value {
    let out = run(
        Command::new("curl").args(["-s", "-S", "--fail", &format!("http://127.0.0.1:{web}{path}")]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.success(), "curl {path}: {}", out.describe());
    serde_json::from_str(&out.stdout_text()).unwrap_or_else(|e| panic!("{path}: not JSON ({e})"))
}

/// A GET's status and body, whatever the status.
fn curl_status(web: u16, path: &str) -> (u16, String) {
    let out = run(
        Command::new("curl").args(["-s", "-S", "-w", "\n%{http_code}", &format!("http://127.0.0.1:{web}{path}")]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.success(), "curl {path}: {}", out.describe());
    let text = out.stdout_text();
    let (body, code) = text.rsplit_once('\n').expect("a status line");
    (code.trim().parse().expect("a status code"), body.to_string())
}

/// Open descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// The `data:` lines of a server-sent-events text, as JSON.
fn events_in(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {d}")))
        .collect()
}

#[test]
fn the_event_stream_sends_a_snapshot_every_second_and_ends_when_curl_leaves() {
    if !require_tool("curl") {
        return;
    }
    let (server, web) = server_with_web(&[]);
    let mut client = Gear::connect(server.port).expect("connect");
    for i in 0..3 {
        client.submit_bg("resize", &format!("u{i}"), "d").expect("submit");
    }
    let before = open_fds(server.child.id());
    // curl gives up after 3.5 s (exit status 28): the client going away.
    let out = run(
        Command::new("curl").args([
            "-s",
            "-N",
            "-D",
            "-",
            "--max-time",
            "3.5",
            &format!("http://127.0.0.1:{web}/api/v1/events"),
        ]),
        b"",
        Duration::from_secs(20),
    );
    let text = out.stdout_text();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("content-type: text/event-stream"), "{text}");
    assert!(lower.contains("x-accel-buffering: no"), "{text}");
    let events = events_in(&text);
    assert!((2..=5).contains(&events.len()), "{} events in 3.5 s:\n{text}", events.len());
    let first = &events[0];
    assert_eq!(first["queued"], 3, "{first}");
    assert_eq!(first["counters"]["submitted"], 3, "{first}");
    let row = &first["function_rows"][0];
    assert_eq!((row["name"].as_str(), row["queued"].as_u64()), (Some("resize"), Some(3)), "{first}");
    assert!(first["rates"].is_null(), "the first snapshot has no rates yet: {first}");
    assert_eq!(events[1]["rates"]["completed"], 0.0, "{}", events[1]);
    let times: Vec<u64> = events.iter().map(|e| e["time_ms"].as_u64().expect("time_ms")).collect();
    for pair in times.windows(2) {
        // A second apart; a busy machine may delay a tick, never bunch them.
        assert!((800..=2500).contains(&(pair[1] - pair[0])), "snapshots not a second apart: {times:?}");
    }
    // The server let go of the connection: its descriptors are back to
    // what they were (the stream notices at its next write).
    let start = Instant::now();
    while open_fds(server.child.id()) > before {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the stream's connection stayed open: {} descriptors, {before} before",
            open_fds(server.child.id())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads one stream for `for_how_long` over a raw socket; returns the
/// snapshot times it saw.
fn stream_times(web: u16, for_how_long: Duration) -> BTreeSet<u64> {
    let mut stream = TcpStream::connect(("127.0.0.1", web)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    write!(stream, "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{web}\r\nAccept: text/event-stream\r\n\r\n")
        .expect("request");
    let mut text = Vec::new();
    let start = Instant::now();
    let mut chunk = [0u8; 65536];
    while start.elapsed() < for_how_long {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
    }
    // Chunked transfer encoding: event lines are whole within a chunk.
    let text = String::from_utf8_lossy(&text);
    events_in(&text).iter().map(|e| e["time_ms"].as_u64().expect("time_ms")).collect()
}

#[test]
fn many_streams_share_one_snapshot_a_second() {
    let (_server, web) = server_with_web(&[]);
    let readers: Vec<_> =
        (0..4).map(|_| std::thread::spawn(move || stream_times(web, Duration::from_millis(4200)))).collect();
    let seen: Vec<BTreeSet<u64>> = readers.into_iter().map(|r| r.join().expect("reader")).collect();
    // Each stream saw snapshots; all of them the same ones (the same
    // times), except at the edges where one stream opened or left a
    // moment before another.
    let all: BTreeSet<u64> = seen.iter().flatten().copied().collect();
    for times in &seen {
        assert!(times.len() >= 3, "too few snapshots: {seen:?}");
    }
    assert!(all.len() <= 6, "streams got snapshots of their own (one poller takes one a second): {seen:?}");
    let list: Vec<u64> = all.into_iter().collect();
    for pair in list.windows(2) {
        assert!(pair[1] - pair[0] >= 800, "more than one snapshot a second: {list:?}");
    }
}

#[test]
fn the_page_and_its_files_are_served_with_nothing_from_elsewhere() {
    if !require_tool("curl") {
        return;
    }
    let (_server, web) = server_with_web(&[]);
    for (path, kind) in [("/", "text/html"), ("/dashboard.js", "text/javascript"), ("/dashboard.css", "text/css")] {
        let out = run(
            Command::new("curl").args(["-s", "-S", "-D", "-", &format!("http://127.0.0.1:{web}{path}")]),
            b"",
            Duration::from_secs(20),
        );
        assert!(out.success(), "curl {path}: {}", out.describe());
        let text = out.stdout_text();
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
        assert!(head.contains(&format!("content-type: {kind}")), "{path}: {head}");
        assert!(head.contains("content-security-policy: default-src 'none'"), "{path}: {head}");
        assert!(head.contains("x-frame-options: deny"), "{path}: {head}");
        for outside in ["http://", "https://", "//cdn", "@import", "url("] {
            assert!(!body.contains(outside), "{path} names {outside:?}");
        }
        assert!(body.len() > 500, "{path} is empty");
    }
}

#[test]
fn the_page_needs_the_token_when_one_is_set() {
    if !require_tool("curl") {
        return;
    }
    let (_server, web) = server_with_web(&["--web-token=s3cret"]);
    let status = |args: &[&str]| -> String {
        let out = run(
            Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]).args(args),
            b"",
            Duration::from_secs(20),
        );
        out.stdout_text()
    };
    let page = format!("http://127.0.0.1:{web}/");
    let events = format!("http://127.0.0.1:{web}/api/v1/events");
    assert_eq!(status(&[&page]), "401");
    assert_eq!(status(&["--max-time", "1.5", &events]), "401");
    // A browser signs in with Basic authentication (the token as password)
    // and then sends it with every request, the stream included.
    assert_eq!(status(&["-u", "ops:s3cret", &page]), "200");
    let out = run(
        Command::new("curl").args(["-s", "-N", "-u", "ops:s3cret", "--max-time", "1.5", &events]),
        b"",
        Duration::from_secs(20),
    );
    assert!(!events_in(&out.stdout_text()).is_empty(), "{}", out.describe());
}

/// Sends one admin line and returns its one-line answer.
fn admin(port: u16, line: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect for admin");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(stream, "{line}\r\n").expect("send admin line");
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).expect("admin answer");
    answer.trim_end().to_owned()
}

/// Submits a background job and fails one attempt of it with a worker.
fn submit_and_fail_once(port: u16, function: &str) -> String {
    let mut client = Gear::connect(port).expect("connect");
    let handle = match client.submit_bg(function, "", "payload").expect("submit") {
        Response::JobCreated { handle } => String::from_utf8(handle.to_vec()).expect("text handle"),
        other => panic!("submit: {other:?}"),
    };
    let mut worker = Gear::connect(port).expect("connect");
    worker.send(&Request::CanDo { function: b(function) }).expect("send");
    let (grabbed, _, _) = worker.grab().expect("grab").expect("the job");
    assert_eq!(grabbed, handle.as_bytes());
    worker.send(&Request::WorkFail { handle: grabbed }).expect("send");
    handle
}

#[test]
fn the_dashboard_shows_retrying_dead_jobs_and_cron_and_retries_a_dead_job() {
    if !browser_tools() {
        return;
    }
    let (server, web) = server_with_web(&[]);
    let port = server.port;
    assert_eq!(admin(port, r#"policy set doomed {"max_attempts":1,"dead_letter":true}"#), "OK");
    let slow = r#"policy set patient {"max_attempts":3,"backoff":{"kind":"fixed","delay":"1h"}}"#;
    assert_eq!(admin(port, slow), "OK");
    let cron = r#"cron add {"name":"nightly","schedule":"0 3 * * *","function":"report","timezone":"Europe/Berlin"}"#;
    assert_eq!(admin(port, cron), "OK");
    let dead = submit_and_fail_once(port, "doomed");
    let purged = submit_and_fail_once(port, "doomed");
    let retrying = submit_and_fail_once(port, "patient");
    let deadline = Instant::now() + Duration::from_secs(10);
    while curl_json(web, "/api/v1/dead")["records"].as_array().is_none_or(|r| r.len() < 2) {
        assert!(Instant::now() < deadline, "the failed job did not become dead");
        std::thread::sleep(Duration::from_millis(50));
    }
    let shots = screenshot_dir("lists");
    let mut driver = Driver::start(&[
        format!("--url=http://127.0.0.1:{web}/"),
        format!("--shots={}", shots.display()),
        format!("--dead-handle={dead}"),
        format!("--retrying-handle={retrying}"),
        format!("--purge-handle={purged}"),
        "--cron-name=nightly".into(),
    ]);
    driver.expect("LISTS_OK", Duration::from_secs(60));
    driver.expect("RETRY_OK", Duration::from_secs(30));
    driver.expect("PURGE_OK", Duration::from_secs(30));
    // The store agrees: no dead job is left, and the purged one's record is gone.
    let left = curl_json(web, "/api/v1/dead");
    assert_eq!(left["records"].as_array().map(Vec::len), Some(0), "dead jobs after the purge: {left}");
    let (status, _) = curl_status(web, &format!("/api/v1/jobs/{purged}"));
    assert_eq!(status, 404, "the purged dead job's record is gone");
    driver.expect("RUN_NOW_OK", Duration::from_secs(30));
    // Run now queued a job of the entry's function: a worker gets it.
    let mut cron_worker = Gear::connect(port).expect("connect");
    cron_worker.send(&Request::CanDo { function: b("report") }).expect("send");
    let (handle, _, _) = cron_worker.grab().expect("grab").expect("the job Run now queued");
    let running = curl_json(web, &format!("/api/v1/jobs/{}", String::from_utf8_lossy(&handle)));
    assert_eq!(
        (running["function"].as_str(), running["state"].as_str()),
        (Some("report"), Some("running")),
        "{running}"
    );
    cron_worker.send(&Request::WorkComplete { handle, data: b("ran") }).expect("send");
    driver.expect("PHONE_OK", Duration::from_secs(30));
    driver.expect("CONSOLE_OK", Duration::from_secs(10));
    driver.finish();

    // The retried job is queued again under its handle; a worker that now
    // succeeds completes it.
    let job = curl_json(web, &format!("/api/v1/jobs/{dead}"));
    assert_eq!((job["live"].as_bool(), job["state"].as_str()), (Some(true), Some("queued")), "the retried job: {job}");
    let mut worker = Gear::connect(port).expect("connect");
    worker.send(&Request::CanDo { function: b("doomed") }).expect("send");
    let (grabbed, _, data) = worker.grab().expect("grab").expect("the retried job");
    assert_eq!((grabbed.as_ref(), data.as_ref()), (dead.as_bytes(), &b"payload"[..]));
    worker.send(&Request::WorkComplete { handle: grabbed, data: b("done") }).expect("send");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = curl_json(web, &format!("/api/v1/jobs/{dead}"));
        if answer["live"] == false && answer["state"] == "complete" {
            break;
        }
        assert!(Instant::now() < deadline, "the retried job did not complete: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for name in [
        "lists-desktop.png",
        "functions-retrying.png",
        "purge-confirmation.png",
        "purged.png",
        "cron-run.png",
        "lists-phone.png",
    ] {
        let png = std::fs::read(shots.join(name)).unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{name} is not a real screenshot");
    }
}
