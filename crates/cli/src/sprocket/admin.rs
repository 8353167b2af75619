//! `sprocket admin`: the admin text protocol with readable tables or JSON.

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::json;
use sprocket_client::ServerAddr;

use super::table;
use super::ServerOpt;
use crate::admin::{self, AdminConn};

/// `sprocket admin`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Action,
}

/// Admin actions.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Jobs and workers per function.
    Status,
    /// Queued jobs per function and priority.
    PriorityStatus,
    /// Connections and the functions they can do.
    Workers,
    /// Every job (handle, retries, ignored, persisted).
    Jobs,
    /// The unique ids of all jobs.
    UniqueJobs,
    /// Cancel a queued job.
    Cancel { handle: String },
    /// Create a function.
    CreateFunction { function: String },
    /// Drop a function without workers or running jobs.
    DropFunction { function: String },
    /// Set queue limits: one for every priority, or high normal low; none clears them.
    Maxqueue { function: String, limits: Vec<u32> },
    /// Ended jobs per function over the last minute, hour and day:
    /// counts by outcome and queue wait / run time percentiles in
    /// milliseconds (sprocketd keeps them unless started with --no-history).
    History,
    /// Server version.
    Version,
    /// Server process id.
    Pid,
    /// Server log level.
    Verbose,
    /// Ask the server to shut down (not supported by gearmand 1.1.15+).
    Shutdown {
        /// Finish the queued jobs first.
        #[arg(long)]
        graceful: bool,
    },
}

impl Action {
    fn wire(&self) -> anyhow::Result<String> {
        Ok(match self {
            Action::Status => "status".into(),
            Action::PriorityStatus => "prioritystatus".into(),
            Action::Workers => "workers".into(),
            Action::Jobs => "show jobs".into(),
            Action::UniqueJobs => "show unique jobs".into(),
            Action::Cancel { handle } => format!("cancel job {}", one_token(handle)?),
            Action::CreateFunction { function } => format!("create function {}", one_token(function)?),
            Action::DropFunction { function } => format!("drop function {}", one_token(function)?),
            Action::Maxqueue { function, limits } => {
                let f = one_token(function)?;
                match limits.len() {
                    0 => format!("maxqueue {f}"),
                    1 | 3 => {
                        format!("maxqueue {f} {}", limits.iter().map(u32::to_string).collect::<Vec<_>>().join(" "))
                    }
                    _ => bail!("maxqueue takes one limit or three (high normal low)"),
                }
            }
            Action::History => "history".into(),
            Action::Version => "version".into(),
            Action::Pid => "getpid".into(),
            Action::Verbose => "verbose".into(),
            Action::Shutdown { graceful: false } => "shutdown".into(),
            Action::Shutdown { graceful: true } => "shutdown graceful".into(),
        })
    }
}

/// Admin lines are split on spaces: a name with a space cannot be sent.
fn one_token(s: &str) -> anyhow::Result<&str> {
    if s.is_empty() || s.contains([' ', '\n', '\r']) {
        bail!("{s:?} cannot be sent on an admin line (empty, or contains a space or newline)");
    }
    Ok(s)
}

