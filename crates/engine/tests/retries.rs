//! Retries with backoff and dead letters under per-function policies, with
//! the engine's injected clock: the waits are exact, a job waiting for its
//! retry is not handed out and wakes sleeping workers when it is due, a job
//! out of attempts becomes dead with its workload, a requeue runs it again,
//! and a function without a policy behaves as under gearmand.

mod support;

use std::time::Duration;

use sprocket_engine::policy::{Backoff, FunctionPolicy, PolicySpec, RetryOn, RetryReason};
use sprocket_engine::{
    Config, JobStatus, PersistMode, PersistOp, Record, RecordLookup, RecordState, RecordsConfig, RecordsMode,
    ReplayJob, POLICY_SETTING,
};
use sprocket_proto::{Priority, Request, Response};
use support::{b, Bed};

/// Records of background jobs kept in memory (`-q builtin`).
fn in_memory() -> Bed {
    Bed::new(Config {
        handle_prefix: "H:test".into(),
        records: RecordsConfig { mode: RecordsMode::Background, ..RecordsConfig::default() },
        ..Config::default()
    })
}

/// Jobs, records and settings kept in a store.
fn durable() -> Bed {
    Bed::new(Config {
        handle_prefix: "H:test".into(),
        persist: PersistMode::Immediate,
        records: RecordsConfig { mode: RecordsMode::Background, durable: true, ..RecordsConfig::default() },
        settings_durable: true,
        ..Config::default()
    })
}

fn fixed(attempts: u32, delay_ms: u64) -> FunctionPolicy {
    FunctionPolicy {
        max_attempts: attempts,
        backoff: Backoff::Fixed { delay: Duration::from_millis(delay_ms) },
        ..FunctionPolicy::default()
    }
}

/// A background submission with a store: JOB_CREATED once the insert is
/// reported durable.
fn bg_stored(bed: &mut Bed, conn: u64, f: &str, data: &str) -> bytes::Bytes {
    bed.send(
        conn,
        Request::SubmitJob {
            mode: sprocket_proto::SubmitMode { priority: Priority::Normal, background: true },
            function: b(f),
            unique: b(""),
            data: b(data),
        },
    );
    let through = bed.persisted.last().map(|(seq, _)| *seq).expect("written");
    bed.stored(through, &[]);
    match bed.packets(conn).pop() {
        Some(Response::JobCreated { handle }) => handle,
        other => panic!("expected JOB_CREATED, got {other:?}"),
    }
}

fn noops(bed: &mut Bed, conn: u64) -> usize {
    bed.packets(conn).iter().filter(|p| matches!(p, Response::Noop)).count()
}

fn record_of(bed: &mut Bed, handle: &[u8]) -> Option<Record> {
    match bed.engine.lookup_record(handle) {
        RecordLookup::Ready(found) => found.into_iter().next(),
        RecordLookup::Reading(_) => None,
    }
}

/// Jobs of `function` waiting for a retry, as the functions view counts them.
fn retrying_of(bed: &Bed, function: &str) -> usize {
    bed.engine.functions_view().into_iter().find(|f| f.name == b(function)).map_or(0, |f| f.retrying)
}

fn status_of(bed: &Bed, handle: &[u8]) -> Option<JobStatus> {
    bed.engine.job_views(&Default::default()).find(|j| j.handle == handle).map(|j| j.status)
}

