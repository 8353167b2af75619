//! The engine's gearmand 1.1 semantics, one behaviour per test.

mod support;

use bytes::Bytes;
use sprocket_engine::{Config, Out, PersistMode, PersistOp, TimeoutAction};
use sprocket_proto::{Priority, Request, Response};
use support::{b, Bed};

#[test]
fn handles_count_from_one_with_the_prefix() {
    let mut t = Bed::default();
    let c = t.connect();
    assert_eq!(t.bg(c, "f", "u1", "x"), b("H:test:1"));
    assert_eq!(t.bg(c, "f", "u2", "x"), b("H:test:2"));
}

#[test]
fn foreground_job_round_trip_forwards_every_work_packet() {
    let mut t = Bed::default();
    let c = t.connect();
    let w = t.worker(&["rev"]);
    let h = t.fg(c, "rev", "", "abc");
    let (gh, f, _, data) = t.grab(w).expect("job");
    assert_eq!((gh.clone(), f, data), (h.clone(), b("rev"), b("abc")));
    t.send(w, Request::WorkStatus { handle: h.clone(), numerator: b("1"), denominator: b("2") });
    t.send(w, Request::WorkData { handle: h.clone(), data: b("d") });
    t.send(w, Request::WorkWarning { handle: h.clone(), data: b("w") });
    t.send(w, Request::WorkComplete { handle: h.clone(), data: b("cba") });
    assert_eq!(
        t.packets(c),
        vec![
            Response::WorkStatus { handle: h.clone(), numerator: b("1"), denominator: b("2") },
            Response::WorkData { handle: h.clone(), data: b("d") },
            Response::WorkWarning { handle: h.clone(), data: b("w") },
            Response::WorkComplete { handle: h.clone(), data: b("cba") },
        ]
    );
    assert_eq!(t.engine.job_count(), 0);
}

#[test]
fn coalesced_unique_runs_once_and_all_clients_hear_everything() {
    let mut t = Bed::default();
    let (c1, c2, c3) = (t.connect(), t.connect(), t.connect());
    let w = t.worker(&["f"]);
    let h1 = t.fg(c1, "f", "same", "a");
    let h2 = t.fg(c2, "f", "same", "b");
    assert_eq!(h1, h2);
    let (h, _, _, data) = t.grab(w).unwrap();
    assert_eq!(data, b("a"));
    // A third client attaches while it runs: it hears later packets only.
    t.send(w, Request::WorkData { handle: h.clone(), data: b("early") });
    assert_eq!(t.fg(c3, "f", "same", "c"), h);
    t.send(w, Request::WorkComplete { handle: h.clone(), data: b("done") });
    assert!(t.grab(w).is_none(), "ran once");
    for c in [c1, c2] {
        assert_eq!(
            t.packets(c),
            vec![
                Response::WorkData { handle: h.clone(), data: b("early") },
                Response::WorkComplete { handle: h.clone(), data: b("done") }
            ]
        );
    }
    assert_eq!(t.packets(c3), vec![Response::WorkComplete { handle: h, data: b("done") }]);
}

#[test]
fn dash_unique_coalesces_on_equal_data_only() {
    let mut t = Bed::default();
    let c = t.connect();
    let a = t.bg(c, "f", "-", "same");
    let b2 = t.bg(c, "f", "-", "same");
    let other = t.bg(c, "f", "-", "other");
    assert_eq!(a, b2);
    assert_ne!(a, other);
    // Empty data never coalesces, nor does an empty unique.
    assert_ne!(t.bg(c, "f", "-", ""), t.bg(c, "f", "-", ""));
    assert_ne!(t.bg(c, "f", "", "x"), t.bg(c, "f", "", "x"));
}

#[test]
fn priorities_within_a_function_and_fifo_within_a_level() {
    let mut t = Bed::default();
    let c = t.connect();
    t.submit(c, "f", "l1", "low1", Priority::Low, true);
    t.submit(c, "f", "n1", "norm1", Priority::Normal, true);
    t.submit(c, "f", "h1", "high1", Priority::High, true);
    t.submit(c, "f", "n2", "norm2", Priority::Normal, true);
    let w = t.worker(&["f"]);
    let order: Vec<Bytes> = std::iter::from_fn(|| t.grab(w).map(|j| j.3)).collect();
    assert_eq!(order, vec![b("high1"), b("norm1"), b("norm2"), b("low1")]);
}

#[test]
fn newest_registration_is_served_first_and_round_robin_rotates() {
    let mut t = Bed::default();
    let c = t.connect();
    for f in ["o1", "o2", "o3"] {
        t.bg(c, f, &format!("{f}a"), f);
        t.bg(c, f, &format!("{f}b"), f);
    }
    let w = t.worker(&["o1", "o2", "o3"]);
    let order: Vec<Bytes> = std::iter::from_fn(|| t.grab(w).map(|j| j.1)).take(3).collect();
    assert_eq!(order, vec![b("o3"), b("o3"), b("o2")]);

    let mut t = Bed::new(Config { round_robin: true, handle_prefix: "H:t".into(), ..Config::default() });
    let c = t.connect();
    for f in ["o1", "o2", "o3"] {
        t.bg(c, f, &format!("{f}a"), f);
        t.bg(c, f, &format!("{f}b"), f);
    }
    let w = t.worker(&["o1", "o2", "o3"]);
    let order: Vec<Bytes> = std::iter::from_fn(|| t.grab(w).map(|j| j.1)).collect();
    assert_eq!(order, vec![b("o3"), b("o2"), b("o1"), b("o3"), b("o2"), b("o1")]);
}

