//! Command-line arguments of `sprocket bench` / `sprocket-bench`.

use std::time::Duration;

use clap::{Args, ValueEnum};
use sprocket_proto::Priority;

/// Which load to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// C connections submit N background jobs of S bytes; no worker runs.
    SubmitBg,
    /// N background jobs are queued first (untimed), then W workers drain them.
    Drain,
    /// C clients loop submit-and-wait on foreground jobs that W workers echo back.
    Roundtrip,
    /// Background submits (with GET_STATUS on their handles) and foreground
    /// round trips at the same time, W workers serving both.
    Mixed,
    /// Opens C connections, checks each with ECHO, holds them idle for
    /// --duration (for measuring a server's memory per connection).
    Idle,
    /// --prefill background jobs are completed first (untimed), then C
    /// clients read their results through `sprocket.result` (Sprocket only).
    ResultRead,
}

impl Mode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::SubmitBg => "submit-bg",
            Mode::Drain => "drain",
            Mode::Roundtrip => "roundtrip",
            Mode::Mixed => "mixed",
            Mode::Idle => "idle",
            Mode::ResultRead => "result-read",
        }
    }
}

/// Job priority as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PriorityArg {
    High,
    #[default]
    Normal,
    Low,
}

impl PriorityArg {
    /// The protocol priority.
    pub fn priority(self) -> Priority {
        match self {
            PriorityArg::High => Priority::High,
            PriorityArg::Normal => Priority::Normal,
            PriorityArg::Low => Priority::Low,
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            PriorityArg::High => "high",
            PriorityArg::Normal => "normal",
            PriorityArg::Low => "low",
        }
    }
}

/// Options of the load generator. Stable interface: the `sprocket` CLI
/// flattens this into its `bench` subcommand.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Load to generate.
    #[arg(value_enum)]
    pub mode: Mode,

    /// Server to load, host:port. Any Gearman server works.
    #[arg(long, default_value = "127.0.0.1:4730", env = "SPROCKET_BENCH_SERVER")]
    pub server: String,

    /// Client connections (submitters; in `idle`, connections to hold open).
    #[arg(short = 'c', long = "connections", default_value_t = 4)]
    pub connections: usize,

    /// Worker connections (drain, roundtrip, mixed).
    #[arg(short = 'w', long = "workers", default_value_t = 4)]
    pub workers: usize,

    /// Jobs in total, across all connections. With --duration, the run
    /// stops at whichever limit comes first.
    #[arg(short = 'n', long = "jobs", default_value_t = 100_000)]
    pub jobs: u64,

    /// Payload size of each job in bytes.
    #[arg(short = 's', long = "size", default_value_t = 100)]
    pub size: usize,

    /// Stop after this many seconds (decimals allowed), even if fewer than
    /// N jobs were done. In `idle`, how long to hold the connections.
    #[arg(short = 'd', long = "duration", value_parser = parse_seconds)]
    pub duration: Option<Duration>,

    /// drain only: stop pre-filling after this many seconds and drain what
    /// was queued by then (for slow durable queues).
    #[arg(long = "prefill-duration", value_parser = parse_seconds)]
    pub prefill_duration: Option<Duration>,

    /// result-read only: how many ended jobs the readers read, round robin.
    #[arg(long = "prefill", default_value_t = 1000)]
    pub prefill: u64,

    /// Priority of submitted jobs.
    #[arg(long, value_enum, default_value_t = PriorityArg::Normal)]
    pub priority: PriorityArg,

    /// Give every job its own unique id (default: empty unique, so nothing
    /// coalesces either way). Needed against SQL-backed gearmand queues,
    /// which key rows on (unique, function).
    #[arg(short = 'u', long)]
    pub unique: bool,

    /// Requests kept in flight per submitting connection (submit-bg, the
    /// pre-fill of drain, background submitters of mixed).
    #[arg(long, default_value_t = 16)]
    pub window: usize,

    /// Function name prefix; a per-run suffix is added so that runs never
    /// share a queue.
    #[arg(long, default_value = "bench")]
    pub function: String,

    /// Threads of the load generator itself. 1 (the default, like
    /// redis-benchmark) runs every connection on one event loop: no
    /// cross-thread wake-ups, so the generator costs least per job and
    /// leaves the most CPU to the server under test. More threads help
    /// only when one is saturated and there are cores to spare.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Speak TLS to the server, verifying its certificate (against the
    /// system's CAs unless --ssl-ca is given). Implied by --ssl-ca and
    /// --ssl-cert.
    #[arg(long)]
    pub ssl: bool,

    /// CA certificate file (PEM) to verify the server's certificate with.
    #[arg(long, value_name = "FILE")]
    pub ssl_ca: Option<std::path::PathBuf>,

    /// Client certificate (PEM) to present, with --ssl-key.
    #[arg(long, value_name = "FILE")]
    pub ssl_cert: Option<std::path::PathBuf>,

    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub ssl_key: Option<std::path::PathBuf>,

    /// Print the result as one line of JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// No progress bar even on a terminal.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Parses seconds with an optional fraction ("2", "0.5", "1.5s").
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let t = s.trim().trim_end_matches('s');
    let secs: f64 = t.parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!("duration `{s}` must be between 0 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl BenchArgs {
    /// Rejects combinations that cannot run, with a message that says why.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.connections > 0, "-c/--connections must be at least 1");
        anyhow::ensure!(self.window > 0, "--window must be at least 1");
        anyhow::ensure!(self.jobs > 0, "-n/--jobs must be at least 1");
        anyhow::ensure!((1..=256).contains(&self.threads), "--threads must be between 1 and 256");
        anyhow::ensure!(self.size <= 64 * 1024 * 1024, "-s/--size is limited to 64 MiB");
        if matches!(self.mode, Mode::Drain | Mode::Roundtrip | Mode::Mixed) {
            anyhow::ensure!(self.workers > 0, "-w/--workers must be at least 1 for {}", self.mode.name());
        }
        anyhow::ensure!(
            !self.function.is_empty() && !self.function.bytes().any(|b| b == 0),
            "--function must be non-empty and contain no NUL byte"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse() {
        assert_eq!(parse_seconds("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_seconds("0.5s").unwrap(), Duration::from_millis(500));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("abc").is_err());
        assert!(parse_seconds("NaN").is_err());
    }
}
