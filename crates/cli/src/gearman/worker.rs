//! `gearman -w [options] [<command> [<args> …]]`: worker mode.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sprocket_client::{Job, JobError, ServerAddr, TlsConfig, Worker, WorkerOptions};

use super::args::GearmanArgs;
use crate::command::{JobCommand, OutputMode};
use crate::output::err_raw;

/// Runs worker mode until `-c` jobs are done or a stop signal arrives.
pub async fn run(a: &GearmanArgs, command: Option<JobCommand>, tls: Option<TlsConfig>) -> i32 {
    let servers = match ServerAddr::parse_list(&a.servers()) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => {
            err_raw(b"gearman: no job server given\n");
            return 1;
        }
        Err(e) => {
            err_raw(format!("gearman: {e}\n").as_bytes());
            return 1;
        }
    };
    // Refuse to start when no server answers at all: a clear error beats
    // gearman's endless retry loop. Later outages are retried with backoff.
    if let Err(msg) = any_reachable(&servers, tls.as_ref()).await {
        err_raw(format!("gearman: gearman_worker_work : {msg}\n").as_bytes());
        return 1;
    }
    let mode = if a.per_line { OutputMode::Lines { strip: a.strip_newline } } else { OutputMode::Whole };
    let options = WorkerOptions {
        max_jobs: (a.count > 0).then_some(a.count),
        retry_max: Duration::from_secs(5),
        tls,
        ..WorkerOptions::default()
    };
    let mut worker = match Worker::with_options(servers, options) {
        Ok(w) => w,
        Err(e) => {
            err_raw(format!("gearman: {e}\n").as_bytes());
            return 1;
        }
    };
    let idle = Arc::new(Idle::new());
    for f in &a.functions {
        let command = command.clone();
        let idle = idle.clone();
        worker = worker.register(f.clone(), move |job: Job| {
            let command = command.clone();
            let idle = idle.clone();
            async move {
                idle.begin();
                let result = handle(job, command, mode).await;
                idle.end();
                result
            }
        });
    }
    let result = match a.timeout_ms.filter(|t| *t > 0) {
        None => worker.run_until(crate::process::stop_signal()).await,
        Some(ms) => run_with_idle_timeout(worker, &idle, Duration::from_millis(ms), a.count).await,
    };
    match result {
        Ok(_) => 0,
        Err(e) => {
            err_raw(format!("gearman: {e}\n").as_bytes());
            1
        }
    }
}

/// Whether a job is running, and since when the worker has been idle.
struct Idle {
    running: AtomicUsize,
    since: Mutex<Instant>,
}

impl Idle {
    fn new() -> Idle {
        Idle { running: AtomicUsize::new(0), since: Mutex::new(Instant::now()) }
    }

    fn begin(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
    }

    fn end(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.restart();
    }

    fn restart(&self) {
        if let Ok(mut since) = self.since.lock() {
            *since = Instant::now();
        }
    }

    /// How long until `limit` of idleness is reached (`limit` again while
    /// a job runs: only waiting for work counts).
    fn remaining(&self, limit: Duration) -> Duration {
        if self.running.load(Ordering::SeqCst) > 0 {
            return limit;
        }
        let idle_for = self.since.lock().map(|s| s.elapsed()).unwrap_or_default();
        limit.saturating_sub(idle_for)
    }
}

