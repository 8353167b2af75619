//! The `sprocket` command's own interface (clap): submit, status, work,
//! admin, pause, resume, purge, cron, bench, and the job records: record,
//! records, wait.

mod admin;
mod cron;
mod duration;
mod ops;
mod policy;
mod record_view;
mod records;
mod submit;
mod table;
mod wait;
mod work;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sprocket_client::TlsConfig;

use crate::tls::TlsFiles;

/// Sprocket: a Gearman job server toolkit. Invoked as `gearman` or
/// `gearadmin` (a symlink) it behaves like those tools instead.
#[derive(Debug, Parser)]
#[command(name = "sprocket", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit jobs (foreground by default: wait and print the result).
    Submit(submit::SubmitArgs),
    /// Show the status of jobs by handle or unique id.
    Status(submit::StatusArgs),
    /// Run a worker: a command per job, or echo the workload.
    Work(work::WorkArgs),
    /// Administer a job server (status, workers, jobs, cancel, …).
    Admin(admin::AdminArgs),
    /// Stop handing out a function's jobs (they keep queueing); sprocketd
    /// keeps the pause across restarts.
    Pause(ops::FunctionArgs),
    /// Hand out a paused function's jobs again.
    Resume(ops::FunctionArgs),
    /// Remove a function's queued jobs (`--queued --function F`; their
    /// waiting clients get WORK_FAIL) or dead jobs' records (`--dead
    /// [--function F]`), and print how many.
    Purge(ops::PurgeArgs),
    /// List the per-function retry and dead-letter policies, or set or
    /// clear one at run time.
    Policy(policy::PolicyArgs),
    /// Make a dead job (or every dead job of a function) run again, a fresh
    /// series of attempts; prints how many were requeued.
    Requeue(policy::RequeueArgs),
    /// Recurring jobs on sprocketd: list, add, remove, run now.
    #[command(subcommand)]
    Cron(cron::CronCommand),
    /// Show one job's record by handle: state, result, data, warnings, status.
    ///
    /// sprocketd keeps a job's record while it is queued or running and for
    /// --record-retention after it ended. Text escapes bytes that are not
    /// printable (`\xNN`); --json prints the record's JSON form. Exits 1
    /// when no server has a record of the job.
    Record(records::RecordArgs),
    /// List the records of ended jobs, newest end first.
    ///
    /// By function, final state and age; a table of handle, function, state,
    /// attempts, end time and unique id, or a JSON array with --json.
    Records(records::RecordsArgs),
    /// List dead jobs (dead letters: out of attempts under a retry
    /// policy), newest first.
    ///
    /// `sprocket records --state dead`: by function, error text and age; a
    /// table, or a JSON array with --json. Remove them with `sprocket purge
    /// --dead`.
    Dead(records::DeadArgs),
    /// Wait for a job by handle and print its result; exit status by outcome.
    ///
    /// The job may be queued, running or already ended (sprocketd then
    /// replays what its record kept). WORK_DATA goes to stdout as it
    /// arrives, before the result; warnings and progress go to stderr.
    #[command(after_help = wait::EXIT_HELP)]
    Wait(wait::WaitArgs),
    /// Load-test a job server.
    Bench(sprocket_bench::BenchArgs),
}

/// Where the job servers are.
#[derive(Debug, Clone, Args)]
pub struct ServerOpt {
    /// Job servers, comma-separated `host[:port]` (default port 4730).
    #[arg(short = 's', long = "servers", env = "GEARMAN_SERVER", default_value = "localhost:4730")]
    pub servers: String,
    /// Speak TLS to the servers, verifying their certificates (against the
    /// system's CAs unless a CA file is given). Implied by the other --ssl-* flags.
    #[arg(long)]
    pub ssl: bool,
    /// CA certificates (PEM) that sign the servers' certificates
    /// [default with TLS on: $GEARMAND_CA_CERTIFICATE, else the system's CAs].
    #[arg(long, value_name = "FILE")]
    pub ssl_ca: Option<PathBuf>,
    /// Client certificate (PEM) to present [default with TLS on: $GEARMAN_CLIENT_PEM].
    #[arg(long, value_name = "FILE")]
    pub ssl_cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate [default with TLS on: $GEARMAN_CLIENT_KEY].
    #[arg(long, value_name = "FILE")]
    pub ssl_key: Option<PathBuf>,
}

impl ServerOpt {
    /// The TLS settings, or `None` for plain TCP: TLS is on with `--ssl` or
    /// any `--ssl-*` file; files not given as flags come from libgearman's
    /// variables.
    pub fn tls(&self) -> anyhow::Result<Option<TlsConfig>> {
        let flags = TlsFiles { ca: self.ssl_ca.clone(), certificate: self.ssl_cert.clone(), key: self.ssl_key.clone() };
        if !self.ssl && flags == TlsFiles::default() {
            return Ok(None);
        }
        let config = flags.or(TlsFiles::from_environment()).load().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Some(config))
    }
}

/// Runs the sprocket interface with the full argv; returns the exit status.
pub fn main(argv: &[String]) -> i32 {
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    init_logging();
    // The load generator picks its own runtime (--threads).
    let cli = match cli.command {
        Command::Bench(a) => {
            return match sprocket_bench::run_blocking(a) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("sprocket: {e:#}");
                    1
                }
            }
        }
        command => Cli { command },
    };
    // Daemon mode has to fork before any thread exists.
    let daemon_result = match &cli.command {
        Command::Work(w) => w.prepare_process(),
        _ => Ok(None),
    };
    let pidfile = match daemon_result {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sprocket: {e:#}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sprocket: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Submit(a) => submit::run(a).await,
            Command::Status(a) => submit::status(a).await,
            Command::Work(a) => work::run(a).await,
            Command::Admin(a) => admin::run(a).await,
            Command::Pause(a) => ops::pause(a, true).await,
            Command::Resume(a) => ops::pause(a, false).await,
            Command::Purge(a) => ops::purge(a).await,
            Command::Policy(a) => policy::policy(a).await,
            Command::Requeue(a) => policy::requeue(a).await,
            Command::Cron(c) => cron::run(c).await,
            Command::Record(a) => records::record(a).await,
            Command::Records(a) => records::records(a).await,
            Command::Dead(a) => records::records(a.into()).await,
            Command::Wait(a) => wait::run(a).await,
            Command::Bench(_) => Ok(0), // handled above, before the runtime
        }
    });
    drop(pidfile);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sprocket: {e:#}");
            1
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPROCKET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
