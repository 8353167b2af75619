//! `sprocket cron list|add|remove|run`: recurring jobs through sprocketd's
//! admin `cron` commands. `list` asks the first server (each server keeps
//! its own table; servers sharing a database share their runs by unique,
//! not their tables); the others ask every server given, as `pause` does.

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::json;
use sprocket_client::ServerAddr;

use super::ops::{ask_each, one_token};
use super::ServerOpt;
use crate::admin::{listing_lines, AdminConn};

/// The `cron` subcommands.
#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// List the entries with their next run (a table, or JSON with --json).
    List(ListArgs),
    /// Add a run-time entry (kept in the server's store; the policy file's
    /// entries are changed in the file).
    Add(AddArgs),
    /// Remove a run-time entry.
    Remove(NameArgs),
    /// Submit one job for an entry now (its schedule is unchanged);
    /// prints the job's handle.
    Run(NameArgs),
}

/// `sprocket cron list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `sprocket cron remove NAME` and `sprocket cron run NAME`.
#[derive(Debug, Args)]
pub struct NameArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// The entry's name.
    pub name: String,
}

/// `sprocket cron add NAME --schedule S --function F …`.
#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// The entry's name (letters, digits, '.', '_', '-'; at most 32).
    pub name: String,
    /// Five fields (minute hour day-of-month month day-of-week), six with
    /// seconds first, or @hourly, @daily, @weekly, @monthly, @yearly.
    #[arg(long)]
    pub schedule: String,
    /// The function each run submits a background job to.
    #[arg(long, short = 'f')]
    pub function: String,
    /// The job's data.
    #[arg(long, default_value = "")]
    pub payload: String,
    /// IANA time zone the schedule is read in.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    /// high, normal or low.
    #[arg(long, default_value = "normal")]
    pub priority: String,
    /// Runs missed while the server was down: none, last or all.
    #[arg(long = "catch-up", default_value = "none")]
    pub catch_up: String,
}

/// Runs a `cron` subcommand; the exit status.
pub async fn run(command: CronCommand) -> anyhow::Result<i32> {
    match command {
        CronCommand::List(a) => list(a).await,
        CronCommand::Add(a) => {
            let entry = json!({
                "name": a.name,
                "schedule": a.schedule,
                "function": a.function,
                "payload": a.payload,
                "timezone": a.timezone,
                "priority": a.priority,
                "catch_up": a.catch_up,
            });
            // serde_json writes no newline, so the entry stays one line.
            change(&a.server, &format!("cron add {entry}"), "add", &a.name).await
        }
        CronCommand::Remove(a) => {
            change(&a.server, &format!("cron remove {}", one_token(&a.name)?), "remove", &a.name).await
        }
        CronCommand::Run(a) => change(&a.server, &format!("cron run {}", one_token(&a.name)?), "run", &a.name).await,
    }
}

/// Sends `line` to every server; prints what an `OK` carries (a handle).
async fn change(server: &ServerOpt, line: &str, verb: &str, name: &str) -> anyhow::Result<i32> {
    let mut status = 0;
    for (server, reply) in ask_each(server, line).await? {
        match reply {
            Ok(value) if !value.is_empty() => println!("{value}"),
            Ok(_) => {}
            Err(e) => {
                eprintln!("sprocket: {server}: cannot {verb} cron entry {name}: {e}");
                status = 1;
            }
        }
    }
    Ok(status)
}

/// The listing's columns, in order.
const COLUMNS: [&str; 10] =
    ["name", "schedule", "timezone", "function", "next", "next_time", "source", "catch_up", "priority", "last"];

async fn list(a: ListArgs) -> anyhow::Result<i32> {
    let servers = ServerAddr::parse_list(&a.server.servers)?;
    let Some(first) = servers.first() else { bail!("no job server given") };
    let tls = a.server.tls()?;
    let mut conn = AdminConn::connect(first, tls.as_ref()).await?;
    let reply = conn.command("cron list").await?;
    if let Some(err) = reply.strip_prefix("ERR ") {
        let err = err.trim_end();
        if err.starts_with("UNKNOWN_COMMAND") {
            bail!("{first}: the server does not know `cron` (it is sprocketd's own command, not gearmand's)");
        }
        bail!("{first}: {}", err.replace('+', " "));
    }
    let rows: Vec<Vec<&str>> = listing_lines(&reply).into_iter().map(|l| l.split('\t').collect()).collect();
    if a.json {
        let entries: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| {
                let mut object = serde_json::Map::new();
                for (column, value) in COLUMNS.iter().zip(row) {
                    let value = match *column {
                        "next" | "last" => value.parse::<i64>().map_or(serde_json::Value::Null, |n| json!(n)),
                        "next_time" if *value == "-" => serde_json::Value::Null,
                        _ => json!(value),
                    };
                    object.insert((*column).to_owned(), value);
                }
                serde_json::Value::Object(object)
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(0);
    }
    let shown = [0usize, 1, 2, 3, 5, 6, 7];
    let mut table: Vec<Vec<String>> =
        vec![shown.iter().map(|&i| COLUMNS[i].replace("next_time", "next run").to_uppercase()).collect()];
    for row in &rows {
        table.push(shown.iter().map(|&i| row.get(i).copied().unwrap_or("").to_owned()).collect());
    }
    let widths: Vec<usize> =
        (0..shown.len()).map(|c| table.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in table {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
    Ok(0)
}
