//! Records on every store backend against the real database: SQLite (a
//! named table), PostgreSQL, MySQL/MariaDB and Redis. A job ended with
//! binary data, warnings, a status and a binary result, one that ended in
//! an exception, one still queued and one a worker holds; sprocketd is
//! killed and started again; the ended jobs are read back exactly through
//! `sprocket.result`, the queued one runs under its old handle and so does
//! the held one, its record showing the interrupted attempt. Each test
//! uses a table or key prefix of its own, which its `Backend` drops
//! afterwards with its record rows and keys.
//!
//! And retention on the network databases: an ended record is deleted
//! from the database once past `--record-retention`.

use std::time::Duration;

use sprocket_proto::Response;
use sprocket_testkit::databases::{self, Shared};

use crate::store_support::Backend;
use crate::support::{ask, read_result, record_json, submit_bg, wait_record_state, work_one, End, Sent, Worker, LIMIT};

/// Bytes 0..=255, every value once (NUL included).
fn all_bytes() -> Vec<u8> {
    (0..=255u8).collect()
}

/// The output of `sql` on an SQL backend's database.
fn sql(backend: &Backend, sql: &str) -> String {
    match backend {
        Backend::Sqlite { .. } => {
            let out = sprocket_testkit::process::run(
                std::process::Command::new("sqlite3")
                    .arg(backend.sqlite_path())
                    .arg(format!("PRAGMA busy_timeout=5000; {sql}")),
                b"",
                LIMIT,
            );
            assert!(out.success(), "sqlite3: {}", out.describe());
            out.stdout_text()
        }
        Backend::Shared(t) => match t.service {
            Shared::Postgres => databases::psql(sql).unwrap_or_else(|e| panic!("psql {sql}: {e}")),
            Shared::Mysql => databases::mysql(sql).unwrap_or_else(|e| panic!("mysql {sql}: {e}")),
            Shared::Redis => panic!("no SQL on Redis"),
        },
    }
}

fn is_redis(backend: &Backend) -> bool {
    matches!(backend, Backend::Shared(t) if t.service == Shared::Redis)
}

/// How many record rows (or Redis record hashes) the store holds for this
/// backend's table or prefix: the records must really be in the database.
fn stored_records(backend: &Backend) -> usize {
    let n = backend.name();
    if is_redis(backend) {
        let [hashes, _, _] = databases::redis_record_keys(n);
        return databases::redis_keys_at(6379, &hashes).len();
    }
    let text = sql(backend, &format!("SELECT COUNT(*) FROM sprocket_records WHERE namespace = '{n}'"));
    text.lines().last().unwrap_or("").trim().parse().expect("a count")
}

/// The state of `handle`'s record as the database holds it ("" if none).
fn stored_state(backend: &Backend, handle: &[u8]) -> String {
    let (n, h) = (backend.name(), String::from_utf8_lossy(handle));
    let text = if is_redis(backend) {
        let key = format!("sprocket_rec:{}:{n}:{h}", n.len());
        databases::redis_cli(&["HGET", &key, "state"])
    } else {
        sql(backend, &format!("SELECT state FROM sprocket_records WHERE namespace = '{n}' AND handle = '{h}'"))
    };
    text.lines().last().unwrap_or("").trim().to_string()
}