#[test]
fn a_failed_job_waits_its_backoff_then_wakes_the_sleeping_worker_and_completes_on_attempt_three() {
    let mut bed = in_memory();
    bed.engine.set_file_policies(vec![("resize_*".into(), fixed(5, 2_000))]);
    let (client, admin) = (bed.connect(), bed.connect());
    let w = bed.worker(&["resize_png"]);
    let handle = bed.bg(client, "resize_png", "", "img");
    for attempt in 1..=2 {
        let (h, _, _, _) = bed.grab(w).expect("handed out");
        assert_eq!(h, handle);
        if attempt == 1 {
            bed.send(w, Request::WorkFail { handle: handle.clone() });
        } else {
            bed.send(w, Request::WorkException { handle: handle.clone(), data: b("disk full") });
        }
        assert_eq!(status_of(&bed, &handle), Some(JobStatus::Retrying));
        assert!(bed.admin(admin, "status").contains("resize_png\t1\t0\t1\n"), "counted as waiting");
        assert_eq!(retrying_of(&bed, "resize_png"), 1, "and as retrying in the view");
        assert_eq!(bed.grab(w), None, "not handed out during its backoff");
        bed.send(w, Request::PreSleep);
        bed.advance(1_999);
        assert_eq!(noops(&mut bed, w), 0, "not due yet");
        bed.advance(1);
        assert_eq!(noops(&mut bed, w), 1, "due: the sleeping worker is woken");
        assert_eq!(retrying_of(&bed, "resize_png"), 0, "due: queued again, no longer retrying");
        let record = record_of(&mut bed, &handle).expect("a live record");
        assert_eq!((record.failures(), record.state()), (attempt, RecordState::Queued));
    }
    let (h, _, _, _) = bed.grab(w).expect("third attempt");
    bed.send(w, Request::WorkComplete { handle: h, data: b("done") });
    let record = record_of(&mut bed, &handle).expect("kept in memory");
    assert_eq!((record.state(), record.attempts(), record.failures()), (RecordState::Complete, 3, 2));
    let ends: Vec<_> = record.attempt_log().iter().map(|a| a.ended.map(|(_, end)| end.as_str())).collect();
    assert_eq!(ends, [Some("failed"), Some("exception"), Some("completed")]);
    assert_eq!(record.attempt_log()[1].error.as_deref(), Some(&b"disk full"[..]));
    let counters = bed.engine.functions_view().into_iter().find(|f| f.name == b("resize_png")).expect("f").counters;
    assert_eq!((counters.retried, counters.completed, counters.dead), (2, 1, 0));
}

#[test]
fn the_record_says_retrying_with_the_time_of_the_next_attempt() {
    let mut bed = in_memory();
    bed.engine.set_file_policies(vec![("f".into(), fixed(3, 5_000))]);
    let (client, admin) = (bed.connect(), bed.connect());
    let w = bed.worker(&["f"]);
    let handle = bed.bg(client, "f", "", "x");
    bed.grab(w).expect("handed out");
    bed.send(w, Request::WorkException { handle: handle.clone(), data: b("boom") });
    let record = record_of(&mut bed, &handle).expect("live record");
    assert_eq!(record.state(), RecordState::Retrying);
    assert_eq!(record.retry_at(), Some(bed.now + 5_000));
    assert_eq!(record.error(), Some(&b"boom"[..]));
    let text = bed.admin(admin, &format!("record {}", String::from_utf8_lossy(&handle)));
    assert!(text.contains("state\tretrying\n"), "{text}");
    assert!(text.contains(&format!("retry_at\t{}\n", bed.now + 5_000)), "{text}");
}

#[test]
fn exponential_backoff_doubles_up_to_its_maximum() {
    let mut bed = in_memory();
    let policy = FunctionPolicy {
        max_attempts: 6,
        backoff: Backoff::Exponential {
            base: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(5),
            jitter: 0.0,
        },
        ..FunctionPolicy::default()
    };
    bed.engine.set_file_policies(vec![("f".into(), policy)]);
    let client = bed.connect();
    let w = bed.worker(&["f"]);
    let handle = bed.bg(client, "f", "", "x");
    for wait in [1_000, 2_000, 4_000, 5_000, 5_000] {
        bed.grab(w).expect("handed out");
        bed.send(w, Request::WorkFail { handle: handle.clone() });
        bed.advance(wait - 1);
        assert_eq!(bed.grab(w), None, "still waiting {wait} ms");
        bed.advance(1);
    }
    bed.grab(w).expect("the sixth attempt");
}

#[test]
fn a_job_out_of_attempts_becomes_dead_with_its_workload_and_a_requeue_runs_it_again() {
    let mut bed = in_memory();
    bed.engine.set_file_policies(vec![("f".into(), FunctionPolicy { dead_letter: true, ..fixed(2, 100) })]);
    let (client, admin) = (bed.connect(), bed.connect());
    let w = bed.worker(&["f"]);
    let handle = bed.bg(client, "f", "u1", "payload\0bytes");
    for _ in 0..2 {
        bed.grab(w).expect("handed out");
        bed.send(w, Request::WorkException { handle: handle.clone(), data: b("bad input") });
        bed.advance(100);
    }
    assert_eq!(bed.grab(w), None, "dead jobs are not handed out");
    assert!(bed.engine.job_views(&Default::default()).next().is_none(), "no live job is left");
    let record = record_of(&mut bed, &handle).expect("the dead letter");
    assert_eq!(record.state(), RecordState::Dead);
    assert_eq!(record.payload(), Some(&b"payload\0bytes"[..]));
    assert_eq!((record.failures(), record.error()), (2, Some(&b"bad input"[..])));
    let h = String::from_utf8_lossy(&handle).into_owned();
    assert!(bed.admin(admin, "records f dead").contains(&format!("{h}\tdead\t")));

    // Requeued: the same handle and unique, a fresh series of attempts.
    assert_eq!(bed.admin(admin, &format!("requeue {h}")), "OK 1\n");
    assert_eq!(bed.admin(admin, &format!("requeue {h}")), "ERR NOT_DEAD the+job+is+queued,+not+dead\r\n");
    let (again, _, unique, data) = bed.grab(w).expect("runs again");
    assert_eq!((again, unique, data), (handle.clone(), b("u1"), b("payload\0bytes")));
    bed.send(w, Request::WorkFail { handle: handle.clone() });
    assert_eq!(record_of(&mut bed, &handle).expect("live").state(), RecordState::Retrying, "a fresh series");
    bed.advance(100);
    bed.grab(w).expect("second attempt of the new series");
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("ok") });
    let record = record_of(&mut bed, &handle).expect("ended");
    assert_eq!((record.state(), record.attempts()), (RecordState::Complete, 4));
    assert!(record.payload().is_none(), "only a dead letter keeps its workload");
    assert_eq!(bed.admin(admin, &format!("requeue {h}")), "ERR NOT_DEAD the+job+is+complete,+not+dead\r\n");
    assert_eq!(bed.admin(admin, "requeue H:test:999"), "ERR UNKNOWN_JOB\r\n");
}

