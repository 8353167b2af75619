//! Job records in the engine: each job's record through its life, what is
//! written to the store and when, the reserved functions `sprocket.*`, the
//! admin commands `record` / `records`, reads that wait for the store, and
//! handle numbers reserved in blocks.

mod support;

use sprocket_engine::{
    Config, ControlPurge, ControlRead, Out, PersistMode, PersistOp, PurgeStart, Record, RecordFilter, RecordLookup,
    RecordQuery, RecordState, RecordsConfig, RecordsMode, ReplayJob,
};
use sprocket_proto::{Priority, Request, Response, SubmitMode};
use sprocket_records::AttemptEnd;
use support::{b, Bed};

fn reporting() -> Bed {
    Bed::new(Config {
        handle_prefix: "H:test".into(),
        report_ended_jobs: true,
        report_payloads: true,
        job_retries: 2,
        ..Config::default()
    })
}

/// Records of background jobs kept in memory (`-q builtin`).
fn in_memory(mode: RecordsMode) -> Bed {
    Bed::new(Config {
        handle_prefix: "H:test".into(),
        records: RecordsConfig { mode, ..RecordsConfig::default() },
        ..Config::default()
    })
}

/// Records written to a store with the queue.
fn durable() -> Bed {
    Bed::new(Config {
        handle_prefix: "H:test".into(),
        persist: PersistMode::Immediate,
        records: RecordsConfig { mode: RecordsMode::Background, durable: true, ..RecordsConfig::default() },
        ..Config::default()
    })
}

fn submit_to(bed: &mut Bed, conn: u64, function: &str, payload: &[u8]) -> Vec<Response> {
    bed.send(
        conn,
        Request::SubmitJob {
            mode: SubmitMode { priority: Priority::Normal, background: false },
            function: b(function),
            unique: b(""),
            data: bytes::Bytes::copy_from_slice(payload),
        },
    );
    bed.packets(conn)
}

/// Sends a background SUBMIT_JOB of `function` with `unique` and the
/// workload `x`, leaving its answer (held for the store, if durable) to
/// the caller.
fn send_bg(bed: &mut Bed, conn: u64, function: &str, unique: &str) {
    bed.send(
        conn,
        Request::SubmitJob {
            mode: SubmitMode { priority: Priority::Normal, background: true },
            function: b(function),
            unique: b(unique),
            data: b("x"),
        },
    );
}