fn records_on(kind: &str) {
    let Some(backend) = Backend::new(kind, "rec_backend") else { return };
    let mut srv = backend.start(&[]);
    let port = srv.port;
    let binary_data = all_bytes();
    let binary_result: Vec<u8> = all_bytes().into_iter().rev().collect();
    let sent = [
        Sent::Data(binary_data.clone()),
        Sent::Warning(b"warn\0ing".to_vec()),
        Sent::Status(7, 9),
        Sent::Data(b"second chunk".to_vec()),
    ];
    let done = submit_bg(port, "rec_done", "d1", b"one");
    let failed = submit_bg(port, "rec_fail", "f1", b"two");
    let waiting = submit_bg(port, "rec_wait", "w1", b"three");
    let held = submit_bg(port, "rec_held", "h1", b"four");
    let mut w = Worker::new(port, "rec_done");
    let (h, _) = w.grab();
    w.finish(&h, &sent, &End::Complete(binary_result.clone()));
    let mut w = Worker::new(port, "rec_fail");
    let (h, _) = w.grab();
    w.finish(&h, &[], &End::Exception(b"it broke".to_vec()));
    wait_record_state(port, &done, "complete");
    wait_record_state(port, &failed, "exception");
    // A worker holds the last job when the server is killed.
    let mut holder = Worker::new(port, "rec_held");
    assert_eq!(holder.grab().0, held);
    // Two ended records and the queued and running jobs', in the database itself.
    let in_db = databases::wait_until(LIMIT, || stored_records(&backend) == 4);
    assert!(in_db, "{kind}: {} records stored, wanted 4", stored_records(&backend));
    let running = databases::wait_until(LIMIT, || stored_state(&backend, &held) == "running");
    assert!(running, "{kind}: the held job's record is stored as {:?}", stored_state(&backend, &held));
    assert_eq!(stored_state(&backend, &done), "complete", "{kind}");
    srv.kill9();
    drop(holder);

    let srv = backend.start(&[]);
    let port = srv.port;
    let replay = read_result(port, &done);
    assert_eq!(replay.handle, done);
    assert!(replay.all_under_created_handle(), "{replay:?}");
    assert_eq!(replay.data(), vec![binary_data, b"second chunk".to_vec()], "{kind}");
    assert_eq!(replay.warnings(), vec![b"warn\0ing".to_vec()], "{kind}");
    assert_eq!(replay.statuses(), vec!["7/9"], "{kind}");
    assert_eq!(replay.result(), Some(binary_result), "{kind}");

    // The exception: WORK_FAIL for a client that did not ask for
    // exceptions, WORK_EXCEPTION with the text for one that did.
    assert!(matches!(read_result(port, &failed).packets.last(), Some(Response::WorkFail { .. })));
    let with = ask(port, "sprocket.result", &failed, true);
    match with.packets.last() {
        Some(Response::WorkException { data, .. }) => assert_eq!(&data[..], b"it broke"),
        other => panic!("{kind}: {other:?}"),
    }
    let record = record_json(port, &failed).expect("the exception's record");
    assert_eq!(record["error"], "it broke");

    // The queued job kept its handle.
    assert_eq!(record_json(port, &waiting).expect("queued record")["state"], "queued");
    let mut w = Worker::new(port, "rec_wait");
    let (h, _) = w.grab();
    assert_eq!(h, waiting, "{kind}: the queued job keeps its handle across the restart");
    w.finish(&h, &[], &End::Complete(b"later".to_vec()));
    wait_record_state(port, &waiting, "complete");
    // The held job is queued again under its handle, its lost attempt recorded.
    let mut w = Worker::new(port, "rec_held");
    let (h, _) = w.grab();
    assert_eq!(h, held, "{kind}: the job held at the kill keeps its handle");
    w.finish(&h, &[], &End::Complete(b"second attempt".to_vec()));
    let record = wait_record_state(port, &held, "complete");
    assert_eq!(record["attempts"], 2, "{kind}: {record}");
    assert_eq!(record["attempt_log"][0]["end"], "interrupted", "{kind}: {record}");
    assert_eq!(record["attempt_log"][1]["end"], "completed", "{kind}: {record}");
    // A new job's handle names no earlier job.
    let fresh = submit_bg(port, "rec_new", "n1", b"five");
    assert!(![&done, &failed, &waiting, &held].contains(&&fresh), "{kind}: handle {fresh:?} reused");
}

#[test]
fn records_on_sqlite_named_table() {
    records_on("sqlite");
}

#[test]
fn records_on_postgres() {
    records_on("postgres");
}

#[test]
fn records_on_mysql() {
    records_on("mysql");
}

#[test]
fn records_on_redis() {
    records_on("redis");
}

/// `--record-retention 1s` on this backend: an ended record is expired
/// from the database (not only hidden), a fresh one is there.
fn retention_on(kind: &str) {
    let Some(backend) = Backend::new(kind, "rec_retention") else { return };
    let srv = backend.start(&["--record-retention", "1s"]);
    let port = srv.port;
    let old = submit_bg(port, "ret", "old", b"w");
    work_one(port, "ret", &[], &End::Complete(b"old".to_vec()));
    wait_record_state(port, &old, "complete");
    let stored = databases::wait_until(LIMIT, || stored_state(&backend, &old) == "complete");
    assert!(stored, "{kind}: the record was never stored");
    let gone = databases::wait_until(Duration::from_secs(5), || stored_state(&backend, &old).is_empty());
    assert!(gone, "{kind}: the record is still stored 5 s after its 1 s retention");
    assert!(read_result(port, &old).result().is_none(), "{kind}: an expired record is still answered");
    let fresh = submit_bg(port, "ret", "fresh", b"w");
    work_one(port, "ret", &[], &End::Complete(b"fresh".to_vec()));
    wait_record_state(port, &fresh, "complete");
    assert_eq!(read_result(port, &fresh).result().as_deref(), Some(&b"fresh"[..]), "{kind}");
}

#[test]
fn retention_on_postgres() {
    retention_on("postgres");
}

#[test]
fn retention_on_mysql() {
    retention_on("mysql");
}

#[test]
fn retention_on_redis() {
    retention_on("redis");
}