#[test]
fn grab_variants_answer_with_their_packet() {
    let mut t = Bed::default();
    let c = t.connect();
    let w = t.worker(&["f"]);
    t.bg(c, "f", "u1", "d");
    t.send(w, Request::GrabJob);
    assert!(matches!(t.packets(w).pop(), Some(Response::JobAssign { .. })));
    t.bg(c, "f", "u2", "d");
    t.send(w, Request::GrabJobAll);
    assert!(matches!(t.packets(w).pop(), Some(Response::JobAssignUniq { .. })));
    t.send(
        c,
        Request::SubmitReduceJob {
            background: true,
            function: b("f"),
            unique: b("u3"),
            reducer: b("red"),
            aggregate: Bytes::new(),
            data: b("d"),
        },
    );
    t.packets(c);
    t.send(w, Request::GrabJobAll);
    match t.packets(w).pop() {
        Some(Response::JobAssignAll { reducer, .. }) => assert_eq!(reducer, b("red")),
        other => panic!("{other:?}"),
    }
    t.send(w, Request::GrabJob);
    assert_eq!(t.packets(w), vec![Response::NoJob]);
}

#[test]
fn pre_sleep_gets_one_noop_per_wakeup() {
    let mut t = Bed::default();
    let c = t.connect();
    let w = t.worker(&["f"]);
    t.send(w, Request::PreSleep);
    assert!(t.packets(w).is_empty());
    t.bg(c, "f", "u1", "d");
    t.bg(c, "f", "u2", "d");
    assert_eq!(t.packets(w), vec![Response::Noop], "one NOOP for two jobs");
    t.grab(w).unwrap();
    // Work already waiting: PRE_SLEEP answered at once.
    t.send(w, Request::PreSleep);
    assert_eq!(t.packets(w), vec![Response::Noop]);
}

#[test]
fn worker_wakeup_limits_noops() {
    let mut t = Bed::new(Config { worker_wakeup: 1, handle_prefix: "H:t".into(), ..Config::default() });
    let c = t.connect();
    let ws: Vec<_> = (0..3).map(|_| t.worker(&["f"])).collect();
    for &w in &ws {
        t.send(w, Request::PreSleep);
    }
    t.bg(c, "f", "u1", "d");
    let woken: usize = ws.iter().map(|&w| t.packets(w).len()).sum();
    assert_eq!(woken, 1);
    t.bg(c, "f", "u2", "d");
    let woken: usize = ws.iter().map(|&w| t.packets(w).len()).sum();
    assert_eq!(woken, 1, "next job wakes the next sleeper");
}

#[test]
fn lost_worker_requeues_at_the_tail_and_resets_status() {
    let mut t = Bed::default();
    let c = t.connect();
    let w = t.worker(&["f"]);
    let h = t.bg(c, "f", "a", "first");
    t.bg(c, "f", "b", "second");
    t.grab(w).unwrap();
    t.send(w, Request::WorkStatus { handle: h.clone(), numerator: b("5"), denominator: b("10") });
    t.disconnect(w);
    t.send(c, Request::GetStatus { handle: h.clone() });
    assert_eq!(
        t.packets(c),
        vec![Response::StatusRes { handle: h, known: true, running: false, numerator: 0, denominator: 0 }]
    );
    let w2 = t.worker(&["f"]);
    assert_eq!(t.grab(w2).unwrap().3, b("second"));
    assert_eq!(t.grab(w2).unwrap().3, b("first"));
}

#[test]
fn job_retries_drop_the_job_and_fail_its_clients() {
    let mut t = Bed::new(Config { job_retries: 2, handle_prefix: "H:t".into(), ..Config::default() });
    let c = t.connect();
    let h = t.fg(c, "f", "", "d");
    for _ in 0..2 {
        let w = t.worker(&["f"]);
        t.grab(w).unwrap();
        t.disconnect(w);
    }
    assert_eq!(t.packets(c), vec![Response::WorkFail { handle: h }]);
    assert_eq!(t.engine.job_count(), 0);
}

#[test]
fn cant_do_and_reset_abilities_give_jobs_back() {
    let mut t = Bed::default();
    let c = t.connect();
    let w = t.worker(&["f", "g"]);
    t.bg(c, "f", "a", "d");
    t.bg(c, "g", "b", "d");
    t.grab(w).unwrap();
    t.grab(w).unwrap();
    t.send(w, Request::CantDo { function: b("f") });
    assert!(t.admin(c, "status").contains("f\t1\t0\t0\n"));
    t.send(w, Request::ResetAbilities);
    assert!(t.admin(c, "status").contains("g\t1\t0\t0\n"));
    assert!(t.grab(w).is_none());
}

#[test]
fn work_results_only_from_the_worker_holding_the_job() {
    let mut t = Bed::default();
    let c = t.connect();
    let (w1, w2) = (t.worker(&["f"]), t.worker(&["f"]));
    let h = t.fg(c, "f", "", "d");
    t.grab(w1).unwrap();
    let cases: Vec<(Request, &str)> = vec![
        (Request::WorkComplete { handle: h.clone(), data: b("x") }, "Job given in work result not found"),
        (
            Request::WorkStatus { handle: h.clone(), numerator: b("1"), denominator: b("2") },
            "Job given in work result not found",
        ),
        (Request::WorkFail { handle: h.clone() }, "Job given in work result not found"),
        (Request::WorkData { handle: h.clone(), data: b("x") }, "Job does not exist on server"),
        (Request::WorkWarning { handle: h.clone(), data: b("x") }, "Job does not exist on server"),
        (
            Request::WorkException { handle: h.clone(), data: b("x") },
            "An exception was received for a job that does not exist",
        ),
        (Request::WorkComplete { handle: b("H:test:999"), data: b("x") }, "Job given in work result not found"),
    ];
    for (req, text) in cases {
        t.send(w2, req);
        assert_eq!(t.packets(w2), vec![Response::error("JOB_NOT_FOUND", text)]);
    }
    assert!(t.packets(c).is_empty());
}

#[test]
fn exceptions_only_to_clients_that_asked() {
    let mut t = Bed::default();
    let (plain, wants) = (t.connect(), t.connect());
    t.send(wants, Request::OptionReq { name: b("Exceptions") });
    assert_eq!(t.packets(wants), vec![Response::OptionRes { name: b("Exceptions") }]);
    let w = t.worker(&["f"]);
    let h = t.fg(plain, "f", "u", "d");
    t.fg(wants, "f", "u", "d");
    t.grab(w).unwrap();
    t.send(w, Request::WorkException { handle: h.clone(), data: b("boom") });
    assert_eq!(t.packets(plain), vec![Response::WorkFail { handle: h.clone() }]);
    assert_eq!(t.packets(wants), vec![Response::WorkException { handle: h, data: b("boom") }]);
}

