//! The admin text protocol (gearmand 1.1.20 `text.cc` semantics).
//!
//! Lines are split on single spaces (runs collapse, a leading space yields
//! an empty command name); at most five tokens are allowed; command names
//! are case-insensitive. Reply line endings follow gearmand exactly:
//! listings and `OK <value>` end in `\n`, a bare `OK` and every `ERR` end
//! in `\r\n`.

use bytes::Bytes;

/// Most tokens gearmand accepts on one admin line; one more closes the
/// connection.
pub const MAX_TOKENS: usize = 5;

/// A parsed admin command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// `workers`: every connection with its functions.
    Workers,
    /// `status`: per function, jobs in all, running, and workers.
    Status,
    /// `prioritystatus`: per function, jobs queued per priority, and workers.
    PriorityStatus,
    /// `show jobs`: every job's handle, attempts and flags.
    ShowJobs,
    /// `show unique jobs`: every job's unique id.
    ShowUniqueJobs,
    /// `cancel job HANDLE`.
    CancelJob(Bytes),
    /// `create function NAME`.
    CreateFunction(Bytes),
    /// `drop function NAME`.
    DropFunction(Bytes),
    /// `maxqueue f [n | high normal [low]]`; limits per priority
    /// (high, normal, low), 0 meaning none.
    MaxQueue {
        /// The function's name.
        function: Bytes,
        /// Limits for high, normal and low.
        limits: [u32; 3],
    },
    /// `getpid`: the server's process id.
    GetPid,
    /// `verbose`: the server's log level.
    Verbose,
    /// `version`: the server's version.
    Version,
    /// `shutdown [graceful]`.
    Shutdown {
        /// Stop accepting and end once no jobs are left.
        graceful: bool,
    },
    /// `record HANDLE`: the job's record (sprocketd's own command).
    Record(Bytes),
    /// `records FUNCTION [STATE] [LIMIT]`: ended records of a function,
    /// newest first (sprocketd's own command). The state and limit are
    /// checked by the server, which knows the states and its limits.
    Records {
        /// The function.
        function: Bytes,
        /// A state name, when given.
        state: Option<Bytes>,
        /// A limit, when given (still text).
        limit: Option<Bytes>,
    },
    /// `pause FUNCTION`: its jobs queue but are not handed out
    /// (sprocketd's own command).
    Pause(Bytes),
    /// `resume FUNCTION`: undoes `pause` (sprocketd's own command).
    Resume(Bytes),
    /// `purge queued FUNCTION`: ends the function's queued and scheduled
    /// jobs, answering how many (sprocketd's own command).
    PurgeQueued(Bytes),
    /// `policy`: the per-function policies in force (sprocketd's own
    /// command).
    Policy,
    /// `policy set PATTERN JSON`: an operator's policy for a pattern; the
    /// JSON is the rest of the line and may hold spaces (sprocketd's own
    /// command).
    PolicySet {
        /// A function name or glob.
        pattern: Bytes,
        /// The policy, as JSON.
        json: Bytes,
    },
    /// `policy clear PATTERN`: removes an operator's policy (sprocketd's
    /// own command).
    PolicyClear(Bytes),
    /// `requeue HANDLE`: a dead job runs again, a fresh series of attempts
    /// (sprocketd's own command).
    Requeue(Bytes),
    /// `requeue function NAME`: every dead job of a function runs again
    /// (sprocketd's own command).
    RequeueFunction(Bytes),
    /// `records {JSON}`: ended records matching a JSON filter, the one
    /// `sprocket.records` takes (sprocketd's own command). The rest of the
    /// line is the filter, spaces and all, checked by the server.
    RecordsJson(Bytes),
    /// `dead [{JSON}]`: dead jobs' records, as `records` with the state
    /// dead (sprocketd's own command); the filter as for `records {JSON}`.
    Dead(Option<Bytes>),
    /// `purge dead [FUNCTION]`: deletes the records of dead jobs (of one
    /// function, or all), answering how many (sprocketd's own command).
    PurgeDead(Option<Bytes>),
    /// `cron list|add JSON|remove NAME|run NAME`: recurring jobs
    /// (sprocketd's own command).
    Cron(CronCommand),
}

