//! Differential tests of the binary protocol: the same packets sent to the
//! server under test and to gearmand 1.1.20, and everything the clients and
//! workers receive compared (after the normalisations documented in
//! `sprocket_testkit::differential`). Behaviour where Sprocket deliberately
//! differs from gearmand is in sprocket_fixes.rs instead.

use std::path::Path;

use sprocket_testkit::differential::{assert_has, compare, Recorder};
use sprocket_testkit::wire::{kind, packet, Conn, RES};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sprocketd"))
}

fn handle_of(p: Option<sprocket_testkit::wire::Packet>) -> Vec<u8> {
    p.map(|p| p.body).unwrap_or_default()
}

/// ECHO, OPTION_REQ, status of unknown jobs, the error codes and texts of
/// gearman-reference.md §1.4, and the types a server must refuse as requests.
fn errors_scenario(port: u16, rec: &mut Recorder) {
    let mut c = Conn::connect(port);
    rec.note("echo");
    c.send_req(kind::ECHO_REQ, &[b"hello"]);
    rec.read("c", &mut c);
    c.send_req(kind::ECHO_REQ, &[]);
    rec.read("c", &mut c);
    c.send_req(kind::ECHO_REQ, &[b"a", b"b", b""]);
    rec.read("c", &mut c);
    let big = vec![b'x'; 100_000];
    c.send_req(kind::ECHO_REQ, &[&big]);
    let got = c.read_packet(std::time::Duration::from_secs(5));
    rec.lines.push(format!("big echo intact: {}", got.map(|p| p.body == big).unwrap_or(false)));

    rec.note("options");
    c.send_req(kind::OPTION_REQ, &[b"exceptions"]);
    rec.read("c", &mut c);
    c.send_req(kind::OPTION_REQ, &[b"EXCEPTIONS"]);
    rec.read("c", &mut c);
    c.send_req(kind::OPTION_REQ, &[b"foo"]);
    rec.read("c", &mut c);
    c.send_req(kind::OPTION_REQ, &[&[b'e'; 70]]);
    rec.read("c", &mut c);

    rec.note("status of unknown jobs");
    c.send_req(kind::GET_STATUS, &[b"H:nosuchhost:42"]);
    rec.read("c", &mut c);
    c.send_req(kind::GET_STATUS, &[b""]);
    rec.read("c", &mut c);
    c.send_req(kind::GET_STATUS_UNIQUE, &[b"no-such-unique"]);
    rec.read("c", &mut c);

    rec.note("response-only and unused types sent as requests");
    // Each with well-formed fields: a packet missing its NUL separators
    // makes gearmand read on into the next packet (gearman-reference.md §1.2).
    let filled: [(u32, &[&[u8]]); 13] = [
        (5, &[]),
        (kind::NOOP, &[]),
        (kind::JOB_CREATED, &[b"H:x:1"]),
        (kind::NO_JOB, &[]),
        (kind::JOB_ASSIGN, &[b"H:x:1", b"f", b"d"]),
        (kind::ECHO_RES, &[b"e"]),
        (kind::ERROR, &[b"CODE", b"text"]),
        (kind::STATUS_RES, &[b"H:x:1", b"1", b"0", b"0", b"0"]),
        (kind::ALL_YOURS, &[]),
        (kind::OPTION_RES, &[b"exceptions"]),
        (kind::JOB_ASSIGN_UNIQ, &[b"H:x:1", b"f", b"u", b"d"]),
        (kind::JOB_ASSIGN_ALL, &[b"H:x:1", b"f", b"u", b"r", b"d"]),
        (kind::STATUS_RES_UNIQUE, &[b"u", b"1", b"0", b"0", b"0", b"0"]),
    ];
    for (t, args) in filled {
        c.send_req(t, args);
        rec.note(&format!("type {t}"));
        rec.read("c", &mut c);
    }

    rec.note("RES magic with a valid type: error, connection stays open");
    c.send(&packet(RES, kind::ECHO_REQ, &[b"x"])).expect("write");
    rec.read("c", &mut c);
    c.send_req(kind::ECHO_REQ, &[b"still open"]);
    rec.read("c", &mut c);

    rec.note("unique too large");
    c.send_req(kind::SUBMIT_JOB_BG, &[b"err_fn", &[b'u'; 65], b"x"]);
    rec.read("c", &mut c);
    c.send_req(kind::SUBMIT_JOB_BG, &[b"err_fn", &[b'u'; 64], b"x"]);
    rec.read("c", &mut c);
    c.send_req(kind::SUBMIT_JOB_BG, &[b"err_fn", &[b'v'; 63], b"x"]);
    rec.read("c", &mut c);

    rec.note("work results for a job this connection does not hold");
    let h: &[u8] = b"H:nosuchhost:7";
    c.send_req(kind::WORK_STATUS, &[h, b"1", b"2"]);
    rec.read("c", &mut c);
    c.send_req(kind::WORK_COMPLETE, &[h, b"r"]);
    rec.read("c", &mut c);
    c.send_req(kind::WORK_FAIL, &[h]);
    rec.read("c", &mut c);
    c.send_req(kind::WORK_DATA, &[h, b"d"]);
    rec.read("c", &mut c);
    c.send_req(kind::WORK_WARNING, &[h, b"w"]);
    rec.read("c", &mut c);
    c.send_req(kind::WORK_EXCEPTION, &[h, b"e"]);
    rec.read("c", &mut c);
    c.send_req(kind::WORK_FAIL, &[&[b'H'; 70]]);
    rec.read("c", &mut c);
    // A queued job exists (handle 2 above) but is not assigned to us.
    c.send_req(kind::WORK_COMPLETE, &[b"H:placeholder:2", b"r"]);
    rec.read("c", &mut c);

    rec.note("requests with no reply");
    c.send_req(kind::SET_CLIENT_ID, &[b"some client id"]);
    c.send_req(kind::CAN_DO, &[b"err_fn"]);
    c.send_req(kind::CANT_DO, &[b"err_fn"]);
    c.send_req(kind::CAN_DO_TIMEOUT, &[b"err_fn", b"5000"]);
    c.send_req(kind::RESET_ABILITIES, &[]);
    rec.sync("c", &mut c);
}