#[test]
fn unknown_option_is_an_error() {
    let mut t = Bed::default();
    let c = t.connect();
    t.send(c, Request::OptionReq { name: b("bogus") });
    assert_eq!(t.packets(c), vec![Response::error("UNKNOWN_OPTION", "Server does not recognize given option")]);
}

#[test]
fn get_status_and_status_unique() {
    let mut t = Bed::default();
    let c = t.connect();
    let w = t.worker(&["f"]);
    let h = t.bg(c, "f", "uniq", "d");
    t.grab(w).unwrap();
    t.send(w, Request::WorkStatus { handle: h.clone(), numerator: b("3"), denominator: b("7") });
    t.send(c, Request::GetStatus { handle: h.clone() });
    t.send(c, Request::GetStatusUnique { unique: b("uniq") });
    t.send(c, Request::GetStatus { handle: b("H:test:77") });
    t.send(c, Request::GetStatusUnique { unique: b("nope") });
    assert_eq!(
        t.packets(c),
        vec![
            Response::StatusRes { handle: h, known: true, running: true, numerator: 3, denominator: 7 },
            Response::StatusResUnique {
                unique: b("uniq"),
                known: true,
                running: true,
                numerator: 3,
                denominator: 7,
                clients: 0
            },
            Response::StatusRes { handle: b("H:test:77"), known: false, running: false, numerator: 0, denominator: 0 },
            Response::StatusResUnique {
                unique: b("nope"),
                known: false,
                running: false,
                numerator: 0,
                denominator: 0,
                clients: 0
            },
        ]
    );
}

#[test]
fn unique_longer_than_64_is_rejected() {
    let mut t = Bed::default();
    let c = t.connect();
    let long = "u".repeat(65);
    t.send(
        c,
        Request::SubmitJob {
            mode: sprocket_proto::SubmitMode { priority: Priority::Normal, background: true },
            function: b("f"),
            unique: b(&long),
            data: b("d"),
        },
    );
    assert_eq!(t.packets(c), vec![Response::error("ARGUMENT_TOO_LARGE", "Unique value too large")]);
    // 64 bytes is accepted and coalesces (gearmand stores 63 of them, so a
    // 64-byte unique never coalesces there).
    let u64s = "v".repeat(64);
    assert_eq!(t.bg(c, "f", &u64s, "d"), t.bg(c, "f", &u64s, "d"));
}

#[test]
fn maxqueue_limits_total_including_running() {
    let mut t = Bed::default();
    let c = t.connect();
    let w = t.worker(&["f"]);
    assert_eq!(t.admin(c, "maxqueue f 2"), "OK\r\n");
    t.bg(c, "f", "a", "d");
    t.grab(w).unwrap();
    t.bg(c, "f", "b", "d");
    t.send(
        c,
        Request::SubmitJob {
            mode: sprocket_proto::SubmitMode { priority: Priority::Normal, background: true },
            function: b("f"),
            unique: b("c"),
            data: b("d"),
        },
    );
    assert_eq!(t.packets(c), vec![Response::error("QUEUE_ERROR", "Job queue is full")]);
    // Coalescing bypasses the limit.
    t.bg(c, "f", "b", "d");
}

#[test]
fn foreground_job_abandoned_when_its_client_leaves() {
    let mut t = Bed::default();
    let c = t.connect();
    t.fg(c, "f", "", "d");
    t.disconnect(c);
    assert_eq!(t.engine.job_count(), 0);
    let w = t.worker(&["f"]);
    assert!(t.grab(w).is_none());
}

#[test]
fn background_job_survives_a_coalesced_foreground_client_leaving() {
    let mut t = Bed::default();
    let (c1, c2) = (t.connect(), t.connect());
    t.bg(c1, "f", "u", "d");
    t.fg(c2, "f", "u", "d");
    t.disconnect(c2);
    let w = t.worker(&["f"]);
    assert!(t.grab(w).is_some(), "gearmand cancels it when the joined foreground client leaves");
}

#[test]
fn running_job_of_vanished_client_finishes_silently() {
    let mut t = Bed::default();
    let c = t.connect();
    let w = t.worker(&["f"]);
    let h = t.fg(c, "f", "", "d");
    t.grab(w).unwrap();
    t.disconnect(c);
    t.send(w, Request::WorkComplete { handle: h, data: b("x") });
    assert!(t.packets(w).is_empty(), "no error to the worker");
    assert_eq!(t.engine.job_count(), 0);
}

#[test]
fn epoch_job_waits_and_wakes_sleeping_workers_when_due() {
    let mut t = Bed::default();
    let c = t.connect();
    let w = t.worker(&["f"]);
    t.send(w, Request::PreSleep);
    let when = t.now / 1000 + 5;
    t.send(
        c,
        Request::SubmitJobEpoch { function: b("f"), unique: b("e"), epoch: b(&when.to_string()), data: b("later") },
    );
    assert!(matches!(t.packets(c).pop(), Some(Response::JobCreated { .. })));
    assert!(t.packets(w).is_empty(), "no useless NOOP for a future job");
    // A low job of the same function is not hidden by the future one.
    t.submit(c, "f", "l", "low", Priority::Low, true);
    assert_eq!(t.packets(w), vec![Response::Noop]);
    assert_eq!(t.grab(w).unwrap().3, b("low"));
    assert!(t.grab(w).is_none());
    t.send(w, Request::PreSleep);
    let deadline = t.engine.next_deadline().expect("a deadline");
    assert!(deadline <= when * 1000);
    t.advance(5_000);
    assert_eq!(t.packets(w), vec![Response::Noop], "woken when due");
    assert_eq!(t.grab(w).unwrap().3, b("later"));
}