fn records_written(bed: &Bed) -> Vec<(RecordState, String)> {
    bed.persisted
        .iter()
        .filter_map(|(_, op)| match op {
            PersistOp::Record { record, .. } => {
                Some((record.state(), String::from_utf8_lossy(record.handle()).into_owned()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn nothing_is_recorded_or_reported_when_not_asked() {
    let mut bed = Bed::default();
    let client = bed.connect();
    bed.bg(client, "f", "", "x");
    let w = bed.worker(&["f"]);
    let (handle, ..) = bed.grab(w).unwrap();
    bed.send(w, Request::WorkComplete { handle, data: b("done") });
    assert!(bed.ended.is_empty(), "{:?}", bed.ended);
    assert!(bed.persisted.is_empty());
    assert_eq!(bed.engine.records_in_memory(), 0);
}

#[test]
fn a_completed_job_reports_times_worker_data_and_result() {
    let mut bed = reporting();
    let client = bed.connect();
    let submitted = bed.now;
    let handle = bed.fg(client, "resize", "img-7", "x");
    bed.advance(40);
    let w = bed.worker(&["resize"]);
    bed.send(w, Request::SetClientId { id: b("worker-1") });
    let started = bed.now;
    bed.grab(w).unwrap();
    bed.send(w, Request::WorkData { handle: handle.clone(), data: b("part") });
    bed.send(w, Request::WorkStatus { handle: handle.clone(), numerator: b("1"), denominator: b("2") });
    bed.advance(600);
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("done") });
    assert_eq!(bed.ended.len(), 1);
    let r = &bed.ended[0];
    assert_eq!((r.handle(), r.function(), r.unique()), (&handle[..], &b"resize"[..], &b"img-7"[..]));
    assert!(!r.is_background());
    assert_eq!((r.state(), r.attempts()), (RecordState::Complete, 1));
    assert_eq!((r.submitted(), r.first_started(), r.finished()), (submitted, Some(started), Some(started + 600)));
    let worker = r.last_worker().unwrap();
    assert_eq!((&worker.client_id[..], &*worker.peer), (&b"worker-1"[..], "127.0.0.1"));
    assert_eq!(r.result(), Some(&b"done"[..]));
    assert_eq!(r.chunks()[0].bytes(), b"part");
    assert_eq!(r.status_numbers().map(|s| (s.numerator, s.denominator)), Some((1, 2)));
    assert_eq!(bed.engine.records_in_memory(), 0, "the job log alone keeps nothing");
}

#[test]
fn failures_exceptions_and_cancels_are_reported_once_each() {
    let mut bed = reporting();
    let client = bed.connect();
    let w = bed.worker(&["f"]);
    let failed = bed.bg(client, "f", "a", "x");
    bed.grab(w).unwrap();
    bed.send(w, Request::WorkFail { handle: failed.clone() });
    let excepted = bed.bg(client, "f", "b", "x");
    bed.grab(w).unwrap();
    bed.send(w, Request::WorkException { handle: excepted.clone(), data: b("boom") });
    let cancelled = bed.bg(client, "f", "c", "x");
    let admin = bed.connect();
    let reply = bed.admin(admin, &format!("cancel job {}", String::from_utf8_lossy(&cancelled)));
    assert!(reply.starts_with("OK"), "{reply}");
    let outcomes: Vec<_> = bed.ended.iter().map(|r| (r.handle().to_vec(), r.state(), r.attempts())).collect();
    assert_eq!(
        outcomes,
        [
            (failed.to_vec(), RecordState::Failed, 1),
            (excepted.to_vec(), RecordState::Exception, 1),
            (cancelled.to_vec(), RecordState::Cancelled, 0)
        ]
    );
    assert_eq!(bed.ended[1].error(), Some(&b"boom"[..]));
    assert_eq!((bed.ended[2].first_started(), bed.ended[2].last_worker()), (None, None));
}

#[test]
fn a_job_whose_workers_keep_leaving_is_dropped_with_every_attempt_in_its_record() {
    let mut bed = reporting();
    let client = bed.connect();
    let handle = bed.bg(client, "f", "", "x");
    let first = bed.worker(&["f"]);
    bed.send(first, Request::SetClientId { id: b("first") });
    bed.grab(first).unwrap();
    bed.disconnect(first);
    assert!(bed.ended.is_empty(), "one lost attempt of two allowed does not end the job");
    bed.advance(100);
    let second = bed.worker(&["f"]);
    bed.send(second, Request::SetClientId { id: b("second") });
    bed.grab(second).unwrap();
    bed.advance(50);
    bed.disconnect(second);
    assert_eq!(bed.ended.len(), 1);
    let r = &bed.ended[0];
    assert_eq!((r.handle(), r.state(), r.attempts()), (&handle[..], RecordState::Dropped, 2));
    let log: Vec<_> = r.attempt_log().iter().map(|a| (a.worker.client_id.clone(), a.ended.map(|e| e.1))).collect();
    assert_eq!(log, [(b("first"), Some(AttemptEnd::WorkerLost)), (b("second"), Some(AttemptEnd::WorkerLost))]);
}

#[test]
fn a_job_cancelled_while_running_is_recorded_at_the_cancel_and_not_again() {
    let mut bed = reporting();
    let client = bed.connect();
    let handle = bed.bg(client, "f", "", "x");
    let w = bed.worker(&["f"]);
    bed.grab(w).unwrap();
    let admin = bed.connect();
    let reply = bed.admin(admin, &format!("cancel job {}", String::from_utf8_lossy(&handle)));
    assert!(reply.starts_with("OK"), "{reply}");
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("late") });
    let outcomes: Vec<_> = bed.ended.iter().map(|r| (r.handle().to_vec(), r.state(), r.attempts())).collect();
    assert_eq!(outcomes, [(handle.to_vec(), RecordState::Cancelled, 1)]);
}

#[test]
fn durable_records_go_with_the_insert_each_start_and_just_before_the_delete() {
    let mut bed = durable();
    let client = bed.connect();
    send_bg(&mut bed, client, "f", "u");
    let through = bed.persisted.last().unwrap().0;
    bed.stored(through, &[]);
    let Some(Response::JobCreated { handle }) = bed.packets(client).pop() else { panic!("no JOB_CREATED") };
    let w = bed.worker(&["f"]);
    bed.grab(w).unwrap();
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("r") });
    let h = String::from_utf8_lossy(&handle).into_owned();
    assert_eq!(
        records_written(&bed),
        [(RecordState::Queued, h.clone()), (RecordState::Running, h.clone()), (RecordState::Complete, h)]
    );
    let kinds: Vec<&str> = bed
        .persisted
        .iter()
        .map(|(_, op)| match op {
            PersistOp::Insert { .. } => "insert",
            PersistOp::Delete { .. } => "delete",
            PersistOp::Record { .. } => "record",
        })
        .collect();
    assert_eq!(kinds, ["insert", "record", "record", "record", "delete"], "the final record precedes the delete");
    let PersistOp::Record { row_unique, .. } = &bed.persisted[1].1 else { unreachable!() };
    assert_eq!(&row_unique[..], b"u", "a replay finds the handle by the queue row's key");
}

