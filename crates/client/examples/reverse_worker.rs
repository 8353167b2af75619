//! Seed 004's `worker.php` in Rust: a `reverse` worker that reports its
//! progress ten times, then returns the reversed workload.
//!
//! ```text
//! cargo run -p sprocket-client --example reverse_worker -- 127.0.0.1:4730
//! gearman -f reverse Rasmus        # 10% Complete … 100% Complete, sumsaR
//! ```

use std::time::Duration;

use sprocket_client::{Job, JobError, Worker};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:4730".into());
    // SPROCKET_STEP_MS shortens the one-second steps (tests use 0).
    let step = std::env::var("SPROCKET_STEP_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let worker = Worker::new(server.as_str())?.register("reverse", move |job: Job| async move {
        let workload = String::from_utf8_lossy(job.payload()).into_owned();
        println!("Received job: {}", String::from_utf8_lossy(job.handle()));
        println!("Workload: {workload}");
        let result: String = workload.chars().rev().collect();
        for i in 1..=10 {
            job.status(i, 10)?;
            tokio::time::sleep(Duration::from_millis(step)).await;
        }
        println!("Result: {result}");
        Ok::<_, JobError>(result)
    });
    println!("Waiting for job...");
    // Ctrl-C stops after the current job.
    worker
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