#[test]
fn sched_job_runs_at_the_next_matching_minute() {
    let mut t = Bed::default();
    let c = t.connect();
    t.send(
        c,
        Request::SubmitJobSched {
            function: b("f"),
            unique: b("s"),
            schedule: [b("*"), b("*"), b("*"), b("*"), b("*")],
            data: b("cron"),
        },
    );
    assert!(matches!(t.packets(c).pop(), Some(Response::JobCreated { .. })));
    let w = t.worker(&["f"]);
    assert!(t.grab(w).is_none());
    t.advance(61_000);
    assert_eq!(t.grab(w).unwrap().3, b("cron"));
    t.send(
        c,
        Request::SubmitJobSched {
            function: b("f"),
            unique: b("bad"),
            schedule: [b("99"), b("*"), b("*"), b("*"), b("*")],
            data: b("x"),
        },
    );
    assert!(matches!(t.packets(c).pop(), Some(Response::Error { .. })));
}

#[test]
fn can_do_timeout_fail_mode_fails_the_job_and_rejects_late_results() {
    let mut t =
        Bed::new(Config { timeout_action: TimeoutAction::Fail, handle_prefix: "H:t".into(), ..Config::default() });
    let c = t.connect();
    let w = t.connect();
    t.send(w, Request::CanDoTimeout { function: b("f"), timeout: b("1500") });
    let h = t.fg(c, "f", "", "d");
    t.grab(w).unwrap();
    t.advance(1_000);
    assert!(t.packets(c).is_empty());
    t.advance(600);
    assert_eq!(t.packets(c), vec![Response::WorkFail { handle: h.clone() }]);
    t.send(w, Request::WorkComplete { handle: h, data: b("late") });
    assert!(matches!(t.packets(w).pop(), Some(Response::Error { .. })));
}

#[test]
fn can_do_timeout_retry_mode_requeues() {
    let mut t =
        Bed::new(Config { timeout_action: TimeoutAction::Retry, handle_prefix: "H:t".into(), ..Config::default() });
    let c = t.connect();
    let w = t.connect();
    t.send(w, Request::CanDoTimeout { function: b("f"), timeout: b("10") }); // raised to 1000 ms
    t.bg(c, "f", "u", "d");
    t.grab(w).unwrap();
    t.advance(999);
    assert!(t.grab(w).is_none());
    t.advance(2);
    assert!(t.grab(w).is_some(), "back in the queue after the limit");
}

/// gearmand 1.1.20's behaviour, the default: the job goes back to its
/// queue, a sleeping worker is woken for it, the client hears only the
/// second worker's result, and the first worker's late result is refused.
#[test]
fn can_do_timeout_requeues_by_default_and_the_next_worker_completes_it() {
    let mut t = Bed::default();
    assert_eq!(t.engine.config().timeout_action, TimeoutAction::Retry);
    let c = t.connect();
    let slow = t.connect();
    t.send(slow, Request::CanDoTimeout { function: b("f"), timeout: b("1000") });
    let h = t.fg(c, "f", "", "d");
    assert_eq!(t.grab(slow).unwrap().0, h);
    let fast = t.worker(&["f"]);
    t.send(fast, Request::PreSleep);
    assert!(t.packets(fast).is_empty(), "nothing to do while the slow worker holds the job");
    t.advance(1_001);
    assert_eq!(t.packets(fast), vec![Response::Noop], "the requeued job wakes the sleeping worker");
    assert!(t.packets(c).is_empty(), "the client is told nothing of the requeue");
    assert_eq!(t.grab(fast).unwrap().0, h, "same job, same handle");
    t.send(fast, Request::WorkComplete { handle: h.clone(), data: b("fast") });
    assert_eq!(t.packets(c), vec![Response::WorkComplete { handle: h.clone(), data: b("fast") }]);
    t.send(slow, Request::WorkComplete { handle: h, data: b("late") });
    assert!(matches!(t.packets(slow).pop(), Some(Response::Error { .. })));
}

/// Each CAN_DO_TIMEOUT requeue counts as an attempt against
/// `--job-retries`, as in gearmand: with 2, the second expiry drops the job
/// and its client gets WORK_FAIL.
#[test]
fn can_do_timeout_requeues_count_against_job_retries() {
    let mut t = Bed::new(Config { job_retries: 2, handle_prefix: "H:t".into(), ..Config::default() });
    let c = t.connect();
    let w = t.connect();
    t.send(w, Request::CanDoTimeout { function: b("f"), timeout: b("1000") });
    let h = t.fg(c, "f", "", "d");
    t.grab(w).unwrap();
    t.advance(1_001);
    assert!(t.packets(c).is_empty(), "first expiry: requeued");
    assert_eq!(t.grab(w).unwrap().0, h);
    t.advance(1_001);
    assert_eq!(t.packets(c), vec![Response::WorkFail { handle: h }], "second expiry: dropped");
    assert!(t.grab(w).is_none());
}

#[test]
fn admin_listings_have_gearmand_formats() {
    let mut t = Bed::default();
    let c = t.connect();
    let w = t.worker(&["f", "g"]);
    t.send(w, Request::SetClientId { id: b("worker-1") });
    t.bg(c, "f", "u1", "d");
    t.submit(c, "f", "u2", "d", Priority::High, true);
    t.grab(w).unwrap();
    assert_eq!(t.admin(c, "status"), "f\t2\t1\t1\ng\t0\t0\t1\n.\n");
    assert_eq!(t.admin(c, "prioritystatus"), "f\t0\t1\t0\t1\ng\t0\t0\t0\t1\n.\n");
    assert_eq!(t.admin(c, "workers"), "12 127.0.0.1 worker-1 : g f\n11 127.0.0.1 - :\n.\n");
    assert_eq!(t.admin(c, "show jobs"), "H:test:1\t0\t0\t1\nH:test:2\t0\t0\t1\n.\n");
    assert_eq!(t.admin(c, "show unique jobs"), "u1\nu2\n.\n");
    assert_eq!(t.admin(c, "cancel job H:test:99"), "ERR UNKNOWN_JOB\r\n");
    assert_eq!(t.admin(c, "cancel job H:test:1"), "OK\r\n");
    assert_eq!(t.admin(c, "verbose"), "OK ERROR\n");
    assert_eq!(t.admin(c, "getpid"), "OK 0\n");
}

