//! The storage form of a record: compact bytes for one database column or
//! Redis value.
//!
//! The first byte is the format version. A reader knows every version up to
//! its own [`FORMAT_VERSION`], so rows written by an older server stay
//! readable after an upgrade; a row from a newer server is refused with
//! [`StoredError::UnknownVersion`] rather than misread. Bytes are not
//! base64-encoded here (a third smaller than JSON for binary results).
//!
//! Version 1, integers little-endian, `bytes` = `u32` length then the bytes,
//! `opt X` = one byte 0 (absent) or 1 followed by X:
//!
//! ```text
//! u8 version (1)
//! bytes handle, bytes function, bytes unique
//! u8 priority (0 high, 1 normal, 2 low), u8 flags (bit 0: background), u8 state
//! u64 submitted, u32 attempts, opt u64 first started, opt u64 finished
//! opt (u32 numerator, u32 denominator)
//! opt bytes result, opt bytes error
//! u64 chunks received, u64 chunk bytes received, opt u64 result bytes received
//! u32 chunk count, then per chunk: u8 kind (0 data, 1 warning; +0x80 when cut), bytes
//! u32 attempt count, then per attempt: bytes client id, bytes peer (UTF-8),
//!     u64 started, opt (u64 ended, u8 how it ended)
//! ```
//!
//! Version 2 adds, to each attempt after its end, `opt (u8 cut, bytes error
//! text)`, and after the attempts `u32 failures in the current series, opt
//! u64 retry at, opt bytes workload (of a dead job)`. Version 1 rows read as
//! having none of these.

use std::sync::Arc;

use bytes::Bytes;
use sprocket_proto::Priority;

use crate::record::{Attempt, Chunk, ChunkKind, Record, Run, Status, Worker};
use crate::state::{AttemptEnd, RecordState};

/// The version this crate writes.
pub const FORMAT_VERSION: u8 = 2;

const CUT_FLAG: u8 = 0x80;

/// Why stored bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredError {
    /// The bytes end before the record does.
    #[error("stored record ends early (at byte {at} of {len})")]
    Truncated {
        /// Where more was needed.
        at: usize,
        /// How many bytes there were.
        len: usize,
    },
    /// Written by a newer server (or not a record at all).
    #[error("stored record has format version {0}; this server reads versions 1 to {FORMAT_VERSION}")]
    UnknownVersion(u8),
    /// A code byte outside its range.
    #[error("stored record has {field} code {code}, which is not defined")]
    BadCode {
        /// Which field.
        field: &'static str,
        /// The code found.
        code: u8,
    },
    /// A text field that is not UTF-8.
    #[error("stored record's {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// Bytes after the end of the record.
    #[error("stored record has {0} bytes after its end")]
    TrailingBytes(usize),
    /// A field too long for a record.
    #[error(transparent)]
    TooLong(#[from] crate::record::FieldTooLong),
}

