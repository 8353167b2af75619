//! Differential tests of `gearman` drop-in mode: the same command lines
//! through Debian's /usr/bin/gearman and through sprocket linked as
//! `gearman`, against gearmand and sprocketd, comparing stdout, stderr and
//! exit status. Workers of both implementations are crossed with clients
//! of both.

mod common;

use std::time::Duration;

use common::{have_real_tools, normalise_handles, run_tool, servers, start_worker, wait_workers, Tool};
use sprocket_client::{Job, JobError, Worker};

const BOTH: [Tool; 2] = [Tool::Real, Tool::Ours];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A tokio runtime for library workers inside sync tests.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn seed_wc_worker_and_clients() {
    if !have_real_tools() {
        return;
    }
    let group = std::fs::read("/etc/group").unwrap();
    let expected = format!("{}\n", group.iter().filter(|b| **b == b'\n').count());
    for srv in servers() {
        for worker in BOTH {
            // gearman -w -f wc -- wc -l
            let mut w = start_worker(worker, &srv, &["-f", "wc", "--", "wc", "-l"], "wc");
            for client in BOTH {
                // gearman -f wc < /etc/group
                let out = run_tool(client, "gearman", srv.port, &["-f", "wc"], &group);
                assert!(out.success(), "{} worker={worker:?} client={client:?}: {}", srv.name, out.describe());
                assert_eq!(text(&out.stdout), expected, "{} worker={worker:?} client={client:?}", srv.name);
                assert_eq!(text(&out.stderr), "");
            }
            w.stop();
        }
    }
}

#[test]
fn seed_background_submit() {
    if !have_real_tools() {
        return;
    }
    let passwd = std::fs::read("/etc/passwd").unwrap();
    for srv in servers() {
        let mut results = Vec::new();
        for client in BOTH {
            // gearman -b -f wc < /etc/passwd
            let out = run_tool(client, "gearman", srv.port, &["-b", "-f", "wc"], &passwd);
            let verbose = run_tool(client, "gearman", srv.port, &["-v", "-b", "-f", "wc"], &passwd);
            results.push((
                out.status.and_then(|s| s.code()),
                text(&out.stdout),
                normalise_handles(&text(&verbose.stdout)),
                verbose.status.and_then(|s| s.code()),
            ));
        }
        assert_eq!(results[0], results[1], "{}", srv.name);
        assert_eq!(results[0].2, "Task created: H:<handle>\n", "{}", srv.name);
        // Four background jobs wait in the queue.
        assert!(srv.admin("status").contains("wc\t4\t0\t0"), "{}: {}", srv.name, srv.admin("status"));
    }
}

/// The seed-004 reverse worker in Rust: WORK_STATUS 1/10 … 10/10.
fn reverse_worker(rt: &tokio::runtime::Runtime, addr: String) -> sprocket_client::WorkerHandle {
    rt.block_on(async move {
        Worker::new(addr)
            .unwrap()
            .register("reverse", |job: Job| async move {
                for i in 1..=10 {
                    job.status(i, 10)?;
                }
                Ok::<_, JobError>(job.payload().iter().rev().copied().collect::<Vec<u8>>())
            })
            // One job at a time: with two jobs at once their progress lines
            // interleave differently from run to run.
            .concurrency(1)
            .spawn()
            .unwrap()
    })
}