/// GRAB_JOB / GRAB_JOB_UNIQ / GRAB_JOB_ALL reply types, NO_JOB, PRE_SLEEP
/// and NOOP.
fn grab_scenario(port: u16, rec: &mut Recorder) {
    let mut w = Conn::connect(port);
    let mut c = Conn::connect(port);
    w.send_req(kind::CAN_DO, &[b"grab_fn"]);
    w.send_req(kind::GRAB_JOB, &[]);
    rec.read("w", &mut w);
    rec.note("pre-sleep with nothing queued: no reply until work arrives");
    w.send_req(kind::PRE_SLEEP, &[]);
    let quiet = w.nothing_for(std::time::Duration::from_millis(200));
    rec.lines.push(format!("w quiet: {:?}", quiet.map(|b| b.len())));
    for (u, d) in [(&b"g1"[..], &b"one"[..]), (b"g2", b"two"), (b"g3", b"three")] {
        c.send_req(kind::SUBMIT_JOB_BG, &[b"grab_fn", u, d]);
        rec.read("c", &mut c);
    }
    rec.note("one NOOP for the first job only");
    rec.read("w", &mut w);
    let quiet = w.nothing_for(std::time::Duration::from_millis(200));
    rec.lines.push(format!("w quiet: {:?}", quiet.map(|b| b.len())));
    w.send_req(kind::GRAB_JOB, &[]);
    let h1 = handle_of(rec.read("w", &mut w));
    w.send_req(kind::GRAB_JOB_UNIQ, &[]);
    let h2 = handle_of(rec.read("w", &mut w));
    rec.note("pre-sleep with work waiting: immediate NOOP");
    w.send_req(kind::PRE_SLEEP, &[]);
    rec.read("w", &mut w);
    w.send_req(kind::GRAB_JOB_ALL, &[]);
    let h3 = handle_of(rec.read("w", &mut w));
    w.send_req(kind::GRAB_JOB_ALL, &[]);
    rec.read("w", &mut w);
    for h in [h1, h2, h3] {
        let handle = h.split(|b| *b == 0).next().unwrap_or_default().to_vec();
        w.send_req(kind::WORK_COMPLETE, &[&handle, b"done"]);
    }
    rec.sync("w", &mut w);
    c.send_req(kind::GET_STATUS, &[b"H:x:1"]);
    rec.read("c", &mut c);
}