#[test]
fn foreground_jobs_have_records_only_with_records_all() {
    for (mode, expected) in [(RecordsMode::Background, 0), (RecordsMode::All, 1)] {
        let mut bed = in_memory(mode);
        let client = bed.connect();
        let handle = bed.fg(client, "f", "", "x");
        let w = bed.worker(&["f"]);
        bed.grab(w).unwrap();
        bed.send(w, Request::WorkComplete { handle, data: b("r") });
        assert_eq!(bed.engine.records_in_memory(), expected, "{mode:?}");
    }
}

#[test]
fn sprocket_result_replays_an_ended_background_job_as_a_foreground_client_saw_it() {
    let mut bed = in_memory(RecordsMode::Background);
    let client = bed.connect();
    let handle = bed.bg(client, "f", "", "x");
    let w = bed.worker(&["f"]);
    bed.grab(w).unwrap();
    bed.send(w, Request::WorkData { handle: handle.clone(), data: b("d1") });
    bed.send(w, Request::WorkWarning { handle: handle.clone(), data: b("w1") });
    bed.send(w, Request::WorkStatus { handle: handle.clone(), numerator: b("3"), denominator: b("4") });
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("result") });
    let reader = bed.connect();
    let got = submit_to(&mut bed, reader, "sprocket.result", &handle);
    assert_eq!(
        got,
        [
            Response::JobCreated { handle: handle.clone() },
            Response::WorkData { handle: handle.clone(), data: b("d1") },
            Response::WorkWarning { handle: handle.clone(), data: b("w1") },
            Response::WorkStatus { handle: handle.clone(), numerator: b("3"), denominator: b("4") },
            Response::WorkComplete { handle: handle.clone(), data: b("result") },
        ]
    );
}

#[test]
fn sprocket_result_attaches_to_a_live_job_and_hears_the_rest() {
    let mut bed = in_memory(RecordsMode::Background);
    let client = bed.connect();
    let handle = bed.bg(client, "f", "", "x");
    let reader = bed.connect();
    assert_eq!(
        submit_to(&mut bed, reader, "sprocket.result", &handle),
        [Response::JobCreated { handle: handle.clone() }]
    );
    let w = bed.worker(&["f"]);
    bed.grab(w).unwrap();
    bed.send(w, Request::WorkData { handle: handle.clone(), data: b("d") });
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("r") });
    assert_eq!(
        bed.packets(reader),
        [Response::WorkData { handle: handle.clone(), data: b("d") }, Response::WorkComplete { handle, data: b("r") }]
    );
    bed.disconnect(reader);
}

#[test]
fn an_unknown_handle_fails_or_raises_unknown_job() {
    let mut bed = in_memory(RecordsMode::Background);
    let plain = bed.connect();
    assert_eq!(
        submit_to(&mut bed, plain, "sprocket.result", b"H:test:999"),
        [Response::JobCreated { handle: b("H:test:999") }, Response::WorkFail { handle: b("H:test:999") }]
    );
    let exceptions = bed.connect();
    bed.send(exceptions, Request::OptionReq { name: b("exceptions") });
    bed.packets(exceptions);
    let got = submit_to(&mut bed, exceptions, "sprocket.result", b"\x00not a handle");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        matches!(&got[1], Response::WorkException { data, .. } if &data[..] == b"unknown job"),
        "a handle that cannot be named is answered under another: {got:?}"
    );
}

#[test]
fn sprocket_record_answers_json_of_live_and_ended_jobs_under_its_own_handle() {
    let mut bed = in_memory(RecordsMode::Background);
    let client = bed.connect();
    let handle = bed.bg(client, "f", "u1", "x");
    let reader = bed.connect();
    let live = submit_to(&mut bed, reader, "sprocket.record", &handle);
    let [Response::JobCreated { handle: own }, Response::WorkComplete { handle: done, data }] = &live[..] else {
        panic!("{live:?}")
    };
    assert_eq!(own, done);
    assert_ne!(own, &handle, "the JSON does not pose as the job's result");
    let record: Record = serde_json::from_slice(data).unwrap();
    assert_eq!((record.state(), record.unique()), (RecordState::Queued, &b"u1"[..]));
    let w = bed.worker(&["f"]);
    bed.grab(w).unwrap();
    bed.send(w, Request::WorkFail { handle: handle.clone() });
    let ended = submit_to(&mut bed, reader, "sprocket.record", &handle);
    let Response::WorkComplete { data, .. } = &ended[1] else { panic!("{ended:?}") };
    let record: Record = serde_json::from_slice(data).unwrap();
    assert_eq!((record.state(), record.attempts()), (RecordState::Failed, 1));
    let unknown = submit_to(&mut bed, reader, "sprocket.record", b"H:test:12345");
    assert!(matches!(unknown[1], Response::WorkFail { .. }), "{unknown:?}");
}

