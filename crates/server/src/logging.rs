//! Logging through `tracing`, to stderr, to a file (reopened on SIGHUP
//! for log rotation), or nowhere.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

/// Where log lines go.
#[derive(Clone)]
pub enum LogTarget {
    Stderr,
    None,
    File { path: PathBuf, file: Arc<Mutex<File>> },
}

impl LogTarget {
    /// `stderr` and `none` are special, as in gearmand. A file that cannot
    /// be opened falls back to stderr with a warning.
    pub fn open(spec: &str) -> LogTarget {
        match spec {
            "stderr" | "" => LogTarget::Stderr,
            "none" => LogTarget::None,
            path => match open_append(path) {
                Ok(f) => LogTarget::File { path: PathBuf::from(path), file: Arc::new(Mutex::new(f)) },
                Err(e) => {
                    eprintln!("sprocketd: cannot open log file {path}: {e}; logging to stderr");
                    LogTarget::Stderr
                }
            },
        }
    }

    /// Reopens the file after rotation (SIGHUP).
    pub fn reopen(&self) {
        if let LogTarget::File { path, file } = self {
            match open_append(&path.display().to_string()) {
                Ok(f) => {
                    if let Ok(mut guard) = file.lock() {
                        *guard = f;
                    }
                }
                Err(e) => tracing::error!("cannot reopen log file {}: {e}", path.display()),
            }
        }
    }

    pub fn is_stderr(&self) -> bool {
        matches!(self, LogTarget::Stderr)
    }
}

fn open_append(path: &str) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

pub struct LogWriter(LogTarget);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.0 {
            LogTarget::Stderr => io::stderr().write(buf),
            LogTarget::None => Ok(buf.len()),
            LogTarget::File { file, .. } => match file.lock() {
                Ok(mut f) => f.write(buf),
                Err(_) => Ok(buf.len()),
            },
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogTarget {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        LogWriter(self.clone())
    }
}

pub fn init(target: &LogTarget, level: tracing::Level) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(target.is_stderr() && io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(target.clone())
        .try_init();
}
