//! Seed 004's web-application client in Rust: two foreground tasks run
//! concurrently, with progress and data callbacks, then the results.
//!
//! ```text
//! cargo run -p sprocket-client --example reverse_client -- 127.0.0.1:4730
//! ```

use sprocket_client::{Client, JobEvent, JobRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:4730".into());
    let client = Client::new(server.as_str())?;
    // addTask + addTask + runTasks: both jobs are in flight at once.
    let task = |payload: &'static str| {
        let client = client.clone();
        async move {
            client
                .submit_with(JobRequest::new("reverse", payload), |ev| match ev {
                    JobEvent::Status { .. } => {
                        println!("{payload}: {}% Complete", ev.percent().unwrap_or(0))
                    }
                    JobEvent::Data(d) => println!("{payload}: data() called: {}", String::from_utf8_lossy(d)),
                    _ => {}
                })
                .await
        }
    };
    let (a, b) = tokio::join!(task("ABC123"), task("DEF456"));
    println!("done: {}", String::from_utf8_lossy(&a?));
    println!("done: {}", String::from_utf8_lossy(&b?));
    Ok(())
}