#[test]
fn sprocket_records_searches_with_a_json_filter_and_refuses_a_bad_one() {
    let mut bed = in_memory(RecordsMode::Background);
    let client = bed.connect();
    let w = bed.worker(&["f", "g"]);
    for (f, u) in [("f", "1"), ("g", "2"), ("f", "3")] {
        let handle = bed.bg(client, f, u, "x");
        bed.grab(w).unwrap();
        bed.advance(5);
        bed.send(w, Request::WorkComplete { handle, data: b("r") });
    }
    let reader = bed.connect();
    let got = submit_to(&mut bed, reader, "sprocket.records", br#"{"function":"f","limit":10}"#);
    let Response::WorkComplete { data, .. } = &got[1] else { panic!("{got:?}") };
    let found: Vec<Record> = serde_json::from_slice(data).unwrap();
    let uniques: Vec<&[u8]> = found.iter().map(|r| r.unique()).collect();
    assert_eq!(uniques, [&b"3"[..], b"1"], "newest end first");
    let bad = submit_to(&mut bed, reader, "sprocket.records", br#"{"state":"sideways"}"#);
    assert!(matches!(bad[1], Response::WorkFail { .. }), "{bad:?}");
}

#[test]
fn workers_cannot_register_reserved_functions_and_background_submits_are_refused() {
    let mut bed = in_memory(RecordsMode::Background);
    let w = bed.connect();
    bed.send(w, Request::CanDo { function: b("sprocket.result") });
    assert!(matches!(&bed.packets(w)[..], [Response::Error { .. }]));
    let status = bed.admin(w, "status");
    assert!(!status.contains("sprocket.result"), "nothing was registered: {status}");
    let client = bed.connect();
    bed.send(
        client,
        Request::SubmitJob {
            mode: SubmitMode { priority: Priority::Normal, background: true },
            function: b("sprocket.result"),
            unique: b(""),
            data: b("H:test:1"),
        },
    );
    assert!(matches!(&bed.packets(client)[..], [Response::Error { .. }]));
    let other = submit_to(&mut bed, client, "sprocket.nothing", b"");
    assert!(matches!(&other[..], [Response::Error { .. }]), "{other:?}");
}

#[test]
fn a_read_from_the_store_holds_later_replies_in_order() {
    let mut bed = durable();
    let reader = bed.connect();
    bed.send(
        reader,
        Request::SubmitJob {
            mode: SubmitMode { priority: Priority::Normal, background: false },
            function: b("sprocket.result"),
            unique: b(""),
            data: b("H:test:77"),
        },
    );
    bed.send(reader, Request::EchoReq { data: b("after") });
    assert!(bed.packets(reader).is_empty(), "the echo waits behind the read");
    let read = bed.reads.pop().expect("a read was asked for");
    assert_eq!(read.query, RecordQuery::Handle(b("H:test:77")));
    let mut record = Record::new(b"H:test:77", b"f", b"", Priority::Normal, true, 1).unwrap();
    record.ended(sprocket_records::Outcome::Complete(b"old"), 2, Default::default()).unwrap();
    bed.answer_read(read.id, Ok(vec![record]));
    assert_eq!(
        bed.packets(reader),
        [
            Response::JobCreated { handle: b("H:test:77") },
            Response::WorkComplete { handle: b("H:test:77"), data: b("old") },
            Response::EchoRes { data: b("after") },
        ]
    );
    let admin = bed.connect();
    bed.engine.admin_line(admin, b"records f failed 5", bed.now);
    bed.answer_read(1 + read.id, Err("database down".into()));
    let text: Vec<Out> = bed.take(admin);
    assert!(matches!(&text[..], [Out::Text(t)] if t.starts_with(b"ERR RECORDS_UNAVAILABLE")), "{text:?}");
}

#[test]
fn a_just_ended_record_is_answered_before_the_store_confirms_it() {
    let mut bed = durable();
    let client = bed.connect();
    let w = bed.worker(&["f"]);
    send_bg(&mut bed, client, "f", "");
    let (handle, ..) = bed.grab(w).unwrap();
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("fresh") });
    let reader = bed.connect();
    let got = submit_to(&mut bed, reader, "sprocket.result", &handle);
    assert_eq!(got.last(), Some(&Response::WorkComplete { handle: handle.clone(), data: b("fresh") }));
    assert!(bed.reads.is_empty(), "nothing had to be read from the store");
    let through = bed.persisted.last().unwrap().0;
    bed.stored(through, &[]);
    submit_to(&mut bed, reader, "sprocket.result", &handle);
    assert_eq!(bed.reads.len(), 1, "once durable, the store answers");
}

