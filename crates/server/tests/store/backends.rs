//! Every queue backend against its real database, through the real
//! sprocketd: background jobs survive `kill -9` with all their fields,
//! completed jobs' rows are deleted, a crash under load loses no
//! acknowledged job, and a database missing at start-up is a clear error.

use crate::{common, store_support};

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{b, sprocketd, Gear};
use sprocket_proto::{Priority, Request, Response, SubmitMode};
use sprocket_testkit::databases::{self, unique_name, Shared};
use sprocket_testkit::{free_port, process};
use store_support::{load_then_kill, now, run_all_queued, run_jobs, submit, Backend, Job};

/// The jobs of the replay test: mixed priorities submitted out of order,
/// binary and UTF-8 data, a hyphenated function and unique, and one epoch
/// job due a few seconds after submission.
fn replay_jobs(epoch: i64) -> Vec<Job> {
    vec![
        Job::new("replay", "low-1", b"low data", Priority::Low),
        Job::new("replay", "normal-1", b"normal\0with\0nuls", Priority::Normal),
        Job::new("replay", "high-1", "h\u{1F980}gh".as_bytes(), Priority::High),
        Job::new("replay", "normal-2", b"", Priority::Normal),
        Job::new("replay", "high-2", &[0xff, 0x00, 0xfe], Priority::High),
        Job::new("my-func", "a-b-c", b"hyphens everywhere", Priority::Normal),
        Job::new("it's \"quoted\"", "'; DROP TABLE x; --", b"quotes", Priority::Low),
        Job::new("crab \u{1F980}", "\u{1F600}\u{fc}", "\u{1F980}".as_bytes(), Priority::High),
        Job::new("back\\slash%~", "star*?[x]%00", b"globby", Priority::Normal),
        Job { epoch, ..Job::new("replay", "epoch-1", b"scheduled", Priority::Normal) },
    ]
}

fn replay_after_kill_9(kind: &str) {
    let Some(store) = Backend::new(kind, "st_replay") else { return };
    let mut server = store.start(&[]);
    let epoch = now() + 5;
    let jobs = replay_jobs(epoch);
    let mut client = Gear::connect(server.port).expect("connect");
    for j in &jobs {
        submit(&mut client, j);
    }
    // A foreground job is never stored (nobody works on it here).
    let mut fg = Gear::connect(server.port).expect("connect");
    let reply = fg.call(&Request::SubmitJob {
        mode: SubmitMode { priority: Priority::Normal, background: false },
        function: b("replay"),
        unique: b("foreground"),
        data: b("fg"),
    });
    assert!(matches!(reply, Ok(Response::JobCreated { .. })), "foreground submit: {reply:?}");
    assert_eq!(store.count(), jobs.len(), "{kind}: every background job stored before JOB_CREATED, nothing else");
    server.kill9();
    drop((client, fg));

    let mut server = store.start(&[]);
    assert_eq!(store.count(), jobs.len(), "{kind}: replay writes nothing back");
    let status = server.admin("status");
    assert!(status.contains("replay\t6\t0\t0\n") && status.contains("my-func\t1\t0\t0\n"), "{kind}: {status}");
    // Plain names are stored as they are, so the operators' SQL finds them.
    if let Backend::Shared(t) = &store {
        let sql = format!("SELECT COUNT(*) FROM {} WHERE function_name = 'my-func' AND unique_key = 'a-b-c'", t.name);
        let found = match t.service {
            Shared::Postgres => databases::psql(&sql).ok(),
            Shared::Mysql => databases::mysql(&sql).ok(),
            Shared::Redis => {
                Some(databases::redis_keys_at(6379, &format!("{}-my-func-a-b-c", t.name)).len().to_string())
            }
        };
        assert_eq!(found.as_deref().map(str::trim), Some("1"), "{kind}: row of my-func/a-b-c");
    }

    let mut functions: Vec<&str> = jobs.iter().map(|j| j.function.as_str()).collect();
    functions.sort();
    functions.dedup();
    let ran = run_all_queued(server.port, &functions);
    assert!(ran.iter().all(|r| r.unique != "epoch-1") || now() >= epoch, "{kind}: epoch job ran early");
    // Priority survives: every high job before every normal before every low.
    let by_unique: HashMap<&str, &Job> = jobs.iter().map(|j| (j.unique.as_str(), j)).collect();
    let replay_prios: Vec<u8> = ran
        .iter()
        .filter(|r| r.function == "replay")
        .map(|r| by_unique.get(r.unique.as_str()).map(|j| j.priority.code()).unwrap_or(9))
        .collect();
    let mut sorted = replay_prios.clone();
    sorted.sort();
    assert_eq!(replay_prios, sorted, "{kind}: hand-out order after replay ignores priority: {ran:?}");
    let mut ran = ran;
    if !ran.iter().any(|r| r.unique == "epoch-1") {
        let late = run_jobs(server.port, &["replay"], 1, Duration::from_secs(15));
        assert!(now() >= epoch, "{kind}: epoch job handed out at {} before its time {epoch}", now());
        ran.extend(late);
    }
    // Function, unique and data intact; every job ran exactly once.
    let mut got: Vec<(String, String, Vec<u8>)> = ran.into_iter().map(|r| (r.function, r.unique, r.data)).collect();
    let mut want: Vec<(String, String, Vec<u8>)> =
        jobs.iter().map(|j| (j.function.clone(), j.unique.clone(), j.data.clone())).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{kind}: replayed jobs differ");

    store.wait_count(0, Duration::from_secs(10), &format!("{kind}: rows of completed jobs deleted"));
    assert_eq!(server.terminate(Duration::from_secs(10)), Some(0), "{kind}: clean exit on SIGTERM");
}