#[test]
fn requeue_function_revives_every_dead_job_of_the_function() {
    let mut bed = in_memory();
    bed.engine.set_file_policies(vec![("f".into(), FunctionPolicy { dead_letter: true, ..fixed(1, 0) })]);
    let (client, admin) = (bed.connect(), bed.connect());
    let w = bed.worker(&["f"]);
    for n in 0..3 {
        let handle = bed.bg(client, "f", "", &format!("job{n}"));
        bed.grab(w).expect("handed out");
        bed.send(w, Request::WorkFail { handle });
    }
    assert_eq!(bed.admin(admin, "requeue function f"), "OK 3\n");
    assert_eq!(bed.admin(admin, "requeue function f"), "OK 0\n");
    let mut data: Vec<_> = (0..3).map(|_| bed.grab(w).expect("requeued").3).collect();
    data.sort();
    assert_eq!(data, [b("job0"), b("job1"), b("job2")]);
}

#[test]
fn foreground_jobs_fail_at_once_unless_the_policy_retries_them_and_then_hear_only_the_end() {
    let mut bed = in_memory();
    bed.engine.set_file_policies(vec![
        ("plain".into(), fixed(3, 10)),
        ("fg".into(), FunctionPolicy { retry_foreground: true, ..fixed(3, 10) }),
    ]);
    let client = bed.connect();
    let w = bed.worker(&["plain", "fg"]);
    let handle = bed.fg(client, "plain", "", "x");
    bed.grab(w).expect("handed out");
    bed.send(w, Request::WorkFail { handle: handle.clone() });
    assert_eq!(bed.packets(client), [Response::WorkFail { handle }], "as under gearmand");

    let handle = bed.fg(client, "fg", "", "x");
    bed.grab(w).expect("handed out");
    bed.send(w, Request::WorkStatus { handle: handle.clone(), numerator: b("1"), denominator: b("2") });
    bed.send(w, Request::WorkFail { handle: handle.clone() });
    bed.advance(10);
    bed.grab(w).expect("second attempt");
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("ok") });
    let heard = bed.packets(client);
    assert_eq!(
        heard,
        [
            Response::WorkStatus { handle: handle.clone(), numerator: b("1"), denominator: b("2") },
            Response::WorkComplete { handle, data: b("ok") }
        ],
        "no WORK_FAIL for the retried attempt"
    );
}

#[test]
fn the_policy_timeout_limits_each_attempt_for_workers_without_can_do_timeout() {
    let mut bed = in_memory();
    let policy = FunctionPolicy {
        timeout: Some(Duration::from_secs(3)),
        retry_on: [RetryReason::Timeout].into_iter().collect::<RetryOn>(),
        dead_letter: true,
        ..fixed(2, 1_000)
    };
    bed.engine.set_file_policies(vec![("slow".into(), policy)]);
    let client = bed.connect();
    let (w1, w2) = (bed.worker(&["slow"]), bed.worker(&["slow"]));
    let handle = bed.bg(client, "slow", "", "x");
    bed.grab(w1).expect("handed out");
    bed.advance(2_999);
    assert_eq!(status_of(&bed, &handle).map(|s| matches!(s, JobStatus::Running { .. })), Some(true));
    bed.advance(1);
    assert_eq!(status_of(&bed, &handle), Some(JobStatus::Retrying), "timed out, waiting for its retry");
    bed.advance(1_000);
    bed.grab(w2).expect("second attempt");
    // A result from the first worker, too late, is refused.
    bed.send(w1, Request::WorkComplete { handle: handle.clone(), data: b("late") });
    assert!(matches!(bed.packets(w1).pop(), Some(Response::Error { .. })));
    bed.advance(3_000);
    let record = record_of(&mut bed, &handle).expect("dead");
    assert_eq!(record.state(), RecordState::Dead);
    let ends: Vec<_> = record.attempt_log().iter().filter_map(|a| a.ended.map(|(_, end)| end.as_str())).collect();
    assert_eq!(ends, ["timeout", "timeout"]);
}