#[test]
fn cancel_fails_foreground_clients() {
    let mut t = Bed::default();
    let (c, a) = (t.connect(), t.connect());
    let h = t.fg(c, "f", "", "d");
    assert_eq!(t.admin(a, &format!("cancel job {}", String::from_utf8_lossy(&h))), "OK\r\n");
    assert_eq!(t.packets(c), vec![Response::WorkFail { handle: h }]);
    assert_eq!(t.engine.job_count(), 0);
}

#[test]
fn create_and_drop_function() {
    let mut t = Bed::default();
    let a = t.connect();
    assert_eq!(t.admin(a, "create function Abc"), "OK\r\n");
    assert_eq!(t.admin(a, "status"), "Abc\t0\t0\t0\n.\n");
    let w = t.worker(&["Abc"]);
    assert_eq!(t.admin(a, "drop function abc"), "ERR there are still connected workers or executing clients\r\n");
    t.disconnect(w);
    t.bg(a, "Abc", "q", "queued");
    assert_eq!(t.admin(a, "drop function abc"), "OK\r\n");
    assert_eq!(t.admin(a, "status"), ".\n");
    assert_eq!(t.engine.job_count(), 0, "queued jobs dropped with the function");
    assert_eq!(t.admin(a, "drop function abc"), "ERR function not found\r\n");
}

#[test]
fn six_admin_tokens_close_the_connection() {
    let mut t = Bed::default();
    let a = t.connect();
    assert_eq!(t.admin(a, "a b c d e f"), "");
    assert_eq!(t.closed, vec![a]);
}

#[test]
fn shutdown_command_requests_shutdown() {
    let mut t = Bed::default();
    let a = t.connect();
    t.engine.admin_line(a, b"shutdown graceful", t.now);
    let out = t.engine.take_outbox();
    assert_eq!(out.shutdown, Some(sprocket_engine::ShutdownRequest::Graceful));
    assert_eq!(out.sends, vec![(a, Out::Text(Bytes::from_static(b"OK\r\n")))]);
}

#[test]
fn echo_and_client_id_and_all_yours() {
    let mut t = Bed::default();
    let c = t.connect();
    t.send(c, Request::EchoReq { data: b("ping\0x") });
    t.send(c, Request::EchoReq { data: Bytes::new() });
    t.send(c, Request::AllYours);
    assert_eq!(
        t.packets(c),
        vec![
            Response::EchoRes { data: b("ping\0x") },
            Response::EchoRes { data: Bytes::new() },
            Response::error("INVALID_COMMAND", "Command not expected")
        ]
    );
}

fn durable() -> Bed {
    Bed::new(Config { persist: PersistMode::Immediate, handle_prefix: "H:d".into(), ..Config::default() })
}

fn durable_with_store_timeout(store_timeout_ms: u64) -> Bed {
    Bed::new(Config {
        persist: PersistMode::Immediate,
        handle_prefix: "H:d".into(),
        store_timeout_ms,
        ..Config::default()
    })
}

/// Sends a normal-priority background SUBMIT_JOB of function `f`, unique
/// `u`, data `d`, without reading the reply.
fn submit_bg_f_u_d(t: &mut Bed, c: sprocket_engine::ConnId) {
    t.send(
        c,
        Request::SubmitJob {
            mode: sprocket_proto::SubmitMode { priority: Priority::Normal, background: true },
            function: b("f"),
            unique: b("u"),
            data: b("d"),
        },
    );
}

#[test]
fn background_job_created_only_after_durable_and_order_is_kept() {
    let mut t = durable();
    let c = t.connect();
    t.send(
        c,
        Request::SubmitJob {
            mode: sprocket_proto::SubmitMode { priority: Priority::Low, background: true },
            function: b("f"),
            unique: b("u"),
            data: b("d"),
        },
    );
    t.send(c, Request::EchoReq { data: b("after") });
    assert!(t.packets(c).is_empty(), "nothing before the commit");
    assert_eq!(t.persisted.len(), 1);
    let (seq, op) = t.persisted[0].clone();
    assert_eq!(
        op,
        PersistOp::Insert { function: b("f"), unique: b("u"), priority: Priority::Low, data: b("d"), when: 0 }
    );
    t.stored(seq, &[]);
    assert_eq!(t.packets(c), vec![Response::JobCreated { handle: b("H:d:1") }, Response::EchoRes { data: b("after") }]);
}

/// A background job that a worker finishes before the store confirms its
/// insert is answered at once: nothing is left to store, and a submitter
/// must not depend on the store reporting an insert that was cancelled.
/// Later replies on the connection keep their order behind it.
#[test]
fn a_job_finished_before_its_insert_commits_is_answered_without_the_store() {
    let mut t = durable();
    let c = t.connect();
    let w = t.worker(&["f"]);
    submit_bg_f_u_d(&mut t, c);
    t.send(c, Request::EchoReq { data: b("after") });
    assert!(t.packets(c).is_empty(), "nothing before the commit");
    let (handle, ..) = t.grab(w).expect("the job is queued before its commit");
    t.send(w, Request::WorkComplete { handle, data: b("") });
    assert_eq!(t.packets(c), vec![Response::JobCreated { handle: b("H:d:1") }, Response::EchoRes { data: b("after") }]);
    // The store's report of the insert and its delete, or a failure of the
    // insert, comes later and sends nothing more.
    let last = t.persisted.last().map(|(seq, _)| *seq).expect("insert and delete");
    let insert = t.persisted[0].0;
    t.stored(last, &[insert]);
    assert!(t.packets(c).is_empty());
}