#[test]
fn seed_reverse_with_progress_lines() {
    if !have_real_tools() {
        return;
    }
    let rt = runtime();
    let progress: String = (1..=10).map(|i| format!("{}% Complete\n", i * 10)).collect();
    for srv in servers() {
        let w = reverse_worker(&rt, srv.addr());
        wait_workers(&srv, "reverse", 1);
        let mut outs = Vec::new();
        for client in BOTH {
            // gearman -f reverse Rasmus
            let out = run_tool(client, "gearman", srv.port, &["-f", "reverse", "Rasmus"], b"");
            assert!(out.success(), "{client:?}: {}", out.describe());
            outs.push(text(&out.stdout));
        }
        assert_eq!(outs[0], outs[1], "{}", srv.name);
        // In a pipe gearman's stdio buffer puts the progress lines after the
        // payload; both tools agree on that byte for byte.
        assert_eq!(outs[1], format!("sumsaR{progress}"), "{}", srv.name);

        // On a terminal (script(1) gives a pty) the lines come in arrival
        // order, as in the seed: 10% … 100% Complete, then sumsaR.
        if sprocket_testkit::which("script").is_some() {
            let mut tty_outs = Vec::new();
            for client in BOTH {
                let line = format!("{} -p {} -f reverse Rasmus", client.path("gearman").display(), srv.port);
                let mut cmd = std::process::Command::new("script");
                cmd.args(["-qec", &line, "/dev/null"]);
                let out = sprocket_testkit::process::run(&mut cmd, b"", common::LIMIT);
                tty_outs.push(text(&out.stdout).replace("\r\n", "\n"));
            }
            assert_eq!(tty_outs[0], tty_outs[1], "{}", srv.name);
            assert_eq!(tty_outs[1], format!("{progress}sumsaR"), "{}", srv.name);
        } else {
            sprocket_testkit::skip("script(1) not installed: terminal ordering not checked");
        }
        rt.block_on(w.shutdown()).unwrap();
    }
}

#[test]
fn prefix_unique_priority_and_several_functions() {
    if !have_real_tools() {
        return;
    }
    let rt = runtime();
    for srv in servers() {
        let w = reverse_worker(&rt, srv.addr());
        wait_workers(&srv, "reverse", 1);
        let cases: Vec<Vec<&str>> = vec![
            vec!["-P", "-f", "reverse", "abc"],
            vec!["-f", "reverse", "-f", "reverse", "-P", "x"],
            vec!["-I", "-f", "reverse", "hi"],
            vec!["-L", "-f", "reverse", "lo"],
            vec!["-u", "key", "-f", "reverse", "uniq"],
            vec!["-s", "-f", "reverse"],
            vec!["-freverse", "-sP"],
        ];
        for args in cases {
            let real = run_tool(Tool::Real, "gearman", srv.port, &args, b"");
            let ours = run_tool(Tool::Ours, "gearman", srv.port, &args, b"");
            assert_eq!(real.status.and_then(|s| s.code()), ours.status.and_then(|s| s.code()), "{args:?}");
            assert_eq!(text(&real.stdout), text(&ours.stdout), "{} {args:?}", srv.name);
        }
        rt.block_on(w.shutdown()).unwrap();
    }
}

#[test]
fn per_line_client_jobs() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        let mut w = start_worker(Tool::Real, &srv, &["-f", "up", "--", "tr", "a-z", "A-Z"], "up");
        for flag in ["-n", "-N"] {
            let real = run_tool(Tool::Real, "gearman", srv.port, &[flag, "-f", "up"], b"one\n");
            let ours = run_tool(Tool::Ours, "gearman", srv.port, &[flag, "-f", "up"], b"one\n");
            assert_eq!(text(&real.stdout), text(&ours.stdout), "{} {flag}", srv.name);
            assert_eq!(real.status.and_then(|s| s.code()), ours.status.and_then(|s| s.code()));
        }
        // Several lines are several jobs, one after another, in order.
        let real = run_tool(Tool::Real, "gearman", srv.port, &["-N", "-f", "up"], b"a\nb\nc\n");
        let ours = run_tool(Tool::Ours, "gearman", srv.port, &["-N", "-f", "up"], b"a\nb\nc\n");
        assert_eq!(text(&ours.stdout), "ABC", "{}", srv.name);
        assert_eq!(text(&real.stdout), text(&ours.stdout), "{}", srv.name);
        // One at a time, so a shared unique does not merge them.
        for (args, input) in
            [(vec!["-n", "-u", "k", "-f", "up"], &b"x\ny\n"[..]), (vec!["-u", "k", "-f", "up", "p", "q"], b"")]
        {
            let real = run_tool(Tool::Real, "gearman", srv.port, &args, input);
            let ours = run_tool(Tool::Ours, "gearman", srv.port, &args, input);
            assert_eq!(text(&real.stdout), text(&ours.stdout), "{} {args:?}", srv.name);
            assert!(
                text(&ours.stdout).contains('Y') || text(&ours.stdout).contains('Q'),
                "{args:?}: {}",
                ours.describe()
            );
        }
        // An empty argument is refused; the others run.
        let real = run_tool(Tool::Real, "gearman", srv.port, &["-f", "up", "", "ab"], b"");
        let ours = run_tool(Tool::Ours, "gearman", srv.port, &["-f", "up", "", "ab"], b"");
        assert_eq!(
            (text(&ours.stdout), ours.status.and_then(|s| s.code())),
            ("AB".into(), Some(0)),
            "{}",
            ours.describe()
        );
        assert_eq!(text(&real.stdout), text(&ours.stdout));
        assert!(text(&ours.stderr).contains("invalid workload"), "{}", ours.describe());
        w.stop();
    }
}

