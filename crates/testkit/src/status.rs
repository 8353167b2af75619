//! Polling the admin `status` listing, so tests wait for workers to register
//! or queues to drain instead of sleeping for a guessed time.

use std::time::{Duration, Instant};

/// One line of the admin `status` listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionStatus {
    pub name: String,
    pub total: u64,
    pub running: u64,
    pub workers: u64,
}

/// Parses a `status` reply (`name\ttotal\trunning\tworkers` lines, then `.`).
pub fn parse_status(reply: &str) -> Vec<FunctionStatus> {
    reply
        .lines()
        .take_while(|l| *l != ".")
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() != 4 {
                return None;
            }
            Some(FunctionStatus {
                name: f[0].to_string(),
                total: f[1].parse().ok()?,
                running: f[2].parse().ok()?,
                workers: f[3].parse().ok()?,
            })
        })
        .collect()
}

/// The status of `function` on the server at `port`, if listed.
pub fn function_status(port: u16, function: &str) -> Option<FunctionStatus> {
    parse_status(&crate::admin(port, "status")).into_iter().find(|s| s.name == function)
}

/// Waits until `pred` holds for `function`'s status line; panics with the
/// last listing after `limit`.
pub fn wait_for_status(port: u16, function: &str, limit: Duration, what: &str, pred: impl Fn(&FunctionStatus) -> bool) {
    let start = Instant::now();
    loop {
        let listing = crate::admin(port, "status");
        if parse_status(&listing).iter().any(|s| s.name == function && pred(s)) {
            return;
        }
        assert!(start.elapsed() < limit, "{what}: not reached within {limit:?}; last `status`:\n{listing}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until at least `n` workers have registered `function`.
pub fn wait_for_workers(port: u16, function: &str, n: u64) {
    wait_for_status(port, function, Duration::from_secs(15), &format!("{n} worker(s) for {function}"), |s| {
        s.workers >= n
    })
}

/// Waits until `function` has no queued or running job.
pub fn wait_until_drained(port: u16, function: &str) {
    wait_for_status(port, function, Duration::from_secs(15), &format!("{function} drained"), |s| s.total == 0)
}
