//! The admin text protocol (`status`, `workers`, …, and sprocketd's own
//! operator commands) over one connection: [`Admin`]. The `sprocket` and
//! `gearadmin` commands use it, and so can programs that operate a server:
//! pause a function, requeue or purge its dead jobs, set a retry policy.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::{ServerAddr, ServerStream, TlsConfig};

/// How long to wait for a connection or a reply.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Commands whose reply is a listing ending with a `.` line.
pub fn is_listing(command: &str) -> bool {
    let c = command.trim().to_ascii_lowercase();
    c == "status"
        || c == "prioritystatus"
        || c == "workers"
        || c == "show jobs"
        || c == "show unique jobs"
        || c == "history"
        || c == "policy"
        || c.split_ascii_whitespace().eq(["cron", "list"])
}

/// One admin connection to a job server.
///
/// ```no_run
/// # async fn demo() -> sprocket_client::Result<()> {
/// use sprocket_client::Admin;
/// let mut admin = Admin::connect(&"127.0.0.1:4730".parse()?, None).await?;
/// admin.pause("resize").await?;
/// let requeued = admin.requeue_function("resize").await?;
/// admin.resume("resize").await?;
/// # let _ = requeued; Ok(()) }
/// ```
pub struct Admin {
    stream: ServerStream,
    addr: String,
    buf: Vec<u8>,
}

impl Admin {
    /// Connects to `server`, over TLS when `tls` is given.
    pub async fn connect(server: &ServerAddr, tls: Option<&TlsConfig>) -> Result<Admin> {
        let stream = crate::connect(server, tls, ADMIN_TIMEOUT).await?;
        Ok(Admin { stream, addr: server.to_string(), buf: Vec::new() })
    }