/// Priorities within one function, FIFO within a level, and (1.1.x) the
/// newest registered function first.
fn priority_scenario(port: u16, rec: &mut Recorder) {
    let mut c = Conn::connect(port);
    let subs: [(u32, &[u8], &[u8]); 7] = [
        (kind::SUBMIT_JOB_LOW_BG, b"prio_a", b"low1"),
        (kind::SUBMIT_JOB_BG, b"prio_a", b"normal1"),
        (kind::SUBMIT_JOB_HIGH_BG, b"prio_a", b"high1"),
        (kind::SUBMIT_JOB_LOW_BG, b"prio_a", b"low2"),
        (kind::SUBMIT_JOB_HIGH_BG, b"prio_a", b"high2"),
        (kind::SUBMIT_JOB_BG, b"prio_a", b"normal2"),
        (kind::SUBMIT_JOB_LOW_BG, b"prio_b", b"b_low"),
    ];
    for (i, (t, f, d)) in subs.iter().enumerate() {
        c.send_req(*t, &[f, format!("p{i}").as_bytes(), d]);
        rec.read("c", &mut c);
    }
    let mut w = Conn::connect(port);
    w.send_req(kind::CAN_DO, &[b"prio_a"]);
    w.send_req(kind::CAN_DO, &[b"prio_b"]);
    for _ in 0..8 {
        w.send_req(kind::GRAB_JOB_UNIQ, &[]);
        if let Some(p) = rec.read("w", &mut w) {
            if p.kind == kind::JOB_ASSIGN_UNIQ {
                let h = p.fields()[0].clone();
                w.send_req(kind::WORK_COMPLETE, &[&h, b""]);
            }
        }
    }
    let mut a = Conn::connect(port);
    rec.admin(&mut a, "status\r\n");
}