/// A background submission joins a foreground job a worker already runs:
/// the record it gets says `running`, with that attempt, not `queued`.
#[test]
fn a_background_join_of_a_running_job_records_the_attempt_under_way() {
    let mut bed = durable();
    let client = bed.connect();
    let handle = bed.fg(client, "f", "same", "x");
    let w = bed.worker(&["f"]);
    bed.grab(w).unwrap();
    let joiner = bed.connect();
    send_bg(&mut bed, joiner, "f", "same");
    let h = String::from_utf8_lossy(&handle).into_owned();
    assert_eq!(records_written(&bed), [(RecordState::Running, h)]);
    let Some((_, PersistOp::Record { record, .. })) = bed.persisted.last() else { panic!("no record written") };
    assert_eq!(record.attempts(), 1);
}

/// The store still has a job's record from before its end (its final
/// record waits for a database that was away) and the engine no longer
/// has the job: sprocket.result says the end is not stored yet, not that
/// the job is unknown.
#[test]
fn a_stored_record_without_its_end_is_not_an_unknown_job() {
    let mut bed = durable();
    let reader = bed.connect();
    bed.send(reader, Request::OptionReq { name: b("exceptions") });
    bed.packets(reader);
    submit_to(&mut bed, reader, "sprocket.result", b"H:test:78");
    let read = bed.reads.pop().expect("a read was asked for");
    let mut running = Record::new(b"H:test:78", b"f", b"", Priority::Normal, true, 1).unwrap();
    running.started(sprocket_records::Worker { client_id: b("-"), peer: "127.0.0.1".into() }, 2).unwrap();
    bed.answer_read(read.id, Ok(vec![running]));
    let got = bed.packets(reader);
    let [Response::JobCreated { handle }, Response::WorkException { handle: failed, data }] = &got[..] else {
        panic!("{got:?}")
    };
    assert_eq!((handle, failed), (&b("H:test:78"), &b("H:test:78")));
    assert!(data.starts_with(b"job records unavailable: the end of this job is not stored yet"), "{got:?}");
}

#[test]
fn admin_record_and_records_answer_from_memory() {
    let mut bed = in_memory(RecordsMode::Background);
    let client = bed.connect();
    let handle = bed.bg(client, "f", "u", "x");
    let w = bed.worker(&["f"]);
    bed.grab(w).unwrap();
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("r") });
    let admin = bed.connect();
    let text = bed.admin(admin, &format!("record {}", String::from_utf8_lossy(&handle)));
    assert!(text.contains("state\tcomplete\n") && text.contains("result\tr\n") && text.ends_with(".\n"), "{text}");
    let list = bed.admin(admin, "records f complete 10");
    assert!(list.starts_with(&format!("{}\tcomplete\t1\t", String::from_utf8_lossy(&handle))), "{list}");
    assert_eq!(bed.admin(admin, "records f"), list);
    assert!(bed.admin(admin, "records f sideways").starts_with("ERR INVALID_ARGUMENTS"));
    assert!(bed.admin(admin, "records f 0").starts_with("ERR INVALID_ARGUMENTS"));
    assert_eq!(bed.admin(admin, "record H:test:999"), "ERR UNKNOWN_JOB\r\n");
}

#[test]
fn in_memory_records_expire_after_the_retention() {
    let mut bed = Bed::new(Config {
        handle_prefix: "H:test".into(),
        records: RecordsConfig {
            mode: RecordsMode::Background,
            retention: sprocket_records::Retention { keep_ms: 10_000, dead_keep_ms: 10_000, max_count: 2 },
            ..RecordsConfig::default()
        },
        ..Config::default()
    });
    let client = bed.connect();
    let w = bed.worker(&["f"]);
    for _ in 0..3 {
        let handle = bed.bg(client, "f", "", "x");
        bed.grab(w).unwrap();
        bed.send(w, Request::WorkComplete { handle, data: b("r") });
    }
    assert_eq!(bed.engine.records_in_memory(), 2, "--record-max-count pushes out the oldest");
    assert!(bed.engine.next_deadline().is_some(), "the engine wakes for the expiry");
    bed.advance(11_000);
    assert_eq!(bed.engine.records_in_memory(), 0);
}

