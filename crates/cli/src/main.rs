//! `sprocket` (also `gearman` / `gearadmin` through a link).
#![forbid(unsafe_code)]

fn main() {
    // Arguments that are not valid UTF-8 are converted lossily rather than
    // aborting: job payloads given on the command line are opaque bytes.
    let argv: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let code = sprocket_cli::run(argv);
    std::process::exit(code);
}