/// Coalescing by unique: one run, every attached foreground client gets
/// every WORK_* packet; `-` matches identical data; empty never coalesces.
fn coalesce_scenario(port: u16, rec: &mut Recorder) {
    let mut c1 = Conn::connect(port);
    let mut c2 = Conn::connect(port);
    let mut c3 = Conn::connect(port);
    c1.send_req(kind::SUBMIT_JOB, &[b"co_fn", b"same", b"first"]);
    rec.read("c1", &mut c1);
    c2.send_req(kind::SUBMIT_JOB_HIGH, &[b"co_fn", b"same", b"second"]);
    rec.read("c2", &mut c2);
    c3.send_req(kind::SUBMIT_JOB_BG, &[b"co_fn", b"same", b"third"]);
    rec.read("c3", &mut c3);
    rec.note("dash unique: identical data coalesces, different data does not");
    c3.send_req(kind::SUBMIT_JOB_BG, &[b"co_fn", b"-", b"dd"]);
    rec.read("c3", &mut c3);
    c3.send_req(kind::SUBMIT_JOB_BG, &[b"co_fn", b"-", b"dd"]);
    rec.read("c3", &mut c3);
    c3.send_req(kind::SUBMIT_JOB_BG, &[b"co_fn", b"-", b"other"]);
    rec.read("c3", &mut c3);
    rec.note("empty unique never coalesces");
    c3.send_req(kind::SUBMIT_JOB_BG, &[b"co_fn", b"", b"dd"]);
    rec.read("c3", &mut c3);
    c3.send_req(kind::SUBMIT_JOB_BG, &[b"co_fn", b"", b"dd"]);
    rec.read("c3", &mut c3);
    rec.note("same unique, other function: separate job");
    c3.send_req(kind::SUBMIT_JOB_BG, &[b"co_other", b"same", b"x"]);
    rec.read("c3", &mut c3);

    let mut w = Conn::connect(port);
    w.send_req(kind::CAN_DO, &[b"co_fn"]);
    w.send_req(kind::GRAB_JOB_UNIQ, &[]);
    let assign = rec.read("w", &mut w);
    let h = assign.map(|p| p.fields()[0].clone()).unwrap_or_default();
    c3.send_req(kind::GET_STATUS, &[&h]);
    rec.read("c3", &mut c3);
    // (No GET_STATUS_UNIQUE here: "same" exists in two functions and which
    // one answers is hash order, gearman-reference.md §8.2. See status_unique_scenario.)
    w.send_req(kind::WORK_DATA, &[&h, b"chunk\0with nul"]);
    w.send_req(kind::WORK_WARNING, &[&h, b"careful"]);
    w.send_req(kind::WORK_STATUS, &[&h, b"1", b"2"]);
    rec.sync("w", &mut w);
    c3.send_req(kind::GET_STATUS, &[&h]);
    rec.read("c3", &mut c3);
    w.send_req(kind::WORK_COMPLETE, &[&h, b"result"]);
    rec.sync("w", &mut w);
    for (name, c) in [("c1", &mut c1), ("c2", &mut c2)] {
        for _ in 0..4 {
            rec.read(name, c);
        }
    }
    rec.sync("c3", &mut c3);
    c3.send_req(kind::GET_STATUS, &[&h]);
    rec.read("c3", &mut c3);
    let mut a = Conn::connect(port);
    rec.admin(&mut a, "status\r\n");
}

/// One connection submits the same unique twice (a task set with a
/// duplicate): both submissions get the handle, and every WORK_* packet
/// arrives once per submission, so the client's second task completes too.
fn same_connection_coalesce_scenario(port: u16, rec: &mut Recorder) {
    let mut c = Conn::connect(port);
    c.send_req(kind::SUBMIT_JOB, &[b"dup_fn", b"twice", b"a"]);
    rec.read("c", &mut c);
    c.send_req(kind::SUBMIT_JOB, &[b"dup_fn", b"twice", b"b"]);
    rec.read("c", &mut c);
    let mut w = Conn::connect(port);
    w.send_req(kind::CAN_DO, &[b"dup_fn"]);
    w.send_req(kind::GRAB_JOB, &[]);
    let h = handle_of(rec.read("w", &mut w)).split(|&b| b == 0).next().unwrap_or_default().to_vec();
    w.send_req(kind::WORK_STATUS, &[&h, b"1", b"2"]);
    w.send_req(kind::WORK_DATA, &[&h, b"dd"]);
    w.send_req(kind::WORK_COMPLETE, &[&h, b"res"]);
    rec.sync("w", &mut w);
    for _ in 0..6 {
        rec.read("c", &mut c);
    }
    rec.sync("c", &mut c);
}

