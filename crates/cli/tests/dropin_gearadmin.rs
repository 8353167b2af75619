//! Differential tests of `gearadmin` drop-in mode against Debian's
//! /usr/bin/gearadmin, on gearmand and sprocketd.

mod common;

use common::{have_real_tools, run_tool, servers, Tool};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn both(port: u16, args: &[&str]) -> [(Option<i32>, String, String); 2] {
    [Tool::Real, Tool::Ours].map(|t| {
        // Commands that change state get a per-tool name so both runs see
        // the same starting state.
        let tag = format!("{t:?}").to_lowercase();
        let args: Vec<String> = args.iter().map(|a| a.replace("{t}", &tag)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_tool(t, "gearadmin", port, &args, b"");
        (out.status.and_then(|s| s.code()), text(&out.stdout), text(&out.stderr))
    })
}

#[test]
fn operations_output_and_order_match() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        // Something to list: a queued job for a fresh function.
        srv.admin("create function adm");
        let cases: Vec<Vec<&str>> = vec![
            vec!["--status"],
            vec!["--priority-status"],
            vec!["--server-version"],
            vec!["--server-verbose"],
            vec!["--getpid"],
            vec!["--show-jobs"],
            vec!["--show-unique-jobs"],
            vec!["--status", "--server-version", "--getpid"],
            vec!["--getpid", "--status"],
            vec!["--stat"],
            vec!["--create-function", "made{t}"],
            vec!["--create-function=made2{t}"],
            vec!["--drop-function", "made{t}"],
            vec!["--drop-function", "nosuchfunction"],
            vec!["--cancel-job", "H:nowhere:1"],
        ];
        for args in cases {
            let [real, ours] = both(srv.port, &args);
            assert_eq!(real, ours, "{} gearadmin {args:?}", srv.name);
        }
    }
}

#[test]
fn errors_keep_exit_status_zero() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        let [real, ours] = both(srv.port, &["--cancel-job", "nosuch"]);
        assert_eq!(real, ours);
        assert_eq!(ours.0, Some(0));
        assert!(ours.2.starts_with("Error: "), "{ours:?}");
    }
}

#[test]
fn usage_problems_exit_1() {
    if !have_real_tools() {
        return;
    }
    let port = sprocket_testkit::free_port();
    let cases: Vec<Vec<&str>> =
        vec![vec![], vec!["--bogus"], vec!["--cancel-job"], vec!["--show-jobs", "--show-jobs"], vec!["--status"]];
    for args in cases {
        let [real, ours] = both(port, &args);
        assert_eq!(real.0, ours.0, "gearadmin {args:?}: real={real:?} ours={ours:?}");
        assert_eq!(ours.0, Some(1), "{args:?}");
        if !args.is_empty() && args != ["--status"] {
            // Usage errors go to stdout, as gearadmin prints them.
            assert!(real.2.is_empty() && ours.2.is_empty(), "{args:?}: stderr real={:?} ours={:?}", real.2, ours.2);
            assert!(!real.1.is_empty() && ours.1.starts_with("gearadmin : "), "{args:?}: {ours:?}");
        }
    }
    let [real, ours] = both(port, &[]);
    assert!(real.1.starts_with("No option execution operation given.\n"));
    assert!(ours.1.starts_with("No option execution operation given.\n"));
    let help = run_tool(Tool::Ours, "gearadmin", port, &["--help"], b"");
    assert!(help.success() && text(&help.stdout).contains("--status"));
}

/// Replies and function names are bytes: a function named `c\xffat` is
/// created and listed with that byte, not U+FFFD.
#[test]
fn function_names_that_are_not_utf8_keep_their_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        let mut outputs = Vec::new();
        for tool in [Tool::Real, Tool::Ours] {
            let name = if tool == Tool::Real { &b"r\xffat"[..] } else { &b"o\xffat"[..] };
            let args = [OsStr::new("--create-function"), OsStr::from_bytes(name)];
            let created = run_tool(tool, "gearadmin", srv.port, &args, b"");
            assert!(created.success(), "{tool:?}: {}", created.describe());
            let status = run_tool(tool, "gearadmin", srv.port, &["--status"], b"");
            let mut wanted = name.to_vec();
            wanted.extend_from_slice(b"\t0\t0\t0\n");
            assert!(
                status.stdout.windows(wanted.len()).any(|w| w == wanted.as_slice()),
                "{} {tool:?}: {:?}",
                srv.name,
                status.stdout
            );
            outputs.push((created.stdout, created.status.and_then(|s| s.code())));
        }
        assert_eq!(outputs[0], outputs[1], "{}", srv.name);
    }
}

/// How a run ended: the exit code, or 128 + the signal that killed it (as
/// a shell shows it).
fn shell_status(status: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.code().or(status.signal().map(|s| 128 + s))
}

/// Runs `tool name args…` with standard output a pipe whose reader is
/// already closed (`… | (exec true)`), or /dev/full.
fn run_closed_stdout(tool: Tool, name: &str, args: &[&str], full: bool) -> (Option<i32>, String) {
    let stdout = if full {
        std::process::Stdio::from(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap())
    } else {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        std::process::Stdio::from(writer)
    };
    let out = std::process::Command::new(tool.path(name))
        .args(args)
        .env_remove("GEARMAN_SERVER")
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    (shell_status(out.status), text(&out.stderr))
}

/// A closed or full standard output is not a crash (exit 101 with a
/// panic backtrace): a closed pipe ends the run quietly with status 141,
/// as SIGPIPE ends the C tools; a full disk is ignored, as they ignore it.
#[test]
fn closed_or_full_stdout_does_not_panic() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        let port = srv.port.to_string();
        let cases: Vec<(&str, Vec<&str>, bool)> = vec![
            ("gearadmin", vec!["-p", &port, "--status"], false),
            ("gearadmin", vec!["-p", &port, "--getpid", "--server-version"], false),
            ("gearadmin", vec!["--help"], false),
            ("gearadmin", vec!["--help"], true),
            ("gearadmin", vec!["-p", &port, "--status"], true),
            ("gearman", vec!["-H", "-f", "x"], false),
            ("gearman", vec!["-H", "-f", "x"], true),
        ];
        for (name, args, full) in cases {
            let real = run_closed_stdout(Tool::Real, name, &args, full);
            let ours = run_closed_stdout(Tool::Ours, name, &args, full);
            assert!(!ours.1.contains("panicked"), "{name} {args:?} full={full}: {}", ours.1);
            assert_eq!(real, ours, "{} {name} {args:?} full={full}", srv.name);
        }
    }
}
