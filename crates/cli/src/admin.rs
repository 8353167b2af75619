//! A client for the admin text protocol (`status`, `workers`, …) shared by
//! `gearadmin` mode and `sprocket admin`.

use anyhow::Context;
use sprocket_client::{Admin, ServerAddr, TlsConfig};

pub use sprocket_client::admin::{is_listing, ADMIN_TIMEOUT};

/// One admin connection: the client library's [`Admin`], with errors for
/// the command line.
pub struct AdminConn(Admin);

impl AdminConn {
    /// Connects to `server`, over TLS when `tls` is given.
    pub async fn connect(server: &ServerAddr, tls: Option<&TlsConfig>) -> anyhow::Result<AdminConn> {
        Ok(AdminConn(Admin::connect(server, tls).await?))
    }

    /// Sends one command line and returns the reply as text.
    pub async fn command(&mut self, command: &str) -> anyhow::Result<String> {
        self.0.command(command).await.with_context(|| format!("admin command `{command}`"))
    }

    /// Sends one command line and returns the raw reply: everything up to
    /// and including the `.` line for listings, else the first line.
    pub async fn command_bytes(&mut self, command: &[u8]) -> anyhow::Result<Vec<u8>> {
        let shown = String::from_utf8_lossy(command).into_owned();
        self.0.command_bytes(command).await.with_context(|| format!("admin command `{shown}`"))
    }
}

/// Parsed `status` line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FunctionStatus {
    pub function: String,
    pub total: u64,
    pub running: u64,
    pub workers: u64,
}

/// Parsed `workers` line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerLine {
    pub fd: String,
    pub ip: String,
    pub client_id: String,
    pub functions: Vec<String>,
}

/// Parsed `show jobs` line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobLine {
    pub handle: String,
    pub retries: u64,
    pub ignore: bool,
    pub persisted: bool,
}

/// The lines of a listing without the final `.`.
pub fn listing_lines(reply: &str) -> Vec<&str> {
    reply.lines().map(|l| l.trim_end_matches('\r')).take_while(|l| *l != ".").collect()
}

/// The tab-separated rows of a listing that have at least `fields` fields.
fn tab_rows(reply: &str, fields: usize) -> impl Iterator<Item = Vec<&str>> {
    listing_lines(reply).into_iter().map(|l| l.split('\t').collect::<Vec<_>>()).filter(move |f| f.len() >= fields)
}

/// One line of sprocketd's `history` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLine {
    /// The function name, escaped as the server sends it (`\\`, `\t`,
    /// `\n`, `\r`, `\0`, `\xNN`).
    pub function: String,
    /// `minute`, `hour` or `day`.
    pub window: String,
    /// Completed, failed, exceptions, timeouts, cancelled, dropped, dead.
    pub counts: [u64; 7],
    /// Queue wait p50, p90, p99 in milliseconds; `None` without samples.
    pub wait_ms: [Option<u64>; 3],
    /// Run time p50, p90, p99 in milliseconds; `None` without samples.
    pub run_ms: [Option<u64>; 3],
}

/// Parses a `history` reply; lines without the 15 fields are skipped.
pub fn parse_history(reply: &str) -> Vec<HistoryLine> {
    let count = |s: &str| s.trim().parse().unwrap_or(0);
    let millis = |s: &str| s.trim().parse().ok();
    tab_rows(reply, 15)
        .map(|f| HistoryLine {
            function: f[0].to_string(),
            window: f[1].to_string(),
            counts: [count(f[2]), count(f[3]), count(f[4]), count(f[5]), count(f[6]), count(f[7]), count(f[8])],
            wait_ms: [millis(f[9]), millis(f[10]), millis(f[11])],
            run_ms: [millis(f[12]), millis(f[13]), millis(f[14])],
        })
        .collect()
}

pub fn parse_status(reply: &str) -> Vec<FunctionStatus> {
    tab_rows(reply, 4)
        .map(|f| FunctionStatus {
            function: f[0].to_string(),
            total: f[1].parse().unwrap_or(0),
            running: f[2].parse().unwrap_or(0),
            workers: f[3].parse().unwrap_or(0),
        })
        .collect()
}

pub fn parse_workers(reply: &str) -> Vec<WorkerLine> {
    listing_lines(reply)
        .into_iter()
        .filter_map(|l| {
            let (head, funcs) = l.split_once(" :").unwrap_or((l, ""));
            let mut h = head.splitn(3, ' ');
            Some(WorkerLine {
                fd: h.next()?.to_string(),
                ip: h.next().unwrap_or("").to_string(),
                client_id: h.next().unwrap_or("").to_string(),
                functions: funcs.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect(),
            })
        })
        .collect()
}

pub fn parse_jobs(reply: &str) -> Vec<JobLine> {
    tab_rows(reply, 4)
        .map(|f| JobLine {
            handle: f[0].to_string(),
            retries: f[1].parse().unwrap_or(0),
            ignore: f[2] == "1",
            persisted: f[3] == "1",
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_history_lines() {
        let reply = "resize\tminute\t3\t1\t0\t0\t0\t0\t0\t12\t40\t40\t-\t-\t-\nshort\tline\n.\n";
        let lines = parse_history(reply);
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].function.as_str(), lines[0].window.as_str()), ("resize", "minute"));
        assert_eq!(lines[0].counts, [3, 1, 0, 0, 0, 0, 0]);
        assert_eq!((lines[0].wait_ms, lines[0].run_ms), ([Some(12), Some(40), Some(40)], [None, None, None]));
    }

    #[test]
    fn parses_listings() {
        let s = parse_status("wc\t2\t1\t3\n.\n");
        assert_eq!((s[0].total, s[0].running, s[0].workers), (2, 1, 3));
        let w = parse_workers("37 127.0.0.1 - : wc rev\n38 127.0.0.1 - :\n.\n");
        assert_eq!(w[0].functions, vec!["wc", "rev"]);
        assert!(w[1].functions.is_empty());
        let j = parse_jobs("H:x:1\t0\t0\t1\n.\n");
        assert!(j[0].persisted && !j[0].ignore);
    }
}
