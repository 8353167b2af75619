//! `sprocket work`: a worker that runs a command per job.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use sprocket_client::{Job, JobError, ServerAddr, Worker, WorkerOptions};

use super::ServerOpt;
use crate::command::{JobCommand, OutputMode};
use crate::process::PidFile;

/// `sprocket work`.
#[derive(Debug, Args)]
pub struct WorkArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// Function to serve (repeat for several).
    #[arg(short = 'f', long = "function", required = true)]
    pub functions: Vec<String>,
    /// Jobs run at once.
    #[arg(short = 'c', long, default_value_t = 1)]
    pub concurrency: usize,
    /// Exit after this many jobs.
    #[arg(long)]
    pub count: Option<u64>,
    /// Send each output line as WORK_DATA as it appears (newline kept).
    #[arg(short = 'n', long)]
    pub lines: bool,
    /// Let the server take a job back after this many seconds (CAN_DO_TIMEOUT).
    #[arg(long, value_name = "SECONDS")]
    pub job_timeout: Option<u64>,
    /// Id shown by `sprocket admin workers`.
    #[arg(long)]
    pub id: Option<String>,
    /// Write the process id here (removed on exit).
    #[arg(short = 'i', long)]
    pub pidfile: Option<PathBuf>,
    /// Detach from the terminal.
    #[arg(short = 'd', long)]
    pub daemon: bool,
    /// The command to run per job: the workload on stdin, stdout is the
    /// result. Without one, the workload is printed and sent back.
    #[arg(last = true)]
    pub command: Vec<String>,
}

impl WorkArgs {
    /// Checks the command, forks into the background when asked, and
    /// writes the pid file; runs before the async runtime exists.
    pub fn prepare_process(&self) -> anyhow::Result<Option<PidFile>> {
        if let Some(c) = JobCommand::new(&self.command) {
            c.check()?;
        }
        if let Some(f) = self.functions.iter().find(|f| f.is_empty()) {
            anyhow::bail!("invalid function name {f:?}: a function name cannot be empty");
        }
        // Refuse to start when no server answers at all (before detaching,
        // so the error is seen): a worker that only retried in silence
        // looked like one waiting for jobs. Later outages are retried.
        let servers = ServerAddr::parse_list(&self.server.servers).context("bad server list")?;
        let tls = self.server.tls()?;
        crate::gearman::worker::any_server_answers(&servers, tls.as_ref())
            .map_err(|e| anyhow::anyhow!("no job server answers: {e}"))?;
        if self.daemon {
            crate::process::daemonize()?;
        }
        self.pidfile.as_deref().map(PidFile::create).transpose()
    }
}

/// Runs the worker until a stop signal (finishing the running jobs) or `--count`.
pub async fn run(a: WorkArgs) -> anyhow::Result<i32> {
    let command = JobCommand::new(&a.command);
    let mode = if a.lines { OutputMode::Lines { strip: false } } else { OutputMode::Whole };
    let options = WorkerOptions {
        concurrency: a.concurrency.max(1),
        max_jobs: a.count,
        client_id: a.id.clone(),
        tls: a.server.tls()?,
        ..WorkerOptions::default()
    };
    let mut worker = Worker::with_options(a.server.servers.as_str(), options).context("bad server list")?;
    for f in &a.functions {
        let command = command.clone();
        let handler = move |job: Job| {
            let command = command.clone();
            async move { handle(job, command, mode).await }
        };
        worker = match a.job_timeout {
            Some(s) => worker.register_with_timeout(f.clone(), Duration::from_secs(s), handler),
            None => worker.register(f.clone(), handler),
        };
    }
    let stats = worker.run_until(crate::process::stop_signal()).await?;
    tracing::info!(jobs = stats.jobs_done, "worker stopped");
    Ok(0)
}

async fn handle(job: Job, command: Option<JobCommand>, mode: OutputMode) -> Result<Bytes, JobError> {
    let Some(command) = command else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(job.payload());
        let _ = out.flush();
        return Ok(job.payload().clone());
    };
    let outcome = command
        .run(job.payload().clone(), mode, |line| {
            let _ = job.data(line);
        })
        .await
        .map_err(|e| JobError::exception(format!("{e:#}")))?;
    if outcome.success {
        return Ok(Bytes::from(outcome.output));
    }
    Err(JobError::Exception(Bytes::from(outcome.output)))
}
