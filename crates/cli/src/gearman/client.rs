//! `gearman [options] [<data> …]`: client mode.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sprocket_client::{Client, ClientOptions, JobEvent, JobRequest, Priority, TlsConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Stdin};

use super::args::GearmanArgs;
use crate::output::{err_raw, GearmanOut};

/// Longest piece `-n` reads at once (gearman reads lines with an 8 KiB buffer).
const LINE_PIECE: usize = 8191;

/// What ends the whole run early.
struct Fatal(String);

/// Runs client mode; returns the exit status.
///
/// Like gearman(1), workloads go one at a time: each is sent to every
/// `-f` function at once, and the next is read (with `-n`/`-N`, the next
/// line of standard input) only when those jobs have finished. So
/// `tail -f log | gearman -n -f f` streams, results come out in input
/// order, and jobs sharing a `-u` unique do not merge.
pub async fn run(a: &GearmanArgs, tls: Option<TlsConfig>) -> i32 {
    if a.timeout_ms == Some(0) {
        // `-t 0` (or `-t abc`, which atoi reads as 0) is a zero timeout in
        // gearman(1): nothing is submitted and the wait fails at once.
        err_raw(b"gearman: gearman_client_run_tasks : gearman_wait(GEARMAN_TIMEOUT) timeout reached after 0 ms\n");
        return 1;
    }
    let timeout = a.timeout_ms.map(Duration::from_millis);
    let options = ClientOptions {
        // gearman(1) does not ask for exceptions: a worker's exception
        // reaches it as a failure.
        exceptions: false,
        connect_timeout: timeout.unwrap_or(Duration::from_secs(5)),
        response_timeout: timeout.unwrap_or(Duration::from_secs(30)),
        retry_max: Duration::from_millis(1),
        retry_initial: Duration::from_millis(1),
        tls,
        ..ClientOptions::default()
    };
    let client = match Client::with_options(a.servers(), options) {
        Ok(c) => c,
        Err(e) => {
            err_raw(format!("gearman: {e}\n").as_bytes());
            return 1;
        }
    };
    let out = Arc::new(Mutex::new(GearmanOut::new()));
    let mut source = Workloads::new(a);
    let mut any_failed = false;
    let status = loop {
        let workload = match source.next().await {
            Ok(Some(w)) => w,
            Ok(None) => break i32::from(any_failed),
            Err(e) => {
                err_raw(format!("gearman: cannot read standard input: {e}\n").as_bytes());
                break 1;
            }
        };
        let tasks = a.functions.iter().map(|f| run_task(&client, a, f.clone(), workload.clone(), out.clone(), timeout));
        match futures::future::try_join_all(tasks).await {
            Ok(failed) => any_failed |= failed.iter().any(|f| *f),
            Err(Fatal(msg)) => {
                err_raw(format!("gearman: gearman_client_run_tasks : {msg}\n").as_bytes());
                break 1;
            }
        }
    };
    if let Ok(mut o) = out.lock() {
        o.flush();
    }
    status
}

/// Where the workloads come from, read one at a time.
enum Workloads {
    /// Command-line arguments, in order.
    Operands(std::vec::IntoIter<std::ffi::OsString>),
    /// `-s`: one empty workload.
    Empty(bool),
    /// All of standard input as one workload.
    Whole(bool),
    /// `-n`/`-N`: one workload per line of standard input.
    Lines { input: BufReader<Stdin>, strip_newline: bool },
}

impl Workloads {
    fn new(a: &GearmanArgs) -> Workloads {
        if !a.operands.is_empty() {
            Workloads::Operands(a.operands.clone().into_iter())
        } else if a.no_stdin {
            Workloads::Empty(false)
        } else if a.per_line {
            Workloads::Lines { input: BufReader::new(tokio::io::stdin()), strip_newline: a.strip_newline }
        } else {
            Workloads::Whole(false)
        }
    }

    async fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        match self {
            Workloads::Operands(args) => {
                for arg in args.by_ref() {
                    if !arg.is_empty() {
                        return Ok(Some(Bytes::from(std::os::unix::ffi::OsStringExt::into_vec(arg))));
                    }
                    // As gearman: an empty argument is refused, the rest run.
                    err_raw(
                        b"gearman: gearman_client_add_task : add_task(GEARMAN_INVALID_ARGUMENT) invalid workload\n",
                    );
                }
                Ok(None)
            }
            Workloads::Empty(done) => Ok((!std::mem::replace(done, true)).then(Bytes::new)),
            Workloads::Whole(done) => {
                if std::mem::replace(done, true) {
                    return Ok(None);
                }
                let mut input = Vec::new();
                tokio::io::stdin().read_to_end(&mut input).await?;
                Ok(Some(Bytes::from(input)))
            }
            Workloads::Lines { input, strip_newline } => loop {
                let Some(mut piece) = read_piece(input).await? else { return Ok(None) };
                if *strip_newline {
                    // gearman drops the last byte whether or not it is a newline.
                    piece.pop();
                }
                if !piece.is_empty() {
                    return Ok(Some(Bytes::from(piece)));
                }
                err_raw(b"gearman: gearman_client_add_task : invalid workload (empty line skipped)\n");
            },
        }
    }
}

