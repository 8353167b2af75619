//! `gearman -w [options] [<command> [<args> …]]`: worker mode.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use sprocket_client::{Job, JobError, ServerAddr, Worker, WorkerOptions};

use super::args::GearmanArgs;
use crate::command::{JobCommand, OutputMode};
use crate::output::err_raw;

/// Runs worker mode until `-c` jobs are done or a stop signal arrives.
pub async fn run(a: &GearmanArgs, command: Option<JobCommand>) -> i32 {
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
    if let Err(msg) = any_reachable(&servers).await {
        err_raw(format!("gearman: gearman_worker_work : {msg}\n").as_bytes());
        return 1;
    }
    let mode = if a.per_line { OutputMode::Lines { strip: a.strip_newline } } else { OutputMode::Whole };
    let options = WorkerOptions {
        max_jobs: (a.count > 0).then_some(a.count),
        retry_max: Duration::from_secs(5),
        ..WorkerOptions::default()
    };
    let mut worker = match Worker::with_options(servers, options) {
        Ok(w) => w,
        Err(e) => {
            err_raw(format!("gearman: {e}\n").as_bytes());
            return 1;
        }
    };
    for f in &a.functions {
        let command = command.clone();
        worker = worker.register(f.clone(), move |job: Job| {
            let command = command.clone();
            async move { handle(job, command, mode).await }
        });
    }
    match worker.run_until(crate::process::stop_signal()).await {
        Ok(_) => 0,
        Err(e) => {
            err_raw(format!("gearman: {e}\n").as_bytes());
            1
        }
    }
}

async fn any_reachable(servers: &[ServerAddr]) -> Result<(), String> {
    let mut errors = Vec::new();
    for s in servers {
        match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(s.socket_string())).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => errors.push(format!("could not connect to {s}: {e}")),
            Err(_) => errors.push(format!("could not connect to {s}: timed out")),
        }
    }
    Err(errors.join("; "))
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
    if outcome.success && !lines {
        return Ok(Bytes::from(outcome.output));
    }
    if !outcome.output.is_empty() {
        let _ = job.data(outcome.output);
    }
    if outcome.success {
        Ok(Bytes::new())
    } else {
        Err(JobError::Fail)
    }
}
