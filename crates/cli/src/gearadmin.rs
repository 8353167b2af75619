//! Drop-in mode for gearadmin(1) 1.1.20: long options (with unique-prefix
//! abbreviations, `--opt=value` or `--opt value`), several operations per
//! run executed in gearadmin's order (the reverse of its option table),
//! `OK x` printed as `x`, `ERR x` as `Error: x` on stderr with exit status 0.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use sprocket_client::ServerAddr;

use crate::admin::AdminConn;
use crate::output::{err_raw, out_raw as out};
use crate::tls::TlsFiles;

/// gearadmin's operations in its option-table order; they run in reverse.
const OPERATIONS: &[(&str, Option<&str>)] = &[
    ("status", None),
    ("priority-status", None),
    ("workers", None),
    ("server-version", None),
    ("server-verbose", None),
    ("cancel-job", Some("cancel job")),
    ("show-unique-jobs", None),
    ("show-jobs", None),
    ("drop-function", Some("drop function")),
    ("create-function", Some("create function")),
    ("getpid", None),
];

/// Long options that take a value.
const WITH_VALUE: &[&str] = &["host", "port", "cancel-job", "drop-function", "create-function"];
/// Every long option.
const LONG: &[&str] = &[
    "help",
    "host",
    "port",
    "server-version",
    "server-verbose",
    "create-function",
    "cancel-job",
    "drop-function",
    "show-unique-jobs",
    "show-jobs",
    "getpid",
    "status",
    "priority-status",
    "workers",
    "ssl",
];

fn help() -> String {
    "Options:\n\
  --help                         show this help\n\
  -h [ --host ] arg (=localhost) job server host\n\
  -p [ --port ] arg (=4730)      job server port\n\
  --server-version               print the server's version\n\
  --server-verbose               print the server's log level\n\
  --create-function arg          create a function\n\
  --cancel-job arg               cancel a queued job by handle\n\
  --drop-function arg            drop a function\n\
  --show-unique-jobs             list the unique ids of all jobs\n\
  --show-jobs                    list all jobs\n\
  --getpid                       print the server's process id\n\
  --status                       per-function totals\n\
  --priority-status              queued jobs per priority\n\
  --workers                      list connections and their functions\n\
  -S [ --ssl ]                   TLS; files from GEARMAND_CA_CERTIFICATE,\n\
                                 GEARMAN_CLIENT_PEM, GEARMAN_CLIENT_KEY\n\n"
        .to_string()
}

/// A usage error: on standard output, as gearadmin prints it (only the
/// `Error: …` lines of failed operations go to standard error).
fn fail(msg: &str) -> i32 {
    out(format!("gearadmin : {msg}\n\n{}", help()).as_bytes());
    1
}

/// The text command for an operation; `value` (a handle or function
/// name) is sent as the bytes given.
fn wire(op: &str, value: &[u8]) -> Vec<u8> {
    let with = |cmd: &str| [cmd.as_bytes(), b" ", value].concat();
    match op {
        "status" => b"status".to_vec(),
        "priority-status" => b"prioritystatus".to_vec(),
        "workers" => b"workers".to_vec(),
        "server-version" => b"version".to_vec(),
        "server-verbose" => b"verbose".to_vec(),
        "cancel-job" => with("cancel job"),
        "show-unique-jobs" => b"show unique jobs".to_vec(),
        "show-jobs" => b"show jobs".to_vec(),
        "drop-function" => with("drop function"),
        "create-function" => with("create function"),
        _ => b"getpid".to_vec(),
    }
}

/// Resolves a possibly abbreviated long option name.
fn resolve(name: &str) -> Result<&'static str, String> {
    if let Some(exact) = LONG.iter().find(|l| **l == name) {
        return Ok(exact);
    }
    let matches: Vec<&&str> = LONG.iter().filter(|l| l.starts_with(name)).collect();
    match matches.len() {
        1 => Ok(matches[0]),
        0 => Err(format!("unrecognised option '--{name}'")),
        _ => Err(format!("option '--{name}' is ambiguous")),
    }
}

