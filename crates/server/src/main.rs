//! sprocketd: parse flags, then run the process (see
//! `sprocket_server::process`).
#![forbid(unsafe_code)]

fn main() {
    let flags = match sprocket_server::flags::parse() {
        Ok(f) => f,
        Err(e) => {
            if e.is_request_for_help() {
                // `sprocketd --help | head` closes the pipe early: not an error.
                use std::io::Write;
                let _ = write!(std::io::stdout(), "{e}");
                std::process::exit(0);
            }
            let e = e.to_string();
            eprint!("sprocketd: {e}");
            if !e.ends_with('\n') {
                eprintln!();
            }
            std::process::exit(1);
        }
    };
    if flags.version {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "sprocketd {} (gearmand 1.1.20 compatible)", env!("CARGO_PKG_VERSION"));
        return;
    }
    if let Err(e) = flags.validate() {
        eprintln!("sprocketd: {e}");
        std::process::exit(1);
    }
    if flags.check_args {
        return;
    }
    // The error goes to stderr (still the terminal until a detached server
    // is ready), and into the log too unless that is the same stderr.
    let also_log = flags.daemon || !matches!(flags.log_file.as_str(), "stderr" | "");
    if let Err(e) = sprocket_server::process::run(flags) {
        eprintln!("sprocketd: {e}");
        if also_log {
            tracing::error!("{e}");
        }
        std::process::exit(e.exit_code());
    }
}
