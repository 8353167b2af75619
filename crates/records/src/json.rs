//! The JSON form of a record: what `sprocket.record`, `sprocket record
//! --json` and the HTTP API return.
//!
//! One rule for every byte string (handle, function, unique, result, error,
//! chunks, worker client ids): a field `x` holds the bytes as a JSON string
//! when they are valid UTF-8; otherwise `x` is `null` and a field
//! `x_base64` holds them in standard base64 with padding. `x_base64` is
//! present only in that case, so a client reads `x_base64` when it is
//! there and `x` otherwise.
//!
//! `Record` implements `Serialize` and `Deserialize` in this form, so
//! `serde_json::to_string(&record)` and `serde_json::from_str::<Record>`
//! are all a caller needs. Fields a reader does not know are ignored, so a
//! later server may add fields.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use sprocket_proto::Priority;

use crate::record::{Attempt, Chunk, ChunkKind, Record, Run, Status, Worker};
use crate::state::{AttemptEnd, RecordState};

/// A byte string in the JSON rule: `(text, base64)`.
pub(crate) fn split(bytes: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Some(text.to_owned()), None),
        Err(_) => (None, Some(BASE64.encode(bytes))),
    }
}

fn split_opt(bytes: Option<&[u8]>) -> (Option<String>, Option<String>) {
    bytes.map_or((None, None), split)
}

/// Reads a byte string back; `None` when both halves are absent.
pub(crate) fn join(
    field: &'static str,
    text: Option<String>,
    base64: Option<String>,
) -> Result<Option<Vec<u8>>, de::value::Error> {
    match (text, base64) {
        (None, None) => Ok(None),
        (Some(text), None) => Ok(Some(text.into_bytes())),
        (None, Some(encoded)) => BASE64
            .decode(encoded.as_bytes())
            .map(Some)
            .map_err(|err| de::Error::custom(format_args!("{field}_base64 is not base64: {err}"))),
        (Some(_), Some(_)) => Err(de::Error::custom(format_args!("both {field} and {field}_base64 are given"))),
    }
}

fn required(field: &'static str, bytes: Option<Vec<u8>>) -> Result<Vec<u8>, de::value::Error> {
    bytes.ok_or_else(|| de::Error::custom(format_args!("{field} is missing")))
}

fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::High => "high",
        Priority::Normal => "normal",
        Priority::Low => "low",
    }
}

fn priority_from_name(name: &str) -> Result<Priority, de::value::Error> {
    match name {
        "high" => Ok(Priority::High),
        "normal" => Ok(Priority::Normal),
        "low" => Ok(Priority::Low),
        other => Err(de::Error::custom(format_args!("unknown priority {other:?} (expected high, normal or low)"))),
    }
}

