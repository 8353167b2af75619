//! A PostgreSQL restart while records are being written: every job that
//! got JOB_CREATED and was completed has its final record once the
//! database is back and things settle; jobs ended during the outage are
//! read back (from the server while it lasts, then from the database), and
//! a reader is never told such a job is unknown. The PostgreSQL is a
//! private one (own data directory, free port): the shared one is never
//! stopped.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sprocket_proto::{Request, Response};
use sprocket_testkit::databases::{self, unique_name, PrivatePostgres};
use sprocket_testkit::ServerProcess;

use crate::common::{b, sprocketd, Gear};
use crate::support::{ask, read_result, submit_bg, End, Sent, Worker, LIMIT};

/// Background jobs submitted and completed by threads as fast as they go,
/// handles of acknowledged and of completed jobs kept.
struct Traffic {
    acked: Arc<Mutex<Vec<Bytes>>>,
    completed: Arc<Mutex<BTreeSet<Bytes>>>,
    stop_submitting: Arc<AtomicBool>,
    stop_working: Arc<AtomicBool>,
    submitter: std::thread::JoinHandle<()>,
    worker: std::thread::JoinHandle<()>,
}

impl Traffic {
    fn start(port: u16, function: &'static str) -> Traffic {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let completed = Arc::new(Mutex::new(BTreeSet::new()));
        let stop_submitting = Arc::new(AtomicBool::new(false));
        let stop_working = Arc::new(AtomicBool::new(false));
        let submitter = {
            let (acked, stop) = (acked.clone(), stop_submitting.clone());
            std::thread::spawn(move || {
                let mut c = Gear::connect(port).expect("submitter connects");
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match c.submit_bg(function, &format!("j{i}"), "payload") {
                        Ok(Response::JobCreated { handle }) => acked.lock().expect("acked").push(handle),
                        // The database is away: refused, never acknowledged.
                        Ok(Response::Error { .. }) => std::thread::sleep(Duration::from_millis(20)),
                        other => panic!("background submit: {other:?}"),
                    }
                }
            })
        };
        let worker = {
            let (completed, stop) = (completed.clone(), stop_working.clone());
            std::thread::spawn(move || {
                let mut w = Gear::connect(port).expect("worker connects");
                w.send(&Request::CanDo { function: b(function) }).expect("CAN_DO");
                loop {
                    match w.call(&Request::GrabJobUniq).expect("GRAB_JOB_UNIQ") {
                        Response::JobAssignUniq { handle, unique, .. } => {
                            w.send(&Request::WorkData { handle: handle.clone(), data: unique.clone() }).expect("data");
                            w.send(&Request::WorkComplete { handle: handle.clone(), data: unique }).expect("end");
                            completed.lock().expect("completed").insert(handle);
                        }
                        Response::NoJob if stop.load(Ordering::Relaxed) => break,
                        Response::NoJob => std::thread::sleep(Duration::from_millis(5)),
                        other => panic!("worker got {other:?}"),
                    }
                }
            })
        };
        Traffic { acked, completed, stop_submitting, stop_working, submitter, worker }
    }

    fn acked_count(&self) -> usize {
        self.acked.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Stops submitting, lets the worker drain the queue, and returns the
    /// acknowledged and the completed handles.
    fn finish(self) -> (Vec<Bytes>, BTreeSet<Bytes>) {
        self.stop_submitting.store(true, Ordering::Relaxed);
        self.submitter.join().expect("submitter thread");
        // Only now: the worker stops at the first NO_JOB after the last submit.
        self.stop_working.store(true, Ordering::Relaxed);
        self.worker.join().expect("worker thread");
        let acked = self.acked.lock().expect("acked").clone();
        let completed = self.completed.lock().expect("completed").clone();
        (acked, completed)
    }
}