/// `-t` in worker mode, as gearman(1) has it: whenever no job arrives
/// within the timeout, report it on stderr; each timeout counts towards
/// `-c` like a job, so `gearman -w -c 1 -t 5000 …` does one job if there
/// is one within five seconds and exits either way.
async fn run_with_idle_timeout(
    worker: Worker,
    idle: &Idle,
    limit: Duration,
    count: u64,
) -> sprocket_client::Result<sprocket_client::WorkerStats> {
    let handle = worker.spawn()?;
    let stop = crate::process::stop_signal();
    tokio::pin!(stop);
    idle.restart();
    let mut timeouts = 0u64;
    loop {
        tokio::select! {
            _ = &mut stop => {
                handle.stop();
                break;
            }
            _ = handle.stopped() => break,
            _ = tokio::time::sleep(idle.remaining(limit)) => {
                if !idle.remaining(limit).is_zero() {
                    continue;
                }
                err_raw(
                    format!(
                        "gearman: gearman_worker_work : gearman_wait(GEARMAN_TIMEOUT) timeout reached, no job within {} ms\n",
                        limit.as_millis()
                    )
                    .as_bytes(),
                );
                idle.restart();
                timeouts += 1;
                if count > 0 && handle.jobs_done() + timeouts >= count {
                    handle.stop();
                    break;
                }
            }
        }
    }
    handle.wait().await
}

/// Whether any of the servers accepts a connection (and, with `tls`, a
/// TLS session), checked without a runtime (so it can run before `-d`
/// forks); the error names each.
pub fn check_servers(a: &GearmanArgs, tls: Option<&TlsConfig>) -> Result<(), String> {
    let servers = ServerAddr::parse_list(&a.servers()).map_err(|e| e.to_string())?;
    any_server_answers(&servers, tls)
}

/// Ok once one of `servers` accepts a TCP connection (5 s each at most)
/// and, with `tls`, completes a TLS handshake whose certificate verifies;
/// otherwise every server's error. Blocking: for use before a runtime
/// exists (and before a daemon detaches, so the error is seen).
pub fn any_server_answers(servers: &[ServerAddr], tls: Option<&TlsConfig>) -> Result<(), String> {
    let mut errors = Vec::new();
    for s in servers {
        match sprocket_client::probe_blocking(s, tls, Duration::from_secs(5)) {
            Ok(()) => return Ok(()),
            Err(e) => errors.push(describe(s, &e)),
        }
    }
    if errors.is_empty() {
        errors.push("no job server given".into());
    }
    Err(errors.join("; "))
}

async fn any_reachable(servers: &[ServerAddr], tls: Option<&TlsConfig>) -> Result<(), String> {
    let mut errors = Vec::new();
    for s in servers {
        match sprocket_client::probe(s, tls, Duration::from_secs(5)).await {
            Ok(_) => return Ok(()),
            Err(e) => errors.push(describe(s, &e)),
        }
    }
    Err(errors.join("; "))
}

/// "could not connect to S: why" as before TLS, and the TLS error's own
/// words (which name the server) for a failed handshake.
fn describe(server: &ServerAddr, e: &sprocket_client::Error) -> String {
    match e {
        sprocket_client::Error::Connect { message, .. } => format!("could not connect to {server}: {message}"),
        other => other.to_string(),
    }
}

async fn handle(job: Job, command: Option<JobCommand>, mode: OutputMode) -> Result<Bytes, JobError> {
    let Some(command) = command else {
        // No command: show the workload and answer with nothing.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(job.payload());
        let _ = out.flush();
        return Ok(Bytes::new());
    };
    let outcome = command
        .run(job.payload().clone(), mode, |line| {
            let _ = job.data(line);
        })
        .await
        .map_err(|e| {
            err_raw(format!("gearman: {e:#}\n").as_bytes());
            JobError::Fail
        })?;
    let lines = matches!(mode, OutputMode::Lines { .. });
    // As gearman(1): only a non-zero exit status fails the job; a command
    // killed by a signal has its output sent as the result.
    let success = outcome.success || outcome.killed;
    if success && !lines {
        return Ok(Bytes::from(outcome.output));
    }
    if !outcome.output.is_empty() {
        let _ = job.data(outcome.output);
    }
    if success {
        Ok(Bytes::new())
    } else {
        // gearman(1) reports a failed job on its stderr too, so the
        // worker's own log shows it.
        err_raw(b"gearman: gearman_worker_work : the command failed; the job was reported failed\n");
        Err(JobError::Fail)
    }
}
