//! `sprocket record` and `sprocket records`: job records kept by sprocketd.

use std::time::{Duration, SystemTime};

use clap::Args;
use sprocket_client::{JobHandle, RecordFilter, RecordState};

use super::duration::parse_duration;
use super::record_view::{list_rows, record_text, LIST_HEADER};
use super::submit::client;
use super::table;
use super::ServerOpt;

/// `sprocket record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// The job handle, as `submit -b` printed it (e.g. H:host:42).
    pub handle: String,
    /// Print the record as JSON (bytes that are not UTF-8 in `x_base64` fields).
    #[arg(long)]
    pub json: bool,
}

/// `sprocket records`.
#[derive(Debug, Args)]
pub struct RecordsArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// Only jobs of this function.
    #[arg(short = 'f', long)]
    pub function: Option<String>,
    /// Only jobs that ended in this state: complete, failed, exception,
    /// cancelled, timeout, dropped or dead.
    #[arg(long, value_parser = parse_ended_state)]
    pub state: Option<RecordState>,
    /// Only jobs that ended within this long before now: a whole number and
    /// a unit (ms, s, m, h, d, w), like 30s, 15m, 1h or 2d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Only jobs whose error text (the exception text) contains TEXT,
    /// without regard to case.
    #[arg(long, value_name = "TEXT", value_parser = parse_error_text)]
    pub error: Option<String>,
    /// At most this many records (1 to 10000) [default: 100].
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u32).range(1..=i64::from(RecordFilter::MAX_LIMIT)))]
    pub limit: Option<u32>,
    /// Print a JSON array of records instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `sprocket dead`: `sprocket records` of dead jobs.
#[derive(Debug, Args)]
pub struct DeadArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// Only dead jobs of this function.
    #[arg(short = 'f', long)]
    pub function: Option<String>,
    /// Only dead jobs that ended (died) within this long before now: a
    /// whole number and a unit (ms, s, m, h, d, w), like 30s, 15m, 1h or 2d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Only dead jobs whose error text contains TEXT, without regard to case.
    #[arg(long, value_name = "TEXT", value_parser = parse_error_text)]
    pub error: Option<String>,
    /// At most this many records (1 to 10000) [default: 100].
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u32).range(1..=i64::from(RecordFilter::MAX_LIMIT)))]
    pub limit: Option<u32>,
    /// Print a JSON array of records instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl From<DeadArgs> for RecordsArgs {
    fn from(a: DeadArgs) -> RecordsArgs {
        RecordsArgs {
            server: a.server,
            function: a.function,
            state: Some(RecordState::Dead),
            since: a.since,
            error: a.error,
            limit: a.limit,
            json: a.json,
        }
    }
}

/// An error text to look for: not empty (leaving the flag out matches
/// every record).
fn parse_error_text(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the error text to look for cannot be empty (leave --error out to list every record)".into());
    }
    Ok(text.to_owned())
}

/// A state for `--state`: one of the record states, and a final one, since
/// the listing holds ended jobs only.
pub fn parse_ended_state(text: &str) -> Result<RecordState, String> {
    let state: RecordState = text.parse().map_err(|e| format!("{e}"))?;
    if !state.is_final() {
        return Err(format!(
            "{state} is the state of a job that has not ended, and records lists ended jobs only \
             (see a live job with `sprocket record HANDLE` or `sprocket admin jobs`)"
        ));
    }
    Ok(state)
}

/// The filter `sprocket records` sends, with `--since` counted back from `now`.
pub fn filter_of(a: &RecordsArgs, now: SystemTime) -> anyhow::Result<RecordFilter> {
    let mut filter = RecordFilter {
        function: a.function.clone(),
        state: a.state,
        error: a.error.clone(),
        limit: a.limit,
        ..RecordFilter::new()
    };
    if let Some(since) = a.since {
        let Some(start) = now.checked_sub(since) else {
            anyhow::bail!("--since {since:?} reaches back further than this system's clock can count");
        };
        if start < SystemTime::UNIX_EPOCH {
            anyhow::bail!("--since {since:?} reaches back before 1970");
        }
        filter = filter.since(start);
    }
    Ok(filter)
}