/// Exceptions to a client that asked for them; WORK_FAIL forwarded; a job
/// whose worker disconnects or sends CANT_DO is requeued (status reset,
/// client told nothing) and runs again.
fn results_and_requeue_scenario(port: u16, rec: &mut Recorder) {
    let mut c = Conn::connect(port);
    c.send_req(kind::OPTION_REQ, &[b"exceptions"]);
    rec.read("c", &mut c);
    c.send_req(kind::SUBMIT_JOB, &[b"rq_fn", b"e1", b"exc"]);
    rec.read("c", &mut c);
    c.send_req(kind::SUBMIT_JOB_LOW, &[b"rq_fn", b"f1", b"fail"]);
    rec.read("c", &mut c);
    c.send_req(kind::SUBMIT_JOB_LOW, &[b"rq_fn", b"r1", b"requeue"]);
    rec.read("c", &mut c);

    let mut w = Conn::connect(port);
    w.send_req(kind::CAN_DO, &[b"rq_fn"]);
    w.send_req(kind::GRAB_JOB, &[]);
    let h = rec.read("w", &mut w).map(|p| p.fields()[0].clone()).unwrap_or_default();
    w.send_req(kind::WORK_EXCEPTION, &[&h, b"boom"]);
    rec.sync("w", &mut w);
    rec.read("c", &mut c);
    rec.note("a result after the exception ended the job");
    w.send_req(kind::WORK_FAIL, &[&h]);
    rec.read("w", &mut w);

    w.send_req(kind::GRAB_JOB, &[]);
    let h = rec.read("w", &mut w).map(|p| p.fields()[0].clone()).unwrap_or_default();
    w.send_req(kind::WORK_FAIL, &[&h]);
    rec.sync("w", &mut w);
    rec.read("c", &mut c);

    rec.note("worker disconnects while holding a job");
    w.send_req(kind::GRAB_JOB, &[]);
    let h = rec.read("w", &mut w).map(|p| p.fields()[0].clone()).unwrap_or_default();
    w.send_req(kind::WORK_STATUS, &[&h, b"3", b"4"]);
    rec.sync("w", &mut w);
    rec.read("c", &mut c);
    drop(w);
    wait_not_running(&mut c, &h);
    c.send_req(kind::GET_STATUS, &[&h]);
    rec.read("c", &mut c);

    rec.note("a second worker gets it; CANT_DO requeues it again");
    let mut w2 = Conn::connect(port);
    w2.send_req(kind::CAN_DO, &[b"rq_fn"]);
    w2.send_req(kind::GRAB_JOB, &[]);
    rec.read("w2", &mut w2);
    w2.send_req(kind::CANT_DO, &[b"rq_fn"]);
    rec.sync("w2", &mut w2);
    let mut a = Conn::connect(port);
    rec.admin(&mut a, "show jobs\r\n");
    w2.send_req(kind::CAN_DO, &[b"rq_fn"]);
    w2.send_req(kind::GRAB_JOB, &[]);
    rec.read("w2", &mut w2);
    w2.send_req(kind::WORK_COMPLETE, &[&h, b"finally"]);
    rec.sync("w2", &mut w2);
    rec.read("c", &mut c);
    rec.admin(&mut a, "status\r\n");
}

/// GET_STATUS_UNIQUE and GET_STATUS of a queued, then running job with two
/// attached clients, and after it ends.
fn status_unique_scenario(port: u16, rec: &mut Recorder) {
    let mut c1 = Conn::connect(port);
    let mut c2 = Conn::connect(port);
    let mut q = Conn::connect(port);
    c1.send_req(kind::SUBMIT_JOB, &[b"su_fn", b"su1", b"x"]);
    let h = handle_of(rec.read("c1", &mut c1));
    c2.send_req(kind::SUBMIT_JOB, &[b"su_fn", b"su1", b"x"]);
    rec.read("c2", &mut c2);
    q.send_req(kind::GET_STATUS_UNIQUE, &[b"su1"]);
    rec.read("q", &mut q);
    let mut w = Conn::connect(port);
    w.send_req(kind::CAN_DO, &[b"su_fn"]);
    w.send_req(kind::GRAB_JOB, &[]);
    rec.read("w", &mut w);
    w.send_req(kind::WORK_STATUS, &[&h, b"3", b"7"]);
    rec.read("c1", &mut c1);
    rec.read("c2", &mut c2);
    q.send_req(kind::GET_STATUS_UNIQUE, &[b"su1"]);
    rec.read("q", &mut q);
    q.send_req(kind::GET_STATUS, &[&h]);
    rec.read("q", &mut q);
    w.send_req(kind::WORK_COMPLETE, &[&h, b"r"]);
    rec.read("c1", &mut c1);
    rec.read("c2", &mut c2);
    q.send_req(kind::GET_STATUS_UNIQUE, &[b"su1"]);
    rec.read("q", &mut q);
    q.send_req(kind::GET_STATUS_UNIQUE, &[b""]);
    rec.read("q", &mut q);
}

