//! Recurring jobs and the policy file through the real binaries: a
//! seconds schedule from `--policy-file` reaches a third-party worker
//! (php-gearman's GearmanWorker, which sleeps with PRE_SLEEP between jobs)
//! on time, each job's unique naming its entry and run; a `kill -9` and a
//! restart on the same SQLite file with `catch_up = "last"` submit one
//! job for the runs missed and never a run twice; `cron add` outlives a
//! restart; an unusable policy file stops start-up naming its line; a
//! SIGHUP with a broken file keeps what is in force and logs it, and with
//! a good one applies it; `sprocket cron` drives the same commands.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::sprocketd;
use sprocket_testkit::process::{run, Background};
use sprocket_testkit::{free_port, require_php_gearman, ServerProcess};

const LIMIT: Duration = Duration::from_secs(30);

/// sprocketd on `port` with a SQLite queue in `dir`, logging at INFO to
/// `dir/sprocketd.log`, plus `extra` flags.
fn server(port: u16, dir: &Path, extra: &[&str]) -> ServerProcess {
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--listen",
        "127.0.0.1",
        "--web-listen=none",
        "-q",
        "sqlite",
        "--libsqlite3-db",
        &dir.join("queue.db").display().to_string(),
        "--verbose",
        "INFO",
        "--log-file",
        &dir.join("sprocketd.log").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    ServerProcess::start("sprocketd", sprocketd(), &args, port)
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("sprocketd.log")).unwrap_or_default()
}

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).expect("write the policy file");
    path
}

/// A php-gearman worker for `function` that prints, per job, its unique,
/// the time it got it (Unix seconds, fractional) and its payload.
fn php_worker(dir: &Path, port: u16, function: &str) -> Background {
    let script = dir.join("worker.php");
    std::fs::write(
        &script,
        r#"<?php
$w = new GearmanWorker();
$w->addServer('127.0.0.1', (int)$argv[1]);
$w->addFunction($argv[2], function ($job) {
    printf("job\t%s\t%.3f\t%s\n", $job->unique(), microtime(true), $job->workload());
    fflush(STDOUT);
    return "done";
});
echo "ready\n";
fflush(STDOUT);
while ($w->work()) {
}
"#,
    )
    .expect("write the worker");
    let mut cmd = Command::new("php");
    cmd.arg(&script).arg(port.to_string()).arg(function);
    let mut worker = Background::spawn("php worker", &mut cmd);
    worker.wait_for_line("ready", LIMIT);
    worker
}

