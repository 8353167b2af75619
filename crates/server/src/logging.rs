//! Logging through `tracing`, to stderr, to a file (reopened on SIGHUP
//! for log rotation), or nowhere; with `--syslog` every line also goes to
//! the local syslog daemon, as gearmand does.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
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

/// The local syslog socket: `/dev/log`, or `$SPROCKET_SYSLOG_SOCKET`.
pub struct Syslog {
    path: PathBuf,
    socket: Mutex<Option<UnixDatagram>>,
}

impl Syslog {
    pub fn new() -> Syslog {
        let path = std::env::var_os("SPROCKET_SYSLOG_SOCKET").map(PathBuf::from).unwrap_or_else(|| "/dev/log".into());
        Syslog { path, socket: Mutex::new(None) }
    }

    /// Sends one line with facility user and `severity` (RFC 3164 local
    /// form, which rsyslog and journald read). A missing daemon is not an
    /// error: the line is dropped, and the next one tries to connect again.
    fn send(&self, severity: u8, line: &[u8]) {
        let Ok(mut socket) = self.socket.lock() else { return };
        let mut msg = format!("<{}>sprocketd[{}]: ", 8 + u32::from(severity), std::process::id()).into_bytes();
        msg.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
        for _ in 0..2 {
            if socket.is_none() {
                *socket = UnixDatagram::unbound().ok().filter(|s| s.connect(&self.path).is_ok());
            }
            match socket.as_ref().map(|s| s.send(&msg)) {
                Some(Ok(_)) | None => return,
                // The daemon restarted: reconnect once.
                Some(Err(_)) => *socket = None,
            }
        }
    }
}

impl Default for Syslog {
    fn default() -> Self {
        Syslog::new()
    }
}

/// Syslog severity of a tracing level.
fn severity(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

/// Writes one event to the log target and, with `--syslog`, collects it
/// for syslog, where it is sent as one message when the event is done.
pub struct LogWriter {
    target: LogTarget,
    syslog: Option<(Arc<Syslog>, u8)>,
    line: Vec<u8>,
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.syslog.is_some() {
            self.line.extend_from_slice(buf);
        }
        match &self.target {
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

impl Drop for LogWriter {
    fn drop(&mut self) {
        if let Some((syslog, severity)) = &self.syslog {
            if !self.line.is_empty() {
                syslog.send(*severity, &self.line);
            }
        }
    }
}

/// Where each event goes: the log target, plus syslog with `--syslog`.
#[derive(Clone)]
struct Sinks {
    target: LogTarget,
    syslog: Option<Arc<Syslog>>,
}

impl<'a> MakeWriter<'a> for Sinks {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter { target: self.target.clone(), syslog: None, line: Vec::new() }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LogWriter {
        let syslog = self.syslog.clone().map(|s| (s, severity(meta.level())));
        LogWriter { target: self.target.clone(), syslog, line: Vec::new() }
    }
}

pub fn init(target: &LogTarget, syslog: bool, level: tracing::Level) {
    let sinks = Sinks { target: target.clone(), syslog: syslog.then(|| Arc::new(Syslog::new())) };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(target.is_stderr() && io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(sinks)
        .try_init();
}
