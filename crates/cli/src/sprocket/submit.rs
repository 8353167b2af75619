//! `sprocket submit` and `sprocket status`.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sprocket_client::{Client, ClientOptions, Error, JobEvent, JobHandle, JobRequest, Priority};

use super::table;
use super::ServerOpt;

/// Job priority on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PriorityArg {
    High,
    Normal,
    Low,
}

impl From<PriorityArg> for Priority {
    fn from(p: PriorityArg) -> Priority {
        match p {
            PriorityArg::High => Priority::High,
            PriorityArg::Normal => Priority::Normal,
            PriorityArg::Low => Priority::Low,
        }
    }
}

/// How progress (WORK_STATUS) is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// A bar on a terminal, plain lines otherwise.
    Auto,
    /// Always plain `N% Complete` lines on stderr.
    Lines,
    /// Nothing.
    None,
}

/// `sprocket submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// Function to run.
    pub function: String,
    /// Workloads, one job each (run concurrently). Without any, stdin is the workload.
    pub payloads: Vec<String>,
    /// Submit in the background and print the job handle.
    #[arg(short = 'b', long)]
    pub background: bool,
    /// Job priority.
    #[arg(short = 'p', long, value_enum, default_value_t = PriorityArg::Normal)]
    pub priority: PriorityArg,
    /// Unique id (jobs with the same id coalesce).
    #[arg(short = 'u', long)]
    pub unique: Option<String>,
    /// Run (in the background) not before this Unix time.
    #[arg(long, value_name = "EPOCH")]
    pub at: Option<u64>,
    /// One job per stdin line (newline removed).
    #[arg(short = 'n', long)]
    pub lines: bool,
    /// Send an empty workload instead of reading stdin.
    #[arg(long)]
    pub empty: bool,
    /// Give up waiting for a result after this many seconds.
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Progress display for WORK_STATUS.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Print one JSON object per job instead of raw results.
    #[arg(long)]
    pub json: bool,
}

/// `sprocket status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// Job handles to ask about.
    pub handles: Vec<String>,
    /// Ask by unique id instead (GET_STATUS_UNIQUE).
    #[arg(short = 'u', long = "unique")]
    pub uniques: Vec<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn client(server: &ServerOpt, timeout: Option<Duration>) -> anyhow::Result<Client> {
    let mut opts = ClientOptions { job_timeout: timeout, tls: server.tls()?, ..ClientOptions::default() };
    if let Some(t) = timeout {
        opts.response_timeout = t;
    }
    Client::with_options(server.servers.as_str(), opts).context("bad server list")
}

fn payloads(a: &SubmitArgs) -> anyhow::Result<Vec<Bytes>> {
    if !a.payloads.is_empty() {
        return Ok(a.payloads.iter().map(|p| Bytes::from(p.clone())).collect());
    }
    if a.empty {
        return Ok(vec![Bytes::new()]);
    }
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).context("reading stdin")?;
    if a.lines {
        return Ok(input
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| Bytes::copy_from_slice(l.strip_suffix(b"\r").unwrap_or(l)))
            .collect());
    }
    Ok(vec![Bytes::from(input)])
}

