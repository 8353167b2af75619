//! Text forms of records: the admin commands `record` and `records`, the
//! job log line, and the escaping of bytes they share.
//!
//! Escaping (admin text and the CLI's text view): printable ASCII and valid
//! UTF-8 characters stand for themselves; `\\`, `\t`, `\n`, `\r` and `\0`
//! stand for a backslash, tab, newline, carriage return and NUL; every other
//! byte — other control characters, including Unicode's C1 controls, and
//! bytes that are not UTF-8 — is written `\xNN` (two lowercase hex digits).
//! [`unescape`] reverses it exactly, and an escaped value never holds a tab
//! or a line break, so it fits in one tab-separated field of one line.

use std::fmt::Write as _;

use serde::Serialize;

use crate::json::split;
use crate::record::Record;

/// Writes `bytes` escaped (see the module documentation) onto `out`.
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    for piece in bytes.utf8_chunks() {
        for ch in piece.valid().chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\0' => out.push_str("\\0"),
                ch if ch.is_control() => {
                    let mut buf = [0; 4];
                    for byte in ch.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{byte:02x}");
                    }
                }
                ch => out.push(ch),
            }
        }
        for byte in piece.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
}

/// `bytes` escaped (see the module documentation).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_into(&mut out, bytes);
    out
}

/// An escaped string that [`escape`] could not have written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad escape at byte {at}: expected \\\\, \\t, \\n, \\r, \\0 or \\x followed by two hex digits")]
pub struct BadEscape {
    /// Where the backslash is.
    pub at: usize,
}

/// The bytes an escaped string stands for.
pub fn unescape(text: &str) -> Result<Vec<u8>, BadEscape> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte != b'\\' {
            out.push(byte);
            at += 1;
            continue;
        }
        let (value, len) = match bytes.get(at + 1) {
            Some(b'\\') => (b'\\', 2),
            Some(b't') => (b'\t', 2),
            Some(b'n') => (b'\n', 2),
            Some(b'r') => (b'\r', 2),
            Some(b'0') => (0, 2),
            Some(b'x') => {
                let hex = bytes.get(at + 2..at + 4).and_then(|hex| std::str::from_utf8(hex).ok());
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(value) => (value, 4),
                    None => return Err(BadEscape { at }),
                }
            }
            _ => return Err(BadEscape { at }),
        };
        out.push(value);
        at += len;
    }
    Ok(out)
}

fn time_or_dash(time: Option<u64>) -> String {
    time.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

/// The answer to the admin command `record <handle>`: one `key\tvalue` line
/// per field, then a line `.`.
///
/// Lines, in this order: `handle`, `function`, `unique`, `priority`,
/// `background` (1 or 0), `state`, `submitted`, `started`, `finished`
/// (Unix milliseconds, `-` when not yet), `attempts`; one `attempt` line per
/// kept attempt (`client id`, `peer`, `started`, `ended`, how it ended,
/// `-` while it runs, then its error text when it ended with one, and `cut`
/// when that text was cut); `failures` (failed attempts of the current
/// series) when any; `retry_at` while retrying; `payload` (the workload)
/// while dead; `status` (numerator, denominator) when a WORK_STATUS
/// came; one `data` or `warning` line per kept chunk in arrival order, with
/// a third field `cut` on a chunk kept only in part; `result` and `error`
/// when present; and `truncated` (chunks received, their bytes, the full
/// result length or `-`) when anything was cut. Byte values are escaped.
pub fn admin_record(record: &Record) -> String {
    let mut out = String::with_capacity(256 + record.payload_bytes() as usize);
    let mut line = |key: &str, value: &str| {
        out.push_str(key);
        out.push('\t');
        out.push_str(value);
        out.push('\n');
    };
    line("handle", &escape(record.handle()));
    line("function", &escape(record.function()));
    line("unique", &escape(record.unique()));
    line("priority", priority_name(record));
    line("background", if record.is_background() { "1" } else { "0" });
    line("state", record.state().as_str());
    line("submitted", &record.submitted().to_string());
    line("started", &time_or_dash(record.first_started()));
    line("finished", &time_or_dash(record.finished()));
    line("attempts", &record.attempts().to_string());
    for attempt in record.attempt_log() {
        let (ended, end) = match attempt.ended {
            Some((at, end)) => (at.to_string(), end.as_str()),
            None => ("-".to_owned(), "-"),
        };
        let mut value = format!(
            "{}\t{}\t{}\t{ended}\t{end}",
            escape(&attempt.worker.client_id),
            escape(attempt.worker.peer.as_bytes()),
            attempt.started
        );
        if let Some(error) = &attempt.error {
            value.push('\t');
            value.push_str(&escape(error));
            if attempt.error_cut {
                value.push_str("\tcut");
            }
        }
        line("attempt", &value);
    }
    if record.failures() > 0 {
        line("failures", &record.failures().to_string());
    }
    if let Some(at) = record.retry_at() {
        line("retry_at", &at.to_string());
    }
    if let Some(payload) = record.payload() {
        line("payload", &escape(payload));
    }
    if let Some(status) = record.status_numbers() {
        line("status", &format!("{}\t{}", status.numerator, status.denominator));
    }
    for chunk in record.chunks() {
        let mut value = escape(chunk.bytes());
        if chunk.is_cut() {
            value.push_str("\tcut");
        }
        line(chunk.kind().as_str(), &value);
    }
    if let Some(result) = record.result() {
        line("result", &escape(result));
    }
    if let Some(error) = record.error() {
        line("error", &escape(error));
    }
    if let Some(cut) = record.truncation() {
        let value = format!(
            "{}\t{}\t{}",
            cut.chunks_received,
            cut.chunk_bytes_received,
            time_or_dash(cut.result_bytes_received)
        );
        line("truncated", &value);
    }
    out.push_str(".\n");
    out
}

/// The answer to the admin command `records <function> [<state>]
/// [<limit>]`: one line per record, `handle\tstate\tattempts\tsubmitted\t
/// finished\tunique` (`-` for a job not finished, the unique escaped), then
/// a line `.`.
pub fn admin_record_list<'a>(records: impl IntoIterator<Item = &'a Record>) -> String {
    let mut out = String::new();
    for record in records {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}",
            escape(record.handle()),
            record.state(),
            record.attempts(),
            record.submitted(),
            time_or_dash(record.finished()),
            escape(record.unique())
        );
    }
    out.push_str(".\n");
    out
}

