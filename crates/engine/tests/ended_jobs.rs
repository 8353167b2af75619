//! Ended-job reports (the server's job log and history): built only when
//! the config asks, one per ended job, with its times, attempts, worker and
//! outcome.

mod support;

use sprocket_engine::{Config, Outcome};
use sprocket_proto::Request;
use support::{b, Bed};

fn reporting(results: bool) -> Bed {
    Bed::new(Config {
        handle_prefix: "H:test".into(),
        report_ended_jobs: true,
        ended_job_results: results,
        job_retries: 2,
        ..Config::default()
    })
}

#[test]
fn nothing_is_reported_when_not_asked() {
    let mut bed = Bed::default();
    let client = bed.connect();
    bed.bg(client, "f", "", "x");
    let w = bed.worker(&["f"]);
    let (handle, ..) = bed.grab(w).unwrap();
    bed.send(w, Request::WorkComplete { handle, data: b("done") });
    assert!(bed.ended.is_empty(), "{:?}", bed.ended);
}

#[test]
fn a_completed_job_reports_times_worker_and_result_only_when_asked() {
    for results in [false, true] {
        let mut bed = reporting(results);
        let client = bed.connect();
        let submitted = bed.now;
        let handle = bed.fg(client, "resize", "img-7", "x");
        bed.advance(40);
        let w = bed.worker(&["resize"]);
        bed.send(w, Request::SetClientId { id: b("worker-1") });
        let started = bed.now;
        bed.grab(w).unwrap();
        bed.advance(600);
        bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("done") });
        assert_eq!(bed.ended.len(), 1);
        let ended = &bed.ended[0];
        assert_eq!((&ended.handle, &ended.function[..], &ended.unique[..]), (&handle, &b"resize"[..], &b"img-7"[..]));
        assert!(!ended.background);
        assert_eq!(ended.attempts, 1);
        assert_eq!(
            (ended.submitted, ended.first_started, ended.attempt_started),
            (submitted, Some(started), Some(started))
        );
        assert_eq!(ended.ended, started + 600);
        let worker = ended.worker.as_ref().unwrap();
        assert_eq!((&worker.client_id[..], &*worker.peer), (&b"worker-1"[..], "127.0.0.1"));
        let expected = if results { b("done") } else { b("") };
        assert_eq!(ended.outcome, Outcome::Completed { result: expected });
    }
}

#[test]
fn failures_exceptions_and_cancels_are_reported_once_each() {
    let mut bed = reporting(false);
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
    let outcomes: Vec<_> = bed.ended.iter().map(|e| (e.handle.clone(), e.outcome.clone(), e.attempts)).collect();
    assert_eq!(
        outcomes,
        [
            (failed, Outcome::Failed, 1),
            (excepted, Outcome::Exception { text: b("boom") }, 1),
            (cancelled, Outcome::Cancelled, 0)
        ]
    );
    let never_ran = &bed.ended[2];
    assert_eq!((never_ran.first_started, never_ran.worker.as_ref()), (None, None));
}

#[test]
fn a_job_whose_workers_keep_leaving_is_dropped_with_every_attempt_counted() {
    let mut bed = reporting(false);
    let client = bed.connect();
    let handle = bed.bg(client, "f", "", "x");
    let first = bed.worker(&["f"]);
    let first_start = bed.now;
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
    let ended = &bed.ended[0];
    assert_eq!((&ended.handle, &ended.outcome, ended.attempts), (&handle, &Outcome::Dropped { attempts: 2 }, 2));
    assert_eq!((ended.first_started, ended.attempt_started), (Some(first_start), Some(first_start + 100)));
    assert_eq!(&ended.worker.as_ref().unwrap().client_id[..], b"second", "the latest attempt's worker, though gone");
}

#[test]
fn a_job_cancelled_while_running_is_reported_at_the_cancel_and_not_again() {
    let mut bed = reporting(true);
    let client = bed.connect();
    let handle = bed.bg(client, "f", "", "x");
    let w = bed.worker(&["f"]);
    bed.grab(w).unwrap();
    let admin = bed.connect();
    let reply = bed.admin(admin, &format!("cancel job {}", String::from_utf8_lossy(&handle)));
    assert!(reply.starts_with("OK"), "{reply}");
    bed.send(w, Request::WorkComplete { handle: handle.clone(), data: b("late") });
    let outcomes: Vec<_> = bed.ended.iter().map(|e| (e.handle.clone(), e.outcome.clone(), e.attempts)).collect();
    assert_eq!(outcomes, [(handle, Outcome::Cancelled, 1)]);
}
