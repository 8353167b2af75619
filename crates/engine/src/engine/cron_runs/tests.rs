//! Cron runs in the engine, with the clock passed in.

use bytes::Bytes;
use sprocket_proto::{Request, Response};

use crate::cron::{CronSpec, CRON_SETTING, CRON_TICK_SETTING, MAX_CATCH_UP};
use crate::{Config, Engine, JobFilter, Out, PersistMode, PersistOp};

/// 2026-11-22 13:48:00 UTC, in ms.
const T0: u64 = 1_795_355_280_000;

fn engine() -> Engine {
    let mut e = Engine::new(Config { persist: PersistMode::Immediate, settings_durable: true, ..Config::default() });
    e.tick(T0);
    e
}

fn spec(json: &str) -> CronSpec {
    CronSpec::from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn every_two_seconds(catch_up: &str) -> CronSpec {
    spec(&format!(
        r#"{{"name":"beat","schedule":"*/2 * * * * *","function":"f","payload":"p","priority":"high","catch_up":"{catch_up}"}}"#
    ))
}

fn uniques(e: &Engine) -> Vec<String> {
    e.jobs_view(&JobFilter::default()).into_iter().map(|j| String::from_utf8_lossy(&j.unique).into_owned()).collect()
}

fn noops_to(out: &crate::Outbox, conn: u64) -> usize {
    out.sends.iter().filter(|(c, o)| *c == conn && matches!(o, Out::Packet(Response::Noop))).count()
}

fn text_to(out: &crate::Outbox, conn: u64) -> String {
    out.sends
        .iter()
        .filter(|(c, _)| *c == conn)
        .filter_map(|(_, o)| match o {
            Out::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn each_run_is_one_background_job_with_the_run_in_its_unique_and_wakes_sleepers() {
    let mut e = engine();
    let worker = 7;
    e.connected(worker, 10, "w".into());
    e.request(worker, Request::CanDo { function: Bytes::from_static(b"f") }, T0);
    e.request(worker, Request::PreSleep, T0);
    e.set_file_cron(vec![every_two_seconds("none")]);
    e.start_cron();
    let _ = e.take_outbox();
    assert_eq!(e.next_deadline(), Some(T0 + 2000), "the next even second");

    e.tick(T0 + 2000);
    let out = e.take_outbox();
    let tick = T0 / 1000 + 2;
    assert_eq!(uniques(&e), [format!("cron:beat:{tick}")]);
    assert_eq!(noops_to(&out, worker), 1, "the sleeping worker is woken");
    assert!(
        out.persist.iter().any(|(_, op)| matches!(op, PersistOp::Insert { unique, .. } if unique.as_ref() == format!("cron:beat:{tick}").as_bytes())),
        "the run's job is written to the store"
    );
    assert!(out
        .setting_writes
        .iter()
        .any(|w| w.kind == CRON_TICK_SETTING && w.name.as_ref() == b"beat" && w.value == Some(tick.to_string())));
    let job = &e.jobs_view(&JobFilter::default())[0];
    assert!(job.background);
    assert_eq!(job.priority, sprocket_proto::Priority::High);

    // The worker takes it and sees the unique and the payload.
    e.request(worker, Request::GrabJobUniq, T0 + 2000);
    let out = e.take_outbox();
    let assigned = out.sends.iter().find_map(|(_, o)| match o {
        Out::Packet(Response::JobAssignUniq { unique, data, .. }) => Some((unique.clone(), data.clone())),
        _ => None,
    });
    assert_eq!(assigned, Some((Bytes::from(format!("cron:beat:{tick}")), Bytes::from_static(b"p"))));

    // A late clock runs once, for the time it was due, not once per
    // second missed while running.
    e.tick(T0 + 9_500);
    assert_eq!(uniques(&e).len(), 2, "{:?}", uniques(&e));
    assert_eq!(e.next_deadline(), Some(T0 + 10_000));
}

#[test]
fn a_paused_function_queues_its_runs_and_wakes_nobody_until_resumed() {
    let mut e = engine();
    let worker = 7;
    e.connected(worker, 10, "w".into());
    e.request(worker, Request::CanDo { function: Bytes::from_static(b"f") }, T0);
    e.request(worker, Request::PreSleep, T0);
    assert!(e.pause_function(b"f").is_ok());
    e.set_file_cron(vec![every_two_seconds("none")]);
    e.start_cron();
    let _ = e.take_outbox();
    e.tick(T0 + 2000);
    let out = e.take_outbox();
    assert_eq!(e.job_count(), 1, "the run's job queues");
    assert_eq!(noops_to(&out, worker), 0, "nobody is woken for a paused function");
    assert!(e.resume_function(b"f").is_ok());
    assert_eq!(noops_to(&e.take_outbox(), worker), 1);
}

/// Runs an engine with `catch_up` for a few runs, "crashes" it, and starts
/// a new one 60 s later with what the store kept; returns the new
/// engine's jobs and the last run the first engine submitted.
fn restart_after_downtime(catch_up: &str, replayed: Option<i64>) -> (Vec<String>, i64) {
    let mut first = engine();
    first.set_file_cron(vec![every_two_seconds(catch_up)]);
    first.start_cron();
    let mut writes = Vec::new();
    for ms in [2000, 4000, 6000] {
        first.tick(T0 + ms);
        writes.extend(first.take_outbox().setting_writes);
    }
    assert_eq!(first.job_count(), 3);
    let last: i64 = writes
        .iter()
        .filter(|w| w.kind == CRON_TICK_SETTING)
        .filter_map(|w| w.value.as_ref()?.parse().ok())
        .max()
        .expect("a run was kept");
    assert_eq!(last, (T0 / 1000 + 6) as i64);

    let mut second = engine();
    second.tick(T0 + 66_000);
    second.restore_cron_tick("beat", last);
    if let Some(tick) = replayed {
        second.replay(crate::ReplayJob {
            function: Bytes::from_static(b"f"),
            unique: Bytes::from(format!("cron:beat:{tick}")),
            priority: sprocket_proto::Priority::High,
            data: Bytes::from_static(b"p"),
            when: 0,
            record: None,
        });
    }
    second.set_file_cron(vec![every_two_seconds(catch_up)]);
    second.start_cron();
    let mut jobs = uniques(&second);
    jobs.sort();
    (jobs, last)
}

#[test]
fn catch_up_none_skips_the_missed_runs() {
    let (jobs, _) = restart_after_downtime("none", None);
    assert!(jobs.is_empty(), "{jobs:?}");
}

#[test]
fn catch_up_last_submits_one_job_for_the_latest_missed_run() {
    let (jobs, _) = restart_after_downtime("last", None);
    assert_eq!(jobs, [format!("cron:beat:{}", T0 / 1000 + 66)]);
}

#[test]
fn catch_up_all_submits_every_missed_run_once() {
    let (jobs, last) = restart_after_downtime("all", None);
    // Runs every 2 s after the last one kept, up to the restart: 30.
    assert_eq!(jobs.len(), 30, "{jobs:?}");
    assert!(!jobs.contains(&format!("cron:beat:{last}")), "the kept run is not run again");
    assert!(jobs.contains(&format!("cron:beat:{}", last + 2)));
    assert!(jobs.contains(&format!("cron:beat:{}", T0 / 1000 + 66)));
}

#[test]
fn a_replayed_run_counts_as_submitted_and_is_not_submitted_again() {
    // The store lost the tick setting of the run at +66 but has its job.
    let (jobs, _) = restart_after_downtime("last", Some((T0 / 1000 + 66) as i64));
    assert_eq!(jobs, [format!("cron:beat:{}", T0 / 1000 + 66)], "one job, the replayed one");
}

#[test]
fn catch_up_all_is_bounded() {
    let mut e = engine();
    e.restore_cron_tick("beat", (T0 / 1000) as i64);
    e.tick(T0 + 3_600_000);
    e.set_file_cron(vec![every_two_seconds("all")]);
    e.start_cron();
    let jobs = uniques(&e);
    assert_eq!(jobs.len(), MAX_CATCH_UP);
    assert!(jobs.contains(&format!("cron:beat:{}", T0 / 1000 + 3600)), "the most recent are kept");
}

#[test]
fn cron_run_submits_one_job_now_without_moving_the_schedule() {
    let mut e = engine();
    e.set_file_cron(vec![every_two_seconds("none")]);
    e.start_cron();
    let handle = e.run_cron("beat").expect("submitted");
    assert!(handle.starts_with(b"H:localhost:"));
    assert_eq!(uniques(&e), [format!("cron:beat:manual:{T0}")]);
    assert_eq!(e.next_deadline(), Some(T0 + 2000));
    assert!(e.run_cron("nope").is_err());
}

#[test]
fn admin_cron_commands() {
    let mut e = engine();
    let admin = 3;
    e.connected(admin, 9, "a".into());
    e.set_file_cron(vec![every_two_seconds("none")]);
    e.start_cron();
    let _ = e.take_outbox();

    // An add is answered once the entry is durable.
    let add = r#"cron add {"name": "nightly", "schedule": "0 3 * * *", "timezone": "Europe/Berlin", "function": "report", "payload": "daily run", "catch_up": "last"}"#;
    e.admin_line(admin, add.as_bytes(), T0);
    let out = e.take_outbox();
    assert_eq!(text_to(&out, admin), "", "nothing before the store has it");
    let write = out.setting_writes.iter().find(|w| w.kind == CRON_SETTING).expect("the entry is written");
    assert_eq!(write.name.as_ref(), b"nightly");
    let kept = CronSpec::from_json(write.value.as_deref().unwrap_or_default()).expect("JSON");
    assert_eq!(kept.payload, "daily run");
    e.setting_write_done(write.id, Ok(()), T0);
    assert_eq!(text_to(&e.take_outbox(), admin), "OK\r\n");

    e.admin_line(admin, b"cron list", T0);
    let list = text_to(&e.take_outbox(), admin);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert_eq!(lines[2], ".");
    let beat: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(beat[..4], ["beat", "*/2 * * * * *", "UTC", "f"]);
    assert_eq!(beat[4], (T0 / 1000 + 2).to_string());
    assert_eq!(beat[5], "2026-11-22T13:48:02+00:00");
    assert_eq!(beat[6..], ["file", "none", "high", "-"]);
    let nightly: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(nightly[..4], ["nightly", "0 3 * * *", "Europe/Berlin", "report"]);
    assert_eq!(nightly[5], "2026-11-23T03:00:00+01:00");
    assert_eq!(nightly[6..9], ["runtime", "last", "normal"]);

    for (line, reply) in [
        (
            r#"cron add {"name":"beat","schedule":"@daily","function":"g"}"#,
            "ERR CRON_EXISTS the+policy+file+already+has+an+entry+of+that+name\r\n",
        ),
        (
            "cron remove beat",
            "ERR CRON_FROM_FILE the+entry+comes+from+the+policy+file:+edit+the+file+and+reload+(SIGHUP)\r\n",
        ),
        ("cron remove ghost", "ERR CRON_UNKNOWN no+cron+entry+has+that+name\r\n"),
        ("cron run ghost", "ERR CRON_UNKNOWN no+cron+entry+has+that+name\r\n"),
    ] {
        e.admin_line(admin, line.as_bytes(), T0);
        assert_eq!(text_to(&e.take_outbox(), admin), reply, "{line}");
    }
    e.admin_line(admin, br#"cron add {"name":"x","schedule":"0 0 30 2 *","function":"g"}"#, T0);
    let reply = text_to(&e.take_outbox(), admin);
    assert!(reply.starts_with("ERR INVALID_CRON ") && reply.contains("never+matches"), "{reply}");

    // A file entry of a run-time entry's name is ignored; the run-time
    // entry stays.
    e.set_file_cron(vec![every_two_seconds("none"), spec(r#"{"name":"nightly","schedule":"@hourly","function":"z"}"#)]);
    assert_eq!(
        e.cron_entries().iter().find(|v| v.spec.name.as_str() == "nightly").map(|v| v
            .spec
            .function
            .as_str()
            .to_owned()),
        Some("report".into())
    );

    e.admin_line(admin, b"cron remove nightly", T0);
    let out = e.take_outbox();
    let writes: Vec<_> = out.setting_writes.iter().map(|w| (w.kind, w.value.clone())).collect();
    assert!(writes.contains(&(CRON_SETTING, None)) && writes.contains(&(CRON_TICK_SETTING, None)), "{writes:?}");
    let last_id = out.setting_writes.iter().map(|w| w.id).max().unwrap_or_default();
    e.setting_write_done(last_id, Ok(()), T0);
    assert_eq!(text_to(&e.take_outbox(), admin), "OK\r\n");
    assert_eq!(e.cron_entries().len(), 1);

    // `cron run` answers with the handle once the insert is durable.
    e.admin_line(admin, b"cron run beat", T0);
    let out = e.take_outbox();
    assert_eq!(text_to(&out, admin), "");
    let seq = out.persist.iter().map(|(seq, _)| *seq).max().expect("an insert");
    e.stored(seq, &[], T0);
    let reply = text_to(&e.take_outbox(), admin);
    assert!(reply.starts_with("OK H:localhost:") && reply.ends_with('\n'), "{reply}");
}

#[test]
fn a_reload_keeps_an_unchanged_entry_and_drops_a_removed_one() {
    let mut e = engine();
    e.set_file_cron(vec![every_two_seconds("none")]);
    e.start_cron();
    e.tick(T0 + 2000);
    assert_eq!(e.job_count(), 1);
    e.set_file_cron(vec![every_two_seconds("none")]);
    assert_eq!(e.cron_entries()[0].last, Some((T0 / 1000 + 2) as i64), "its last run is kept");
    e.set_file_cron(Vec::new());
    assert!(e.cron_entries().is_empty());
    e.tick(T0 + 10_000);
    assert_eq!(e.job_count(), 1, "a removed entry's timer does nothing");
}