#[test]
fn failing_command_reports_job_failed() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        for worker in BOTH {
            let mut w = start_worker(worker, &srv, &["-f", "bad", "--", "sh", "-c", "echo out; exit 3"], "bad");
            for client in BOTH {
                let out = run_tool(client, "gearman", srv.port, &["-f", "bad", "x"], b"");
                assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{worker:?}/{client:?}: {}", out.describe());
                assert_eq!(text(&out.stdout), "out\n", "{worker:?}/{client:?}");
                assert_eq!(text(&out.stderr), "Job failed\n", "{worker:?}/{client:?}");
            }
            // Both workers say so in their own output (their log).
            let said = sprocket_testkit::databases::wait_until(Duration::from_secs(5), || {
                w.output().contains("gearman_worker_work")
            });
            assert!(said, "{worker:?} worker output: {}", w.output());
            w.stop();
        }
    }
}

#[test]
fn worker_without_command_echoes_the_workload() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        for worker in BOTH {
            let mut w = start_worker(worker, &srv, &["-f", "show"], "show");
            let out = run_tool(Tool::Real, "gearman", srv.port, &["-f", "show", "hello\n"], b"");
            assert!(out.success(), "{}", out.describe());
            assert_eq!(text(&out.stdout), "", "{worker:?}: the reply is empty");
            // gearman's own stdout is block-buffered in a pipe, so only
            // ours can be watched while it runs.
            if worker == Tool::Ours {
                w.wait_for_line("hello", Duration::from_secs(10));
            }
            w.stop();
        }
    }
}

#[test]
fn worker_count_exits_after_n_jobs() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        for worker in BOTH {
            let mut w = start_worker(worker, &srv, &["-c", "2", "-f", "cnt", "--", "cat"], "cnt");
            for i in 0..2 {
                let out = run_tool(Tool::Real, "gearman", srv.port, &["-f", "cnt", &format!("j{i}")], b"");
                assert_eq!(text(&out.stdout), format!("j{i}"));
            }
            let start = std::time::Instant::now();
            while w.running() {
                assert!(start.elapsed() < Duration::from_secs(10), "{worker:?} worker did not exit after -c 2");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Decided difference: `-n` in worker mode sends each line once (gearman
/// 1.1.20 resends everything so far with every line). The client's output
/// is then exactly the command's output.
#[test]
fn line_worker_sends_each_line_once() {
    for srv in servers() {
        let mut w = start_worker(Tool::Ours, &srv, &["-n", "-f", "lines", "--", "cat"], "lines");
        let out = run_tool(Tool::Ours, "gearman", srv.port, &["-f", "lines"], b"a\nb\nc\n");
        assert_eq!(text(&out.stdout), "a\nb\nc\n", "{}", srv.name);
        w.stop();
        let mut w = start_worker(Tool::Ours, &srv, &["-N", "-f", "lines2", "--", "cat"], "lines2");
        let out = run_tool(Tool::Ours, "gearman", srv.port, &["-f", "lines2"], b"a\nb\n");
        assert_eq!(text(&out.stdout), "ab", "{}", srv.name);
        w.stop();
    }
}

#[test]
fn usage_errors_match() {
    if !have_real_tools() {
        return;
    }
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["x"], 1),             // no -f
        (vec!["-Z", "-f", "x"], 1), // unknown flag
        (vec!["-f"], 1),            // missing argument
        (vec!["-H", "-f", "x"], 0),
        (vec!["-H"], 0),
    ];
    for (args, code) in cases {
        for tool in BOTH {
            let out = run_tool(tool, "gearman", 1, &args, b"");
            assert_eq!(out.status.and_then(|s| s.code()), Some(code), "{tool:?} {args:?}: {}", out.describe());
        }
        let ours = run_tool(Tool::Ours, "gearman", 1, &args, b"");
        if code == 1 {
            assert!(text(&ours.stderr).contains("Error in usage"), "{args:?}: {}", ours.describe());
        }
    }
}

/// `gearman -n` streams: the job for a line is submitted as soon as the
/// line arrives, before standard input ends (`tail -f log | gearman -n`).
#[test]
fn per_line_client_submits_each_line_as_it_arrives() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    for (srv, tool) in servers().iter().flat_map(|s| [(s, Tool::Ours), (s, Tool::Real)]) {
        if tool == Tool::Real && !have_real_tools() {
            continue;
        }
        let function = format!("stream_{tool:?}");
        let mut child = Command::new(tool.path("gearman"))
            .args(["-p", &srv.port.to_string(), "-n", "-f", &function])
            .env_remove("GEARMAN_SERVER")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"first line\n").unwrap();
        stdin.flush().unwrap();
        // No worker: the job waits in the queue while stdin stays open.
        let queued = sprocket_testkit::databases::wait_until(Duration::from_secs(10), || {
            srv.admin("status").lines().any(|l| l.starts_with(&format!("{function}\t1\t")))
        });
        let _ = child.kill();
        let _ = child.wait();
        assert!(queued, "{} {tool:?}: the first line's job was not submitted before end of input", srv.name);
    }
}

