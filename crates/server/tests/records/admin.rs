//! The admin text commands `record <handle>` (one `key\tvalue` line per
//! field, then `.`) and `records <function> [<state>] [<limit>]` (one line
//! per ended record, newest first), over a raw socket as gearadmin-like
//! tools send them; and `sprocket.records` with a JSON filter.

use std::collections::BTreeMap;

use sprocket_testkit::free_port;

use crate::support::{ask, job_ended, read_result, sqlite_server, submit_bg, text, End, Sent, Worker};

/// The `key\tvalue` lines of a `record` reply, up to the final `.`; keys
/// that repeat (attempt, data, warning) collect their values in order.
fn fields(reply: &str) -> BTreeMap<String, Vec<String>> {
    assert!(reply.ends_with("\n.\n"), "reply ends with a `.` line: {reply:?}");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in reply.lines().take_while(|l| *l != ".") {
        let (key, value) = line.split_once('\t').unwrap_or_else(|| panic!("not key\\tvalue: {line:?}"));
        out.entry(key.to_string()).or_default().push(value.to_string());
    }
    out
}

fn one<'a>(f: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match f.get(key).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("{key}: {other:?} in {f:?}"),
    }
}

#[test]
fn admin_record_and_records_over_a_raw_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(free_port(), dir.path(), &[]);
    let port = srv.port;
    let sent = [Sent::Data(b"line\none".to_vec()), Sent::Warning(b"w".to_vec()), Sent::Status(1, 4)];
    let first = job_ended(port, "adm", "a1", &sent, &End::Complete(b"tab\there".to_vec()), "complete");
    let failed = job_ended(port, "adm", "a2", &[], &End::Exception(b"went wrong".to_vec()), "exception");
    let last = job_ended(port, "adm", "a3", &[], &End::Complete(b"third".to_vec()), "complete");
    let queued = submit_bg(port, "adm", "a4", b"not yet");
    job_ended(port, "other", "o1", &[], &End::Complete(b"elsewhere".to_vec()), "complete");

    let f = fields(&srv.admin(&format!("record {}", text(&first))));
    assert_eq!(one(&f, "handle"), text(&first));
    assert_eq!(one(&f, "function"), "adm");
    assert_eq!(one(&f, "unique"), "a1");
    assert_eq!(one(&f, "priority"), "normal");
    assert_eq!(one(&f, "background"), "1");
    assert_eq!(one(&f, "state"), "complete");
    assert_eq!(one(&f, "attempts"), "1");
    assert_eq!(one(&f, "status"), "1\t4");
    // Bytes that would break the line are escaped.
    assert_eq!(f["data"], vec!["line\\none".to_string()]);
    assert_eq!(f["warning"], vec!["w".to_string()]);
    assert_eq!(one(&f, "result"), "tab\\there");
    let attempt: Vec<&str> = one(&f, "attempt").split('\t').collect();
    assert_eq!(attempt.len(), 5, "{attempt:?}");
    // The worker: its client id (`-` when it set none, as `workers` shows)
    // and its address.
    assert_eq!(attempt[..2], ["-", "127.0.0.1"], "{attempt:?}");
    assert_eq!(attempt[4], "completed");
    for key in ["submitted", "started", "finished"] {
        assert!(one(&f, key).parse::<u64>().is_ok_and(|t| t > 1_600_000_000_000), "{key}: {f:?}");
    }

    let f = fields(&srv.admin(&format!("record {}", text(&failed))));
    assert_eq!(one(&f, "state"), "exception");
    assert_eq!(one(&f, "error"), "went wrong");
    let f = fields(&srv.admin(&format!("record {}", text(&queued))));
    assert_eq!(one(&f, "state"), "queued");
    assert_eq!(one(&f, "started"), "-");
    assert_eq!(srv.admin("record H:nohost:424242"), "ERR UNKNOWN_JOB\r\n");

    // `records`: ended records of one function, newest first.
    let listing = |command: &str| -> Vec<Vec<String>> {
        let reply = srv.admin(command);
        assert!(reply.ends_with(".\n"), "{command}: {reply:?}");
        reply.lines().take_while(|l| *l != ".").map(|l| l.split('\t').map(str::to_string).collect()).collect()
    };
    let all = listing("records adm");
    let handles: Vec<&str> = all.iter().map(|l| l[0].as_str()).collect();
    assert_eq!(handles, vec![text(&last), text(&failed), text(&first)], "{all:?}");
    assert_eq!(all[1][1], "exception");
    assert_eq!(all[0][2], "1", "attempts");
    assert_eq!(all[0][5], "a3", "unique");
    assert_eq!(all.iter().map(Vec::len).collect::<Vec<_>>(), vec![6, 6, 6]);
    let failed_only = listing("records adm exception");
    assert_eq!(failed_only.len(), 1);
    assert_eq!(failed_only[0][0], text(&failed));
    let newest = listing("records adm 1");
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0][0], text(&last));
    let complete_two = listing("records adm complete 5");
    assert_eq!(complete_two.len(), 2);
    assert!(listing("records nosuchfunction").is_empty());
    // A job that ended in WORK_FAIL.
    let gave_up = job_ended(port, "adm_fail", "f1", &[], &End::Fail, "failed");
    let f = fields(&srv.admin(&format!("record {}", text(&gave_up))));
    assert_eq!(one(&f, "state"), "failed");
    assert!(!f.contains_key("result") && !f.contains_key("error"), "{f:?}");
    assert_eq!(listing("records adm_fail failed")[0][0], text(&gave_up));
    assert!(listing("records adm_fail complete").is_empty());
    assert!(srv.admin("records adm finished").starts_with("ERR INVALID_ARGUMENTS"));
    assert!(srv.admin("records adm 0").starts_with("ERR INVALID_ARGUMENTS"));

    // The same search through sprocket.records.
    let search = |filter: &str| -> Vec<String> {
        let json = ask(port, "sprocket.records", filter.as_bytes(), false)
            .result()
            .unwrap_or_else(|| panic!("sprocket.records {filter} failed"));
        let found: serde_json::Value = serde_json::from_slice(&json).expect("a JSON array");
        found.as_array().expect("array").iter().map(|r| r["handle"].as_str().expect("handle").to_string()).collect()
    };
    assert_eq!(search(r#"{"function":"adm"}"#), vec![text(&last), text(&failed), text(&first)]);
    assert_eq!(search(r#"{"function":"adm","state":"exception"}"#), vec![text(&failed)]);
    assert_eq!(search(r#"{"function":"adm","limit":2}"#), vec![text(&last), text(&failed)]);
    assert_eq!(search(r#"{"function":"adm","since_ms":4102444800000}"#), Vec::<String>::new());
    assert_eq!(search(r#"{"function":"other"}"#).len(), 1);
    let bad = ask(port, "sprocket.records", br#"{"state":"nonsense"}"#, true);
    assert!(bad.result().is_none(), "a bad filter fails: {bad:?}");
}

/// A search made right after a job ended lists it, as a read of its handle
/// finds it: an ended record whose store write is not confirmed yet is not
/// missed by `records` or `sprocket.records`.
#[test]
fn a_search_right_after_a_jobs_end_lists_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = sqlite_server(free_port(), dir.path(), &[]);
    let port = srv.port;
    let mut w = Worker::new(port, "fresh");
    for i in 0..20 {
        let handle = submit_bg(port, "fresh", &format!("f{i}"), b"w");
        let (h, _) = w.grab();
        w.finish(&h, &[], &End::Complete(b"ok".to_vec()));
        // Attached live or replayed: either way the job has ended when this returns.
        assert_eq!(read_result(port, &handle).result().as_deref(), Some(&b"ok"[..]));
        let reply = srv.admin("records fresh 1");
        assert!(reply.starts_with(&format!("{}\t", text(&handle))), "job {i}: `records fresh 1` is {reply:?}");
        let json = ask(port, "sprocket.records", br#"{"function":"fresh","limit":1}"#, false).result().expect("search");
        let found: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
        assert_eq!(found[0]["handle"], text(&handle), "job {i}: sprocket.records gives {found}");
    }
}
