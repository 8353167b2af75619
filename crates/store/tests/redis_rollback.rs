//! Going back from sprocketd to gearmand 1.1.20 with a Redis queue: the
//! job hashes hold only gearmand's two fields (gearmand refuses to start
//! on any other), and what they cannot say (a function name with `-`, an
//! epoch) is kept in side hashes that gearmand never reads but our replay
//! does.

mod common;

use common::*;
use sprocket_proto::Priority;
use sprocket_testkit::databases::redis_cli_at;
use sprocket_testkit::{require_tool, ServerProcess};

const REDIS: u16 = 6379;

/// Payloads over 64 bytes make Redis keep a hash in its `hashtable`
/// encoding, where the field order is arbitrary: gearmand then met our
/// extra fields first and stopped with "failed to reload queue".
fn big(n: u8) -> Vec<u8> {
    vec![b'a' + n; 100]
}

#[tokio::test]
async fn gearmand_replays_redis_keys_we_wrote() {
    let Some(s) = Scratch::new(Backend::Redis, "back") else { return };
    if !require_tool("gearadmin") {
        return;
    }
    let jobs = vec![
        job(b"back", b"a", Priority::Normal, &big(0), 0),
        job(b"back", b"b", Priority::Low, &big(1), 0),
        job(b"back", b"", Priority::High, &big(2), 0),
        job(b"back-two", b"c", Priority::High, &big(3), 0),
        job(b"back", b"later", Priority::Normal, &big(4), 4_000_000_000),
    ];
    {
        let mut store = s.open().await;
        store.apply(&inserts(&jobs)).await.expect("write");
        // Our own replay gets every field back, epoch and `-` included.
        assert_same_jobs(store.load().await.expect("replay"), jobs.clone());
    }
    let plain = format!("{}-back-a", s.name);
    let fields = redis_cli_at(REDIS, &["HKEYS", &plain]);
    let mut names: Vec<&str> = fields.lines().collect();
    names.sort();
    assert_eq!(names, ["data", "priority"], "a job's hash holds gearmand's fields only");
    assert_eq!(redis_cli_at(REDIS, &["EXISTS", &format!("sprocket-side:{plain}")]).trim(), "0", "no side hash needed");

    let args = [
        "-q".to_string(),
        "redis".into(),
        "--redis-server=127.0.0.1".into(),
        format!("--redis-port={REDIS}"),
        format!("--redis-prefix={}", s.name),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(server) = ServerProcess::gearmand(&args) else { return };
    let status = server.admin("status");
    // gearmand splits keys at the first `-` (its own bug): `back-two` comes
    // back as function `back`. What matters is that it starts and runs them.
    let total: usize = status
        .lines()
        .filter(|l| l.starts_with("back\t"))
        .filter_map(|l| l.split('\t').nth(1)?.parse::<usize>().ok())
        .sum();
    assert!(total >= 3, "gearmand replayed too little of our queue:\n{status}");
}

/// Jobs written by an earlier sprocketd, with `function`, `unique` and
/// `when` in the job's own hash, still replay.
#[tokio::test]
async fn hashes_with_our_former_fields_still_replay() {
    let Some(s) = Scratch::new(Backend::Redis, "former") else { return };
    let key = format!("{}-my-func-u-1", s.name);
    redis_cli_at(
        REDIS,
        &["HSET", &key, "data", "d", "priority", "2", "function", "my-func", "unique", "u-1", "when", "4000000000"],
    );
    let mut store = s.open().await;
    assert_same_jobs(
        store.load().await.expect("replay"),
        vec![job(b"my-func", b"u-1", Priority::Low, b"d", 4_000_000_000)],
    );
    // Rewriting and deleting it leave nothing behind.
    let j = job(b"my-func", b"u-1", Priority::Low, b"d", 4_000_000_000);
    store.apply(&inserts(std::slice::from_ref(&j))).await.expect("rewrite");
    assert_same_jobs(store.load().await.expect("replay"), vec![j.clone()]);
    store.apply(&[sprocket_store::StoreOp::Delete(j.key())]).await.expect("delete");
    assert!(store.load().await.expect("replay").is_empty());
    let left = redis_cli_at(REDIS, &["--scan", "--pattern", &format!("*{}*", s.name)]);
    assert!(left.trim().is_empty(), "keys left behind: {left}");
}