#[test]
fn a_lost_worker_is_requeued_at_once_unless_the_policy_names_it() {
    let mut bed = in_memory();
    bed.engine.set_file_policies(vec![
        ("gearmand".into(), FunctionPolicy { retry_on: RetryOn::from_iter([RetryReason::Fail]), ..fixed(3, 60_000) }),
        ("named".into(), FunctionPolicy { retry_on: RetryOn::all(), ..fixed(3, 60_000) }),
    ]);
    let client = bed.connect();
    for (name, waits) in [("gearmand", false), ("named", true)] {
        let w = bed.worker(&[name]);
        let handle = bed.bg(client, name, "", "x");
        bed.grab(w).expect("handed out");
        bed.disconnect(w);
        let expected = if waits { JobStatus::Retrying } else { JobStatus::Queued };
        assert_eq!(status_of(&bed, &handle), Some(expected), "{name}");
    }
}

#[test]
fn without_a_policy_a_failure_ends_the_job_as_under_gearmand() {
    let mut bed = in_memory();
    bed.engine.set_file_policies(vec![("other".into(), fixed(5, 10))]);
    let client = bed.connect();
    let w = bed.worker(&["f"]);
    let handle = bed.bg(client, "f", "", "x");
    bed.grab(w).expect("handed out");
    bed.send(w, Request::WorkFail { handle: handle.clone() });
    assert_eq!(record_of(&mut bed, &handle).map(|r| r.state()), Some(RecordState::Failed));
}

#[test]
fn a_retry_wait_survives_a_restart_and_is_neither_lost_nor_hastened() {
    let mut bed = durable();
    bed.engine.set_file_policies(vec![("f".into(), fixed(3, 10_000))]);
    let client = bed.connect();
    let w = bed.worker(&["f"]);
    let handle = bg_stored(&mut bed, client, "f", "x");
    bed.grab(w).expect("handed out");
    bed.send(w, Request::WorkFail { handle: handle.clone() });
    // The last record written says retrying, with the time of the retry.
    let record = bed
        .persisted
        .iter()
        .rev()
        .find_map(|(_, op)| match op {
            PersistOp::Record { record, .. } => Some(record.clone()),
            _ => None,
        })
        .expect("a record write");
    assert_eq!(record.state(), RecordState::Retrying);
    let retry_at = record.retry_at().expect("retry time");

    // A new server, 4 s later, replays the row with that record.
    let mut again = durable();
    again.now = bed.now + 4_000;
    again.engine.set_file_policies(vec![("f".into(), fixed(3, 10_000))]);
    let row = bed.persisted.iter().find_map(|(_, op)| match op {
        PersistOp::Insert { unique, .. } => Some(unique.clone()),
        _ => None,
    });
    again.engine.replay(ReplayJob {
        function: b("f"),
        unique: row.expect("its row"),
        priority: Priority::Normal,
        data: b("x"),
        when: 0,
        record: Some(*record),
    });
    let w = again.worker(&["f"]);
    again.advance(0);
    assert_eq!(again.grab(w), None, "still waiting after the restart");
    assert_eq!(retrying_of(&again, "f"), 1, "counted as retrying after the restart");
    again.send(w, Request::PreSleep);
    again.advance(retry_at - again.now - 1);
    assert_eq!(noops(&mut again, w), 0);
    again.advance(1);
    assert_eq!(noops(&mut again, w), 1, "woken when the wait ends");
    let (h, _, _, _) = again.grab(w).expect("retried after the restart");
    assert_eq!(h, handle, "with its handle");
    again.send(w, Request::WorkFail { handle: h.clone() });
    assert_eq!(record_of(&mut again, &h).expect("live").failures(), 2, "earlier failures still count");
    assert_eq!(retrying_of(&again, "f"), 1);
    assert_eq!(again.engine.purge_queued(b"f"), Ok(1), "a retrying job is purged as a queued one");
    assert_eq!(retrying_of(&again, "f"), 0, "and no longer counted as retrying");
}