#[derive(Serialize, Deserialize)]
struct RecordJson {
    handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handle_base64: Option<String>,
    function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    function_base64: Option<String>,
    unique: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unique_base64: Option<String>,
    priority: String,
    background: bool,
    state: RecordState,
    submitted: u64,
    #[serde(default)]
    started: Option<u64>,
    #[serde(default)]
    finished: Option<u64>,
    /// Derived (`started - submitted`); ignored when read.
    #[serde(default, skip_deserializing)]
    queue_wait_ms: Option<u64>,
    /// Derived (the latest attempt's duration); ignored when read.
    #[serde(default, skip_deserializing)]
    run_time_ms: Option<u64>,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    attempt_log: Vec<AttemptJson>,
    #[serde(default)]
    status: Option<StatusJson>,
    #[serde(default)]
    result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result_base64: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_base64: Option<String>,
    #[serde(default)]
    data: Vec<ChunkJson>,
    #[serde(default)]
    warnings: Vec<ChunkJson>,
    #[serde(default)]
    truncated: Option<TruncatedJson>,
    /// Failed attempts of the current series (what a policy's
    /// `max_attempts` counts); left out when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    failures: u32,
    /// While retrying: when the next attempt may begin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_at: Option<u64>,
    /// While dead: the job's workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize)]
struct AttemptJson {
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id_base64: Option<String>,
    peer: String,
    started: u64,
    #[serde(default)]
    ended: Option<u64>,
    #[serde(default)]
    end: Option<AttemptEnd>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_base64: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    error_cut: bool,
}

#[derive(Serialize, Deserialize)]
struct StatusJson {
    numerator: u32,
    denominator: u32,
}

/// One chunk; `seq` is its place among all chunks (data and warnings
/// together) in arrival order.
#[derive(Serialize, Deserialize)]
struct ChunkJson {
    seq: u64,
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    cut: bool,
}

#[derive(Serialize, Deserialize)]
struct TruncatedJson {
    chunks_received: u64,
    chunk_bytes_received: u64,
    #[serde(default)]
    result_bytes_received: Option<u64>,
}

impl From<&Record> for RecordJson {
    fn from(record: &Record) -> RecordJson {
        let (handle, handle_base64) = split(record.handle());
        let (function, function_base64) = split(record.function());
        let (unique, unique_base64) = split(record.unique());
        let (result, result_base64) = split_opt(record.result());
        let (error, error_base64) = split_opt(record.error());
        let attempt_log = record
            .attempt_log()
            .iter()
            .map(|attempt| {
                let (client_id, client_id_base64) = split(&attempt.worker.client_id);
                let (error, error_base64) = split_opt(attempt.error.as_deref());
                AttemptJson {
                    error,
                    error_base64,
                    error_cut: attempt.error_cut,
                    client_id,
                    client_id_base64,
                    peer: attempt.worker.peer.to_string(),
                    started: attempt.started,
                    ended: attempt.ended.map(|(at, _)| at),
                    end: attempt.ended.map(|(_, end)| end),
                }
            })
            .collect();
        let (mut data, mut warnings) = (Vec::new(), Vec::new());
        for (seq, chunk) in record.chunks().iter().enumerate() {
            let (value, value_base64) = split(chunk.bytes());
            let json = ChunkJson { seq: seq as u64, value, value_base64, cut: chunk.is_cut() };
            match chunk.kind() {
                ChunkKind::Data => data.push(json),
                ChunkKind::Warning => warnings.push(json),
            }
        }
        let (payload, payload_base64) = split_opt(record.payload());
        RecordJson {
            failures: record.failures(),
            retry_at: record.retry_at(),
            payload,
            payload_base64,
            handle,
            handle_base64,
            function,
            function_base64,
            unique,
            unique_base64,
            priority: priority_name(record.priority()).to_owned(),
            background: record.is_background(),
            state: record.state(),
            submitted: record.submitted(),
            started: record.first_started(),
            finished: record.finished(),
            queue_wait_ms: record.queue_wait(),
            run_time_ms: record.run_time(),
            attempts: record.attempts(),
            attempt_log,
            status: record.status_numbers().map(|s| StatusJson { numerator: s.numerator, denominator: s.denominator }),
            result,
            result_base64,
            error,
            error_base64,
            data,
            warnings,
            truncated: record.truncation().map(|t| TruncatedJson {
                chunks_received: t.chunks_received,
                chunk_bytes_received: t.chunk_bytes_received,
                result_bytes_received: t.result_bytes_received,
            }),
        }
    }
}

impl TryFrom<RecordJson> for Record {
    type Error = de::value::Error;

