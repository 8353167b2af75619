//! Requeueing a dead job over HTTP. The web port speaks the admin text
//! protocol to the server's own Gearman port (as job submission does), so
//! that the answer comes from the engine's own `requeue` command: it is
//! sent only once the job and its record are durable, and it covers dead
//! jobs whose records are only in the store.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// How long the engine may take to answer (a store write included).
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// The longest answer line read; the engine's lines are far shorter.
const MAX_LINE: u64 = 4096;

/// What the engine answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `OK <n>`: how many jobs were requeued.
    Requeued(u64),
    /// `ERR <CODE> <text>`, with the text's `+` turned back into spaces.
    Refused { code: String, text: String },
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequeueError {
    #[error("cannot reach the server's Gearman port {addr}: {source}")]
    Unreachable { addr: SocketAddr, source: std::io::Error },
    #[error("the server did not answer the requeue in time")]
    NoAnswer,
    #[error("the server's answer was not understood: {0:?}")]
    Garbled(String),
}

/// Sends `command` (`requeue HANDLE` or `requeue function NAME`) and reads
/// its one-line answer.
pub(crate) async fn requeue(
    addr: SocketAddr,
    command: &[u8],
    on_behalf: (Option<&crate::acl::WebAclHandle>, &crate::acl::Caller),
) -> Result<Answer, RequeueError> {
    let exchange = async {
        let (mut stream, _vouch) = crate::acl::connect_on_behalf(addr, on_behalf.0, on_behalf.1)
            .await
            .map_err(|source| RequeueError::Unreachable { addr, source })?;
        let mut line = command.to_vec();
        line.extend_from_slice(b"\r\n");
        stream.write_all(&line).await.map_err(|source| RequeueError::Unreachable { addr, source })?;
        let mut answer = String::new();
        let mut reader = BufReader::new(stream).take(MAX_LINE);
        reader.read_line(&mut answer).await.map_err(|_| RequeueError::NoAnswer)?;
        Ok::<String, RequeueError>(answer)
    };
    let answer = tokio::time::timeout(ANSWER_WITHIN, exchange).await.map_err(|_| RequeueError::NoAnswer)??;
    parse(answer.trim_end())
}

fn parse(line: &str) -> Result<Answer, RequeueError> {
    if let Some(n) = line.strip_prefix("OK ") {
        return n.parse().map(Answer::Requeued).map_err(|_| RequeueError::Garbled(line.to_owned()));
    }
    if let Some(rest) = line.strip_prefix("ERR ") {
        let (code, text) = rest.split_once(' ').unwrap_or((rest, ""));
        return Ok(Answer::Refused { code: code.to_owned(), text: text.replace('+', " ") });
    }
    Err(RequeueError::Garbled(line.to_owned()))
}

/// True when `handle` can be sent on an admin line as it is: no spaces or
/// line breaks (which would split or end the command).
pub(crate) fn sendable(handle: &str) -> bool {
    !handle.is_empty() && !handle.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read() {
        assert_eq!(parse("OK 1").ok(), Some(Answer::Requeued(1)));
        assert_eq!(
            parse("ERR NOT_DEAD the+job+is+complete,+not+dead").ok(),
            Some(Answer::Refused { code: "NOT_DEAD".into(), text: "the job is complete, not dead".into() })
        );
        assert_eq!(
            parse("ERR UNKNOWN_JOB").ok(),
            Some(Answer::Refused { code: "UNKNOWN_JOB".into(), text: "".into() })
        );
        assert!(parse("hello").is_err());
    }

    #[test]
    fn handles_with_spaces_are_not_sendable() {
        assert!(sendable("H:host:1"));
        assert!(!sendable("a b"));
        assert!(!sendable(""));
        assert!(!sendable("a\r\nshutdown"));
    }
}