/// Encodes `record` in the current format. Fails only for a byte string
/// longer than 32 bits can count (no Gearman packet carries one).
pub fn encode(record: &Record) -> Result<Vec<u8>, crate::record::FieldTooLong> {
    let mut out = Writer { out: Vec::with_capacity(80 + record.payload_bytes() as usize), too_long: None };
    out.u8(FORMAT_VERSION);
    out.bytes(record.handle());
    out.bytes(record.function());
    out.bytes(record.unique());
    out.u8(record.priority().code());
    out.u8(u8::from(record.is_background()));
    out.u8(record.state().code());
    out.u64(record.submitted());
    out.u32(record.attempts());
    out.opt(record.first_started(), Writer::u64);
    out.opt(record.finished(), Writer::u64);
    out.opt(record.status_numbers(), |out, status| {
        out.u32(status.numerator);
        out.u32(status.denominator);
    });
    out.opt(record.result(), Writer::bytes);
    out.opt(record.error(), Writer::bytes);
    let kept_bytes: u64 = record.chunks().iter().map(|c| c.bytes().len() as u64).sum();
    let truncation = record.truncation();
    out.u64(truncation.map_or(record.chunks().len() as u64, |t| t.chunks_received));
    out.u64(truncation.map_or(kept_bytes, |t| t.chunk_bytes_received));
    out.opt(truncation.and_then(|t| t.result_bytes_received), Writer::u64);
    out.count(record.chunks().len());
    for chunk in record.chunks() {
        let kind = match chunk.kind() {
            ChunkKind::Data => 0,
            ChunkKind::Warning => 1,
        };
        out.u8(if chunk.is_cut() { kind | CUT_FLAG } else { kind });
        out.bytes(chunk.bytes());
    }
    out.count(record.attempt_log().len());
    for attempt in record.attempt_log() {
        out.bytes(&attempt.worker.client_id);
        out.bytes(attempt.worker.peer.as_bytes());
        out.u64(attempt.started);
        out.opt(attempt.ended, |out, (at, end)| {
            out.u64(at);
            out.u8(end.code());
        });
        out.opt(attempt.error.as_deref(), |out, error| {
            out.u8(u8::from(attempt.error_cut));
            out.bytes(error);
        });
    }
    out.u32(record.failures());
    out.opt(record.retry_at(), Writer::u64);
    out.opt(record.payload(), Writer::bytes);
    match out.too_long {
        Some(err) => Err(err),
        None => Ok(out.out),
    }
}

/// Decodes a record written by this or an older version.
pub fn decode(bytes: &[u8]) -> Result<Record, StoredError> {
    let mut input = Reader { bytes, at: 0 };
    match input.u8()? {
        version @ 1..=FORMAT_VERSION => decode_body(&mut input, version),
        version => Err(StoredError::UnknownVersion(version)),
    }
}

fn decode_body(input: &mut Reader<'_>, version: u8) -> Result<Record, StoredError> {
    let handle = input.bytes()?;
    let function = input.bytes()?;
    let unique = input.bytes()?;
    let priority = match input.u8()? {
        code @ 0..=2 => Priority::from_code(i64::from(code)),
        code => return Err(StoredError::BadCode { field: "priority", code }),
    };
    let background = match input.u8()? {
        flags @ 0..=1 => flags == 1,
        code => return Err(StoredError::BadCode { field: "flags", code }),
    };
    let state_code = input.u8()?;
    let state = RecordState::from_code(state_code).ok_or(StoredError::BadCode { field: "state", code: state_code })?;
    let submitted = input.u64()?;
    let queued = Record::new(handle, function, unique, priority, background, submitted)?;

    let attempts = input.u32()?;
    let first_started = input.opt(Reader::u64)?;
    let finished = input.opt(Reader::u64)?;
    let status = input.opt(|input| Ok(Status { numerator: input.u32()?, denominator: input.u32()? }))?;
    let result = input.opt(|input| Ok(Box::from(input.bytes()?)))?;
    let error = input.opt(|input| Ok(Box::from(input.bytes()?)))?;
    let chunks_received = input.u64()?;
    let chunk_bytes_received = input.u64()?;
    let result_bytes_received = input.opt(Reader::u64)?;
    let chunks = input.list(|input| {
        let tag = input.u8()?;
        let kind = match tag & !CUT_FLAG {
            0 => ChunkKind::Data,
            1 => ChunkKind::Warning,
            _ => return Err(StoredError::BadCode { field: "chunk kind", code: tag }),
        };
        Ok(Chunk::new(kind, Box::from(input.bytes()?), tag & CUT_FLAG != 0))
    })?;
    let attempt_log = input.list(|input| {
        let client_id = Bytes::copy_from_slice(input.bytes()?);
        let peer = std::str::from_utf8(input.bytes()?).map_err(|_| StoredError::NotUtf8("worker peer"))?;
        let started = input.u64()?;
        let ended = input.opt(|input| {
            let at = input.u64()?;
            let code = input.u8()?;
            let end = AttemptEnd::from_code(code).ok_or(StoredError::BadCode { field: "attempt end", code })?;
            Ok((at, end))
        })?;
        let (error, error_cut) = if version >= 2 {
            input
                .opt(|input| {
                    let cut = match input.u8()? {
                        flag @ 0..=1 => flag == 1,
                        code => return Err(StoredError::BadCode { field: "attempt error cut", code }),
                    };
                    Ok((Box::from(input.bytes()?), cut))
                })?
                .map_or((None, false), |(error, cut)| (Some(error), cut))
        } else {
            (None, false)
        };
        Ok(Attempt { worker: Worker { client_id, peer: Arc::from(peer) }, started, ended, error, error_cut })
    })?;
    let (failures, retry_at, payload) = if version >= 2 {
        (input.u32()?, input.opt(Reader::u64)?, input.opt(|input| Ok(Box::from(input.bytes()?)))?)
    } else {
        (0, None, None)
    };
    if input.remaining() > 0 {
        return Err(StoredError::TrailingBytes(input.remaining()));
    }
    let chunk_bytes_kept = chunks.iter().map(|c| c.bytes().len() as u64).sum();
    let run = Run {
        attempts,
        first_started,
        finished,
        attempt_log,
        chunks,
        chunks_received,
        chunk_bytes_received,
        chunk_bytes_kept,
        status,
        result,
        error,
        result_bytes_received,
        failures,
        retry_at,
        payload,
    };
    Ok(Record::from_parts(queued, state, run))
}