/// The forms of the admin `cron` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronCommand {
    /// `cron list`: every entry with its next run.
    List,
    /// `cron add {JSON}`: a run-time entry; the rest of the line, as sent
    /// (the engine reads the JSON and names what is wrong with it).
    Add(Bytes),
    /// `cron remove NAME`: a run-time entry goes.
    Remove(Bytes),
    /// `cron run NAME`: one job for the entry now.
    Run(Bytes),
}

/// What the server should do with an admin line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminParse {
    /// A command to carry out.
    Command(AdminCommand),
    /// Reply with this error line, connection stays open.
    Error(Bytes),
    /// More than five tokens: gearmand closes the connection silently.
    Close,
}

fn atoi(b: &[u8]) -> i64 {
    let s = b.strip_prefix(b"-");
    let digits = s.unwrap_or(b);
    let mut n: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            break;
        }
        n = n.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if s.is_some() {
        -n
    } else {
        n
    }
}

fn limit(b: &[u8]) -> u32 {
    u32::try_from(atoi(b).max(0)).unwrap_or(u32::MAX)
}

/// Splits a line into tokens the way gearmand does.
pub fn tokenize(line: &[u8]) -> Vec<&[u8]> {
    let mut tokens = Vec::new();
    if line.first() == Some(&b' ') {
        tokens.push(&line[..0]);
    }
    tokens.extend(line.split(|&b| b == b' ').filter(|t| !t.is_empty()));
    tokens
}

/// The JSON filter of `records {…}` or `dead {…}`: the rest of the line
/// after the command name when it starts with `{`. A JSON text may hold
/// spaces, so it is taken whole rather than split into tokens (these are
/// sprocketd's own commands; gearmand's token limit is for its own).
fn json_argument(line: &[u8]) -> Option<(&[u8], Bytes)> {
    let name_end = line.iter().position(|&b| b == b' ')?;
    let (name, rest) = line.split_at(name_end);
    let rest = rest.trim_ascii();
    if !rest.starts_with(b"{") || name.is_empty() {
        return None;
    }
    Some((name, Bytes::copy_from_slice(rest)))
}

