//! Retries with backoff and dead letters through the real binaries, with
//! third-party workers that sleep with PRE_SLEEP between jobs: php-gearman
//! and Debian's `gearman -w` running a script that fails until its third
//! call. Policies are set with `sprocket policy set` (kept by the server
//! across restarts); the store is sprocketd's default SQLite file, killed
//! with -9 during a backoff wait and right after a requeue's answer.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{durable_server, DataDir};
use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::wait_for_workers;
use sprocket_testkit::{free_port, interop_dir, require_php_gearman, require_tool, workspace_bin, ServerProcess};

const LIMIT: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `sprocket ARGS… -s 127.0.0.1:PORT`; its stdout, asserting success.
fn sprocket(port: u16, args: &[&str]) -> String {
    let server = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(workspace_bin("sprocket"));
    cmd.args(args).args(["-s", &server]);
    let out = run(&mut cmd, b"", LIMIT);
    assert!(out.success(), "sprocket {args:?}: {}", out.describe());
    out.stdout_text()
}

/// Sets `pattern`'s policy with `sprocket policy set`.
fn set_policy(port: u16, pattern: &str, json: &str) {
    sprocket(port, &["policy", "set", pattern, json]);
}

/// A value of `record HANDLE`'s answer (`key TAB value` lines).
fn record_field(srv: &ServerProcess, handle: &str, key: &str) -> Option<String> {
    let answer = srv.admin(&format!("record {handle}"));
    answer.lines().find_map(|l| l.strip_prefix(&format!("{key}\t")).map(str::to_string))
}