#[test]
fn operators_set_list_and_clear_policies_which_are_saved_before_ok() {
    let mut bed = durable();
    bed.engine.set_file_policies(vec![("resize_*".into(), fixed(2, 1_000))]);
    let admin = bed.connect();
    bed.engine.admin_line(admin, br#"policy set resize_* {"max_attempts": 7, "dead_letter": true}"#, bed.now);
    bed.advance(0);
    assert_eq!(bed.text(admin), "", "OK waits for the setting's write");
    let write = bed.settings.pop().expect("a setting write");
    assert_eq!((write.kind, &write.name[..]), (POLICY_SETTING, &b"resize_*"[..]));
    let saved = PolicySpec::from_json(write.value.as_deref().expect("a value").as_bytes()).unwrap();
    assert_eq!(saved.to_policy().unwrap().max_attempts, 7);
    bed.setting_done(write.id, Ok(()));
    assert_eq!(bed.text(admin), "OK\r\n");
    let list = bed.admin(admin, "policy");
    assert!(list.starts_with("resize_*\truntime\t{\"max_attempts\":7,"), "{list}");
    assert_eq!(list.lines().count(), 2, "the file's entry for the same pattern is overridden: {list}");

    bed.engine.admin_line(admin, b"policy clear resize_*", bed.now);
    bed.advance(0);
    let write = bed.settings.pop().expect("a setting write");
    assert_eq!(write.value, None);
    bed.setting_done(write.id, Ok(()));
    assert_eq!(bed.text(admin), "OK\r\n");
    assert!(bed.admin(admin, "policy").starts_with("resize_*\tfile\t{\"max_attempts\":2,"));
    let bad = bed.admin(admin, r#"policy set f {"max_attempts": 0}"#);
    assert!(bad.starts_with("ERR BAD_POLICY max_attempts"), "{bad}");
    let bad = bed.admin(admin, r#"policy set f {"retries": 3}"#);
    assert!(bad.starts_with("ERR BAD_POLICY bad+policy+JSON:+unknown+field"), "{bad}");
    assert!(bed.admin(admin, "policy clear nothing").starts_with("ERR NO_SUCH_POLICY"));

    // Given back at start-up.
    let mut again = durable();
    again.engine.restore_policy("resize_*", &write_value(&saved)).unwrap();
    assert_eq!(again.engine.policy_for(b"resize_jpg").map(|e| e.policy.max_attempts), Some(7));
}

fn write_value(spec: &PolicySpec) -> String {
    spec.to_json()
}

#[test]
fn a_requeue_read_from_the_store_answers_once_the_job_is_durable() {
    let mut bed = durable();
    bed.engine.set_file_policies(vec![("f".into(), FunctionPolicy { dead_letter: true, ..fixed(1, 0) })]);
    let (client, admin) = (bed.connect(), bed.connect());
    let w = bed.worker(&["f"]);
    let handle = bg_stored(&mut bed, client, "f", "work");
    bed.grab(w).expect("handed out");
    bed.send(w, Request::WorkFail { handle: handle.clone() });
    let dead = bed
        .persisted
        .iter()
        .rev()
        .find_map(|(_, op)| match op {
            PersistOp::Record { record, .. } if record.state() == RecordState::Dead => Some(record.clone()),
            _ => None,
        })
        .expect("the dead record written");
    let through = bed.persisted.last().map(|(seq, _)| *seq).expect("written");
    bed.stored(through, &[]);

    let h = String::from_utf8_lossy(&handle).into_owned();
    bed.engine.admin_line(admin, format!("requeue {h}").as_bytes(), bed.now);
    bed.advance(0);
    let read = bed.reads.pop().expect("read from the store");
    bed.answer_read(read.id, Ok(vec![*dead]));
    assert_eq!(bed.text(admin), "", "answered once the job is durable");
    let written: Vec<&str> = bed.persisted.iter().rev().take(2).map(|(_, op)| op_name(op)).collect();
    assert_eq!(written, ["record", "insert"], "its row and its queued record");
    let through = bed.persisted.last().map(|(seq, _)| *seq).expect("written");
    bed.stored(through, &[]);
    assert_eq!(bed.text(admin), "OK 1\n");
    let (again, _, _, data) = bed.grab(w).expect("runs again");
    assert_eq!((again, data), (handle, b("work")));
}

fn op_name(op: &PersistOp) -> &'static str {
    match op {
        PersistOp::Insert { .. } => "insert",
        PersistOp::Delete { .. } => "delete",
        PersistOp::Record { .. } => "record",
    }
}
