//! The per-function history in the web API (`/api/v1/history`,
//! `/api/v1/functions/{name}/history`) through the real sprocketd, on by
//! default, with Debian's `gearman` tool as client and as workers (one
//! that completes jobs with `cat`, one that fails them with `false`, one
//! that takes 300 ms) and curl as the HTTP client.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::server_with_web;
use serde_json::Value;
use sprocket_testkit::process::{run, Background};
use sprocket_testkit::status::wait_for_workers;
use sprocket_testkit::{admin, require_tool};

const LIMIT: Duration = Duration::from_secs(30);

/// curl's answer: status and body parsed as JSON.
fn curl(web: u16, path: &str) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{web}{path}");
    let out = run(Command::new("curl").args(["-s", "-S", "-w", "\n%{http_code}", &url]), b"", LIMIT);
    assert!(out.success(), "curl {url}: {}", out.describe());
    let text = out.stdout_text();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
    (code.trim().parse().expect("status code"), json)
}

fn get(web: u16, path: &str) -> Value {
    let (status, json) = curl(web, path);
    assert_eq!(status, 200, "GET {path}: {json}");
    json
}

fn gearman(port: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new("gearman");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args);
    cmd
}

fn worker(port: u16, function: &str, command: &[&str]) -> Background {
    let mut args = vec!["-w", "-f", function, "--"];
    args.extend_from_slice(command);
    let worker = Background::spawn(&format!("gearman -w -f {function}"), &mut gearman(port, &args));
    wait_for_workers(port, function, 1);
    worker
}

