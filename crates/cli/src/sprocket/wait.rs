//! `sprocket wait`: waits for a job by handle (through sprocketd's
//! `sprocket.result`) and prints what it produces.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use sprocket_client::records::text::escape;
use sprocket_client::{Error, JobEvent, JobHandle, RecordState};

use super::duration::parse_duration;
use super::submit::{client, Progress, ProgressArg};
use super::ServerOpt;

/// The job completed; its result is on stdout.
pub const EXIT_COMPLETE: i32 = 0;
/// The job failed (also cancelled, timed out or dropped), or no server knows the handle.
pub const EXIT_FAILED: i32 = 1;
/// The job ended with an exception; its text is on stderr.
pub const EXIT_EXCEPTION: i32 = 2;
/// `--timeout` passed before the job ended; the job goes on.
pub const EXIT_WAIT_TIMED_OUT: i32 = 3;
/// The servers could not be asked, or the connection broke before the end.
pub const EXIT_NO_ANSWER: i32 = 4;

/// The exit statuses, as `sprocket wait --help` lists them.
pub const EXIT_HELP: &str = "\
Exit status:
  0  the job completed (its result is on stdout)
  1  the job failed, was cancelled, timed out or was dropped, or no server knows the handle
  2  the job ended with an exception (its text is on stderr); also a usage error
  3  --timeout passed before the job ended (the job goes on)
  4  no server could be asked, or the connection broke before the job ended";

/// `sprocket wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// The job handle, as `submit -b` printed it (e.g. H:host:42).
    pub handle: String,
    /// Give up waiting after this long: a whole number and a unit (ms, s, m,
    /// h, d, w), like 30s or 15m [default: wait as long as the job takes].
    #[arg(short = 't', long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Progress display for WORK_STATUS (as for `submit`).
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
}

/// How the job ended.
enum Ending {
    Complete(Bytes),
    Failed,
    Exception(Bytes),
}

/// Attaches to the job and follows it to its end: WORK_DATA chunks go to
/// stdout as they arrive (for an ended job, the ones its record kept),
/// warnings to stderr, status to `progress`.
async fn follow(client: &sprocket_client::Client, handle: &JobHandle, progress: &Progress) -> anyhow::Result<Ending> {
    let mut stream = client.attach(handle).await?;
    loop {
        match stream.next_event().await? {
            JobEvent::Data(chunk) => {
                let mut out = std::io::stdout().lock();
                out.write_all(&chunk)?;
                out.flush()?;
            }
            JobEvent::Warning(text) => eprintln!("warning: {}", escape(&text)),
            JobEvent::Status { numerator, denominator } => progress.update(numerator, denominator),
            JobEvent::Complete(result) => return Ok(Ending::Complete(result)),
            JobEvent::Failed => return Ok(Ending::Failed),
            JobEvent::Exception(text) => return Ok(Ending::Exception(text)),
            JobEvent::Created(_) => {}
        }
    }
}

/// Runs `sprocket wait`; the exit status says how the job ended.
pub async fn run(a: WaitArgs) -> anyhow::Result<i32> {
    let client = client(&a.server, None)?;
    let handle = JobHandle::from(a.handle.as_str());
    let progress = Progress::new(a.progress);
    let followed = match a.timeout {
        None => follow(&client, &handle, &progress).await,
        Some(limit) => match tokio::time::timeout(limit, follow(&client, &handle, &progress)).await {
            Ok(followed) => followed,
            Err(_) => {
                progress.finish();
                eprintln!(
                    "sprocket: job {} has not ended after {limit:?}; stopped waiting (the job goes on)",
                    a.handle
                );
                return Ok(EXIT_WAIT_TIMED_OUT);
            }
        },
    };
    progress.finish();
    let h = &a.handle;
    Ok(match followed {
        Ok(Ending::Complete(result)) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&result)?;
            out.flush()?;
            EXIT_COMPLETE
        }
        // sprocketd ends an attachment to a handle it does not know this
        // way too; the record (or its absence) tells the two apart.
        Ok(Ending::Failed) => match client.record(&handle).await {
            Ok(None) => unknown(h),
            Ok(Some(record)) => {
                eprintln!("sprocket: job {h} {}", ended_as(record.state()));
                EXIT_FAILED
            }
            Err(_) => {
                eprintln!("sprocket: job {h} failed (or was cancelled, timed out or dropped)");
                EXIT_FAILED
            }
        },
        Ok(Ending::Exception(text)) if text == UNKNOWN_JOB && matches!(client.record(&handle).await, Ok(None)) => {
            unknown(h)
        }
        Ok(Ending::Exception(text)) => {
            eprintln!("sprocket: job {h} ended with an exception: {}", escape(&text));
            EXIT_EXCEPTION
        }
        Err(e) => match e.downcast_ref::<Error>() {
            Some(Error::UnknownJob { .. }) => unknown(h),
            _ => {
                eprintln!("sprocket: {e:#}");
                EXIT_NO_ANSWER
            }
        },
    })
}

/// The exception text sprocketd ends an attachment to an unknown handle with.
const UNKNOWN_JOB: &[u8] = b"unknown job";

fn unknown(handle: &str) -> i32 {
    eprintln!("sprocket: no job {handle} (never issued, or ended and its record expired)");
    EXIT_FAILED
}

/// How a job that ended without a result ended, in words.
fn ended_as(state: RecordState) -> &'static str {
    match state {
        RecordState::Cancelled => "was cancelled",
        RecordState::Timeout => "timed out (its worker overran CAN_DO_TIMEOUT)",
        RecordState::Dropped => "was dropped (too many attempts ended without a result)",
        RecordState::Dead => "is dead (moved to the dead letters)",
        _ => "failed",
    }
}