#[test]
fn a_replayed_job_gets_its_handle_back_and_its_lost_attempt_is_in_its_record() {
    let mut bed = Bed::new(Config {
        handle_prefix: "H:test".into(),
        persist: PersistMode::Immediate,
        records: RecordsConfig { mode: RecordsMode::Background, durable: true, ..RecordsConfig::default() },
        first_handle: 2_000_001,
        handle_block: 1_000_000,
        ..Config::default()
    });
    let mut record = Record::new(b"H:test:42", b"f", b"u", Priority::Normal, true, 1).unwrap();
    let worker = sprocket_records::Worker { client_id: b("w"), peer: "10.0.0.1".into() };
    record.started(worker, 5).unwrap();
    bed.engine.replay(ReplayJob {
        function: b("f"),
        unique: b("u"),
        priority: Priority::Normal,
        data: b("x"),
        when: 0,
        record: Some(record),
    });
    bed.engine.replay(ReplayJob {
        function: b("f"),
        unique: b("gearmand-row"),
        priority: Priority::Normal,
        data: b("y"),
        when: 0,
        record: None,
    });
    let w = bed.worker(&["f"]);
    let (first, ..) = bed.grab(w).unwrap();
    let (second, ..) = bed.grab(w).unwrap();
    assert_eq!(first, b("H:test:42"));
    assert_eq!(second, b("H:test:2000001"), "a row without a record gets a number from the reserved block");
    bed.send(w, Request::WorkComplete { handle: first, data: b("r") });
    let finals: Vec<_> = bed
        .persisted
        .iter()
        .filter_map(|(_, op)| match op {
            PersistOp::Record { record, .. } if record.state().is_final() => Some(record.clone()),
            _ => None,
        })
        .collect();
    let log: Vec<_> = finals[0].attempt_log().iter().map(|a| a.ended.map(|e| e.1)).collect();
    assert_eq!(log, [Some(AttemptEnd::Interrupted), Some(AttemptEnd::Completed)]);
    assert_eq!(finals[0].attempts(), 2);
}

#[test]
fn new_handle_blocks_are_asked_for_at_half_and_used_after_the_first() {
    let mut bed =
        Bed::new(Config { handle_prefix: "H:test".into(), first_handle: 11, handle_block: 4, ..Config::default() });
    let client = bed.connect();
    assert_eq!(bed.bg(client, "f", "", "x"), b("H:test:11"));
    assert!(!bed.wants_handles);
    bed.bg(client, "f", "", "x");
    bed.bg(client, "f", "", "x");
    assert!(bed.wants_handles, "half of the block is used");
    bed.engine.add_handle_block(101);
    assert_eq!(bed.bg(client, "f", "", "x"), b("H:test:14"));
    assert_eq!(bed.bg(client, "f", "", "x"), b("H:test:101"), "the next block");
}

/// A durable bed where a background job of `f` has just ended (its end not
/// yet confirmed by the store); returns its handle.
fn just_ended(bed: &mut Bed) -> bytes::Bytes {
    let client = bed.connect();
    let w = bed.worker(&["f"]);
    send_bg(bed, client, "f", "");
    let (handle, ..) = bed.grab(w).unwrap();
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("r") });
    handle
}

/// A search answered by the store without a job that ended just before it
/// was asked for still lists it: also when the commit of the job's end is
/// reported to the engine before the store's answer (the search ran before
/// that commit), and for the server's own control queries as for admin
/// `records`.
#[test]
fn a_search_lists_a_just_ended_job_the_store_has_not_confirmed_yet() {
    for commit_reported_first in [false, true] {
        let mut bed = durable();
        let handle = just_ended(&mut bed);
        let admin = bed.connect();
        assert_eq!(bed.admin(admin, "records f"), "", "the answer waits for the store");
        let read = bed.reads.pop().expect("the search goes to the store");
        if commit_reported_first {
            let through = bed.persisted.last().unwrap().0;
            bed.stored(through, &[]);
        }
        bed.answer_read(read.id, Ok(Vec::new()));
        let text: Vec<Out> = bed.take(admin);
        let [Out::Text(list)] = &text[..] else { panic!("{text:?}") };
        assert!(list.starts_with(&handle[..]), "{commit_reported_first}: {}", String::from_utf8_lossy(list));
    }
    let mut bed = durable();
    let handle = just_ended(&mut bed);
    let filter = RecordFilter { function: Some(b("f")), limit: 10, ..RecordFilter::default() };
    let RecordLookup::Reading(id) = bed.engine.search_records(filter) else { panic!("searched in the store") };
    let through = bed.persisted.last().unwrap().0;
    bed.stored(through, &[]);
    bed.answer_read(id, Ok(Vec::new()));
    let [ControlRead { result: Ok(found), .. }] = &bed.control_reads[..] else { panic!("{:?}", bed.control_reads) };
    assert_eq!(found.iter().map(|r| r.handle()).collect::<Vec<_>>(), [&handle[..]]);
}

#[test]
fn ended_records_stay_readable_while_the_store_is_down() {
    let mut bed = durable();
    let client = bed.connect();
    let w = bed.worker(&["f"]);
    send_bg(&mut bed, client, "f", "");
    let through = bed.persisted.last().unwrap().0;
    bed.stored(through, &[]);
    let (handle, ..) = bed.grab(w).unwrap();
    bed.engine.set_store_down(true);
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("kept") });
    // The writer keeps the record for after the outage and reports it handled.
    let through = bed.persisted.last().unwrap().0;
    bed.stored(through, &[]);
    let reader = bed.connect();
    let got = submit_to(&mut bed, reader, "sprocket.result", &handle);
    assert_eq!(got.last(), Some(&Response::WorkComplete { handle: handle.clone(), data: b("kept") }));
    assert!(bed.reads.is_empty(), "answered from memory, not from the stale store");
    bed.engine.set_store_down(false);
    bed.stored(through, &[]);
    submit_to(&mut bed, reader, "sprocket.result", &handle);
    assert_eq!(bed.reads.len(), 1, "once the store is back and has reported, it answers");
}

