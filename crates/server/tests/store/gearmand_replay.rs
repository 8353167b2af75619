//! Differential replay: Debian's real gearmand 1.1.20 fills a queue table
//! (sqlite, PostgreSQL, MySQL, Redis) through the gearman CLI and stops;
//! sprocketd started with the same queue flags replays those jobs, runs
//! them with their data and priority, and deletes their rows.

use crate::{common, store_support};

use std::process::Command;
use std::time::Duration;

use sprocket_proto::Priority;
use sprocket_testkit::process::run;
use sprocket_testkit::{require_tool, ServerProcess};
use store_support::{run_all_queued, Backend, Job};

/// What gearmand is given: names without a `-` in the function (gearmand's
/// Redis keys cannot tell where a hyphenated function name ends).
fn jobs() -> Vec<Job> {
    vec![
        Job::new("resize", "img-1", b"low job", Priority::Low),
        Job::new("resize", "img-2", b"normal job", Priority::Normal),
        Job::new("resize", "img-3", b"high job", Priority::High),
        Job::new("resize", "img-4", b"it's \"quoted\" data", Priority::Normal),
        Job::new("thumb", "6f1e0c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6", "crab \u{1F980}".as_bytes(), Priority::High),
        Job::new("thumb", "t1", b"second function", Priority::Low),
        // Empty stdin: gearmand stores NULL data in SQLite (and cannot replay it itself).
        Job::new("thumb", "empty", b"", Priority::Normal),
    ]
}

/// `gearman -b [-I|-L] -p PORT -f F -u U data` (an empty workload comes
/// from an empty standard input instead).
fn gearman_bg(port: u16, job: &Job) {
    let mut cmd = Command::new("gearman");
    cmd.args(["-b", "-h", "127.0.0.1", "-p", &port.to_string(), "-f", &job.function, "-u", &job.unique]);
    match job.priority {
        Priority::High => {
            cmd.arg("-I");
        }
        Priority::Low => {
            cmd.arg("-L");
        }
        Priority::Normal => {}
    }
    if !job.data.is_empty() {
        cmd.arg(String::from_utf8_lossy(&job.data).as_ref());
    }
    let out = run(&mut cmd, b"", Duration::from_secs(20));
    assert!(out.success(), "gearman -b {job:?}: {}", out.describe());
}

fn replay_gearmand_table(kind: &str) {
    if !require_tool("gearman") {
        return;
    }
    let Some(store) = Backend::new(kind, "st_gmd") else { return };
    // The same queue flags serve both servers (gearmand's spelling).
    let flags = store.flags();
    let gearmand_args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let Some(mut gearmand) = ServerProcess::gearmand(&gearmand_args) else { return };
    let jobs = jobs();
    for j in &jobs {
        gearman_bg(gearmand.port, j);
    }
    assert!(gearmand.terminate(Duration::from_secs(15)).is_some(), "gearmand did not stop on SIGTERM");
    assert_eq!(store.count(), jobs.len(), "{kind}: gearmand left every job in its queue");

    let server = store.start(&[]);
    let status = server.admin("status");
    assert!(
        status.contains("resize\t4\t0\t0\n") && status.contains("thumb\t3\t0\t0\n"),
        "{kind}: sprocketd did not replay gearmand's queue:\n{status}"
    );
    let ran = run_all_queued(server.port, &["resize", "thumb"]);
    let prio = |r: &store_support::Ran| {
        jobs.iter().find(|j| j.function == r.function && j.unique == r.unique).map(|j| j.priority.code()).unwrap_or(9)
    };
    // Within each function: every high job before every normal before every low.
    for f in ["resize", "thumb"] {
        let order: Vec<u8> = ran.iter().filter(|r| r.function == f).map(prio).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{kind}: replayed priorities of {f} not honoured: {ran:?}");
    }
    let mut got: Vec<(String, String, Vec<u8>)> = ran.into_iter().map(|r| (r.function, r.unique, r.data)).collect();
    let mut want: Vec<(String, String, Vec<u8>)> =
        jobs.iter().map(|j| (j.function.clone(), j.unique.clone(), j.data.clone())).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{kind}: replayed jobs differ from what gearmand was given");
    store.wait_count(0, Duration::from_secs(10), &format!("{kind}: rows deleted after the jobs ran"));

    // sprocketd keeps using gearmand's table (its narrower VARCHAR columns
    // on PostgreSQL and MySQL) for new jobs with awkward names. (Uniques
    // that differ only in case collide in gearmand's MySQL table, whose
    // VARCHAR keys compare case-insensitively; docs/persistence.md warns.)
    let odd = [
        Job::new("crab \u{1F980}", "\u{1F600}\u{fc}", "\u{1F980}".as_bytes(), Priority::High),
        Job::new("it's \"quoted\"", "'; DROP TABLE x; --", b"quotes", Priority::Normal),
        Job::new("pct%~", "%00", b"data\0nul", Priority::Normal),
    ];
    let mut client = common::Gear::connect(server.port).expect("connect");
    for j in &odd {
        store_support::submit(&mut client, j);
    }
    let mut server = server;
    server.kill9();
    let server = store.start(&[]);
    let mut functions: Vec<&str> = odd.iter().map(|j| j.function.as_str()).collect();
    functions.sort();
    functions.dedup();
    let mut got: Vec<(String, String, Vec<u8>)> =
        run_all_queued(server.port, &functions).into_iter().map(|r| (r.function, r.unique, r.data)).collect();
    let mut want: Vec<(String, String, Vec<u8>)> =
        odd.iter().map(|j| (j.function.clone(), j.unique.clone(), j.data.clone())).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{kind}: jobs sprocketd wrote into gearmand's table came back different");
    store.wait_count(0, Duration::from_secs(10), &format!("{kind}: rows deleted"));
}

