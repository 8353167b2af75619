//! `--store-queue-on-shutdown` with SQLite: nothing is written while
//! sprocketd runs, the queue (queued and running jobs) is written at
//! SIGTERM, and the next start replays it; as in gearmand 1.1.20 the
//! replayed rows stay until their jobs end, so a crash after the restart
//! loses none of them.

use crate::{common, store_support};

use std::process::Command;
use std::time::Duration;

use common::{b, Gear};
use sprocket_proto::{Priority, Request, Response};
use sprocket_testkit::process::run;
use store_support::{run_all_queued, run_jobs, submit, Backend, Job};

/// Rows in the table, 0 when it does not exist yet.
fn rows(store: &Backend) -> usize {
    let sql = format!(
        "PRAGMA busy_timeout=5000; SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='{}'",
        store.name()
    );
    let out = run(Command::new("sqlite3").arg(store.sqlite_path()).arg(sql), b"", Duration::from_secs(20));
    assert!(out.success(), "sqlite3: {}", out.describe());
    if out.stdout_text().lines().last().map(str::trim) == Some("0") {
        return 0;
    }
    store.count()
}

#[test]
fn queue_is_written_only_at_shutdown_and_replayed_rows_go_when_their_jobs_end() {
    let Some(store) = Backend::new("sqlite", "st_onshutdown") else { return };
    let flag = ["--store-queue-on-shutdown"];
    let mut server = store.start(&flag);
    let mut client = Gear::connect(server.port).expect("connect");
    for i in 0..5 {
        let prio = if i == 4 { Priority::High } else { Priority::Normal };
        submit(&mut client, &Job::new("onshut", &format!("u{i}"), format!("data {i}").as_bytes(), prio));
    }
    // One runs to completion, one is still running at shutdown.
    assert_eq!(run_jobs(server.port, &["onshut"], 1, Duration::from_secs(10)).len(), 1);
    let mut busy = Gear::connect(server.port).expect("connect");
    busy.send(&Request::CanDo { function: b("onshut") }).expect("CAN_DO");
    assert!(matches!(busy.call(&Request::GrabJobUniq), Ok(Response::JobAssignUniq { .. })));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rows(&store), 0, "nothing is written while the server runs");

    assert_eq!(server.terminate(Duration::from_secs(15)), Some(0), "clean exit on SIGTERM");
    assert_eq!(rows(&store), 4, "3 queued + 1 running job written at shutdown");

    let mut server = store.start(&flag);
    let status = server.admin("status");
    assert!(status.contains("onshut\t4\t0\t0\n"), "replayed at start-up:\n{status}");
    // The rows stay while their jobs wait: a crash now loses nothing
    // (gearmand 1.1.21 emptied the table after replay, and lost them).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rows(&store), 4, "replayed rows stay until their jobs end");
    server.kill9();
    let server = store.start(&flag);
    let status = server.admin("status");
    assert!(status.contains("onshut\t4\t0\t0\n"), "replayed again after a crash:\n{status}");
    let ran = run_all_queued(server.port, &["onshut"]);
    let mut uniques: Vec<String> = ran.iter().map(|r| r.unique.clone()).collect();
    uniques.sort();
    // u4 (high priority) ran first and completed; u0 was running at shutdown.
    assert_eq!(uniques, ["u0", "u1", "u2", "u3"], "replayed jobs");
    let emptied = sprocket_testkit::databases::wait_until(Duration::from_secs(5), || rows(&store) == 0);
    assert!(emptied, "a replayed job's row goes when it ends: {} rows left", rows(&store));
}

#[test]
fn jobs_without_a_unique_each_get_a_row_at_shutdown() {
    // Clients that send no unique (raw protocol, Perl's Gearman::Client)
    // and `-` uniques with different data are all distinct jobs.
    let Some(store) = Backend::new("sqlite", "st_onshutdown_keyless") else { return };
    let flag = ["--store-queue-on-shutdown"];
    let mut server = store.start(&flag);
    let mut client = Gear::connect(server.port).expect("connect");
    let mut sent = Vec::new();
    for (unique, n) in [("", 0), ("", 1), ("", 2), ("-", 3), ("-", 4)] {
        let data = format!("keyless {n}");
        submit(&mut client, &Job::new("keyless", unique, data.as_bytes(), Priority::Normal));
        sent.push(data);
    }
    assert_eq!(server.terminate(Duration::from_secs(15)), Some(0), "clean exit on SIGTERM");
    assert_eq!(rows(&store), 5, "one row per queued job");

    let server = store.start(&flag);
    let mut ran: Vec<String> = run_all_queued(server.port, &["keyless"])
        .iter()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .collect();
    ran.sort();
    assert_eq!(ran, sent, "every job replayed and run");
    let emptied = sprocket_testkit::databases::wait_until(Duration::from_secs(5), || rows(&store) == 0);
    assert!(emptied, "each replayed job's own row goes when it ends: {} rows left", rows(&store));
}