    fn try_from(json: RecordJson) -> Result<Record, de::value::Error> {
        let handle = required("handle", join("handle", json.handle, json.handle_base64)?)?;
        let function = required("function", join("function", json.function, json.function_base64)?)?;
        let unique = required("unique", join("unique", json.unique, json.unique_base64)?)?;
        let priority = priority_from_name(&json.priority)?;
        let queued = Record::new(&handle, &function, &unique, priority, json.background, json.submitted)
            .map_err(de::Error::custom)?;

        let attempt_log = json
            .attempt_log
            .into_iter()
            .map(|attempt| {
                let client_id = required("client_id", join("client_id", attempt.client_id, attempt.client_id_base64)?)?;
                let ended = match (attempt.ended, attempt.end) {
                    (Some(at), Some(end)) => Some((at, end)),
                    (None, None) => None,
                    _ => return Err(de::Error::custom("an attempt needs both ended and end, or neither")),
                };
                let worker = Worker { client_id: Bytes::from(client_id), peer: Arc::from(attempt.peer) };
                let error = join("attempt error", attempt.error, attempt.error_base64)?.map(Vec::into_boxed_slice);
                Ok(Attempt { worker, started: attempt.started, ended, error, error_cut: attempt.error_cut })
            })
            .collect::<Result<Vec<_>, de::value::Error>>()?;

        let chunks = merge_chunks(json.data, json.warnings)?;
        let chunk_bytes_kept: u64 = chunks.iter().map(|c| c.bytes().len() as u64).sum();
        let (chunks_received, chunk_bytes_received, result_bytes_received) = match json.truncated {
            Some(t) => (t.chunks_received, t.chunk_bytes_received, t.result_bytes_received),
            None => (chunks.len() as u64, chunk_bytes_kept, None),
        };
        let run = Run {
            attempts: json.attempts,
            first_started: json.started,
            finished: json.finished,
            attempt_log,
            chunks,
            chunks_received,
            chunk_bytes_received,
            chunk_bytes_kept,
            status: json.status.map(|s| Status { numerator: s.numerator, denominator: s.denominator }),
            result: join("result", json.result, json.result_base64)?.map(Vec::into_boxed_slice),
            error: join("error", json.error, json.error_base64)?.map(Vec::into_boxed_slice),
            result_bytes_received,
            failures: json.failures,
            retry_at: json.retry_at,
            payload: join("payload", json.payload, json.payload_base64)?.map(Vec::into_boxed_slice),
        };
        Ok(Record::from_parts(queued, json.state, run))
    }
}

/// Puts data and warnings back in arrival order; their `seq` numbers must
/// be exactly `0..n`.
fn merge_chunks(data: Vec<ChunkJson>, warnings: Vec<ChunkJson>) -> Result<Vec<Chunk>, de::value::Error> {
    let total = data.len() + warnings.len();
    let mut slots: Vec<Option<Chunk>> = vec![None; total];
    let tagged =
        data.into_iter().map(|c| (ChunkKind::Data, c)).chain(warnings.into_iter().map(|c| (ChunkKind::Warning, c)));
    for (kind, chunk) in tagged {
        let seq = chunk.seq;
        let slot = usize::try_from(seq)
            .ok()
            .and_then(|index| slots.get_mut(index))
            .ok_or_else(|| de::Error::custom(format_args!("chunk seq {seq} is beyond the {total} chunks")))?;
        if slot.is_some() {
            return Err(de::Error::custom(format_args!("two chunks have seq {seq}")));
        }
        let bytes = join("value", chunk.value, chunk.value_base64)?.unwrap_or_default();
        *slot = Some(Chunk::new(kind, bytes.into_boxed_slice(), chunk.cut));
    }
    // Every slot is filled: `total` chunks landed on distinct indexes below `total`.
    Ok(slots.into_iter().flatten().collect())
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RecordJson::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Record, D::Error> {
        let json = RecordJson::deserialize(deserializer)?;
        Record::try_from(json).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::record::tests::{queued, worker};
    use crate::record::Limits;
    use crate::state::Outcome;

    fn finished_binary() -> Record {
        let mut record = Record::new(b"H:h:9", b"resize", b"\xff\x00u", Priority::Low, true, 1_000).unwrap();
        record.started(worker("w1"), 1_100).unwrap();
        record.attempt_ended(AttemptEnd::WorkerLost, 1_150).unwrap();
        let binary_worker = Worker { client_id: Bytes::from_static(b"\x80id"), peer: Arc::from("[::1]:5") };
        record.started(binary_worker, 1_200).unwrap();
        record.data(b"first", Limits::default()).unwrap();
        record.warning(b"\xc3(", Limits::default()).unwrap();
        record.data(b"", Limits::default()).unwrap();
        record.status(3, 4).unwrap();
        record.ended(Outcome::Complete(&[0, 159, 146, 150]), 1_500, Limits::default()).unwrap();
        record
    }

    #[test]
    fn the_documented_shape() {
        let value = serde_json::to_value(finished_binary()).unwrap();
        assert_eq!(
            value,
            json!({
                "handle": "H:h:9",
                "function": "resize",
                "unique": null,
                "unique_base64": "/wB1",
                "priority": "low",
                "background": true,
                "state": "complete",
                "submitted": 1000,
                "started": 1100,
                "finished": 1500,
                "queue_wait_ms": 100,
                "run_time_ms": 300,
                "attempts": 2,
                "attempt_log": [
                    {"client_id": "w1", "peer": "127.0.0.1:40000", "started": 1100, "ended": 1150, "end": "worker_lost"},
                    {"client_id": null, "client_id_base64": "gGlk", "peer": "[::1]:5", "started": 1200, "ended": 1500, "end": "completed"}
                ],
                "status": {"numerator": 3, "denominator": 4},
                "result": null,
                "result_base64": "AJ+Slg==",
                "error": null,
                "failures": 1,
                "data": [{"seq": 0, "value": "first"}, {"seq": 2, "value": ""}],
                "warnings": [{"seq": 1, "value": null, "value_base64": "wyg="}],
                "truncated": null
            })
        );
    }

    #[test]
    fn round_trips_with_binary_payloads_and_truncation() {
        let mut cut = queued("H:h:10");
        cut.data(b"0123456789abcdef", Limits { max_bytes: 10 }).unwrap();
        cut.ended(Outcome::Exception("é".repeat(10).as_bytes()), 7, Limits { max_bytes: 10 }).unwrap();
        assert!(cut.truncation().is_some());
        // Cut inside a two-byte character: the kept text is no longer UTF-8.
        let value = serde_json::to_value(&cut).unwrap();
        assert!(value["error_base64"].is_string(), "{value}");
        assert_eq!(value["data"][0]["cut"], json!(true));
        assert_eq!(
            value["truncated"],
            json!({"chunks_received": 1, "chunk_bytes_received": 16, "result_bytes_received": 20})
        );
        for record in [finished_binary(), cut, queued("H:h:11")] {
            let text = serde_json::to_string(&record).unwrap();
            let back: Record = serde_json::from_str(&text).unwrap();
            assert_eq!(back, record, "{text}");
        }
    }

    #[test]
    fn bad_json_gets_a_clear_error() {
        let good = serde_json::to_value(finished_binary()).unwrap();
        let cases: [(&str, serde_json::Value, &str); 6] = [
            ("unique", json!("u"), "both unique and unique_base64"),
            ("result_base64", json!("***"), "result_base64 is not base64"),
            ("priority", json!("urgent"), "unknown priority"),
            ("state", json!("done"), "unknown variant"),
            ("warnings", json!([{"seq": 0, "value": "w"}]), "two chunks have seq 0"),
            ("data", json!([{"seq": 7, "value": "d"}]), "beyond the 2 chunks"),
        ];
        for (field, bad, expected) in cases {
            let mut value = good.clone();
            value[field] = bad;
            let err = serde_json::from_value::<Record>(value).unwrap_err().to_string();
            assert!(err.contains(expected), "{field}: {err}");
        }
        let mut value = good;
        value.as_object_mut().unwrap().remove("handle");
        let err = serde_json::from_value::<Record>(value).unwrap_err().to_string();
        assert!(err.contains("handle"), "{err}");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut value = serde_json::to_value(queued("H:h:12")).unwrap();
        value["added_later"] = json!({"x": 1});
        let back: Record = serde_json::from_value(value).unwrap();
        assert_eq!(back, queued("H:h:12"));
    }
}