/// `-t` in worker mode: each wait that finds no job within the timeout is
/// reported and counts towards `-c`, so an idle `-c 2` worker exits.
#[test]
fn worker_timeout_counts_towards_the_job_count() {
    for (srv, tool) in servers().iter().flat_map(|s| [(s, Tool::Ours), (s, Tool::Real)]) {
        if tool == Tool::Real && !have_real_tools() {
            continue;
        }
        let started = std::time::Instant::now();
        let out = run_tool(tool, "gearman", srv.port, &["-w", "-c", "2", "-t", "200", "-f", "idle_t"], b"");
        assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{tool:?}: {}", out.describe());
        assert!(started.elapsed() < Duration::from_secs(5), "{tool:?} took {:?}", started.elapsed());
        assert_eq!(text(&out.stderr).matches("GEARMAN_TIMEOUT").count(), 2, "{tool:?}: {}", out.describe());
    }
}

/// Decided difference: connection errors exit 1 (gearman 1.1.20 exits 0).
#[test]
fn unreachable_server_is_an_error() {
    let port = sprocket_testkit::free_port();
    let out = run_tool(Tool::Ours, "gearman", port, &["-f", "x", "y"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.describe());
    assert!(text(&out.stderr).contains("Connection refused"), "{}", out.describe());
    let out = run_tool(Tool::Ours, "gearman", port, &["-w", "-f", "x"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.describe());
    assert!(text(&out.stderr).contains("could not connect"), "{}", out.describe());
}

#[test]
fn worker_command_that_cannot_start() {
    let out = run_tool(Tool::Ours, "gearman", 1, &["-w", "-f", "x", "--", "/nonexistent/cmd"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.describe());
    assert!(text(&out.stderr).contains("cannot execute '/nonexistent/cmd'"), "{}", out.describe());
    let out = run_tool(Tool::Ours, "gearman", 1, &["-w", "-f", "x", "--", "no-such-command-xyz"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1));
    assert!(text(&out.stderr).contains("command not found"), "{}", out.describe());
}

#[test]
fn gearman_server_env_replaces_host_and_port() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        let mut w = start_worker(Tool::Ours, &srv, &["-f", "envt", "--", "cat"], "envt");
        let mut cmd = std::process::Command::new(Tool::Ours.path("gearman"));
        cmd.args(["-p", "1", "-f", "envt", "via-env"]).env("GEARMAN_SERVER", srv.addr());
        let out = sprocket_testkit::process::run(&mut cmd, b"", common::LIMIT);
        assert_eq!(text(&out.stdout), "via-env", "{}", out.describe());
        w.stop();
    }
}

/// A worker's WORK_EXCEPTION reaches gearman(1), which does not ask for
/// exceptions, as a failure. gearmand 1.1.20 sends that WORK_FAIL with a
/// trailing NUL after the handle, which the C client ignores and then
/// waits forever; ours accepts it and reports `Job failed`, exit 1.
#[test]
fn worker_exception_is_a_failure_for_the_cli() {
    let rt = runtime();
    for srv in servers() {
        let w = rt.block_on(async {
            Worker::new(srv.addr())
                .unwrap()
                .register("boom", |_job: Job| async move { Err::<Vec<u8>, _>(JobError::exception("kaput")) })
                .spawn()
                .unwrap()
        });
        wait_workers(&srv, "boom", 1);
        let out = run_tool(Tool::Ours, "gearman", srv.port, &["-f", "boom", "x"], b"");
        assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}: {}", srv.name, out.describe());
        assert_eq!(text(&out.stderr), "Job failed\n", "{}", srv.name);
        rt.block_on(w.shutdown()).unwrap();
    }
}