/// The next line of `input` with its newline, cut at `LINE_PIECE` bytes
/// as gearman's fixed line buffer cuts it; None at the end.
async fn read_piece(input: &mut BufReader<Stdin>) -> std::io::Result<Option<Vec<u8>>> {
    let mut piece = Vec::new();
    while piece.len() < LINE_PIECE {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            break;
        }
        let room = LINE_PIECE - piece.len();
        let take = match available.iter().take(room).position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => available.len().min(room),
        };
        piece.extend_from_slice(&available[..take]);
        input.consume(take);
        if piece.last() == Some(&b'\n') {
            break;
        }
    }
    Ok((!piece.is_empty()).then_some(piece))
}

fn job_request(a: &GearmanArgs, function: &[u8], workload: Bytes) -> JobRequest {
    let mut job = JobRequest::new(Bytes::copy_from_slice(function), workload);
    if a.high {
        job = job.priority(Priority::High);
    } else if a.low {
        job = job.priority(Priority::Low);
    }
    if let Some(u) = &a.unique {
        job = job.unique(u.clone());
    }
    if let Some(e) = a.epoch {
        job = job.at_epoch(e);
    }
    job
}

/// Runs one task; `Ok(true)` when the job failed.
async fn run_task(
    client: &Client,
    a: &GearmanArgs,
    function: Vec<u8>,
    workload: Bytes,
    out: Arc<Mutex<GearmanOut>>,
    timeout: Option<Duration>,
) -> Result<bool, Fatal> {
    if function.is_empty() {
        // As gearman: this task is refused, the other functions run.
        err_raw(b"gearman: gearman_client_add_task : add_task(GEARMAN_INVALID_ARGUMENT) invalid function\n");
        return Ok(false);
    }
    let job = job_request(a, &function, workload);
    let prefix: Vec<u8> = if a.prefix { [&function[..], b": "].concat() } else { Vec::new() };
    let print_line = |text: &[u8]| {
        if let Ok(mut o) = out.lock() {
            o.line_bytes(text);
        }
    };
    // gearman writes a bare payload straight out, but a prefixed one goes
    // through stdio like its own lines (so it is buffered in a pipe).
    let print_raw = |data: &[u8]| {
        if let Ok(mut o) = out.lock() {
            if prefix.is_empty() {
                o.raw(data);
            } else {
                let mut line = prefix.clone();
                line.extend_from_slice(data);
                o.line_bytes(&line);
            }
        }
    };
    if a.background || a.epoch.is_some() {
        let handle = client.submit_background_job(job).await.map_err(|e| Fatal(e.to_string()))?;
        if a.verbose {
            print_line(format!("Task created: {handle}\n").as_bytes());
        }
        return Ok(false);
    }
    let mut stream = client.submit_stream(job).await.map_err(|e| Fatal(e.to_string()))?;
    if a.verbose {
        print_line(format!("Task created: {}\n", stream.handle()).as_bytes());
    }
    loop {
        let next = stream.next_event();
        let ev = match timeout {
            Some(t) => match tokio::time::timeout(t, next).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Fatal(format!(
                        "gearman_wait(GEARMAN_TIMEOUT) timeout reached after {} ms",
                        t.as_millis()
                    )))
                }
            },
            None => next.await,
        }
        .map_err(|e| Fatal(e.to_string()))?;
        match ev {
            JobEvent::Data(d) => print_raw(&d),
            JobEvent::Complete(d) => {
                print_raw(&d);
                return Ok(false);
            }
            JobEvent::Warning(d) => {
                let mut msg = prefix.clone();
                msg.extend_from_slice(&d);
                err_raw(&msg);
            }
            JobEvent::Exception(d) => {
                let mut msg = prefix.clone();
                msg.extend_from_slice(&d);
                err_raw(&msg);
                return Ok(true);
            }
            JobEvent::Status { numerator, denominator } => {
                let pct = numerator.saturating_mul(100).checked_div(denominator).unwrap_or(0);
                let mut line = prefix.clone();
                line.extend_from_slice(format!("{pct}% Complete\n").as_bytes());
                print_line(&line);
            }
            JobEvent::Failed => {
                let mut msg = prefix.clone();
                msg.extend_from_slice(b"Job failed\n");
                err_raw(&msg);
                return Ok(true);
            }
            JobEvent::Created(_) => {}
        }
    }
}
