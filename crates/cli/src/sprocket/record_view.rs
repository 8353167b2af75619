//! How `sprocket record` and `sprocket records` show records as text.
//!
//! Byte values are escaped with the records crate's escaping (printable
//! text stands for itself, other bytes as `\xNN`, `\t`, `\n`, …), so every
//! value stays on one line. Values a job chose (unique id, result, error,
//! data and warning chunks) are shown in double quotes, so that an empty
//! value (`""`) and a missing one (`-`) differ; the quotes end the line,
//! so a quote inside the value needs no escaping.

use std::fmt::Write as _;

use sprocket_client::records::text::{escape, rfc3339_millis};
use sprocket_client::records::ChunkKind;
use sprocket_client::Priority;
use sprocket_client::Record;

/// Width of the key column of the single-record view.
const KEY_WIDTH: usize = 12;

fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", escape(bytes))
}

fn time_or_dash(time: Option<u64>) -> String {
    time.map_or_else(|| "-".to_owned(), rfc3339_millis)
}

fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::High => "high",
        Priority::Normal => "normal",
        Priority::Low => "low",
    }
}

/// The text view of one record: one `key  value` line per field.
///
/// Always: `handle`, `function`, `unique`, `priority`, `background`,
/// `state`, `attempts`, `submitted`, `started`, `finished` (RFC 3339 UTC,
/// `-` when not yet), `queue wait`, `run time` (milliseconds), `status`
/// (`numerator/denominator` of the last WORK_STATUS), `result`, `error`
/// (`-` when absent); then the WORK_DATA and WORK_WARNING chunks in arrival
/// order as `data` and `warnings` lines (a single `data -` or `warnings -`
/// line when there were none of that kind; `(cut)` after a chunk kept only
/// in part); then one `attempt N` line per kept attempt; and a `truncated`
/// line when the server's byte limit cut anything.
pub fn record_text(record: &Record) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: &str| {
        let _ = writeln!(out, "{key:<KEY_WIDTH$}{value}");
    };
    line("handle", &escape(record.handle()));
    line("function", &escape(record.function()));
    line("unique", &quoted(record.unique()));
    line("priority", priority_name(record.priority()));
    line("background", if record.is_background() { "yes" } else { "no" });
    line("state", record.state().as_str());
    line("attempts", &record.attempts().to_string());
    line("submitted", &rfc3339_millis(record.submitted()));
    line("started", &time_or_dash(record.first_started()));
    line("finished", &time_or_dash(record.finished()));
    line("queue wait", &record.queue_wait().map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")));
    line("run time", &record.run_time().map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")));
    let status = record.status_numbers().map(|s| format!("{}/{}", s.numerator, s.denominator));
    line("status", status.as_deref().unwrap_or("-"));
    line("result", &record.result().map_or_else(|| "-".to_owned(), quoted));
    line("error", &record.error().map_or_else(|| "-".to_owned(), quoted));
    let chunks = record.chunks();
    if !chunks.iter().any(|c| c.kind() == ChunkKind::Data) {
        line("data", "-");
    }
    if !chunks.iter().any(|c| c.kind() == ChunkKind::Warning) {
        line("warnings", "-");
    }
    for chunk in chunks {
        let key = match chunk.kind() {
            ChunkKind::Data => "data",
            ChunkKind::Warning => "warnings",
        };
        let cut = if chunk.is_cut() { " (cut)" } else { "" };
        line(key, &format!("{}{cut}", quoted(chunk.bytes())));
    }
    // The log keeps the latest attempts only; number them as the job counted them.
    let log = record.attempt_log();
    let first_number = (record.attempts() as usize).saturating_sub(log.len()) + 1;
    for (n, attempt) in log.iter().enumerate() {
        let ended = match attempt.ended {
            Some((at, end)) => format!("ended {} {end}", rfc3339_millis(at)),
            None => "running".to_owned(),
        };
        let value = format!(
            "worker {} {} started {} {ended}",
            escape(&attempt.worker.client_id),
            escape(attempt.worker.peer.as_bytes()),
            rfc3339_millis(attempt.started)
        );
        line(&format!("attempt {}", first_number + n), &value);
    }
    if let Some(cut) = record.truncation() {
        let result = match cut.result_bytes_received {
            Some(bytes) => format!(", result of {bytes} bytes cut"),
            None => String::new(),
        };
        line(
            "truncated",
            &format!("{} chunks of {} bytes received{result}", cut.chunks_received, cut.chunk_bytes_received),
        );
    }
    out
}

/// The header of `sprocket records`.
pub const LIST_HEADER: [&str; 6] = ["HANDLE", "FUNCTION", "STATE", "ATTEMPTS", "FINISHED", "UNIQUE"];

/// One row of `sprocket records` per record (under [`LIST_HEADER`]).
pub fn list_rows(records: &[Record]) -> Vec<Vec<String>> {
    records
        .iter()
        .map(|r| {
            vec![
                escape(r.handle()),
                escape(r.function()),
                r.state().as_str().to_owned(),
                r.attempts().to_string(),
                time_or_dash(r.finished()),
                quoted(r.unique()),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sprocket_client::records::{AttemptEnd, Limits, Outcome, Worker};

    use super::*;

    const T0: u64 = 1_765_111_111_000;

    fn worker(id: &'static [u8]) -> Worker {
        Worker { client_id: bytes::Bytes::from_static(id), peer: Arc::from("10.0.0.7:51234") }
    }

    /// A job that ran twice: lost its first worker, then sent data, a
    /// warning and a status and completed with bytes that are not UTF-8.
    fn ended_record() -> Record {
        let mut r = Record::new(b"H:host:42", b"resize", b"img\t7", Priority::High, true, T0).expect("record");
        let limits = Limits::default();
        r.started(worker(b"w-1"), T0 + 40).expect("start");
        r.attempt_ended(AttemptEnd::WorkerLost, T0 + 200).expect("lost");
        r.started(worker(b"-"), T0 + 300).expect("start again");
        r.data(b"half\ndone", limits).expect("data");
        r.warning(b"slow \"disk\"", limits).expect("warning");
        r.status(2, 2).expect("status");
        r.ended(Outcome::Complete(b"\xff\x00ok"), T0 + 900, limits).expect("end");
        r
    }

    #[test]
    fn the_text_view_shows_every_field_escaped_on_one_line_each() {
        let text = record_text(&ended_record());
        let expected = "\
handle      H:host:42
function    resize
unique      \"img\\t7\"
priority    high
background  yes
state       complete
attempts    2
submitted   2025-12-07T12:38:31.000Z
started     2025-12-07T12:38:31.040Z
finished    2025-12-07T12:38:31.900Z
queue wait  40 ms
run time    600 ms
status      2/2
result      \"\\xff\\0ok\"
error       -
data        \"half\\ndone\"
warnings    \"slow \"disk\"\"
attempt 1   worker w-1 10.0.0.7:51234 started 2025-12-07T12:38:31.040Z ended 2025-12-07T12:38:31.200Z worker_lost
attempt 2   worker - 10.0.0.7:51234 started 2025-12-07T12:38:31.300Z ended 2025-12-07T12:38:31.900Z completed
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_queued_record_shows_dashes_for_what_has_not_happened() {
        let r = Record::new(b"H:host:7", b"f", b"", Priority::Normal, false, T0).expect("record");
        let text = record_text(&r);
        for line in [
            "unique      \"\"\n",
            "background  no\n",
            "state       queued\n",
            "started     -\n",
            "finished    -\n",
            "queue wait  -\n",
            "status      -\n",
            "result      -\n",
            "error       -\n",
            "data        -\n",
            "warnings    -\n",
        ] {
            assert!(text.contains(line), "{line:?} missing in\n{text}");
        }
        assert!(!text.contains("attempt 1"), "{text}");
    }

    #[test]
    fn an_exception_and_a_cut_result_are_shown() {
        let mut r = Record::new(b"H:host:8", b"f", b"u", Priority::Low, true, T0).expect("record");
        let limits = Limits { max_bytes: 8 };
        r.started(worker(b"w"), T0).expect("start");
        r.ended(Outcome::Exception(b"boom: disk on fire"), T0 + 5, limits).expect("end");
        let text = record_text(&r);
        assert!(text.contains("error       \"boom: di\"\n"), "{text}");
        assert!(text.contains("truncated   0 chunks of 0 bytes received, result of 18 bytes cut\n"), "{text}");
    }

    #[test]
    fn list_rows_are_escaped_and_quoted() {
        let rows = list_rows(&[ended_record()]);
        assert_eq!(
            rows,
            vec![vec![
                "H:host:42".to_owned(),
                "resize".to_owned(),
                "complete".to_owned(),
                "2".to_owned(),
                "2025-12-07T12:38:31.900Z".to_owned(),
                "\"img\\t7\"".to_owned(),
            ]]
        );
    }

    /// The text example in docs/records.md is what this view prints for the
    /// record of the JSON example there.
    #[test]
    fn the_documented_text_view_is_what_the_code_prints() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/records.md");
        let doc = std::fs::read_to_string(path).expect("docs/records.md is readable");
        let json = doc.split("```json\n").nth(1).and_then(|b| b.split("\n```").next()).expect("the JSON example");
        let record: Record = serde_json::from_str(json).expect("the JSON example is a record");
        let section = doc.split("### `sprocket record HANDLE").nth(1).expect("the sprocket record section");
        let text = section.split("```\n").nth(1).expect("the text example");
        assert_eq!(record_text(&record), text);
    }

    #[test]
    fn the_json_form_base64s_bytes_that_are_not_utf8_and_reads_back() {
        let record = ended_record();
        let json = serde_json::to_value(&record).expect("serialize");
        assert_eq!(json["result"], serde_json::Value::Null);
        assert_eq!(json["result_base64"], "/wBvaw==");
        assert_eq!(json["unique"], "img\t7");
        assert_eq!(json["data"][0]["value"], "half\ndone");
        let back: Record = serde_json::from_value(json).expect("read back");
        assert_eq!(back.result(), record.result());
    }
}