/// Arguments are bytes, as in C: a workload, a function name, a unique and
/// a worker command's arguments that are not valid UTF-8 reach the server
/// unchanged (they used to become U+FFFD, EF BF BD).
#[test]
fn arguments_that_are_not_utf8_keep_their_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    if !have_real_tools() {
        return;
    }
    let b = |x: &'static [u8]| OsStr::from_bytes(x);
    let function = b(b"c\xffat");
    let shown = String::from_utf8_lossy(function.as_bytes()).into_owned();
    for srv in servers() {
        for worker in BOTH {
            let mut w = start_worker(worker, &srv, &[b(b"-f"), function, b(b"--"), b(b"cat")], &shown);
            for client in BOTH {
                let args = [b(b"-f"), function, b(b"-u"), b(b"\xfe"), b(b"\xff\xfeabc")];
                let out = run_tool(client, "gearman", srv.port, &args, b"");
                assert!(out.success(), "{} {worker:?}/{client:?}: {}", srv.name, out.describe());
                assert_eq!(out.stdout, b"\xff\xfeabc", "{} {worker:?}/{client:?}", srv.name);
                let prefixed = run_tool(client, "gearman", srv.port, &[b(b"-P"), b(b"-f"), function, b(b"x")], b"");
                assert_eq!(prefixed.stdout, b"c\xffat: x", "{} {worker:?}/{client:?}", srv.name);
            }
            w.stop();
        }
        // The worker command's own arguments too.
        for worker in BOTH {
            let mut w =
                start_worker(worker, &srv, &[b(b"-f"), b(b"argb"), b(b"--"), b(b"printf"), b(b"%s\xff\xfe")], "argb");
            let out = run_tool(Tool::Real, "gearman", srv.port, &["-f", "argb", "x"], b"");
            assert_eq!(out.stdout, b"\xff\xfe", "{} {worker:?}: {}", srv.name, out.describe());
            w.stop();
        }
    }
}

/// `-f ''` is refused as gearman(1) refuses it: the client reports an
/// invalid function for each workload and runs the other functions (exit
/// 0, nothing queued for ""); the worker exits 1. Sprocket used to hang
/// waiting for a worker of "" (or queue a background job for it).
#[test]
fn empty_function_name_is_refused() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        let mut w = start_worker(Tool::Real, &srv, &["-f", "cat", "--", "cat"], "cat");
        // The arguments and how many "invalid function" messages (one per workload).
        let cases: Vec<(Vec<&str>, usize)> =
            vec![(vec!["-f", "", "x"], 1), (vec!["-b", "-f", "", "x"], 1), (vec!["-f", "", "-f", "cat", "x", "y"], 2)];
        for (args, messages) in cases {
            let mut results = Vec::new();
            for tool in BOTH {
                let started = std::time::Instant::now();
                let out = run_tool(tool, "gearman", srv.port, &args, b"");
                assert!(started.elapsed() < Duration::from_secs(5), "{tool:?} {args:?}: {}", out.describe());
                let err = text(&out.stderr);
                assert_eq!(
                    err.matches("add_task(GEARMAN_INVALID_ARGUMENT) invalid function").count(),
                    messages,
                    "{tool:?} {args:?}: {err}"
                );
                results.push((out.status.and_then(|s| s.code()), text(&out.stdout)));
            }
            assert_eq!(results[0], results[1], "{} {args:?}", srv.name);
        }
        assert!(!srv.admin("status").lines().any(|l| l.starts_with('\t')), "{}: {}", srv.name, srv.admin("status"));
        for tool in BOTH {
            let out = run_tool(tool, "gearman", srv.port, &["-w", "-f", "", "-c", "1"], b"");
            assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{tool:?}: {}", out.describe());
            assert!(
                text(&out.stderr).contains("_worker_function_create(GEARMAN_INVALID_ARGUMENT) invalid function"),
                "{tool:?}: {}",
                out.describe()
            );
        }
        w.stop();
    }
}

