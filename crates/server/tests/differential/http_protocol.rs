//! gearmand's HTTP protocol (`-r http`) where gearmand's plugin works: the
//! same curl requests against gearmand 1.1.20 and sprocketd, each with a
//! real `gearman` worker, and the answers compared (status, the
//! `X-Gearman-Command` header, whether a handle came, the body).

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::wait_for_workers;
use sprocket_testkit::{free_port, require_tool, ServerProcess};

/// Runs the requests against one server and describes each answer.
fn transcript(server: &ServerProcess, http: u16) -> Vec<String> {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "HTTP port {http} never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _worker = Background::spawn(
        "gearman -w",
        Command::new("gearman").args([
            "-w",
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-f",
            "dh_rev",
            "--",
            "rev",
        ]),
    );
    wait_for_workers(server.port, "dh_rev", 1);
    let base = format!("http://127.0.0.1:{http}");
    let requests: Vec<Vec<String>> = vec![
        vec!["-X".into(), "POST".into(), "--data-binary".into(), "hello world".into(), format!("{base}/dh_rev")],
        vec!["-X".into(), "PUT".into(), "--data-binary".into(), "abc".into(), format!("{base}/dh_rev")],
        vec![
            "-X".into(),
            "POST".into(),
            "-H".into(),
            "X-Gearman-Unique: dh1".into(),
            "-d".into(),
            "xy".into(),
            format!("{base}/dh_rev"),
        ],
        vec![
            "-X".into(),
            "POST".into(),
            "-H".into(),
            "X-Gearman-Background: true".into(),
            "-d".into(),
            "bg".into(),
            format!("{base}/dh_nobody"),
        ],
        // No function name: both answer 404 (the body is not compared:
        // gearmand's is empty, sprocketd's says what is missing).
        vec!["-X".into(), "POST".into(), "-d".into(), "x".into(), format!("{base}/")],
    ];
    requests.iter().map(|args| describe(args)).collect()
}

fn describe(args: &[String]) -> String {
    let out = run(
        Command::new("curl").args(["-s", "-S", "-D", "-", "-w", "\n%{http_code}"]).args(args),
        b"",
        Duration::from_secs(30),
    );
    assert!(out.success(), "curl {args:?}: {}", out.describe());
    let text = out.stdout_text();
    let (answer, code) = text.rsplit_once('\n').expect("status code line");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(": "))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim_end().to_string())
    };
    // Spelled as sent: some clients look the names up case-sensitively.
    let gearman_headers: Vec<&str> = head
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(n, _)| n)
        .filter(|n| n.to_ascii_lowercase().starts_with("x-gearman-"))
        .collect();
    let command = header("x-gearman-command").unwrap_or_default();
    let handle = header("x-gearman-job-handle").is_some_and(|h| h.starts_with("H:"));
    let body = if code == "404" { "<not compared>" } else { body };
    format!(
        "{} status {code} headers {gearman_headers:?} command {command:?} handle {handle} body {body:?}",
        args.join(" ").replace(&host_and_port(args), "")
    )
}

/// The URL's host and port: they differ between the servers, so the
/// description leaves them out.
fn host_and_port(args: &[String]) -> String {
    args.last().and_then(|url| url.split('/').nth(2)).unwrap_or_default().to_string()
}

#[test]
fn foreground_background_and_missing_function_answer_as_gearmand_does() {
    if !require_tool("curl") || !require_tool("gearman") {
        return;
    }
    let reference = {
        let http = free_port();
        let port = http.to_string();
        let Some(server) = ServerProcess::gearmand(&["-r", "http", "--http-port", &port]) else { return };
        transcript(&server, http)
    };
    let tested = {
        let http = free_port();
        let port = http.to_string();
        let server =
            ServerProcess::sprocketd(Path::new(env!("CARGO_BIN_EXE_sprocketd")), &["-r", "http", "--http-port", &port]);
        transcript(&server, http)
    };
    println!("--- gearmand ---\n{}", reference.join("\n"));
    assert_eq!(tested, reference, "sprocketd and gearmand answer differently");
    // The scenario exercises what it means to: a result, a handle.
    let headers = r#"headers ["X-Gearman-Job-Handle", "X-Gearman-Command"]"#;
    let result = format!(r#"status 200 {headers} command "WORK_COMPLETE" handle true body "dlrow olleh""#);
    assert!(reference[0].ends_with(&result), "{reference:?}");
    let queued = format!(r#"status 200 {headers} command "JOB_CREATED" handle true body """#);
    assert!(reference[3].ends_with(&queued), "{reference:?}");
    assert!(reference[4].contains("status 404"), "{reference:?}");
}