#[test]
fn binary_status_unique_match_gearmand() {
    let Some(t) = compare(bin(), &[], &status_unique_scenario) else { return };
    assert_has(&t, r"q <- RES 42 su1\01\01\03\07\02");
}

/// Polls GET_STATUS (unrecorded) until the job is no longer running: the
/// server notices a closed worker asynchronously.
fn wait_not_running(c: &mut Conn, handle: &[u8]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        c.send_req(kind::GET_STATUS, &[handle]);
        match c.read_packet(std::time::Duration::from_secs(5)) {
            Ok(p) if p.kind == kind::STATUS_RES && p.fields().get(2).map(|f| f == b"0").unwrap_or(false) => return,
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(_) => return,
        }
    }
}

/// `--job-retries 2`: a job whose worker disappears twice is dropped and
/// its client gets WORK_FAIL (no trailing NUL).
fn job_retries_scenario(port: u16, rec: &mut Recorder) {
    let mut c = Conn::connect(port);
    c.send_req(kind::SUBMIT_JOB, &[b"jr_fn", b"jr1", b"x"]);
    let h = handle_of(rec.read("c", &mut c));
    let mut a = Conn::connect(port);
    for attempt in 1..=2 {
        rec.note(&format!("attempt {attempt}"));
        let mut w = Conn::connect(port);
        w.send_req(kind::CAN_DO, &[b"jr_fn"]);
        w.send_req(kind::GRAB_JOB, &[]);
        rec.read("w", &mut w);
        drop(w);
        if attempt == 1 {
            wait_not_running(&mut c, &h);
            rec.admin(&mut a, "show jobs\r\n");
        }
    }
    rec.read("c", &mut c);
    rec.admin(&mut a, "show jobs\r\n");
    rec.admin(&mut a, "status\r\n");
}

#[test]
fn binary_job_retries_match_gearmand() {
    let Some(t) = compare(bin(), &["--job-retries", "2"], &job_retries_scenario) else { return };
    assert_has(&t, r"c <- RES 14 H:HOST:1");
}

