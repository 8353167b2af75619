//! Limits of records: `--record-retention` (a record is gone once it is
//! past it, a fresh one is there), `--record-max-bytes` (an oversized result
//! and data are kept cut and the record says how much arrived; the replay
//! gives the kept bytes), and binary payloads — every byte value, NUL
//! included — through a `sprocket.result` round trip exactly, in the
//! durable store and in memory.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::json;
use sprocket_proto::Response;
use sprocket_testkit::{free_port, ServerProcess};

use crate::support::{
    ask, builtin_server, job_ended, read_result, record_json, sqlite_file, sqlite_server, wait_sqlite_state, End, Sent,
};

/// With `--record-retention 1s`, the record of a job is there at its end
/// and gone (sprocket.result fails, "unknown job" with exceptions) within
/// the retention plus the expiry's half-period and some slack; a job
/// ended afterwards has its record.
fn retention(srv: &ServerProcess) {
    let port = srv.port;
    let old = job_ended(port, "ret", "old", &[], &End::Complete(b"old result".to_vec()), "complete");
    let ended = Instant::now();
    assert_eq!(read_result(port, &old).result().as_deref(), Some(&b"old result"[..]));
    let gone = loop {
        let replay = read_result(port, &old);
        if replay.result().is_none() {
            break ended.elapsed();
        }
        assert!(ended.elapsed() < Duration::from_secs(4), "record still there {:?} after its end", ended.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(gone >= Duration::from_millis(900), "record gone after {gone:?}, before its 1 s retention");
    let replay = read_result(port, &old);
    assert!(matches!(replay.packets[..], [Response::WorkFail { .. }]), "{replay:?}");
    match ask(port, "sprocket.result", &old, true).packets.last() {
        Some(Response::WorkException { data, .. }) => assert_eq!(&data[..], b"unknown job"),
        other => panic!("an expired record with exceptions: {other:?}"),
    }
    assert_eq!(record_json(port, &old), None);

    let fresh = job_ended(port, "ret", "fresh", &[], &End::Complete(b"fresh result".to_vec()), "complete");
    assert_eq!(read_result(port, &fresh).result().as_deref(), Some(&b"fresh result"[..]));
    println!("record expired {gone:?} after its end");
}

#[test]
fn retention_expires_records_in_the_sqlite_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(free_port(), dir.path(), &["--record-retention", "1s"]);
    retention(&srv);
}

#[test]
fn retention_expires_records_in_memory() {
    let srv = builtin_server(&["--record-retention", "1s"]);
    retention(&srv);
}

/// `n` bytes of lower-case letters.
fn letters(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn oversized_results_and_data_are_kept_cut_and_marked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let srv = sqlite_server(port, dir.path(), &["--record-max-bytes", "1000"]);
    let big = letters(5000);
    let handle = job_ended(srv.port, "big", "r", &[], &End::Complete(big.clone()), "complete");
    // Read from the store, not from what the server still holds of it.
    wait_sqlite_state(&sqlite_file(dir.path(), port), &handle, "complete");
    let record = record_json(srv.port, &handle).expect("record");
    assert_eq!(record["result"], String::from_utf8(big[..1000].to_vec()).expect("letters"), "{record}");
    assert_eq!(
        record["truncated"],
        json!({"chunks_received": 0, "chunk_bytes_received": 0, "result_bytes_received": 5000}),
        "{record}"
    );
    assert_eq!(read_result(srv.port, &handle).result(), Some(big[..1000].to_vec()));

    // Chunks may keep half the limit: the first 500 bytes of the first
    // chunk (marked cut), not the second; the result keeps what is left.
    let sent = [Sent::Data(letters(800)), Sent::Data(letters(300))];
    let handle = job_ended(srv.port, "big", "d", &sent, &End::Complete(big.clone()), "complete");
    let record = record_json(srv.port, &handle).expect("record");
    assert_eq!(
        record["data"],
        json!([{"seq": 0, "value": String::from_utf8(letters(500)).expect("letters"), "cut": true}])
    );
    assert_eq!(
        record["truncated"],
        json!({"chunks_received": 2, "chunk_bytes_received": 1100, "result_bytes_received": 5000}),
        "{record}"
    );
    let replay = read_result(srv.port, &handle);
    assert_eq!(replay.data(), vec![letters(500)]);
    assert_eq!(replay.result(), Some(big[..500].to_vec()));

    // Within the limit nothing is marked.
    let handle = job_ended(srv.port, "big", "s", &[], &End::Complete(letters(1000)), "complete");
    assert_eq!(record_json(srv.port, &handle).expect("record")["truncated"], json!(null));
}

fn every_byte() -> Vec<u8> {
    (0..=255u8).collect()
}

fn every_byte_reversed() -> Vec<u8> {
    every_byte().into_iter().rev().collect()
}

fn binary_result() -> Vec<u8> {
    let mut result = b"\0result\0".to_vec();
    result.extend(every_byte());
    result
}

/// A job ended with every byte value in data, a warning of NULs and a
/// binary result; its handle.
fn binary_job(port: u16) -> Bytes {
    let sent = [
        Sent::Data(every_byte()),
        Sent::Warning(vec![0u8; 3]),
        Sent::Data(Vec::new()),
        Sent::Data(every_byte_reversed()),
    ];
    job_ended(port, "bin", "b", &sent, &End::Complete(binary_result()), "complete")
}

/// The binary job reads back exactly, as packets and as JSON (where bytes
/// that are not UTF-8 go in x_base64 fields).
fn check_binary(port: u16, handle: &[u8]) {
    let replay = read_result(port, handle);
    assert!(replay.all_under_created_handle(), "{replay:?}");
    assert_eq!(replay.data(), vec![every_byte(), Vec::new(), every_byte_reversed()]);
    assert_eq!(replay.warnings(), vec![vec![0u8; 3]]);
    assert_eq!(replay.result(), Some(binary_result()));

    let record = record_json(port, handle).expect("record");
    let decoded = |v: &serde_json::Value| BASE64.decode(v.as_str().expect("base64 text")).expect("valid base64");
    assert_eq!(record["result"], json!(null));
    assert_eq!(decoded(&record["result_base64"]), binary_result());
    assert_eq!(decoded(&record["data"][0]["value_base64"]), every_byte());
    assert_eq!(record["data"][1]["value"], "");
    assert_eq!(decoded(&record["data"][2]["value_base64"]), every_byte_reversed());
    // Three NULs are valid UTF-8: a JSON string of them.
    assert_eq!(record["warnings"][0]["value"], "\0\0\0");
}

#[test]
fn binary_payloads_survive_a_round_trip_through_the_sqlite_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut srv = sqlite_server(port, dir.path(), &[]);
    let handle = binary_job(port);
    check_binary(port, &handle);
    // And once more from the file alone, after a restart.
    assert_eq!(srv.terminate(Duration::from_secs(10)), Some(0), "sprocketd stops on SIGTERM");
    let srv = sqlite_server(port, dir.path(), &[]);
    check_binary(srv.port, &handle);
}

#[test]
fn binary_payloads_survive_a_round_trip_in_memory() {
    let srv = builtin_server(&[]);
    let handle = binary_job(srv.port);
    check_binary(srv.port, &handle);
}
