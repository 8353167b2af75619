//! Pausing, resuming and purging one function: a paused function's jobs
//! queue but are neither handed out nor announced to sleeping workers;
//! resuming wakes them; purging ends the queued jobs through the one end
//! of every job; and the pause is made durable before the operator hears
//! `OK`.

mod support;

use sprocket_engine::{
    Config, Out, PersistMode, PersistOp, RecordState, RecordsConfig, RecordsMode, ReplayJob, PAUSED_SETTING,
};
use sprocket_proto::{Priority, Request, Response};
use support::{b, Bed};

/// Jobs and settings kept in a store, with records of background jobs.
fn durable() -> Bed {
    Bed::new(Config {
        handle_prefix: "H:test".into(),
        persist: PersistMode::Immediate,
        records: RecordsConfig { mode: RecordsMode::Background, durable: true, ..RecordsConfig::default() },
        report_ended_jobs: true,
        settings_durable: true,
        ..Config::default()
    })
}

fn noops(bed: &mut Bed, conn: u64) -> usize {
    bed.packets(conn).iter().filter(|p| matches!(p, Response::Noop)).count()
}

#[test]
fn a_paused_functions_jobs_queue_but_are_not_handed_out_and_resume_wakes_the_sleepers() {
    let mut bed = Bed::default();
    let (admin, client) = (bed.connect(), bed.connect());
    let w = bed.worker(&["resize", "other"]);
    assert_eq!(bed.admin(admin, "pause resize"), "OK\r\n");
    bed.bg(client, "resize", "", "one");
    assert_eq!(bed.grab(w), None, "nothing handed out while paused");
    // The worker sleeps; new jobs of the paused function do not wake it.
    bed.send(w, Request::PreSleep);
    assert_eq!(noops(&mut bed, w), 0, "PRE_SLEEP sees no work while paused");
    bed.bg(client, "resize", "", "two");
    assert_eq!(noops(&mut bed, w), 0, "a paused function's job wakes nobody");
    // Other functions go on as ever.
    bed.bg(client, "other", "", "x");
    assert_eq!(noops(&mut bed, w), 1);
    let (_, function, _, _) = bed.grab(w).expect("the other function's job");
    assert_eq!(function, b("other"));
    assert_eq!(bed.grab(w), None);
    // The counts of `status` keep gearmand's format and count the queued jobs.
    assert!(bed.admin(admin, "status").contains("resize\t2\t0\t1\n"));
    let view = bed.engine.functions_view().into_iter().find(|f| f.name == b("resize")).expect("view");
    assert!(view.paused);
    assert_eq!(view.queued, [0, 2, 0]);

    bed.send(w, Request::PreSleep);
    assert_eq!(noops(&mut bed, w), 0);
    assert_eq!(bed.admin(admin, "resume resize"), "OK\r\n");
    assert_eq!(noops(&mut bed, w), 1, "resume wakes the sleeping worker");
    let (_, _, _, data) = bed.grab(w).expect("handed out after resume");
    assert_eq!(data, b("one"), "in queue order");
    assert!(!bed.engine.functions_view().iter().any(|f| f.paused));
}

#[test]
fn a_function_can_be_paused_before_it_exists_and_stays_paused_when_dropped_and_made_again() {
    let mut bed = Bed::default();
    let (admin, client) = (bed.connect(), bed.connect());
    assert_eq!(bed.admin(admin, "pause later"), "OK\r\n");
    assert!(bed.admin(admin, "status").contains("later\t0\t0\t0\n"), "made, so that it shows");
    assert_eq!(bed.admin(admin, "drop function later"), "OK\r\n");
    let w = bed.worker(&["later"]);
    bed.bg(client, "later", "", "x");
    assert_eq!(bed.grab(w), None, "the name is still paused");
    assert_eq!(bed.admin(admin, "resume later"), "OK\r\n");
    assert!(bed.grab(w).is_some());
}

#[test]
fn refusals_are_error_lines() {
    let mut bed = Bed::default();
    let admin = bed.connect();
    assert_eq!(bed.admin(admin, "resume nosuch"), "ERR function not found\r\n");
    assert_eq!(bed.admin(admin, "purge queued nosuch"), "ERR function not found\r\n");
    assert!(bed.admin(admin, "pause sprocket.result").starts_with("ERR RESERVED_FUNCTION "));
    assert!(bed.admin(admin, "purge nosuch").starts_with("ERR INVALID_ARGUMENTS"));
}