/// (unique, time received) of every job the worker printed.
fn jobs_seen(worker: &Background) -> Vec<(String, f64)> {
    worker
        .lines()
        .iter()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            match cols[..] {
                ["job", unique, at, _] => Some((unique.to_owned(), at.parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

fn wait_for_jobs(worker: &Background, n: usize) -> Vec<(String, f64)> {
    let start = Instant::now();
    loop {
        let seen = jobs_seen(worker);
        if seen.len() >= n {
            return seen;
        }
        assert!(start.elapsed() < LIMIT, "only {} jobs came:\n{}", seen.len(), worker.output());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The run time in a scheduled run's unique `cron:<name>:<secs>`.
fn tick_of(unique: &str, name: &str) -> i64 {
    unique
        .strip_prefix(&format!("cron:{name}:"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{unique:?} is not a run of {name}"))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

const BEAT: &str = r#"
[[cron]]
name = "beat"
schedule = "*/2 * * * * *"
function = "cron_beat"
payload = "tick"
catch_up = "last"
"#;

#[test]
fn a_seconds_schedule_wakes_a_sleeping_php_worker_on_time_and_a_restart_catches_up_once() {
    if !require_php_gearman() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(dir.path(), BEAT);
    let port = free_port();
    let policy_flag = format!("--policy-file={}", policy.display());
    let mut srv = server(port, dir.path(), &[&policy_flag]);
    let worker = php_worker(dir.path(), port, "cron_beat");

    let seen = wait_for_jobs(&worker, 3);
    let ticks: Vec<i64> = seen.iter().map(|(u, _)| tick_of(u, "beat")).collect();
    for pair in ticks.windows(2) {
        assert_eq!(pair[1] - pair[0], 2, "one job per run, every 2 s: {ticks:?}");
    }
    for ((_, got), tick) in seen.iter().zip(&ticks) {
        assert_eq!(tick % 2, 0);
        // Woken by the run's NOOP: well within a second of the run time.
        let late = got - *tick as f64;
        assert!((-0.05..1.0).contains(&late), "run {tick} reached the worker {late:.3} s after its time");
    }

    // kill -9 a second after a job, between two runs (its end is in the
    // store by then), then stay down for a few runs.
    let before = jobs_seen(&worker).len();
    wait_for_jobs(&worker, before + 1);
    std::thread::sleep(Duration::from_millis(1000));
    srv.kill9();
    let first: Vec<i64> = jobs_seen(&worker).iter().map(|(u, _)| tick_of(u, "beat")).collect();
    drop(worker);
    let last_before = *first.iter().max().expect("runs before the restart");
    std::thread::sleep(Duration::from_millis(5500));
    let restarted_at = unix_now();
    let srv = server(port, dir.path(), &[&policy_flag]);
    let worker = php_worker(dir.path(), port, "cron_beat");
    let after: Vec<i64> = wait_for_jobs(&worker, 3).iter().map(|(u, _)| tick_of(u, "beat")).collect();
    drop(srv);

    // The restarted server caught up once, with the latest run missed,
    // and the worker got that job.
    let logged = log(dir.path());
    let caught_up: Vec<i64> = logged
        .lines()
        .filter(|l| l.contains("submitting a cron run missed while the server was down"))
        .filter_map(|l| l.split("run=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(caught_up.len(), 1, "one catch-up job: {logged}");
    let caught_up = caught_up[0];
    assert!(caught_up > last_before + 2, "runs were missed: {first:?} then {after:?}\n{logged}");
    assert!(caught_up as f64 >= restarted_at - 2.0, "the latest missed run: {caught_up} at {restarted_at}");
    assert!(after.contains(&caught_up), "the worker got the catch-up job: {after:?}");
    assert!(after.iter().all(|t| *t >= caught_up), "no older missed run: {after:?}");
    let mut all: Vec<i64> = first.iter().chain(&after).copied().collect();
    all.sort_unstable();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "no run twice: before {first:?}, after {after:?}");
    assert!(log(dir.path()).contains("submitting a cron run missed while the server was down"));
}

#[test]
fn cron_add_at_run_time_outlives_a_restart_and_remove_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut srv = server(port, dir.path(), &[]);
    let add = r#"cron add {"name": "nightly", "schedule": "0 3 * * *", "timezone": "Europe/Berlin", "function": "report", "payload": "daily", "catch_up": "last"}"#;
    assert_eq!(srv.admin(add), "OK\r\n");
    assert!(srv.admin(add).starts_with("ERR CRON_EXISTS "));
    // Durable before its OK: even kill -9 keeps it.
    srv.kill9();
    drop(srv);
    let mut srv = server(port, dir.path(), &[]);
    let list = srv.admin("cron list");
    let row: Vec<&str> = list.lines().next().unwrap_or_default().split('\t').collect();
    assert_eq!(row[..4], ["nightly", "0 3 * * *", "Europe/Berlin", "report"], "{list}");
    assert!(row[5].ends_with(":00+01:00") || row[5].ends_with(":00+02:00"), "{list}");
    assert!(row[5].contains("T03:00:00"), "{list}");
    assert_eq!(row[6..9], ["runtime", "last", "normal"], "{list}");
    let run = srv.admin("cron run nightly");
    assert!(run.starts_with("OK H:"), "{run}");
    assert!(srv.admin("show unique jobs").contains("cron:nightly:manual:"));
    assert_eq!(srv.admin("cron remove nightly"), "OK\r\n");
    srv.kill9();
    drop(srv);
    let srv = server(port, dir.path(), &[]);
    assert_eq!(srv.admin("cron list"), ".\n", "removed for good");
}

#[test]
fn an_unusable_policy_file_stops_start_up_naming_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (text, says) in [
        ("[functions.f\n", "line 1"),
        ("[functions.f]\nmax_attempts = 3\nbackof = { kind = \"fixed\", delay = \"1s\" }\n", "line 3"),
        ("[[cron]]\nname = \"a\"\nschedule = \"0 25 * * *\"\nfunction = \"f\"\n", "line 3"),
        ("[[cron]]\nname = \"a\"\nschedule = \"@daily\"\nfunction = \"f\"\ntimezone = \"Mars/Olympus\"\n", "line 5"),
    ] {
        let policy = write_policy(dir.path(), text);
        let port = free_port().to_string();
        let flag = format!("--policy-file={}", policy.display());
        let out = run(
            Command::new(sprocketd()).args([
                "-p",
                &port,
                "-L",
                "127.0.0.1",
                "-q",
                "builtin",
                "--web-listen=none",
                &flag,
            ]),
            b"",
            LIMIT,
        );
        assert!(!out.success(), "started with {text:?}");
        let err = out.stderr_text();
        assert!(err.contains(&format!("policy file {}", policy.display())) && err.contains(says), "{text:?}: {err}");
    }
    let out =
        run(Command::new(sprocketd()).args(["-q", "builtin", "--policy-file", "/nonexistent/policy.toml"]), b"", LIMIT);
    assert!(!out.success() && out.stderr_text().contains("cannot be read"), "{}", out.describe());
}

#[test]
fn sighup_keeps_the_cron_in_force_on_a_broken_file_and_applies_a_good_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let entry = |name: &str| format!("[[cron]]\nname = \"{name}\"\nschedule = \"@hourly\"\nfunction = \"f_{name}\"\n");
    let function = |attempts: u32| format!("[functions.\"resize_*\"]\nmax_attempts = {attempts}\ndead_letter = true\n");
    let policy = write_policy(dir.path(), &format!("{}{}", function(3), entry("one")));
    let port = free_port();
    let srv = server(port, dir.path(), &[&format!("--policy-file={}", policy.display())]);
    let names = || -> Vec<String> {
        srv.admin("cron list")
            .lines()
            .filter(|l| *l != ".")
            .map(|l| l.split('\t').next().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(names(), ["one"]);
    // The file's function policy is in force too.
    let policy_of = || srv.admin("policy").lines().find(|l| l.starts_with("resize_*\t")).map(str::to_owned);
    let line = policy_of().unwrap_or_default();
    assert!(line.starts_with("resize_*\tfile\t") && line.contains("\"max_attempts\":3"), "{line:?}");
    let hup = || {
        let status = Command::new("kill").args(["-HUP", &srv.child.id().to_string()]).status().expect("kill -HUP");
        assert!(status.success());
    };

    write_policy(dir.path(), &format!("{}\nschedule_typo = 1\n", entry("two")));
    hup();
    let start = Instant::now();
    while !log(dir.path()).contains("policy file not reloaded") {
        assert!(start.elapsed() < LIMIT, "no log line:\n{}", log(dir.path()));
        std::thread::sleep(Duration::from_millis(50));
    }
    let logged = log(dir.path());
    assert!(logged.contains("line 6") && logged.contains("schedule_typo"), "{logged}");
    assert_eq!(names(), ["one"], "the entry in force stays");
    assert!(policy_of().is_some_and(|l| l.contains("\"max_attempts\":3")), "the policy in force stays");

    write_policy(dir.path(), &format!("{}{}{}", function(7), entry("two"), entry("three")));
    hup();
    let start = Instant::now();
    while names() != ["three", "two"] {
        assert!(start.elapsed() < LIMIT, "not applied: {:?}", names());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(log(dir.path()).contains("policy file reloaded"));
    assert!(policy_of().is_some_and(|l| l.contains("\"max_attempts\":7")), "{:?}", policy_of());
}

#[test]
fn the_sprocket_command_lists_adds_runs_and_removes() {
    let Some(cli) = sprocket_testkit::find_workspace_bin("sprocket") else {
        sprocket_testkit::skip("the sprocket binary is not built (cargo build -p sprocket-cli)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(dir.path(), BEAT);
    let port = free_port();
    let srv = server(port, dir.path(), &[&format!("--policy-file={}", policy.display())]);
    let servers = format!("127.0.0.1:{port}");
    let sprocket = |args: &[&str]| {
        let mut cmd = Command::new(&cli);
        cmd.args(args).args(["-s", &servers]);
        run(&mut cmd, b"", LIMIT)
    };
    let out = sprocket(&[
        "cron",
        "add",
        "weekly",
        "--schedule",
        "0 6 * * mon",
        "--function",
        "digest",
        "--payload",
        "all users",
        "--timezone",
        "America/New_York",
        "--priority",
        "low",
        "--catch-up",
        "all",
    ]);
    assert!(out.success(), "{}", out.describe());

    let out = sprocket(&["cron", "list"]);
    assert!(out.success(), "{}", out.describe());
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines.len() == 3, "{text}");
    assert!(lines[1].starts_with("beat ") && lines[1].contains("file"), "{text}");
    assert!(
        lines[2].starts_with("weekly ") && lines[2].contains("America/New_York") && lines[2].contains("runtime"),
        "{text}"
    );

    let out = sprocket(&["cron", "list", "--json"]);
    let entries: serde_json::Value = serde_json::from_str(&out.stdout_text()).expect("JSON");
    let weekly = &entries[1];
    assert_eq!(weekly["name"], "weekly");
    assert_eq!(weekly["priority"], "low");
    assert_eq!(weekly["catch_up"], "all");
    assert!(weekly["next"].as_i64().is_some_and(|n| n as f64 > unix_now()), "{weekly}");
    assert!(weekly["next_time"].as_str().is_some_and(|t| t.contains("T06:00:00-0")), "{weekly}");

    let out = sprocket(&["cron", "run", "weekly"]);
    assert!(out.success() && out.stdout_text().starts_with("H:"), "{}", out.describe());
    let unique = srv.admin("show unique jobs");
    assert!(unique.contains("cron:weekly:manual:"), "{unique}");
    let out = sprocket(&["cron", "remove", "beat"]);
    assert!(!out.success() && out.stderr_text().contains("edit the file"), "{}", out.describe());
    let out = sprocket(&["cron", "add", "bad", "--schedule", "* * *", "--function", "f"]);
    assert!(!out.success() && out.stderr_text().contains("3 fields"), "{}", out.describe());
    let out = sprocket(&["cron", "remove", "weekly"]);
    assert!(out.success(), "{}", out.describe());
    let out = sprocket(&["cron", "run", "weekly"]);
    assert!(!out.success() && out.stderr_text().contains("no cron entry has that name"), "{}", out.describe());
}