/// gearman(1) fails a job only when its command exits with a non-zero
/// status: a command killed by a signal has its output sent as the result.
#[test]
fn command_killed_by_a_signal_completes_the_job() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        for worker in BOTH {
            for signal in ["KILL", "TERM"] {
                let script = format!("echo x; kill -{signal} $$");
                let function = format!("sig{signal}");
                let mut w = start_worker(worker, &srv, &["-f", &function, "--", "sh", "-c", &script], &function);
                for client in BOTH {
                    let out = run_tool(client, "gearman", srv.port, &["-f", &function, "a"], b"");
                    assert_eq!(
                        (out.status.and_then(|s| s.code()), text(&out.stdout), text(&out.stderr)),
                        (Some(0), "x\n".to_string(), String::new()),
                        "{} {worker:?}/{client:?} SIG{signal}",
                        srv.name
                    );
                }
                w.stop();
            }
        }
    }
}

/// `GEARMAN_SERVERS` (libgearman's variable) is honoured like
/// `GEARMAN_SERVER`; an empty variable counts as unset, so `-p` applies
/// (gearman 1.1.20 then tries localhost:4730, a decided difference).
#[test]
fn gearman_servers_env_and_empty_variables() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        let mut w = start_worker(Tool::Real, &srv, &["-f", "envs", "--", "cat"], "envs");
        for tool in BOTH {
            let mut cmd = std::process::Command::new(tool.path("gearman"));
            cmd.args(["-p", "1", "-f", "envs", "via-servers"])
                .env_remove("GEARMAN_SERVER")
                .env("GEARMAN_SERVERS", srv.addr());
            let out = sprocket_testkit::process::run(&mut cmd, b"", common::LIMIT);
            assert_eq!(text(&out.stdout), "via-servers", "{tool:?}: {}", out.describe());
        }
        for var in ["GEARMAN_SERVER", "GEARMAN_SERVERS"] {
            let mut cmd = std::process::Command::new(Tool::Ours.path("gearman"));
            cmd.args(["-p", &srv.port.to_string(), "-f", "envs", "empty"])
                .env_remove("GEARMAN_SERVER")
                .env_remove("GEARMAN_SERVERS")
                .env(var, "");
            let out = sprocket_testkit::process::run(&mut cmd, b"", common::LIMIT);
            assert_eq!(text(&out.stdout), "empty", "{var}='': {}", out.describe());
        }
        // The worker reads it too.
        let mut cmd = std::process::Command::new(Tool::Ours.path("gearman"));
        cmd.args(["-w", "-p", "1", "-c", "1", "-f", "envw", "--", "cat"])
            .env_remove("GEARMAN_SERVER")
            .env("GEARMAN_SERVERS", srv.addr());
        let mut ours = sprocket_testkit::process::Background::spawn("env worker", &mut cmd);
        common::wait_workers(&srv, "envw", 1);
        let out = run_tool(Tool::Real, "gearman", srv.port, &["-f", "envw", "w"], b"");
        assert_eq!(text(&out.stdout), "w", "{}", out.describe());
        ours.stop();
        w.stop();
    }
}

/// `-P` prefixes `Job failed` too (`pffail: Job failed`).
#[test]
fn prefix_applies_to_job_failed() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        let mut w = start_worker(Tool::Real, &srv, &["-f", "pffail", "--", "false"], "pffail");
        for tool in BOTH {
            let out = run_tool(tool, "gearman", srv.port, &["-P", "-f", "pffail", "x"], b"");
            assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{tool:?}: {}", out.describe());
            assert_eq!(text(&out.stderr), "pffail: Job failed\n", "{} {tool:?}", srv.name);
        }
        w.stop();
    }
}

