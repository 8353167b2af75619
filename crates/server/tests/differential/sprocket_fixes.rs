//! Where Sprocket deliberately differs from gearmand 1.1.20: it fixes bugs
//! that real clients trip over (gearman-reference.md §8.2 and §11). Each test asserts
//! Sprocket's behaviour; run with `SPROCKET_TEST_SERVER=gearmand`, the same
//! scenario instead asserts gearmand's buggy behaviour, which documents the
//! difference and proves the scenario really exercises it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::{function_status, wait_for_workers};
use sprocket_testkit::wire::{escape, kind, Conn, ReadEnd};
use sprocket_testkit::{interop_dir, require_tool, server_under_test_name, ServerProcess};

fn server() -> Option<ServerProcess> {
    ServerProcess::under_test(Path::new(env!("CARGO_BIN_EXE_sprocketd")), &[])
}

fn is_gearmand() -> bool {
    server_under_test_name() == "gearmand"
}

/// Submits a foreground job of `function` on `client` and has `worker`
/// grab it; returns the handle.
fn submit_and_grab(client: &mut Conn, worker: &mut Conn, function: &[u8]) -> Vec<u8> {
    worker.send_req(kind::CAN_DO, &[function]);
    client.send_req(kind::SUBMIT_JOB, &[function, b"", b"payload"]);
    let created = client.expect_packet("JOB_CREATED");
    assert_eq!(created.kind, kind::JOB_CREATED, "{created:?}");
    worker.send_req(kind::GRAB_JOB, &[]);
    let assign = worker.expect_packet("JOB_ASSIGN");
    assert_eq!(assign.kind, kind::JOB_ASSIGN, "{assign:?}");
    assert_eq!(assign.fields()[0], created.body);
    created.body
}

/// gearman-reference.md §8.2 (WORK_FAIL made from WORK_EXCEPTION) and §11:
/// a client that did not ask for exceptions gets WORK_FAIL for a
/// WORK_EXCEPTION. gearmand appends a NUL to the handle, so libgearman does
/// not recognise it and waits forever; Sprocket sends the bare handle.
#[test]
fn fix_work_fail_from_exception_has_no_trailing_nul() {
    let Some(srv) = server() else { return };
    let mut client = Conn::connect(srv.port);
    let mut worker = Conn::connect(srv.port);
    let h = submit_and_grab(&mut client, &mut worker, b"fx_exc");
    worker.send_req(kind::WORK_EXCEPTION, &[&h, b"boom"]);
    let got = client.expect_packet("WORK_FAIL");
    assert_eq!(got.kind, kind::WORK_FAIL, "{got:?}");
    let mut with_nul = h.clone();
    with_nul.push(0);
    if is_gearmand() {
        assert_eq!(got.body, with_nul, "gearmand's WORK_FAIL carries handle + NUL");
    } else {
        assert_eq!(got.body, h, "WORK_FAIL body is exactly the handle: {}", escape(&got.body));
    }
}

