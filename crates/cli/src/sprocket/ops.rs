//! `sprocket pause`, `sprocket resume` and `sprocket purge`: stopping one
//! function's jobs, clearing its queue, and deleting dead jobs' records,
//! through sprocketd's admin commands `pause`, `resume`, `purge queued`
//! and `purge dead`. Each server given is
//! asked in turn; any refusal is reported with the server's name and makes
//! the exit status 1.

use anyhow::bail;
use clap::Args;
use sprocket_client::ServerAddr;

use super::ServerOpt;
use crate::admin::AdminConn;

/// `sprocket pause F` and `sprocket resume F`.
#[derive(Debug, Args)]
pub struct FunctionArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// The function (exact name).
    pub function: String,
}

/// `sprocket purge --queued --function F` and `sprocket purge --dead
/// [--function F]`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["queued", "dead"])))]
pub struct PurgeArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// Purge the function's queued and scheduled jobs (not the running
    /// ones); their waiting clients get WORK_FAIL. Needs --function.
    #[arg(long, requires = "function")]
    pub queued: bool,
    /// Delete the records of dead jobs (dead letters), of --function only
    /// when given, else of every function.
    #[arg(long)]
    pub dead: bool,
    /// The function (exact name).
    #[arg(long, short = 'f', value_name = "FUNCTION")]
    pub function: Option<String>,
}

/// Pauses (`pause` true) or resumes the function on every server.
pub async fn pause(a: FunctionArgs, pause: bool) -> anyhow::Result<i32> {
    let verb = if pause { "pause" } else { "resume" };
    let line = format!("{verb} {}", one_token(&a.function)?);
    let mut status = 0;
    for (server, reply) in ask_each(&a.server, &line).await? {
        match reply {
            Ok(_) => {}
            Err(e) => {
                eprintln!("sprocket: {server}: cannot {verb} {}: {e}", a.function);
                status = 1;
            }
        }
    }
    Ok(status)
}

/// Purges the function's queued jobs on every server; prints how many
/// jobs were purged in all.
pub async fn purge(a: PurgeArgs) -> anyhow::Result<i32> {
    let line = match (a.queued, a.dead, a.function.as_deref()) {
        (true, _, Some(f)) => format!("purge queued {}", one_token(f)?),
        (true, _, None) => bail!("--queued needs --function"),
        (false, true, Some(f)) => format!("purge dead {}", one_token(f)?),
        (false, true, None) => "purge dead".to_string(),
        (false, false, _) => bail!("say what to purge: --queued or --dead"),
    };
    let what = a.function.as_deref().unwrap_or("dead jobs");
    let (mut status, mut purged) = (0, 0u64);
    for (server, reply) in ask_each(&a.server, &line).await? {
        match reply {
            Ok(value) => match value.parse::<u64>() {
                Ok(n) => purged += n,
                Err(_) => {
                    eprintln!("sprocket: {server}: unexpected answer to `{line}`: {value:?}");
                    status = 1;
                }
            },
            Err(e) => {
                eprintln!("sprocket: {server}: cannot purge {what}: {e}");
                status = 1;
            }
        }
    }
    println!("{purged}");
    Ok(status)
}

/// Sends `line` to each server: per server, the value after `OK`, or the
/// error (the text after `ERR`, with `+` read as spaces).
pub(super) async fn ask_each(opt: &ServerOpt, line: &str) -> anyhow::Result<Vec<(String, Result<String, String>)>> {
    let servers = ServerAddr::parse_list(&opt.servers)?;
    if servers.is_empty() {
        bail!("no job server given");
    }
    let tls = opt.tls()?;
    let mut answers = Vec::with_capacity(servers.len());
    for s in &servers {
        let answer = match AdminConn::connect(s, tls.as_ref()).await {
            Ok(mut conn) => match conn.command(line).await {
                Ok(reply) => read_reply(&reply),
                Err(e) => Err(format!("{e:#}")),
            },
            Err(e) => Err(format!("{e:#}")),
        };
        answers.push((s.to_string(), answer));
    }
    Ok(answers)
}

/// `OK [value]` gives the value; `ERR CODE text+with+pluses` gives the
/// code and text readable. A server that does not know the command
/// (gearmand) answers UNKNOWN_COMMAND, said plainly.
fn read_reply(reply: &str) -> Result<String, String> {
    use sprocket_client::Error;
    sprocket_client::admin::read_ok(reply).map_err(|e| match e {
        Error::Server { code, .. } if code == "UNKNOWN_COMMAND" => {
            "the server does not know this command (it is sprocketd's own, not gearmand's)".into()
        }
        Error::Server { code, text } if text.is_empty() => code,
        Error::Server { code, text } => format!("{code} {text}"),
        other => other.to_string(),
    })
}

/// Admin lines are split on spaces: a name with a space cannot be sent.
pub(super) fn one_token(s: &str) -> anyhow::Result<&str> {
    Ok(sprocket_client::admin::word(s)?)
}

#[cfg(test)]
mod tests {
    use super::read_reply;

    #[test]
    fn replies_read_as_values_or_plain_errors() {
        assert_eq!(read_reply("OK\r\n"), Ok(String::new()));
        assert_eq!(read_reply("OK 3\n"), Ok("3".into()));
        assert_eq!(read_reply("ERR function not found\r\n"), Err("function not found".into()));
        assert_eq!(
            read_reply("ERR SETTING_NOT_SAVED paused+until+the+server+restarts\r\n"),
            Err("SETTING_NOT_SAVED paused until the server restarts".into())
        );
        assert!(read_reply("ERR UNKNOWN_COMMAND Unknown+server+commandpause\r\n")
            .is_err_and(|e| e.contains("sprocketd's own")));
    }
}