#[test]
fn purge_ends_queued_and_scheduled_jobs_with_work_fail_and_leaves_running_ones() {
    let mut bed = durable();
    let (admin, fg, bg) = (bed.connect(), bed.connect(), bed.connect());
    let w = bed.worker(&["f"]);
    let running = bed.fg(fg, "f", "", "first");
    let (handle, ..) = bed.grab(w).expect("the first job runs");
    assert_eq!(handle, running);
    let waiting = bed.fg(fg, "f", "", "second");
    bed.send(
        bg,
        Request::SubmitJobEpoch {
            function: b("f"),
            unique: b(""),
            data: b("later"),
            epoch: bytes::Bytes::from((bed.now / 1000 + 3600).to_string()),
        },
    );
    let last = bed.persisted.last().map(|(seq, _)| *seq).expect("insert written");
    bed.stored(last, &[]);
    assert!(matches!(bed.packets(bg).as_slice(), [Response::JobCreated { .. }]));
    let deletes_before = bed.persisted.iter().filter(|(_, op)| matches!(op, PersistOp::Delete { .. })).count();

    bed.engine.admin_line(admin, b"purge queued f", bed.now);
    bed.advance(0);
    assert_eq!(bed.text(admin), "", "the answer waits for the rows' deletes");
    assert_eq!(bed.packets(fg), [Response::WorkFail { handle: waiting.clone() }]);
    let deletes = bed.persisted.iter().filter(|(_, op)| matches!(op, PersistOp::Delete { .. })).count();
    assert_eq!(deletes - deletes_before, 1, "the stored epoch job's row is deleted");
    let last = bed.persisted.last().map(|(seq, _)| *seq).expect("written");
    bed.stored(last, &[]);
    assert_eq!(bed.text(admin), "OK 2\n");
    let purged: Vec<RecordState> = bed.ended.iter().map(|r| r.state()).collect();
    assert_eq!(purged, [RecordState::Cancelled, RecordState::Cancelled], "purged jobs end cancelled");
    // The running job is its worker's still.
    assert!(bed.admin(admin, "status").contains("f\t1\t1\t1\n"));
    bed.send(w, Request::WorkComplete { handle: running.clone(), data: b("done") });
    assert_eq!(bed.packets(fg), [Response::WorkComplete { handle: running, data: b("done") }]);
    // Nothing left to purge: answered at once.
    assert_eq!(bed.admin(admin, "purge queued f"), "OK 0\n");
}

#[test]
fn the_pause_is_durable_before_ok_and_replies_after_it_keep_their_order() {
    let mut bed = durable();
    let admin = bed.connect();
    bed.engine.admin_line(admin, b"pause f", bed.now);
    bed.engine.admin_line(admin, b"version", bed.now);
    bed.advance(0);
    assert_eq!(bed.text(admin), "", "OK waits for the setting's write");
    let write = bed.settings.pop().expect("a setting write");
    assert_eq!((write.kind, &write.name[..]), (PAUSED_SETTING, &b"f"[..]));
    assert!(write.value.as_deref().is_some_and(|v| v.starts_with("{\"since_ms\":")), "{write:?}");
    bed.setting_done(write.id, Ok(()));
    assert_eq!(bed.text(admin), "OK\r\nOK 1.1.20\n");

    bed.engine.admin_line(admin, b"resume f", bed.now);
    bed.advance(0);
    let write = bed.settings.pop().expect("a setting write");
    assert_eq!(write.value, None, "resume removes the setting");
    bed.setting_done(write.id, Err("disk full".into()));
    let answer = bed.text(admin);
    assert!(answer.starts_with("ERR SETTING_NOT_SAVED resumed+until+the+server+restarts"), "{answer}");
    assert!(!bed.engine.functions_view().iter().any(|f| f.paused), "in force in memory all the same");
}

#[test]
fn a_pause_restored_at_start_up_holds_the_replayed_jobs() {
    let mut bed = durable();
    bed.engine.restore_paused(&b("f"));
    bed.engine.replay(ReplayJob {
        function: b("f"),
        unique: b("u1"),
        priority: Priority::Normal,
        data: b("stored"),
        when: 0,
        record: None,
    });
    assert!(bed.settings.is_empty() && bed.engine.take_outbox().setting_writes.is_empty(), "nothing written back");
    let w = bed.worker(&["f"]);
    assert_eq!(bed.grab(w), None);
    let admin = bed.connect();
    bed.engine.admin_line(admin, b"resume f", bed.now);
    bed.advance(0);
    let write = bed.settings.pop().expect("a setting write");
    bed.setting_done(write.id, Ok(()));
    assert_eq!(bed.text(admin), "OK\r\n");
    let (_, _, _, data) = bed.grab(w).expect("handed out after resume");
    assert_eq!(data, b("stored"));
    let _: Vec<Out> = bed.take(w);
}
