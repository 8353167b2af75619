//! A quick (not rigorous) measurement of insert throughput per backend and
//! batch size. Ignored by default; run with
//! `cargo test -p sprocket-store --release --test throughput -- --ignored --nocapture`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sprocket_proto::Priority;
use sprocket_store::writer::{self, WriterConfig};
use sprocket_store::{StoreConfig, StoreOp, SyncMode};

const BUDGET: Duration = Duration::from_millis(1500);

async fn measure(label: &str, config: &StoreConfig) {
    let mut store = match sprocket_store::open(config).await {
        Ok(s) => s,
        Err(e) => {
            println!("{label:<16} unavailable: {e}");
            return;
        }
    };
    let mut line = format!("{label:<16}");
    let mut n: u64 = 0;
    for batch in [1usize, 100, 1000] {
        let start = Instant::now();
        let mut done = 0usize;
        while start.elapsed() < BUDGET {
            let ops: Vec<StoreOp> = (0..batch)
                .map(|_| {
                    n += 1;
                    StoreOp::Insert(job(b"bench", format!("u{n}").as_bytes(), Priority::Normal, &[b'x'; 100], 0))
                })
                .collect();
            store.apply(&ops).await.expect("insert batch");
            done += batch;
        }
        let rate = done as f64 / start.elapsed().as_secs_f64();
        line.push_str(&format!("  batch {batch:>4}: {rate:>9.0}/s"));
    }
    println!("{line}");
    drop(store);
    // The same through the writer task: everything submitted at once, the
    // writer cutting commits of at most `batch`.
    let mut line = format!("{:<16}", format!("{label} (writer)"));
    for batch in [1usize, 100, 1000] {
        let store = sprocket_store::open(config).await.expect("reopen");
        let (w, mut rx) = writer::spawn(store, WriterConfig { max_batch: batch, ..Default::default() });
        let count = (batch as u64 * 20).clamp(200, 20_000);
        let start = Instant::now();
        for seq in 1..=count {
            n += 1;
            w.submit(
                seq,
                StoreOp::Insert(job(b"bench", format!("w{n}").as_bytes(), Priority::Normal, &[b'x'; 100], 0)),
            );
        }
        loop {
            let c = rx.recv().await.expect("completion");
            assert!(c.failed.is_empty());
            if c.through == count {
                break;
            }
        }
        let rate = count as f64 / start.elapsed().as_secs_f64();
        line.push_str(&format!("  batch {batch:>4}: {rate:>9.0}/s"));
        w.close().await;
    }
    println!("{line}");
}

#[tokio::test]
#[ignore]
async fn insert_throughput() {
    let dir = sprocket_testkit::databases::TempDir::new("tp");
    for (label, sync) in [("sqlite full", SyncMode::Full), ("sqlite normal", SyncMode::Normal)] {
        let cfg = StoreConfig::Sqlite { path: dir.path().join(format!("{sync:?}.db")), table: "q".into(), sync };
        measure(label, &cfg).await;
    }
    if let Some(s) = Scratch::new(Backend::Postgres, "tp") {
        measure("postgres", &s.config()).await;
    }
    if let Some(s) = Scratch::new(Backend::Mysql, "tp") {
        measure("mariadb", &s.config()).await;
    }
    if let Some(s) = Scratch::new(Backend::Redis, "tp") {
        measure("redis", &s.config()).await;
    }
    measure("memory", &StoreConfig::Memory).await;
}