/// Runs gearadmin mode with the full argv; returns the exit status.
pub fn main(argv: &[OsString]) -> i32 {
    let args = argv.get(1..).unwrap_or(&[]);
    let mut host = "localhost".to_string();
    let mut port = "4730".to_string();
    let mut ssl = false;
    let mut seen: Vec<&'static str> = Vec::new();
    // Values are bytes: a function name or handle is sent as given.
    let mut ops: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        i += 1;
        let (name, inline): (&'static str, Option<Vec<u8>>) = if let Some(long) = arg.strip_prefix(b"--") {
            if long.is_empty() {
                break; // `--`: the rest are positional and ignored
            }
            let (n, v) = match long.iter().position(|&b| b == b'=') {
                Some(eq) => (&long[..eq], Some(long[eq + 1..].to_vec())),
                None => (long, None),
            };
            match resolve(&String::from_utf8_lossy(n)) {
                Ok(n) => (n, v),
                Err(e) => return fail(&e),
            }
        } else if let Some(short) = arg.strip_prefix(b"-").filter(|s| !s.is_empty()) {
            let (c, v) = short.split_at(1);
            let v = (!v.is_empty()).then(|| v.to_vec());
            match c {
                b"h" => ("host", v),
                b"p" => ("port", v),
                b"S" => ("ssl", None),
                _ => return fail(&format!("unrecognised option '-{}'", String::from_utf8_lossy(c))),
            }
        } else {
            continue; // positional arguments are ignored
        };
        let value = if WITH_VALUE.contains(&name) {
            match inline {
                Some(v) => v,
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].as_bytes().to_vec()
                }
                None => return fail(&format!("the required argument for option '--{name}' is missing")),
            }
        } else {
            Vec::new()
        };
        if seen.contains(&name) {
            return fail(&format!("option '--{name}' cannot be specified more than once"));
        }
        seen.push(name);
        match name {
            "help" => {
                out(help().as_bytes());
                return 0;
            }
            "host" => host = String::from_utf8_lossy(&value).into_owned(),
            "port" => port = String::from_utf8_lossy(&value).into_owned(),
            "ssl" => ssl = true,
            op => ops.push((op, value)),
        }
    }
    if ops.is_empty() {
        out(format!("No option execution operation given.\n\n{}", help()).as_bytes());
        return 1;
    }
    // Execution order: the reverse of gearadmin's option table.
    ops.sort_by_key(|(op, _)| std::cmp::Reverse(OPERATIONS.iter().position(|(o, _)| o == op)));
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            err_raw(format!("Error: {e}\n").as_bytes());
            return 1;
        }
    };
    let target = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let server = match target.parse::<ServerAddr>() {
        Ok(s) => s,
        Err(e) => {
            err_raw(format!("Error: Error connecting to {host}: {e}\n").as_bytes());
            return 1;
        }
    };
    // -S: TLS with the files libgearman's variables name (the server's
    // certificate is verified, which libgearman does not do).
    let tls = if ssl {
        match TlsFiles::from_environment().load() {
            Ok(t) => Some(t),
            Err(e) => {
                err_raw(format!("Error: {e}\n").as_bytes());
                return 1;
            }
        }
    } else {
        None
    };
    rt.block_on(async move {
        let mut conn = match AdminConn::connect(&server, tls.as_ref()).await {
            Ok(c) => c,
            Err(e) => {
                err_raw(format!("Error: Error connecting to {host}: {e:#}\n").as_bytes());
                return 1;
            }
        };
        for (op, value) in ops {
            match conn.command_bytes(&wire(op, &value)).await {
                Ok(reply) => print_reply(&reply),
                Err(e) => {
                    err_raw(format!("Error: {e:#}\n").as_bytes());
                    return 1;
                }
            }
        }
        0
    })
}

/// Prints a reply the way gearadmin does, bytes as the server sent them.
fn print_reply(reply: &[u8]) {
    // gearadmin strips "OK " and "ERR " but keeps the rest of the line as
    // sent, carriage return included.
    let first = match reply.iter().position(|&b| b == b'\n') {
        Some(nl) => &reply[..=nl],
        None => reply,
    };
    let bare = first.strip_suffix(b"\n").unwrap_or(first);
    let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
    if bare == b"OK" {
        out(b"OK\n");
    } else if let Some(rest) = first.strip_prefix(b"OK ") {
        out(rest);
    } else if let Some(rest) = first.strip_prefix(b"ERR ") {
        err_raw(&[&b"Error: "[..], rest].concat());
    } else {
        out(&crlf_to_lf(reply));
    }
}

/// `\r\n` line ends as `\n`.
fn crlf_to_lf(data: &[u8]) -> Vec<u8> {
    let mut text = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'\r' && tail.first() == Some(&b'\n') {
            text.push(b'\n');
            rest = &tail[1..];
        } else {
            text.push(b);
            rest = tail;
        }
    }
    text
}
