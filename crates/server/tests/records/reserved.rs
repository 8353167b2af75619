//! The reserved names `sprocket.*` are the server's own: a worker that
//! tries to register one (raw CAN_DO / CAN_DO_TIMEOUT, or php-gearman's
//! addFunction) gets an ERROR packet and never a job, and `status` does not
//! list it; a background submission to one gets ERROR.

use std::process::Command;
use std::time::Duration;

use sprocket_proto::{Priority, Request, Response, SubmitMode};
use sprocket_testkit::interop_dir;
use sprocket_testkit::process::Background;
use sprocket_testkit::status::parse_status;

use crate::common::{b, Gear};
use crate::support::{builtin_server, job_ended, read_result, End, LIMIT};

fn expect_reserved_error(reply: std::io::Result<Response>, what: &str) {
    match reply {
        Ok(Response::Error { code, text }) => {
            assert_eq!(&code[..], b"RESERVED_FUNCTION", "{what}: {}", String::from_utf8_lossy(&text));
        }
        other => panic!("{what}: expected ERROR, got {other:?}"),
    }
}

fn listed_functions(port: u16) -> Vec<String> {
    parse_status(&sprocket_testkit::admin(port, "status")).into_iter().map(|s| s.name).collect()
}

#[test]
fn a_raw_worker_cannot_register_sprocket_functions() {
    let srv = builtin_server(&[]);
    let port = srv.port;
    let ended = job_ended(port, "plain", "p", &[], &End::Complete(b"mine".to_vec()), "complete");

    let mut w = Gear::connect(port).expect("worker connects");
    expect_reserved_error(w.call(&Request::CanDo { function: b("sprocket.result") }), "CAN_DO sprocket.result");
    expect_reserved_error(
        w.call(&Request::CanDoTimeout { function: b("sprocket.record"), timeout: b("10") }),
        "CAN_DO_TIMEOUT sprocket.record",
    );
    expect_reserved_error(w.call(&Request::CanDo { function: b("sprocket.anything") }), "CAN_DO sprocket.anything");
    // The connection is still served, and registering an ordinary function works.
    w.send(&Request::CanDo { function: b("ordinary") }).expect("CAN_DO ordinary");

    // A client's sprocket.result is answered by the server, never handed out.
    assert_eq!(read_result(port, &ended).result().as_deref(), Some(&b"mine"[..]));
    assert!(matches!(w.call(&Request::GrabJobUniq), Ok(Response::NoJob)));
    let listed = listed_functions(port);
    assert!(!listed.iter().any(|f| f.starts_with("sprocket.")), "status lists {listed:?}");
    assert!(listed.contains(&"ordinary".to_string()), "status lists {listed:?}");

    // A background submission to a reserved function is refused.
    let mut c = Gear::connect(port).expect("client connects");
    let reply = c.call(&Request::SubmitJob {
        mode: SubmitMode { priority: Priority::Normal, background: true },
        function: b("sprocket.result"),
        unique: b("u"),
        data: ended.clone(),
    });
    expect_reserved_error(reply, "SUBMIT_JOB_BG sprocket.result");

    // A reserved name the server does not answer is refused, not queued.
    let reply = c.call(&Request::SubmitJob {
        mode: SubmitMode { priority: Priority::Normal, background: false },
        function: b("sprocket.nosuch"),
        unique: b("u"),
        data: ended,
    });
    match reply {
        Ok(Response::Error { code, .. }) => assert_eq!(&code[..], b"UNKNOWN_FUNCTION"),
        other => panic!("SUBMIT_JOB sprocket.nosuch: expected ERROR, got {other:?}"),
    }
    let listed = listed_functions(port);
    assert!(!listed.iter().any(|f| f.starts_with("sprocket.")), "status lists {listed:?}");
}

#[test]
fn a_php_worker_registering_sprocket_result_gets_an_error_and_no_job() {
    if !sprocket_testkit::require_php_gearman() {
        return;
    }
    let srv = builtin_server(&[]);
    let port = srv.port;
    let ended = job_ended(port, "plain", "p", &[], &End::Complete(b"mine".to_vec()), "complete");
    let mut cmd = Command::new("php");
    cmd.arg(interop_dir().join("php/records_worker.php")).args([
        "127.0.0.1",
        &port.to_string(),
        "sprocket.result",
        "0",
    ]);
    let mut worker = Background::spawn("php worker for sprocket.result", &mut cmd);
    worker.wait_for_line("READY", LIMIT);
    // While it is there (or after it gave up), readers are answered by the
    // server.
    for _ in 0..3 {
        assert_eq!(read_result(port, &ended).result().as_deref(), Some(&b"mine"[..]));
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = worker.output();
    assert!(!output.contains("JOB "), "the worker was given a job:\n{output}");
    // libgearman reports the server's ERROR packet and work() fails.
    assert!(output.contains("worker error") && output.contains("GEARMAN_ERROR"), "the worker saw no ERROR:\n{output}");
    let listed = listed_functions(port);
    assert!(!listed.iter().any(|f| f.starts_with("sprocket.")), "status lists {listed:?}");
    worker.stop();
}

/// A payload that cannot be a job handle (empty, too long, binary) is
/// answered with a failure under a handle of the server's own, and the
/// connection goes on being served.
#[test]
fn sprocket_result_of_payloads_that_are_no_handle_fails_cleanly() {
    let srv = builtin_server(&[]);
    let port = srv.port;
    let long = vec![b'H'; 300];
    for payload in [&b""[..], &long[..], b"H:\x00\xff:1", b"two words"] {
        let replay = crate::support::ask(port, "sprocket.result", payload, true);
        match &replay.packets[..] {
            [Response::WorkException { data, .. }] => assert_eq!(&data[..], b"unknown job", "{payload:?}"),
            other => panic!("sprocket.result {payload:?}: {other:?}"),
        }
        assert!(replay.all_under_created_handle(), "{replay:?}");
        assert!(replay.handle.len() <= 255 && !replay.handle.contains(&0), "{replay:?}");
    }
    // sprocket.records with no filter at all: every function, newest first.
    let a = job_ended(port, "any_a", "a", &[], &End::Complete(b"a".to_vec()), "complete");
    let z = job_ended(port, "any_z", "z", &[], &End::Complete(b"z".to_vec()), "complete");
    let json = crate::support::ask(port, "sprocket.records", b"", false).result().expect("an empty filter is fine");
    let found: serde_json::Value = serde_json::from_slice(&json).expect("a JSON array");
    let handles: Vec<&str> = found.as_array().expect("array").iter().filter_map(|r| r["handle"].as_str()).collect();
    assert_eq!(handles, [String::from_utf8_lossy(&z), String::from_utf8_lossy(&a)]);
}
