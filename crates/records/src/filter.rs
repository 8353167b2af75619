//! Which ended records a search wants: the filter of admin `records`,
//! `sprocket.records`, `sprocket records` and the stores' searches.

use bytes::Bytes;
use serde::Deserialize;

use crate::record::Record;
use crate::state::RecordState;

/// Records a search returns when it names no limit.
pub const DEFAULT_SEARCH_LIMIT: usize = 100;
/// Most records one search returns.
pub const MAX_SEARCH_LIMIT: usize = 10_000;

/// What a search of ended records looks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Only records of this function.
    pub function: Option<Bytes>,
    /// Only records in this state.
    pub state: Option<RecordState>,
    /// Only records that ended at or after this time (Unix ms).
    pub since: Option<u64>,
    /// Only records that ended before this time (Unix ms).
    pub until: Option<u64>,
    /// Only records whose error text (the exception text,
    /// [`Record::error`]) contains this, compared without regard to case.
    /// The databases keep a record's text inside its encoded body, so this
    /// condition is checked on decoded records ([`RecordFilter::matches_record`]).
    pub error: Option<String>,
    /// Only records of jobs submitted with exactly this unique id. Like
    /// the error text, checked on decoded records (the databases index a
    /// job's store row key, which is not always its unique).
    pub unique: Option<Bytes>,
    /// At most this many records, newest end first.
    pub limit: usize,
}

impl RecordFilter {
    /// Whether an ended record matches (the in-memory searches, and a
    /// check for the others).
    pub fn matches(&self, function: &[u8], state: RecordState, finished: Option<u64>) -> bool {
        let Some(end) = finished else { return false };
        self.function.as_deref().is_none_or(|f| f == function)
            && self.state.is_none_or(|s| s == state)
            && self.since.is_none_or(|s| end >= s)
            && self.until.is_none_or(|u| end < u)
    }

    /// Whether an ended record matches every condition, the error text
    /// included. The one place a decoded record is judged, so that a
    /// condition added later (such as an error text of any attempt) holds
    /// for every store alike.
    pub fn matches_record(&self, record: &Record) -> bool {
        self.matches(record.function(), record.state(), record.finished())
            && self.unique.as_deref().is_none_or(|u| u == record.unique())
            && self.error_matches(record)
    }

    /// Whether the record's error text, or the error text of one of its
    /// listed attempts (a job retried after different errors), contains
    /// [`RecordFilter::error`] (always, without one). Text that is not
    /// UTF-8 is compared with its invalid bytes replaced, so a readable part
    /// still matches.
    pub fn error_matches(&self, record: &Record) -> bool {
        let Some(wanted) = self.error.as_deref() else { return true };
        let attempts = record.attempt_log().iter().filter_map(|a| a.error.as_deref());
        record
            .error()
            .into_iter()
            .chain(attempts)
            .any(|text| contains_ignoring_case(&String::from_utf8_lossy(text), wanted))
    }

    /// Whether a condition must be checked on decoded records (the error
    /// text, the unique): a store's query on function, state and time does
    /// not answer the filter alone.
    pub fn needs_record_check(&self) -> bool {
        self.error.is_some() || self.unique.is_some()
    }

    /// This filter without the conditions a store's query cannot check
    /// itself (the error text, the unique), to page through with.
    pub fn without_record_check(&self) -> RecordFilter {
        RecordFilter { error: None, unique: None, ..self.clone() }
    }

    /// Reads the JSON form `sprocket.records` takes:
    /// `{"function": "...", "state": "failed", "since_ms": 0, "until_ms": 0,
    /// "limit": 100}`, every field optional; an empty payload is `{}`.
    /// Unknown fields are refused, so a misspelt filter is not silently
    /// ignored.
    pub fn from_json(payload: &[u8]) -> Result<RecordFilter, FilterError> {
        let payload = payload.trim_ascii();
        let wire: WireFilter = if payload.is_empty() {
            WireFilter::default()
        } else {
            serde_json::from_slice(payload).map_err(|e| FilterError(e.to_string()))?
        };
        let state = wire.state.as_deref().map(str::parse).transpose().map_err(|e| FilterError(format!("{e}")))?;
        let limit = match wire.limit {
            None => DEFAULT_SEARCH_LIMIT,
            Some(n) if n == 0 || n > MAX_SEARCH_LIMIT as u64 => {
                return Err(FilterError(format!("limit must be between 1 and {MAX_SEARCH_LIMIT}, not {n}")))
            }
            Some(n) => n as usize,
        };
        if wire.error.as_deref() == Some("") {
            return Err(FilterError("error must not be empty (leave it out to match any record)".into()));
        }
        if let (Some(since), Some(until)) = (wire.since_ms, wire.until_ms) {
            if since > until {
                return Err(FilterError(format!("since_ms ({since}) is after until_ms ({until})")));
            }
        }
        Ok(RecordFilter {
            function: wire.function.map(Bytes::from),
            state,
            since: wire.since_ms,
            until: wire.until_ms,
            error: wire.error,
            unique: None,
            limit,
        })
    }
}

/// A search filter that cannot be used; the text says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad record filter: {0}")]
pub struct FilterError(pub String);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFilter {
    function: Option<String>,
    state: Option<String>,
    since_ms: Option<u64>,
    until_ms: Option<u64>,
    error: Option<String>,
    limit: Option<u64>,
}