#[test]
fn sqlite_replays_every_field_after_kill_9() {
    replay_after_kill_9("sqlite");
}

#[test]
fn postgres_replays_every_field_after_kill_9() {
    replay_after_kill_9("postgres");
}

#[test]
fn mysql_replays_every_field_after_kill_9() {
    replay_after_kill_9("mysql");
}

#[test]
fn redis_replays_every_field_after_kill_9() {
    replay_after_kill_9("redis");
}

/// 4 connections submit background jobs; kill -9 after ~1 s; every job
/// whose JOB_CREATED reached a client runs after the restart.
fn crash_under_load(kind: &str) {
    let Some(store) = Backend::new(kind, "st_load") else { return };
    let mut server = store.start(&[]);
    let port = server.port;
    let load = load_then_kill(port, "load", 4, Duration::from_millis(1000), || server.kill9());
    assert!(load.acked.len() >= 20, "{kind}: load too small to mean anything: {}", load.acked.len());

    let server = store.start(&[]);
    let ran = run_all_queued(server.port, &["load"]);
    let seen: HashSet<String> = ran.iter().map(|r| r.unique.clone()).collect();
    let lost: Vec<&String> = load.acked.difference(&seen).collect();
    assert!(
        lost.is_empty(),
        "{kind}: {} of {} acknowledged jobs lost, e.g. {:?}",
        lost.len(),
        load.acked.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    let duplicates = ran.len() - load.acked.len();
    println!(
        "{kind} crash under load: {} acknowledged, {} ran after restart, {} duplicates (stored, ack lost in the kill)",
        load.acked.len(),
        ran.len(),
        duplicates
    );
    store.wait_count(0, Duration::from_secs(15), &format!("{kind}: rows deleted after the drain"));
}

#[test]
fn sqlite_crash_under_load_loses_nothing_acknowledged() {
    crash_under_load("sqlite");
}

#[test]
fn postgres_crash_under_load_loses_nothing_acknowledged() {
    crash_under_load("postgres");
}

#[test]
fn mysql_crash_under_load_loses_nothing_acknowledged() {
    crash_under_load("mysql");
}

#[test]
fn redis_crash_under_load_loses_nothing_acknowledged() {
    crash_under_load("redis");
}

/// Runs sprocketd with `queue` flags that point at a missing database and
/// checks it exits non-zero (without listening) with a message naming it.
fn refuses_to_start(queue: &[String], names: &[&str]) {
    let port = free_port();
    let out = process::run(
        Command::new(sprocketd()).args(["--listen=127.0.0.1", &format!("--port={port}")]).args(queue),
        b"",
        Duration::from_secs(40),
    );
    assert!(!out.timed_out, "sprocketd {queue:?} kept running with a missing database:\n{}", out.describe());
    assert!(
        out.status.and_then(|s| s.code()).is_some_and(|c| c != 0),
        "sprocketd {queue:?} must exit non-zero:\n{}",
        out.describe()
    );
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    for name in names {
        assert!(text.contains(name), "error for {queue:?} does not name {name:?}:\n{text}");
    }
    assert!(text.len() < 4000, "error message should be short, got:\n{text}");
}

#[test]
fn missing_databases_stop_start_up_with_a_clear_message() {
    let dead = free_port().to_string();
    let missing_db = unique_name("no_such_db");
    refuses_to_start(
        &["-q".into(), "libsqlite3".into(), "--libsqlite3-db=/nonexistent-sprocket-dir/queue.db".into()],
        &["/nonexistent-sprocket-dir/queue.db"],
    );
    refuses_to_start(
        &["-q".into(), "Postgres".into(), format!("--libpq-conninfo=host=127.0.0.1 port={dead} user=postgres")],
        &[&dead],
    );
    if sprocket_testkit::databases::shared_available(sprocket_testkit::databases::Shared::Postgres) {
        refuses_to_start(
            &[
                "-q".into(),
                "libpq".into(),
                format!("--libpq-conninfo=host=127.0.0.1 port=5432 user=postgres dbname={missing_db}"),
            ],
            &[&missing_db],
        );
    }
    refuses_to_start(
        &[
            "--queue-type=MySQL".into(),
            "--mysql-host=127.0.0.1".into(),
            format!("--mysql-port={dead}"),
            "--mysql-user=root".into(),
            "--mysql-db=test".into(),
        ],
        &[&dead],
    );
    if sprocket_testkit::databases::shared_available(sprocket_testkit::databases::Shared::Mysql) {
        refuses_to_start(
            &[
                "--queue-type=MySQL".into(),
                "--mysql-host=127.0.0.1".into(),
                "--mysql-user=root".into(),
                format!("--mysql-db={missing_db}"),
            ],
            &[&missing_db],
        );
    }
    refuses_to_start(
        &["-q".into(), "redis".into(), "--redis-server=127.0.0.1".into(), format!("--redis-port={dead}")],
        &[&dead],
    );
}

/// Submitters keep resubmitting background jobs over a handful of unique
/// keys while workers finish them at once, with the writer committing on
/// four connections: inserts and deletes of nearby keys race in concurrent
/// commits. No submit may get an ERROR (the database is healthy all along),
/// and once everything is drained the table is empty.
fn coalescing_load_on_several_connections(kind: &str) {
    let Some(store) = Backend::new(kind, "st_coal") else { return };
    let server = store.start(&["--store-connections", "4"]);
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let submitters: Vec<_> = (0..8)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = Gear::connect(port).unwrap();
                let (mut created, mut errors) = (0u32, Vec::new());
                let mut n = t;
                while !stop.load(Ordering::Relaxed) {
                    match c.submit_bg("coal", &format!("key{}", n % 5), "d").unwrap() {
                        Response::JobCreated { .. } => created += 1,
                        other => errors.push(format!("{other:?}")),
                    }
                    n += 3;
                }
                (created, errors)
            })
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut w = Gear::connect(port).unwrap();
                w.send(&Request::CanDo { function: b("coal") }).unwrap();
                while !done.load(Ordering::Relaxed) {
                    match w.grab().unwrap() {
                        Some((handle, ..)) => w.send(&Request::WorkComplete { handle, data: b("") }).unwrap(),
                        None => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let (mut created, mut errors) = (0, Vec::new());
    for s in submitters {
        let (c, e) = s.join().unwrap();
        created += c;
        errors.extend(e);
    }
    assert!(created > 100, "{kind}: load too small to mean anything: {created}");
    assert!(errors.is_empty(), "{kind}: {} of {} submits failed, e.g. {:?}", errors.len(), created, &errors[..1]);
    // The workers drain what is left; then no row may remain.
    store.wait_count(0, Duration::from_secs(20), &format!("{kind}: rows left after the drain"));
    done.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    drop(server);
}

#[test]
fn mysql_commits_on_several_connections_without_refusing_submits() {
    coalescing_load_on_several_connections("mysql");
}

#[test]
fn postgres_commits_on_several_connections_without_refusing_submits() {
    coalescing_load_on_several_connections("postgres");
}

#[test]
fn redis_commits_on_several_connections_without_refusing_submits() {
    coalescing_load_on_several_connections("redis");
}

/// A pause is kept in the store's settings table: after `kill -9` and a
/// restart on the same store, the function's stored job waits until it is
/// resumed, and the resume is kept as well.
fn pause_survives_a_restart(kind: &str) {
    let Some(store) = Backend::new(kind, "st_pause") else { return };
    let mut server = store.start(&[]);
    assert_eq!(server.admin("pause paused_fn"), "OK\r\n", "{kind}");
    let mut client = Gear::connect(server.port).expect("connect");
    submit(&mut client, &Job::new("paused_fn", "kept", b"payload", Priority::Normal));
    server.kill9();
    drop(client);

    let grab = |port: u16| {
        let mut worker = Gear::connect(port).expect("connect");
        worker.send(&Request::CanDo { function: b("paused_fn") }).expect("CAN_DO");
        let reply = worker.call(&Request::GrabJobUniq).expect("GRAB_JOB_UNIQ");
        (worker, reply)
    };
    let mut server = store.start(&[]);
    let (_worker, reply) = grab(server.port);
    assert_eq!(reply, Response::NoJob, "{kind}: still paused after the restart");
    assert_eq!(server.admin("resume paused_fn"), "OK\r\n");
    let (_worker, reply) = grab(server.port);
    assert!(
        matches!(&reply, Response::JobAssignUniq { unique, .. } if unique == &b("kept")),
        "{kind}: handed out after resume: {reply:?}"
    );
    server.kill9();

    let server = store.start(&[]);
    let (_worker, reply) = grab(server.port);
    assert!(matches!(reply, Response::JobAssignUniq { .. }), "{kind}: the resume was kept too: {reply:?}");
}

#[test]
fn postgres_pause_survives_a_restart() {
    pause_survives_a_restart("postgres");
}

#[test]
fn mysql_pause_survives_a_restart() {
    pause_survives_a_restart("mysql");
}

#[test]
fn redis_pause_survives_a_restart() {
    pause_survives_a_restart("redis");
}