/// With both `-I` and `-L`, the last one given wins, as in gearman(1).
#[test]
fn last_priority_flag_wins() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        for tool in BOTH {
            for (flags, tag) in
                [(vec!["-I", "-L"], "il"), (vec!["-L", "-I"], "li"), (vec!["-IL"], "c_il"), (vec!["-LI"], "c_li")]
            {
                let function = format!("prio_{tool:?}_{tag}");
                let mut args = vec!["-b"];
                args.extend(flags);
                args.extend(["-f", &function, "x"]);
                let out = run_tool(tool, "gearman", srv.port, &args, b"");
                assert!(out.success(), "{tool:?} {args:?}: {}", out.describe());
            }
        }
        let status = srv.admin("prioritystatus");
        let row = |tool: &str, tag: &str| -> String {
            let name = format!("prio_{tool}_{tag}\t");
            status.lines().find(|l| l.starts_with(&name)).map(|l| l[name.len()..].to_string()).unwrap_or_default()
        };
        for tag in ["il", "li", "c_il", "c_li"] {
            assert_eq!(row("Real", tag), row("Ours", tag), "{} {tag}: {status}", srv.name);
        }
        assert!(row("Ours", "il").starts_with("0\t0\t1"), "{}: {status}", srv.name);
    }
}

/// `-t 0` and `-t abc` (atoi: 0) are a zero timeout in the client, as in
/// gearman(1): a GEARMAN_TIMEOUT error, no result, nothing queued. (Ours
/// exits 1 on a timeout, a decided difference.)
#[test]
fn zero_client_timeout_times_out_at_once() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        let mut w = start_worker(Tool::Real, &srv, &["-f", "t0cat", "--", "cat"], "t0cat");
        for t in ["0", "abc"] {
            for tool in BOTH {
                for args in [vec!["-t", t, "-f", "t0cat", "x"], vec!["-b", "-t", t, "-f", "t0queue", "x"]] {
                    let out = run_tool(tool, "gearman", srv.port, &args, b"");
                    assert_eq!(text(&out.stdout), "", "{tool:?} {args:?}: {}", out.describe());
                    assert!(text(&out.stderr).contains("GEARMAN_TIMEOUT"), "{tool:?} {args:?}: {}", out.describe());
                    let code = if tool == Tool::Real { 0 } else { 1 };
                    assert_eq!(out.status.and_then(|s| s.code()), Some(code), "{tool:?} {args:?}: {}", out.describe());
                }
            }
        }
        assert!(!srv.admin("status").contains("t0queue"), "{}: {}", srv.name, srv.admin("status"));
        w.stop();
    }
}

/// In a pipe gearman's stdio buffer fills to exactly 4096 bytes, cutting
/// a progress line in two, before a payload is written past it: 2000
/// `50% Complete` lines then `end` put `end` at byte 24576 (6 × 4096).
#[test]
fn stdio_buffer_fills_to_exactly_4096_bytes() {
    if !have_real_tools() {
        return;
    }
    let rt = runtime();
    for srv in servers() {
        let w = rt.block_on({
            let addr = srv.addr();
            async move {
                Worker::new(addr)
                    .unwrap()
                    .register("pfbig", |job: Job| async move {
                        for _ in 0..2000 {
                            job.status(1, 2)?;
                        }
                        Ok::<_, JobError>(&b"end"[..])
                    })
                    .spawn()
                    .unwrap()
            }
        });
        wait_workers(&srv, "pfbig", 1);
        let mut outs = Vec::new();
        for tool in BOTH {
            let out = run_tool(tool, "gearman", srv.port, &["-f", "pfbig", "x"], b"");
            assert!(out.success(), "{tool:?}: {}", out.describe());
            let at = out.stdout.windows(3).position(|w| w == b"end");
            assert_eq!(at, Some(24576), "{} {tool:?}", srv.name);
            outs.push(out.stdout);
        }
        assert!(outs[0] == outs[1], "{}: outputs differ", srv.name);
        rt.block_on(w.shutdown()).unwrap();
    }
}

