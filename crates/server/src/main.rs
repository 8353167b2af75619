//! sprocketd: parse flags, then run the process (see
//! `sprocket_server::process`).
#![forbid(unsafe_code)]

fn main() {
    let flags = match sprocket_server::flags::parse() {
        Ok(f) => f,
        Err(e) => {
            // clap renders help and version requests as "errors" too; the
            // flags module hands them over as text, so they are told apart
            // by clap's usage line.
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
