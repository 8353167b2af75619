//! Seed 004's background tasks in Rust: submit two background jobs, keep
//! their handles, and poll their status (known, running, numerator /
//! denominator) until both are finished.
//!
//! ```text
//! cargo run -p sprocket-client --example background_status -- 127.0.0.1:4730
//! ```

use std::time::Duration;

use sprocket_client::{Client, JobHandle};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:4730".into());
    let client = Client::new(server.as_str())?;
    let job1: JobHandle = client.submit_background("reverse", "ABC123").await?;
    let job2: JobHandle = client.submit_background("reverse", "DEF456").await?;
    println!("created {job1} and {job2}");
    loop {
        let mut pending = 0;
        for h in [&job1, &job2] {
            let st = client.status(h).await?;
            println!("{h}: known={} running={} {}/{}", st.known, st.running, st.numerator, st.denominator);
            if st.known {
                pending += 1;
            }
        }
        if pending == 0 {
            println!("both jobs finished");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