    /// Sends one command line and returns the reply as text (see
    /// [`Admin::command_bytes`]).
    pub async fn command(&mut self, command: &str) -> Result<String> {
        let reply = self.command_bytes(command.as_bytes()).await?;
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    /// Sends one command line and returns the raw reply: everything up to
    /// and including the `.` line for listings, else the first line.
    /// Arguments (function names) and the reply are bytes, passed as they are.
    pub async fn command_bytes(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        let lost = |e: std::io::Error| Error::ConnectionLost { addr: self.addr.clone(), message: e.to_string() };
        let mut line = command.to_vec();
        line.extend_from_slice(b"\r\n");
        self.stream.write_all(&line).await.map_err(lost)?;
        // A no-op on TCP; a TLS session may hold the record until flushed.
        self.stream.flush().await.map_err(lost)?;
        let listing = is_listing(&String::from_utf8_lossy(command));
        let addr = self.addr.clone();
        let work = async {
            loop {
                if let Some(end) = reply_end(&self.buf, listing) {
                    return Ok(self.buf.drain(..end).collect());
                }
                let mut chunk = [0u8; 8192];
                let n = self
                    .stream
                    .read(&mut chunk)
                    .await
                    .map_err(|e| Error::ConnectionLost { addr: addr.clone(), message: e.to_string() })?;
                if n == 0 {
                    if self.buf.is_empty() {
                        return Err(Error::ConnectionLost {
                            addr: addr.clone(),
                            message: "the server closed the connection without replying".into(),
                        });
                    }
                    return Ok(std::mem::take(&mut self.buf));
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        };
        tokio::time::timeout(ADMIN_TIMEOUT, work)
            .await
            .map_err(|_| Error::Timeout { what: "an admin reply", after: ADMIN_TIMEOUT })?
    }

    /// Sends a command answered `OK [value]`; the value, or the server's
    /// `ERR CODE text` as [`Error::Server`].
    async fn ok(&mut self, command: &str) -> Result<String> {
        let reply = self.command(command).await?;
        read_ok(&reply)
    }

    /// `OK <n>` as a number.
    async fn count(&mut self, command: &str) -> Result<u64> {
        let value = self.ok(command).await?;
        value.parse().map_err(|_| Error::Protocol(format!("`{command}` answered {value:?}, not a count")))
    }

    /// Stops handing out `function`'s jobs (they keep queueing; sprocketd
    /// keeps the pause across restarts).
    pub async fn pause(&mut self, function: &str) -> Result<()> {
        self.ok(&format!("pause {}", word(function)?)).await.map(drop)
    }

    /// Hands out a paused function's jobs again.
    pub async fn resume(&mut self, function: &str) -> Result<()> {
        self.ok(&format!("resume {}", word(function)?)).await.map(drop)
    }

    /// Removes `function`'s queued jobs; how many.
    pub async fn purge_queued(&mut self, function: &str) -> Result<u64> {
        self.count(&format!("purge queued {}", word(function)?)).await
    }

    /// Deletes dead jobs (of `function`, or all); how many.
    pub async fn purge_dead(&mut self, function: Option<&str>) -> Result<u64> {
        match function {
            Some(f) => self.count(&format!("purge dead {}", word(f)?)).await,
            None => self.count("purge dead").await,
        }
    }

    /// Makes the dead job `handle` run again, a fresh series of attempts
    /// (durable when this returns).
    pub async fn requeue(&mut self, handle: &str) -> Result<()> {
        self.count(&format!("requeue {}", word(handle)?)).await.map(drop)
    }

    /// Makes every dead job of `function` run again; how many.
    pub async fn requeue_function(&mut self, function: &str) -> Result<u64> {
        self.count(&format!("requeue function {}", word(function)?)).await
    }

    /// Sets the retry policy of a function name or glob, as the policy
    /// file's keys in JSON (`{"max_attempts": 5, "dead_letter": true}`).
    pub async fn set_policy(&mut self, pattern: &str, policy_json: &str) -> Result<()> {
        if policy_json.contains(['\r', '\n']) {
            return Err(Error::InvalidArgument("the policy JSON must be on one line".into()));
        }
        self.ok(&format!("policy set {} {policy_json}", word(pattern)?)).await.map(drop)
    }

    /// Removes a policy set at run time.
    pub async fn clear_policy(&mut self, pattern: &str) -> Result<()> {
        self.ok(&format!("policy clear {}", word(pattern)?)).await.map(drop)
    }

    /// The policies in force: (pattern, `file` or `runtime`, policy JSON).
    pub async fn policies(&mut self) -> Result<Vec<(String, String, String)>> {
        let reply = self.command("policy").await?;
        if reply.starts_with("ERR ") {
            return Err(read_ok(&reply).err().unwrap_or_else(|| Error::Protocol(reply.clone())));
        }
        let mut policies = Vec::new();
        for line in reply.lines().map(|l| l.trim_end_matches('\r')).take_while(|l| *l != ".") {
            let mut fields = line.splitn(3, '\t');
            match (fields.next(), fields.next(), fields.next()) {
                (Some(p), Some(s), Some(j)) => policies.push((p.to_string(), s.to_string(), j.to_string())),
                _ => return Err(Error::Protocol(format!("unexpected policy line {line:?}"))),
            }
        }
        Ok(policies)
    }

    /// Submits a run of cron entry `name` now; the job's handle.
    pub async fn run_cron(&mut self, name: &str) -> Result<String> {
        self.ok(&format!("cron run {}", word(name)?)).await
    }
}

/// `OK [value]` gives the value; `ERR CODE text+with+pluses` gives
/// [`Error::Server`] with the text readable.
pub fn read_ok(reply: &str) -> Result<String> {
    let first = reply.lines().next().unwrap_or("").trim_end_matches('\r');
    if first == "OK" {
        return Ok(String::new());
    }
    if let Some(value) = first.strip_prefix("OK ") {
        return Ok(value.trim().to_string());
    }
    match first.strip_prefix("ERR ") {
        Some(err) => {
            let (code, text) = err.split_once(' ').unwrap_or((err, ""));
            Err(Error::Server { code: code.to_string(), text: text.replace('+', " ") })
        }
        None => Err(Error::Protocol(format!("unexpected admin reply {first:?}"))),
    }
}

/// One word of an admin line (a function name, a handle): admin lines are
/// split on spaces, so a word with one cannot be sent.
pub fn word(s: &str) -> Result<&str> {
    if s.is_empty() || s.contains([' ', '\r', '\n', '\t']) {
        return Err(Error::InvalidArgument(format!(
            "{s:?} cannot be sent on an admin line (empty, or contains a space, tab or newline)"
        )));
    }
    Ok(s)
}

/// Where a complete reply ends in `buf`, if it is complete.
fn reply_end(buf: &[u8], listing: bool) -> Option<usize> {
    let first_nl = buf.iter().position(|&b| b == b'\n')?;
    // An error ends any reply, listings included.
    if !listing || buf.starts_with(b"ERR") {
        return Some(first_nl + 1);
    }
    if buf.starts_with(b".\n") || buf.starts_with(b".\r\n") {
        return Some(if buf[1] == b'\n' { 2 } else { 3 });
    }
    let mut start = 0;
    while let Some(rel) = buf[start..].iter().position(|&b| b == b'\n') {
        let end = start + rel + 1;
        let line = &buf[start..end];
        if line == b".\n" || line == b".\r\n" {
            return Some(end);
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_end_at_their_line_or_their_dot() {
        assert_eq!(reply_end(b"OK\r\nrest", false), Some(4));
        assert_eq!(reply_end(b"a\t1\n.\nmore", true), Some(6));
        assert_eq!(reply_end(b"a\t1\n", true), None);
        assert_eq!(reply_end(b"ERR X y\r\n", true), Some(9));
        assert_eq!(reply_end(b"OK 1.1\n", false), Some(7));
        assert_eq!(reply_end(b".\n", true), Some(2));
        assert!(is_listing(" Policy ") && is_listing("cron  list") && !is_listing("cron run x"));
    }

    #[test]
    fn ok_values_and_errors_are_read() {
        assert_eq!(read_ok("OK 3\n").unwrap(), "3");
        assert_eq!(read_ok("OK\r\n").unwrap(), "");
        match read_ok("ERR NOT_DEAD the+job+is+queued,+not+dead\r\n") {
            Err(Error::Server { code, text }) => {
                assert_eq!((code.as_str(), text.as_str()), ("NOT_DEAD", "the job is queued, not dead"))
            }
            other => panic!("{other:?}"),
        }
        assert!(word("a b").is_err() && word("").is_err() && word("resize_*").is_ok());
    }
}