/// Parses one admin line (without its line ending).
pub fn parse_line(line: &[u8]) -> AdminParse {
    // `policy set PATTERN JSON`: the JSON is the rest of the line, spaces
    // and all, so it is taken before the line is split into tokens.
    if let Some(cmd) = parse_policy_set(line) {
        return cmd;
    }
    if let Some((name, json)) = json_argument(line) {
        if name.eq_ignore_ascii_case(b"records") {
            return AdminParse::Command(AdminCommand::RecordsJson(json));
        }
        if name.eq_ignore_ascii_case(b"dead") {
            return AdminParse::Command(AdminCommand::Dead(Some(json)));
        }
    }
    // `cron add` carries a JSON object with spaces of its own, so it is
    // read before the line is cut into (at most five) tokens.
    if let Some(parsed) = parse_cron(line) {
        return parsed;
    }
    let tokens = tokenize(line);
    if tokens.len() > MAX_TOKENS {
        return AdminParse::Close;
    }
    let name = tokens.first().copied().unwrap_or(b"");
    let lower = name.to_ascii_lowercase();
    let arg = |i: usize| -> Option<Bytes> { tokens.get(i).map(|t| Bytes::copy_from_slice(t)) };
    let is = |i: usize, word: &str| tokens.get(i).is_some_and(|t| t.eq_ignore_ascii_case(word.as_bytes()));
    let cmd = match lower.as_slice() {
        b"workers" => AdminCommand::Workers,
        b"status" => AdminCommand::Status,
        b"prioritystatus" => AdminCommand::PriorityStatus,
        b"getpid" => AdminCommand::GetPid,
        b"verbose" => AdminCommand::Verbose,
        b"version" => AdminCommand::Version,
        // Anything but `shutdown` or `shutdown graceful` is refused (as the
        // gearmand versions that had the command did): a mistyped
        // `shutdown gracefull` must not stop the server at once.
        b"shutdown" => match tokens.len() {
            1 => AdminCommand::Shutdown { graceful: false },
            2 if is(1, "graceful") => AdminCommand::Shutdown { graceful: true },
            _ => return AdminParse::Error(invalid_arguments(name)),
        },
        b"show" => {
            if tokens.len() < 2 {
                return AdminParse::Error(unknown_command(name));
            }
            if is(1, "jobs") && tokens.len() == 2 {
                AdminCommand::ShowJobs
            } else if is(1, "unique") && is(2, "jobs") && tokens.len() == 3 {
                AdminCommand::ShowUniqueJobs
            } else {
                return AdminParse::Error(Bytes::from_static(b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n"));
            }
        }
        b"cancel" => {
            if tokens.len() < 3 {
                return AdminParse::Error(unknown_command(name));
            }
            match (is(1, "job"), arg(2)) {
                (true, Some(handle)) if tokens.len() == 3 => AdminCommand::CancelJob(handle),
                _ => return AdminParse::Error(Bytes::from_static(b"ERR UNKNOWN_ERROR\r\n")),
            }
        }
        b"create" | b"drop" => match (tokens.len(), is(1, "function"), arg(2)) {
            (3, true, Some(f)) if lower == b"create" => AdminCommand::CreateFunction(f),
            (3, true, Some(f)) => AdminCommand::DropFunction(f),
            _ => return AdminParse::Error(invalid_arguments(name)),
        },
        b"maxqueue" => {
            let Some(function) = arg(1) else {
                return AdminParse::Error(invalid_arguments(name));
            };
            let limits = match tokens.len() {
                2 => [0, 0, 0],
                3 => {
                    let n = limit(tokens[2]);
                    [n, n, n]
                }
                4 => [limit(tokens[2]), limit(tokens[3]), 0],
                _ => [limit(tokens[2]), limit(tokens[3]), limit(tokens[4])],
            };
            AdminCommand::MaxQueue { function, limits }
        }
        b"record" => match (tokens.len(), arg(1)) {
            (2, Some(handle)) => AdminCommand::Record(handle),
            _ => return AdminParse::Error(invalid_arguments(name)),
        },
        b"records" => {
            let Some(function) = arg(1).filter(|_| tokens.len() <= 4) else {
                return AdminParse::Error(invalid_arguments(name));
            };
            // `records f 20` reads as a limit, `records f failed` as a state.
            let (state, limit) = match (arg(2), arg(3)) {
                (Some(a), None) if a.iter().all(u8::is_ascii_digit) => (None, Some(a)),
                (a, b) => (a, b),
            };
            AdminCommand::Records { function, state, limit }
        }
        b"pause" | b"resume" => match (tokens.len(), arg(1)) {
            (2, Some(f)) if lower == b"pause" => AdminCommand::Pause(f),
            (2, Some(f)) => AdminCommand::Resume(f),
            _ => return AdminParse::Error(invalid_arguments(name)),
        },
        // `purge queued f` and `purge dead [f]`: the word says which list.
        b"purge" => match (tokens.len(), is(1, "queued"), is(1, "dead"), arg(2)) {
            (3, true, _, Some(f)) => AdminCommand::PurgeQueued(f),
            (2, _, true, None) => AdminCommand::PurgeDead(None),
            (3, _, true, Some(f)) => AdminCommand::PurgeDead(Some(f)),
            _ => return AdminParse::Error(invalid_arguments(name)),
        },
        b"policy" => match (tokens.len(), arg(2)) {
            (1, _) => AdminCommand::Policy,
            (3, Some(pattern)) if is(1, "clear") => AdminCommand::PolicyClear(pattern),
            _ => return AdminParse::Error(invalid_arguments(name)),
        },
        b"requeue" => match (tokens.len(), arg(1), arg(2)) {
            (2, Some(handle), _) => AdminCommand::Requeue(handle),
            (3, _, Some(function)) if is(1, "function") => AdminCommand::RequeueFunction(function),
            _ => return AdminParse::Error(invalid_arguments(name)),
        },
        b"dead" if tokens.len() == 1 => AdminCommand::Dead(None),
        b"dead" => return AdminParse::Error(invalid_arguments(name)),
        _ => return AdminParse::Error(unknown_command(name)),
    };
    AdminParse::Command(cmd)
}

/// `policy set PATTERN JSON`, when the line is one.
fn parse_policy_set(line: &[u8]) -> Option<AdminParse> {
    let mut words = line.splitn(3, |&b| b == b' ');
    let (first, second) = (words.next()?, words.next()?);
    if !first.eq_ignore_ascii_case(b"policy") || !second.eq_ignore_ascii_case(b"set") {
        return None;
    }
    let rest = words.next().unwrap_or(b"").trim_ascii_start();
    let split = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let (pattern, json) = rest.split_at(split);
    let json = json.trim_ascii();
    if pattern.is_empty() || json.is_empty() {
        return Some(AdminParse::Error(invalid_arguments(first)));
    }
    Some(AdminParse::Command(AdminCommand::PolicySet {
        pattern: Bytes::copy_from_slice(pattern),
        json: Bytes::copy_from_slice(json),
    }))
}

/// `cron …`, or `None` for a line that is not a cron command.
fn parse_cron(line: &[u8]) -> Option<AdminParse> {
    fn word(text: &[u8]) -> (Vec<u8>, &[u8]) {
        let text = text.trim_ascii_start();
        let end = text.iter().position(|b| *b == b' ').unwrap_or(text.len());
        (text[..end].to_ascii_lowercase(), &text[end..])
    }
    if line.first() == Some(&b' ') {
        return None;
    }
    let (name, rest) = word(line);
    if name != b"cron" {
        return None;
    }
    let (sub, rest) = word(rest);
    let rest = rest.trim_ascii();
    let one_name = |rest: &[u8]| -> Option<Bytes> {
        (!rest.is_empty() && !rest.contains(&b' ')).then(|| Bytes::copy_from_slice(rest))
    };
    let cmd = match sub.as_slice() {
        b"list" if rest.is_empty() => CronCommand::List,
        b"add" if !rest.is_empty() => CronCommand::Add(Bytes::copy_from_slice(rest)),
        b"remove" => match one_name(rest) {
            Some(n) => CronCommand::Remove(n),
            None => return Some(AdminParse::Error(invalid_arguments(b"cron"))),
        },
        b"run" => match one_name(rest) {
            Some(n) => CronCommand::Run(n),
            None => return Some(AdminParse::Error(invalid_arguments(b"cron"))),
        },
        _ => return Some(AdminParse::Error(invalid_arguments(b"cron"))),
    };
    Some(AdminParse::Command(AdminCommand::Cron(cmd)))
}

/// `ERR UNKNOWN_COMMAND Unknown+server+command<cmd>\r\n` (name glued on, as gearmand does).
pub fn unknown_command(name: &[u8]) -> Bytes {
    let mut v = b"ERR UNKNOWN_COMMAND Unknown+server+command".to_vec();
    v.extend_from_slice(name);
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

/// `ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+<cmd>\r\n`.
pub fn invalid_arguments(name: &[u8]) -> Bytes {
    let mut v = b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+".to_vec();
    v.extend_from_slice(name);
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

/// The bare success reply.
pub const OK: &[u8] = b"OK\r\n";
/// `cancel job` for an unknown handle.
pub const ERR_UNKNOWN_JOB: &[u8] = b"ERR UNKNOWN_JOB\r\n";
/// `drop function` while workers or running jobs remain.
pub const ERR_FUNCTION_BUSY: &[u8] = b"ERR there are still connected workers or executing clients\r\n";
/// `drop function` for a name that does not exist.
pub const ERR_FUNCTION_NOT_FOUND: &[u8] = b"ERR function not found\r\n";

/// `pause` of one of the server's own `sprocket.*` functions.
pub const ERR_RESERVED_FUNCTION: &[u8] = b"ERR RESERVED_FUNCTION sprocket.*+functions+are+the+server's+own\r\n";

/// `OK <value>\n`, as for `getpid`, `version` and `verbose`.
pub fn ok_value(value: &str) -> Bytes {
    Bytes::from(format!("OK {value}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> AdminCommand {
        match parse_line(line.as_bytes()) {
            AdminParse::Command(c) => c,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn err(line: &str) -> String {
        match parse_line(line.as_bytes()) {
            AdminParse::Error(e) => String::from_utf8_lossy(&e).into_owned(),
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn commands_are_case_insensitive_and_spaces_collapse() {
        assert_eq!(cmd("STATUS"), AdminCommand::Status);
        assert_eq!(cmd("show   unique  jobs "), AdminCommand::ShowUniqueJobs);
        assert_eq!(cmd("cancel job H:x:1"), AdminCommand::CancelJob(Bytes::from_static(b"H:x:1")));
    }

    #[test]
    fn error_lines_match_gearmand() {
        assert_eq!(err("foo"), "ERR UNKNOWN_COMMAND Unknown+server+commandfoo\r\n");
        assert_eq!(err(" status"), "ERR UNKNOWN_COMMAND Unknown+server+command\r\n");
        assert_eq!(err(""), "ERR UNKNOWN_COMMAND Unknown+server+command\r\n");
        assert_eq!(err("show"), "ERR UNKNOWN_COMMAND Unknown+server+commandshow\r\n");
        assert_eq!(err("show foo"), "ERR UNKNOWN_SHOW_ARGUMENTS\r\n");
        assert_eq!(err("cancel foo bar"), "ERR UNKNOWN_ERROR\r\n");
        assert_eq!(
            err("maxqueue"),
            "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n"
        );
        assert_eq!(
            err("create function"),
            "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+create\r\n"
        );
    }

    #[test]
    fn shutdown_takes_only_graceful() {
        assert_eq!(cmd("shutdown"), AdminCommand::Shutdown { graceful: false });
        assert_eq!(cmd("SHUTDOWN Graceful"), AdminCommand::Shutdown { graceful: true });
        let refused = "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+shutdown\r\n";
        assert_eq!(err("shutdown gracefull"), refused);
        assert_eq!(err("shutdown now"), refused);
        assert_eq!(err("shutdown graceful please"), refused);
    }

    #[test]
    fn six_tokens_close_the_connection() {
        assert_eq!(parse_line(b"a b c d e f"), AdminParse::Close);
        assert!(matches!(parse_line(b"a b c d e"), AdminParse::Error(_)));
    }

    #[test]
    fn maxqueue_forms() {
        let f = Bytes::from_static(b"f");
        assert_eq!(cmd("maxqueue f"), AdminCommand::MaxQueue { function: f.clone(), limits: [0, 0, 0] });
        assert_eq!(cmd("maxqueue f 5"), AdminCommand::MaxQueue { function: f.clone(), limits: [5, 5, 5] });
        assert_eq!(cmd("maxqueue f -3"), AdminCommand::MaxQueue { function: f.clone(), limits: [0, 0, 0] });
        assert_eq!(cmd("maxqueue f 1 2"), AdminCommand::MaxQueue { function: f.clone(), limits: [1, 2, 0] });
        assert_eq!(cmd("maxqueue f 1 2 3"), AdminCommand::MaxQueue { function: f, limits: [1, 2, 3] });
    }

    #[test]
    fn pause_resume_and_purge_take_one_function() {
        let f = Bytes::from_static(b"resize");
        assert_eq!(cmd("pause resize"), AdminCommand::Pause(f.clone()));
        assert_eq!(cmd("RESUME resize"), AdminCommand::Resume(f.clone()));
        assert_eq!(cmd("purge Queued resize"), AdminCommand::PurgeQueued(f.clone()));
        assert_eq!(cmd("policy"), AdminCommand::Policy);
        assert_eq!(
            cmd(r#"policy set resize_* {"max_attempts": 5, "dead_letter": true}"#),
            AdminCommand::PolicySet {
                pattern: Bytes::from_static(b"resize_*"),
                json: Bytes::from_static(br#"{"max_attempts": 5, "dead_letter": true}"#)
            }
        );
        assert_eq!(cmd("policy clear resize_*"), AdminCommand::PolicyClear(Bytes::from_static(b"resize_*")));
        assert_eq!(cmd("requeue H:h:7"), AdminCommand::Requeue(Bytes::from_static(b"H:h:7")));
        assert_eq!(cmd("requeue function resize"), AdminCommand::RequeueFunction(f));
        assert!(matches!(parse_line(b"policy set onlypattern"), AdminParse::Error(_)));
        assert!(matches!(parse_line(b"policy bogus x"), AdminParse::Error(_)));
        let incomplete =
            |c: &str| format!("ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+{c}\r\n");
        assert_eq!(err("pause"), incomplete("pause"));
        assert_eq!(err("resume a b"), incomplete("resume"));
        assert_eq!(err("purge resize"), incomplete("purge"));
        assert_eq!(err("purge dead a b"), incomplete("purge"));
        assert_eq!(err("purge queued"), incomplete("purge"));
    }

    #[test]
    fn dead_jobs_are_listed_and_purged() {
        let f = Bytes::from_static(b"resize");
        assert_eq!(cmd("purge dead resize"), AdminCommand::PurgeDead(Some(f)));
        assert_eq!(cmd("PURGE DEAD"), AdminCommand::PurgeDead(None));
        assert_eq!(cmd("dead"), AdminCommand::Dead(None));
        // A JSON filter is the rest of the line, spaces and all, beyond
        // the five tokens of gearmand's commands.
        let json = r#"{"function": "resize", "error": "disk is full right now"}"#;
        assert_eq!(cmd(&format!("dead  {json} ")), AdminCommand::Dead(Some(Bytes::from(json))));
        assert_eq!(cmd(&format!("Records {json}")), AdminCommand::RecordsJson(Bytes::from(json)));
        assert_eq!(
            cmd("records resize failed 5"),
            AdminCommand::Records {
                function: Bytes::from_static(b"resize"),
                state: Some(Bytes::from_static(b"failed")),
                limit: Some(Bytes::from_static(b"5")),
            }
        );
        let incomplete = "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+dead\r\n";
        assert_eq!(err("dead resize"), incomplete);
    }

    #[test]
    fn cron_add_keeps_the_rest_of_the_line_with_its_spaces() {
        assert_eq!(cmd("cron list"), AdminCommand::Cron(CronCommand::List));
        assert_eq!(cmd("CRON  run  nightly "), AdminCommand::Cron(CronCommand::Run(Bytes::from_static(b"nightly"))));
        assert_eq!(cmd("cron remove a"), AdminCommand::Cron(CronCommand::Remove(Bytes::from_static(b"a"))));
        let json = r#"{"name": "a", "schedule": "0 3 * * *", "function": "f", "payload": "x y z"}"#;
        assert_eq!(
            cmd(&format!("cron add {json}")),
            AdminCommand::Cron(CronCommand::Add(Bytes::copy_from_slice(json.as_bytes())))
        );
        let incomplete = "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+cron\r\n";
        for bad in ["cron", "cron add", "cron remove", "cron run a b", "cron list x", "cron frob"] {
            assert_eq!(err(bad), incomplete, "{bad}");
        }
        // Not a cron command: the usual rules.
        assert_eq!(parse_line(b"crony a b c d e f"), AdminParse::Close);
    }

    #[test]
    fn create_function_keeps_the_whole_name() {
        assert_eq!(cmd("create function abc"), AdminCommand::CreateFunction(Bytes::from_static(b"abc")));
    }
}
