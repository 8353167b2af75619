//! The `sprocket` command. Its behaviour depends on the name it was run
//! under: `gearman` and `gearadmin` (symlinks or hard links) get the
//! gearman-tools 1.1.20 interfaces; any other name gets `sprocket`'s own
//! subcommands.
#![forbid(unsafe_code)]

pub mod admin;
pub mod command;
pub mod gearadmin;
pub mod gearman;
pub mod getopt;
pub mod output;
pub mod process;
pub mod sprocket;
pub mod tls;

/// Which interface `argv[0]` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    Gearman,
    Gearadmin,
    Sprocket,
}

/// Picks the interface from the file name of `argv[0]`.
pub fn personality(argv0: &str) -> Personality {
    let name = std::path::Path::new(argv0).file_name().and_then(|n| n.to_str()).unwrap_or("");
    match name {
        "gearman" => Personality::Gearman,
        "gearadmin" => Personality::Gearadmin,
        _ => Personality::Sprocket,
    }
}

/// Runs the command for `argv`; returns the exit status.
pub fn run(argv: Vec<std::ffi::OsString>) -> i32 {
    let argv0 = argv.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default();
    match personality(&argv0) {
        Personality::Gearman => gearman::main(&argv),
        Personality::Gearadmin => gearadmin::main(&argv),
        Personality::Sprocket => {
            // The subcommands are text (clap); an argument that is not
            // valid UTF-8 is converted lossily there.
            let argv: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
            sprocket::main(&argv)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_selects_the_interface() {
        assert_eq!(personality("/usr/local/bin/gearman"), Personality::Gearman);
        assert_eq!(personality("gearadmin"), Personality::Gearadmin);
        assert_eq!(personality("./target/debug/sprocket"), Personality::Sprocket);
        assert_eq!(personality("gearmand"), Personality::Sprocket);
    }
}