fn priority_name(record: &Record) -> &'static str {
    match record.priority() {
        sprocket_proto::Priority::High => "high",
        sprocket_proto::Priority::Normal => "normal",
        sprocket_proto::Priority::Low => "low",
    }
}

/// One line of the job log (`--job-log`): a JSON object, without the line
/// break.
///
/// Fields: `time` (when the job ended, RFC 3339 UTC with milliseconds),
/// `handle`, `function`, `unique`, `state`, `attempts`, `queue_wait_ms`,
/// `run_time_ms` (`null` for a job that never ran), `worker_id` and
/// `worker_peer` (the latest attempt's worker, `null` when none), `error`
/// (the exception text, `null` when none) and, only when `with_result` is
/// set (`--job-log-results`), `result`. Byte strings follow the JSON rule
/// of [`crate::json`]: `x_base64` instead of `x` when not UTF-8.
pub fn job_log_line(record: &Record, with_result: bool) -> String {
    let (handle, handle_base64) = split(record.handle());
    let (function, function_base64) = split(record.function());
    let (unique, unique_base64) = split(record.unique());
    let worker = record.last_worker();
    let (worker_id, worker_id_base64) = worker.map_or((None, None), |w| split(&w.client_id));
    let (error, error_base64) = record.error().map_or((None, None), split);
    let (result, result_base64) = match record.result() {
        Some(result) if with_result => split(result),
        _ => (None, None),
    };
    let line = JobLogLine {
        time: rfc3339_millis(record.finished().unwrap_or(record.submitted())),
        handle,
        handle_base64,
        function,
        function_base64,
        unique,
        unique_base64,
        state: record.state().as_str(),
        attempts: record.attempts(),
        queue_wait_ms: record.queue_wait(),
        run_time_ms: record.run_time(),
        worker_id,
        worker_id_base64,
        worker_peer: worker.map(|w| &*w.peer),
        error,
        error_base64,
        result: with_result.then_some(result),
        result_base64,
    };
    // Serializing strings and numbers into a String cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

#[derive(Serialize)]
struct JobLogLine<'a> {
    time: String,
    handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    handle_base64: Option<String>,
    function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_base64: Option<String>,
    unique: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_base64: Option<String>,
    state: &'static str,
    attempts: u32,
    queue_wait_ms: Option<u64>,
    run_time_ms: Option<u64>,
    worker_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker_id_base64: Option<String>,
    worker_peer: Option<&'a str>,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_base64: Option<String>,
    /// Absent without `--job-log-results`; `null` when there is no result.
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_base64: Option<String>,
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_millis(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        unix_ms % 1000
    )
}