/// Runs `sprocket admin` against every configured server.
pub async fn run(a: AdminArgs) -> anyhow::Result<i32> {
    let servers = ServerAddr::parse_list(&a.server.servers)?;
    if servers.is_empty() {
        bail!("no job server given");
    }
    let line = match a.action.wire() {
        Ok(line) => line,
        Err(e) => {
            // A bad argument is a usage error, as clap's own are.
            eprintln!("sprocket: {e:#}");
            return Ok(2);
        }
    };
    let tls = a.server.tls()?;
    let many = servers.len() > 1;
    // A handle belongs to one server: with several, the others' UNKNOWN_JOB
    // is expected, and the cancel failed only if no server knew the job.
    let cancel_across = many && matches!(a.action, Action::Cancel { .. });
    let mut status = 0;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut json_out = Vec::new();
    for s in &servers {
        let mut conn = AdminConn::connect(s, tls.as_ref()).await?;
        let reply = conn.command(&line).await?;
        let first = reply.lines().next().unwrap_or("").trim_end_matches('\r').to_string();
        if let Some(err) = first.strip_prefix("ERR ") {
            json_out.push(json!({"server": s.to_string(), "error": err}));
            if cancel_across && err.starts_with("UNKNOWN_JOB") {
                continue;
            }
            eprintln!("sprocket: {s}: {err}");
            status = 1;
            continue;
        }
        let server = s.to_string();
        match &a.action {
            Action::Status => {
                for f in admin::parse_status(&reply) {
                    json_out.push(json!({"server": server, "function": f.function, "total": f.total,
                        "running": f.running, "queued": f.total.saturating_sub(f.running), "workers": f.workers}));
                    rows.push(vec![
                        server.clone(),
                        f.function,
                        f.total.saturating_sub(f.running).to_string(),
                        f.running.to_string(),
                        f.workers.to_string(),
                    ]);
                }
            }
            Action::PriorityStatus => {
                for l in admin::listing_lines(&reply) {
                    let f: Vec<&str> = l.split('\t').collect();
                    if f.len() >= 5 {
                        json_out.push(json!({"server": server, "function": f[0], "high": num(f[1]),
                            "normal": num(f[2]), "low": num(f[3]), "workers": num(f[4])}));
                        rows.push(std::iter::once(server.clone()).chain(f.iter().map(|x| x.to_string())).collect());
                    }
                }
            }
            Action::Workers => {
                for w in admin::parse_workers(&reply) {
                    json_out.push(json!({"server": server, "fd": w.fd, "ip": w.ip, "id": w.client_id,
                        "functions": w.functions}));
                    rows.push(vec![server.clone(), w.fd, w.ip, w.client_id, w.functions.join(" ")]);
                }
            }
            Action::Jobs => {
                for j in admin::parse_jobs(&reply) {
                    json_out.push(json!({"server": server, "handle": j.handle, "retries": j.retries,
                        "ignored": j.ignore, "persisted": j.persisted}));
                    rows.push(vec![server.clone(), j.handle, j.retries.to_string(), yes(j.ignore), yes(j.persisted)]);
                }
            }
            Action::History => {
                for h in admin::parse_history(&reply) {
                    json_out.push(history_json(&server, &h));
                    rows.push(
                        [server.clone(), h.function, h.window]
                            .into_iter()
                            .chain(h.counts[..6].iter().map(u64::to_string))
                            .chain(h.wait_ms.iter().chain(&h.run_ms).map(|v| v.map_or("-".into(), |v| v.to_string())))
                            .collect(),
                    );
                }
            }
            Action::UniqueJobs => {
                for u in admin::listing_lines(&reply) {
                    json_out.push(json!({"server": server, "unique": u}));
                    rows.push(vec![server.clone(), u.to_string()]);
                }
            }
            _ => {
                let value = first.strip_prefix("OK").map(str::trim).unwrap_or(&first).to_string();
                let value = if value.is_empty() { "OK".to_string() } else { value };
                json_out.push(json!({"server": server, "reply": value}));
                rows.push(vec![server.clone(), value]);
            }
        }
    }
    if cancel_across && status == 0 && rows.is_empty() {
        if let Action::Cancel { handle } = &a.action {
            eprintln!("sprocket: no server knows job {handle}");
        }
        status = 1;
    }
    if a.json {
        println!("{}", serde_json::Value::Array(json_out));
        return Ok(status);
    }
    let header: &[&str] = match &a.action {
        Action::Status => &["SERVER", "FUNCTION", "QUEUED", "RUNNING", "WORKERS"],
        Action::PriorityStatus => &["SERVER", "FUNCTION", "HIGH", "NORMAL", "LOW", "WORKERS"],
        Action::Workers => &["SERVER", "FD", "IP", "ID", "FUNCTIONS"],
        Action::Jobs => &["SERVER", "HANDLE", "RETRIES", "IGNORED", "PERSISTED"],
        Action::UniqueJobs => &["SERVER", "UNIQUE"],
        Action::History => &[
            "SERVER",
            "FUNCTION",
            "WINDOW",
            "COMPLETED",
            "FAILED",
            "EXCEPTIONS",
            "TIMEOUTS",
            "CANCELLED",
            "DROPPED",
            "WAIT_P50",
            "WAIT_P90",
            "WAIT_P99",
            "RUN_P50",
            "RUN_P90",
            "RUN_P99",
        ],
        _ => {
            for r in rows {
                if many {
                    println!("{}: {}", r[0], r[1]);
                } else {
                    println!("{}", r[1]);
                }
            }
            return Ok(status);
        }
    };
    // Drop the server column when there is only one server.
    let (header, rows): (Vec<&str>, Vec<Vec<String>>) = if many {
        (header.to_vec(), rows)
    } else {
        (header[1..].to_vec(), rows.into_iter().map(|r| r[1..].to_vec()).collect())
    };
    print!("{}", table::render(&header, &rows));
    Ok(status)
}

/// One `history` line as JSON: counts by outcome, and percentiles in
/// milliseconds (`null` without samples).
fn history_json(server: &str, h: &admin::HistoryLine) -> serde_json::Value {
    let [completed, failed, exceptions, timeouts, cancelled, dropped, dead] = h.counts;
    let [wait_p50, wait_p90, wait_p99] = h.wait_ms;
    let [run_p50, run_p90, run_p99] = h.run_ms;
    json!({"server": server, "function": h.function, "window": h.window,
        "completed": completed, "failed": failed, "exceptions": exceptions, "timeouts": timeouts,
        "cancelled": cancelled, "dropped": dropped, "dead": dead,
        "queue_wait_ms": {"p50": wait_p50, "p90": wait_p90, "p99": wait_p99},
        "run_time_ms": {"p50": run_p50, "p90": run_p90, "p99": run_p99}})
}

fn num(s: &str) -> u64 {
    s.trim().parse().unwrap_or(0)
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}