/// A worker that asks for a job every 100 ms until it gets one (within
/// 5 s): the JOB_ASSIGN, or why none came. It never sends PRE_SLEEP, so no
/// NOOP can arrive: whether gearmand wakes a worker asleep in PRE_SLEEP for
/// a job requeued by its timer depends on timing there (a wake-up before the
/// requeue is wasted, one after it sometimes never comes), while sprocketd
/// always wakes it (tested with a PHP worker in interop/php.rs).
fn polling_worker_takes_a_job(w: &mut Conn) -> Result<sprocket_testkit::wire::Packet, sprocket_testkit::wire::ReadEnd> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        w.send_req(kind::GRAB_JOB, &[]);
        let p = w.read_packet(deadline.saturating_duration_since(std::time::Instant::now()))?;
        if p.kind != kind::NO_JOB || std::time::Instant::now() >= deadline {
            return Ok(p);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// CAN_DO_TIMEOUT expiry as gearmand 1.1.20 handles it (sprocketd's
/// default, `--timeout-action retry`): the job goes back to its queue,
/// another worker gets it under the same handle, the client hears only that
/// worker's result and nothing of the requeue, and the first worker's late
/// result gets JOB_NOT_FOUND.
fn can_do_timeout_scenario(port: u16, rec: &mut Recorder) {
    let mut c = Conn::connect(port);
    let mut slow = Conn::connect(port);
    let mut fast = Conn::connect(port);
    slow.send_req(kind::CAN_DO_TIMEOUT, &[b"tmo_fn", b"1000"]);
    c.send_req(kind::SUBMIT_JOB, &[b"tmo_fn", b"", b"slow"]);
    let h = handle_of(rec.read("c", &mut c));
    slow.send_req(kind::GRAB_JOB, &[]);
    rec.read("slow", &mut slow);
    fast.send_req(kind::CAN_DO, &[b"tmo_fn"]);
    rec.note("the slow worker overruns its 1 s limit");
    let assigned = polling_worker_takes_a_job(&mut fast);
    rec.packet("fast", assigned);
    rec.sync("c", &mut c);
    fast.send_req(kind::WORK_COMPLETE, &[&h, b"from the fast worker"]);
    rec.read("c", &mut c);
    slow.send_req(kind::WORK_COMPLETE, &[&h, b"late"]);
    rec.read("slow", &mut slow);
    let mut a = Conn::connect(port);
    rec.admin(&mut a, "status\r\n");
}

#[test]
fn binary_can_do_timeout_requeues_as_gearmand_does() {
    let Some(t) = compare(bin(), &[], &can_do_timeout_scenario) else { return };
    assert_has(&t, r"fast <- RES 11 H:HOST:1\0tmo_fn\0slow");
    assert_has(&t, r"c <- RES 13 H:HOST:1\0from the fast worker");
}

/// With `--job-retries 2`, each CAN_DO_TIMEOUT expiry counts as an attempt,
/// as in gearmand: the second one drops the job and its client gets
/// WORK_FAIL.
fn can_do_timeout_retries_scenario(port: u16, rec: &mut Recorder) {
    let mut c = Conn::connect(port);
    let mut w = Conn::connect(port);
    w.send_req(kind::CAN_DO_TIMEOUT, &[b"tmr_fn", b"1000"]);
    c.send_req(kind::SUBMIT_JOB, &[b"tmr_fn", b"", b"slow"]);
    rec.read("c", &mut c);
    for attempt in 1..=2 {
        rec.note(&format!("attempt {attempt}"));
        w.send_req(kind::GRAB_JOB, &[]);
        rec.read("w", &mut w);
        std::thread::sleep(std::time::Duration::from_millis(1300));
    }
    rec.read("c", &mut c);
    let mut a = Conn::connect(port);
    rec.admin(&mut a, "status\r\n");
}

#[test]
fn binary_can_do_timeout_counts_against_job_retries_as_gearmand_does() {
    let Some(t) = compare(bin(), &["--job-retries", "2"], &can_do_timeout_retries_scenario) else { return };
    assert_has(&t, r"c <- RES 14 H:HOST:1");
}

/// SUBMIT_JOB_EPOCH (now, past, non-numeric, far future) and map/reduce
/// submissions, grabbed with GRAB_JOB_ALL.
fn epoch_and_reduce_scenario(port: u16, rec: &mut Recorder) {
    let mut c = Conn::connect(port);
    let far = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        + 3600)
        .to_string();
    c.send_req(kind::SUBMIT_JOB_EPOCH, &[b"ep_fn", b"e_far", far.as_bytes(), b"future"]);
    rec.read("c", &mut c);
    c.send_req(kind::SUBMIT_JOB_EPOCH, &[b"ep_fn", b"e_zero", b"0", b"zero"]);
    rec.read("c", &mut c);
    c.send_req(kind::SUBMIT_JOB_EPOCH, &[b"ep_fn", b"e_past", b"1000", b"past"]);
    rec.read("c", &mut c);
    c.send_req(kind::SUBMIT_JOB_EPOCH, &[b"ep_fn", b"e_text", b"soon", b"text"]);
    rec.read("c", &mut c);
    c.send_req(kind::SUBMIT_REDUCE_JOB_BACKGROUND, &[b"rd_fn", b"r1", b"reducer_fn", b"", b"mapme"]);
    rec.read("c", &mut c);
    c.send_req(kind::SUBMIT_REDUCE_JOB, &[b"rd_fn", b"r2", b"reducer_fn", b"", b"fg"]);
    rec.read("c", &mut c);
    let mut a = Conn::connect(port);
    rec.admin(&mut a, "prioritystatus\r\n");
    let mut w = Conn::connect(port);
    w.send_req(kind::CAN_DO, &[b"ep_fn"]);
    for _ in 0..4 {
        w.send_req(kind::GRAB_JOB_ALL, &[]);
        rec.read("w", &mut w);
    }
    w.send_req(kind::CAN_DO, &[b"rd_fn"]);
    for _ in 0..3 {
        w.send_req(kind::GRAB_JOB_ALL, &[]);
        rec.read("w", &mut w);
    }
    rec.admin(&mut a, "status\r\n");
}