#[test]
fn failed_insert_gives_an_error_not_job_created() {
    let mut t = durable();
    let c = t.connect();
    submit_bg_f_u_d(&mut t, c);
    let seq = t.persisted[0].0;
    t.stored(seq, &[seq]);
    match t.packets(c).as_slice() {
        [Response::Error { code, .. }] => assert_eq!(code, &b("QUEUE_ERROR")),
        other => panic!("{other:?}"),
    }
    assert_eq!(t.engine.job_count(), 0);
}

#[test]
fn background_submits_are_refused_and_never_run_while_the_store_is_down() {
    let mut t = durable();
    let c = t.connect();
    let w = t.worker(&["f"]);
    let bg = |t: &mut Bed, unique: &str| {
        t.send(
            c,
            Request::SubmitJob {
                mode: sprocket_proto::SubmitMode { priority: Priority::Normal, background: true },
                function: b("f"),
                unique: b(unique),
                data: b("d"),
            },
        );
    };
    t.engine.set_store_down(true);
    bg(&mut t, "down");
    match t.packets(c).as_slice() {
        [Response::Error { code, .. }] => assert_eq!(code, &b("QUEUE_ERROR")),
        other => panic!("expected an immediate ERROR, got {other:?}"),
    }
    assert!(t.persisted.is_empty(), "nothing sent to the store");
    assert_eq!(t.engine.job_count(), 0);
    assert!(t.grab(w).is_none(), "a refused job is never handed to a worker");
    // Foreground jobs are not written, so they keep working.
    t.fg(c, "f", "fg", "d");
    assert!(t.grab(w).is_some());

    t.engine.set_store_down(false);
    bg(&mut t, "up");
    assert_eq!(t.persisted.len(), 1, "written again once the store is back");
}

#[test]
fn completion_deletes_the_row_and_foreground_jobs_are_never_written() {
    let mut t = durable();
    let c = t.connect();
    let w = t.worker(&["f"]);
    t.fg(c, "f", "fg", "d");
    assert!(t.persisted.is_empty());
    t.send(
        c,
        Request::SubmitJob {
            mode: sprocket_proto::SubmitMode { priority: Priority::Normal, background: true },
            function: b("f"),
            unique: b(""),
            data: b("bgdata"),
        },
    );
    t.grab(w).unwrap();
    let (h, ..) = t.grab(w).unwrap();
    t.send(w, Request::WorkComplete { handle: h, data: Bytes::new() });
    let ops: Vec<PersistOp> = t.persisted.iter().map(|(_, op)| op.clone()).collect();
    let PersistOp::Insert { unique: stored_unique, .. } = &ops[0] else { panic!("{ops:?}") };
    assert!(stored_unique.starts_with(b"~sprocket:"), "generated key for an empty unique");
    assert_eq!(ops[1], PersistOp::Delete { function: b("f"), unique: stored_unique.clone() });
}

#[test]
fn replay_restores_jobs_with_fresh_handles() {
    let mut t = durable();
    for (u, p) in [("a", Priority::Low), ("b", Priority::High), ("~sprocket:1:1", Priority::Normal)] {
        t.engine.replay(sprocket_engine::ReplayJob {
            function: b("f"),
            unique: b(u),
            priority: p,
            data: b(u),
            when: 0,
            record: None,
        });
    }
    let w = t.worker(&["f"]);
    let got: Vec<(Bytes, Bytes)> = std::iter::from_fn(|| t.grab(w).map(|j| (j.0, j.2))).collect();
    assert_eq!(got, vec![(b("H:d:2"), b("b")), (b("H:d:3"), b("")), (b("H:d:1"), b("a"))]);
    assert!(t.persisted.is_empty(), "replay writes nothing");
}