/// The same through libgearman: `gearman -f fn x` against a worker that
/// throws gets "Job failed" and exit 1 from Sprocket; with gearmand it hangs.
#[test]
fn fix_gearman_cli_sees_exception_as_failure() {
    if !require_tool("gearman") {
        return;
    }
    let Some(srv) = server() else { return };
    let port = srv.port;
    let worker_thread = std::thread::spawn(move || {
        let mut w = Conn::connect(port);
        w.send_req(kind::CAN_DO, &[b"fx_cli_exc"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            w.send_req(kind::GRAB_JOB, &[]);
            match w.read_packet(Duration::from_secs(2)) {
                Ok(p) if p.kind == kind::JOB_ASSIGN => {
                    let h = p.fields()[0].clone();
                    w.send_req(kind::WORK_EXCEPTION, &[&h, b"it broke"]);
                    return true;
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => return false,
            }
        }
        false
    });
    let mut cmd = Command::new("gearman");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-f", "fx_cli_exc", "x"]);
    let limit = if is_gearmand() { Duration::from_secs(3) } else { Duration::from_secs(15) };
    let out = run(&mut cmd, b"", limit);
    assert!(worker_thread.join().unwrap_or(false), "the raw worker got the job");
    if is_gearmand() {
        assert!(out.timed_out, "gearmand: the gearman client waits forever: {}", out.describe());
    } else {
        assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.describe());
        assert!(out.stderr_text().contains("Job failed"), "{}", out.describe());
    }
}

/// §11: Perl Gearman::Worker sends WORK_COMPLETE with the handle alone (no
/// NUL separator) for a false result. Sprocket takes it as an empty result;
/// gearmand waits for the missing separator.
#[test]
fn fix_work_complete_without_separator_is_an_empty_result() {
    let Some(srv) = server() else { return };
    let mut client = Conn::connect(srv.port);
    let mut worker = Conn::connect(srv.port);
    let h = submit_and_grab(&mut client, &mut worker, b"fx_nosep");
    worker.send_req(kind::WORK_COMPLETE, &[&h]);
    if is_gearmand() {
        // gearmand looks for the missing NUL in bytes that have not come
        // yet: the client hears nothing (with the Perl worker, whose next
        // packet supplies a NUL, it then drops the connection).
        let heard = client.nothing_for(Duration::from_secs(2));
        assert_eq!(heard, Ok(Vec::new()), "gearmand sends the client nothing");
        return;
    }
    let got = client.expect_packet("WORK_COMPLETE");
    assert_eq!(got.kind, kind::WORK_COMPLETE, "{got:?}");
    let mut want = h.clone();
    want.push(0);
    assert_eq!(got.body, want, "an empty result: handle + NUL: {}", escape(&got.body));
    // The worker is still connected and served.
    worker.send_req(kind::ECHO_REQ, &[b"alive"]);
    assert_eq!(worker.expect_packet("ECHO_RES").body, b"alive");
}

fn perl_scenario(prefix: &str, scenario: &str) {
    if !sprocket_testkit::require_perl_gearman() {
        return;
    }
    let Some(srv) = server() else { return };
    let mut cmd = Command::new("perl");
    cmd.arg(interop_dir().join("perl/worker.pl")).args([&format!("127.0.0.1:{}", srv.port), prefix]);
    let worker = Background::spawn("perl worker.pl", &mut cmd);
    wait_for_workers(srv.port, &format!("{prefix}_rev"), 1);
    let mut cmd = Command::new("perl");
    cmd.arg(interop_dir().join("perl/client.pl")).args([&format!("127.0.0.1:{}", srv.port), prefix, scenario]);
    let limit = if is_gearmand() { Duration::from_secs(8) } else { Duration::from_secs(30) };
    let out = run(&mut cmd, b"", limit);
    if is_gearmand() {
        assert!(!out.success(), "gearmand was expected to break the Perl {scenario} scenario: {}", out.describe());
    } else {
        assert!(
            out.success() && out.stdout_text().contains("PASS"),
            "Perl {scenario}: {}\n--- worker ---\n{}",
            out.describe(),
            worker.output()
        );
    }
}

/// Real Perl worker returning '' and '0': the client gets its (empty) result
/// and the worker keeps working. With gearmand the job loops forever.
#[test]
fn fix_perl_worker_false_result() {
    perl_scenario("pfalse", "false_values");
}

/// A Perl worker that dies sends WORK_EXCEPTION, then WORK_FAIL: the Perl
/// client (no exceptions) gets on_fail. gearmand's NUL-suffixed WORK_FAIL
/// makes Gearman::Client croak "unknown handle".
#[test]
fn fix_perl_worker_die_fails_the_task() {
    perl_scenario("pdie", "fail");
}

/// gearman-reference.md §8.2 (epoch jobs and sleeping workers) and §11: an
/// epoch job wakes a sleeping worker when its time comes.
/// gearmand only sends one NOOP at submission and never again.
#[test]
fn fix_epoch_job_wakes_sleeping_worker() {
    let Some(srv) = server() else { return };
    let mut worker = Conn::connect(srv.port);
    worker.send_req(kind::CAN_DO, &[b"fx_epoch"]);
    worker.send_req(kind::PRE_SLEEP, &[]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let when = (now + 2).to_string();
    let mut client = Conn::connect(srv.port);
    let submitted = Instant::now();
    client.send_req(kind::SUBMIT_JOB_EPOCH, &[b"fx_epoch", b"ep1", when.as_bytes(), b"later"]);
    assert_eq!(client.expect_packet("JOB_CREATED").kind, kind::JOB_CREATED);

    // A well-behaved worker: sleep until NOOP, then grab; NO_JOB -> sleep.
    let deadline = submitted + Duration::from_secs(6);
    let mut assigned = None;
    while Instant::now() < deadline {
        match worker.read_packet(deadline.saturating_duration_since(Instant::now())) {
            Ok(p) if p.kind == kind::NOOP => worker.send_req(kind::GRAB_JOB, &[]),
            Ok(p) if p.kind == kind::NO_JOB => worker.send_req(kind::PRE_SLEEP, &[]),
            Ok(p) if p.kind == kind::JOB_ASSIGN => {
                assigned = Some((submitted.elapsed(), p));
                break;
            }
            Ok(p) => panic!("unexpected {p:?}"),
            Err(ReadEnd::Timeout) => break,
            Err(ReadEnd::Closed) => panic!("server closed the worker"),
        }
    }
    if is_gearmand() {
        assert!(assigned.is_none(), "gearmand never wakes the sleeping worker: {assigned:?}");
        return;
    }
    let (after, p) = assigned.expect("the sleeping worker was woken and got the epoch job within 6 s");
    assert_eq!(p.fields()[2], b"later");
    assert!(after >= Duration::from_millis(900), "not run before its time (after {after:?})");
}

/// gearman-reference.md §8.2 (`create function` and a bare LF): `create
/// function abc` with a bare LF creates `abc`; gearmand drops the last
/// character (it assumes CRLF) and creates `ab`.
#[test]
fn fix_create_function_with_bare_lf_keeps_last_char() {
    let Some(srv) = server() else { return };
    let mut admin = Conn::connect(srv.port);
    assert_eq!(admin.admin_raw(b"create function fxabc\n"), b"OK\r\n");
    let status = srv.admin("status");
    if is_gearmand() {
        assert!(status.contains("fxab\t0\t0\t0\n"), "{status}");
    } else {
        assert!(status.contains("fxabc\t0\t0\t0\n"), "{status}");
    }
}

/// SUBMIT_JOB_SCHED (cron fields) is accepted and the job is held for its
/// time; gearmand 1.1 refuses it with INVALID_COMMAND.
#[test]
fn fix_submit_job_sched_accepted() {
    let Some(srv) = server() else { return };
    let mut client = Conn::connect(srv.port);
    client.send_req(kind::SUBMIT_JOB_SCHED, &[b"fx_sched", b"s1", b"*", b"*", b"*", b"*", b"*", b"cron data"]);
    let got = client.expect_packet("reply to SUBMIT_JOB_SCHED");
    if is_gearmand() {
        assert_eq!(got.kind, kind::ERROR);
        assert_eq!(got.body, b"INVALID_COMMAND\0Command not expected");
        return;
    }
    assert_eq!(got.kind, kind::JOB_CREATED, "{got:?}");
    let st = function_status(srv.port, "fx_sched").expect("fx_sched listed");
    assert_eq!(st.total, 1, "{st:?}");
}

/// Admin `shutdown` (removed from gearmand in 1.1.15) is implemented:
/// `OK\r\n`, then the server exits.
#[test]
fn fix_admin_shutdown_implemented() {
    for line in [&b"shutdown\r\n"[..], b"shutdown graceful\r\n"] {
        let Some(mut srv) = server() else { return };
        let mut admin = Conn::connect(srv.port);
        let reply = admin.admin_raw(line);
        if is_gearmand() {
            assert_eq!(reply, b"ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n");
            continue;
        }
        assert_eq!(reply, b"OK\r\n", "{}", escape(line));
        let start = Instant::now();
        let mut exited = None;
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = srv.child.try_wait() {
                exited = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = exited.unwrap_or_else(|| panic!("sprocketd still running 10 s after {}", escape(line)));
        assert!(status.success(), "exit status after {}: {status}", escape(line));
    }
}

/// gearman-reference.md §8.2 (counts of abandoned jobs): a cancelled queued
/// job. gearmand keeps listing it (ignored, not persisted) and counting it
/// until some worker's grab reaps it; Sprocket removes it at once, so
/// listings and limits see the truth.
#[test]
fn fix_cancelled_job_is_removed_at_once() {
    let Some(srv) = server() else { return };
    let mut client = Conn::connect(srv.port);
    client.send_req(kind::SUBMIT_JOB_LOW_BG, &[b"fx_cancel", b"c1", b"payload"]);
    let created = client.expect_packet("JOB_CREATED");
    let handle = String::from_utf8_lossy(&created.body).into_owned();
    assert_eq!(srv.admin(&format!("cancel job {handle}")), "OK\r\n");
    let listing = srv.admin("show jobs");
    let status = srv.admin("prioritystatus");
    if is_gearmand() {
        assert!(listing.contains(&format!("{handle}\t0\t1\t0\n")), "{listing}");
        assert!(status.contains("fx_cancel\t0\t0\t1\t0\n"), "{status}");
    } else {
        assert!(!listing.contains(&handle), "{listing}");
        assert!(status.contains("fx_cancel\t0\t0\t0\t0\n"), "{status}");
    }
}

/// A background submission with the unique of a queued foreground job
/// joins it and gets its handle. When the foreground client then leaves,
/// gearmand keeps counting the job in `status` but never hands it out;
/// Sprocket runs it, since its JOB_CREATED promised a background job.
#[test]
fn fix_background_submit_joining_a_foreground_job_still_runs() {
    let Some(srv) = server() else { return };
    let mut fg = Conn::connect(srv.port);
    let mut bg = Conn::connect(srv.port);
    fg.send_req(kind::SUBMIT_JOB, &[b"fx_join", b"j1", b"payload"]);
    let first = fg.expect_packet("JOB_CREATED");
    bg.send_req(kind::SUBMIT_JOB_BG, &[b"fx_join", b"j1", b"payload"]);
    let joined = bg.expect_packet("JOB_CREATED");
    assert_eq!((joined.kind, &joined.body), (kind::JOB_CREATED, &first.body), "joined the same job");
    drop(fg);
    // Let the server see the foreground client go before a worker asks.
    std::thread::sleep(Duration::from_millis(300));
    let status = srv.admin("status");
    let mut worker = Conn::connect(srv.port);
    worker.send_req(kind::CAN_DO, &[b"fx_join"]);
    worker.send_req(kind::GRAB_JOB, &[]);
    let got = worker.expect_packet("JOB_ASSIGN or NO_JOB");
    assert!(status.contains("fx_join\t1\t0\t0\n"), "queued: {status}");
    if is_gearmand() {
        assert_eq!(got.kind, kind::NO_JOB, "counted in status but not handed out: {got:?}");
    } else {
        assert_eq!(got.kind, kind::JOB_ASSIGN, "{got:?}");
        assert_eq!(got.fields()[0], first.body);
    }
}
