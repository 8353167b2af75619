//! Drop-in mode for gearman(1) 1.1.20: the same flags, output and exit
//! status (with the deliberate differences listed in docs/cli.md).

pub mod args;
mod client;
pub(crate) mod worker;

use crate::command::JobCommand;
use crate::output::err_raw;
use crate::tls::TlsFiles;

/// Runs gearman mode with the full argv; returns the exit status.
pub fn main(argv: &[std::ffi::OsString]) -> i32 {
    let rest = argv.get(1..).unwrap_or(&[]);
    // gearman names itself by argv[0] in its usage errors.
    let name = argv.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_else(|| "gearman".into());
    let a = match args::parse(rest) {
        Ok(a) => a,
        Err(args::UsageError(msg)) => return usage_error(&name, &msg),
    };
    if a.help {
        if a.functions.is_empty() {
            return usage_error_with_status(&name, "No Functions were provided", 0);
        }
        // With -f, gearman prints its usage error line with a null message,
        // on stdout.
        crate::output::out_raw(format!("\n{name}\tError in usage((null)).\n{}", args::usage()).as_bytes());
        return 0;
    }
    if a.functions.is_empty() {
        return usage_error(&name, "No Functions were provided");
    }
    // -S: TLS with the files libgearman's variables name (the server's
    // certificate is verified, which libgearman does not do). A client's
    // -t limits every wait for the server, the handshake included.
    let handshake_limit = a.timeout_ms.filter(|ms| *ms > 0 && !a.worker).map(std::time::Duration::from_millis);
    let tls = if a.ssl {
        match TlsFiles::from_environment().load_with_handshake_limit(handshake_limit) {
            Ok(t) => Some(t),
            Err(e) => {
                err_raw(format!("gearman: {e}\n").as_bytes());
                return 1;
            }
        }
    } else {
        None
    };
    if a.worker && a.functions.iter().any(Vec::is_empty) {
        err_raw(b"gearman: gearman_worker_add_function : _worker_function_create(GEARMAN_INVALID_ARGUMENT) invalid function\n");
        return 1;
    }
    let command = if a.worker { JobCommand::new(&a.operands) } else { None };
    if let Some(c) = &command {
        if let Err(e) = c.check() {
            err_raw(format!("gearman: {e}\n").as_bytes());
            return 1;
        }
    }
    if a.worker && a.daemon {
        // Check the servers before detaching, so the error is seen.
        if let Err(msg) = worker::check_servers(&a, tls.as_ref()) {
            err_raw(format!("gearman: gearman_worker_work : {msg}\n").as_bytes());
            return 1;
        }
    }
    if a.daemon {
        if let Err(e) = crate::process::daemonize() {
            err_raw(format!("gearman: {e:#}\n").as_bytes());
            return 1;
        }
    }
    let _pidfile = match &a.pidfile {
        Some(p) => match crate::process::PidFile::create(p) {
            Ok(f) => Some(f),
            Err(e) => {
                err_raw(format!("gearman: {e:#}\n").as_bytes());
                return 1;
            }
        },
        None => None,
    };
    // Client mode on one thread: the events of the jobs of one workload
    // (one per `-f`) are then handled in the order they arrive, and so
    // printed in that order, as gearman's single-threaded callbacks do.
    let runtime = if a.worker {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    };
    let rt = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            err_raw(format!("gearman: cannot start the runtime: {e}\n").as_bytes());
            return 1;
        }
    };
    if a.worker {
        rt.block_on(worker::run(&a, command, tls))
    } else {
        rt.block_on(client::run(&a, tls))
    }
}

fn usage_error(name: &str, msg: &str) -> i32 {
    usage_error_with_status(name, msg, 1)
}

fn usage_error_with_status(name: &str, msg: &str, status: i32) -> i32 {
    err_raw(format!("\n{name}\tError in usage({msg}).\n{}", args::usage()).as_bytes());
    status
}