/// Waits until job `handle`'s record is in `state`.
fn wait_state(srv: &ServerProcess, handle: &str, state: &str) {
    let start = Instant::now();
    loop {
        if record_field(srv, handle, "state").as_deref() == Some(state) {
            return;
        }
        assert!(start.elapsed() < LIMIT, "{handle} never became {state}: {}", srv.admin(&format!("record {handle}")));
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// php-gearman's flaky worker (see tests/interop/php/flaky_worker.php).
fn php_flaky(port: u16, function: &str, fails: u32, mode: &str, fixed: Option<&Path>) -> Background {
    let mut cmd = Command::new("php");
    cmd.arg(interop_dir().join("php/flaky_worker.php")).args([
        "127.0.0.1",
        &port.to_string(),
        function,
        &fails.to_string(),
        mode,
    ]);
    if let Some(path) = fixed {
        cmd.arg(path);
    }
    let mut worker = Background::spawn("php flaky_worker.php", &mut cmd);
    worker.wait_for_line("READY", LIMIT);
    wait_for_workers(port, function, 1);
    // libgearman asks for a job, hears NO_JOB and sleeps with PRE_SLEEP.
    std::thread::sleep(Duration::from_millis(300));
    worker
}

/// A background job submitted by php-gearman; its handle.
fn php_submit(port: u16, function: &str, workload: &str) -> String {
    let mut cmd = Command::new("php");
    cmd.arg(interop_dir().join("php/records_submit.php")).args(["127.0.0.1", &port.to_string(), function, workload]);
    let out = run(&mut cmd, b"", LIMIT);
    assert!(out.success(), "php background submit: {}", out.describe());
    out.stdout_text().lines().find_map(|l| l.strip_prefix("HANDLE ")).expect("a handle printed").to_string()
}

/// The (call number, time) of each call the PHP worker printed for
/// `handle`, once it has printed `expected` of them (its output is read by a
/// thread of its own, which may lag behind the server's record).
fn php_calls(worker: &Background, handle: &str, expected: usize) -> Vec<(u32, u64)> {
    let start = Instant::now();
    loop {
        let calls = printed_calls(worker, handle);
        if calls.len() >= expected || start.elapsed() > LIMIT {
            return calls;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn printed_calls(worker: &Background, handle: &str) -> Vec<(u32, u64)> {
    worker
        .lines()
        .iter()
        .filter_map(|l| {
            let mut f = l.strip_prefix("CALL ")?.split(' ');
            (f.next()? == handle).then_some(())?;
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

/// A script for `gearman -w` that fails until its third call, appending
/// the time of each call (Unix ms) to `calls`.
fn failing_script(dir: &DataDir, fails: u32) -> PathBuf {
    let script = dir.file("flaky.sh");
    let calls = dir.file("calls");
    let text = format!(
        "#!/bin/sh\ncat > /dev/null\ndate +%s%3N >> {calls}\nn=$(wc -l < {calls})\n[ \"$n\" -gt {fails} ] && printf done\n[ \"$n\" -gt {fails} ]\n",
        calls = calls.display()
    );
    std::fs::write(&script, text).expect("write the script");
    let _ = Command::new("chmod").arg("+x").arg(&script).status();
    script
}

fn script_calls(dir: &DataDir) -> Vec<u64> {
    std::fs::read_to_string(dir.file("calls"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// `gearman -w -f FUNCTION -- SCRIPT` (Debian's gearman-tools).
fn gearman_worker(port: u16, function: &str, script: &Path) -> Background {
    let mut cmd = Command::new("gearman");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-w", "-f", function, "--"]).arg(script);
    let worker = Background::spawn("gearman -w", &mut cmd);
    wait_for_workers(port, function, 1);
    std::thread::sleep(Duration::from_millis(300));
    worker
}

/// The handle of the only job `show jobs` lists.
fn only_job(srv: &ServerProcess) -> String {
    let jobs = srv.admin("show jobs");
    let handles: Vec<&str> = jobs.lines().filter(|l| *l != ".").filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(handles.len(), 1, "one job: {jobs}");
    handles[0].to_string()
}

/// Waits for a dead job of `function` in `records FUNCTION dead`; its handle.
fn first_dead(srv: &ServerProcess, function: &str) -> String {
    let start = Instant::now();
    loop {
        let listed = srv.admin(&format!("records {function} dead"));
        if let Some(handle) = listed.lines().find(|l| *l != ".").and_then(|l| l.split('\t').next()) {
            return handle.to_string();
        }
        assert!(start.elapsed() < LIMIT, "no dead job of {function}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn a_php_workers_job_completes_on_attempt_three_after_each_backoff() {
    if !require_php_gearman() {
        return;
    }
    let data = DataDir::new("retries-php3");
    let port = free_port();
    let srv = durable_server(port, &data.0, &[]);
    set_policy(port, "rt_php_*", r#"{"max_attempts": 5, "backoff": {"kind": "fixed", "delay": "1s"}}"#);
    let worker = php_flaky(port, "rt_php_resize", 2, "fail", None);
    let handle = php_submit(port, "rt_php_resize", "image");
    wait_state(&srv, &handle, "complete");
    let calls = php_calls(&worker, &handle, 3);
    assert_eq!(calls.iter().map(|c| c.0).collect::<Vec<_>>(), [1, 2, 3], "{calls:?}");
    for pair in calls.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        // The worker sleeps in PRE_SLEEP: it runs again only because the
        // end of the backoff woke it, on time.
        assert!((1_000..2_500).contains(&gap), "waited {gap} ms between attempts: {calls:?}");
    }
    assert_eq!(record_field(&srv, &handle, "attempts").as_deref(), Some("3"));
    assert_eq!(record_field(&srv, &handle, "failures").as_deref(), Some("2"));
    assert_eq!(record_field(&srv, &handle, "result").as_deref(), Some("egami"));
}

#[test]
fn a_gearman_w_script_that_fails_until_its_third_call_completes_under_a_policy() {
    if !require_tool("gearman") {
        return;
    }
    let data = DataDir::new("retries-gw3");
    let port = free_port();
    let srv = durable_server(port, &data.0, &["--history"]);
    set_policy(port, "rt_gw", r#"{"max_attempts": 3, "backoff": {"kind": "fixed", "delay": "700ms"}}"#);
    let _worker = gearman_worker(port, "rt_gw", &failing_script(&data, 2));
    let submitted = Command::new("gearman")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-f", "rt_gw", "-b", "x"])
        .status()
        .expect("gearman -b");
    assert!(submitted.success());
    let handle = only_job(&srv);
    wait_state(&srv, &handle, "complete");
    let calls = script_calls(&data);
    assert_eq!(calls.len(), 3, "{calls:?}");
    for pair in calls.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((700..2_000).contains(&gap), "waited {gap} ms: {calls:?}");
    }
    let answer = srv.admin(&format!("record {handle}"));
    let ends: Vec<&str> =
        answer.lines().filter(|l| l.starts_with("attempt\t")).filter_map(|l| l.split('\t').nth(5)).collect();
    assert_eq!(ends, ["failed", "failed", "completed"], "{answer}");
    // The history counts the two retried attempts (its last column) and
    // the one completed job.
    let history = srv.admin("history");
    let minute: Vec<&str> =
        history.lines().find(|l| l.starts_with("rt_gw\tminute\t")).expect("a history line").split('\t').collect();
    assert_eq!((minute[2], minute[15]), ("1", "2"), "{history}");
}

#[test]
fn a_foreground_gearman_client_hears_only_the_final_result_when_the_policy_retries_foreground_jobs() {
    if !require_tool("gearman") {
        return;
    }
    let data = DataDir::new("retries-fg");
    let port = free_port();
    let _srv = durable_server(port, &data.0, &[]);
    let policy = r#"{"max_attempts": 3, "backoff": {"kind": "fixed", "delay": "300ms"}, "retry_foreground": true}"#;
    set_policy(port, "rt_fg", policy);
    let _worker = gearman_worker(port, "rt_fg", &failing_script(&data, 2));
    let mut cmd = Command::new("gearman");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-f", "rt_fg", "x"]);
    let out = run(&mut cmd, b"", LIMIT);
    assert!(out.success(), "the client saw a failure: {}", out.describe());
    assert_eq!(out.stdout_text().trim(), "done");
    assert_eq!(script_calls(&data).len(), 3);
}

#[test]
fn an_always_failing_job_becomes_dead_and_after_the_fix_a_requeue_completes_it() {
    if !require_php_gearman() {
        return;
    }
    let data = DataDir::new("retries-dead");
    let port = free_port();
    let srv = durable_server(port, &data.0, &[]);
    set_policy(
        port,
        "rt_dead",
        r#"{"max_attempts": 3, "backoff": {"kind": "fixed", "delay": "200ms"}, "dead_letter": true}"#,
    );
    let fixed = data.file("fixed");
    let worker = php_flaky(port, "rt_dead", 1_000, "exception", Some(&fixed));
    let handle = php_submit(port, "rt_dead", "bad-input");
    wait_state(&srv, &handle, "dead");
    assert_eq!(php_calls(&worker, &handle, 3).len(), 3, "max_attempts counts the first");
    assert_eq!(record_field(&srv, &handle, "payload").as_deref(), Some("bad-input"), "the workload is kept");
    assert_eq!(record_field(&srv, &handle, "error").as_deref(), Some("broken: bad-input"));
    assert!(srv.admin("records rt_dead dead").contains(&format!("{handle}\tdead\t")));
    // The operator's view: `sprocket dead`, by function and by error text.
    let listed: serde_json::Value =
        serde_json::from_str(&sprocket(port, &["dead", "-f", "rt_dead", "--error", "BROKEN", "--json"])).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["handle"], handle.as_str());
    assert_eq!(listed[0]["payload"], "bad-input");
    assert_eq!(listed[0]["failures"], 3);
    let none: serde_json::Value =
        serde_json::from_str(&sprocket(port, &["dead", "-f", "rt_dead", "--error", "quota", "--json"])).expect("JSON");
    assert_eq!(none.as_array().map(Vec::len), Some(0), "{none}");
    assert!(srv.admin("status").contains("rt_dead\t0\t0\t1"), "nothing queued: {}", srv.admin("status"));

    // The operator fixes the worker and requeues the dead job.
    std::fs::write(&fixed, b"").expect("fix");
    assert_eq!(sprocket(port, &["requeue", &handle]).trim(), "1");
    wait_state(&srv, &handle, "complete");
    assert_eq!(record_field(&srv, &handle, "result").as_deref(), Some("tupni-dab"));
    assert_eq!(record_field(&srv, &handle, "attempts").as_deref(), Some("4"));
    let again = Command::new(workspace_bin("sprocket"))
        .args(["requeue", &handle, "-s", &format!("127.0.0.1:{port}")])
        .output()
        .expect("sprocket requeue");
    assert!(!again.status.success(), "a completed job is not dead");
    assert!(String::from_utf8_lossy(&again.stderr).contains("not dead"), "{again:?}");

    // A second job dies; the operator purges the dead letters instead.
    std::fs::remove_file(&fixed).expect("break the worker again");
    let second = php_submit(port, "rt_dead", "other");
    wait_state(&srv, &second, "dead");
    assert_eq!(sprocket(port, &["purge", "--dead", "--function", "rt_dead"]).trim(), "1");
    assert_eq!(srv.admin(&format!("record {second}")), "ERR UNKNOWN_JOB\r\n", "its record is gone");
    assert_eq!(record_field(&srv, &handle, "state").as_deref(), Some("complete"), "other records stay");
}

#[test]
fn kill_9_during_a_backoff_wait_loses_nothing_and_does_not_hasten_the_retry() {
    if !require_tool("gearman") {
        return;
    }
    let data = DataDir::new("retries-kill");
    let port = free_port();
    let mut srv = durable_server(port, &data.0, &[]);
    set_policy(port, "rt_kill", r#"{"max_attempts": 3, "backoff": {"kind": "fixed", "delay": "4s"}}"#);
    let script = failing_script(&data, 1);
    let mut worker = gearman_worker(port, "rt_kill", &script);
    let submitted = Command::new("gearman")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-f", "rt_kill", "-b", "x"])
        .status()
        .expect("gearman -b");
    assert!(submitted.success());
    let handle = only_job(&srv);
    wait_state(&srv, &handle, "retrying");
    let retry_at: u64 = record_field(&srv, &handle, "retry_at").and_then(|t| t.parse().ok()).expect("retry_at");
    // The record is written in the failure's commit; give the group commit
    // its moment before the kill.
    std::thread::sleep(Duration::from_millis(300));
    srv.kill9();
    worker.stop();

    let srv = durable_server(port, &data.0, &[]);
    assert_eq!(record_field(&srv, &handle, "state").as_deref(), Some("retrying"), "still waiting after the restart");
    let _worker = gearman_worker(port, "rt_kill", &script);
    wait_state(&srv, &handle, "complete");
    let calls = script_calls(&data);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[1] >= retry_at, "retried at {} before its time {retry_at}", calls[1]);
    assert!(calls[1] < retry_at + 3_000, "retried {} ms late", calls[1] - retry_at);
    assert!(now_ms() > retry_at);
}

#[test]
fn kill_9_right_after_a_requeue_is_answered_keeps_the_requeued_job() {
    if !require_tool("gearman") {
        return;
    }
    let data = DataDir::new("retries-requeue-kill");
    let port = free_port();
    let mut srv = durable_server(port, &data.0, &[]);
    set_policy(port, "rt_rk", r#"{"max_attempts": 1, "dead_letter": true}"#);
    let script = failing_script(&data, 1);
    let mut worker = gearman_worker(port, "rt_rk", &script);
    let submitted = Command::new("gearman")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-f", "rt_rk", "-b", "payload"])
        .status()
        .expect("gearman -b");
    assert!(submitted.success());
    let handle = first_dead(&srv, "rt_rk");
    worker.stop();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(srv.admin(&format!("requeue {handle}")), "OK 1\n");
    srv.kill9();

    let srv = durable_server(port, &data.0, &[]);
    assert_eq!(record_field(&srv, &handle, "state").as_deref(), Some("queued"), "{}", srv.admin("status"));
    let _worker = gearman_worker(port, "rt_rk", &script);
    wait_state(&srv, &handle, "complete");
    assert_eq!(script_calls(&data).len(), 2);
}

#[test]
fn run_time_policies_outlive_a_restart_and_sprocket_policy_lists_and_clears_them() {
    let data = DataDir::new("retries-policies");
    let port = free_port();
    let mut srv = durable_server(port, &data.0, &[]);
    set_policy(port, "rt_keep_*", r#"{"max_attempts": 4, "timeout": "90s", "dead_letter": true}"#);
    let bad = Command::new(workspace_bin("sprocket"))
        .args(["policy", "set", "rt_x", r#"{"max_attempts": "many"}"#, "-s", &format!("127.0.0.1:{port}")])
        .output()
        .expect("sprocket policy set");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("BAD_POLICY"), "{bad:?}");
    srv.kill9();

    let _srv = durable_server(port, &data.0, &[]);
    let listed: serde_json::Value =
        serde_json::from_str(&sprocket(port, &["policy", "--json"])).expect("policy --json is JSON");
    assert_eq!(listed[0]["pattern"], "rt_keep_*");
    assert_eq!(listed[0]["source"], "runtime");
    assert_eq!(listed[0]["policy"]["max_attempts"], 4);
    assert_eq!(listed[0]["policy"]["timeout"], "90s");
    assert_eq!(listed[0]["policy"]["dead_letter"], true);
    let table = sprocket(port, &["policy"]);
    assert!(table.contains("rt_keep_*") && table.contains("runtime"), "{table}");
    sprocket(port, &["policy", "clear", "rt_keep_*"]);
    assert!(sprocket(port, &["policy"]).contains("no policies"));
}

#[test]
fn the_rust_clients_admin_sets_policies_requeues_and_purges_dead_jobs() {
    if !require_tool("gearman") {
        return;
    }
    let data = DataDir::new("retries-admin");
    let port = free_port();
    let srv = durable_server(port, &data.0, &[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let addr: sprocket_client::ServerAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let mut admin = rt.block_on(sprocket_client::Admin::connect(&addr, None)).expect("admin connection");
    rt.block_on(admin.set_policy("rt_adm", r#"{"max_attempts": 1, "dead_letter": true}"#)).expect("policy set");
    let policies = rt.block_on(admin.policies()).expect("policies");
    assert_eq!(policies.len(), 1);
    assert_eq!((policies[0].0.as_str(), policies[0].1.as_str()), ("rt_adm", "runtime"));
    assert!(policies[0].2.contains("\"dead_letter\":true"), "{policies:?}");
    match rt.block_on(admin.set_policy("rt_adm", r#"{"max_attempts": 0}"#)) {
        Err(sprocket_client::Error::Server { code, text }) => {
            assert_eq!(code, "BAD_POLICY");
            assert!(text.contains("max_attempts"), "{text}");
        }
        other => panic!("a bad policy was accepted: {other:?}"),
    }

    // Two jobs die at once (one attempt each) under a failing `gearman -w`.
    let mut worker = gearman_worker(port, "rt_adm", &failing_script(&data, 10));
    for payload in ["one", "two"] {
        let submitted = Command::new("gearman")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-f", "rt_adm", "-b", payload])
            .status()
            .expect("gearman -b");
        assert!(submitted.success());
    }
    let start = Instant::now();
    while srv.admin("records rt_adm dead").lines().filter(|l| *l != ".").count() < 2 {
        assert!(start.elapsed() < LIMIT, "two dead jobs: {}", srv.admin("records rt_adm dead"));
        std::thread::sleep(Duration::from_millis(25));
    }
    worker.stop();
    let dead = first_dead(&srv, "rt_adm");
    match rt.block_on(admin.requeue("H:nowhere:1")) {
        Err(sprocket_client::Error::Server { code, .. }) => assert_eq!(code, "UNKNOWN_JOB"),
        other => panic!("an unknown handle was requeued: {other:?}"),
    }
    rt.block_on(admin.requeue(&dead)).expect("requeue one");
    assert_eq!(record_field(&srv, &dead, "state").as_deref(), Some("queued"));
    assert_eq!(rt.block_on(admin.purge_queued("rt_adm")).expect("purge queued"), 1);
    assert_eq!(rt.block_on(admin.requeue_function("rt_adm")).expect("requeue the rest"), 1);
    rt.block_on(admin.pause("rt_adm")).expect("pause");
    rt.block_on(admin.resume("rt_adm")).expect("resume");
    assert_eq!(rt.block_on(admin.purge_queued("rt_adm")).expect("purge queued"), 1);
    assert_eq!(rt.block_on(admin.purge_dead(Some("rt_adm"))).expect("purge dead"), 0, "nothing dead is left");
    rt.block_on(admin.clear_policy("rt_adm")).expect("policy clear");
    assert!(rt.block_on(admin.policies()).expect("policies").is_empty());
}

/// `curl -s URL` on the web port; the body.
fn web_get(web: u16, path: &str) -> String {
    let out =
        run(Command::new("curl").args(["-s", "-S", "--fail", &format!("http://127.0.0.1:{web}{path}")]), b"", LIMIT);
    assert!(out.success(), "curl {path}: {}", out.describe());
    out.stdout_text()
}

/// The `retrying` count of `function` in `/api/v1/functions`.
fn api_retrying(web: u16, function: &str) -> Option<u64> {
    let all: serde_json::Value = serde_json::from_str(&web_get(web, "/api/v1/functions")).expect("JSON");
    all.as_array()?.iter().find(|f| f["name"] == function)?["retrying"].as_u64()
}

/// The value of the sample `series` on the `/metrics` page.
fn metric(web: u16, series: &str) -> Option<f64> {
    web_get(web, "/metrics").lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A job whose php-gearman worker failed it waits out its backoff: the
/// web port counts it as retrying for its function (API and metrics),
/// while gearman-exporter's gauges keep counting it as waiting, as `status`
/// does; once it has completed, nothing is retrying.
#[test]
fn a_job_waiting_for_its_retry_is_counted_as_retrying_in_the_api_and_metrics() {
    if !require_php_gearman() || !require_tool("curl") {
        return;
    }
    let data = DataDir::new("retries-web");
    let data_dir = data.0.display().to_string();
    let (srv, web) = common::server_with_web(&["-q", "sqlite", "--data-dir", &data_dir]);
    let port = srv.port;
    set_policy(port, "rt_web", r#"{"max_attempts": 3, "backoff": {"kind": "fixed", "delay": "3s"}}"#);
    let worker = php_flaky(port, "rt_web", 1, "fail", None);
    assert_eq!(api_retrying(web, "rt_web"), Some(0), "nothing failed yet");
    let handle = php_submit(port, "rt_web", "image");
    // The first attempt fails at once; the second comes 3 s later.
    let start = Instant::now();
    while api_retrying(web, "rt_web") != Some(1) {
        assert!(start.elapsed() < LIMIT, "never retrying: {}", srv.admin(&format!("record {handle}")));
        std::thread::sleep(Duration::from_millis(50));
    }
    let retrying = metric(web, "sprocket_jobs_retrying{function=\"rt_web\"}");
    let waiting = metric(web, "gearman_jobs_waiting{function=\"rt_web\"}");
    let total = metric(web, "gearman_jobs{function=\"rt_web\"}");
    assert_eq!((retrying, waiting, total), (Some(1.0), Some(1.0), Some(1.0)), "retrying, and waiting as before");
    let status = srv.admin("status");
    assert!(status.lines().any(|l| l.starts_with("rt_web\t1\t0\t")), "status counts it as queued: {status}");
    wait_state(&srv, &handle, "complete");
    assert_eq!(php_calls(&worker, &handle, 2).len(), 2, "failed once, then completed");
    assert_eq!(api_retrying(web, "rt_web"), Some(0));
    assert_eq!(metric(web, "sprocket_jobs_retrying{function=\"rt_web\"}"), Some(0.0));
}