#[test]
fn binary_epoch_and_reduce_match_gearmand() {
    let Some(t) = compare(bin(), &[], &epoch_and_reduce_scenario) else { return };
    assert_has(&t, r"w <- RES 40 H:HOST:5\0rd_fn\0r1\0reducer_fn\0mapme");
}

/// A foreground client that disconnects abandons its queued job: no
/// worker ever gets it. A foreground client coalesced onto a background job
/// leaves it alone while connected; the job still runs for the next one.
/// (Admin counts of abandoned jobs are a gearmand quirk, gearman-reference.md
/// §8.2, not compared.)
fn abandoned_scenario(port: u16, rec: &mut Recorder) {
    let mut c = Conn::connect(port);
    c.send_req(kind::SUBMIT_JOB, &[b"ab_fn", b"gone", b"abandoned"]);
    let h = handle_of(rec.read("c", &mut c));
    drop(c);
    let mut q = Conn::connect(port);
    // Give the server time to notice the disconnect: nothing observable
    // changes for a client (gearmand keeps the job until a grab reaps it).
    std::thread::sleep(std::time::Duration::from_millis(300));
    q.send_req(kind::SUBMIT_JOB_BG, &[b"ab_fn", b"kept", b"background"]);
    rec.read("q", &mut q);
    let mut w = Conn::connect(port);
    w.send_req(kind::CAN_DO, &[b"ab_fn"]);
    for _ in 0..2 {
        w.send_req(kind::GRAB_JOB_UNIQ, &[]);
        if let Some(p) = rec.read("w", &mut w) {
            if p.kind == kind::JOB_ASSIGN_UNIQ {
                let jh = p.fields()[0].clone();
                w.send_req(kind::WORK_COMPLETE, &[&jh, b"done"]);
            }
        }
    }
    rec.sync("w", &mut w);
    q.send_req(kind::GET_STATUS, &[&h]);
    rec.read("q", &mut q);
}

#[test]
fn binary_abandoned_jobs_match_gearmand() {
    let Some(t) = compare(bin(), &[], &abandoned_scenario) else { return };
    assert_has(&t, r"w <- RES 31 H:HOST:2\0ab_fn\0kept\0background");
}

#[test]
fn binary_errors_echo_options_match_gearmand() {
    let Some(t) = compare(bin(), &[], &errors_scenario) else { return };
    assert_has(&t, r"c <- RES 20 H:HOST:42\00\00\00\00");
    assert_has(&t, r"c <- RES 19 INVALID_MAGIC\0Request magic expected");
}

#[test]
fn binary_grab_variants_match_gearmand() {
    let Some(t) = compare(bin(), &[], &grab_scenario) else { return };
    assert_has(&t, r"w <- RES 31 H:HOST:3\0grab_fn\0g3\0three");
}

#[test]
fn binary_priorities_match_gearmand() {
    compare(bin(), &[], &priority_scenario);
}

#[test]
fn binary_coalescing_match_gearmand() {
    compare(bin(), &[], &coalesce_scenario);
}

#[test]
fn binary_same_connection_coalesce_matches_gearmand() {
    compare(bin(), &[], &same_connection_coalesce_scenario);
}

#[test]
fn binary_results_and_requeue_match_gearmand() {
    compare(bin(), &[], &results_and_requeue_scenario);
}