/// The server's own queries (its web port) find records where
/// `sprocket.record` does: a live job's, a just-ended one's in memory,
/// else a read of the store, which no connection waits for; its answer
/// comes back in the outbox's `control_reads`.
#[test]
fn control_queries_read_records_from_the_engine_or_through_the_store() {
    let mut bed = durable();
    let client = bed.connect();
    send_bg(&mut bed, client, "f", "u");
    // JOB_CREATED waits for the store's commit.
    let through = bed.persisted.last().unwrap().0;
    bed.stored(through, &[]);
    let Some(Response::JobCreated { handle }) = bed.packets(client).into_iter().next() else {
        panic!("JOB_CREATED for the background job")
    };
    match bed.engine.lookup_record(&handle) {
        RecordLookup::Ready(found) => assert_eq!(found[0].state(), RecordState::Queued),
        other => panic!("a live job's record is the engine's: {other:?}"),
    }
    let w = bed.worker(&["f"]);
    bed.grab(w).unwrap();
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("done") });
    let ended = match bed.engine.lookup_record(&handle) {
        RecordLookup::Ready(found) => found.into_iter().next().expect("the just-ended record"),
        other => panic!("unconfirmed, so still in memory: {other:?}"),
    };
    assert_eq!((ended.state(), ended.result()), (RecordState::Complete, Some(&b"done"[..])));
    let through = bed.persisted.last().unwrap().0;
    bed.stored(through, &[]);
    bed.inbox.clear();

    let RecordLookup::Reading(id) = bed.engine.lookup_record(&handle) else { panic!("confirmed: read from the store") };
    bed.advance(0);
    assert_eq!(bed.reads.len(), 1);
    assert_eq!((bed.reads[0].id, &bed.reads[0].query), (id, &RecordQuery::Handle(handle.clone())));
    bed.answer_read(id, Ok(vec![ended.clone()]));
    assert_eq!(bed.control_reads, [ControlRead { id, result: Ok(vec![ended]) }]);
    assert!(bed.inbox.values().all(Vec::is_empty), "no connection hears of it: {:?}", bed.inbox);

    let filter = RecordFilter { function: Some(b("f")), limit: 10, ..RecordFilter::default() };
    let RecordLookup::Reading(search) = bed.engine.search_records(filter.clone()) else {
        panic!("searched in the store")
    };
    bed.advance(0);
    assert_eq!(bed.reads.last().map(|r| &r.query), Some(&RecordQuery::Search(filter)));
    bed.answer_read(search, Err("database down".into()));
    assert_eq!(bed.control_reads.last(), Some(&ControlRead { id: search, result: Err("database down".into()) }));

    // A live job that keeps no record (foreground) is not looked for in the store.
    let other = bed.connect();
    bed.send(
        other,
        Request::SubmitJob {
            mode: SubmitMode { priority: Priority::Normal, background: false },
            function: b("g"),
            unique: b(""),
            data: b("x"),
        },
    );
    // Its JOB_CREATED waits for the store's commit.
    let through = bed.persisted.last().unwrap().0;
    bed.stored(through, &[]);
    let Some(Response::JobCreated { handle: foreground }) = bed.packets(other).into_iter().next() else {
        panic!("JOB_CREATED for the foreground job")
    };
    assert_eq!(bed.engine.lookup_record(&foreground), RecordLookup::Ready(Vec::new()));
    assert_eq!(bed.reads.len(), 2, "no read for it");
}

#[test]
fn control_queries_answer_at_once_from_records_in_memory() {
    let mut bed = in_memory(RecordsMode::Background);
    let client = bed.connect();
    let handle = bed.bg(client, "f", "u", "x");
    let w = bed.worker(&["f"]);
    bed.grab(w).unwrap();
    bed.send(w, Request::WorkFail { handle: handle.clone() });
    let RecordLookup::Ready(found) = bed.engine.lookup_record(&handle) else { panic!("in memory") };
    assert_eq!(found[0].state(), RecordState::Failed);
    let filter = RecordFilter { state: Some(RecordState::Failed), limit: 5, ..RecordFilter::default() };
    let RecordLookup::Ready(found) = bed.engine.search_records(filter) else { panic!("in memory") };
    assert_eq!(found.len(), 1);
    assert_eq!(bed.engine.lookup_record(b"H:test:999"), RecordLookup::Ready(Vec::new()));
    assert!(bed.reads.is_empty());
}

