//! Drop-in mode for gearadmin(1) 1.1.20: long options (with unique-prefix
//! abbreviations, `--opt=value` or `--opt value`), several operations per
//! run executed in gearadmin's order (the reverse of its option table),
//! `OK x` printed as `x`, `ERR x` as `Error: x` on stderr with exit status 0.

use crate::admin::AdminConn;
use crate::output::err_raw;

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
  -S [ --ssl ]                   SSL (not supported by Sprocket)\n\n"
        .to_string()
}

/// A usage error: on standard output, as gearadmin prints it (only the
/// `Error: …` lines of failed operations go to standard error).
fn fail(msg: &str) -> i32 {
    print!("gearadmin : {msg}\n\n{}", help());
    1
}

/// The text command for an operation.
fn wire(op: &str, value: &str) -> String {
    match op {
        "status" => "status".into(),
        "priority-status" => "prioritystatus".into(),
        "workers" => "workers".into(),
        "server-version" => "version".into(),
        "server-verbose" => "verbose".into(),
        "cancel-job" => format!("cancel job {value}"),
        "show-unique-jobs" => "show unique jobs".into(),
        "show-jobs" => "show jobs".into(),
        "drop-function" => format!("drop function {value}"),
        "create-function" => format!("create function {value}"),
        _ => "getpid".into(),
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
pub fn main(argv: &[String]) -> i32 {
    let args = argv.get(1..).unwrap_or(&[]);
    let mut host = "localhost".to_string();
    let mut port = "4730".to_string();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut ops: Vec<(&'static str, String)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let (name, inline): (&'static str, Option<String>) = if let Some(long) = arg.strip_prefix("--") {
            if long.is_empty() {
                break; // `--`: the rest are positional and ignored
            }
            let (n, v) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            match resolve(n) {
                Ok(n) => (n, v),
                Err(e) => return fail(&e),
            }
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let (c, v) = short.split_at(1);
            let v = (!v.is_empty()).then(|| v.to_string());
            match c {
                "h" => ("host", v),
                "p" => ("port", v),
                "S" => ("ssl", None),
                _ => return fail(&format!("unrecognised option '-{c}'")),
            }
        } else {
            continue; // positional arguments are ignored
        };
        let value = if WITH_VALUE.contains(&name) {
            match inline {
                Some(v) => v,
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => return fail(&format!("the required argument for option '--{name}' is missing")),
            }
        } else {
            String::new()
        };
        if seen.contains(&name) {
            return fail(&format!("option '--{name}' cannot be specified more than once"));
        }
        seen.push(name);
        match name {
            "help" => {
                print!("{}", help());
                return 0;
            }
            "host" => host = value,
            "port" => port = value,
            "ssl" => {
                err_raw(b"Error: SSL is not supported by Sprocket\n");
                return 1;
            }
            op => ops.push((op, value)),
        }
    }
    if ops.is_empty() {
        print!("No option execution operation given.\n\n{}", help());
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
    rt.block_on(async move {
        let mut conn = match AdminConn::connect(&target).await {
            Ok(c) => c,
            Err(e) => {
                err_raw(format!("Error: Error connecting to {host}: {e:#}\n").as_bytes());
                return 1;
            }
        };
        for (op, value) in ops {
            match conn.command(&wire(op, &value)).await {
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

/// Prints a reply the way gearadmin does.
fn print_reply(reply: &str) {
    // gearadmin strips "OK " and "ERR " but keeps the rest of the line as
    // sent, carriage return included.
    let first = reply.split_inclusive('\n').next().unwrap_or("");
    let bare = first.trim_end_matches('\n').trim_end_matches('\r');
    if bare == "OK" {
        println!("OK");
    } else if let Some(rest) = first.strip_prefix("OK ") {
        print!("{rest}");
    } else if let Some(rest) = first.strip_prefix("ERR ") {
        err_raw(format!("Error: {rest}").as_bytes());
    } else {
        print!("{}", reply.replace("\r\n", "\n"));
    }
}
