//! Dead letters in a durable store, end to end: dead records written to
//! the SQLite queue file beforehand (as a server whose jobs died would
//! have left them) are kept for `--dead-retention` while the other ended
//! records keep `--record-retention`; they are listed by admin `dead` and
//! `GET /api/v1/dead`, found by error text, and purged by admin `purge
//! dead [FUNCTION]` and `DELETE /api/v1/dead`, which answer once the
//! deletes are committed and leave every other record alone.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::Value;
use sprocket_proto::Priority;
use sprocket_records::{Limits, Outcome, Record, Worker};
use sprocket_store::sqlite::SqliteStore;
use sprocket_store::{RecordRow, Store, StoreOp, SyncMode};
use sprocket_testkit::process::run;
use sprocket_testkit::{admin, free_port, require_tool, ServerProcess};

use crate::common::{sprocketd, wait_for_port};
use crate::support::{sqlite_file, LIMIT};

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Job `n`'s record: run once, ended with `outcome` at `end`.
fn ended(n: u64, function: &str, outcome: Outcome<'_>, end: u64) -> Record {
    let handle = format!("H:seed:{n}");
    let mut r =
        Record::new(handle.as_bytes(), function.as_bytes(), b"", Priority::Normal, true, end - 2_000).expect("record");
    let worker = Worker { client_id: Bytes::from_static(b"w"), peer: Arc::from("127.0.0.1:9") };
    r.started(worker, end - 1_000).expect("start");
    r.ended(outcome, end, Limits::default()).expect("end");
    r
}

/// Writes the records into the SQLite queue file sprocketd on `port` will
/// use, and closes it.
fn seed(file: &std::path::Path, records: &[Record]) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut store = SqliteStore::open(file, "gearman_queue", SyncMode::Normal).await.expect("open the queue file");
        let ops: Vec<StoreOp> = records.iter().map(|r| StoreOp::Record(RecordRow::new(r, b"").expect("row"))).collect();
        store.apply(&ops).await.expect("write the records");
    });
}

/// The handles of an admin record listing, in order.
fn handles(listing: &str) -> Vec<String> {
    assert!(listing.ends_with(".\n"), "not a listing: {listing:?}");
    listing.lines().filter(|l| *l != ".").map(|l| l.split('\t').next().unwrap_or("").to_string()).collect()
}

fn seeds(ns: &[u64]) -> Vec<String> {
    ns.iter().map(|n| format!("H:seed:{n}")).collect()
}

fn curl(args: &[&str]) -> (u16, Value) {
    let out =
        run(Command::new("curl").args(["-s", "-S", "-w", "\n%{http_code}"]).args(args), b"", Duration::from_secs(20));
    assert!(out.success(), "curl {args:?}: {}", out.describe());
    let text = out.stdout_text();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("curl {args:?}: not JSON ({e}): {body}"));
    (code.trim().parse().expect("status code"), json)
}

fn api_handles(json: &Value) -> Vec<String> {
    json["records"].as_array().expect("records").iter().map(|r| r["handle"].as_str().unwrap().to_string()).collect()
}

#[test]
fn dead_records_are_kept_apart_listed_and_purged_in_a_durable_store() {
    if !require_tool("curl") {
        return;
    }
    let (port, web) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("data dir");
    let file = sqlite_file(dir.path(), port);
    let now = now_ms();
    seed(
        &file,
        &[
            ended(
                1,
                "resize",
                Outcome::Dead {
                    end: sprocket_records::AttemptEnd::Exception,
                    error: Some(b"Disk FULL on sda"),
                    payload: b"work",
                },
                now - HOUR,
            ),
            ended(
                2,
                "resize",
                Outcome::Dead { end: sprocket_records::AttemptEnd::Failed, error: None, payload: b"work" },
                now - 2 * HOUR,
            ),
            ended(
                3,
                "mail",
                Outcome::Dead {
                    end: sprocket_records::AttemptEnd::Exception,
                    error: Some(b"smtp refused"),
                    payload: b"work",
                },
                now - 3 * HOUR,
            ),
            ended(4, "resize", Outcome::Exception(b"disk full too"), now - HOUR - 1),
            // Past the dead retention (30 days): expires.
            ended(
                5,
                "resize",
                Outcome::Dead { end: sprocket_records::AttemptEnd::Failed, error: None, payload: b"work" },
                now - 40 * DAY,
            ),
            // Past the record retention (7 days), not dead: expires.
            ended(6, "resize", Outcome::Failed, now - 8 * DAY),
            // Dead, 10 days: within the dead retention, kept.
            ended(
                7,
                "mail",
                Outcome::Dead { end: sprocket_records::AttemptEnd::Failed, error: None, payload: b"work" },
                now - 10 * DAY,
            ),
        ],
    );
    let web_listen = format!("--web-listen=127.0.0.1:{web}");
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--listen",
        "127.0.0.1",
        "--queue-type=sqlite",
        "--data-dir",
        &dir.path().display().to_string(),
        &web_listen,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let _server = ServerProcess::start("sprocketd", sprocketd(), &args, port);
    wait_for_port(web);

    // Expiry runs at start: each kind by its own retention.
    let mut listing = String::new();
    let expired = sprocket_testkit::databases::wait_until(LIMIT, || {
        listing = admin(port, r#"records {"limit": 100}"#);
        handles(&listing) == seeds(&[1, 4, 2, 3, 7])
    });
    assert!(expired, "records after expiry: {listing}");

    assert_eq!(handles(&admin(port, "dead")), seeds(&[1, 2, 3, 7]));
    assert_eq!(handles(&admin(port, r#"dead {"function": "resize"}"#)), seeds(&[1, 2]));
    assert_eq!(handles(&admin(port, r#"dead {"error": "disk full"}"#)), seeds(&[1]), "only the dead one");
    assert_eq!(handles(&admin(port, r#"records {"error": "DISK FULL"}"#)), seeds(&[1, 4]));
    let (status, json) = curl(&[&format!("http://127.0.0.1:{web}/api/v1/dead?function=resize")]);
    assert_eq!((status, api_handles(&json)), (200, seeds(&[1, 2])), "{json}");
    let (status, json) = curl(&[&format!("http://127.0.0.1:{web}/api/v1/records?error=disk%20full")]);
    assert_eq!((status, api_handles(&json)), (200, seeds(&[1, 4])), "{json}");
    let (status, json) = curl(&[&format!("http://127.0.0.1:{web}/api/v1/dead?state=failed")]);
    assert_eq!(status, 400, "{json}");

    // Purges answer how many, once committed; the rest stays.
    assert_eq!(admin(port, "purge dead mail"), "OK 2\n");
    assert_eq!(handles(&admin(port, "dead")), seeds(&[1, 2]));
    let (status, json) = curl(&["-X", "DELETE", &format!("http://127.0.0.1:{web}/api/v1/dead?function=resize")]);
    assert_eq!((status, &json["purged"]), (200, &Value::from(2)), "{json}");
    assert_eq!(admin(port, "dead"), ".\n");
    assert_eq!(admin(port, "purge dead"), "OK 0\n");
    assert_eq!(handles(&admin(port, r#"records {"limit": 100}"#)), seeds(&[4]), "the exception's record stays");
    let dead_rows = run(
        Command::new("sqlite3")
            .arg(&file)
            .arg("PRAGMA busy_timeout=5000; SELECT COUNT(*) FROM sprocket_records WHERE state = 'dead'"),
        b"",
        LIMIT,
    );
    if dead_rows.success() {
        assert_eq!(dead_rows.stdout_text().lines().last().map(str::trim), Some("0"), "no dead row is left");
    }
}