/// Ends a background job of `function` with WORK_EXCEPTION `text`.
fn ends_with_exception(bed: &mut Bed, function: &str, text: &str) -> bytes::Bytes {
    let client = bed.connect();
    send_bg(bed, client, function, "");
    if let Some((seq, _)) = bed.persisted.last() {
        let through = *seq;
        bed.stored(through, &[]);
    }
    let w = bed.worker(&[function]);
    let (handle, ..) = bed.grab(w).unwrap();
    bed.send(w, Request::WorkException { handle: handle.clone(), data: b(text) });
    handle
}

/// Admin `records {JSON}` and `dead [JSON]` from the engine's own records
/// (`-q builtin`): error text without regard to case, the state forced to
/// dead, and refusals naming the problem.
#[test]
fn admin_json_searches_match_error_text_and_force_dead() {
    let mut bed = in_memory(RecordsMode::Background);
    let full = ends_with_exception(&mut bed, "f", "Disk FULL on sda");
    ends_with_exception(&mut bed, "f", "network down");
    let admin = bed.connect();
    let list = bed.admin(admin, r#"records {"function": "f", "error": "disk full"}"#);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].starts_with(&*String::from_utf8_lossy(&full)), "{list}");
    assert_eq!(lines[1], ".");
    assert_eq!(bed.admin(admin, r#"records {"error": "nothing like it"}"#), ".\n");
    assert_eq!(bed.admin(admin, "dead"), ".\n", "no job is dead");
    assert_eq!(bed.admin(admin, r#"dead {"error": "disk"}"#), ".\n");
    let refused = bed.admin(admin, r#"dead {"state": "exception"}"#);
    assert!(refused.starts_with("ERR INVALID_ARGUMENTS dead+lists+dead+jobs+only"), "{refused}");
    let refused = bed.admin(admin, r#"records {"error": ""}"#);
    assert!(refused.starts_with("ERR INVALID_ARGUMENTS") && refused.contains("empty"), "{refused}");
    assert!(bed.admin(admin, r#"records {"colour": "red"}"#).starts_with("ERR INVALID_ARGUMENTS"));
    // Without a store, a purge is done at once.
    assert_eq!(bed.admin(admin, "purge dead f"), "OK 0\n");
    assert_eq!(bed.engine.purge_dead_records(None), PurgeStart::Done(0));
    assert!(bed.purges.is_empty(), "nothing for the store");
    assert_eq!(bed.admin(admin, r#"records {"error": "DISK"}"#).lines().count(), 2, "other records stay");
}

/// With a store, `purge dead [F]` hands the store a purge of state dead
/// (and F), and answers `OK <n>` only once the store reports it done, in
/// order with the connection's later replies; a failure says why.
#[test]
fn purge_dead_answers_once_the_store_has_deleted() {
    let mut bed = durable();
    let admin = bed.connect();
    assert_eq!(bed.admin(admin, "purge dead resize"), "", "the answer waits for the store");
    let purge = bed.purges.pop().expect("a purge for the store");
    assert_eq!(purge.filter.function.as_deref(), Some(&b"resize"[..]));
    assert_eq!(purge.filter.state, Some(RecordState::Dead));
    assert_eq!(bed.admin(admin, "version"), "", "held behind the purge");
    bed.purge_done(purge.id, Ok(3));
    assert_eq!(bed.text(admin), "OK 3\nOK 1.1.20\n");

    assert_eq!(bed.admin(admin, "purge dead"), "");
    let purge = bed.purges.pop().expect("a purge for the store");
    assert_eq!((purge.filter.function.clone(), purge.filter.state), (None, Some(RecordState::Dead)));
    bed.purge_done(purge.id, Err("database gone".into()));
    assert_eq!(bed.text(admin), "ERR RECORDS_UNAVAILABLE database+gone\r\n");

    // The web port's purge comes back in the outbox.
    let PurgeStart::Purging(id) = bed.engine.purge_dead_records(Some(b("f"))) else { panic!("purged in the store") };
    bed.advance(0);
    let purge = bed.purges.pop().expect("a purge for the store");
    assert_eq!(purge.id, id);
    bed.purge_done(id, Ok(2));
    assert_eq!(bed.control_purges, [ControlPurge { id, result: Ok(2) }]);
    // A search of the store by error text is handed on whole: the reader
    // checks the text.
    assert_eq!(bed.admin(admin, r#"dead {"error": "boom"}"#), "");
    let read = bed.reads.pop().expect("a search");
    let RecordQuery::Search(filter) = read.query else { panic!("{read:?}") };
    assert_eq!((filter.state, filter.error.as_deref()), (Some(RecordState::Dead), Some("boom")));
}