/// Whether `haystack` contains `needle`, ignoring case (Unicode lower case
/// of both, so `ÉCHEC` finds `échec`).
fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    if needle.is_ascii() && haystack.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        return n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_filters_are_read_with_defaults_and_checked() {
        assert_eq!(RecordFilter::from_json(b"").unwrap(), RecordFilter { limit: 100, ..Default::default() });
        let f = RecordFilter::from_json(br#"{"function":"resize","state":"failed","since_ms":5,"limit":3}"#).unwrap();
        assert_eq!(f.function.as_deref(), Some(&b"resize"[..]));
        assert_eq!((f.state, f.since, f.until, f.limit), (Some(RecordState::Failed), Some(5), None, 3));
        for bad in [&br#"{"state":"lost"}"#[..], br#"{"limit":0}"#, br#"{"limit":10001}"#, br#"{"fn":"x"}"#, b"[1]"] {
            assert!(RecordFilter::from_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    fn ended(error: Option<&[u8]>, outcome_failed: bool) -> Record {
        use crate::state::Outcome;
        let mut r = Record::new(b"H:h:1", b"f", b"", sprocket_proto::Priority::Normal, true, 1).unwrap();
        let outcome = match (error, outcome_failed) {
            (Some(text), _) => Outcome::Exception(text),
            (None, true) => Outcome::Failed,
            (None, false) => Outcome::Complete(b"fine"),
        };
        r.ended(outcome, 15, crate::record::Limits::default()).unwrap();
        r
    }

    #[test]
    fn a_unique_matches_exactly_and_needs_a_look_at_the_record() {
        let mut record = Record::new(b"H:h:2", b"f", b"img-7", sprocket_proto::Priority::Normal, true, 1).unwrap();
        record.ended(crate::state::Outcome::Complete(b"ok"), 15, crate::record::Limits::default()).unwrap();
        let f = |unique: &'static [u8]| RecordFilter { unique: Some(Bytes::from_static(unique)), ..Default::default() };
        assert!(f(b"img-7").matches_record(&record));
        assert!(!f(b"img-").matches_record(&record), "exactly, not a part");
        assert!(!f(b"IMG-7").matches_record(&record), "case counts");
        assert!(f(b"img-7").needs_record_check());
        assert_eq!(f(b"img-7").without_record_check(), RecordFilter::default());
    }

    #[test]
    fn error_text_matches_without_regard_to_case() {
        let f = |text: &str| RecordFilter { error: Some(text.into()), ..Default::default() };
        let boom = ended(Some(b"Disk FULL on /var"), false);
        assert!(f("disk full").matches_record(&boom));
        assert!(f("FULL ON").matches_record(&boom));
        assert!(f("Disk FULL on /var").matches_record(&boom));
        assert!(!f("disk fully").matches_record(&boom));
        assert!(!f("disk full").matches_record(&ended(None, true)), "no error text matches no search");
        assert!(!f("fine").matches_record(&ended(None, false)), "a result is not an error text");
        assert!(RecordFilter::default().matches_record(&ended(None, false)));
        let unicode = ended(Some("ÉCHEC de l'envoi".as_bytes()), false);
        assert!(f("échec").matches_record(&unicode));
        let invalid = ended(Some(b"bad \xff byte: Timeout"), false);
        assert!(f("timeout").matches_record(&invalid));
        // The other conditions still hold.
        let other_function = RecordFilter { function: Some(Bytes::from_static(b"g")), ..f("disk") };
        assert!(!other_function.matches_record(&boom));
        let json = RecordFilter::from_json(br#"{"error":"Disk Full"}"#).unwrap();
        assert_eq!(json.error.as_deref(), Some("Disk Full"));
        assert!(json.needs_record_check() && !json.without_record_check().needs_record_check());
        assert!(RecordFilter::from_json(br#"{"error":""}"#).is_err());
        assert!(RecordFilter::from_json(br#"{"since_ms":5,"until_ms":4}"#).is_err());
    }

    #[test]
    fn an_earlier_attempts_error_text_matches_too() {
        use crate::record::{Limits, Worker};
        use crate::state::{AttemptEnd, Outcome};
        let worker = Worker { client_id: Bytes::from_static(b"w"), peer: std::sync::Arc::from("127.0.0.1:1") };
        let mut record = Record::new(b"H:h:1", b"f", b"", sprocket_proto::Priority::Normal, true, 1).unwrap();
        record.started(worker.clone(), 2).unwrap();
        record.retrying(AttemptEnd::Exception, Some(b"quota exceeded"), 10, 3, Limits::default()).unwrap();
        record.started(worker, 10).unwrap();
        record.ended(Outcome::Exception(b"disk full"), 11, Limits::default()).unwrap();
        let f = |text: &str| RecordFilter { error: Some(text.into()), ..Default::default() };
        assert!(f("QUOTA").matches_record(&record), "the first attempt's error");
        assert!(f("disk full").matches_record(&record));
    }

    #[test]
    fn matching_needs_an_end_in_the_window() {
        let f = RecordFilter {
            function: Some(Bytes::from_static(b"f")),
            since: Some(10),
            until: Some(20),
            ..Default::default()
        };
        assert!(f.matches(b"f", RecordState::Complete, Some(10)));
        assert!(!f.matches(b"f", RecordState::Complete, Some(20)));
        assert!(!f.matches(b"g", RecordState::Complete, Some(15)));
        assert!(!f.matches(b"f", RecordState::Complete, None));
    }
}
