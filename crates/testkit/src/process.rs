//! Child processes with hard time limits, so a hung third-party client fails
//! its test instead of hanging the suite.
//!
//! Every child runs in its own process group; on timeout or drop the whole
//! group is killed (a `gearman -w -- cmd` worker's own children included).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a finished (or killed) child produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Exit status; `None` when the child was killed for running too long.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
}

impl RunOutput {
    /// True when the child exited by itself with status 0.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.map(|s| s.success()).unwrap_or(false)
    }
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// A one-paragraph description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status={:?} timed_out={}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status.and_then(|s| s.code()),
            self.timed_out,
            self.stdout_text(),
            self.stderr_text()
        )
    }
}

/// Kills a child's whole process group (it was started as a group leader).
fn kill_group(child: &mut Child) {
    let pgid = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-KILL", "--", &pgid]).stderr(Stdio::null()).status();
    let _ = child.kill();
    let _ = child.wait();
}

fn drain<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = r.read_to_end(&mut out);
        out
    })
}

/// Runs `cmd` to completion with `stdin` as its input, killing it (and its
/// process group) after `limit`.
pub fn run(cmd: &mut Command, stdin: &[u8], limit: Duration) -> RunOutput {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let input = stdin.to_vec();
    let mut child_stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(mut s) = child_stdin.take() {
            let _ = s.write_all(&input);
        }
    });
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let start = Instant::now();
    let mut status = None;
    let mut timed_out = false;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => {
                status = Some(s);
                break;
            }
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                timed_out = true;
                kill_group(&mut child);
                break;
            }
        }
    }
    // The group may still hold the pipes open (grandchildren); kill it so
    // the reader threads finish.
    if !timed_out {
        let pgid = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).stderr(Stdio::null()).status();
    }
    let _ = writer.join();
    RunOutput { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default(), timed_out }
}

#[derive(Default)]
struct Captured {
    lines: Vec<String>,
    closed: bool,
}

/// A long-running child (a worker) whose stdout and stderr lines are
/// collected; killed with its process group when dropped.
pub struct Background {
    child: Child,
    name: String,
    captured: Arc<(Mutex<Captured>, Condvar)>,
    readers: Vec<JoinHandle<()>>,
}

impl Background {
    /// Starts `cmd` with no stdin.
    pub fn spawn(name: &str, cmd: &mut Command) -> Background {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let captured = Arc::new((Mutex::new(Captured::default()), Condvar::new()));
        let mut readers = Vec::new();
        let streams: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().expect("piped stdout")),
            Box::new(child.stderr.take().expect("piped stderr")),
        ];
        for (i, stream) in streams.into_iter().enumerate() {
            let captured = Arc::clone(&captured);
            let tag = if i == 0 { "" } else { "[stderr] " };
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let (lock, cv) = &*captured;
                    if let Ok(mut c) = lock.lock() {
                        c.lines.push(format!("{tag}{line}"));
                    }
                    cv.notify_all();
                }
                let (lock, cv) = &*captured;
                if let Ok(mut c) = lock.lock() {
                    c.closed = true;
                }
                cv.notify_all();
            }));
        }
        Background { child, name: name.to_string(), captured, readers }
    }

    /// Waits until some output line contains `needle`; panics (with all the
    /// output so far) after `limit` or if the child exits first.
    pub fn wait_for_line(&mut self, needle: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            if self.lines().iter().any(|l| l.contains(needle)) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the readers a moment to collect the last lines.
                std::thread::sleep(Duration::from_millis(50));
                if self.lines().iter().any(|l| l.contains(needle)) {
                    return;
                }
                panic!("{} exited ({status}) before printing {needle:?}:\n{}", self.name, self.output());
            }
            assert!(
                start.elapsed() < limit,
                "{} did not print {needle:?} within {limit:?}:\n{}",
                self.name,
                self.output()
            );
            let (lock, cv) = &*self.captured;
            if let Ok(guard) = lock.lock() {
                let _ = cv.wait_timeout(guard, Duration::from_millis(20));
            }
        }
    }

    /// All lines printed so far (stderr lines prefixed `[stderr] `).
    pub fn lines(&self) -> Vec<String> {
        self.captured.0.lock().map(|c| c.lines.clone()).unwrap_or_default()
    }

    /// All output so far as one string, for assertion messages.
    pub fn output(&self) -> String {
        self.lines().join("\n")
    }

    /// True while the child has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child's process group and waits for it.
    pub fn stop(&mut self) {
        kill_group(&mut self.child);
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
