//! `gearman [options] [<data> …]`: client mode.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sprocket_client::{Client, ClientOptions, JobEvent, JobRequest, Priority};

use super::args::GearmanArgs;
use crate::output::{err_raw, GearmanOut};

/// Longest piece `-n` reads at once (gearman reads lines with an 8 KiB buffer).
const LINE_PIECE: usize = 8191;

/// What ends the whole run early.
struct Fatal(String);

/// Runs client mode; returns the exit status.
pub async fn run(a: &GearmanArgs) -> i32 {
    let workloads = match workloads(a) {
        Ok(w) => w,
        Err(e) => {
            err_raw(format!("gearman: cannot read standard input: {e}\n").as_bytes());
            return 1;
        }
    };
    let timeout = a.timeout_ms.filter(|t| *t > 0).map(Duration::from_millis);
    let options = ClientOptions {
        // gearman(1) does not ask for exceptions: a worker's exception
        // reaches it as a failure.
        exceptions: false,
        connect_timeout: timeout.unwrap_or(Duration::from_secs(5)),
        response_timeout: timeout.unwrap_or(Duration::from_secs(30)),
        retry_max: Duration::from_millis(1),
        retry_initial: Duration::from_millis(1),
        ..ClientOptions::default()
    };
    let client = match Client::with_options(a.servers(), options) {
        Ok(c) => c,
        Err(e) => {
            err_raw(format!("gearman: {e}\n").as_bytes());
            return 1;
        }
    };
    let out = Arc::new(Mutex::new(GearmanOut::new()));
    let mut tasks = Vec::new();
    for w in &workloads {
        for f in &a.functions {
            tasks.push(run_task(&client, a, f.clone(), w.clone(), out.clone(), timeout));
        }
    }
    let status = match futures::future::try_join_all(tasks).await {
        Ok(failed) => i32::from(failed.iter().any(|f| *f)),
        Err(Fatal(msg)) => {
            err_raw(format!("gearman: gearman_client_run_tasks : {msg}\n").as_bytes());
            1
        }
    };
    if let Ok(mut o) = out.lock() {
        o.flush();
    }
    status
}

fn workloads(a: &GearmanArgs) -> std::io::Result<Vec<Bytes>> {
    if !a.operands.is_empty() {
        return Ok(a.operands.iter().map(|s| Bytes::from(s.clone())).collect());
    }
    if a.no_stdin {
        return Ok(vec![Bytes::new()]);
    }
    let mut input = Vec::new();
    std::io::stdin().lock().read_to_end(&mut input)?;
    if !a.per_line {
        return Ok(vec![Bytes::from(input)]);
    }
    let mut out = Vec::new();
    let mut rest = &input[..];
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').map(|i| i + 1).unwrap_or(rest.len()).min(LINE_PIECE);
        let mut piece = rest[..end].to_vec();
        rest = &rest[end..];
        if a.strip_newline {
            // gearman drops the last byte whether or not it is a newline.
            piece.pop();
        }
        if piece.is_empty() {
            err_raw(b"gearman: gearman_client_add_task : invalid workload (empty line skipped)\n");
            continue;
        }
        out.push(Bytes::from(piece));
    }
    Ok(out)
}

fn job_request(a: &GearmanArgs, function: &str, workload: Bytes) -> JobRequest {
    let mut job = JobRequest::new(function.to_string(), workload);
    if a.high {
        job = job.priority(Priority::High);
    } else if a.low {
        job = job.priority(Priority::Low);
    }
    if let Some(u) = &a.unique {
        job = job.unique(u.clone());
    }
    if let Some(e) = a.epoch {
        job = job.at_epoch(e);
    }
    job
}

/// Runs one task; `Ok(true)` when the job failed.
async fn run_task(
    client: &Client,
    a: &GearmanArgs,
    function: String,
    workload: Bytes,
    out: Arc<Mutex<GearmanOut>>,
    timeout: Option<Duration>,
) -> Result<bool, Fatal> {
    let job = job_request(a, &function, workload);
    let prefix = if a.prefix { format!("{function}: ") } else { String::new() };
    let print_line = |text: String| {
        if let Ok(mut o) = out.lock() {
            o.line(&text);
        }
    };
    // gearman writes a bare payload straight out, but a prefixed one goes
    // through stdio like its own lines (so it is buffered in a pipe).
    let print_raw = |data: &[u8]| {
        if let Ok(mut o) = out.lock() {
            if prefix.is_empty() {
                o.raw(data);
            } else {
                let mut line = prefix.clone().into_bytes();
                line.extend_from_slice(data);
                o.line_bytes(&line);
            }
        }
    };
    if a.background || a.epoch.is_some() {
        let handle = client.submit_background_job(job).await.map_err(|e| Fatal(e.to_string()))?;
        if a.verbose {
            print_line(format!("Task created: {handle}\n"));
        }
        return Ok(false);
    }
    let mut stream = client.submit_stream(job).await.map_err(|e| Fatal(e.to_string()))?;
    if a.verbose {
        print_line(format!("Task created: {}\n", stream.handle()));
    }
    loop {
        let next = stream.next_event();
        let ev = match timeout {
            Some(t) => match tokio::time::timeout(t, next).await {
                Ok(r) => r,
                Err(_) => return Err(Fatal(format!("timeout reached after {} ms", t.as_millis()))),
            },
            None => next.await,
        }
        .map_err(|e| Fatal(e.to_string()))?;
        match ev {
            JobEvent::Data(d) => print_raw(&d),
            JobEvent::Complete(d) => {
                print_raw(&d);
                return Ok(false);
            }
            JobEvent::Warning(d) => {
                let mut msg = prefix.clone().into_bytes();
                msg.extend_from_slice(&d);
                err_raw(&msg);
            }
            JobEvent::Exception(d) => {
                let mut msg = prefix.clone().into_bytes();
                msg.extend_from_slice(&d);
                err_raw(&msg);
                return Ok(true);
            }
            JobEvent::Status { numerator, denominator } => {
                let pct = numerator.saturating_mul(100).checked_div(denominator).unwrap_or(0);
                print_line(format!("{prefix}{pct}% Complete\n"));
            }
            JobEvent::Failed => {
                err_raw(b"Job failed\n");
                return Ok(true);
            }
            JobEvent::Created(_) => {}
        }
    }
}
