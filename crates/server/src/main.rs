//! sprocketd: parse flags, maybe detach, run.

fn main() {
    let flags = match sprocket_server::flags::parse() {
        Ok(f) => f,
        Err(e) => {
            // clap renders help and version requests as "errors" too.
            let is_info = e.starts_with("Usage") || e.contains("\nUsage:") && !e.starts_with("error");
            if is_info {
                print!("{e}");
                std::process::exit(0);
            }
            eprint!("sprocketd: {e}");
            if !e.ends_with('\n') {
                eprintln!();
            }
            std::process::exit(1);
        }
    };
    if flags.version {
        println!("sprocketd {} (gearmand 1.1.20 compatible)", env!("CARGO_PKG_VERSION"));
        return;
    }
    if let Err(e) = flags.validate() {
        eprintln!("sprocketd: {e}");
        std::process::exit(1);
    }
    if flags.check_args {
        return;
    }
    let ready = if flags.daemon {
        match sprocket_server::daemon::daemonize() {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("sprocketd: cannot detach: {e}");
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    // The error goes to stderr, and into the log too when that is a file.
    let logs_to_stderr = matches!(flags.log_file.as_str(), "stderr" | "");
    if let Err(e) = sprocket_server::run(flags, ready) {
        eprintln!("sprocketd: {e:#}");
        if !logs_to_stderr {
            tracing::error!("{e:#}");
        }
        std::process::exit(1);
    }
}
