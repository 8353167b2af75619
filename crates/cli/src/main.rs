//! `sprocket` (also `gearman` / `gearadmin` through a link).
#![forbid(unsafe_code)]

fn main() {
    // Arguments stay bytes: workloads, function names and uniques given on
    // the command line are opaque to gearman(1), and so to us.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = sprocket_cli::run(argv);
    std::process::exit(code);
}