/// `-p` is read with atoi and cut to 16 bits as gearman(1) reads it
/// (`-p 47301x` is 47301, `-p 112837` is 47301), and `-h ''` is localhost.
#[test]
fn port_and_host_are_read_as_gearman_reads_them() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        let mut w = start_worker(Tool::Real, &srv, &["-f", "pcat", "--", "cat"], "pcat");
        let port = srv.port;
        let cases: Vec<Vec<String>> = vec![
            vec!["-p".into(), format!("{port}x")],
            vec!["-p".into(), format!(" {port}")],
            vec!["-p".into(), format!("{}", u32::from(port) + 65536)],
            vec!["-h".into(), String::new(), "-p".into(), port.to_string()],
        ];
        for case in cases {
            for tool in BOTH {
                let mut cmd = std::process::Command::new(tool.path("gearman"));
                cmd.args(&case).args(["-f", "pcat", "ok"]).env_remove("GEARMAN_SERVER").env_remove("GEARMAN_SERVERS");
                let out = sprocket_testkit::process::run(&mut cmd, b"", common::LIMIT);
                assert_eq!(text(&out.stdout), "ok", "{tool:?} {case:?}: {}", out.describe());
            }
        }
        w.stop();
    }
}

/// Debian's gearman has no TLS and ignores `-S`, talking plain TCP. Ours
/// speaks TLS with `-S` (docs/cli.md lists the difference), so against a
/// plain server it fails clearly and sends nothing, rather than sending
/// the job unencrypted. The TLS runs themselves are in tls.rs.
#[test]
fn ssl_flag_asks_for_tls_unlike_debians_build() {
    if !have_real_tools() {
        return;
    }
    for srv in servers() {
        let mut w = start_worker(Tool::Ours, &srv, &["-f", "sslcat", "--", "cat"], "sslcat");
        let real = run_tool(Tool::Real, "gearman", srv.port, &["-S", "-f", "sslcat", "plain"], b"");
        assert_eq!(text(&real.stdout), "plain", "Debian's gearman ignores -S: {}", real.describe());
        let failed = format!("TLS with localhost:{} failed", srv.port);
        let ours = run_tool(Tool::Ours, "gearman", srv.port, &["-S", "-f", "sslcat", "plain"], b"");
        assert_eq!(ours.status.and_then(|s| s.code()), Some(1), "{}: {}", srv.name, ours.describe());
        assert!(text(&ours.stderr).contains(&failed), "{}: {}", srv.name, ours.describe());
        assert_eq!(text(&ours.stdout), "", "{}", srv.name);
        let admin = run_tool(Tool::Ours, "gearadmin", srv.port, &["-S", "--getpid"], b"");
        assert_eq!(admin.status.and_then(|s| s.code()), Some(1), "{}: {}", srv.name, admin.describe());
        assert!(text(&admin.stderr).contains(&failed), "{}: {}", srv.name, admin.describe());
        w.stop();
    }
}

/// `gearman -H -f x` prints `Error in usage((null)).` before the usage,
/// on stdout, exit 0.
#[test]
fn help_with_a_function_starts_with_the_null_usage_line() {
    if !have_real_tools() {
        return;
    }
    let mut heads = Vec::new();
    for tool in BOTH {
        let out = run_tool(tool, "gearman", 1, &["-H", "-f", "x"], b"");
        assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{tool:?}");
        assert_eq!(text(&out.stderr), "", "{tool:?}");
        // The C tool names itself by argv[0], as ours does.
        let stdout = text(&out.stdout).replace(&tool.path("gearman").display().to_string(), "gearman");
        heads.push(stdout.lines().take(3).collect::<Vec<_>>().join("\n"));
    }
    assert_eq!(heads[0], heads[1]);
}

/// A `-d` worker whose server cannot be reached says so before detaching
/// (the message used to go to /dev/null) and exits 1.
#[test]
fn daemon_worker_reports_an_unreachable_server() {
    let port = sprocket_testkit::free_port();
    let out = run_tool(Tool::Ours, "gearman", port, &["-w", "-d", "-f", "x"], b"");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.describe());
    assert!(text(&out.stderr).contains("could not connect"), "{}", out.describe());
}