/// A count summed over a series' slots.
fn sum(series: &Value, key: &str) -> u64 {
    series["slots"].as_array().expect("slots").iter().map(|slot| slot["counts"][key].as_u64().expect(key)).sum()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn history_series_and_function_windows_count_jobs_run_by_gearman_workers() {
    if !require_tool("curl") || !require_tool("gearman") {
        return;
    }
    // No history flag: the history is on by default.
    let (server, web) = server_with_web(&["-q", "builtin"]);
    let port = server.port;
    let _workers = [
        worker(port, "hist_ok", &["cat"]),
        worker(port, "hist_bad", &["false"]),
        worker(port, "hist_slow", &["sh", "-c", "sleep 0.3; cat"]),
    ];
    for (args, expect_ok) in [
        (&["-f", "hist_ok", "one"][..], true),
        (&["-f", "hist_ok", "two"][..], true),
        (&["-f", "hist_ok", "three"][..], true),
        (&["-f", "hist_bad", "x"][..], false),
        (&["-f", "hist_bad", "y"][..], false),
        (&["-f", "hist_slow", "s"][..], true),
    ] {
        let out = run(&mut gearman(port, args), b"", LIMIT);
        assert_eq!(out.success(), expect_ok, "gearman {args:?}: {}", out.describe());
    }
    let before = now_ms();

    // Summed over every function, in each window.
    for (window, slots, slot_ms) in [("hour", 60, 60_000), ("day", 24, 3_600_000), ("week", 42, 14_400_000)] {
        let series = get(web, &format!("/api/v1/history?window={window}"));
        assert_eq!(series["window"], window, "{series}");
        assert_eq!(series["function"], Value::Null, "{series}");
        assert_eq!(series["slot_ms"], slot_ms, "{series}");
        let all = series["slots"].as_array().expect("slots");
        assert_eq!(all.len(), slots, "{series}");
        let last = all[slots - 1]["start"].as_u64().expect("start");
        assert!(last <= now_ms() && last + slot_ms > before - slot_ms, "the last slot is the current one: {last}");
        assert_eq!((sum(&series, "completed"), sum(&series, "failed")), (4, 2), "{window}: {series}");
        assert_eq!(sum(&series, "exceptions") + sum(&series, "dead") + sum(&series, "timeouts"), 0, "{series}");
    }
    // Without a window: the hour.
    assert_eq!(get(web, "/api/v1/history")["slot_ms"], 60_000);

    // One function.
    let bad = get(web, "/api/v1/history?window=hour&function=hist_bad");
    assert_eq!(bad["function"], "hist_bad");
    assert_eq!((sum(&bad, "completed"), sum(&bad, "failed")), (0, 2), "{bad}");
    let nobody = get(web, "/api/v1/history?window=week&function=nobody");
    assert_eq!((nobody["slots"].as_array().map(Vec::len), sum(&nobody, "completed")), (Some(42), 0));

    // One function's windows, with percentiles: the slow job ran for
    // about 300 ms (the histogram is within 12.5 %).
    let slow = get(web, "/api/v1/functions/hist_slow/history");
    assert_eq!(slow["function"], "hist_slow");
    for window in ["minute", "hour", "day", "week"] {
        assert_eq!(slow[window]["counts"]["completed"], 1, "{window}: {slow}");
        let run = slow[window]["run_time_ms"]["p50"].as_u64().expect("run p50");
        assert!((260..=450).contains(&run), "{window} run p50 {run}: {slow}");
        assert_eq!(slow[window]["run_time_ms"]["samples"], 1, "{slow}");
    }
    let ok = get(web, "/api/v1/functions/hist_ok/history");
    assert_eq!(
        (ok["hour"]["counts"]["completed"].as_u64(), ok["hour"]["counts"]["failed"].as_u64()),
        (Some(3), Some(0))
    );
    let unknown = get(web, "/api/v1/functions/nobody/history");
    assert_eq!(unknown["week"]["counts"]["completed"], 0, "{unknown}");
    assert_eq!(unknown["week"]["run_time_ms"]["p50"], Value::Null, "{unknown}");

    // The functions listing gives each function's rates over the last
    // minute from the same counts: 3 completed and 2 failed in 60 s.
    let listed = get(web, "/api/v1/functions");
    let rates =
        |name: &str| listed.as_array().and_then(|fs| fs.iter().find(|f| f["name"] == name)).map(|f| f["rates"].clone());
    let ok_rates = rates("hist_ok").unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(ok_rates["window_seconds"], 60, "{listed}");
    assert!((ok_rates["completed"].as_f64().unwrap_or(0.0) - 0.05).abs() < 1e-9, "{listed}");
    let bad_rates = rates("hist_bad").unwrap_or_else(|| panic!("{listed}"));
    assert!((bad_rates["failed"].as_f64().unwrap_or(0.0) - 2.0 / 60.0).abs() < 1e-9, "{listed}");
    assert_eq!(get(web, "/api/v1/functions/hist_ok")["rates"], ok_rates);

    // The admin command answers the same counts, in its three windows as
    // before (the week is only in the web API).
    let text = admin(port, "history");
    let day_ok = text.lines().find(|l| l.starts_with("hist_ok\tday\t")).unwrap_or_else(|| panic!("{text}"));
    assert!(day_ok.starts_with("hist_ok\tday\t3\t0\t"), "{text}");
    assert!(!text.contains("\tweek\t"), "{text}");

    // Bad requests.
    let (status, error) = curl(web, "/api/v1/history?window=month");
    assert_eq!(status, 400, "{error}");
    assert!(error["error"].as_str().unwrap_or_default().contains("minute, hour, day or week"), "{error}");
    let (status, error) = curl(web, "/api/v1/history?windows=hour");
    assert_eq!(status, 400, "an unknown parameter is refused: {error}");
}

#[test]
fn no_history_turns_it_off_and_the_api_says_how_to_turn_it_on() {
    if !require_tool("curl") || !require_tool("gearman") {
        return;
    }
    let (server, web) = server_with_web(&["-q", "builtin", "--no-history"]);
    for path in ["/api/v1/history?window=day", "/api/v1/functions/any/history"] {
        let (status, error) = curl(web, path);
        assert_eq!(status, 503, "{path}: {error}");
        let message = error["error"].as_str().unwrap_or_default();
        assert!(message.contains("--no-history"), "{path}: {message}");
    }
    assert!(admin(server.port, "history").starts_with("ERR HISTORY_OFF"));
    // Functions are listed all the same, their rates null.
    let out = run(&mut gearman(server.port, &["-b", "-f", "quiet", "x"]), b"", LIMIT);
    assert!(out.success(), "gearman -b: {}", out.describe());
    let listed = get(web, "/api/v1/functions");
    assert_eq!(listed[0]["name"], "quiet", "{listed}");
    assert_eq!(listed[0]["rates"], Value::Null, "{listed}");

    // The old opt-in flag is still accepted, and says in --help that it
    // does nothing now.
    let (_server, web) = server_with_web(&["-q", "builtin", "--history"]);
    assert_eq!(get(web, "/api/v1/history?window=week")["slots"].as_array().map(Vec::len), Some(42));
    let help = run(Command::new(common::sprocketd()).arg("--help"), b"", LIMIT);
    let help = help.stdout_text();
    assert!(help.contains("--no-history") && help.contains("does nothing"), "{help}");
}
