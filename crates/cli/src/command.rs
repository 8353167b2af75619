//! Running a worker's command once per job, as `gearman -w … -- cmd args`
//! does: execvp semantics (PATH search, no shell), the workload on stdin,
//! stdout captured, stderr inherited.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// How the command's output is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// All of stdout is the result.
    Whole,
    /// Each stdout line is sent as it comes; `strip` drops its newline.
    Lines { strip: bool },
}

/// What a run came to.
pub struct Outcome {
    /// Exit status 0.
    pub success: bool,
    /// Killed by a signal (no exit status).
    pub killed: bool,
    /// Output not already passed to the line callback.
    pub output: Vec<u8>,
}

/// The command line to run for each job.
#[derive(Debug, Clone)]
pub struct JobCommand {
    program: OsString,
    args: Vec<OsString>,
}

impl JobCommand {
    /// `argv[0]` and its arguments; `None` when empty.
    pub fn new<S: AsRef<OsStr>>(argv: &[S]) -> Option<JobCommand> {
        let (program, args) = argv.split_first()?;
        Some(JobCommand {
            program: program.as_ref().to_os_string(),
            args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
        })
    }

    /// Fails when the program cannot be found or is not executable, so a
    /// worker refuses to start instead of failing every job.
    pub fn check(&self) -> anyhow::Result<PathBuf> {
        let has_slash = self.program.as_bytes().contains(&b'/');
        let found = if has_slash {
            Some(PathBuf::from(&self.program)).filter(|p| is_executable(p))
        } else {
            std::env::var_os("PATH")
                .and_then(|path| std::env::split_paths(&path).map(|d| d.join(&self.program)).find(|p| is_executable(p)))
        };
        match found {
            Some(p) => Ok(p),
            None if has_slash && Path::new(&self.program).exists() => {
                bail!("cannot execute '{}': permission denied", self.program.to_string_lossy())
            }
            None => bail!("cannot execute '{}': command not found", self.program.to_string_lossy()),
        }
    }

    /// Runs the command with `payload` on stdin.
    pub async fn run(
        &self,
        payload: Bytes,
        mode: OutputMode,
        mut on_line: impl FnMut(Bytes),
    ) -> anyhow::Result<Outcome> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot execute '{}'", self.program.to_string_lossy()))?;
        let mut stdin = child.stdin.take().context("child stdin")?;
        // Feed stdin from its own task: a command that writes before it has
        // read everything would otherwise deadlock against us.
        let feeder = tokio::spawn(async move {
            let _ = stdin.write_all(&payload).await;
            let _ = stdin.shutdown().await;
        });
        let stdout = child.stdout.take().context("child stdout")?;
        let mut output = Vec::new();
        match mode {
            OutputMode::Whole => {
                let mut r = stdout;
                r.read_to_end(&mut output).await.context("reading the command's output")?;
            }
            OutputMode::Lines { strip } => {
                let mut r = BufReader::new(stdout);
                loop {
                    let mut line = Vec::new();
                    let n = r.read_until(b'\n', &mut line).await.context("reading the command's output")?;
                    if n == 0 {
                        break;
                    }
                    if line.last() != Some(&b'\n') {
                        // An unterminated last line is left for the caller.
                        output = line;
                        break;
                    }
                    if strip {
                        line.pop();
                    }
                    on_line(Bytes::from(line));
                }
            }
        }
        let status = child.wait().await.context("waiting for the command")?;
        let _ = feeder.await;
        Ok(Outcome { success: status.success(), killed: status.code().is_none(), output })
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}