/// The handles of `table`'s complete records in a private PostgreSQL.
fn complete_handles(pg: &PrivatePostgres, table: &str) -> BTreeSet<Bytes> {
    pg.psql(&format!("SELECT handle FROM sprocket_records WHERE namespace = '{table}' AND state = 'complete'"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| Bytes::copy_from_slice(l.as_bytes()))
        .collect()
}

/// Reads `handle`'s result (with exceptions on): Some(result), or None when
/// the server said the records are unavailable. An "unknown job" answer
/// for a job that ended fails the test.
fn assert_available_or_honest(port: u16, handle: &[u8]) -> Option<Vec<u8>> {
    let replay = ask(port, "sprocket.result", handle, true);
    match replay.packets.last() {
        Some(Response::WorkComplete { data, .. }) => Some(data.to_vec()),
        Some(Response::WorkException { data, .. }) if data.starts_with(b"job records unavailable") => None,
        _ => panic!("sprocket.result of a job that ended: {replay:?}"),
    }
}

fn start_on_private(pg: &PrivatePostgres, table: &str) -> ServerProcess {
    let conninfo = format!("--libpq-conninfo={}", pg.conninfo());
    let table_flag = format!("--libpq-table={table}");
    ServerProcess::sprocketd(sprocketd(), &["-q", "Postgres", &conninfo, &table_flag])
}

#[test]
fn postgres_restarted_while_records_are_written_loses_nothing_acknowledged() {
    // A private PostgreSQL: the shared one is never stopped.
    let Some(pg) = PrivatePostgres::start() else { return };
    let table = unique_name("rec_pgrestart");
    let mut srv = start_on_private(&pg, &table);
    // Jobs kept queued until the database is down, then completed: their
    // final records can only be written once it is back.
    let held: Vec<Bytes> = (0..50).map(|i| submit_bg(srv.port, "pg_held", &format!("h{i}"), b"held")).collect();
    let traffic = Traffic::start(srv.port, "pg_restart");
    let warm = databases::wait_until(LIMIT, || traffic.acked_count() >= 200);
    assert!(warm, "only {} jobs acknowledged before the outage", traffic.acked_count());
    pg.stop();
    let mut w = Worker::new(srv.port, "pg_held");
    for _ in &held {
        let (h, _) = w.grab();
        w.finish(&h, &[Sent::Status(1, 1)], &End::Complete(b"ended in the outage".to_vec()));
    }
    // Read while the database is away: the record as the server still
    // has it, or an honest "unavailable" — never "unknown job".
    let last_held = held.last().expect("held jobs").clone();
    assert_available_or_honest(srv.port, &last_held);
    std::thread::sleep(Duration::from_secs(2));
    pg.start_again();
    // And while it comes back, until the record is read from it.
    let mut answers = Vec::new();
    let readable = databases::wait_until(LIMIT, || {
        let answer = assert_available_or_honest(srv.port, &last_held);
        let done = answer.is_some();
        answers.push(answer);
        done
    });
    assert!(readable, "the record of a job ended in the outage never became readable");
    println!("{} reads said the records were unavailable before the database was back", answers.len() - 1);
    let back = traffic.acked_count();
    let more = databases::wait_until(LIMIT, || traffic.acked_count() >= back + 200);
    assert!(more, "submits not acknowledged again after the database came back");
    let (acked, completed) = traffic.finish();
    let acked_set: BTreeSet<Bytes> = acked.iter().cloned().collect();
    assert_eq!(acked_set.len(), acked.len(), "a handle was given twice");
    // Every acknowledged job ran. A job may also run whose submitter got
    // ERROR: it is handed out before its row commits, and a failed insert
    // only tells the submitter (who may submit again) — at least once.
    let not_run: Vec<&Bytes> = acked_set.difference(&completed).take(10).collect();
    assert!(not_run.is_empty(), "acknowledged jobs that never ran: {not_run:?}");
    let mut acked_set = acked_set;
    acked_set.extend(held.iter().cloned());

    // Every completed job's final record reaches the database.
    let started = Instant::now();
    let mut stored = BTreeSet::new();
    let settled = databases::wait_until(Duration::from_secs(20), || {
        stored = complete_handles(&pg, &table);
        stored.is_superset(&acked_set)
    });
    let missing: Vec<&Bytes> = acked_set.difference(&stored).collect();
    assert!(
        settled,
        "{} of {} completed jobs have no final record, e.g. {:?}",
        missing.len(),
        acked_set.len(),
        &missing[..missing.len().min(10)]
    );
    println!("{} jobs; all records stored {:?} after the traffic stopped", acked_set.len(), started.elapsed());

    // And a new sprocketd reads them from there.
    srv.kill9();
    let srv = start_on_private(&pg, &table);
    let replay = read_result(srv.port, &held[0]);
    assert_eq!(replay.result().as_deref(), Some(&b"ended in the outage"[..]), "{replay:?}");
    assert_eq!(replay.statuses(), vec!["1/1"]);
    for h in [acked.first(), acked.get(acked.len() / 2), acked.last()].into_iter().flatten() {
        let replay = read_result(srv.port, h);
        let result = replay.result().unwrap_or_else(|| panic!("no result for {h:?}: {replay:?}"));
        assert_eq!(replay.data(), vec![result.clone()], "{h:?}");
    }
    let queue_rows = pg.psql(&format!("SELECT COUNT(*) FROM \"{table}\"")).expect("count queue rows");
    assert_eq!(queue_rows.trim(), "0", "completed jobs' rows deleted");
}