/// Runs `sprocket submit`.
pub async fn run(a: SubmitArgs) -> anyhow::Result<i32> {
    if a.function.is_empty() {
        // No worker can register "", so the job would only wait.
        eprintln!("sprocket: invalid function name \"\": a function name cannot be empty");
        return Ok(2);
    }
    let timeout = a.timeout.filter(|t| *t > 0.0).map(Duration::from_secs_f64);
    let client = client(&a.server, timeout)?;
    let jobs: Vec<JobRequest> = payloads(&a)?
        .into_iter()
        .map(|p| {
            let mut j = JobRequest::new(a.function.clone(), p).priority(a.priority.into());
            if let Some(u) = &a.unique {
                j = j.unique(u.clone());
            }
            if let Some(at) = a.at {
                j = j.at_epoch(at);
            }
            j
        })
        .collect();
    if a.background || a.at.is_some() {
        let mut status = 0;
        for r in client.submit_background_batch(jobs).await {
            match r {
                Ok(h) if a.json => println!("{}", json!({ "handle": h.to_string() })),
                Ok(h) => println!("{h}"),
                Err(e) => {
                    eprintln!("sprocket: {e}");
                    status = 1;
                }
            }
        }
        return Ok(status);
    }
    let single = jobs.len() == 1;
    let progress = Progress::new(a.progress);
    let results = futures::future::join_all(jobs.into_iter().map(|job| {
        let client = client.clone();
        let progress = &progress;
        let json = a.json;
        async move {
            let mut handle = None;
            // WORK_DATA of a job whose output would interleave with others'
            // (or that goes into JSON), printed with its result.
            let mut kept = Vec::new();
            let r = client
                .submit_with(job, |ev| match ev {
                    JobEvent::Created(h) => handle = Some(h.clone()),
                    // Partial data streams straight out when it cannot be confused with other jobs.
                    JobEvent::Data(d) if single && !json => {
                        let mut o = std::io::stdout().lock();
                        let _ = o.write_all(d);
                        let _ = o.flush();
                    }
                    JobEvent::Data(d) => kept.extend_from_slice(d),
                    JobEvent::Warning(d) => eprintln!("warning: {}", String::from_utf8_lossy(d)),
                    JobEvent::Status { numerator, denominator } => progress.update(*numerator, *denominator),
                    _ => {}
                })
                .await;
            (handle, kept, r)
        }
    }))
    .await;
    progress.finish();
    let mut status = 0;
    for (handle, kept, r) in results {
        let h = handle.map(|h| h.to_string()).unwrap_or_default();
        match r {
            Ok(data) if a.json => println!(
                "{}",
                json!({ "handle": h, "data": String::from_utf8_lossy(&kept), "result": String::from_utf8_lossy(&data) })
            ),
            Ok(data) => {
                let mut o = std::io::stdout().lock();
                o.write_all(&kept)?;
                o.write_all(&data)?;
                o.flush()?;
            }
            Err(e) => {
                status = 1;
                if a.json {
                    println!("{}", json!({ "handle": h, "error": e.to_string() }));
                } else {
                    match e {
                        Error::JobFailed { .. } => eprintln!("sprocket: job {h} failed"),
                        other => eprintln!("sprocket: {other}"),
                    }
                }
            }
        }
    }
    Ok(status)
}

/// Progress from WORK_STATUS: a bar on a terminal, lines elsewhere.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Progress {
    pub(super) fn new(mode: ProgressArg) -> Progress {
        let tty = std::io::stderr().is_terminal();
        match mode {
            ProgressArg::None => Progress { bar: None, lines: false },
            ProgressArg::Auto if tty => {
                let bar = ProgressBar::new(0);
                bar.set_style(
                    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ({percent}%)")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                Progress { bar: Some(bar), lines: false }
            }
            _ => Progress { bar: None, lines: true },
        }
    }

    pub(super) fn update(&self, numerator: u64, denominator: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(denominator);
            bar.set_position(numerator.min(denominator));
        } else if self.lines {
            let pct = numerator.saturating_mul(100).checked_div(denominator).unwrap_or(0);
            eprintln!("{pct}% Complete");
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs `sprocket status`.
pub async fn status(a: StatusArgs) -> anyhow::Result<i32> {
    if a.handles.is_empty() && a.uniques.is_empty() {
        anyhow::bail!("give at least one job handle or --unique id");
    }
    let client = client(&a.server, None)?;
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for h in &a.handles {
        let st = client.status(&JobHandle::from(h.as_str())).await?;
        rows.push(vec![
            h.clone(),
            st.known.to_string(),
            st.running.to_string(),
            format!("{}/{}", st.numerator, st.denominator),
        ]);
        json_rows.push(json!({"handle": h, "known": st.known, "running": st.running,
            "numerator": st.numerator, "denominator": st.denominator}));
    }
    for u in &a.uniques {
        let st = client.status_unique(u.clone()).await?;
        rows.push(vec![
            format!("unique:{u}"),
            st.known.to_string(),
            st.running.to_string(),
            format!("{}/{}", st.numerator, st.denominator),
        ]);
        json_rows.push(json!({"unique": u, "known": st.known, "running": st.running,
            "numerator": st.numerator, "denominator": st.denominator, "clients": st.clients}));
    }
    if a.json {
        println!("{}", serde_json::Value::Array(json_rows));
    } else {
        print!("{}", table::render(&["JOB", "KNOWN", "RUNNING", "PROGRESS"], &rows));
    }
    Ok(0)
}