#[test]
fn shutdown_dump_gives_jobs_without_a_unique_rows_of_their_own() {
    let mut t = Bed::new(Config {
        persist: PersistMode::OnShutdown,
        handle_prefix: "H:d".into(),
        instance_id: 0xab,
        ..Config::default()
    });
    let c = t.connect();
    for (u, d) in [("", "one"), ("", "two"), ("-", "three"), ("-", "four"), ("own", "five")] {
        t.bg(c, "f", u, d);
    }
    assert!(t.persisted.is_empty(), "nothing written before the shutdown");
    assert_eq!(t.engine.dump_persisted_jobs(), 5);
    t.send(c, Request::EchoReq { data: b("collect the engine's output") });
    let rows: Vec<(Bytes, Bytes)> = t
        .persisted
        .iter()
        .map(|(_, op)| match op {
            PersistOp::Insert { unique, data, .. } => (unique.clone(), data.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let keys: std::collections::HashSet<&Bytes> = rows.iter().map(|(u, _)| u).collect();
    assert_eq!(keys.len(), 5, "every job has a row key of its own: {rows:?}");
    assert_eq!(rows[0], (b("~sprocket:ab:1"), b("one")));
    assert_eq!(rows[3], (b("~sprocket:ab:4:-"), b("four")));
    assert_eq!(rows[4], (b("own"), b("five")));
}

#[test]
fn replayed_rows_are_deleted_under_exactly_their_stored_key() {
    let mut t = durable();
    // Generated keys of an earlier run, an odd one that only looks
    // generated (leading zero), and gearmand's `-` row.
    let stored = ["~sprocket:1f:77", "~sprocket:01f:78", "-"];
    for u in stored {
        t.engine.replay(sprocket_engine::ReplayJob {
            function: b("f"),
            unique: b(u),
            priority: Priority::Normal,
            data: b(u),
            when: 0,
            record: None,
        });
    }
    let w = t.worker(&["f"]);
    while let Some((h, ..)) = t.grab(w) {
        t.send(w, Request::WorkComplete { handle: h, data: Bytes::new() });
    }
    let deleted: Vec<Bytes> = t
        .persisted
        .iter()
        .map(|(_, op)| match op {
            PersistOp::Delete { unique, .. } => unique.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(deleted, stored.iter().map(|u| b(u)).collect::<Vec<_>>());
}

#[test]
fn replayed_dash_jobs_get_their_dash_back_and_coalesce_on_data_again() {
    let mut t = durable();
    // Rows of an earlier sprocketd (a generated key that marks `-`, and one
    // of a job without a unique) and gearmand's row keyed `-`.
    for (f, u, d) in [("f", "~sprocket:1f:7:-", "ours"), ("g", "-", "theirs"), ("f", "~sprocket:1f:8", "plain")] {
        t.engine.replay(sprocket_engine::ReplayJob {
            function: b(f),
            unique: b(u),
            priority: Priority::Normal,
            data: b(d),
            when: 0,
            record: None,
        });
    }
    let c = t.connect();
    // Equal data under `-` joins the replayed job, which is already stored.
    assert_eq!(t.bg(c, "f", "-", "ours"), b("H:d:1"));
    assert_eq!(t.bg(c, "g", "-", "theirs"), b("H:d:2"));
    assert!(t.persisted.is_empty(), "joining writes no row");
    // The job without a unique does not coalesce on data.
    t.send(
        c,
        Request::SubmitJob {
            mode: sprocket_proto::SubmitMode { priority: Priority::Normal, background: true },
            function: b("f"),
            unique: b("-"),
            data: b("plain"),
        },
    );
    assert_eq!(t.persisted.len(), 1, "a new job with a row of its own");
    // Workers see the `-` again, as gearmand replays it.
    let w = t.worker(&["f", "g"]);
    let mut got: Vec<(Bytes, Bytes, Bytes)> = std::iter::from_fn(|| t.grab(w).map(|j| (j.0, j.2, j.3))).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (b("H:d:1"), b("-"), b("ours")),
            (b("H:d:2"), b("-"), b("theirs")),
            (b("H:d:3"), b(""), b("plain")),
            (b("H:d:4"), b("-"), b("plain")),
        ]
    );
}

fn bg_submit(t: &mut Bed, conn: sprocket_engine::ConnId, unique: &str) {
    t.send(
        conn,
        Request::SubmitJob {
            mode: sprocket_proto::SubmitMode { priority: Priority::Normal, background: true },
            function: b("f"),
            unique: b(unique),
            data: b("d"),
        },
    );
}

#[test]
fn background_submit_joining_a_foreground_job_is_written_and_outlives_its_client() {
    let mut t = durable();
    let (fg, bg) = (t.connect(), t.connect());
    t.fg(fg, "f", "u", "d");
    assert!(t.persisted.is_empty(), "foreground jobs are not written");
    bg_submit(&mut t, bg, "u");
    assert_eq!(t.persisted.len(), 1, "joining makes it a background job: written");
    let (seq, op) = t.persisted[0].clone();
    assert_eq!(
        op,
        PersistOp::Insert { function: b("f"), unique: b("u"), priority: Priority::Normal, data: b("d"), when: 0 }
    );
    assert!(t.packets(bg).is_empty(), "JOB_CREATED only once durable");
    t.stored(seq, &[]);
    assert_eq!(t.packets(bg), vec![Response::JobCreated { handle: b("H:d:1") }]);
    t.disconnect(fg);
    let w = t.worker(&["f"]);
    let (h, ..) = t.grab(w).expect("still queued after its foreground client left");
    t.send(w, Request::WorkComplete { handle: h, data: Bytes::new() });
    assert_eq!(
        t.persisted.last().map(|(_, op)| op.clone()),
        Some(PersistOp::Delete { function: b("f"), unique: b("u") })
    );
}

#[test]
fn background_submit_joining_a_foreground_job_outlives_its_client_in_memory() {
    let mut t = Bed::default();
    let (fg, bg) = (t.connect(), t.connect());
    t.fg(fg, "f", "u", "d");
    bg_submit(&mut t, bg, "u");
    assert_eq!(t.packets(bg), vec![Response::JobCreated { handle: b("H:test:1") }]);
    t.disconnect(fg);
    let w = t.worker(&["f"]);
    assert!(t.grab(w).is_some(), "gearmand counts it in status but never hands it out");
}

#[test]
fn failed_write_of_a_joined_foreground_job_leaves_it_foreground() {
    let mut t = durable();
    let (fg, bg) = (t.connect(), t.connect());
    t.fg(fg, "f", "u", "d");
    bg_submit(&mut t, bg, "u");
    let seq = t.persisted[0].0;
    t.stored(seq, &[seq]);
    match t.packets(bg).as_slice() {
        [Response::Error { code, .. }] => assert_eq!(code, &b("QUEUE_ERROR")),
        other => panic!("{other:?}"),
    }
    assert_eq!(t.engine.job_count(), 1, "its foreground client still waits for it");
    t.disconnect(fg);
    assert_eq!(t.engine.job_count(), 0, "nobody wants it any more");
}

#[test]
fn unconfirmed_insert_gets_an_error_after_the_store_timeout_and_its_row_is_withdrawn() {
    let mut t = durable_with_store_timeout(5_000);
    let (c1, c2) = (t.connect(), t.connect());
    bg_submit(&mut t, c1, "slow");
    t.advance(3_000);
    bg_submit(&mut t, c2, "later");
    assert!(t.engine.next_deadline().is_some_and(|at| at <= t.now + 2_000), "a wake-up for the first insert");
    t.advance(2_000);
    match t.packets(c1).as_slice() {
        [Response::Error { code, .. }] => assert_eq!(code, &b("QUEUE_ERROR")),
        other => panic!("the first submit times out: {other:?}"),
    }
    assert!(t.packets(c2).is_empty(), "the second has time left");
    let ops: Vec<PersistOp> = t.persisted.iter().map(|(_, op)| op.clone()).collect();
    assert_eq!(ops.last(), Some(&PersistOp::Delete { function: b("f"), unique: b("slow") }), "{ops:?}");
    assert_eq!(t.engine.job_count(), 1, "only the second job is left");
    // The store answers at last, for both: the timed-out one stays failed.
    let last = t.persisted.last().map(|(seq, _)| *seq).unwrap_or(0);
    t.stored(last, &[]);
    assert!(t.packets(c1).is_empty());
    assert_eq!(t.packets(c2), vec![Response::JobCreated { handle: b("H:d:2") }]);
    let w = t.worker(&["f"]);
    assert_eq!(t.grab(w).map(|j| j.2), Some(b("later")));
    assert!(t.grab(w).is_none());
}

#[test]
fn confirmed_inserts_never_time_out() {
    let mut t = durable_with_store_timeout(5_000);
    let c = t.connect();
    bg_submit(&mut t, c, "u");
    let seq = t.persisted[0].0;
    t.stored(seq, &[]);
    assert_eq!(t.packets(c), vec![Response::JobCreated { handle: b("H:d:1") }]);
    t.advance(60_000);
    assert!(t.packets(c).is_empty());
    assert_eq!(t.persisted.len(), 1, "no delete for a confirmed job");
    assert_eq!(t.engine.job_count(), 1);
}

/// Cancelling a running durable job deletes its row at once: the worker may
/// never report back, and a crash before it does must not bring the job
/// back (gearmand deletes the row at cancel time too).
#[test]
fn cancelling_a_running_durable_job_deletes_its_row_at_once() {
    let mut t = durable();
    let c = t.connect();
    submit_bg_f_u_d(&mut t, c);
    let seq = t.persisted[0].0;
    t.stored(seq, &[]);
    let w = t.worker(&["f"]);
    let (handle, ..) = t.grab(w).expect("the job is handed out");
    t.persisted.clear();
    let line = format!("cancel job {}", String::from_utf8_lossy(&handle));
    assert_eq!(t.admin(c, &line), "OK\r\n");
    let ops: Vec<PersistOp> = t.persisted.iter().map(|(_, op)| op.clone()).collect();
    assert_eq!(ops, vec![PersistOp::Delete { function: b("f"), unique: b("u") }], "row deleted at cancel time");
    // The worker's late result deletes nothing more.
    t.send(w, Request::WorkComplete { handle, data: b("late") });
    assert_eq!(t.persisted.len(), 1, "deleted once");
    assert_eq!(t.engine.job_count(), 0);
}

/// An epoch so far away that it overflows milliseconds is a deadline at
/// the end of time, not one in the past that wakes the engine every
/// millisecond.
#[test]
fn a_far_future_epoch_is_not_a_deadline_in_the_past() {
    let mut t = Bed::default();
    let c = t.connect();
    t.send(
        c,
        Request::SubmitJobEpoch { function: b("f"), unique: b("far"), epoch: b("18446744073709552"), data: b("x") },
    );
    assert!(matches!(t.packets(c).pop(), Some(Response::JobCreated { .. })));
    let deadline = t.engine.next_deadline().expect("a scheduled job has a deadline");
    assert!(deadline > 4_000_000_000_000, "deadline {deadline} ms is in the past");
}

/// A foreground job whose only client left while a worker runs it is
/// joined by a later submission of the same unique, as gearmand does: the
/// new client gets the result and the work is not done twice. A cancelled
/// running job is not joined: the new submission is a job of its own.
#[test]
fn a_running_job_whose_client_left_is_joined_but_a_cancelled_one_is_not() {
    let mut t = Bed::default();
    let a = t.connect();
    let first = t.fg(a, "f", "k", "d");
    let w = t.worker(&["f"]);
    let (handle, ..) = t.grab(w).expect("job handed out");
    assert_eq!(handle, first);
    t.disconnect(a);
    let b_client = t.connect();
    assert_eq!(t.fg(b_client, "f", "k", "d"), first, "joined the running job");
    t.send(w, Request::WorkComplete { handle: handle.clone(), data: b("result") });
    assert_eq!(t.packets(b_client), vec![Response::WorkComplete { handle, data: b("result") }]);
    assert_eq!(t.engine.job_count(), 0);

    let c = t.connect();
    let running = t.fg(c, "f", "k2", "d");
    let (h2, ..) = t.grab(w).expect("second job handed out");
    assert_eq!(h2, running);
    let line = format!("cancel job {}", String::from_utf8_lossy(&h2));
    assert_eq!(t.admin(c, &line), "OK\r\n");
    t.packets(c);
    let d = t.connect();
    assert_ne!(t.fg(d, "f", "k2", "d"), running, "a cancelled job is not joined");
}

/// A job cancelled while its worker runs it has ended: when the worker's
/// CAN_DO_TIMEOUT limit then expires, the job is gone, not put back in its
/// queue to run again (it was, with the requeueing timeout action), and
/// the running count drops as when the worker reports back.
#[test]
fn a_cancelled_running_job_is_not_requeued_when_its_time_limit_expires() {
    let mut t = Bed::default();
    assert_eq!(t.engine.config().timeout_action, TimeoutAction::Retry);
    let c = t.connect();
    let admin = t.connect();
    let w = t.connect();
    t.send(w, Request::CanDoTimeout { function: b("f"), timeout: b("1000") });
    let h = t.fg(c, "f", "u", "d");
    assert_eq!(t.grab(w).expect("job handed out").0, h);
    let line = format!("cancel job {}", String::from_utf8_lossy(&h));
    assert_eq!(t.admin(admin, &line), "OK\r\n");
    assert_eq!(t.packets(c), vec![Response::WorkFail { handle: h.clone() }]);
    assert_eq!(t.admin(admin, "status"), "f\t1\t1\t1\n.\n", "still running on its worker");
    t.advance(1_001);
    assert_eq!(t.engine.job_count(), 0, "the cancelled job is gone");
    assert_eq!(t.admin(admin, "status"), "f\t0\t0\t1\n.\n");
    assert!(t.grab(w).is_none(), "and never handed out again");
    assert!(t.packets(c).is_empty(), "its client hears nothing more");
    t.send(w, Request::WorkComplete { handle: h, data: b("late") });
    assert!(matches!(t.packets(w).pop(), Some(Response::Error { .. })), "the late result finds no job");
}
