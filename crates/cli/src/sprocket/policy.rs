//! `sprocket policy` (list, set, clear) and `sprocket requeue`: the
//! per-function retry and dead-letter policies, and dead jobs made live
//! again, through sprocketd's admin commands `policy`, `policy set`,
//! `policy clear`, `requeue` and `requeue function`.

use anyhow::bail;
use clap::{Args, Subcommand};
use sprocket_client::ServerAddr;

use super::ops::{ask_each, one_token};
use super::ServerOpt;
use crate::admin::{listing_lines, AdminConn};

/// `sprocket policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// Print the policies as a JSON array (pattern, source, policy).
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub change: Option<PolicyChange>,
}

/// What `sprocket policy` changes (nothing: it lists).
#[derive(Debug, Subcommand)]
pub enum PolicyChange {
    /// Set the policy of a function name or glob (`resize_*`) at run time;
    /// the server keeps it across restarts, over the policy file's entry
    /// for the same pattern.
    ///
    /// POLICY is JSON with the keys of the policy file, for example
    /// '{"max_attempts": 5, "backoff": {"kind": "fixed", "delay": "30s"},
    /// "retry_on": ["fail", "exception"], "timeout": "10m", "dead_letter": true}'.
    Set {
        #[command(flatten)]
        server: ServerOpt,
        /// A function name or a glob.
        pattern: String,
        /// The policy, as JSON.
        policy: String,
    },
    /// Remove a policy set at run time (the policy file's entry, if any,
    /// applies again).
    Clear {
        #[command(flatten)]
        server: ServerOpt,
        /// The pattern it was set for.
        pattern: String,
    },
}

/// `sprocket requeue`.
#[derive(Debug, Args)]
pub struct RequeueArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// The handle of a dead job.
    #[arg(required_unless_present = "function", conflicts_with = "function")]
    pub handle: Option<String>,
    /// Requeue every dead job of this function instead.
    #[arg(long, short = 'f', value_name = "FUNCTION")]
    pub function: Option<String>,
}

/// Lists, sets or clears policies.
pub async fn policy(a: PolicyArgs) -> anyhow::Result<i32> {
    let (server, line) = match &a.change {
        None => return list(&a).await,
        Some(PolicyChange::Set { server, pattern, policy }) => {
            let policy: serde_json::Value =
                serde_json::from_str(policy).map_err(|e| anyhow::anyhow!("the policy is not JSON: {e}"))?;
            (server, format!("policy set {} {policy}", one_token(pattern)?))
        }
        Some(PolicyChange::Clear { server, pattern }) => (server, format!("policy clear {}", one_token(pattern)?)),
    };
    let mut status = 0;
    for (server, reply) in ask_each(server, &line).await? {
        if let Err(e) = reply {
            eprintln!("sprocket: {server}: {e}");
            status = 1;
        }
    }
    Ok(status)
}

/// One policy line of the `policy` listing.
#[derive(Debug, serde::Serialize)]
struct PolicyLine {
    pattern: String,
    source: String,
    policy: serde_json::Value,
}

async fn list(a: &PolicyArgs) -> anyhow::Result<i32> {
    let servers = ServerAddr::parse_list(&a.server.servers)?;
    let Some(server) = servers.first() else { bail!("no job server given") };
    let tls = a.server.tls()?;
    let mut conn = AdminConn::connect(server, tls.as_ref()).await?;
    let reply = conn.command("policy").await?;
    if let Some(err) = reply.strip_prefix("ERR ") {
        bail!("{server}: {}", err.trim_end().replace('+', " "));
    }
    let mut lines = Vec::new();
    for line in listing_lines(&reply) {
        let mut fields = line.splitn(3, '\t');
        let (Some(pattern), Some(source), Some(json)) = (fields.next(), fields.next(), fields.next()) else {
            bail!("{server}: unexpected policy line {line:?}");
        };
        let policy = serde_json::from_str(json).map_err(|e| anyhow::anyhow!("{server}: bad policy JSON: {e}"))?;
        lines.push(PolicyLine { pattern: pattern.into(), source: source.into(), policy });
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(0);
    }
    if lines.is_empty() {
        println!("no policies: every function behaves as under gearmand");
        return Ok(0);
    }
    println!("{:<24} {:<8} POLICY", "PATTERN", "SOURCE");
    for l in &lines {
        println!("{:<24} {:<8} {}", l.pattern, l.source, l.policy);
    }
    Ok(0)
}

/// Requeues one dead job, or every dead job of a function; prints how many.
pub async fn requeue(a: RequeueArgs) -> anyhow::Result<i32> {
    let line = match (&a.handle, &a.function) {
        (Some(handle), None) => format!("requeue {}", one_token(handle)?),
        (None, Some(function)) => format!("requeue function {}", one_token(function)?),
        _ => bail!("give a dead job's handle or --function"),
    };
    let (mut status, mut requeued) = (0, 0u64);
    let mut found = false;
    for (server, reply) in ask_each(&a.server, &line).await? {
        match reply {
            Ok(value) => {
                found = true;
                requeued += value.parse::<u64>().unwrap_or(0);
            }
            // A handle names a job on one server; the others do not know it.
            Err(e) if a.handle.is_some() && e.starts_with("UNKNOWN_JOB") => {}
            Err(e) => {
                eprintln!("sprocket: {server}: cannot requeue: {e}");
                status = 1;
            }
        }
    }
    if a.handle.is_some() && !found && status == 0 {
        eprintln!("sprocket: no server has a job with that handle");
        return Ok(1);
    }
    println!("{requeued}");
    Ok(status)
}