/// Runs `sprocket record`: exit 0 with the record, 1 when no server has one.
pub async fn record(a: RecordArgs) -> anyhow::Result<i32> {
    let client = client(&a.server, None)?;
    let handle = JobHandle::from(a.handle.as_str());
    match client.record(&handle).await? {
        Some(record) if a.json => println!("{}", serde_json::to_string(&record)?),
        Some(record) => print!("{}", record_text(&record)),
        None => {
            eprintln!("sprocket: no record of job {} (never issued, or ended and its record expired)", a.handle);
            return Ok(1);
        }
    }
    Ok(0)
}

/// Runs `sprocket records`.
pub async fn records(a: RecordsArgs) -> anyhow::Result<i32> {
    let filter = filter_of(&a, SystemTime::now())?;
    let client = client(&a.server, None)?;
    let records = client.records(&filter).await?;
    if a.json {
        println!("{}", serde_json::to_string(&records)?);
    } else {
        print!("{}", table::render(&LIST_HEADER, &list_rows(&records)));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::sprocket::{Cli, Command};

    fn parse(args: &[&str]) -> Result<RecordsArgs, clap::Error> {
        let argv = ["sprocket", "records"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Records(a) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn states_are_checked_against_the_ended_record_states() {
        for state in RecordState::ALL {
            let parsed = parse(&["--state", state.as_str()]);
            if state.is_final() {
                assert_eq!(parsed.expect("an ended state").state, Some(state));
            } else {
                let err = parsed.expect_err("a live state").to_string();
                assert!(err.contains("has not ended"), "{err}");
            }
        }
        let err = parse(&["--state", "done"]).expect_err("no such state").to_string();
        assert!(err.contains("unknown job state \"done\""), "{err}");
        assert!(err.contains("complete, failed, exception"), "{err}");
    }

    #[test]
    fn since_is_counted_back_from_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_111_111);
        let a = parse(&["--since", "1h", "-f", "resize", "--limit", "5", "--state", "failed"]).expect("valid");
        let filter = filter_of(&a, now).expect("a filter");
        assert_eq!(filter.since_ms, Some((1_765_111_111 - 3600) * 1000));
        assert_eq!(filter.function.as_deref(), Some("resize"));
        assert_eq!(filter.limit, Some(5));
        assert_eq!(filter.to_json(), r#"{"function":"resize","state":"failed","since_ms":1765107511000,"limit":5}"#);
        let far = parse(&["--since", "30000d"]).expect("a valid duration");
        let err = filter_of(&far, now).expect_err("before 1970").to_string();
        assert!(err.contains("before 1970"), "{err}");
    }

    #[test]
    fn error_text_goes_into_the_filter() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_111_111);
        let a = parse(&["--error", "Disk full", "-f", "resize"]).expect("valid");
        let filter = filter_of(&a, now).expect("a filter");
        assert_eq!(filter.to_json(), r#"{"function":"resize","error":"Disk full"}"#);
        let err = parse(&["--error", ""]).expect_err("empty text").to_string();
        assert!(err.contains("cannot be empty"), "{err}");
        let dead = match Cli::try_parse_from(["sprocket", "dead", "-f", "resize", "--error", "boom"]).unwrap().command {
            Command::Dead(a) => RecordsArgs::from(a),
            other => panic!("parsed as {other:?}"),
        };
        let filter = filter_of(&dead, now).expect("a filter");
        assert_eq!(filter.to_json(), r#"{"function":"resize","state":"dead","error":"boom"}"#);
    }

    #[test]
    fn bad_durations_and_limits_are_usage_errors() {
        let err = parse(&["--since", "1 hour"]).expect_err("bad duration").to_string();
        assert!(err.contains("\"1 hour\" is not a duration"), "{err}");
        for bad in ["0", "10001", "-1", "x"] {
            assert!(parse(&["--limit", bad]).is_err(), "--limit {bad}");
        }
        assert_eq!(parse(&["--limit", "10000"]).expect("the largest limit").limit, Some(10_000));
        assert_eq!(parse(&[]).expect("no filter").limit, None);
    }
}