struct Writer {
    out: Vec<u8>,
    /// The first length that did not fit.
    too_long: Option<crate::record::FieldTooLong>,
}

impl Writer {
    fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// A length or count; one beyond 32 bits makes the encoding fail.
    fn count(&mut self, len: usize) {
        let counted = u32::try_from(len).unwrap_or_else(|_| {
            self.too_long.get_or_insert(crate::record::FieldTooLong { field: "stored byte string", len });
            0
        });
        self.u32(counted);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.out.extend_from_slice(bytes);
    }

    fn opt<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Writer, T)) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                write(self, value);
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], StoredError> {
        if len > self.remaining() {
            return Err(StoredError::Truncated { at: self.at, len: self.bytes.len() });
        }
        let taken = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoredError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, StoredError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, StoredError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, StoredError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoredError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn opt<T>(
        &mut self,
        read: impl FnOnce(&mut Reader<'a>) -> Result<T, StoredError>,
    ) -> Result<Option<T>, StoredError> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            code => Err(StoredError::BadCode { field: "presence", code }),
        }
    }

    /// A counted list. The count is not trusted for the allocation: every
    /// element takes at least one byte, so a count beyond the bytes left is
    /// refused before anything is reserved.
    fn list<T>(
        &mut self,
        mut read: impl FnMut(&mut Reader<'a>) -> Result<T, StoredError>,
    ) -> Result<Vec<T>, StoredError> {
        let count = self.u32()? as usize;
        if count > self.remaining() {
            return Err(StoredError::Truncated { at: self.at, len: self.bytes.len() });
        }
        (0..count).map(|_| read(self)).collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::record::tests::{queued, worker};
    use crate::record::Limits;
    use crate::state::Outcome;

    /// Drives a record through a random sequence of events.
    fn arbitrary_record() -> impl Strategy<Value = Record> {
        let event = prop_oneof![
            (any::<u8>()).prop_map(|n| (0u8, vec![n])),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(|b| (1u8, b)),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(|b| (2u8, b)),
            (any::<u32>()).prop_map(|n| (3u8, n.to_le_bytes().to_vec())),
            Just((4u8, vec![])),
        ];
        (
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(event, 0..12),
            0u8..8,
            proptest::collection::vec(any::<u8>(), 0..30),
            0u64..40,
        )
            .prop_map(|(unique, events, end, payload, max_bytes)| {
                let limits = Limits { max_bytes };
                let mut record = Record::new(b"H:p:1", b"f\xff", &unique, Priority::High, false, 10).unwrap();
                for (at, (kind, bytes)) in (20u64..).zip(events) {
                    let _ = match kind {
                        0 => record.started(worker(&format!("w{}", bytes[0])), at),
                        1 => record.data(&bytes, limits),
                        2 => record.warning(&bytes, limits),
                        3 => record.status(u32::from(bytes[0]), 9),
                        _ => record.attempt_ended(AttemptEnd::Timeout, at),
                    };
                }
                let outcome = match end {
                    0 => Outcome::Complete(&payload),
                    1 => Outcome::Exception(&payload),
                    2 => Outcome::Failed,
                    3 => Outcome::Cancelled,
                    4 => Outcome::Timeout,
                    5 => Outcome::Dropped,
                    _ => return record, // still live
                };
                let _ = record.ended(outcome, 99, limits);
                record
            })
    }

    proptest! {
        #[test]
        fn round_trip(record in arbitrary_record()) {
            let encoded = encode(&record).unwrap();
            prop_assert_eq!(decode(&encoded), Ok(record.clone()));
            // Every cut short form is refused, never misread.
            for len in 0..encoded.len() {
                prop_assert!(decode(&encoded[..len]).is_err());
            }
            // JSON agrees too.
            let json = serde_json::to_string(&record).unwrap();
            prop_assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), record);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn a_queued_record_is_a_few_dozen_bytes() {
        let encoded = encode(&queued("H:h:1")).unwrap();
        // version, three ids with lengths, codes, times and counts of
        // nothing, then failures and two absent options (version 2).
        assert_eq!(encoded.len(), 1 + (4 + 5) + (4 + 6) + (4 + 5) + 3 + 8 + 4 + 5 + 8 + 8 + 1 + 4 + 4 + 4 + 2);
    }

    #[test]
    fn version_1_rows_still_read() {
        // A queued record in version 1 is version 2 without its last six
        // bytes (failures and two absent options).
        let record = queued("H:h:1");
        let mut v1 = encode(&record).unwrap();
        v1.truncate(v1.len() - 6);
        v1[0] = 1;
        assert_eq!(decode(&v1), Ok(record));
    }

    #[test]
    fn retrying_and_dead_records_round_trip_with_attempt_errors() {
        let mut record = queued("H:h:3");
        record.started(worker("w"), 5).unwrap();
        record.retrying(AttemptEnd::Exception, Some(b"disk full"), 2_000, 6, Limits::default()).unwrap();
        assert_eq!(decode(&encode(&record).unwrap()), Ok(record.clone()));
        record.started(worker("w"), 2_000).unwrap();
        let long = vec![b'x'; crate::record::ATTEMPT_ERROR_BYTES + 5];
        let dead = Outcome::Dead { end: AttemptEnd::Exception, error: Some(&long), payload: b"\x00work" };
        record.ended(dead, 2_100, Limits::default()).unwrap();
        let back = decode(&encode(&record).unwrap()).unwrap();
        assert_eq!(back, record);
        assert_eq!((back.state(), back.failures(), back.payload()), (RecordState::Dead, 2, Some(&b"\x00work"[..])));
        assert!(back.attempt_log()[1].error_cut);
        assert_eq!(back.error(), Some(&long[..]));
    }

    #[test]
    fn errors_name_the_problem() {
        let mut record = queued("H:h:2");
        record.started(worker("w"), 5).unwrap();
        record.ended(Outcome::Complete(b"r"), 6, Limits::default()).unwrap();
        let good = encode(&record).unwrap();

        assert_eq!(decode(&[3]), Err(StoredError::UnknownVersion(3)));
        assert_eq!(decode(&[]), Err(StoredError::Truncated { at: 0, len: 0 }));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(StoredError::TrailingBytes(1)));
        let state_at = 1 + 4 + 5 + 4 + 6 + 4 + 5 + 2;
        let mut bad_state = good.clone();
        bad_state[state_at] = 77;
        assert_eq!(decode(&bad_state), Err(StoredError::BadCode { field: "state", code: 77 }));
        let mut bad_priority = good.clone();
        bad_priority[state_at - 2] = 3;
        assert_eq!(decode(&bad_priority), Err(StoredError::BadCode { field: "priority", code: 3 }));
        // A huge length is refused without allocating it.
        let mut huge = good;
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&huge), Err(StoredError::Truncated { .. })));
        assert!(StoredError::UnknownVersion(9).to_string().contains("reads versions 1 to 2"));
    }
}
