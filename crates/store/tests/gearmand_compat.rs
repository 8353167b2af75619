//! Rows written by Debian's real gearmand 1.1.20 are replayed by our
//! backends with every field intact (fixing gearmand's own replay bugs),
//! and gearmand replays what we write to SQLite.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;
use sprocket_proto::Priority;
use sprocket_store::{StoreOp, StoredJob};
use sprocket_testkit::databases::mysql;
use sprocket_testkit::{require_tool, ServerProcess};

/// `gearman -b [-I|-L] -p PORT -f FUNC -u UNIQ DATA`.
fn gearman_bg(port: u16, function: &str, unique: &str, priority: Priority, data: &str) {
    let mut cmd = Command::new("gearman");
    cmd.args(["-b", "-p", &port.to_string(), "-h", "127.0.0.1", "-f", function, "-u", unique]);
    match priority {
        Priority::High => {
            cmd.arg("-I");
        }
        Priority::Low => {
            cmd.arg("-L");
        }
        Priority::Normal => {}
    }
    let out = cmd.arg(data).output().expect("run gearman");
    assert!(out.status.success(), "gearman failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Sends SUBMIT_JOB_EPOCH (the CLI has no epoch option) and returns the reply type.
fn submit_epoch(port: u16, function: &[u8], unique: &[u8], when: i64, data: &[u8]) -> u32 {
    submit_raw(port, 36, &[function, unique, when.to_string().as_bytes()], data)
}

/// Sends one submit packet of type `kind` (NUL-terminated `fields`, then
/// `data`) and returns the reply's packet type.
fn submit_raw(port: u16, kind: u32, fields: &[&[u8]], data: &[u8]) -> u32 {
    let mut body = Vec::new();
    for part in fields {
        body.extend_from_slice(part);
        body.push(0);
    }
    body.extend_from_slice(data);
    let mut packet = b"\0REQ".to_vec();
    packet.extend_from_slice(&kind.to_be_bytes());
    packet.extend_from_slice(&(body.len() as u32).to_be_bytes());
    packet.extend_from_slice(&body);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to gearmand");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&packet).unwrap();
    let mut header = [0u8; 12];
    s.read_exact(&mut header).expect("reply header");
    let len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    let mut rest = vec![0u8; len];
    s.read_exact(&mut rest).expect("reply body");
    u32::from_be_bytes([header[4], header[5], header[6], header[7]])
}

const JOB_CREATED: u32 = 8;

/// gearmand's flags for its MySQL queue in `table` on the shared MariaDB.
fn gearmand_mysql_args(table: &str) -> Vec<String> {
    vec![
        "-q".into(),
        "MySQL".into(),
        format!("--mysql-host={MYSQL_HOST}"),
        format!("--mysql-port={MYSQL_PORT}"),
        "--mysql-user=root".into(),
        "--mysql-db=test".into(),
        format!("--mysql-table={table}"),
    ]
}

/// Submits the same jobs to a gearmand using `queue_args`, stops it, and
/// returns what we expect to find.
fn fill_with_gearmand(queue_args: &[String], epoch_ok: bool, redis_names: bool) -> Option<Vec<StoredJob>> {
    if !require_tool("gearman") {
        return None;
    }
    let args: Vec<&str> = queue_args.iter().map(String::as_str).collect();
    let mut server = ServerProcess::gearmand(&args)?;
    let port = server.port;
    // Redis keys cannot tell `my-func`+`r5` from `my`+`func-r5`; gearmand
    // writes no other fields, so there use a name without `-` or a UUID unique.
    let hyphen_fn = if redis_names { "resize" } else { "my-func" };
    let mut want = vec![
        job(b"f1", b"u1", Priority::Normal, b"data one", 0),
        job(hyphen_fn.as_bytes(), b"r5", Priority::High, b"high job", 0),
        job(b"f1", b"u3", Priority::Low, b"it's \"quoted\" data", 0),
        job("crab \u{1F980}".as_bytes(), "\u{1F600}".as_bytes(), Priority::Normal, "\u{1F980} data".as_bytes(), 0),
        job(b"my-func", b"6f1e0c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6", Priority::Normal, b"uuid", 0),
    ];
    for j in &want {
        gearman_bg(
            port,
            std::str::from_utf8(&j.function).unwrap(),
            std::str::from_utf8(&j.unique).unwrap(),
            j.priority,
            std::str::from_utf8(&j.data).unwrap(),
        );
    }
    // An empty workload (the CLI cannot send one): gearmand stores NULL
    // data in SQLite, which its own replay then fails on.
    assert_eq!(submit_raw(port, 18, &[b"empty", b"e0"], b""), JOB_CREATED);
    want.push(job(b"empty", b"e0", Priority::Normal, b"", 0));
    let reply = submit_epoch(port, b"later", b"e1", 1_900_000_000, b"epoch data");
    if epoch_ok {
        assert_eq!(reply, JOB_CREATED, "gearmand refused the epoch job");
        want.push(job(b"later", b"e1", Priority::Normal, b"epoch data", 1_900_000_000));
    }
    assert!(server.terminate(Duration::from_secs(10)).is_some(), "gearmand did not stop");
    Some(want)
}

#[tokio::test]
async fn sqlite_replays_gearmand_rows() {
    let Some(s) = Scratch::new(Backend::Sqlite, "gmd") else { return };
    let args = vec![
        "-q".into(),
        "libsqlite3".into(),
        format!("--libsqlite3-db={}", s.sqlite_path().display()),
        format!("--libsqlite3-table={}", s.name),
    ];
    let Some(want) = fill_with_gearmand(&args, true, false) else { return };
    let mut store = s.open().await;
    assert_same_jobs(store.load().await.expect("replay gearmand's sqlite rows"), want);
}

#[tokio::test]
async fn postgres_replays_gearmand_rows() {
    let Some(s) = Scratch::new(Backend::Postgres, "gmd") else { return };
    // Mixed case, as in seed 002's `gearmanqueue1` style names: gearmand
    // created it unquoted, so PostgreSQL folded it; we must find that table.
    let table = s.name.to_uppercase();
    let args = vec![
        "-q".into(),
        "Postgres".into(),
        format!("--libpq-conninfo={PG_CONNINFO}"),
        format!("--libpq-table={table}"),
    ];
    let Some(want) = fill_with_gearmand(&args, true, false) else { return };
    let config = sprocket_store::StoreConfig::Postgres { conninfo: PG_CONNINFO.into(), table };
    let mut store = sprocket_store::open(&config).await.expect("open gearmand's table");
    // gearmand's own replay would make all of these high priority, epoch 0.
    assert_same_jobs(store.load().await.expect("replay gearmand's postgres rows"), want);
}

#[tokio::test]
async fn mysql_replays_gearmand_rows() {
    let Some(s) = Scratch::new(Backend::Mysql, "gmd") else { return };
    let args = gearmand_mysql_args(&s.name);
    let Some(want) = fill_with_gearmand(&args, true, false) else { return };
    let mut store = s.open().await;
    assert_same_jobs(store.load().await.expect("replay gearmand's mysql rows"), want);
}

#[tokio::test]
async fn redis_replays_gearmand_keys() {
    let Some(s) = Scratch::new(Backend::Redis, "gmd") else { return };
    let args = vec![
        "-q".into(),
        "redis".into(),
        "--redis-server=127.0.0.1".into(),
        format!("--redis-port={REDIS_PORT}"),
        format!("--redis-prefix={}", s.name),
    ];
    // gearmand refuses epoch jobs on Redis.
    let Some(want) = fill_with_gearmand(&args, false, true) else { return };
    let mut store = s.open().await;
    assert_same_jobs(store.load().await.expect("replay gearmand's redis keys"), want);
}

/// The other direction: gearmand replays a table sprocketd wrote.
#[tokio::test]
async fn gearmand_replays_sqlite_rows_we_wrote() {
    let Some(s) = Scratch::new(Backend::Sqlite, "rev") else { return };
    if !require_tool("gearadmin") {
        return;
    }
    {
        let mut store = s.open().await;
        let jobs = vec![
            job(b"rev", b"a", Priority::Normal, b"1", 0),
            job(b"rev", b"b", Priority::Low, b"", 0),
            job(b"rev-two", b"c", Priority::High, b"3", 0),
        ];
        store.apply(&inserts(&jobs)).await.unwrap();
    }
    let args = [
        "-q".to_string(),
        "libsqlite3".into(),
        format!("--libsqlite3-db={}", s.sqlite_path().display()),
        format!("--libsqlite3-table={}", s.name),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(server) = ServerProcess::gearmand(&args) else { return };
    let status = server.admin("status");
    assert!(status.lines().any(|l| l.starts_with("rev\t2\t")), "{status}");
    assert!(status.lines().any(|l| l.starts_with("rev-two\t1\t")), "{status}");
}

/// gearmand 1.1.20 cuts a unique of 64 bytes or more to 63 and stores the
/// terminating NUL with it (`UUU…U\0` in unique_key). Replay must give the
/// job the unique before the NUL (gearmand reads it as a C string), and the
/// row must be rewritten to that key so the delete after completion
/// removes it; otherwise the job comes back, corrupted, after every restart.
async fn replays_gearmands_cut_unique(s: &Scratch, queue_args: &[String], stored_hex: &dyn Fn() -> Vec<String>) {
    if !require_tool("gearmand") {
        return;
    }
    let args: Vec<&str> = queue_args.iter().map(String::as_str).collect();
    let Some(mut server) = ServerProcess::gearmand(&args) else { return };
    // The gearman CLI cuts the unique itself, so send the packet by hand.
    assert_eq!(submit_raw(server.port, 18, &[b"hunt_long", &[b'U'; 64]], b"long"), JOB_CREATED);
    assert_eq!(submit_raw(server.port, 18, &[b"hunt_short", b"s1"], b"short"), JOB_CREATED);
    assert!(server.terminate(Duration::from_secs(10)).is_some(), "gearmand did not stop");
    let cut = format!("{}00", "55".repeat(63));
    assert!(stored_hex().contains(&cut), "gearmand stored {:?}", stored_hex());

    let want = vec![
        job(b"hunt_long", &[b'U'; 63], Priority::Normal, b"long", 0),
        job(b"hunt_short", b"s1", Priority::Normal, b"short", 0),
    ];
    let mut store = s.open().await;
    assert_same_jobs(store.load().await.expect("replay gearmand's cut unique"), want.clone());
    // The row now holds the key a delete is written with.
    assert!(stored_hex().contains(&"55".repeat(63)), "{:?}", stored_hex());
    assert!(!stored_hex().contains(&cut), "{:?}", stored_hex());
    // The worker finished the job: its row goes.
    store.apply(&[StoreOp::Delete(key(b"hunt_long", &[b'U'; 63]))]).await.expect("delete the finished job");
    // The next replay does not bring it back. (The same store replays: an
    // SQLite file reopened at once can race its flock with a child that
    // another test is forking.)
    assert_same_jobs(store.load().await.expect("replay after completion"), want[1..].to_vec());
    assert_eq!(stored_hex(), vec![hex_upper(b"s1")]);
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[tokio::test]
async fn sqlite_replays_and_deletes_gearmands_cut_unique() {
    let Some(s) = Scratch::new(Backend::Sqlite, "cut") else { return };
    let args = vec![
        "-q".into(),
        "libsqlite3".into(),
        format!("--libsqlite3-db={}", s.sqlite_path().display()),
        format!("--libsqlite3-table={}", s.name),
    ];
    let stored_hex = || -> Vec<String> {
        let conn = rusqlite::Connection::open(s.sqlite_path()).expect("open the queue file");
        let mut st = conn
            .prepare(&format!("SELECT hex(unique_key) FROM \"{}\" ORDER BY 1", s.name))
            .expect("select stored keys");
        let rows = st.query_map([], |r| r.get::<_, String>(0)).expect("stored keys");
        rows.map(|r| r.expect("stored key")).collect()
    };
    replays_gearmands_cut_unique(&s, &args, &stored_hex).await;
}

#[tokio::test]
async fn mysql_replays_and_deletes_gearmands_cut_unique() {
    let Some(s) = Scratch::new(Backend::Mysql, "cut") else { return };
    let args = gearmand_mysql_args(&s.name);
    let stored_hex = || -> Vec<String> {
        let out = mysql(&format!("SELECT HEX(unique_key) FROM `{}` ORDER BY 1", s.name))
            .unwrap_or_else(|e| panic!("select stored keys: {e}"));
        out.lines().map(str::to_string).collect()
    };
    replays_gearmands_cut_unique(&s, &args, &stored_hex).await;
}