/// The proleptic Gregorian date `days` days after 1970-01-01, counted in
/// 400-year eras of 146 097 days that start on 1 March, so that the leap
/// day falls at the end of an era's year.
fn civil_date(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use proptest::prelude::*;
    use sprocket_proto::Priority;

    use super::*;
    use crate::record::{Limits, Worker};
    use crate::state::{AttemptEnd, Outcome};

    #[test]
    fn escaping() {
        assert_eq!(escape(b"plain text"), "plain text");
        assert_eq!(escape(b"a\tb\nc\rd\0e\\f"), "a\\tb\\nc\\rd\\0e\\\\f");
        assert_eq!(escape(b"\x01\x7f"), "\\x01\\x7f");
        assert_eq!(escape("héllo ✓".as_bytes()), "héllo ✓");
        assert_eq!(escape(b"\xff\xc3("), "\\xff\\xc3(");
        assert_eq!(escape("\u{85}".as_bytes()), "\\xc2\\x85", "C1 control characters are escaped");
        assert_eq!(unescape("\\x4"), Err(BadEscape { at: 0 }));
        assert_eq!(unescape("ok\\q"), Err(BadEscape { at: 2 }));
        assert_eq!(unescape("x\\"), Err(BadEscape { at: 1 }));
        assert_eq!(unescape("\\xzz"), Err(BadEscape { at: 0 }));
    }

    proptest! {
        #[test]
        fn escape_round_trips_and_stays_on_one_field(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let escaped = escape(&bytes);
            prop_assert!(!escaped.contains(['\t', '\n', '\r']));
            prop_assert_eq!(unescape(&escaped), Ok(bytes));
        }
    }

    fn ended_record() -> Record {
        let mut record = Record::new(b"H:h:7", b"resize", b"img\t1", Priority::High, true, 1_000).unwrap();
        let worker = Worker { client_id: Bytes::from_static(b"w\xff"), peer: Arc::from("10.0.0.5:41000") };
        record.started(worker.clone(), 1_100).unwrap();
        record.attempt_ended(AttemptEnd::WorkerLost, 1_150).unwrap();
        record.started(worker, 1_200).unwrap();
        let limits = Limits { max_bytes: 12 };
        record.data(b"line\n", limits).unwrap();
        record.warning(b"hot", limits).unwrap();
        record.status(1, 3).unwrap();
        record.ended(Outcome::Exception(b"disk full, really full"), 1_700, limits).unwrap();
        record
    }

    #[test]
    fn admin_record_lines() {
        let expected = "handle\tH:h:7\nfunction\tresize\nunique\timg\\t1\npriority\thigh\nbackground\t1\n\
            state\texception\nsubmitted\t1000\nstarted\t1100\nfinished\t1700\nattempts\t2\n\
            attempt\tw\\xff\t10.0.0.5:41000\t1100\t1150\tworker_lost\n\
            attempt\tw\\xff\t10.0.0.5:41000\t1200\t1700\texception\tdisk full, r\tcut\nfailures\t2\n\
            status\t1\t3\ndata\tline\\n\nwarning\th\tcut\nerror\tdisk f\ntruncated\t2\t8\t22\n.\n";
        // The chunk budget is 6: "line\n" (5) and the first byte of "hot".
        assert_eq!(admin_record(&ended_record()), expected);
    }

    #[test]
    fn admin_record_of_a_queued_job() {
        let record = Record::new(b"H:h:8", b"f", b"", Priority::Normal, false, 5).unwrap();
        assert_eq!(
            admin_record(&record),
            "handle\tH:h:8\nfunction\tf\nunique\t\npriority\tnormal\nbackground\t0\nstate\tqueued\n\
             submitted\t5\nstarted\t-\nfinished\t-\nattempts\t0\n.\n"
        );
        assert_eq!(
            admin_record_list([&record, &ended_record()]),
            "H:h:8\tqueued\t0\t5\t-\t\nH:h:7\texception\t2\t1000\t1700\timg\\t1\n.\n"
        );
        assert_eq!(admin_record_list([]), ".\n");
    }

    #[test]
    fn job_log_lines() {
        let line: serde_json::Value = serde_json::from_str(&job_log_line(&ended_record(), false)).unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "time": "1970-01-01T00:00:01.700Z",
                "handle": "H:h:7", "function": "resize", "unique": "img\t1",
                "state": "exception", "attempts": 2, "queue_wait_ms": 100, "run_time_ms": 500,
                "worker_id": null, "worker_id_base64": "d/8=", "worker_peer": "10.0.0.5:41000",
                "error": "disk f"
            })
        );
        let mut done = Record::new(b"H:h:9", b"f", b"", Priority::Normal, true, 1_765_111_111_000).unwrap();
        let plain = job_log_line(&done, true);
        assert!(plain.contains("\"result\":null") && !plain.contains('\n'), "{plain}");
        done.ended(Outcome::Complete(b"\x00\xff"), 1_765_111_111_250, Limits::default()).unwrap();
        let line: serde_json::Value = serde_json::from_str(&job_log_line(&done, true)).unwrap();
        assert_eq!(line["time"], "2025-12-07T12:38:31.250Z");
        assert_eq!((&line["result"], &line["result_base64"]), (&serde_json::Value::Null, &serde_json::json!("AP8=")));
        assert_eq!((&line["queue_wait_ms"], &line["worker_id"]), (&serde_json::Value::Null, &serde_json::Value::Null));
        let without: serde_json::Value = serde_json::from_str(&job_log_line(&done, false)).unwrap();
        assert!(without.get("result").is_none() && without.get("result_base64").is_none(), "{without}");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_millis(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_millis(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }
}