#[test]
fn sqlite_table_filled_by_gearmand_is_replayed() {
    replay_gearmand_table("sqlite");
}

#[test]
fn postgres_table_filled_by_gearmand_is_replayed() {
    replay_gearmand_table("postgres");
}

#[test]
fn mysql_table_filled_by_gearmand_is_replayed() {
    replay_gearmand_table("mysql");
}

#[test]
fn redis_keys_filled_by_gearmand_are_replayed() {
    replay_gearmand_table("redis");
}

/// Inserts a queue row by hand, as an operator or another tool would.
fn insert_row(store: &store_support::Backend, kind: &str, function: &str, unique: &str, data_hex: &str) {
    let t = store.name();
    let sql = match kind {
        "sqlite" => format!(
            "INSERT INTO \"{t}\" (unique_key, function_name, priority, data, when_to_run) \
             VALUES ('{unique}', '{function}', 1, X'{data_hex}', 0)"
        ),
        _ => format!(
            "INSERT INTO \"{t}\" (unique_key, function_name, priority, data, when_to_run) \
             VALUES ('{unique}', '{function}', 1, '\\x{data_hex}'::bytea, 0)"
        ),
    };
    let result = match kind {
        "sqlite" => {
            let out = run(Command::new("sqlite3").arg(store.sqlite_path()).arg(&sql), b"", Duration::from_secs(20));
            if out.success() {
                Ok(String::new())
            } else {
                Err(out.describe())
            }
        }
        _ => sprocket_testkit::databases::psql(&sql),
    };
    if let Err(e) = result {
        panic!("{kind}: inserting a row by hand failed: {e}");
    }
}

/// A row whose unique is longer than any client may send (the SQL columns
/// allow it) replays with its whole unique, so the delete that follows its
/// completion matches the row. Cut to 255 bytes, it stayed in the table and
/// ran again after every restart. A unique too long to keep at all leaves
/// its row untouched, with a warning, instead of running under a cut key.
fn long_uniques_replay_whole(kind: &str) {
    let Some(store) = store_support::Backend::new(kind, "st_longu") else { return };
    drop(store.start(&[])); // creates the table
    let long = "u".repeat(300);
    insert_row(&store, kind, "longu", &long, "6869");
    if kind == "sqlite" {
        insert_row(&store, kind, "longu", &"w".repeat(70_000), "6869");
    }
    let rows = store.count();
    let server = store.start(&[]);
    let ran = run_all_queued(server.port, &["longu"]);
    assert_eq!(ran.len(), 1, "{kind}: {ran:?}");
    assert_eq!((ran[0].unique.len(), ran[0].data.as_slice()), (300, &b"hi"[..]), "{kind}: the unique came back whole");
    store.wait_count(rows - 1, Duration::from_secs(10), &format!("{kind}: the long unique's row deleted"));
}

#[test]
fn sqlite_rows_with_long_uniques_replay_whole() {
    long_uniques_replay_whole("sqlite");
}

#[test]
fn postgres_rows_with_long_uniques_replay_whole() {
    long_uniques_replay_whole("postgres");
}
