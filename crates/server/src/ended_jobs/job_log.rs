//! The job log writer: a thread of its own that formats and writes the
//! records of ended jobs the engine task hands it through a bounded
//! channel, so neither the formatting nor a slow disk holds up the engine.
//! After each batch the writer waits [`GATHER`] before it looks again, so
//! that under load the engine task adds to the queue without waking it for
//! every job (one wake-up and one write per batch, not per line). When the writer falls behind by [`QUEUE_LINES`] lines,
//! further lines are counted and left out (never queued without bound), and
//! the writer logs how many it left out. The file is opened in append mode,
//! reopened on SIGHUP (for logrotate), and flushed whenever the writer has
//! nothing more to write, and at shutdown.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use sprocket_records::text::job_log_line;
use sprocket_records::Record;

/// Lines that may wait for the writer before further ones are left out.
pub const QUEUE_LINES: usize = 65_536;

/// How often the writer looks at its flags when no line comes.
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// How long the writer lets lines gather after writing a batch.
pub const GATHER: Duration = Duration::from_millis(20);

/// Where the job log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobLogTarget {
    /// `--job-log -`.
    Stdout,
    /// `--job-log PATH`.
    File(PathBuf),
}

impl JobLogTarget {
    /// `-` is standard output; anything else a file path.
    pub fn parse(spec: &str) -> JobLogTarget {
        if spec == "-" {
            JobLogTarget::Stdout
        } else {
            JobLogTarget::File(PathBuf::from(spec))
        }
    }
}

enum Message {
    Line(Box<Record>),
    /// Look at the reopen flag now.
    Wake,
}

/// What the engine task and the writer share.
#[derive(Default)]
struct Shared {
    reopen: AtomicBool,
    /// Write out what is queued and stop (the signal handler's
    /// [`Reopener`] keeps the channel open for as long as the process runs).
    stop: AtomicBool,
    left_out: AtomicU64,
}

/// The sending side, owned beside the engine task.
pub struct JobLog {
    tx: SyncSender<Message>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Asks the writer to reopen its file (SIGHUP).
#[derive(Clone)]
pub struct Reopener {
    tx: SyncSender<Message>,
    shared: Arc<Shared>,
}

impl Reopener {
    /// The file is reopened before the next line is written.
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Release);
        // A full queue wakes the writer anyway.
        let _ = self.tx.try_send(Message::Wake);
    }
}

impl JobLog {
    /// Opens the target (so a path that cannot be written is refused at
    /// start) and starts the writer thread.
    /// With `results`, completed jobs' results are added to their lines.
    pub fn open(target: &JobLogTarget, results: bool) -> io::Result<JobLog> {
        let sink = Sink::open(target)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        let shared = Arc::new(Shared::default());
        let writer_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sprocketd-job-log".into())
            .spawn(move || write_lines(rx, sink, &writer_shared, results))?;
        Ok(JobLog { tx, shared, thread: Some(thread) })
    }

    /// Queues the line of one ended job; counts it left out when the writer
    /// is [`QUEUE_LINES`] behind.
    pub fn write(&self, record: Record) {
        match self.tx.try_send(Message::Line(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.left_out.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The handle SIGHUP uses.
    pub fn reopener(&self) -> Reopener {
        Reopener { tx: self.tx.clone(), shared: self.shared.clone() }
    }

    /// Writes out what is queued, flushes, and stops the writer.
    pub fn close(mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // Blocks only while the queue is full, that is while the writer is
        // busy writing it out.
        let _ = self.tx.send(Message::Wake);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the job log writer stopped abnormally");
            }
        }
    }
}

/// The open file or standard output.
enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File { path: PathBuf, out: BufWriter<File> },
}

impl Sink {
    fn open(target: &JobLogTarget) -> io::Result<Sink> {
        Ok(match target {
            JobLogTarget::Stdout => Sink::Stdout(BufWriter::new(io::stdout())),
            JobLogTarget::File(path) => {
                let file =
                    open_append(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                Sink::File { path: path.clone(), out: BufWriter::new(file) }
            }
        })
    }

    fn out(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(out) => out,
            Sink::File { out, .. } => out,
        }
    }

    /// Reopens the file by its path (after logrotate renamed it); keeps
    /// the old one when the path cannot be opened.
    fn reopen(&mut self) {
        let Sink::File { path, out } = self else { return };
        if let Err(e) = out.flush() {
            tracing::error!("cannot write the job log {}: {e}", path.display());
        }
        match open_append(path) {
            Ok(file) => *out = BufWriter::new(file),
            Err(e) => tracing::error!("cannot reopen the job log {}: {e}; still writing the old file", path.display()),
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The writer thread: until every sender is gone, writes lines, reopens
/// when asked, flushes when idle, and reports lines left out.
fn write_lines(rx: Receiver<Message>, mut sink: Sink, shared: &Shared, results: bool) {
    let mut failing = false;
    let mut reported_left_out = 0;
    loop {
        let first = match rx.recv_timeout(IDLE_WAKE) {
            Ok(message) => Some(message),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if shared.reopen.swap(false, Ordering::AcqRel) {
            sink.reopen();
        }
        let busy = first.is_some();
        let mut next = first;
        while let Some(message) = next {
            if let Message::Line(record) = message {
                let line = job_log_line(&record, results);
                let written = sink.out().write_all(line.as_bytes()).and_then(|()| sink.out().write_all(b"\n"));
                report_write(written, &mut failing);
            }
            next = rx.try_recv().ok();
        }
        report_write(sink.out().flush(), &mut failing);
        let left_out = shared.left_out.load(Ordering::Relaxed);
        if left_out > reported_left_out {
            tracing::warn!(
                lines = left_out - reported_left_out,
                "the job log writer fell behind by {QUEUE_LINES} lines; lines were left out"
            );
            reported_left_out = left_out;
        }
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        if busy {
            std::thread::sleep(GATHER);
        }
    }
    report_write(sink.out().flush(), &mut failing);
}

/// Logs the first of a run of write errors, and the recovery.
fn report_write(result: io::Result<()>, failing: &mut bool) {
    match result {
        Err(e) if !*failing => {
            tracing::error!("cannot write the job log: {e}");
            *failing = true;
        }
        Ok(()) if *failing => {
            tracing::info!("writing the job log again");
            *failing = false;
        }
        _ => {}
    }
}
